// The dashboard: the session list (a tree of parents, children and forks), one
// session's whole conversation, the cost per day, and search, kept up to
// date from the server's /sse feed. Event data only ever enters the page as
// text (textContent, text nodes and SVG attributes, never parsed as markup),
// so nothing a session says can run here.
//
// Each part of the page has its own section below, and each kind of event
// its own renderer in RENDERERS: a new part (say, the requests a person
// answers) is a new section and a new entry, not a change to the others.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const CLIP = 3000; // characters of a tool's input or output shown before "Show all"
const TEXT_CLIP = 20000; // the same for prompts and answers
const NARROW = matchMedia("(max-width: 699px)");
const DAYS = 30; // days in the cost chart
const SERIES = 6; // colours in the cost chart; the rest is "other"

const sessions = new Map(); // session_id -> session
const rows = new Map(); // session_id -> <li>
let open = null; // the open session: see openSession()
let loaded = false; // the first session list has arrived

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

/** The same for SVG elements. */
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
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

/** A folded block: a summary that opens onto `body`. */
function folded(label, body, cls = "block", open = false) {
  return el("details", { class: cls, open }, el("summary", { text: label }), body);
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

// ---- figures ----------------------------------------------------------------

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

const shortDay = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const shortClock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** A <time> as short as a list row needs: the time today, else the day. */
function shortTimeEl(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return el("span", { class: "none", text: "—" });
  const today = date.toDateString() === new Date().toDateString();
  const title = date.toLocaleString(undefined, { timeZoneName: "short" });
  return el("time", { datetime: iso, title, text: (today ? shortClock : shortDay).format(date) });
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

/** The last part of a path, for tight places (the whole path on hover). */
function baseName(path) {
  return (path || "").replace(/\/+$/, "").split("/").pop() || path || "";
}

// ---- statuses ---------------------------------------------------------------

const STATE_LABEL = {
  running: "running",
  needs_input: "needs you",
  completed: "completed",
  error: "error",
  stopped: "stopped",
  interrupted: "interrupted",
  finished: "finished",
};

/** What a session is doing, or how its last run ended. */
function sessionState(s) {
  // A run waiting for a person's answer (the requests of issue 24).
  if (s.pending_requests > 0) return "needs_input";
  if (s.status === "running") return "running";
  const reason = s.last_run?.reason;
  return reason in STATE_LABEL ? reason : "finished";
}

function badge(state) {
  return el("span", { class: `badge status-${state}`, "data-state": state, text: STATE_LABEL[state] ?? state });
}

// ---- the session list: a tree of parents, children and forks -------------

function newerFirst(a, b) {
  return Date.parse(b.created_at) - Date.parse(a.created_at) || a.session_id.localeCompare(b.session_id);
}

function fact(label, value) {
  return el("span", { class: "fact" }, el("span", { class: "label", text: `${label} ` }), value);
}

/** The session's name, or its id while it is unknown here. */
function nameOf(id) {
  return sessions.get(id)?.session_name ?? id;
}

/** The session a row sits under: the one whose run started it, else the one
 * it was forked from (so a fork sits beside its origin). */
function anchorOf(s) {
  return s.parent_session_id || s.forked_from || null;
}

/** How deep in the tree a session sits (0 for one with no anchor). */
function depth(s) {
  let d = 0;
  for (let p = sessions.get(anchorOf(s)); p && d < 8; p = sessions.get(anchorOf(p))) d++;
  return d;
}

function fillRow(li, s) {
  const [openButton, stopButton, deleteButton] = li.children;
  const state = sessionState(s);
  openButton.replaceChildren(
    el(
      "span",
      { class: "row-head" },
      el("span", { class: "name", text: s.session_name }),
      badge(state),
      el("span", { class: "cost", title: `${tokens(s.usage)} tokens`, text: money(s.cost_usd) }),
    ),
    el(
      "span",
      { class: "facts" },
      state === "running"
        ? elapsedEl(s.last_resumed_at || s.created_at, "for ")
        : shortTimeEl(s.last_resumed_at || s.created_at),
      el("span", { class: "path", title: s.project_dir || "", text: baseName(s.project_dir) || "no project folder" }),
      s.agent_name && el("span", { class: "agent", text: s.agent_name }),
      s.branch && el("span", { class: "branch", title: s.worktree || "", text: s.branch }),
      s.parent_session_id && el("span", { class: "parent", text: `↳ ${nameOf(s.parent_session_id)}` }),
      s.forked_from && el("span", { class: "origin", text: `forked from ${nameOf(s.forked_from)}` }),
      el("span", { class: "fact" }, el("span", { class: "runs", text: String(s.num_runs ?? 0) }), ` run${s.num_runs === 1 ? "" : "s"}`),
    ),
  );
  openButton.title = [s.session_name, s.project_dir, s.agent_name && `agent ${s.agent_name}`].filter(Boolean).join(" · ");
  openButton.setAttribute("aria-current", String(open?.id === s.session_id));
  li.dataset.state = state;
  stopButton.hidden = s.status !== "running";
  stopButton.disabled = false;
  stopButton.setAttribute("aria-label", `Stop the run of session ${s.session_name}`);
  deleteButton.setAttribute("aria-label", `Delete session ${s.session_name}`);
}

function upsertSession(s) {
  const before = sessions.get(s.session_id);
  sessions.set(s.session_id, s);
  noticeChange(before, s);
  let li = rows.get(s.session_id);
  if (!li) {
    const id = s.session_id;
    li = el(
      "li",
      { class: "session", "data-session-id": id },
      el("button", { type: "button", class: "session-open", onclick: () => openSession(id, { scroll: true }) }),
      el("button", { type: "button", class: "stop", onclick: (e) => stopSession(id, e.currentTarget) }, "Stop"),
      el("button", { type: "button", class: "delete", onclick: () => deleteSession(id) }, "Delete"),
    );
    rows.set(id, li);
  }
  fillRow(li, s);
  placeRow(li, s);
  placeDescendants(s.session_id);
  if (open?.id === s.session_id) {
    showHead(s);
    if ((before?.pending_requests ?? 0) !== (s.pending_requests ?? 0)) loadRequests();
  }
  applyFilter(li, s);
  showCount();
  showNeedsYou();
  openIfAwaited(s);
}

/** Children that arrived before their parent go under it now, named, and
 * theirs under them. */
function placeDescendants(id, seen = new Set()) {
  if (seen.has(id)) return;
  seen.add(id);
  for (const [childId, child] of sessions) {
    if (anchorOf(child) !== id || !rows.has(childId)) continue;
    fillRow(rows.get(childId), child);
    placeRow(rows.get(childId), child);
    placeDescendants(childId, seen);
  }
}

/** Puts a row in its place: newest first, a child session (or a fork) right
 * under its parent (or origin), newest first, indented by its depth. Moves it
 * only when it is out of place, so a focused button keeps focus. */
function placeRow(li, s) {
  const list = $("session-list");
  const anchor = anchorOf(s);
  const parent = anchor ? rows.get(anchor) : null;
  const underParent = parent?.parentNode === list;
  const level = underParent ? Math.min(depth(s), 4) : 0;
  li.classList.toggle("child", underParent);
  li.classList.toggle("fork", underParent && !s.parent_session_id);
  li.dataset.depth = String(level);
  let before = null;
  if (underParent) {
    // After the parent, past its children (and theirs) that are newer.
    before = parent.nextElementSibling;
    const parentDepth = Number(parent.dataset.depth || 0);
    while (
      before &&
      Number(before.dataset.depth || 0) > parentDepth &&
      (before === li ||
        Number(before.dataset.depth) > level ||
        newerFirst(sessions.get(before.dataset.sessionId), s) < 0)
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

/** The text the filter box searches in a session: its state's label and
 * name ("completed", "error", ... "needs you" and "needs_input", which
 * "needs input" finds too), and "finished" for every ended run. */
function searchable(s) {
  const state = sessionState(s);
  return [
    s.session_name,
    s.project_dir,
    s.agent_name,
    s.branch,
    STATE_LABEL[state],
    state,
    s.status === "finished" && "finished",
    s.parent_session_id && nameOf(s.parent_session_id),
    s.forked_from && nameOf(s.forked_from),
  ]
    .filter(Boolean)
    .join("\n")
    .toLowerCase();
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
  // Its children and forks stand on their own now.
  placeDescendants(id);
  if (open?.id === id) closeTimeline("This session was deleted.");
  showCount();
  showNeedsYou();
}

function replaceSessions(list) {
  const keep = new Set(list.map((s) => s.session_id));
  for (const id of [...sessions.keys()]) if (!keep.has(id)) removeSession(id);
  for (const s of list) upsertSession(s);
  loaded = true;
  $("sessions-loading").hidden = true;
  $("session-list").removeAttribute("aria-busy");
  showCount();
  followLink();
}

function showCount() {
  const shown = [...rows].filter(([, li]) => !li.hidden).map(([id]) => sessions.get(id));
  $("session-count").textContent = !sessions.size
    ? ""
    : shown.length === sessions.size
      ? `(${sessions.size})`
      : `(${shown.length} of ${sessions.size})`;
  $("sessions-empty").hidden = !loaded || sessions.size > 0;
  $("sessions-none-match").hidden = !sessions.size || shown.length > 0;
  const cost = shown.reduce((sum, s) => sum + (s.cost_usd ?? 0), 0);
  const runs = shown.reduce((sum, s) => sum + (s.num_runs ?? 0), 0);
  const input = shown.reduce((sum, s) => sum + (s.usage?.input_tokens ?? 0), 0);
  const output = shown.reduce((sum, s) => sum + (s.usage?.output_tokens ?? 0), 0);
  $("sessions-total").textContent = shown.length
    ? `${money(cost)} · ${runs.toLocaleString()} run${runs === 1 ? "" : "s"} · ${tokens({ input_tokens: input, output_tokens: output })} tokens`
    : "";
}

/** Asks the session's runner to stop its run; the row changes when it has. */
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

// ---- the open session's head: status, where it runs, cost per run ---------

function showHead(s) {
  if (open?.id === s.session_id) {
    const wasRunning = open.running;
    open.running = s.status === "running";
    if (wasRunning && !open.running) settleCalls();
  }
  $("timeline-title").textContent = s.session_name;
  const status = $("timeline-status");
  const state = sessionState(s);
  status.className = `badge status-${state}`;
  status.dataset.state = state;
  status.textContent = STATE_LABEL[state];
  status.hidden = false;
  const parent = s.parent_session_id && sessions.get(s.parent_session_id);
  $("timeline-meta").replaceChildren(
    ...[
      s.project_dir,
      s.agent_name && `agent ${s.agent_name}`,
      s.branch && `branch ${s.branch} in ${s.worktree}`,
      parent && el("a", { href: linkTo(parent.session_name), class: "parent-link", text: `started by ${parent.session_name}` }),
      s.parent_session_id && !parent && `started by ${s.parent_session_id}`,
      s.forked_from && `forked from ${nameOf(s.forked_from)}`,
      s.session_id,
    ]
      .filter(Boolean)
      .flatMap((part, i) => (i ? [" · ", part] : [part])),
  );
  showActions(s);
  showReply(s);
}

/** Buttons for the open session: the whole branch of a worktree session. */
function showActions(s) {
  const actions = $("timeline-actions");
  const wanted = s.branch ? "branch" : "";
  if (actions.dataset.for === `${s.session_id}/${wanted}`) return;
  actions.dataset.for = `${s.session_id}/${wanted}`;
  actions.replaceChildren();
  if (s.branch) {
    actions.append(el("button", { type: "button", class: "show-branch", onclick: () => showBranch(s.session_id) }, `Branch ${s.branch} against its base`));
  }
}

/** The whole branch of a worktree session against the commit it started from. */
async function showBranch(id) {
  const box = $("branch");
  box.hidden = false;
  box.replaceChildren(el("p", { class: "empty loading", text: "Reading the branch…" }));
  try {
    const answer = await api(`sessions/${encodeURIComponent(id)}/diff`);
    if (open?.id !== id) return;
    box.replaceChildren(
      el("p", { class: "kind", text: `Branch ${answer.branch} against ${answer.base.slice(0, 10)}` }),
      changesBody(answer.files, answer.diff, answer.diff_truncated),
    );
  } catch (error) {
    if (open?.id === id) box.replaceChildren(el("p", { class: "empty", text: `Could not read the branch: ${error.message}` }));
  }
}

/** A bar per run with what it cost, newest last; a click goes to its end. */
function showRunCosts() {
  const box = $("run-costs");
  const ends = open.ends.filter((e) => e.cost_usd != null);
  box.hidden = ends.length === 0;
  if (!ends.length) return box.replaceChildren();
  const top = Math.max(...ends.map((e) => e.cost_usd), 1e-9);
  const width = 12;
  const slots = Math.max(ends.length, 12); // a few runs get narrow bars too
  const chart = svg("svg", { class: "bars", viewBox: `0 0 ${slots * width} 40`, preserveAspectRatio: "none", role: "img" });
  chart.append(svg("title", {}, `Cost per run: ${ends.map((e) => money(e.cost_usd)).join(", ")}`));
  ends.forEach((e, i) => {
    const h = Math.max(1, (e.cost_usd / top) * 38);
    const bar = svg("rect", { x: i * width + 1, y: 40 - h, width: width - 2, height: h, class: "run-bar", "data-event-id": e.id });
    bar.append(svg("title", {}, `Run ${i + 1}: ${money(e.cost_usd)}`));
    bar.addEventListener("click", () => scrollToEvent(e.id));
    chart.append(bar);
  });
  const total = ends.reduce((sum, e) => sum + e.cost_usd, 0);
  box.replaceChildren(
    el("span", { class: "label", text: `Cost per run (${ends.length})` }),
    chart,
    el("span", { class: "run-costs-total", text: `last ${money(ends.at(-1).cost_usd)} · total ${money(total)}` }),
  );
}

// ---- the timeline -------------------------------------------------------------

function closeTimeline(message) {
  open = null;
  $("events").replaceChildren();
  $("timeline-title").textContent = "Timeline";
  $("timeline-status").hidden = true;
  $("timeline-meta").replaceChildren();
  $("timeline-actions").replaceChildren();
  delete $("timeline-actions").dataset.for;
  $("run-costs").hidden = true;
  $("branch").hidden = true;
  $("requests").hidden = true;
  $("reply").hidden = true;
  $("timeline-empty").textContent = message;
  $("timeline-empty").hidden = false;
  $("timeline").removeAttribute("aria-busy");
}

/** Opens session `id`; `scroll` (a tap on a phone) brings its timeline into
 * view once it has loaded; `at` scrolls to one event. */
function openSession(id, { scroll = false, at = null } = {}) {
  const s = sessions.get(id);
  if (!s) return;
  if (open?.id !== id) {
    open = {
      id,
      events: new Map(), // id -> stored event
      calls: new Map(), // tool_use_id -> {li, pre, post, ended}
      unfinished: new Set(), // calls with a pre_tool and no post_tool yet
      ends: [], // the run ends, in id order
      running: s.status === "running",
      draft: null, // the text the model is writing: see applyDelta()
      loading: true,
      requests: [], // what its run waits for: see loadRequests()
      reply: null, // the run a reply from this page launched, until it starts
    };
    $("requests").hidden = true;
    $("reply-status").textContent = "";
    loadRequests();
    $("events").replaceChildren();
    $("branch").hidden = true;
    $("run-costs").hidden = true;
    $("timeline-empty").textContent = "Loading…";
    $("timeline-empty").classList.add("loading");
    $("timeline-empty").hidden = false;
    $("timeline").setAttribute("aria-busy", "true");
  }
  for (const [rowId, li] of rows) li.firstElementChild.setAttribute("aria-current", String(rowId === id));
  showHead(s);
  if (location.hash !== linkTo(s.session_name)) history.replaceState(null, "", linkTo(s.session_name));
  loadEvents().then(() => {
    if (open?.id !== id) return;
    if (at !== null) scrollToEvent(at);
    else if (scroll && NARROW.matches) $("timeline").scrollIntoView({ block: "start" });
  });
}

/** Fetches the open session's events and merges them with those seen
 * live, then the text its model is writing, if any. */
async function loadEvents() {
  const shown = open;
  if (!shown) return;
  try {
    const answer = await api(`sessions/${encodeURIComponent(shown.id)}/events`);
    if (open !== shown) return;
    for (const event of answer.events) addEvent(event);
    const draft = await api(`sessions/${encodeURIComponent(shown.id)}/draft`);
    if (open !== shown) return;
    applyDraft(draft.draft);
  } catch (error) {
    if (open === shown) notice(`Could not load the events: ${error.message}`);
  } finally {
    if (open === shown) {
      shown.loading = false;
      settleCalls();
      $("timeline-empty").classList.remove("loading");
      $("timeline").removeAttribute("aria-busy");
      if (!shown.events.size) $("timeline-empty").textContent = "No events yet.";
    }
  }
}

function isRunEnd(e) {
  return e.event_type === "run_completed" || e.event_type === "session_stop";
}

function isTool(e) {
  return e.event_type === "pre_tool" || e.event_type === "post_tool";
}

/** Adds one stored event to the open timeline, in id order, once. A tool
 * call is one item from its pre_tool to its post_tool; what a subagent did
 * goes inside the call that started it. */
function addEvent(event) {
  if (!open || event.session_id !== open.id || open.events.has(event.id)) return;
  open.events.set(event.id, event);
  $("timeline-empty").hidden = true;
  if (event.role === "assistant" || isRunEnd(event)) clearDraft();
  if (isRunEnd(event)) insertInOrder(open.ends, event);
  if (isTool(event)) {
    // Calls without an id (old senders) cannot be paired: one item each.
    const key = event.tool_use_id ?? `event-${event.id}`;
    let call = open.calls.get(key);
    if (!call) {
      call = { li: eventItem(event), pre: null, post: null, ended: null };
      open.calls.set(key, call);
      insertInOrder(containerFor(event), call.li, event.id);
    }
    call[event.event_type === "pre_tool" ? "pre" : "post"] = event;
    if (call.pre && !call.post) open.unfinished.add(call);
    else open.unfinished.delete(call);
    fillCall(call);
  } else {
    insertInOrder(containerFor(event), eventItem(event), event.id);
  }
  settleCalls();
  if (isRunEnd(event)) showRunCosts();
}

/** Where an event goes: inside the subagent call that made it, or the timeline. */
function containerFor(event) {
  const call = event.parent_tool_use_id && open.calls.get(event.parent_tool_use_id);
  if (!call) return $("events");
  let list = call.li.querySelector(":scope > ol.sub");
  if (!list) {
    list = el("ol", { class: "events sub", "aria-label": "What the subagent did" });
    call.li.append(list);
  }
  return list;
}

/** Inserts an item into a list by event id; or an event into an array of events. */
function insertInOrder(list, item, id = item.id) {
  if (Array.isArray(list)) {
    let at = list.length;
    while (at > 0 && list[at - 1].id > id) at--;
    list.splice(at, 0, item);
    return;
  }
  let before = null;
  for (let c = list.lastElementChild; c && Number(c.dataset.eventId) > id; c = c.previousElementSibling) before = c;
  list.insertBefore(item, before);
}

/** A tool call that has no post_tool is running until its run ends; then
 * it shows as ended with the run, and stops ticking. */
function settleCalls() {
  if (!open) return;
  for (const call of open.unfinished) {
    if (call.ended) continue;
    const end = open.ends.find((e) => e.id > call.pre.id && (!e.run_id || !call.pre.run_id || e.run_id === call.pre.run_id));
    const ended = end ?? (!open.running && !open.loading ? { reason: null } : null);
    if (ended) {
      call.ended = ended;
      fillCall(call);
    }
  }
}

// ---- events, one renderer per kind ----------------------------------------------

/** The title, the style and the body of one event, by its kind. */
const RENDERERS = {
  run_start: () => ["Run started", "run", []],
  session_start: () => ["Run started", "run", []],
  run_completed: runEnd,
  session_stop: runEnd,
  message,
  pre_tool: () => ["Tool call", "tool", []], // filled by fillCall()
  post_tool: () => ["Tool call", "tool", []],
  changes: (e) => {
    const files = e.files ?? [];
    const added = files.reduce((n, f) => n + (f.added ?? 0), 0);
    const removed = files.reduce((n, f) => n + (f.removed ?? 0), 0);
    const title = `Changed ${files.length} file${files.length === 1 ? "" : "s"} (+${added} −${removed})`;
    return [title, "changes", [changesBody(files, e.diff ?? "", e.diff_truncated)]];
  },
};

function runEnd(e) {
  const reason = e.reason ?? (e.exit_code ? "error" : "completed");
  const failed = reason === "error" || (reason === "completed" && e.exit_code);
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
  const title = { stopped: "Run stopped", interrupted: "Run interrupted", error: "Run failed" }[reason] ?? "Run completed";
  return [
    title,
    `run ${failed ? "failed" : `end-${reason}`}`,
    [facts && el("p", { class: "facts", text: facts }), e.error && clipped(String(e.error), CLIP, "error")],
  ];
}

function messageText(content, kind = "text") {
  if (typeof content === "string") return kind === "text" ? content : "";
  return (content || [])
    .filter((b) => b.type === kind)
    .map((b) => b.text ?? "")
    .join("");
}

/** A prompt, an answer, what the model said on the way, or its thinking (folded). */
function message(e) {
  if (e.role === "assistant" && e.final === false) {
    const thinking = messageText(e.content, "thinking");
    if (thinking) return ["Thinking", "thinking", [folded("Show the thinking", clipped(thinking, TEXT_CLIP, "text"), "block thought")]];
    return ["Says", "narration", [clipped(messageText(e.content), TEXT_CLIP, "text")]];
  }
  const title = { user: "Prompt", assistant: "Answer", system: "System message" }[e.role] || `Message (${e.role})`;
  return [title, `message role-${e.role}`, [clipped(messageText(e.content), TEXT_CLIP, "text")]];
}

function eventItem(e) {
  const render = RENDERERS[e.event_type] ?? ((x) => [x.event_type, "other", [rawBlock("Event", x)]]);
  const [title, cls, body] = render(e);
  const legacy = e.event_type.startsWith("session_") ? ` (${e.event_type})` : "";
  return el(
    "li",
    {
      class: `event ${cls}`,
      "data-event-id": e.id,
      "data-type": e.event_type,
      "data-role": e.role,
      "data-final": e.final === false ? "false" : null,
    },
    el("div", { class: "event-head" }, el("span", { class: "kind", text: title + legacy }), timeEl(e.timestamp, true)),
    ...body.filter(Boolean),
  );
}

/** JSON (or plain text) behind a toggle. */
function rawBlock(label, value) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2) ?? "";
  return folded(label, clipped(text, CLIP, "code"), "block raw");
}

// ---- tool calls, readable -----------------------------------------------------

/** Fills a tool call's item from its pre_tool and post_tool: running (and
 * ticking), done, or ended with its run. */
function fillCall(call) {
  const e = call.post ?? call.pre;
  const input = e.tool_input ?? call.pre?.tool_input;
  const output = call.post?.tool_output;
  const state = call.post ? "done" : call.ended ? "ended" : "running";
  const head = call.li.querySelector(":scope > .event-head .kind");
  head.textContent = `${state === "running" ? "Tool running" : "Tool call"} · ${e.tool_name ?? "?"}`;
  call.li.className = `event tool ${state}`;
  call.li.dataset.state = state;
  call.li.dataset.toolName = e.tool_name ?? "";
  const sub = call.li.querySelector(":scope > ol.sub");
  const view = TOOL_VIEWS[e.tool_name] ?? genericTool;
  const parts = [
    call.li.firstElementChild,
    state === "running" && el("p", { class: "facts" }, elapsedEl(call.pre.timestamp, "for ")),
    state === "ended" && el("p", { class: "facts ended", text: `not finished: the run ${endedHow(call.ended)}` }),
    ...view(input ?? {}, output, call),
    call.post?.error && clipped(String(call.post.error), CLIP, "error"),
    rawBlock("Raw", { input, output }),
    sub,
  ];
  call.li.replaceChildren(...parts.filter(Boolean));
}

function endedHow(end) {
  return { stopped: "was stopped", interrupted: "was interrupted", error: "failed", completed: "ended" }[end?.reason] ?? "ended";
}

/** Lines of a unified diff, each coloured by its first character. */
function diffBlock(text, label = "Diff") {
  const pre = el("pre", { class: "diff" });
  for (const line of text.split("\n")) {
    const cls = line.startsWith("+++") || line.startsWith("---") || line.startsWith("diff ") || line.startsWith("index ")
      ? "meta"
      : line.startsWith("@@")
        ? "hunk"
        : line.startsWith("+")
          ? "add"
          : line.startsWith("-")
            ? "del"
            : "ctx";
    pre.append(el("span", { class: `line ${cls}`, text: `${line}\n` }));
  }
  const lines = text.split("\n").length;
  return folded(`${label} · ${lines.toLocaleString()} lines`, pre, "block diff-block", lines <= 400);
}

/** A file's changes as a diff, from the tool's structured patch or its strings. */
function patchText(path, output, input) {
  const hunks = output?.structuredPatch;
  if (Array.isArray(hunks) && hunks.length) {
    return hunks
      .map((h) => [`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`, ...(h.lines ?? [])].join("\n"))
      .join("\n");
  }
  const edits = input.edits ?? [{ old_string: input.old_string ?? "", new_string: input.new_string ?? input.content ?? "" }];
  return edits
    .map((edit) => {
      const old = (edit.old_string ?? "").split("\n").filter((l, i, all) => l || i < all.length - 1);
      const now = (edit.new_string ?? "").split("\n").filter((l, i, all) => l || i < all.length - 1);
      return [`@@ ${path} @@`, ...old.map((l) => `-${l}`), ...now.map((l) => `+${l}`)].join("\n");
    })
    .join("\n");
}

function fileLine(path, extra = "") {
  return el("p", { class: "file" }, el("code", { class: "path-name", text: path ?? "?" }), extra && el("span", { class: "label", text: ` ${extra}` }));
}

function outputText(output) {
  if (output === undefined || output === null) return null;
  if (typeof output === "string") return output;
  if (Array.isArray(output)) return output.map((b) => (typeof b === "string" ? b : b?.text ?? "")).join("\n");
  if (Array.isArray(output.content)) return outputText(output.content);
  return null;
}

/** How each tool shows: what it was asked and what it gave back. */
const TOOL_VIEWS = {
  Bash: (input, output) => [
    el("pre", { class: "code command", text: `$ ${input.command ?? ""}` }),
    input.description && el("p", { class: "label", text: input.description }),
    output?.stdout && clipped(output.stdout, CLIP, "code stdout"),
    output?.stderr && clipped(output.stderr, CLIP, "code stderr"),
    output?.interrupted && el("p", { class: "facts", text: "interrupted" }),
    typeof output === "string" && clipped(output, CLIP, "code stdout"),
  ],
  Read: (input, output) => {
    const file = output?.file;
    const lines = file?.numLines != null ? `${file.numLines} lines${file.startLine > 1 ? ` from ${file.startLine}` : ""}` : "";
    return [
      fileLine(input.file_path, lines),
      file?.content != null && folded("Content", clipped(file.content, CLIP, "code"), "block"),
    ];
  },
  Edit: (input, output) => [fileLine(input.file_path, input.replace_all ? "every occurrence" : ""), diffBlock(patchText(input.file_path, output, input))],
  MultiEdit: (input, output) => [fileLine(input.file_path, `${(input.edits ?? []).length} edits`), diffBlock(patchText(input.file_path, output, input))],
  Write: (input, output) => [
    fileLine(input.file_path, output?.type === "update" ? "rewritten" : "written"),
    diffBlock(output?.structuredPatch?.length ? patchText(input.file_path, output, input) : (input.content ?? "").split("\n").map((l) => `+${l}`).join("\n")),
  ],
  Grep: (input, output) => [
    el("pre", { class: "code command", text: `grep ${input.pattern ?? ""}${input.path ? ` in ${input.path}` : ""}` }),
    output && clipped(output.content ?? (output.filenames ?? []).join("\n"), CLIP, "code stdout"),
  ],
  Glob: (input, output) => [
    el("pre", { class: "code command", text: `${input.pattern ?? ""}${input.path ? ` in ${input.path}` : ""}` }),
    output?.filenames && clipped(output.filenames.join("\n"), CLIP, "code stdout"),
  ],
  Task: subagentView,
  Agent: subagentView,
};

function subagentView(input, output) {
  const report = outputText(output);
  return [
    input.description && el("p", { class: "file", text: input.description }),
    input.prompt && folded("Its task", clipped(input.prompt, CLIP, "text"), "block"),
    report && folded("What it reported", clipped(report, TEXT_CLIP, "text"), "block", true),
  ];
}

function genericTool(input, output) {
  const hint = input && (input.command ?? input.file_path ?? input.pattern ?? input.url ?? input.description);
  const text = outputText(output);
  return [
    typeof hint === "string" && el("code", { class: "hint", title: hint, text: hint }),
    text && clipped(text, CLIP, "code stdout"),
  ];
}

/** What changed: the files with their counts, and the diff. */
function changesBody(files, diff, truncated) {
  return el(
    "div",
    { class: "changes-body" },
    el(
      "ul",
      { class: "files" },
      ...files.map((f) =>
        el(
          "li",
          {},
          el("code", { class: "path-name", text: f.path }),
          f.added == null ? el("span", { class: "label", text: " binary" }) : el("span", { class: "counts" }, el("span", { class: "add", text: ` +${f.added}` }), el("span", { class: "del", text: ` −${f.removed}` })),
        ),
      ),
    ),
    diff && diffBlock(diff),
    truncated && el("p", { class: "facts", text: "The diff was cut at 256 KB." }),
  );
}

// ---- text as it is written ---------------------------------------------------------

/** A piece of the text the open session's model is writing. Pieces are
 * numbered per block (`seq`), so pieces seen before the text so far was
 * fetched join it in order. */
function applyDelta(d) {
  if (!open || d.session_id !== open.id) return;
  const key = `${d.message_id}/${d.index}`;
  if (open.draft?.key !== key) open.draft = { key, seq: 0, text: "", pieces: new Map() };
  open.draft.pieces.set(d.seq, d.text);
  showDraft();
}

/** The text so far, from the server (a page that opened late). */
function applyDraft(draft) {
  if (!open || !draft) return;
  const key = `${draft.message_id}/${draft.index}`;
  if (open.draft?.key !== key) open.draft = { key, seq: 0, text: "", pieces: new Map() };
  if (draft.seq >= open.draft.seq) {
    open.draft.text = draft.text;
    open.draft.seq = draft.seq;
  }
  showDraft();
}

function clearDraft() {
  if (!open) return;
  open.draft = null;
  $("events").querySelector(":scope > li.draft")?.remove();
}

function showDraft() {
  const draft = open.draft;
  for (const [seq, text] of [...draft.pieces].sort((a, b) => a[0] - b[0])) {
    if (seq <= draft.seq) draft.pieces.delete(seq);
    else if (seq === draft.seq + 1) {
      draft.text += text;
      draft.seq = seq;
      draft.pieces.delete(seq);
    }
  }
  if (!draft.text) return;
  const list = $("events");
  let li = list.querySelector(":scope > li.draft");
  if (!li) {
    li = el(
      "li",
      { class: "event draft", "data-type": "draft", "aria-live": "polite" },
      el("div", { class: "event-head" }, el("span", { class: "kind", text: "Writing…" })),
      el("pre", { class: "text" }),
    );
  }
  li.querySelector("pre").textContent = draft.text;
  list.append(li); // always last
  $("timeline-empty").hidden = true;
}

// ---- cost per day -----------------------------------------------------------------

let costBy = "project";

/** The last DAYS UTC dates, oldest first. */
function lastDays() {
  const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
  return Array.from({ length: DAYS }, (_, i) => new Date(today - (DAYS - 1 - i) * 86400000).toISOString().slice(0, 10));
}

async function loadCosts() {
  const days = lastDays();
  try {
    const answer = await api(`usage?group_by=day,${costBy}&since=${days[0]}T00:00:00Z`);
    drawCosts(days, answer.groups);
  } catch (error) {
    $("cost-chart").replaceChildren(el("p", { class: "empty", text: `Could not read the costs: ${error.message}` }));
  }
  $("cost-chart").removeAttribute("aria-busy");
}

/** Stacked bars of cost per day, one colour per project (or agent): the
 * most expensive ones, the rest as "other". */
function drawCosts(days, groups) {
  const totals = new Map();
  for (const g of groups) totals.set(g.sub_key, (totals.get(g.sub_key) ?? 0) + g.cost_usd);
  const ranked = [...totals].sort((a, b) => b[1] - a[1]).map(([key]) => key);
  const shown = ranked.slice(0, ranked.length > SERIES ? SERIES - 1 : SERIES);
  const series = (key) => (shown.includes(key) ? shown.indexOf(key) : SERIES - 1);
  const perDay = new Map(days.map((d) => [d, new Array(SERIES).fill(0)]));
  for (const g of groups) perDay.get(g.key) && (perDay.get(g.key)[series(g.sub_key)] += g.cost_usd);
  const top = Math.max(...[...perDay.values()].map((v) => v.reduce((a, b) => a + b, 0)), 0);
  const chart = $("cost-chart");
  if (top === 0) {
    chart.replaceChildren(el("p", { class: "empty", text: "No run reported a cost in the last 30 days." }));
    $("cost-legend").replaceChildren();
    return;
  }
  const [w, h] = [10, 60];
  const graph = svg("svg", { class: "bars", viewBox: `0 0 ${days.length * w} ${h}`, preserveAspectRatio: "none", role: "img" });
  graph.append(svg("title", {}, `Cost per day over ${DAYS} days, at most ${money(top)} a day`));
  days.forEach((day, i) => {
    let y = h;
    perDay.get(day).forEach((cost, s) => {
      if (!cost) return;
      const height = Math.max(0.5, (cost / top) * (h - 2));
      y -= height;
      const name = s < shown.length ? keyName(shown[s]) : "other";
      const bar = svg("rect", { x: i * w + 1, y, width: w - 2, height, class: `series-${s}`, "data-day": day });
      bar.append(svg("title", {}, `${day} · ${name}: ${money(cost)}`));
      graph.append(bar);
    });
  });
  chart.replaceChildren(graph, el("p", { class: "axis" }, el("span", { text: days[0] }), el("span", { text: `max ${money(top)} a day` }), el("span", { text: days.at(-1) })));
  const legend = shown.map((key, s) => [s, keyName(key), totals.get(key), key]);
  if (ranked.length > shown.length) legend.push([SERIES - 1, "other", ranked.slice(shown.length).reduce((n, k) => n + totals.get(k), 0), ""]);
  $("cost-legend").replaceChildren(
    ...legend.map(([s, name, cost, key]) =>
      el("li", { title: key || name }, el("span", { class: `swatch series-${s}` }), el("span", { class: "key", text: name }), el("span", { class: "cost", text: money(cost) })),
    ),
  );
}

function keyName(key) {
  if (!key) return costBy === "agent" ? "(no agent)" : "(no project)";
  return costBy === "project" ? baseName(key) : key;
}

/** Redraws the chart a little after runs end (several may end at once). */
function costsChanged() {
  clearTimeout(costsChanged.timer);
  costsChanged.timer = setTimeout(loadCosts, 1500);
}

for (const button of document.querySelectorAll(".costs .by")) {
  button.addEventListener("click", () => {
    costBy = button.dataset.by;
    for (const b of document.querySelectorAll(".costs .by")) b.setAttribute("aria-pressed", String(b === button));
    loadCosts();
  });
}

// ---- search -------------------------------------------------------------------------

const KIND_OF_HIT = (h) =>
  h.event_type === "pre_tool" ? "tool call" : h.role === "user" ? "prompt" : h.final === false ? "narration" : "answer";

/** The snippet with the matched words marked (the server puts them
 * between U+0002 and U+0003). */
function snippetEl(snippet) {
  const p = el("p", { class: "snippet" });
  snippet.split("\u0002").forEach((part, i) => {
    if (i === 0) return p.append(part);
    const [hit, rest = ""] = part.split("\u0003");
    p.append(el("mark", { text: hit }), rest);
  });
  return p;
}

async function runSearch(query) {
  const box = $("search-results");
  if (!query.trim()) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  $("search-status").textContent = "Searching…";
  try {
    const answer = await api(`search?q=${encodeURIComponent(query)}`);
    if ($("search-box").value !== query) return; // typed on since
    $("search-status").textContent = answer.hits.length
      ? `${answer.hits.length} found${answer.hits.length === 100 ? " (the best 100)" : ""}`
      : "Nothing found.";
    $("search-hits").replaceChildren(
      ...answer.hits.map((h) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "hit", onclick: () => openHit(h) },
            el("span", { class: "hit-head" }, el("span", { class: "name", text: h.session_name }), el("span", { class: "label", text: KIND_OF_HIT(h) }), h.timestamp && timeEl(h.timestamp, true)),
            snippetEl(h.snippet),
          ),
        ),
      ),
    );
  } catch (error) {
    $("search-status").textContent = `Could not search: ${error.message}`;
  }
}

