// What the browser scripts share: Debian's Chromium, launched headless with
// a throwaway profile, and steps that turn any error into one failure line.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Launches Chromium on `profile`, with `args` added to ours. */
export function launch(profile, { timeout, args = [], ...options }) {
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    timeout,
    ...options,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...args,
    ],
  });
}

/** A `step(what, action)` that hands a failed step to `fail`, naming it. */
export function stepper(fail) {
  return async (what, action) => {
    try {
      return await action();
    } catch (error) {
      await fail(`${what}: ${error.message.split("\n")[0]}`);
    }
  };
}

/**
 * What a script that checks pages shares: Chromium contexts on throwaway
 * profiles, every page watched for errors (its own, and answers of 400 or
 * more), and `fail(why)`, which prints why with those errors and the page's
 * text, saves `failureShot`, cleans up and exits 1. `page` is the page a
 * failure reports on (the last opened, unless set).
 */
export function harness(failureShot, stepMs) {
  const h = { problems: [], page: null, contexts: [], profiles: [] };
  const cleanup = async () => {
    for (const c of h.contexts) await c.close().catch(() => {});
    for (const p of h.profiles) rmSync(p, { recursive: true, force: true });
  };
  h.fail = async (message) => {
    console.log(`FAIL: ${message}`);
    if (h.problems.length) console.log(`page errors:\n  ${h.problems.join("\n  ")}`);
    if (h.page) {
      console.log(`page text:\n${await h.page.locator("body").innerText({ timeout: 2000 }).catch(() => "(unreadable)")}`);
      await h.page.screenshot({ path: failureShot, fullPage: true }).catch(() => {});
    }
    await cleanup();
    process.exit(1);
  };
  h.step = stepper(h.fail);
  h.check = async (ok, why) => ok || (await h.fail(why));
  h.wait = (what, fn, arg) => h.step(what, () => h.page.waitForFunction(fn, arg, { timeout: stepMs }));
  /** A new browser (viewport, and `init` run in each of its pages first); its page becomes `page`. */
  h.browser = async (viewport, init) => {
    const profile = mkdtempSync(join(tmpdir(), "ao-chromium-"));
    h.profiles.push(profile);
    const context = await h.step("launching Chromium", () => launch(profile, { timeout: stepMs, viewport }));
    h.contexts.push(context);
    const p = context.pages()[0] ?? (await context.newPage());
    p.on("pageerror", (error) => h.problems.push(`uncaught: ${error.message}`));
    p.on("console", (m) => m.type() === "error" && h.problems.push(`console: ${m.text()}`));
    p.on("response", (r) => r.status() >= 400 && h.problems.push(`${r.status()} for ${r.url()}`));
    if (init) await p.addInitScript(init);
    h.page = p;
    return p;
  };
  /** Fails if a page reported errors; else closes everything and prints PASS. */
  h.pass = async () => {
    if (h.problems.length) await h.fail("the pages reported errors");
    await cleanup();
    console.log("PASS");
    process.exit(0);
  };
  return h;
}
