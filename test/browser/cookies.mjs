// node cookies.mjs CONFIG
//
// A hostile solution plants cookies; nobody's session changes. CONFIG is
// JSON: {"apex", "vault" and "planter" (their URLs), "user", "password",
// "shots": {"planter", "catalog", "vault"}}. Signs in from the catalog,
// opens the private vault (its session cookie is handed over), then the
// planter (which sets a cookie for the parent domain and cookies under
// aim's names), then the catalog and the vault again. Prints what each
// solution received (its /headers echo), the browser's cookies before and
// after the planting, and what the apex and the vault show afterwards.
import { args, call, catalog, navigations, run, signInFromCatalog } from "./lib.mjs";

const [raw] = args(1, "cookies.mjs CONFIG");
const cfg = JSON.parse(raw);

await run(async (browser) => {
  const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
  const page = await context.newPage();
  const hello = () => page.locator("h1", { hasText: "hello from" }).waitFor({ timeout: 60_000 });

  await signInFromCatalog(page, cfg.apex, cfg.user, cfg.password);
  await page.goto(cfg.vault, { waitUntil: "load" });
  await hello();
  const before = await context.cookies();
  const vaultSaw = JSON.parse((await call(page, "/headers")).text);

  await page.goto(cfg.planter, { waitUntil: "load" });
  await hello();
  const planterSaw = JSON.parse((await call(page, "/headers")).text);
  await page.screenshot({ path: cfg.shots.planter });
  const after = await context.cookies();

  await page.goto(cfg.apex + "/", { waitUntil: "load" });
  const apexAfter = await catalog(page);
  await page.screenshot({ path: cfg.shots.catalog });

  const navs = navigations(page);
  await page.goto(cfg.vault, { waitUntil: "load" });
  await hello();
  const vaultAfter = JSON.parse((await call(page, "/headers")).text);
  await page.screenshot({ path: cfg.shots.vault });
  return { before, after, vaultSaw, planterSaw, apexAfter, vaultAfter, vaultNavigations: navs };
});