function openHit(hit) {
  $("search-results").hidden = true;
  openSession(hit.session_id, { at: hit.id });
}

/** Brings event `id` into view and marks it for a moment. */
function scrollToEvent(id) {
  const li = $("events").querySelector(`li[data-event-id="${Number(id)}"]`);
  if (!li) return;
  for (let p = li.parentElement; p && p.id !== "events"; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
  li.scrollIntoView({ block: "center" });
  li.classList.add("found");
  setTimeout(() => li.classList.remove("found"), 2500);
}

$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  runSearch($("search-box").value);
});
$("search-box").addEventListener("input", () => {
  clearTimeout(runSearch.timer);
  runSearch.timer = setTimeout(() => runSearch($("search-box").value), 250);
});
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") $("search-results").hidden = true;
});

// ---- links: #/s/NAME opens a session ------------------------------------------------

function linkTo(name) {
  return `#/s/${encodeURIComponent(name)}`;
}

/** Opens the session the address names, once the list is there (the newest of that name). */
function followLink() {
  const match = /^#\/s\/(.+)$/.exec(location.hash);
  if (!match || !loaded) return;
  const name = decodeURIComponent(match[1]);
  const found = [...sessions.values()].filter((s) => s.session_name === name).sort(newerFirst)[0];
  if (found && open?.id !== found.session_id) openSession(found.session_id, { scroll: true });
  else if (!found) notice(`There is no session named ${name}.`);
}

