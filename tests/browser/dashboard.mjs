// Drives the dashboard in headless Chromium for tests/it/dashboard_browser.rs.
//
//   node tests/browser/dashboard.mjs URL SCREENSHOT.png
//
// A conversation over stdin/stdout with the Rust test, one line each:
//   -> READY            the page is loaded, live, and lists no session
//   <- GO {json}        a run was made: {"name", "prompt", "result", "tools"}
//   -> OPENED           its row reached "completed" and its timeline shows the run
//   <- GO {json}        the session was resumed with another run
//   -> RESUMED          the second run appeared live in the open timeline;
//                       screenshots saved (SCREENSHOT.png, SCREENSHOT-phone.png)
//                       (the row shows both runs' cost, the header their total,
//                       and the filter box narrows the list)
//   <- STOP {json}      another session {"name"} is running a slow tool call
//   -> STOPPED          its row ticked its running time, its timeline showed the
//                       tool as running until it finished, the filter found it by
//                       status; its Stop button was clicked and the row turned stopped
//   <- CHILD {json}     a session {"child"} was started by session {"parent"}'s run
//   -> CHILDREN         its row sits right under its parent's, indented, "↳ PARENT" (and "forked from PARENT")
//   <- FORK {json}      a session {"fork"} was forked from {"origin"} by no session's run
//   -> FORKED           its row sits under its origin's (beside the child), indented,
//                       "forked from ORIGIN", no "↳"; the filter finds it by its origin's name
//   -> PASS             the delete button removed the first session
// Any failure prints "FAIL: why", saves SCREENSHOT-failure.png and exits 1.
// Every wait has a timeout; there are no fixed sleeps.

import { launch, stepper } from "./chromium.mjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot?.endsWith(".png")) {
  console.error("usage: node dashboard.mjs URL SCREENSHOT.png");
  process.exit(2);
}
const phoneScreenshot = screenshot.replace(/\.png$/, "-phone.png");
const STEP_MS = Number(process.env.DASHBOARD_STEP_TIMEOUT_MS || 20000);
const COMMAND_MS = 120000;

let context = null;
let page = null;
const profile = mkdtempSync(join(tmpdir(), "ao-dashboard-chromium-"));
const problems = []; // errors the page itself reported

async function fail(message) {
  console.log(`FAIL: ${message}`);
  if (problems.length) console.log(`page errors:\n  ${problems.join("\n  ")}`);
  if (page) {
    const text = await page.locator("body").innerText({ timeout: 2000 }).catch(() => "(unreadable)");
    console.log(`page text:\n${text}`);
    await page.screenshot({ path: screenshot.replace(/\.png$/, "-failure.png"), fullPage: true }).catch(() => {});
  }
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}

/** Runs one step; a timeout or error becomes a failure naming the step. */
const step = stepper(fail);

const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Waits for `GO {json}` from the Rust test and answers the JSON. */
async function waitForGo() {
  return waitForCommand("GO");
}

/** Waits for `WORD {json}` from the Rust test and answers the JSON. */
async function waitForCommand(word) {
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve({ timedOut: true }), COMMAND_MS)));
  const next = await Promise.race([stdin.next(), timeout]);
  clearTimeout(timer);
  if (next.timedOut) await fail(`no ${word} from the test in time`);
  if (next.done) await fail(`stdin closed before ${word}`);
  const match = new RegExp(`^${word} (.*)$`).exec(next.value.trim());
  if (!match) await fail(`expected ${word}, got ${JSON.stringify(next.value)}`);
  return JSON.parse(match[1]);
}

/** The timeline as data, read from the page. */
function readTimeline() {
  return page.evaluate(() =>
    [...document.querySelectorAll("#events > li:not([hidden])")].map((li) => ({
      id: Number(li.dataset.eventId),
      type: li.classList.contains("tool") ? "tool" : li.dataset.type,
      role: li.dataset.role ?? null,
      head: li.querySelector(".event-head")?.innerText ?? "",
      text: li.querySelector("pre.text")?.innerText ?? null,
      command: li.querySelector("pre.command")?.innerText ?? null,
      stdout: li.querySelector("pre.stdout")?.innerText ?? null,
      all: li.innerText, // what shows
      content: li.textContent, // with collapsed blocks too
      html: li.querySelector("b, script, img") !== null,
    })),
  );
}

