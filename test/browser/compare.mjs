// node compare.mjs URL STLFILE OUTPNG
//
// Opens the part-comparer page at URL, uploads STLFILE through input#stl,
// clicks button#compare, waits for the ranked list and reads it. Prints
// {"ok": true, "status": ..., "results": [{"id", "name", "score"}, ...]}
// and writes a full-page screenshot to OUTPNG (also on failure, when the
// page got that far).
import { args, run } from "./lib.mjs";

const [url, stl, out] = args(3, "compare.mjs URL STLFILE OUTPNG");

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  try {
    const res = await page.goto(url, { waitUntil: "load", timeout: 60_000 });
    if (!res || res.status() !== 200) throw new Error("GET " + url + ": " + (res ? res.status() : "no response"));
    await page.locator("input#stl").setInputFiles(stl);
    await page.locator("button#compare").click();
    await page.locator("ol#results > li[data-part]").first().waitFor({ timeout: 60_000 });
    // The previews are lazy images; let those in view load for the screenshot.
    await page.waitForLoadState("networkidle", { timeout: 15_000 }).catch(() => {});
    const results = await page.$$eval("ol#results > li[data-part]", (lis) =>
      lis.map((li) => ({
        id: li.dataset.part,
        name: li.querySelector(".name")?.textContent ?? "",
        score: Number(li.dataset.score),
        shown: li.querySelector(".score")?.textContent ?? "",
      })));
    const status = await page.locator("#status").textContent();
    return { status, results, pageErrors: errors };
  } finally {
    await page.screenshot({ path: out, fullPage: true }).catch(() => {});
  }
});