window.addEventListener("hashchange", followLink);

// ---- access: may this browser act (answer, launch)? -----------------------------

/** `{may_act, how}` from /access, asked once per page (and after a login). */
let access = { may_act: false, how: null, known: false };

async function loadAccess() {
  try {
    access = { ...(await api("access")), known: true };
  } catch {
    access = { may_act: false, how: null, known: false };
  }
  showAccess();
}

/** What to do to act from this page: the link `ao-dashboard` prints. */
const GET_THE_LINK = "To answer or start runs from this page, open the link that `ao-dashboard` prints on the session manager's machine (it signs this browser in).";

function showAccess() {
  const note = $("new-session-access");
  note.hidden = access.may_act;
  note.textContent = GET_THE_LINK;
  $("new-session-form").querySelector("button[type=submit]").disabled = !access.may_act;
  $("reply").querySelector("button[type=submit]").disabled = !access.may_act;
  if (open) showRequests();
}

// ---- a person in the loop: what a run waits for ------------------------------------

/** Sessions whose run waits for someone, in the header. */
function showNeedsYou() {
  const waiting = [...sessions.values()].filter((s) => s.pending_requests > 0);
  const button = $("needs-you");
  button.hidden = waiting.length === 0;
  button.textContent = `${waiting.length} need${waiting.length === 1 ? "s" : ""} you`;
  button.title = waiting.map((s) => s.session_name).join(", ");
}

