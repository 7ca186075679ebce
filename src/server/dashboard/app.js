// The dashboard: the session list and one session's timeline, kept up to date
// from the server's /sse feed. Event data only ever enters the page as text
// (textContent and text nodes, never parsed as markup), so nothing a session
// says can run here.
"use strict";

const $ = (id) => document.getElementById(id);
const CLIP = 3000; // characters of a tool's input or output shown before "Show all"
const TEXT_CLIP = 20000; // the same for prompts and results
const NARROW = matchMedia("(max-width: 699px)");

const sessions = new Map(); // session_id -> session
const rows = new Map(); // session_id -> <li>
let open = null; // the session whose timeline is shown: {id, events: Map(id -> event)}

// ---- DOM helpers ----------------------------------------------------------

/** Makes an element; `text` sets textContent, `on*` adds listeners. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

const listTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dayTime = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "medium" });
const clockTime = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** A <time> in the viewer's local time (compact: the time alone if today); the full date and zone on hover. */
function timeEl(iso, compact = false) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return el("span", { class: "none", text: iso || "—" });
  const today = date.toDateString() === new Date().toDateString();
  const format = compact ? (today ? clockTime : dayTime) : listTime;
  const title = date.toLocaleString(undefined, { timeZoneName: "short" });
  return el("time", { datetime: iso, title, text: format.format(date) });
}

function badge(status) {
  return el("span", { class: `badge status-${status}`, text: status });
}

/** Text in a <pre>, cut at `limit` characters with a button to show the rest. */
function clipped(text, limit, cls) {
  if (text.length <= limit) return el("pre", { class: cls, text });
  const pre = el("pre", { class: cls, text: `${text.slice(0, limit)}…` });
  const more = el("button", {
    type: "button",
    class: "show-all",
    text: `Show all (${text.length.toLocaleString()} characters)`,
  });
  more.addEventListener("click", () => {
    pre.textContent = text;
    more.remove();
  });
  return el("div", {}, pre, more);
}

function notice(message) {
  const box = $("notice");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(notice.timer);
  notice.timer = setTimeout(() => (box.hidden = true), 10000);
}

async function api(path, options = {}) {
  const response = await fetch(path, { headers: { accept: "application/json" }, ...options });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.detail || `${response.status} ${response.statusText}`);
  return body;
}

// ---- the session list -----------------------------------------------------

function newerFirst(a, b) {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || a.session_id.localeCompare(b.session_id);
}

function fact(label, value) {
  return el("span", { class: "fact" }, el("span", { class: "label", text: `${label} ` }), value);
}

/** Dollars, with more digits for the small sums single runs cost. */
function money(cost) {
  if (cost === null || cost === undefined) return "—";
  const digits = cost >= 1 ? 2 : cost >= 0.01 ? 4 : 6;
  return `$${cost.toFixed(digits)}`;
}

function tokens(usage) {
  if (!usage) return "—";
  const n = (x) => (x ?? 0).toLocaleString();
  return `${n(usage.input_tokens)} in · ${n(usage.output_tokens)} out`;
}

/** "1 h 2 min", "3 min 4 s", "5.6 s", "78 ms". */
function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A span whose text is the time since `iso`, kept ticking by tick(). */
function elapsedEl(iso, prefix = "") {
  const span = el("span", { class: "elapsed", "data-since": iso, "data-prefix": prefix });
  span.textContent = `${prefix}${duration(Date.now() - Date.parse(iso))}`;
  return span;
}

function tick() {
  for (const span of document.querySelectorAll(".elapsed[data-since]")) {
    span.textContent = `${span.dataset.prefix}${duration(Date.now() - Date.parse(span.dataset.since))}`;
  }
}
setInterval(tick, 1000);

