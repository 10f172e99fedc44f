// node account.mjs CONFIG
//
// The provider's page (/me) and the admin page (/admin), signed in at a
// real OpenID provider; CONFIG is JSON: {"apex", "issuer", "provider",
// "admin", "visitor" (each {"user", "password"}), "solution" (the
// provider's ready solution), "sleeper" (its sleeping one), "token" (the
// ID of a token of the provider's), "shots": {...}}.
//
//   provider  opens /me anonymously (sent to sign in, and back), reads
//             its solutions, chart, table, inquiries and logs, runs
//             axe-core, measures it on a phone's width, then puts the
//             solution to sleep from the keyboard alone; /admin is 403.
//   admin     opens /admin the same way, runs axe-core, adds a provider,
//             tries to remove the provider (refused: it owns solutions),
//             revokes its token and wakes its sleeping solution.
//   visitor   opens /me (a page saying it is for providers) and /admin
//             (403), axe-core on both.
//
// Prints {"ok": true, ...what each step saw} for the Go test to judge.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { args, navigations, run } from "./lib.mjs";

const [raw] = args(1, "account.mjs CONFIG");
const cfg = JSON.parse(raw);
// Evaluated, not added as a <script>: aim's pages allow no script.
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// audit runs axe-core on the page and returns its violations, each with
// its impact and a few of the elements at fault.
async function audit(page) {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + " " + n.html.slice(0, 160)) }));
  });
}

// signInAt opens path on the apex anonymously: aim sends the browser to
// the provider's login form, which is filled in by its labels, and then
// back to path.
async function signInAt(page, path, who) {
  const navs = navigations(page);
  await page.goto(cfg.apex + path, { waitUntil: "load" });
  const login = page.url();
  await page.getByLabel("Username").fill(who.user);
  await page.getByLabel("Password").fill(who.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(cfg.apex + path, { timeout: 15_000 });
  await page.locator("#aim-who").waitFor({ timeout: 5_000 });
  return { login, navigations: [...navs] };
}

// phone measures the page on a phone's width: how far it is wider than
// the screen; a screenshot of it.
async function phone(page, shot) {
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: shot, fullPage: true });
  await page.setViewportSize({ width: 1000, height: 800 });
  return overflow;
}

// tabTo presses Tab until the focused element is a button whose text is
// label (at most limit times) and returns how many it took, or -1.
async function tabTo(page, label, limit) {
  for (let n = 1; n <= limit; n++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate((l) => {
      const el = document.activeElement;
      return !!el && el.tagName === "BUTTON" && el.textContent.trim() === l;
    }, label);
    if (focused) return n;
  }
  return -1;
}

const text = (page, sel) => page.locator(sel).first().textContent({ timeout: 2_000 }).catch(() => null);

async function asProvider(page) {
  const signIn = await signInAt(page, "/me", cfg.provider);
  const sol = `section[data-solution="${cfg.solution}"]`;
  const seen = {
    ...signIn,
    solutions: await page.locator("section[data-solution]").evaluateAll((els) => els.map((e) => e.dataset.solution)),
    state: await text(page, `${sol} .state`),
    chart: await page.locator(`${sol} svg[role=img]`).getAttribute("aria-label", { timeout: 2_000 }).catch(() => null),
    bars: await page.locator(`${sol} svg rect`).count(),
    table: await page.locator(`${sol} table tbody tr`).evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent))),
    inquiries: await page.locator(`${sol} .inquiry`).evaluateAll((els) => els.map((e) => ({ text: e.textContent, delivery: e.dataset.delivery }))),
    logs: await text(page, `${sol} pre.logs`),
    cli: await text(page, "main > p.muted"),
  };
  seen.axe = await audit(page);
  await page.screenshot({ path: cfg.shots.me, fullPage: true });
  seen.phoneOverflow = await phone(page, cfg.shots.mePhone);

  // From the top of the page to the solution's Sleep button with Tab
  // alone, then Enter.
  await page.goto(cfg.apex + "/me", { waitUntil: "load" });
  seen.tabs = await tabTo(page, "Sleep " + cfg.solution, 80);
  if (seen.tabs > 0) {
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/me\?done=sleep/, { timeout: 60_000 });
    seen.flash = await text(page, ".flash");
    seen.stateAfter = await text(page, `${sol} .state`);
    await page.screenshot({ path: cfg.shots.meSlept, fullPage: true });
  }
  const res = await page.goto(cfg.apex + "/admin", { waitUntil: "load" });
  seen.adminStatus = res.status();
  seen.adminNotice = await text(page, "#aim-notice");
  return seen;
}