$("needs-you").addEventListener("click", () => {
  const waiting = [...sessions.values()].filter((s) => s.pending_requests > 0).sort(newerFirst);
  if (waiting.length === 1) openSession(waiting[0].session_id, { scroll: true });
  $("filter").value = "needs";
  refilter();
});

/** Fetches the open session's pending requests and shows them. */
async function loadRequests() {
  const shown = open;
  if (!shown) return;
  try {
    const answer = await api(`sessions/${encodeURIComponent(shown.id)}/requests`);
    if (open !== shown) return;
    shown.requests = answer.requests;
  } catch (error) {
    if (open === shown) notice(`Could not load what the run waits for: ${error.message}`);
  }
  showRequests();
}

function showRequests() {
  const box = $("requests");
  const requests = open?.requests ?? [];
  box.hidden = requests.length === 0;
  box.replaceChildren(...requests.map(requestCard));
}

/** What a tool call asks to do, as readable as its call in the timeline. */
function requestInput(r) {
  const input = r.input ?? {};
  const view = TOOL_VIEWS[r.tool_name];
  const parts = view && r.tool_name !== "Task" && r.tool_name !== "Agent" ? view(input, null) : genericTool(input, null);
  return [...parts, r.blocked_path && fileLine(r.blocked_path, "is outside what it may touch"), rawBlock("Raw", input)].filter(Boolean);
}

