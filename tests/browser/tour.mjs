// The dashboard's whole picture in headless Chromium, for
// tests/it/dashboard_tour.rs, on a scene the test posted through the API.
//
//   node tests/browser/tour.mjs URL OUT_DIR EXPECT_JSON
//
// EXPECT_JSON: {"states": {NAME: STATE}, "tree": [[CHILD, PARENT, DEPTH]],
// "projects": [...], "agents": [...], "token": LOCAL_TOKEN}. Prints one line
// per part checked, then PASS; any failure prints "FAIL: why", saves
// OUT_DIR/tour-failure.png and exits 1. Screenshots: OUT_DIR/dashboard-1400x900.png
// and OUT_DIR/dashboard-390x844.png. Every wait has a timeout; no fixed sleeps
// but the one that shows a stopped tool call no longer ticks.

import { launch, stepper } from "./chromium.mjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [url, outDir, expectJson] = process.argv.slice(2);
if (!url || !outDir || !expectJson) {
  console.error("usage: node tour.mjs URL OUT_DIR EXPECT_JSON");
  process.exit(2);
}
const expected = JSON.parse(expectJson);
const STEP_MS = Number(process.env.DASHBOARD_STEP_TIMEOUT_MS || 20000);
const profile = mkdtempSync(join(tmpdir(), "ao-tour-chromium-"));
const problems = [];
let context = null;
let page = null;