function fillRow(li, s) {
  const [openButton, stopButton, deleteButton] = li.children;
  openButton.replaceChildren(
    el("span", { class: "row-head" }, el("span", { class: "name", text: s.session_name }), badge(s.status)),
    el("span", { class: "path", title: s.project_dir || "", text: s.project_dir || "no project folder" }),
    el(
      "span",
      { class: "facts" },
      fact("agent", el("span", { class: "agent", text: s.agent_name || "—" })),
      s.branch && fact("branch", el("span", { class: "branch", title: s.worktree || "", text: s.branch })),
      s.parent_session_id &&
        fact(
          "started by",
          el("span", { class: "parent", text: sessions.get(s.parent_session_id)?.session_name || s.parent_session_id }),
        ),
      s.forked_from &&
        fact("forked from", el("span", { class: "origin", text: sessions.get(s.forked_from)?.session_name || s.forked_from })),
      fact("created", timeEl(s.created_at)),
      fact("resumed", s.last_resumed_at ? timeEl(s.last_resumed_at) : el("span", { class: "none", text: "—" })),
    ),
    el(
      "span",
      { class: "facts totals" },
      fact("runs", el("span", { class: "runs", text: String(s.num_runs ?? 0) })),
      fact("cost", el("span", { class: "cost", text: money(s.cost_usd) })),
      fact("tokens", el("span", { class: "tokens", text: tokens(s.usage) })),
      s.status === "running" && fact("running for", elapsedEl(s.last_resumed_at || s.created_at)),
    ),
  );
  openButton.setAttribute("aria-current", String(open?.id === s.session_id));
  stopButton.hidden = s.status !== "running";
  stopButton.disabled = false;
  stopButton.setAttribute("aria-label", `Stop the run of session ${s.session_name}`);
  deleteButton.setAttribute("aria-label", `Delete session ${s.session_name}`);
}

function upsertSession(s) {
  sessions.set(s.session_id, s);
  let li = rows.get(s.session_id);
  if (!li) {
    const id = s.session_id;
    li = el(
      "li",
      { class: "session", "data-session-id": id },
      el("button", { type: "button", class: "session-open", onclick: () => openSession(id) }),
      el("button", { type: "button", class: "stop", onclick: (e) => stopSession(id, e.currentTarget) }, "Stop"),
      el("button", { type: "button", class: "delete", onclick: () => deleteSession(id) }, "Delete"),
    );
    rows.set(id, li);
  }
  fillRow(li, s);
  placeRow(li, s);
  // Children that arrived before their parent go under it now.
  for (const [id, child] of sessions) {
    if (child.parent_session_id === s.session_id && rows.has(id)) placeRow(rows.get(id), child);
  }
  if (open?.id === s.session_id) showHead(s);
  applyFilter(li, s);
  showCount();
}

/** Puts a row in its place: newest first, a child session right under its
 * parent (newest child first). Moves it only when it is out of place, so a
 * focused button keeps focus. */
function placeRow(li, s) {
  const list = $("session-list");
  const parent = s.parent_session_id ? rows.get(s.parent_session_id) : null;
  const underParent = parent?.parentNode === list;
  li.classList.toggle("child", underParent);
  let before = null;
  if (underParent) {
    before = parent.nextElementSibling;
    while (
      before &&
      before.classList.contains("child") &&
      (before === li || newerFirst(sessions.get(before.dataset.sessionId), s) < 0)
    ) {
      before = before.nextElementSibling;
    }
  } else {
    for (const other of list.children) {
      if (other !== li && !other.classList.contains("child") && newerFirst(s, sessions.get(other.dataset.sessionId)) < 0) {
        before = other;
        break;
      }
    }
  }
  if (li.parentNode !== list || li.nextElementSibling !== before) list.insertBefore(li, before);
}

/** The text the filter box searches in a session. */
function searchable(s) {
  return [s.session_name, s.project_dir, s.agent_name, s.branch, s.status].filter(Boolean).join("\n").toLowerCase();
}

function applyFilter(li, s) {
  const words = $("filter").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const text = searchable(s);
  li.hidden = !words.every((w) => text.includes(w));
}

function refilter() {
  for (const [id, li] of rows) applyFilter(li, sessions.get(id));
  showCount();
}

function removeSession(id) {
  sessions.delete(id);
  rows.get(id)?.remove();
  rows.delete(id);
  if (open?.id === id) closeTimeline("This session was deleted.");
  showCount();
}

function replaceSessions(list) {
  const keep = new Set(list.map((s) => s.session_id));
  for (const id of [...sessions.keys()]) if (!keep.has(id)) removeSession(id);
  for (const s of list) upsertSession(s);
  showCount();
}

function showCount() {
  const shown = [...rows].filter(([, li]) => !li.hidden).map(([id]) => sessions.get(id));
  $("session-count").textContent = !sessions.size
    ? ""
    : shown.length === sessions.size
      ? `(${sessions.size})`
      : `(${shown.length} of ${sessions.size})`;
  $("sessions-empty").hidden = sessions.size > 0;
  $("sessions-none-match").hidden = !sessions.size || shown.length > 0;
  const cost = shown.reduce((sum, s) => sum + (s.cost_usd ?? 0), 0);
  const runs = shown.reduce((sum, s) => sum + (s.num_runs ?? 0), 0);
  const input = shown.reduce((sum, s) => sum + (s.usage?.input_tokens ?? 0), 0);
  const output = shown.reduce((sum, s) => sum + (s.usage?.output_tokens ?? 0), 0);
  $("sessions-total").textContent = shown.length
    ? `${money(cost)} · ${runs.toLocaleString()} runs · ${tokens({ input_tokens: input, output_tokens: output })} tokens`
    : "";
}