/** What "Always allow" would allow from now on: the CLI's suggestion. */
function suggestionText(suggestions) {
  return (Array.isArray(suggestions) ? suggestions : [])
    .flatMap((s) => (s.rules ?? []).map((rule) => `${rule.toolName}${rule.ruleContent ? `(${rule.ruleContent})` : ""}`).concat(s.mode ? [`mode ${s.mode}`] : []).concat(s.directories ?? []))
    .join(", ");
}

function requestCard(r) {
  const question = r.kind === "question";
  const card = el(
    "article",
    { class: `request ${r.kind}`, "data-request-id": r.request_id },
    el("div", { class: "event-head" }, el("span", { class: "kind", text: question ? "A question for you" : `Allow ${r.tool_name}?` }), timeEl(r.created_at, true)),
  );
  if (question) card.append(...questionBody(r));
  else card.append(...requestInput(r));
  if (!access.may_act) {
    card.append(el("p", { class: "access-note", text: GET_THE_LINK }));
    return card;
  }
  card.append(question ? questionButtons(r) : permissionButtons(r));
  card.append(el("p", { class: "form-error", role: "alert", hidden: true }));
  return card;
}

function questionBody(r) {
  return (r.input?.questions ?? []).map((q) =>
    el("div", { class: "question" }, q.header && el("span", { class: "label", text: q.header }), el("p", { class: "text", text: q.question ?? "" })),
  );
}

