// node wake.mjs URL WAKINGPNG WOKENPNG [TIMEOUT_MS]
//
// Opens a sleeping solution at URL. The first answer must be aim's
// "Starting …" page (503 with #aim-starting), screenshot to WAKINGPNG; the
// page then reloads itself (meta refresh) until the solution's own page
// (an h1 "hello from …") appears, screenshot to WOKENPNG. Prints
// {"ok": true, "first": {...}, "navigations": [...], "final": {...}}.
//
// The self-reload is held back (not changed) until the first screenshot is
// taken, so that a fast wake cannot replace the page under the camera.
import { args, run } from "./lib.mjs";

const [url, wakingPng, wokenPng, timeoutArg] = args(3, "wake.mjs URL WAKINGPNG WOKENPNG [TIMEOUT_MS]");
const timeout = Number(timeoutArg || 90_000);

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
  const started = Date.now();
  const navigations = [];
  page.on("response", (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) {
      navigations.push({ status: r.status(), ms: Date.now() - started });
    }
  });
  let release;
  const shot = new Promise((resolve) => (release = resolve));
  let documents = 0;
  await page.route("**/*", async (route) => {
    if (route.request().isNavigationRequest() && documents++ > 0) await shot;
    await route.continue();
  });

  const res = await page.goto(url, { waitUntil: "load", timeout: 30_000 });
  const first = {
    status: res.status(),
    retryAfter: res.headers()["retry-after"] ?? null,
    starting: await page.locator("#aim-starting").textContent({ timeout: 5_000 }).catch(() => null),
    refresh: await page.locator('meta[http-equiv="refresh"]').getAttribute("content", { timeout: 1_000 }).catch(() => null),
  };
  await page.screenshot({ path: wakingPng });
  release();
  if (first.starting === null) throw new Error("the first page is not aim's starting page: " + JSON.stringify(first) + "\n" + (await page.content()));

  // waitForSelector keeps polling across the page's own reloads.
  const h1 = page.locator("h1", { hasText: "hello from" });
  await h1.waitFor({ timeout });
  await page.waitForLoadState("load");
  const final = { h1: await h1.textContent(), url: page.url(), title: await page.title(), ms: Date.now() - started };
  await page.screenshot({ path: wokenPng });
  return { first, navigations, final };
});
