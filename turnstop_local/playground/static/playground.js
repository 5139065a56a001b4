// The turnstop playground: start a turn in one dialect, watch it, stop it, and show what the
// API says about the stop (terminal event, time to the stream's end, usage, ledger).
// Every call is a same-origin request to the local runtime's real routes, the ones SDKs use.
"use strict";

const $ = (id) => document.getElementById(id);

const DEFAULT_PROMPTS = {
  sessions: "Write a 5000-word essay on cryptography",
  llm: "Write a 5000-word essay on cryptography",
  omni: "Write a 3000-word essay on markets",
  tasks: "Write a 5000-word report on cryptography",
  chat: "Schedule a meeting titled 'Project Review' on March 10th at 3 PM",
};
const LLM_MODEL = "meetkai:functionary-urdu-mini-pak";
const POLL_MS = 250;

let accountId = 1;
let turn = null; // the turn on screen: {dialect, id, ...}

// ------------------------------------------------------------------------------ the page

function setStatus(status) {
  const badge = $("status");
  badge.textContent = status;
  badge.dataset.status = status;
}

// Output arrives: the turn runs (a "cancelling" badge stays until the terminal event).
function markRunning() {
  if (["starting", "queued"].includes($("status").dataset.status)) setStatus("running");
}

function log(text) {
  const item = document.createElement("li");
  item.textContent = text;
  $("log").appendChild(item);
  item.scrollIntoView({ block: "nearest" });
}

function show(id, value) {
  $(id).textContent = typeof value === "string" ? value : JSON.stringify(value);
}

function appendOutput(text) {
  const out = $("output");
  out.textContent += text;
  out.scrollTop = out.scrollHeight;
  turn.tokens += 1;
  show("counts", `${turn.tokens} deltas`);
}

function setOutput(text) {
  $("output").textContent = text;
  $("output").scrollTop = $("output").scrollHeight;
}

function buttons({ start, stop, reconnect }) {
  $("start").disabled = !start;
  $("stop").disabled = !stop;
  $("reconnect").disabled = !reconnect;
}

function resetTurn(dialect) {
  if (turn && turn.abort) turn.abort.abort();
  if (turn) turn.gone = true;
  turn = { dialect, id: null, tokens: 0, lastEventId: null, stopClickedAt: null, ended: false, abort: null };
  setOutput("");
  for (const id of ["stop-latency", "terminal", "usage", "billing", "action", "ledger"]) show(id, "–");
  show("turn-id", "");
  show("counts", "");
  $("stop-latency").removeAttribute("data-ms");
  $("log").textContent = "";
  $("confirmation").hidden = true;
  $("confirmation-message").hidden = true;
  setStatus("idle");
  return turn;
}

function fail(message) {
  setStatus("error");
  show("terminal", message);
  log("error: " + message);
  buttons({ start: true, stop: false, reconnect: false });
}

// ------------------------------------------------------------------------------ HTTP

function authHeaders() {
  if (DIALECTS[turn.dialect].cookie) return {};
  const key = $("api-key").value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

// A body as JSON, or as its text when it is not JSON (a proxy's page, say): never a SyntaxError.
async function jsonOrText(response) {
  const text = await response.text();
  try {
    return text ? JSON.parse(text) : null;
  } catch (_) {
    return text;
  }
}

async function call(method, path, body) {
  const headers = { ...authHeaders() };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const json = await jsonOrText(response);
  log(`${method} ${path} → ${response.status}`);
  return { status: response.status, ok: response.ok, json, headers: response.headers };
}

function errorText(answer) {
  const j = answer.json;
  const message = j && (j.message || (j.error && (j.error.message || j.error)) || j.detail);
  return `${answer.status} ${typeof message === "string" ? message : JSON.stringify(j)}`;
}

// Reads a text/event-stream body as it arrives; calls onEvent({id, event, data}) per event and
// resolves when the body ends. The streaming POSTs cannot use EventSource (it only GETs).
async function readSse(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(buffer.slice(cut).match(/^\r?\n\r?\n/)[0].length + cut);
      const message = { id: null, event: "message", data: [] };
      for (const line of block.split(/\r?\n/)) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const raw = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") message.data.push(raw);
        else if (field === "id") message.id = raw;
        else if (field === "event") message.event = raw;
      }
      if (!message.data.length) continue;
      const text = message.data.join("\n");
      try {
        message.data = JSON.parse(text);
      } catch (_) {
        message.data = text;
      }
      onEvent(message);
    }
  }
}