/** A button per option of each question; the answer goes once each has one. */
function questionButtons(r) {
  const questions = r.input?.questions ?? [];
  const chosen = {};
  const box = el("div", { class: "choices" });
  questions.forEach((q, i) => {
    const row = el("div", { class: "options", role: "group", "aria-label": q.question ?? `question ${i + 1}` });
    for (const option of q.options ?? []) {
      row.append(
        el(
          "button",
          {
            type: "button",
            class: "option",
            title: option.description ?? "",
            onclick: (e) => {
              chosen[q.question] = option.label;
              for (const b of row.children) b.setAttribute("aria-pressed", String(b === e.currentTarget));
              if (Object.keys(chosen).length === questions.length) decide(r, { decision: "allow", answers: chosen }, box);
            },
          },
          option.label,
        ),
      );
    }
    box.append(row);
  });
  box.append(el("button", { type: "button", class: "deny", onclick: () => decide(r, { decision: "deny", message: "The person declined to answer." }, box) }, "Decline"));
  return box;
}

function permissionButtons(r) {
  const always = suggestionText(r.suggestions);
  const message = el("input", { type: "text", class: "deny-message", placeholder: "Why not? (the model reads this)", "aria-label": "Why not (the model reads this)" });
  const box = el(
    "div",
    { class: "decide" },
    el("button", { type: "button", class: "allow primary", onclick: () => decide(r, { decision: "allow" }, box) }, "Allow"),
    always &&
      el("button", { type: "button", class: "always", title: `From now on allow ${always}`, onclick: () => decide(r, { decision: "allow", always: true }, box) }, "Always allow", el("span", { class: "label", text: ` ${always}` })),
    el(
      "span",
      { class: "deny-with" },
      message,
      el("button", { type: "button", class: "deny", onclick: () => decide(r, { decision: "deny", ...(message.value.trim() && { message: message.value.trim() }) }, box) }, "Deny"),
    ),
  );
  return box;
}

