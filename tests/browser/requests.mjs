// A person in the loop in headless Chromium, for tests/it/dashboard_requests.rs
// (the fake CLI's runs under --permission-mode default).
//
//   node tests/browser/requests.mjs URL OUT_DIR '{"token": TOKEN}'
//
// The test starts "ask" (a Bash call that writes a file) and "quiz" (a
// question) and waits until both wait, then starts this script:
//   -> NO_TOKEN     a page without the token shows both requests, says how to
//                   get the link in place of the buttons, counts them in the
//                   header, and badges the sessions "needs you"
//   -> ASKED_ONCE   a signed-in phone-size page asked once for permission to
//                   notify (not again after a reload)
//   -> ANSWERED     the question's options were buttons; "blue" answered it
//   -> DENIED       Deny with a message sent it (the tab in the background
//                   then notified the end of the run)
//   <- LATER {}     the test started "later" (a Bash call that writes)
//   -> ALWAYS       the background tab notified that "later" needs you, and
//                   "Always allow" (with the CLI's suggestion) allowed it
//   -> PASS
// Screenshots at 390x844 of both cards: request-390x844.png, question-390x844.png.
// Any failure prints "FAIL: why" and exits 1.

import { harness } from "./chromium.mjs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [url, outDir, expectJson] = process.argv.slice(2);
const { token } = JSON.parse(expectJson);
const STEP_MS = Number(process.env.DASHBOARD_STEP_TIMEOUT_MS || 30000);
const h = harness(join(outDir, "requests-failure.png"), STEP_MS);
const { step, check, wait, fail } = h;
let page = null;

const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function command(word) {
  const next = await Promise.race([stdin.next(), new Promise((r) => setTimeout(() => r({ timedOut: true }), 120000))]);
  if (next.timedOut || next.done) await fail(`no ${word} from the test`);
  if (!next.value.startsWith(`${word} `)) await fail(`expected ${word}, got ${next.value}`);
}

const card = () => page.locator("#requests .request");
const live = () => wait("the page to be live", () => document.querySelector("#conn").dataset.state === "live");

// ---- without the token: the requests, and how to get the link ----------------
page = await h.browser({ width: 1400, height: 900 });
await step("opening ask", () => page.goto(`${url}#/s/ask`, { timeout: STEP_MS }));
await live();
await wait("the request card", () => document.querySelector("#requests .request.permission") !== null);
await check((await card().locator("pre.command").innerText()).includes("out.txt"), "the card does not show the command");
await check((await card().locator(".access-note").innerText()).includes("ao-dashboard"), "the card does not say how to get the link");
await check((await card().locator("button").count()) === 0, "a page without the token offers buttons");
await wait("the header to count two sessions waiting", () => document.querySelector("#needs-you").textContent === "2 need you");
for (const name of ["ask", "quiz"]) {
  const badge = page.locator("#session-list > li").filter({ has: page.locator(".name", { hasText: new RegExp(`^${name}$`) }) }).locator(".badge");
  await check((await badge.innerText()) === "needs you", `${name} is not badged "needs you"`);
}
await step("the header count filtering the waiting sessions", () => page.click("#needs-you"));
await wait("only the waiting sessions listed", () => document.querySelectorAll("#session-list > li:not([hidden])").length === 2);
console.log("NO_TOKEN");

// ---- signed in, on a phone, asked once to notify -----------------------------------
page = await h.browser({ width: 390, height: 844 }, () => {
  window.__asked = 0;
  window.__notes = [];
  window.__visibility = "visible";
  class FakeNotification {
    static permission = "default";
    static requestPermission() {
      window.__asked += 1;
      return Promise.resolve("default");
    }
    constructor(title, options) {
      window.__notes.push({ title, ...options });
    }
  }
  window.Notification = FakeNotification;
  Object.defineProperty(document, "visibilityState", { get: () => window.__visibility });
});
await step("signing in with the link", () => page.goto(`${url}?token=${encodeURIComponent(token)}`, { timeout: STEP_MS }));
await live();
await step("a first click", () => page.click("#sessions-title"));
await step("a second click", () => page.click("#sessions-title"));
await check((await page.evaluate(() => window.__asked)) === 1, "the page did not ask exactly once");
await step("reloading", () => page.reload({ timeout: STEP_MS }));
await live();
await step("a click after the reload", () => page.click("#sessions-title"));
await check((await page.evaluate(() => window.__asked)) === 0, "the page asked again after a reload");
console.log("ASKED_ONCE");

// ---- a question: its options are buttons ------------------------------------------
await step("opening quiz", () => page.goto(`${url}#/s/quiz`, { timeout: STEP_MS }));
await wait("the question card with its options", () => document.querySelectorAll("#requests .request.question button.option").length === 2);
await check((await card().innerText()).includes("Which colour?"), "the question is not shown");
await step("showing the card", () => card().scrollIntoViewIfNeeded());
await page.screenshot({ path: join(outDir, "question-390x844.png") });
await step("choosing blue", () => card().locator("button.option", { hasText: "blue" }).click());
await wait("the question card to go", () => document.querySelector("#requests .request") === null);
console.log("ANSWERED");

// ---- a permission: Deny with a message, from a phone ---------------------------------
await step("opening ask", () => page.goto(`${url}#/s/ask`, { timeout: STEP_MS }));
await wait("the permission card with its buttons", () => document.querySelector("#requests .request.permission button.allow") !== null);
await check((await card().locator("button.always").count()) === 1, "no Always allow for a request with suggestions");
await check((await card().locator("button.always").innerText()).includes("Bash("), "Always allow does not say what it allows");
await check((await page.evaluate(() => document.documentElement.scrollWidth)) <= 390, "the page is wider than the phone");
const box = await card().boundingBox();
await check(box && box.x >= 0 && box.x + box.width <= 390, "the card does not fit the phone");
await step("showing the card", () => card().scrollIntoViewIfNeeded());
await page.screenshot({ path: join(outDir, "request-390x844.png") });
await page.evaluate(() => {
  window.Notification.permission = "granted";
  window.__visibility = "hidden";
});
await step("writing why not", () => card().locator("input.deny-message").fill("not in this folder"));
await step("denying", () => card().locator("button.deny").click());
await wait("the card to go", () => document.querySelector("#requests .request") === null);
await wait("a notification that ask's run ended", () => window.__notes.some((n) => n.title === "ask: run completed"));
console.log("DENIED");

// ---- a new request while the tab is in the background; Always allow -------------------
await command("LATER");
await wait("a notification that later needs you", () => window.__notes.some((n) => n.title === "later needs you"));
await page.evaluate(() => (window.__visibility = "visible"));
await step("opening later", () => page.goto(`${url}#/s/later`, { timeout: STEP_MS }));
await wait("later's card", () => document.querySelector("#requests .request.permission button.always") !== null);
await step("always allowing", () => card().locator("button.always").click());
await wait("later's card to go", () => document.querySelector("#requests .request") === null);
console.log("ALWAYS");

await h.pass();