// Opens a stream and follows it to its end; a Reconnect aborts it (the turn goes on).
async function follow(current, method, path, body, extraHeaders, onEvent) {
  current.abort = new AbortController();
  const headers = { ...authHeaders(), ...extraHeaders };
  const init = { method, headers, signal: current.abort.signal, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
    log(`${method} ${path} → ${response.status} (stream)`);
    if (!response.ok) {
      const answer = { status: response.status, json: await response.json().catch(() => null) };
      fail(errorText(answer));
      return null;
    }
    if (current.onHeaders) current.onHeaders(response.headers);
    await readSse(response, (message) => {
      if (message.id) current.lastEventId = message.id;
      onEvent(message);
    });
  } catch (error) {
    if (error.name === "AbortError") return null; // Reconnect dropped it on purpose
    if (!current.gone) fail(String(error));
    return null;
  }
  if (!current.gone) streamEnded(current);
  return response;
}

// The stream (or the polling) is over: measure from the Stop click, show the ledger.
function streamEnded(current) {
  if (current.ended || current.gone) return;
  current.ended = true;
  if (current.stopClickedAt !== null) {
    const ms = Math.round(performance.now() - current.stopClickedAt);
    $("stop-latency").dataset.ms = String(ms);
    show("stop-latency", `${ms} ms from the Stop click to the end of the stream`);
  }
  $("turn").dataset.ended = "true";
  log("stream ended");
  buttons({ start: true, stop: false, reconnect: DIALECTS[current.dialect].resumable && !!current.id });
  if (DIALECTS[current.dialect].ledger) showLedger(current);
}

// A polled omni response reads canceled from the cancel's answer on, a moment before its worker
// writes the end (with the ledger entry): wait for the entry a little (ledgerLags).
async function showLedger(current, tries = 40) {
  const answer = await call("GET", `/v1/ledger?response_id=${encodeURIComponent(current.id)}`);
  if (current.gone) return;
  if (!answer.ok) {
    show("ledger", errorText(answer));
    return;
  }
  const entries = (answer.json && answer.json.data) || [];
  if (!entries.length && DIALECTS[current.dialect].ledgerLags && tries > 1) {
    setTimeout(() => showLedger(current, tries - 1), POLL_MS);
    return;
  }
  show("ledger", entries.length ? entries.map((e) => JSON.stringify(e)).join("\n") : "no entries for this turn: nothing recorded, nothing billed");
  show("billing", billingSummary(entries));
}

// What the ledger says about money: sessions write nothing for a cancelled stream, LLM and omni
// a usage entry with billed: false, tasks a charge and its refund.
function billingSummary(entries) {
  const sum = (kind) => entries.filter((e) => e.kind === kind).reduce((n, e) => n + Number(e.credits || 0), 0);
  const charged = sum("charge");
  const refunded = sum("refund");
  if (charged > 0) {
    const billed = charged - refunded > 1e-9;
    return `billed: ${billed} (charged ${charged} credits, refunded ${refunded})`;
  }
  const billed = entries.some((e) => e.billed === true || e.kind === "debit");
  if (!entries.length) return "billed: false (no ledger entry for this turn)";
  return `billed: ${billed} (${entries.map((e) => e.kind).join(", ")} recorded)`;
}

function terminal(current, name, status, details) {
  current.terminal = name;
  setStatus(status);
  show("terminal", name);
  if (details && details.usage) show("usage", compactUsage(details.usage));
}

function compactUsage(usage) {
  const keep = ["input_tokens", "output_tokens", "total_tokens"].filter((k) => k in usage);
  return keep.length ? Object.fromEntries(keep.map((k) => [k, usage[k]])) : usage;
}

// ------------------------------------------------------------------------------ dialects

// sessions, llm, omni, tasks, chat and DIALECTS are in dialects.js (loaded first).

