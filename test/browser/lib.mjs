// Shared helpers of the browser scripts: launch Debian's chromium headless
// through playwright-core, print one JSON result, fail with a reason.
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// cspViolations collects what Chromium refused under a page's
// Content-Security-Policy, in every page of every script: aim's pages
// must never need what their policy forbids, so run fails on any.
export const cspViolations = [];

function watchCSP(page) {
  page.on("console", (m) => {
    // What the tests themselves inject by evaluation (axe, Playwright's
    // caret-hiding style for screenshots) has no URL; the pages' own
    // content always has one.
    if (m.type() === "error" && /Content Security Policy/.test(m.text()) && m.location().url) {
      cspViolations.push(page.url() + " at " + JSON.stringify(m.location()) + ": " + m.text());
    }
  });
}

export async function launch() {
  const browser = await launchChromium();
  const newContext = browser.newContext.bind(browser);
  browser.newContext = async (o) => {
    const c = await newContext(o);
    c.on("page", watchCSP);
    return c;
  };
  const newPage = browser.newPage.bind(browser);
  browser.newPage = async (o) => {
    const p = await newPage(o);
    watchCSP(p);
    return p;
  };
  return browser;
}

function launchChromium() {
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
    if (cspViolations.length > 0) {
      throw new Error("Content-Security-Policy violations:\n" + cspViolations.join("\n"));
    }
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

// catalog reads aim's catalog page: who its header says is signed in,
// and the solutions it lists (those with the private badge apart).
export async function catalog(page) {
  return {
    who: await page.locator("#aim-who").textContent({ timeout: 1_000 }).catch(() => null),
    signIn: await page.locator("#aim-signin").count(),
    solutions: await page.locator("article[data-solution]").evaluateAll((els) => els.map((e) => e.dataset.solution)),
    private: await page.locator("article[data-solution]:has(.badge.private)").evaluateAll((els) => els.map((e) => e.dataset.solution)),
  };
}

// signInFromCatalog opens the catalog at apex, follows its "Sign in"
// link (with the keyboard alone when keyboard is set: Tab until the link
// has the focus, then Enter), fills the OpenID provider's login form (by
// its labels, as a person would) and returns the catalog it comes back
// to, with how many Tabs the link took.
export async function signInFromCatalog(page, apex, user, password, keyboard = false) {
  await page.goto(apex + "/", { waitUntil: "load" });
  let tabs = 0;
  if (keyboard) {
    while (tabs < 20 && (await page.evaluate(() => document.activeElement && document.activeElement.id)) !== "aim-signin") {
      await page.keyboard.press("Tab");
      tabs++;
    }
    await page.keyboard.press("Enter");
  } else {
    await page.locator("#aim-signin").click();
  }
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(apex + "/", { timeout: 15_000 });
  await page.locator("#aim-who").waitFor({ timeout: 5_000 });
  return { ...(await catalog(page)), tabs };
}

// navigations records the main frame's navigations of page: URL and
// status, in order.
export function navigations(page) {
  const seen = [];
  page.on("response", (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) seen.push({ url: r.url(), status: r.status() });
  });
  return seen;
}

// call runs fetch in the page (same origin: the page's cookies go along)
// and returns the answer's status and text.
export async function call(page, path, init) {
  return page.evaluate(async ([p, i]) => {
    const r = await fetch(p, i || {});
    return { status: r.status, text: await r.text() };
  }, [path, init]);
}
