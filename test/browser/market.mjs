// node market.mjs CONFIG
//
// A visitor in the marketplace, by its links and forms alone. CONFIG is
// JSON: {"apex", "search", "phase" (a phase's title), "open" (a
// solution's name), "contacts": [{"name" (a solution), "form": {...}}],
// "shots": {catalog, search, phase, phone, solution, contact, sent,
// waking, woken}}.
//
// It opens the catalog, searches it with the search form (Enter in the
// field), follows the phase filter's link, opens a solution's page from
// its card, sends the contact form of each solution in contacts, and
// last follows "Try it" on the open solution, which must be asleep: the
// starting page (shot before it may reload), then the solution's own
// page. Prints {"ok": true, ...what each step saw}.
import { args, run } from "./lib.mjs";

const [raw] = args(1, "market.mjs CONFIG");
const cfg = JSON.parse(raw);

// listed reads the catalog page: its heading and the cards shown.
async function listed(page) {
  return {
    url: page.url(),
    heading: await page.locator("#aim-results").textContent(),
    solutions: await page.locator("article[data-solution]").evaluateAll((els) => els.map((e) => e.dataset.solution)),
  };
}

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const errors = [], dialogs = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // A description's script that got through would show itself here.
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  const seen = {};

  await page.goto(cfg.apex + "/", { waitUntil: "load" });
  seen.catalog = await listed(page);
  await page.screenshot({ path: cfg.shots.catalog, fullPage: true });

  // A search, as a person types it: the field by its label, then Enter.
  await page.getByLabel("Search solutions").fill(cfg.search);
  await Promise.all([page.waitForNavigation(), page.getByLabel("Search solutions").press("Enter")]);
  seen.search = await listed(page);
  await page.screenshot({ path: cfg.shots.search, fullPage: true });

  // The phase filter, from the whole catalog: its link by the phase's title.
  await page.goto(cfg.apex + "/", { waitUntil: "load" });
  await page.locator('ul[data-filter="phase"] a', { hasText: cfg.phase }).click();
  await page.waitForLoadState("load");
  seen.phase = await listed(page);
  seen.phase.current = await page.locator('ul[data-filter="phase"] a[aria-current="true"]').textContent();
  await page.screenshot({ path: cfg.shots.phase, fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  seen.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: cfg.shots.phone, fullPage: true });
  await page.setViewportSize({ width: 1100, height: 800 });

  // The solution's page, from its card.
  await page.goto(cfg.apex + "/", { waitUntil: "load" });
  await page.locator(`article[data-solution="${cfg.open}"] h3 a`).click();
  await page.locator("#aim-solution").waitFor();
  seen.solution = {
    url: page.url(),
    title: await page.locator("#aim-title").textContent(),
    state: await page.locator("#aim-state").textContent(),
    try: await page.locator("#aim-try").getAttribute("href"),
    phases: await page.locator("#aim-phases a").allTextContents(),
    tags: await page.locator("#aim-tags a").allTextContents(),
    description: await page.locator(".description").innerHTML(),
    thumbWidth: await page.locator("#aim-thumb").evaluate((img) => img.complete ? img.naturalWidth : -1),
  };
  await page.screenshot({ path: cfg.shots.solution, fullPage: true });

  // The contact form of each, filled in by its labels.
  seen.contacts = [];
  for (const [i, c] of cfg.contacts.entries()) {
    await page.goto(cfg.apex + "/s/" + c.name, { waitUntil: "load" });
    await page.getByLabel("Your name").fill(c.form.name);
    await page.getByLabel("Organisation").fill(c.form.organisation);
    await page.getByLabel("E-mail").fill(c.form.email);
    await page.getByLabel("Message").fill(c.form.message);
    if (i === 0) await page.locator("#contact").screenshot({ path: cfg.shots.contact });
    await Promise.all([page.waitForNavigation(), page.locator("#aim-send").click()]);
    const sent = await page.locator("#aim-sent").textContent({ timeout: 5_000 }).catch(() => null);
    if (i === 0) await page.screenshot({ path: cfg.shots.sent, fullPage: true });
    seen.contacts.push({ name: c.name, url: page.url(), sent });
  }

  // "Try it" on the sleeping solution: the starting page, then the
  // solution. Its self-reload waits until the first page is shot.
  await page.goto(cfg.apex + "/s/" + cfg.open, { waitUntil: "load" });
  let release;
  const shot = new Promise((resolve) => (release = resolve));
  let documents = 0;
  await page.route("**/*", async (route) => {
    if (route.request().isNavigationRequest() && new URL(route.request().url()).host !== new URL(cfg.apex).host && documents++ > 0) await shot;
    await route.continue();
  });
  const started = Date.now();
  const [first] = await Promise.all([page.waitForResponse((r) => r.request().isNavigationRequest() && r.url() === seen.solution.try),
    page.locator("#aim-try").click()]);
  await page.waitForLoadState("load");
  seen.tryFirst = { status: first.status(), starting: await page.locator("#aim-starting").textContent({ timeout: 5_000 }).catch(() => null) };
  await page.screenshot({ path: cfg.shots.waking });
  release();
  const h1 = page.locator("h1", { hasText: "hello from" });
  await h1.waitFor({ timeout: 90_000 });
  await page.waitForLoadState("load");
  seen.woken = { url: page.url(), h1: await h1.textContent(), ms: Date.now() - started };
  await page.screenshot({ path: cfg.shots.woken });
  seen.pageErrors = errors;
  seen.dialogs = dialogs;
  return seen;
});