async function fail(message) {
  console.log(`FAIL: ${message}`);
  if (problems.length) console.log(`page errors:\n  ${problems.join("\n  ")}`);
  if (page) {
    const text = await page.locator("body").innerText({ timeout: 2000 }).catch(() => "(unreadable)");
    console.log(`page text:\n${text}`);
    await page.screenshot({ path: join(outDir, "tour-failure.png"), fullPage: true }).catch(() => {});
  }
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
const step = stepper(fail);
const check = async (ok, why) => ok || (await fail(why));
const wait = (what, fn, arg) => step(what, () => page.waitForFunction(fn, arg, { timeout: STEP_MS }));

/** Watches a page for errors: its own, and answers of 400 or more (a missing favicon among them). */
function watch(p) {
  p.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
  p.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  p.on("response", (r) => r.status() >= 400 && problems.push(`${r.status()} for ${r.url()}`));
  return p;
}

function row(name) {
  return page.locator("#session-list > li").filter({ has: page.locator(".name", { hasText: new RegExp(`^${name}$`) }) });
}

async function openSession(name) {
  await step(`opening ${name}`, () => row(name).locator("button.session-open").click({ timeout: STEP_MS }));
  await wait(
    `${name}'s timeline to load`,
    (name) => document.querySelector("#timeline-title").textContent === name && !document.querySelector("#timeline").hasAttribute("aria-busy"),
    name,
  );
}

context = await step("launching Chromium", () => launch(profile, { timeout: STEP_MS, viewport: { width: 1400, height: 900 } }));
page = watch(context.pages()[0] ?? (await context.newPage()));

// ---- the loading state: the live feed is held back a moment -------------------
let release;
const held = new Promise((resolve) => (release = resolve));
await page.route("**/sse", async (route) => {
  await held;
  await route.continue();
});
await step("opening the page with the local token", () => page.goto(`${url}?token=${expected.token}`, { timeout: STEP_MS }));
await wait("the loading state", () => !document.querySelector("#sessions-loading").hidden && document.querySelectorAll("#session-list > li").length === 0);
await check(await page.locator("#sessions-empty").isHidden(), "'No sessions yet' shows while loading");
release();
const names = Object.keys(expected.states);
await wait("every session listed", (n) => document.querySelectorAll("#session-list > li").length === n && document.querySelector("#sessions-loading").hidden, names.length);
console.log("LOADING");

// ---- true statuses, each with its colour, and the filter finds each ------------
const colours = new Map();
for (const [name, state] of Object.entries(expected.states)) {
  const badge = row(name).locator(".badge");
  const shown = await badge.getAttribute("data-state");
  await check(shown === state, `${name} shows ${shown}, not ${state}`);
  colours.set(state, await badge.evaluate((b) => `${getComputedStyle(b).backgroundColor}/${getComputedStyle(b).color}`));
}
const distinct = new Set(colours.values());
await check(distinct.size === colours.size, `states share colours: ${JSON.stringify([...colours])}`);
for (const state of new Set(Object.values(expected.states))) {
  const want = names.filter((n) => expected.states[n] === state).sort();
  await page.fill("#filter", state.replace("_", " "));
  await wait(`the filter to find the ${state} sessions`, (n) => document.querySelectorAll("#session-list > li:not([hidden])").length === n, want.length);
  const got = (await page.locator("#session-list > li:not([hidden]) .name").allInnerTexts()).sort();
  await check(JSON.stringify(got) === JSON.stringify(want), `filter "${state}" shows ${got}, not ${want}`);
}
await page.fill("#filter", "finished");
const ended = names.filter((n) => !["running", "needs_input"].includes(expected.states[n])).length;
await wait("'finished' to find every ended run", (n) => document.querySelectorAll("#session-list > li:not([hidden])").length === n, ended);
await page.fill("#filter", "");
console.log("STATUSES");

// ---- parents named, a tree; cards half as tall ------------------------------------
for (const [child, parent, depth] of expected.tree) {
  const facts = await row(child).locator(".parent").innerText();
  await check(facts === `↳ ${parent}`, `${child} names its parent as ${facts}`);
  await check((await row(child).getAttribute("data-depth")) === String(depth), `${child} is not at depth ${depth}`);
  const order = await page.evaluate(
    ([child, parent]) => {
      const rows = [...document.querySelectorAll("#session-list > li")].map((li) => li.querySelector(".name").textContent);
      return rows.indexOf(child) - rows.indexOf(parent);
    },
    [child, parent],
  );
  await check(order > 0 && order <= 2, `${child} is not right under ${parent} (${order})`);
}
const heights = await page.locator("#session-list > li").evaluateAll((rows) => rows.map((r) => r.getBoundingClientRect().height));
await check(Math.max(...heights) <= 60, `cards are up to ${Math.max(...heights)} px tall`);
console.log("TREE");

// ---- cost per day, by project or agent -----------------------------------------
await wait("the cost chart", () => document.querySelectorAll("#cost-chart rect").length > 0);
const legend = async () => (await page.locator("#cost-legend .key").allInnerTexts()).sort();
for (const project of expected.projects) await check((await legend()).includes(project), `no ${project} in ${await legend()}`);
await step("splitting by agent", () => page.click(".costs .by[data-by=agent]"));
await wait("the legend by agent", (agents) => agents.every((a) => [...document.querySelectorAll("#cost-legend .key")].some((k) => k.textContent === a)), expected.agents);
const bars = await page.locator("#cost-chart rect").count();
await check(bars >= 6, `only ${bars} bars for runs on 5 days`);
console.log("CHART");

// ---- a run stopped in the middle of a tool call ----------------------------------
await openSession("long-task");
const stopped = page.locator('#events li.tool[data-tool-name="Bash"]');
await check((await stopped.getAttribute("data-state")) === "ended", "the stopped run's tool call is not shown as ended");
const said = await stopped.innerText();
await check(said.includes("not finished: the run was stopped") && said.includes("$ npm run build"), `the stopped call reads ${said}`);
await check((await stopped.locator(".elapsed[data-since]").count()) === 0, "the stopped call still ticks");
await page.waitForTimeout(1300);
await check((await stopped.innerText()) === said, "the stopped call's text changed");
await check((await page.locator("#events li.run").last().innerText()).includes("Run stopped"), "no 'Run stopped'");
await openSession("watching");
await wait("the running call to tick", () => document.querySelector('#events li.tool[data-state="running"] .elapsed[data-since]') !== null);
console.log("STOPPED");

// ---- the whole conversation, readable ---------------------------------------------
await openSession("build-api");
const item = (selector) => page.locator(`#events ${selector}`);
await check((await item('li.narration').first().innerText()).includes("I will look at the router first."), "no narration");
const thought = item("li.thinking details");
await check((await thought.count()) === 1 && !(await thought.evaluate((d) => d.open)), "the thinking is not folded");
const bash = item('li.tool[data-tool-name="Bash"]');
await check((await bash.locator("pre.command").innerText()) === "$ cargo test health", "Bash shows no command");
await check((await bash.locator("pre.stdout").innerText()).includes("test health_answers_ok ... ok"), "Bash shows no stdout");
await check((await bash.locator("pre.stderr").innerText()).includes("unused import"), "Bash shows no stderr");
const raw = bash.locator("details.raw");
await check(!(await raw.evaluate((d) => d.open)), "the raw JSON is not behind a toggle");
await check((await raw.textContent()).includes('"command": "cargo test health"'), "the raw JSON lacks the input");
const read = item('li.tool[data-tool-name="Read"]');
await check((await read.locator(".path-name").innerText()) === "/home/user/shop/src/router.rs", "Read shows no file");
const edit = item('li.tool[data-tool-name="Edit"]');
await check((await edit.locator(".line.add").first().innerText()).includes('.route("/health", get(health))'), "Edit shows no added line");
const write = item('li.tool[data-tool-name="Write"]');
await check((await write.locator(".line.add").allInnerTexts()).some((l) => l.includes("GET /health")), "Write shows no content");
const changes = item("li.changes");
await check((await changes.locator(".kind").innerText()) === "Changed 2 files (+11 −1)", `changes read ${await changes.locator(".kind").innerText()}`);
await check((await changes.locator(".line.del").count()) === 1 && (await changes.locator(".line.add").count()) === 2, "the diff is not coloured by line");
const addColour = await changes.locator(".line.add").first().evaluate((l) => getComputedStyle(l).color);
const delColour = await changes.locator(".line.del").first().evaluate((l) => getComputedStyle(l).color);
await check(addColour !== delColour, "added and removed lines look the same");
await check((await page.locator("#run-costs rect").count()) === 2, "no cost per run");
await check((await page.locator("#run-costs").innerText()).includes("$0.1800"), "the last run's cost is not shown");
const answers = await item('li[data-role="assistant"]:not([data-final])').allInnerTexts();
await check(answers.length === 2, `${answers.length} answers`);
await page.screenshot({ path: join(outDir, "dashboard-1400x900.png") });
console.log("CONVERSATION");

// ---- search ---------------------------------------------------------------------------
await page.fill("#search-box", "health rou");
await wait("search hits", () => document.querySelectorAll("#search-hits button.hit").length > 0);
const hit = page.locator("#search-hits button.hit").filter({ hasText: "prompt" }).first();
await check((await hit.locator("mark").first().innerText()).toLowerCase() === "health", "the match is not marked");
const hitSession = await hit.locator(".name").innerText();
await step("opening a hit", () => hit.click());
await wait(
  "the hit's event in its session",
  (name) => document.querySelector("#events li.found[data-role=user]") !== null && document.querySelector("#timeline-title").textContent === name,
  hitSession,
);
await check(await page.locator("#search-results").isHidden(), "the results stay open");
console.log("SEARCH");

// ---- a worktree session's branch, one click away ------------------------------------
await openSession("feature-x");
await step("asking for the branch", () => page.click("#timeline-actions .show-branch"));
await wait("the branch's diff", () => [...document.querySelectorAll("#branch .line.add")].some((l) => l.textContent.startsWith("+two")));
console.log("BRANCH");

// ---- a deep link opens a session ------------------------------------------------------
const linked = watch(await context.newPage());
page = linked;
await step("opening a deep link", () => linked.goto(`${url}#/s/fix-login`, { timeout: STEP_MS }));
await wait("the linked session", () => document.querySelector("#timeline-title").textContent === "fix-login" && document.querySelector("#events li.run.failed") !== null);
await check((await linked.locator("#events li.run.failed").innerText()).includes("overloaded"), "the failed run's error is not shown");
await linked.close();
console.log("LINK");

// ---- a phone: tapping a session shows its timeline once it has loaded -------------------
const phone = watch(await context.newPage());
page = phone;
await phone.setViewportSize({ width: 390, height: 844 });
await step("opening the page on a phone", () => phone.goto(url, { timeout: STEP_MS }));
await wait("the list on a phone", (n) => document.querySelectorAll("#session-list > li").length === n && document.querySelectorAll("#cost-chart rect").length > 0, names.length);
await phone.screenshot({ path: join(outDir, "dashboard-390x844.png") });
await step("tapping a session", () => row("build-api").locator("button.session-open").click());
await wait(
  "the timeline, loaded and scrolled to",
  () => {
    const top = document.querySelector("#timeline").getBoundingClientRect().top;
    return document.querySelectorAll("#events > li").length > 5 && !document.querySelector("#timeline").hasAttribute("aria-busy") && Math.abs(top) < 40;
  },
);
await phone.screenshot({ path: join(outDir, "dashboard-390x844-timeline.png") });
console.log("PHONE");

if (problems.length) await fail("the page reported errors");
await context.close();
rmSync(profile, { recursive: true, force: true });
console.log("PASS");
process.exit(0);