/** Waits until the open timeline holds the runs in `runs`, in order. */
async function waitForRuns(runs) {
  const expected = runs.flatMap((run) => [
    "run_start",
    "message:user",
    ...Array(run.tools).fill("tool"),
    "message:assistant",
    "run_completed",
  ]);
  const shape = (events) => events.map((e) => (e.role ? `${e.type}:${e.role}` : e.type));
  await step(`waiting for the timeline to show ${expected.join(", ")}`, () =>
    page.waitForFunction(
      (want) => [...document.querySelectorAll("#events > li:not([hidden])")].length >= want,
      expected.length,
      { timeout: STEP_MS },
    ),
  );
  const events = await readTimeline();
  if (JSON.stringify(shape(events)) !== JSON.stringify(expected)) {
    await fail(`timeline is ${shape(events).join(", ")}; expected ${expected.join(", ")}`);
  }
  const ids = events.map((e) => e.id);
  if (ids.some((id, i) => i > 0 && id <= ids[i - 1])) await fail(`events out of order or repeated: ${ids}`);
  if (events.some((e) => e.html)) await fail("event text was rendered as HTML");
  const prompts = events.filter((e) => e.role === "user").map((e) => e.text);
  const results = events.filter((e) => e.role === "assistant").map((e) => e.text);
  for (const [i, run] of runs.entries()) {
    if (prompts[i] !== run.prompt) await fail(`prompt ${i + 1} reads ${JSON.stringify(prompts[i])}`);
    if (results[i] !== run.result) await fail(`result ${i + 1} reads ${JSON.stringify(results[i])}`);
  }
  const tools = events.filter((e) => e.type === "tool");
  for (const [i, tool] of tools.entries()) {
    if (!tool.head.includes("Tool call · Bash")) await fail(`tool call ${i + 1} is titled ${tool.head}`);
    if (!/^\$ echo tool-\d+$/.test(tool.command)) await fail(`tool call ${i + 1} shows no command: ${tool.all}`);
    if (!/"command": "echo tool-\d+"/.test(tool.content)) await fail(`tool call ${i + 1} has no raw input: ${tool.content}`);
    if (!/^tool-\d+$/.test(tool.stdout)) await fail(`tool call ${i + 1} shows no output: ${tool.all}`);
  }
  for (const [i, done] of events.filter((e) => e.type === "run_completed").entries()) {
    if (!done.all.includes("exit code 0 · completed")) await fail(`run end reads ${JSON.stringify(done.all)}`);
    const turns = `${runs[i].tools + 1} turns`;
    if (!done.all.includes(runs[i].cost) || !done.all.includes(turns)) {
      await fail(`run end ${i + 1} shows no ${runs[i].cost} or ${turns}: ${JSON.stringify(done.all)}`);
    }
  }
}

function row(name) {
  return page.locator("#session-list > li").filter({ has: page.locator(".name", { hasText: name }) });
}

/** Waits until session `name` is listed as `state` (and, given `since`,
 * with a time other than that one: resumed since). */
async function waitForRow(name, state = "completed", since = null) {
  await step(`waiting for session ${name} to be listed as ${state}`, () =>
    page.waitForFunction(
      ([name, state, since]) =>
        [...document.querySelectorAll("#session-list > li")].some(
          (li) =>
            li.querySelector(".name")?.textContent === name &&
            li.querySelector(".badge")?.textContent === state &&
            (!since || li.querySelector("time")?.getAttribute("datetime") !== since),
        ),
      [name, state, since],
      { timeout: STEP_MS },
    ),
  );
}

context = await step("launching Chromium", () =>
  launch(profile, { timeout: STEP_MS, viewport: { width: 1280, height: 800 } }),
);
page = context.pages()[0] ?? (await context.newPage());
page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
page.on("console", (message) => {
  if (message.type() === "error") {
    problems.push(`console: ${message.text()}`);
  }
});
let loads = 0;
page.on("load", () => loads++);

