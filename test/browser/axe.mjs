// node axe.mjs CONFIG
//
// Runs axe-core (from npm, injected into the page) on aim's pages in
// Chromium and reports what it finds. CONFIG is JSON: {"pages": [{"name",
// "url" (or "html", a page's content), "contact": {...} (fill the page's
// contact form so, its browser checks off, and send it: the page with its
// problems is checked), "shot"}], "signIn": {"apex", "user", "password"} (sign in from the
// catalog first), "width"}.
//
// Prints {"ok": true, "pages": [{"name", "url", "status", "violations":
// [{"id", "impact", "help", "nodes": [target, ...]}], "passes"}]}: every
// violation, whatever its impact; the Go test decides which fail.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { args, run, signInFromCatalog } from "./lib.mjs";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const [raw] = args(1, "axe.mjs CONFIG");
const cfg = JSON.parse(raw);

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: cfg.width || 1100, height: 800 } });
  if (cfg.signIn) await signInFromCatalog(page, cfg.signIn.apex, cfg.signIn.user, cfg.signIn.password);
  const out = [];
  for (const p of cfg.pages) {
    let status = 200;
    // A page of the test's own is shown on a blank page, not in place of
    // one of aim's, whose policy would still apply to it.
    if (p.html) {
      await page.goto("about:blank");
      await page.setContent(p.html, { waitUntil: "load" });
    }
    else status = (await page.goto(p.url, { waitUntil: "load" })).status();
    if (p.contact) {
      await page.locator("#aim-contact").evaluate((f) => { f.noValidate = true; });
      for (const [field, value] of Object.entries(p.contact)) await page.locator(`#aim-c-${field}`).fill(value);
      const [answer] = await Promise.all([page.waitForNavigation(), page.locator("#aim-send").click()]);
      status = answer.status();
    }
    // Evaluated through the DevTools protocol, not added as a <script>:
    // aim's pages allow no script, and the policy stays on while axe runs.
    await page.evaluate(axeSource);
    const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    if (p.shot) await page.screenshot({ path: p.shot, fullPage: true });
    out.push({
      name: p.name, url: page.url(), status, passes: r.passes.length,
      violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) })),
    });
  }
  return { pages: out };
});