/** Asks the session's runner to stop its run; the row turns finished when it has. */
async function stopSession(id, button) {
  const s = sessions.get(id);
  if (!s) return;
  button.disabled = true;
  try {
    await api(`sessions/${encodeURIComponent(id)}/stop`, { method: "POST" });
  } catch (error) {
    button.disabled = false;
    notice(`Could not stop ${s.session_name}: ${error.message}`);
  }
}

async function deleteSession(id) {
  const s = sessions.get(id);
  if (!s || !confirm(`Delete the session "${s.session_name}" and all its events?`)) return;
  try {
    await api(`sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (error) {
    notice(`Could not delete ${s.session_name}: ${error.message}`);
  }
}

// ---- the timeline ---------------------------------------------------------

function showHead(s) {
  if (open?.id === s.session_id) {
    const wasRunning = open.running;
    open.running = s.status === "running";
    if (wasRunning && !open.running) settleTools();
  }
  $("timeline-title").textContent = s.session_name;
  const status = $("timeline-status");
  status.className = `badge status-${s.status}`;
  status.textContent = s.status;
  status.hidden = false;
  $("timeline-meta").textContent = [
    s.project_dir,
    s.agent_name && `agent ${s.agent_name}`,
    s.branch && `branch ${s.branch} in ${s.worktree}`,
    s.forked_from && `forked from ${sessions.get(s.forked_from)?.session_name || s.forked_from}`,
    s.session_id,
  ]
    .filter(Boolean)
    .join(" · ");
}

function closeTimeline(message) {
  open = null;
  $("events").replaceChildren();
  $("timeline-title").textContent = "Timeline";
  $("timeline-status").hidden = true;
  $("timeline-meta").textContent = "";
  $("timeline-empty").textContent = message;
  $("timeline-empty").hidden = false;
}

function openSession(id) {
  const s = sessions.get(id);
  if (!s) return;
  if (open?.id !== id) {
    open = { id, events: new Map(), running: s.status === "running" };
    $("events").replaceChildren();
    $("timeline-empty").textContent = "Loading…";
    $("timeline-empty").hidden = false;
  }
  for (const [rowId, li] of rows) li.firstElementChild.setAttribute("aria-current", String(rowId === id));
  showHead(s);
  if (NARROW.matches) $("timeline").scrollIntoView({ block: "start" });
  loadEvents();
}

/** Fetches the open session's events and merges them with those seen live. */
async function loadEvents() {
  const shown = open;
  if (!shown) return;
  try {
    const answer = await api(`sessions/${encodeURIComponent(shown.id)}/events`);
    if (open !== shown) return;
    for (const event of answer.events) addEvent(event);
    if (!shown.events.size) $("timeline-empty").textContent = "No events yet.";
  } catch (error) {
    if (open === shown) notice(`Could not load the events: ${error.message}`);
  }
}

/** Adds one stored event to the open timeline, in id order, once. */
function addEvent(event) {
  if (!open || event.session_id !== open.id || open.events.has(event.id)) return;
  open.events.set(event.id, event);
  const list = $("events");
  let before = null;
  for (let c = list.lastElementChild; c && Number(c.dataset.eventId) > event.id; c = c.previousElementSibling) {
    before = c;
  }
  list.insertBefore(eventItem(event), before);
  $("timeline-empty").hidden = true;
  settleTools();
}

/** A tool call shows as running from its pre_tool until its post_tool
 * arrives; then the post_tool tells the whole story and the running item goes. */
function settleTools() {
  const done = new Set();
  for (const e of open.events.values()) if (e.event_type === "post_tool" && e.tool_use_id) done.add(e.tool_use_id);
  for (const li of $("events").querySelectorAll('li[data-type="pre_tool"]')) {
    const e = open.events.get(Number(li.dataset.eventId));
    const finished = e?.tool_use_id ? done.has(e.tool_use_id) : !open.running;
    li.hidden = finished;
    if (finished) li.querySelector(".elapsed")?.removeAttribute("data-since");
  }
}

function messageText(content) {
  if (typeof content === "string") return content;
  return (content || []).map((b) => (b.type === "text" ? b.text ?? "" : `[${b.type}]`)).join("");
}

/** A collapsible block of JSON (or plain text), open when short. */
function jsonBlock(label, value, collapsed = false) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2) ?? "";
  const lines = text.split("\n").length;
  const short = text.length <= 800 && lines <= 16;
  const summary = el("summary", { text: short ? label : `${label} · ${lines.toLocaleString()} lines` });
  return el("details", { class: "block", open: short && !collapsed }, summary, clipped(text, CLIP, "code"));
}

/** The title, the style and the body of one event. */
function describe(e) {
  switch (e.event_type) {
    case "run_start":
    case "session_start":
      return ["Run started", "run", []];
    case "run_completed":
    case "session_stop": {
      const stopped = e.reason === "stopped";
      const failed = !stopped && ((e.exit_code ?? 0) !== 0 || (e.reason && e.reason !== "completed") || e.error);
      const facts = [
        e.exit_code != null && `exit code ${e.exit_code}`,
        e.reason,
        e.cost_usd != null && money(e.cost_usd),
        e.num_turns != null && `${e.num_turns} turn${e.num_turns === 1 ? "" : "s"}`,
        e.duration_ms != null && duration(e.duration_ms),
        e.usage && `${tokens(e.usage)} tokens`,
      ]
        .filter(Boolean)
        .join(" · ");
      return [
        stopped ? "Run stopped" : "Run completed",
        failed ? "run failed" : stopped ? "run stopped" : "run",
        [facts && el("p", { class: "facts", text: facts }), e.error && clipped(String(e.error), CLIP, "error")],
      ];
    }
    case "message": {
      const title = { user: "Prompt", assistant: "Result", system: "System message" }[e.role] || `Message (${e.role})`;
      return [title, `message role-${e.role}`, [clipped(messageText(e.content), TEXT_CLIP, "text")]];
    }
    case "pre_tool":
    case "post_tool": {
      const input = e.tool_input;
      const hint = input && (input.command ?? input.file_path ?? input.pattern ?? input.url ?? input.description);
      const running = e.event_type === "pre_tool";
      return [
        `${running ? "Tool running" : "Tool call"} · ${e.tool_name ?? "?"}`,
        running ? "tool running" : "tool",
        [
          running && el("p", { class: "facts" }, elapsedEl(e.timestamp, "for ")),
          typeof hint === "string" && el("code", { class: "hint", title: hint, text: hint }),
          input !== undefined && jsonBlock("Input", input, typeof hint === "string"),
          e.tool_output !== undefined && e.tool_output !== null && jsonBlock("Output", e.tool_output),
          e.error && clipped(String(e.error), CLIP, "error"),
        ],
      ];
    }
    default:
      return [e.event_type, "other", [jsonBlock("Event", e)]];
  }
}

function eventItem(e) {
  const [title, cls, body] = describe(e);
  const legacy = e.event_type.startsWith("session_") ? ` (${e.event_type})` : "";
  return el(
    "li",
    { class: `event ${cls}`, "data-event-id": e.id, "data-type": e.event_type, "data-role": e.role },
    el("div", { class: "event-head" }, el("span", { class: "kind", text: title + legacy }), timeEl(e.timestamp, true)),
    ...body.filter(Boolean),
  );
}

// ---- the live feed --------------------------------------------------------

function setConnection(state, text) {
  const conn = $("conn");
  conn.dataset.state = state;
  conn.textContent = text;
}

/** After a (re)connect or a `resync`, the list and timeline may be stale. */
function resync(list) {
  replaceSessions(list);
  if (open) {
    if (sessions.has(open.id)) loadEvents();
    else closeTimeline("This session was deleted.");
  }
}

function connect() {
  setConnection("connecting", "connecting…");
  const source = new EventSource("sse");
  const on = (type, handle) =>
    source.addEventListener(type, (message) => {
      try {
        handle(JSON.parse(message.data));
      } catch (error) {
        console.error(`bad ${type} message`, error);
      }
    });
  on("init", (m) => {
    setConnection("live", "live");
    resync(m.sessions);
  });
  on("resync", () =>
    api("sessions").then(
      (answer) => resync(answer.sessions),
      (error) => notice(`Could not refresh the sessions: ${error.message}`),
    ),
  );
  on("session_created", (m) => upsertSession(m.session));
  on("session_updated", (m) => upsertSession(m.session));
  on("session_deleted", (m) => removeSession(m.session_id));
  on("event", (m) => addEvent(m.data));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. an HTTP error); try again ourselves.
      setConnection("offline", "offline, retrying…");
      setTimeout(connect, 3000);
    } else {
      setConnection("reconnecting", "reconnecting…");
    }
  });
}

$("filter").addEventListener("input", refilter);
connect();
