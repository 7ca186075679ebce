// A real run's conversation as it happens, in headless Chromium, for
// tests/it/dashboard_real.rs (the real Claude Code CLI against the mock
// model, which writes slowly).
//
//   node tests/browser/stream.mjs URL SCREENSHOT.png
//
//   -> READY            the page is live and lists no session
//   <- GO {json}        a run started: {"name", "narration", "answer", "streams"}
//   -> OPENED           its row appeared and was opened while the model writes
//   -> PASS             the narration came before the tool call; with
//                       "streams", the answer grew in the page in 3 steps or
//                       more before its event replaced it, and a page opened
//                       in the middle of it showed the text so far
// Any failure prints "FAIL: why" and exits 1.

import { launch, stepper } from "./chromium.mjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [url, screenshot] = process.argv.slice(2);
const STEP_MS = Number(process.env.DASHBOARD_STEP_TIMEOUT_MS || 30000);
const profile = mkdtempSync(join(tmpdir(), "ao-stream-chromium-"));
const problems = [];
let context = null;
let page = null;

async function fail(message) {
  console.log(`FAIL: ${message}`);
  if (problems.length) console.log(`page errors:\n  ${problems.join("\n  ")}`);
  if (page) {
    console.log(`page text:\n${await page.locator("body").innerText({ timeout: 2000 }).catch(() => "(unreadable)")}`);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-failure.png"), fullPage: true }).catch(() => {});
  }
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
const step = stepper(fail);
const check = async (ok, why) => ok || (await fail(why));

async function watch(p) {
  p.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  p.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  p.on("response", (r) => r.status() >= 400 && problems.push(`${r.status()} for ${r.url()}`));
  // Every text the "Writing…" item shows, in order.
  await p.addInitScript(() => {
    window.__drafts = [];
    new MutationObserver(() => {
      const text = document.querySelector("#events > li.draft pre")?.textContent;
      if (text && window.__drafts.at(-1) !== text) window.__drafts.push(text);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  return p;
}

const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function command(word) {
  const next = await Promise.race([stdin.next(), new Promise((r) => setTimeout(() => r({ timedOut: true }), 120000))]);
  if (next.timedOut || next.done) await fail(`no ${word} from the test`);
  const match = new RegExp(`^${word} (.*)$`).exec(next.value.trim());
  if (!match) await fail(`expected ${word}, got ${next.value}`);
  return JSON.parse(match[1]);
}

context = await step("launching Chromium", () => launch(profile, { timeout: STEP_MS, viewport: { width: 1400, height: 900 } }));
page = await watch(context.pages()[0] ?? (await context.newPage()));
await step(`opening ${url}`, () => page.goto(url, { timeout: STEP_MS }));
await step("waiting for the page to be live", () =>
  page.waitForFunction(() => document.querySelector("#conn").dataset.state === "live", null, { timeout: STEP_MS }),
);
console.log("READY");

const run = await command("GO");
const row = page.locator("#session-list > li").filter({ has: page.locator(".name", { hasText: run.name }) });
await step("opening the running session", () => row.locator("button.session-open").click({ timeout: STEP_MS }));
console.log("OPENED");

let late = null;
if (run.streams) {
  // Once the answer has begun, a page that opens now starts from the text so far.
  await step("waiting for the answer to begin", () =>
    page.waitForFunction((answer) => window.__drafts.some((t) => answer.startsWith(t)), run.answer, { timeout: STEP_MS }),
  );
  late = await watch(await context.newPage());
  await step("opening a second page in the middle of the answer", () => late.goto(`${url}#/s/${run.name}`, { timeout: STEP_MS }));
  await step("the second page showing the text so far", () =>
    late.waitForFunction(
      (answer) => {
        const text = document.querySelector("#events > li.draft pre")?.textContent;
        return text && answer.startsWith(text);
      },
      run.answer,
      { timeout: STEP_MS },
    ),
  );
}
await step("waiting for the answer", () =>
  page.waitForFunction(
    (answer) => [...document.querySelectorAll('#events > li[data-role="assistant"]:not([data-final]) pre.text')].some((p) => p.textContent === answer),
    run.answer,
    { timeout: STEP_MS },
  ),
);
await check((await page.locator("#events > li.draft").count()) === 0, "the draft stays beside the answer");
const order = await page.evaluate(() =>
  [...document.querySelectorAll("#events > li")].map((li) => (li.classList.contains("tool") ? "tool" : li.classList.contains("narration") ? "narration" : li.dataset.type)),
);
const narration = order.indexOf("narration");
await check(narration > 0 && narration < order.indexOf("tool"), `the narration is not before the tool call: ${order}`);
await check(
  (await page.locator("#events > li.narration pre.text").innerText()) === run.narration,
  "the narration reads otherwise",
);
if (run.streams) {
  const steps = await page.evaluate((answer) => window.__drafts.filter((t) => answer.startsWith(t)), run.answer);
  await check(steps.length >= 3, `the answer grew in ${steps.length} steps: ${JSON.stringify(steps)}`);
  await check(steps.every((t, i) => i === 0 || t.length > steps[i - 1].length), `the answer did not only grow: ${JSON.stringify(steps)}`);
  await step("the second page getting the answer", () =>
    late.waitForFunction(
      (answer) => [...document.querySelectorAll('#events > li[data-role="assistant"] pre.text')].some((p) => p.textContent === answer),
      run.answer,
      { timeout: STEP_MS },
    ),
  );
  console.log(`STEPS ${steps.length}`);
}
await page.screenshot({ path: screenshot });
if (problems.length) await fail("the page reported errors");
await context.close();
rmSync(profile, { recursive: true, force: true });
console.log("PASS");
process.exit(0);