await step(`opening ${url}`, () => page.goto(url, { timeout: STEP_MS }));
await step("waiting for the page to be live with no sessions", () =>
  page.waitForFunction(
    () =>
      document.querySelector("#conn")?.dataset.state === "live" &&
      document.querySelectorAll("#session-list > li").length === 0 &&
      !document.querySelector("#sessions-empty").hidden,
    null,
    { timeout: STEP_MS },
  ),
);
// Gone if the page reloads; checked at the end.
await page.evaluate(() => (window.__loadId = "first-load"));
console.log("READY");

const first = await waitForGo();
await waitForRow(first.name);
await step("opening the session", () => row(first.name).locator("button.session-open").click({ timeout: STEP_MS }));
await waitForRuns([first]);
const createdAt = await row(first.name).locator("time").getAttribute("datetime");
console.log("OPENED");

const second = await waitForGo();
// The resume shows live: the row gets the resume's time, the timeline grows.
await waitForRow(first.name, "completed", createdAt);
// The first run's figures came with the first GO; the second GO carries the second's.
await waitForRuns([first, second]);
await step("waiting for the row's totals", () =>
  page.waitForFunction(
    ([name, cost]) =>
      [...document.querySelectorAll("#session-list > li")].some(
        (li) =>
          li.querySelector(".name")?.textContent === name &&
          li.querySelector(".runs")?.textContent === "2" &&
          li.querySelector(".cost")?.textContent === cost,
      ) && document.querySelector("#sessions-total").textContent.startsWith(cost),
    [first.name, second.total],
    { timeout: STEP_MS },
  ),
);
await step("filtering the list", async () => {
  await page.fill("#filter", "no-such-session");
  await page.waitForFunction(() => !document.querySelector("#sessions-none-match").hidden, null, { timeout: STEP_MS });
  await page.fill("#filter", first.name.slice(0, 6));
  await page.waitForFunction(() => document.querySelector("#sessions-none-match").hidden, null, { timeout: STEP_MS });
  await page.fill("#filter", "");
});

await step("saving the laptop screenshot", () => page.screenshot({ path: screenshot, fullPage: true }));
await page.setViewportSize({ width: 390, height: 844 });
await step("waiting for the phone layout", () =>
  page.waitForFunction(() => getComputedStyle(document.querySelector(".layout")).gridTemplateColumns.split(" ").length === 1, null, {
    timeout: STEP_MS,
  }),
);
await step("saving the phone screenshot", () => page.screenshot({ path: phoneScreenshot, fullPage: true }));
await page.setViewportSize({ width: 1280, height: 800 });
console.log("RESUMED");

const running = await waitForCommand("STOP");
await step(`waiting for ${running.name} to be listed as running with a Stop button`, () =>
  row(running.name).locator("button.stop:not([hidden])").waitFor({ timeout: STEP_MS }),
);
await step("filtering by status", async () => {
  await page.fill("#filter", "running");
  await page.waitForFunction(
    () => [...document.querySelectorAll("#session-list > li")].filter((li) => !li.hidden).length === 1,
    null,
    { timeout: STEP_MS },
  );
  if (!(await row(running.name).isVisible())) await fail("the running session is filtered out");
  if (!(await page.locator("#session-count").innerText()).includes("1 of 2")) await fail("the count does not say 1 of 2");
  await page.fill("#filter", "");
});
const ticking = row(running.name).locator(".elapsed");
const before = await step("reading the running time", () => ticking.innerText({ timeout: STEP_MS }));
await step("waiting for the running time to tick", () =>
  page.waitForFunction(
    ([name, before]) =>
      [...document.querySelectorAll("#session-list > li")].some(
        (li) => li.querySelector(".name")?.textContent === name && li.querySelector(".elapsed")?.textContent !== before,
      ),
    [running.name, before],
    { timeout: STEP_MS },
  ),
);
await step("opening the running session", () => row(running.name).locator("button.session-open").click({ timeout: STEP_MS }));
await step("waiting for its tool call to show as running", () =>
  page.locator('#events > li.running:not([hidden])').filter({ hasText: "Tool running · Bash" }).waitFor({ timeout: STEP_MS }),
);
await step("waiting for the tool call to finish", () =>
  page.waitForFunction(
    () =>
      document.querySelectorAll('#events > li.tool[data-state="running"]').length === 0 &&
      document.querySelectorAll('#events > li.tool[data-state="done"]').length === 1,
    null,
    { timeout: STEP_MS },
  ),
);
await step("clicking Stop", () => row(running.name).locator("button.stop").click({ timeout: STEP_MS }));
await waitForRow(running.name, "stopped");
if (await row(running.name).locator("button.stop").isVisible()) await fail("a stopped session still shows Stop");
await step("waiting for the stopped run in its timeline", () =>
  page.waitForFunction(
    () => [...document.querySelectorAll("#events > li")].some((li) => li.innerText.includes("Run stopped")),
    null,
    { timeout: STEP_MS },
  ),
);
await step("going back to the first session", () => row(first.name).locator("button.session-open").click({ timeout: STEP_MS }));
console.log("STOPPED");