// ------------------------------------------------------------------------------ chat sign-in

async function refreshSignIn() {
  const answer = await fetch("/auth/session", { credentials: "same-origin" });
  const body = await answer.json().catch(() => ({}));
  const signedIn = answer.ok && body.signed_in;
  show("signin-state", signedIn ? `signed in as ${body.user} (tenant ${body.tenant})` : "not signed in");
  $("signin-state").dataset.user = signedIn ? body.user : "";
  $("sign-in").hidden = !!signedIn;
  $("login-hint").hidden = !!signedIn;
  $("sign-out").hidden = !signedIn;
}

function signIn() {
  // The sign-in is the real one: authorization code + PKCE against the OpenID provider (the dev
  // provider locally), back here with the session cookie set.
  const hint = encodeURIComponent($("login-hint").value.trim() || "dev");
  const back = encodeURIComponent("/playground?dialect=chat");
  window.location.assign(`/auth/login?login_hint=${hint}&return_to=${back}`);
}

async function signOut() {
  await fetch("/auth/logout", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}" });
  chat.threadId = null;
  refreshSignIn();
}

// ------------------------------------------------------------------------------ wiring

function chooseDialect(dialect, keepPrompt) {
  $("dialect").value = dialect;
  const isChat = dialect === "chat";
  $("signin").hidden = !isChat;
  $("key-field").hidden = isChat; // chat signs in with a cookie, not a key
  $("action-row").hidden = !isChat;
  $("ledger-box").hidden = isChat; // the chat seed has no billing
  if (!keepPrompt) $("prompt").value = DEFAULT_PROMPTS[dialect];
  resetTurn(dialect);
  buttons({ start: true, stop: false, reconnect: false });
  if (isChat) refreshSignIn();
  const url = new URL(window.location.href);
  url.searchParams.set("dialect", dialect);
  history.replaceState(null, "", url.pathname + url.search);
}

async function loadDevKey() {
  const answer = await fetch("/playground/dev-key", { credentials: "same-origin" });
  if (answer.ok) {
    const dev = await answer.json();
    $("api-key").value = dev.key;
    accountId = (dev.account_ids && dev.account_ids[0]) || 1;
    show("key-note", `the dev key of this local runtime (tenant ${dev.tenant}, account ${accountId})`);
  } else {
    show("key-note", "paste an API key: python -m turnstop_local keys create --tenant T --accounts 1");
  }
}

function bind() {
  $("dialect").addEventListener("change", (e) => chooseDialect(e.target.value, false));
  $("start").addEventListener("click", () => {
    const current = resetTurn($("dialect").value);
    buttons({ start: false, stop: false, reconnect: false });
    setStatus("starting");
    DIALECTS[current.dialect].start(current, $("prompt").value).catch((error) => fail(String(error)));
  });
  $("stop").addEventListener("click", () => {
    if (!turn || !turn.id || turn.ended) return;
    turn.stopClickedAt = performance.now();
    $("stop").disabled = true;
    DIALECTS[turn.dialect].stop(turn).catch((error) => fail(String(error)));
  });
  $("reconnect").addEventListener("click", () => {
    if (!turn || !turn.id) return;
    if (turn.abort) turn.abort.abort();
    const current = turn;
    current.ended = false;
    $("turn").removeAttribute("data-ended");
    log(`reconnect after event ${current.lastEventId || "(none)"}`);
    setOutput($("output").textContent);
    DIALECTS[current.dialect].reconnect(current).catch((error) => fail(String(error)));
  });
  $("confirm").addEventListener("click", () => chat.decide(turn, "/chat/confirm"));
  $("cancel-action").addEventListener("click", () => chat.decide(turn, "/chat/cancel"));
  $("sign-in").addEventListener("click", signIn);
  $("sign-out").addEventListener("click", signOut);
}

function listDialects() {
  for (const [name, dialect] of Object.entries(DIALECTS)) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = dialect.label;
    $("dialect").append(option);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  listDialects();
  bind();
  const wanted = new URL(window.location.href).searchParams.get("dialect");
  chooseDialect(wanted && Object.hasOwn(DIALECTS, wanted) ? wanted : "sessions", false);
  loadDevKey();
});
