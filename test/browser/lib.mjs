// Shared helpers of the browser scripts: launch Debian's chromium headless
// through playwright-core, print one JSON result, fail with a reason.
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // aim listens on 127.0.0.1 only; never try ::1 or a proxy for *.localhost.
      "--host-resolver-rules=MAP *.localhost 127.0.0.1",
      "--no-proxy-server",
    ],
  });
}

// run calls main(browser) with a fresh browser and prints its result as
// JSON; any exception prints {"ok": false, "error": ...} and exits 1.
export async function run(main) {
  let browser;
  try {
    browser = await launch();
    const result = await main(browser);
    process.stdout.write(JSON.stringify({ ok: true, ...result }) + "\n");
    await browser.close();
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.stack || err) }) + "\n");
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
}

export function args(n, usage) {
  const a = process.argv.slice(2);
  if (a.length < n) {
    process.stderr.write("usage: node " + usage + "\n");
    process.exit(2);
  }
  return a;
}