async function asAdmin(page) {
  const seen = await signInAt(page, "/admin", cfg.admin);
  seen.providers = await page.locator("tr[data-provider]").evaluateAll((els) => els.map((e) => e.dataset.provider));
  seen.solutions = await page.locator("tr[data-solution]").evaluateAll((els) => els.map((e) => e.dataset.solution));
  seen.tokens = await page.locator("tr[data-token]").evaluateAll((els) => els.map((e) => e.dataset.token));
  seen.axe = await audit(page);
  await page.screenshot({ path: cfg.shots.admin, fullPage: true });
  seen.phoneOverflow = await phone(page, cfg.shots.adminPhone);

  await page.getByLabel("Name", { exact: false }).first().fill("gamma");
  await page.getByLabel("Display name").fill("Gamma Works");
  await page.getByLabel("E-mail").fill("hello@gamma.test");
  await page.getByRole("button", { name: "Add provider" }).click();
  await page.waitForURL(/done=provider-added/, { timeout: 10_000 });
  seen.added = { flash: await text(page, ".flash"), providers: await page.locator("tr[data-provider]").evaluateAll((els) => els.map((e) => e.dataset.provider)) };

  // The provider still owns solutions: refused, saying which.
  const row = page.locator(`tr[data-provider="${cfg.providerName}"]`);
  await row.getByRole("checkbox").check();
  const [refusal] = await Promise.all([page.waitForResponse((r) => r.url().endsWith(`/admin/providers/${cfg.providerName}/remove`)),
    row.getByRole("button", { name: /Remove/ }).click()]);
  await page.locator("#aim-notice").waitFor({ timeout: 5_000 });
  seen.removeRefused = { status: refusal.status(), notice: await text(page, "#aim-notice") };
  seen.axeNotice = await audit(page);
  await page.screenshot({ path: cfg.shots.refused });

  await page.goto(cfg.apex + "/admin", { waitUntil: "load" });
  await page.locator(`tr[data-token="${cfg.token}"]`).getByRole("button", { name: /Revoke/ }).click();
  await page.waitForURL(/done=token-revoked/, { timeout: 10_000 });
  seen.revoked = { flash: await text(page, ".flash"), revokedCell: await text(page, `tr[data-token="${cfg.token}"] td:nth-of-type(7)`),
    buttons: await page.locator(`tr[data-token="${cfg.token}"] button`).count() };

  await page.locator(`tr[data-solution="${cfg.sleeper}"]`).getByRole("button", { name: /Wake/ }).click();
  await page.waitForURL(/done=wake/, { timeout: 90_000 });
  seen.woken = { flash: await text(page, ".flash"), state: await text(page, `tr[data-solution="${cfg.sleeper}"] .state`) };
  await page.screenshot({ path: cfg.shots.adminAfter, fullPage: true });
  return seen;
}

async function asVisitor(page) {
  const seen = await signInAt(page, "/me", cfg.visitor);
  seen.page = await text(page, "#aim-me-visitor");
  seen.solutions = await page.locator("section[data-solution]").count();
  seen.axe = await audit(page);
  await page.screenshot({ path: cfg.shots.visitor, fullPage: true });
  const res = await page.goto(cfg.apex + "/admin", { waitUntil: "load" });
  seen.adminStatus = res.status();
  seen.adminNotice = await text(page, "#aim-notice");
  seen.axeAdmin = await audit(page);
  return seen;
}

await run(async (browser) => {
  const out = {};
  for (const [name, fn] of [["provider", asProvider], ["admin", asAdmin], ["visitor", asVisitor]]) {
    const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
    const page = await context.newPage();
    out[name] = await fn(page);
    await context.close();
  }
  return out;
});
