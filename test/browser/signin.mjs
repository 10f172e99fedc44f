// node signin.mjs MODE CONFIG
//
// Signing in to aim with a real OpenID provider, in one of three modes;
// CONFIG is JSON: {"apex", "solution" (its URL), "name", "user",
// "password", "shots": {...}}.
//
//   anonymous  opens the solution's URL: it must end on the provider's
//              login form (shots.login).
//   admitted   signs in from the catalog's "Sign in" link (shots.catalog),
//              opens the solution from its card (its page, then "Try
//              it"), waits for the solution (it may be waking) and uses
//              it: POST /echo, GET /headers (shots.solution); then
//              signs out from the catalog (shots.signedOut) and opens
//              the solution again, which must send it to sign in anew.
//   refused    signs in from the catalog with the keyboard alone
//              (shots.catalog), then opens the solution's URL: aim's 403
//              page (shots.refused).
//
// Prints {"ok": true, ...what each step saw} for the Go test to judge.
import { args, call, catalog, navigations, run, signInFromCatalog } from "./lib.mjs";

const [mode, raw] = args(2, "signin.mjs anonymous|admitted|refused CONFIG");
const cfg = JSON.parse(raw);

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  const navs = navigations(page);
  if (mode === "anonymous") {
    const res = await page.goto(cfg.solution, { waitUntil: "load" });
    await page.getByLabel("Username").waitFor({ timeout: 10_000 });
    await page.screenshot({ path: cfg.shots.login });
    return { url: page.url(), status: res.status(), title: await page.title(), navigations: navs };
  }
  const listed = await signInFromCatalog(page, cfg.apex, cfg.user, cfg.password, mode === "refused");
  await page.screenshot({ path: cfg.shots.catalog });
  if (mode === "admitted") {
    // The same page on a phone: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    listed.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    await page.screenshot({ path: cfg.shots.phone });
    await page.setViewportSize({ width: 900, height: 640 });
    // The card leads to the solution's page, whose "Try it" opens it.
    await page.locator(`article[data-solution="${cfg.name}"] h3 a`).click();
    await page.locator("#aim-try").click();
    // waitFor keeps polling across the starting page's own reloads.
    const h1 = page.locator("h1", { hasText: "hello from" });
    await h1.waitFor({ timeout: 90_000 });
    await page.waitForLoadState("load");
    const echo = await call(page, "/echo", { method: "POST", body: "hello vault" });
    const headers = await call(page, "/headers");
    await page.screenshot({ path: cfg.shots.solution });
    const used = { catalog: listed, url: page.url(), h1: await h1.textContent(), echo, headers: JSON.parse(headers.text), navigations: [...navs] };

    await page.goto(cfg.apex + "/", { waitUntil: "load" });
    await page.locator("#aim-signout").click();
    await page.locator("#aim-signin").waitFor({ timeout: 10_000 });
    used.signedOut = { url: page.url(), catalog: await catalog(page) };
    await page.screenshot({ path: cfg.shots.signedOut });
    await page.goto(cfg.solution, { waitUntil: "load" });
    await page.getByLabel("Username").waitFor({ timeout: 10_000 });
    used.afterSignOut = page.url();
    return used;
  }
  const res = await page.goto(cfg.solution, { waitUntil: "load" });
  const notice = await page.locator("#aim-notice").textContent({ timeout: 5_000 }).catch(() => null);
  await page.screenshot({ path: cfg.shots.refused });
  return { catalog: listed, url: page.url(), status: res.status(), notice, who: (await catalog(page)).who, navigations: navs };
});