/** Sends a decision; the card goes once the server took it. */
async function decide(r, body, box) {
  for (const b of box.querySelectorAll("button")) b.disabled = true;
  const error = box.parentNode?.querySelector(".form-error");
  try {
    await api(`sessions/${encodeURIComponent(r.session_id)}/requests/${encodeURIComponent(r.request_id)}`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
    });
    if (open?.id === r.session_id) {
      open.requests = (open.requests ?? []).filter((x) => x.request_id !== r.request_id);
      showRequests();
    }
  } catch (e) {
    for (const b of box.querySelectorAll("button")) b.disabled = false;
    if (error) {
      error.textContent = `Not sent: ${e.message}`;
      error.hidden = false;
    }
    loadRequests();
  }
}

/** A request and its decision in the timeline. */
RENDERERS.permission_request = (e) => [
  e.kind === "question" ? "Asked a question" : `Asked to use ${e.tool_name ?? "a tool"}`,
  "request-event",
  e.kind === "question" ? questionBody({ input: e.tool_input }) : requestInput({ ...e, input: e.tool_input }),
];
RENDERERS.permission_decision = (e) => {
  const who = { person: "by a person", parent: "by the parent agent", policy: "by the policy", timeout: "nobody answered in time" }[e.decided_by] ?? "";
  const answers = e.answers && Object.entries(e.answers).map(([q, a]) => `${q} → ${a}`).join("; ");
  const title = `${e.decision === "allow" ? (e.always ? "Always allowed" : answers ? "Answered" : "Allowed") : "Denied"}${who ? ` (${who})` : ""}`;
  return [title, `decision decision-${e.decision}`, [answers && el("p", { class: "text", text: answers }), e.message && el("p", { class: "text", text: e.message })]];
};

// ---- notifications: a word when a run needs someone or ends ----------------------------

const ASKED_KEY = "ao-asked-to-notify";

/** Asks once (on the first click in the page, as browsers want a gesture). */
function askToNotify() {
  if (!("Notification" in window) || Notification.permission !== "default") return;
  if (localStorage.getItem(ASKED_KEY)) return;
  localStorage.setItem(ASKED_KEY, new Date().toISOString());
  Notification.requestPermission().catch(() => {});
}
document.addEventListener("click", askToNotify, { once: true });

function notifyPerson(title, body, sessionId) {
  if (document.visibilityState === "visible") return;
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const n = new Notification(title, { body, tag: `${sessionId}/${title}` });
  n.onclick = () => {
    window.focus();
    openSession(sessionId, { scroll: true });
  };
}

/** Notes what changed for the person: a run that started waiting. */
function noticeChange(before, s) {
  if (loaded && (s.pending_requests ?? 0) > 0 && !((before?.pending_requests ?? 0) > 0)) {
    notifyPerson(`${s.session_name} needs you`, "A run waits for your answer.", s.session_id);
  }
}

function noticeEvent(e) {
  if (!isRunEnd(e)) return;
  const name = sessions.get(e.session_id)?.session_name ?? e.session_name;
  const reason = e.reason ?? (e.exit_code ? "error" : "completed");
  notifyPerson(`${name}: run ${reason}`, e.error ?? "The run ended.", e.session_id);
}

// ---- runs: a new session, a reply, runs waiting to start ----------------------------------

const runs = new Map(); // run_id -> run, while it waits to start or just failed to
const WAITING = new Set(["queued", "starting"]);
let hosts = [];

function runUpdated(run) {
  if (WAITING.has(run.status) || run.status === "failed_to_start") runs.set(run.run_id, run);
  else runs.delete(run.run_id);
  showRuns();
  if (open?.reply?.run_id === run.run_id) showReplyStatus(run);
}

async function loadRuns() {
  try {
    const answer = await api("runs?limit=50");
    runs.clear();
    for (const run of answer.runs.filter((r) => WAITING.has(r.status))) runs.set(run.run_id, run);
    showRuns();
  } catch (error) {
    notice(`Could not load the runs: ${error.message}`);
  }
}

function runStatusText(run) {
  if (run.status === "queued") return run.queue_position ? `queued, ${ordinal(run.queue_position)} in line` : "queued";
  if (run.status === "starting") return `starting${run.host ? ` on ${run.host}` : ""}`;
  if (run.status === "failed_to_start") return `failed to start: ${run.error ?? "no reason given"}`;
  return run.status;
}

function ordinal(n) {
  return n === 1 ? "next" : `${n}th`;
}

function showRuns() {
  const list = $("run-list");
  list.replaceChildren(
    ...[...runs.values()].map((run) =>
      el(
        "li",
        { class: `run-item run-${run.status}`, "data-run-id": run.run_id, "data-status": run.status },
        el("span", { class: "name", text: run.session_name }),
        el("span", { class: `badge run-status status-${run.status}`, text: runStatusText(run) }),
        el("span", { class: "facts", text: [run.resume ? "reply" : "new", run.agent && `agent ${run.agent}`, baseName(run.project_dir)].filter(Boolean).join(" · ") }),
      ),
    ),
  );
  $("runs").hidden = runs.size === 0;
}

