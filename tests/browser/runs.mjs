// Runs from the dashboard with the real Claude Code CLI against the mock
// model, in headless Chromium, for tests/it/dashboard_loop_real.rs.
//
//   node tests/browser/runs.mjs URL OUT_DIR '{"token", "mode", ...}'
//
// mode "allow" ({"name", "command"}): the run "name" waits on a permission;
//   the page shows its card with the command, Allow is clicked, the decision
//   and then the run's answer appear (printed as ANSWER "text").
// mode "start" ({"project", "agent", "answer", "reply", "reply_answer"}):
//   the Hosts view lists the session manager's own host; the New session
//   form offers the project and its agent, starts a session there, which
//   is shown waiting to start and then opens with its answer live; the
//   reply box under it resumes it and the reply's answer appears.
// Prints PASS, or "FAIL: why" and exits 1.

import { harness } from "./chromium.mjs";
import { join } from "node:path";

const [url, outDir, json] = process.argv.slice(2);
const args = JSON.parse(json);
const STEP_MS = Number(process.env.DASHBOARD_STEP_TIMEOUT_MS || 60000);
const h = harness(join(outDir, `runs-${args.mode}-failure.png`), STEP_MS);
const { step, check, wait } = h;
const answered = (text) =>
  wait(`the answer "${text}"`, (t) => [...document.querySelectorAll('#events > li[data-role="assistant"]:not([data-final]) pre.text')].some((p) => p.textContent === t), text);

const page = await h.browser({ width: 1400, height: 900 });
// Every state the list of runs waiting to start showed.
await page.addInitScript(() => {
  window.__runs = [];
  new MutationObserver(() => {
    for (const li of document.querySelectorAll("#run-list > li")) {
      const seen = `${li.querySelector(".name")?.textContent}:${li.dataset.status}`;
      if (!window.__runs.includes(seen)) window.__runs.push(seen);
    }
  }).observe(document, { subtree: true, childList: true });
});
await step("signing in with the link", () => page.goto(`${url}?token=${encodeURIComponent(args.token)}`, { timeout: STEP_MS }));
await wait("the page to be live", () => document.querySelector("#conn").dataset.state === "live");

if (args.mode === "allow") {
  await step("opening the waiting session", () => page.goto(`${url}#/s/${args.name}`, { timeout: STEP_MS }));
  await wait("the permission card", () => document.querySelector("#requests .request.permission button.allow") !== null);
  await check((await page.locator("#requests pre.command").innerText()).includes(args.command), "the card does not show the command");
  await step("clicking Allow", () => page.click("#requests button.allow"));
  await wait("the card to go", () => document.querySelector("#requests .request") === null);
  await wait("the decision in the timeline", () => [...document.querySelectorAll("#events > li.decision-allow .kind")].some((k) => k.textContent.startsWith("Allowed")));
  await wait("the answer after the tool call", () =>
    [...document.querySelectorAll('#events > li[data-role="assistant"]:not([data-final]) pre.text')].some((p) => p.textContent.startsWith("The command printed")),
  );
  const answer = await page.locator('#events > li[data-role="assistant"]:not([data-final]) pre.text').last().textContent();
  console.log(`ANSWER ${JSON.stringify(answer)}`);
} else {
  await step("showing the hosts", () => page.click("#show-hosts"));
  await wait("the session manager's own host, online", () =>
    [...document.querySelectorAll("#host-list > li.host.online")].some((li) => li.textContent.includes("this machine")),
  );
  await step("opening the form", () => page.click("#new-session"));
  const form = page.locator("#new-session-form");
  await step("naming the session", () => form.locator("[name=session_name]").fill("from-page"));
  await step("choosing the project", () => form.locator("[name=project_dir]").fill(args.project));
  await form.locator("[name=project_dir]").dispatchEvent("change");
  await wait("the project's agent offered", (agent) => [...document.querySelectorAll("#project-agents option")].some((o) => o.value === agent), args.agent);
  await check((await form.locator("[name=host] option").count()) >= 2, "the form offers no host");
  await step("writing the prompt", () => form.locator("[name=prompt]").fill(args.prompt));
  await step("starting it", () => form.locator("button[type=submit]").click());
  await wait("the session to open", () => document.querySelector("#timeline-title").textContent === "from-page");
  await answered(args.answer);
  const runs = await page.evaluate(() => window.__runs);
  await check(runs.some((r) => /^from-page:(queued|starting)$/.test(r)), `the run was never shown waiting to start: ${JSON.stringify(runs)}`);
  await wait("the reply box under the finished session", () => !document.querySelector("#reply").hidden);
  await step("writing the reply", () => page.fill("#reply-text", args.reply));
  await step("sending it", () => page.click("#reply button[type=submit]"));
  await answered(args.reply_answer);
  await wait("the run list to empty", () => document.querySelector("#runs").hidden);
  await page.screenshot({ path: join(outDir, "runs.png") });
}
await h.pass();
