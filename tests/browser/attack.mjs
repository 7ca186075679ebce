// Attacks the session manager from web pages in headless Chromium, for
// tests/it/security_browser.rs.
//
//   node tests/browser/attack.mjs OPEN_URL TOKEN_URL TOKEN
//
// OPEN_URL is a session manager without a token, TOKEN_URL one with TOKEN.
// Prints one line, `RESULT {json}`, with what each attempt met, and exits 0;
// the Rust test judges it against the databases and the servers' logs.
// On a harness failure it prints "FAIL: why" and exits 1. Every wait has a
// timeout; there are no fixed sleeps.
//
// 1. login: the dashboard of TOKEN_URL opened once as /?token=TOKEN must end
//    on / with the token out of the address bar and the page live.
// 2. foreign: a page served by this script on another local port (another
//    origin, the same site) tries, against OPEN_URL, a text/plain POST, a
//    form POST, an empty POST that would stop a run, a JSON POST, a DELETE,
//    a read, a WebSocket and an EventSource; and against TOKEN_URL, whose
//    cookie the browser now holds (same site), a read and a WebSocket.
// 3. rebinding: attacker.test resolves to 127.0.0.1, so a page at
//    http://attacker.test:PORT is the same origin as OPEN_URL to the browser;
//    it tries to read, create and delete.

import { launch, stepper } from "./chromium.mjs";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [openUrl, tokenUrl, token] = process.argv.slice(2);
if (!openUrl || !tokenUrl || !token) {
  console.error("usage: node attack.mjs OPEN_URL TOKEN_URL TOKEN");
  process.exit(2);
}
const STEP_MS = Number(process.env.DASHBOARD_STEP_TIMEOUT_MS || 20000);
const profile = mkdtempSync(join(tmpdir(), "ao-attack-chromium-"));
let context = null;

async function fail(message) {
  console.log(`FAIL: ${message}`);
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}

const step = stepper(fail);

// The attacker's own site: a blank page on another port.
const attacker = createServer((_, res) => {
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>attacker</title><p>nothing to see</p>");
});
await new Promise((resolve) => attacker.listen(0, "127.0.0.1", resolve));
const attackerUrl = `http://127.0.0.1:${attacker.address().port}/`;

context = await step("launching Chromium", () =>
  launch(profile, { timeout: STEP_MS, args: ["--host-resolver-rules=MAP attacker.test 127.0.0.1"] }),
);
const page = context.pages()[0] ?? (await context.newPage());
const result = {};

// 1. The dashboard takes the token once.
await step("logging in", () => page.goto(`${tokenUrl}/?token=${token}`, { timeout: STEP_MS }));
await step("waiting for the dashboard to be live", () =>
  page.waitForFunction(() => document.querySelector("#conn")?.dataset.state === "live", null, {
    timeout: STEP_MS,
  }),
);
result.login = {
  url: page.url(),
  script_sees_cookie: await page.evaluate(() => document.cookie),
};

// 2. A page of another origin.
await step("opening the attacker's page", () => page.goto(attackerUrl, { timeout: STEP_MS }));
result.foreign = await step("attacking from another origin", () =>
  page.evaluate(
    async ({ open, guarded, limit }) => {
      const outcome = async (action) => {
        try {
          return await action();
        } catch (error) {
          return `blocked: ${error.name}`;
        }
      };
      const create = (id) => JSON.stringify({ session_id: id, session_name: id });
      const live = (make) =>
        new Promise((resolve) => {
          const timer = setTimeout(() => resolve("no answer"), limit);
          let source;
          try {
            source = make();
          } catch (error) {
            clearTimeout(timer);
            resolve(`blocked: ${error.name}`);
            return;
          }
          source.onopen = () => {
            clearTimeout(timer);
            source.close();
            resolve("OPEN");
          };
          source.onerror = () => {
            clearTimeout(timer);
            source.close();
            resolve("error");
          };
        });
      const r = {};
      // A "simple" request: sent without a preflight, its answer unreadable.
      r.text_plain_post = await outcome(async () => {
        await fetch(`${open}/sessions`, {
          method: "POST",
          mode: "no-cors",
          headers: { "content-type": "text/plain" },
          body: create("forged-text"),
        });
        return "sent";
      });
      r.stop_post = await outcome(async () => {
        await fetch(`${open}/sessions/victim/stop`, { method: "POST", mode: "no-cors" });
        return "sent";
      });
      r.json_post = await outcome(async () => {
        const res = await fetch(`${open}/sessions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: create("forged-json"),
        });
        return `answered ${res.status}`;
      });
      r.delete = await outcome(async () => {
        const res = await fetch(`${open}/sessions/victim`, { method: "DELETE" });
        return `answered ${res.status}`;
      });
      r.read = await outcome(async () => {
        const res = await fetch(`${open}/sessions`);
        return `read ${res.status}: ${(await res.text()).slice(0, 80)}`;
      });
      r.websocket = await live(() => new WebSocket(`${open.replace("http", "ws")}/ws`));
      r.eventsource = await live(() => new EventSource(`${open}/sse`));
      r.guarded_read = await outcome(async () => {
        const res = await fetch(`${guarded}/sessions`, { credentials: "include" });
        return `read ${res.status}: ${(await res.text()).slice(0, 80)}`;
      });
      r.guarded_websocket = await live(() => new WebSocket(`${guarded.replace("http", "ws")}/ws`));
      return r;
    },
    { open: openUrl, guarded: tokenUrl, limit: STEP_MS / 2 },
  ),
);

// A form posts across origins as a navigation, text/plain, without CORS.
const formAnswer = await step("posting a form", async () => {
  await page.setContent(
    `<form method="post" enctype="text/plain" action="${openUrl}/sessions">` +
      `<input name='{"session_id":"forged-form","session_name":"x","pad":"' value='"}'></form>`,
  );
  const [response] = await Promise.all([
    page.waitForNavigation({ timeout: STEP_MS }),
    page.evaluate(() => document.forms[0].submit()),
  ]);
  return response?.status() ?? null;
});
result.foreign.form_post = formAnswer;

// 3. DNS rebinding: the attacker's name now points at the session manager.
const port = new URL(openUrl).port;
const rebound = `http://attacker.test:${port}`;
const landing = await step("opening the rebound name", () => page.goto(`${rebound}/`, { timeout: STEP_MS }));
result.rebinding = await step("attacking through the rebound name", () =>
  page.evaluate(async () => {
    const status = async (path, init) => {
      try {
        return (await fetch(path, init)).status;
      } catch (error) {
        return `blocked: ${error.name}`;
      }
    };
    return {
      read: await status("/sessions"),
      create: await status("/sessions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ session_id: "forged-rebind", session_name: "x" }),
      }),
      delete: await status("/sessions/victim", { method: "DELETE" }),
    };
  }),
);
result.rebinding.landing = landing?.status() ?? null;

console.log(`RESULT ${JSON.stringify(result)}`);
await context.close();
attacker.close();
rmSync(profile, { recursive: true, force: true });
process.exit(0);