async function loadHosts() {
  try {
    hosts = (await api("hosts")).hosts;
  } catch (error) {
    notice(`Could not load the hosts: ${error.message}`);
  }
  showHosts();
}

function hostUpdated(host) {
  hosts = [...hosts.filter((h) => h.name !== host.name), host].sort((a, b) => a.name.localeCompare(b.name));
  showHosts();
}

function showHosts() {
  $("host-count").textContent = `(${hosts.filter((h) => h.online).length} of ${hosts.length} online)`;
  $("host-list").replaceChildren(
    ...hosts.map((h) =>
      el(
        "li",
        { class: `host ${h.online ? "online" : "offline"}`, "data-host": h.name },
        el("span", { class: "row-head" }, el("span", { class: "name", text: h.name }), el("span", { class: `badge host-${h.online ? "online" : "offline"}`, text: h.online ? "online" : "offline" }), h.embedded && el("span", { class: "label", text: "this machine" })),
        el(
          "span",
          { class: "facts" },
          el("span", { class: "fact", text: `${h.running} of ${h.capacity} running` }),
          h.labels.length > 0 && el("span", { class: "fact", text: `labels ${h.labels.join(", ")}` }),
          el("span", { class: "fact", title: h.projects.join("\n"), text: h.projects.length ? `${h.projects.length} project${h.projects.length === 1 ? "" : "s"}: ${h.projects.map(baseName).join(", ")}` : "any folder" }),
          h.claude_version && el("span", { class: "fact", text: `Claude Code ${h.claude_version.replace(/\s*\(Claude Code\)$/, "")}` }),
          el("span", { class: "fact" }, "seen ", shortTimeEl(h.last_seen)),
        ),
      ),
    ),
  );
  const select = $("new-session-form").elements.host;
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "any host" }), ...hosts.filter((h) => h.online).map((h) => el("option", { value: h.name, text: h.embedded ? `${h.name} (this machine)` : h.name })));
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
}

$("show-hosts").addEventListener("click", (e) => {
  const box = $("hosts");
  box.hidden = !box.hidden;
  e.currentTarget.setAttribute("aria-expanded", String(!box.hidden));
  if (!box.hidden) {
    loadHosts();
    box.scrollIntoView({ block: "nearest" });
  }
});

/** The project folders known here: the sessions' and the hosts'. */
function knownProjects() {
  const dirs = new Set([...sessions.values()].map((s) => s.project_dir).filter(Boolean));
  for (const h of hosts) for (const p of h.projects) dirs.add(p);
  return [...dirs].sort();
}

async function loadAgents(project) {
  const list = $("project-agents");
  list.replaceChildren();
  if (!project.startsWith("/") || !access.may_act) return;
  try {
    const answer = await api(`agents?project_dir=${encodeURIComponent(project)}`);
    if ($("new-session-form").elements.project_dir.value.trim() !== project) return;
    list.replaceChildren(...answer.agents.map((a) => el("option", { value: a.name, text: a.description })));
  } catch {
    // Typed agents still work: the host checks them.
  }
}

$("new-session").addEventListener("click", () => {
  const form = $("new-session-form");
  $("known-projects").replaceChildren(...knownProjects().map((p) => el("option", { value: p })));
  $("new-session-error").hidden = true;
  loadHosts();
  if (!form.elements.project_dir.value && open) form.elements.project_dir.value = sessions.get(open.id)?.project_dir ?? "";
  loadAgents(form.elements.project_dir.value.trim());
  $("new-session-dialog").showModal();
  form.elements.session_name.focus();
});
$("new-session-cancel").addEventListener("click", () => $("new-session-dialog").close());
$("new-session-form").elements.project_dir.addEventListener("change", (e) => loadAgents(e.target.value.trim()));

/** Sessions started from this page: opened once they exist. */
const awaited = new Set();

function openIfAwaited(s) {
  if (!awaited.has(s.session_name)) return;
  awaited.delete(s.session_name);
  openSession(s.session_id, { scroll: true });
}

async function postRun(body) {
  return api("runs", {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
}

$("new-session-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const f = form.elements;
  const body = {
    session_name: f.session_name.value.trim(),
    prompt: f.prompt.value,
    ...(f.project_dir.value.trim() && { project_dir: f.project_dir.value.trim() }),
    ...(f.agent.value.trim() && { agent: f.agent.value.trim() }),
    ...(f.host.value && { host: f.host.value }),
    ...(f.worktree.checked && { worktree: true }),
  };
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const answer = await postRun(body);
    runUpdated(answer.run);
    awaited.add(body.session_name);
    const existing = [...sessions.values()].find((s) => s.session_name === body.session_name);
    if (existing) openIfAwaited(existing);
    form.reset();
    $("new-session-dialog").close();
  } catch (error) {
    $("new-session-error").textContent = error.message;
    $("new-session-error").hidden = false;
  } finally {
    submit.disabled = !access.may_act;
  }
});

/** The reply box: under a session whose run has ended. */
function showReply(s) {
  const form = $("reply");
  form.hidden = !open || s.status === "running" || s.pending_requests > 0;
  if (!open?.reply) $("reply-status").textContent = access.may_act ? "" : GET_THE_LINK;
}

function showReplyStatus(run) {
  $("reply-status").textContent = WAITING.has(run.status) || run.status === "failed_to_start" ? `Reply ${runStatusText(run)}.` : "";
  if (!WAITING.has(run.status)) open.reply = null;
}

$("reply").addEventListener("submit", async (e) => {
  e.preventDefault();
  const s = open && sessions.get(open.id);
  if (!s) return;
  const text = $("reply-text");
  const submit = e.currentTarget.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const answer = await postRun({ session_name: s.session_name, prompt: text.value, resume: true, ...(s.project_dir && { project_dir: s.project_dir }) });
    open.reply = answer.run;
    runUpdated(answer.run);
    showReplyStatus(answer.run);
    text.value = "";
  } catch (error) {
    $("reply-status").textContent = `Not sent: ${error.message}`;
  } finally {
    submit.disabled = !access.may_act;
  }
});

// ---- the live feed --------------------------------------------------------------------

function setConnection(state, text) {
  const conn = $("conn");
  conn.dataset.state = state;
  conn.textContent = text;
}

/** After a (re)connect or a `resync`, the list and timeline may be stale. */
function resync(list) {
  replaceSessions(list);
  showNeedsYou();
  loadRuns();
  loadHosts();
  if (open) {
    if (sessions.has(open.id)) loadEvents();
    else closeTimeline("This session was deleted.");
  }
  loadCosts();
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
  on("event", (m) => {
    addEvent(m.data);
    noticeEvent(m.data);
    if (isRunEnd(m.data)) costsChanged();
  });
  on("run_updated", (m) => runUpdated(m.run));
  on("host_updated", (m) => hostUpdated(m.host));
  on("text_delta", applyDelta);
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
loadAccess().then(connect);