const family = await waitForCommand("CHILD");
await step("waiting for the child session under its parent", () =>
  page.waitForFunction(
    ({ parent, child }) => {
      const rows = [...document.querySelectorAll("#session-list > li")];
      const name = (li) => li.querySelector(".name")?.textContent;
      const at = rows.findIndex((li) => name(li) === parent);
      const next = rows[at + 1];
      return (
        at >= 0 &&
        next &&
        name(next) === child &&
        next.classList.contains("child") &&
        next.querySelector(".parent")?.textContent === `↳ ${parent}` &&
        next.querySelector(".origin")?.textContent === `forked from ${parent}` &&
        !rows[at].classList.contains("child")
      );
    },
    family,
    { timeout: STEP_MS },
  ),
);
console.log("CHILDREN");

const fork = await waitForCommand("FORK");
await step("waiting for the fork beside its origin", () =>
  page.waitForFunction(
    ({ origin, fork }) => {
      const rows = [...document.querySelectorAll("#session-list > li")];
      const name = (li) => li.querySelector(".name")?.textContent;
      const at = rows.findIndex((li) => name(li) === origin);
      // Among the rows under the origin (its children and forks).
      let end = at + 1;
      while (end < rows.length && rows[end].dataset.depth !== "0") end++;
      const next = rows.slice(at + 1, end).find((li) => name(li) === fork);
      return (
        at >= 0 &&
        next &&
        next.classList.contains("child") &&
        next.classList.contains("fork") &&
        next.dataset.depth === "1" &&
        !next.querySelector(".parent") &&
        next.querySelector(".origin")?.textContent === `forked from ${origin}`
      );
    },
    fork,
    { timeout: STEP_MS },
  ),
);
await page.fill("#filter", fork.origin);
const found = await page.evaluate(() =>
  [...document.querySelectorAll("#session-list > li:not([hidden]) .name")].map((n) => n.textContent),
);
if (!found.includes(fork.fork)) await fail(`the filter "${fork.origin}" does not find the fork (it shows ${found.join(", ")})`);
await page.fill("#filter", "");
console.log("FORKED");

page.once("dialog", (dialog) => dialog.accept());
await step("deleting the session", () => row(first.name).locator("button.delete").click({ timeout: STEP_MS }));
await step("waiting for the session to leave the list", () =>
  page.waitForFunction(
    (name) =>
      ![...document.querySelectorAll("#session-list .name")].some((n) => n.textContent === name) &&
      document.querySelectorAll("#events > li").length === 0 &&
      document.querySelector("#timeline-empty").textContent.includes("deleted"),
    first.name,
    { timeout: STEP_MS },
  ),
);

const loadId = await page.evaluate(() => window.__loadId);
if (loadId !== "first-load" || loads !== 1) await fail(`the page was reloaded (loads: ${loads})`);
if (problems.length) await fail("the page reported errors");
await context.close();
rmSync(profile, { recursive: true, force: true });
console.log("PASS");
process.exit(0);
