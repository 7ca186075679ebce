// What the browser scripts share: Debian's Chromium, launched headless with
// a throwaway profile, and steps that turn any error into one failure line.

import { chromium } from "playwright-core";

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
