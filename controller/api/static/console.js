// Kendali web console: the topology map, each OPD's rate against its cap, recent events,
// and a form to change an OPD's caps. Everything comes from the controller's REST API
// with the user's own token (kept in sessionStorage: this tab only). Text from the API is
// always set as text, never parsed as HTML.

import { drawMap, mbit } from "./map.js";

const REFRESH_MS = 5000;
const TOKEN_KEY = "kendali.token";
const $ = (id) => document.getElementById(id);

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let timer = null;
let policies = {};

class ApiError extends Error {
  constructor(status, error) {
    super((error && error.problem) || `HTTP ${status}`);
    this.status = status;
    this.field = error ? error.field : null;
    this.problem = error ? error.problem : "";
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch {
    throw new ApiError(0, { problem: "the controller cannot be reached", field: null });
  }
  let data = null;
  const text = await resp.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, data && data.error);
  return data;
}

function node(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ---- sign in / out -----------------------------------------------------------------------

function showLogin(message, tone = "bad") {
  if (timer) clearInterval(timer);
  timer = null;
  $("main").hidden = true;
  $("signout").hidden = true;
  $("login").hidden = false;
  $("login-msg").textContent = message || "";
  $("login-msg").className = `msg ${tone}`;
  $("token").focus();
}

async function signIn(candidate) {
  token = candidate;
  try {
    await api("GET", "/v1/policies");
  } catch (err) {
    token = "";
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(err.status === 401 ? "This token was not accepted. Check it and try again." : explain(err));
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("login").hidden = true;
  $("main").hidden = false;
  $("signout").hidden = false;
  await refresh();
  timer = setInterval(refresh, REFRESH_MS);
}

function signOut() {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("token").value = "";
  showLogin("Signed out.", "good");
}

// ---- errors in plain words ------------------------------------------------------------------

const FIELD_LABELS = {
  download_kbps: "Download cap",
  upload_kbps: "Upload cap",
  subnets: "Subnets",
  name: "Name",
  id: "OPD",
};

function explain(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err.message || err}`;
  const field = err.field ? FIELD_LABELS[err.field.split(".")[0]] || err.field : "";
  const what = field ? `${field}: ${err.problem}` : err.problem;
  switch (err.status) {
    case 0:
      return "The controller cannot be reached. Check the network or that the controller is running.";
    case 400:
      return `Not accepted. ${what}`;
    case 401:
      return "Your token is no longer accepted. Sign in again.";
    case 403:
      return "This token may only read. Changing caps needs a token with the write role.";
    case 404:
      return `Not found. ${what}`;
    case 409:
      return `Refused because it conflicts with another policy. ${what}`;
    case 413:
      return "The request is too large.";
    case 503:
      return `The controller could not do it right now. ${what}`;
    default:
      return `The controller answered ${err.status}. ${what}`;
  }
}

// ---- refresh --------------------------------------------------------------------------------

async function refresh() {
  const results = await Promise.allSettled([
    api("GET", "/v1/health"),
    api("GET", "/v1/topology"),
    api("GET", "/v1/usage"),
    api("GET", "/v1/events?limit=60"),
    api("GET", "/v1/policies"),
  ]);
  if (results.some((r) => r.status === "rejected" && r.reason.status === 401)) {
    signOut();
    showLogin("Your token is no longer accepted. Sign in again.");
    return;
  }
  const [health, topo, usage, events, pols] = results;
  showStatus(health, results);
  if (topo.status === "fulfilled") showMap(topo.value);
  if (pols.status === "fulfilled") showPolicies(pols.value.policies);
  showUsage(usage);
  if (events.status === "fulfilled") showEvents(events.value.events);
}

function showStatus(health, results) {
  const s = $("status");
  const now = new Date().toLocaleTimeString([], { hour12: false });
  const failed = results.find((r) => r.status === "rejected");
  if (health.status !== "fulfilled") {
    s.className = "status bad";
    s.textContent = `${explain(health.reason)} (at ${now})`;
    return;
  }
  const h = health.value;
  const declared = h.switches_declared !== null && h.switches_declared !== undefined ? ` of ${h.switches_declared}` : "";
  const parts = [
    h.status === "ok" ? "OK" : "DEGRADED",
    `${h.switches_connected}${declared} switches`,
    `${h.links_up} links up`,
    `${h.failovers} failovers`,
    `updated ${now}`,
  ];
  s.className = `status ${h.status === "ok" && !failed ? "ok" : "warn"}`;
  s.textContent = parts.join(" · ") + (failed ? ` · ${explain(failed.reason)}` : "");
}

function showMap(topo) {
  const map = $("map");
  map.replaceChildren(drawMap(topo));
  const d = topo.discrepancies || [];
  $("discrepancies").textContent = d.length ? `Differs from the declared topology: ${d.join("; ")}` : "";
}

function capText(kbps) {
  return kbps >= 1000 ? `${+(kbps / 1000).toFixed(3)} Mbit/s` : `${kbps} kbit/s`;
}

function bar(dir, label) {
  const capKbps = dir.cap_kbps;
  const share = typeof dir.share_of_cap === "number" ? dir.share_of_cap : null;
  const fill = node("span", { class: "fill" });
  let level = "none";
  if (capKbps === null || capKbps === undefined) {
    fill.style.width = "0%";
  } else {
    const pct = Math.max(0, Math.min(1, share || 0)) * 100;
    fill.style.width = `${pct.toFixed(1)}%`;
    level = share >= 0.95 ? "high" : share >= 0.7 ? "mid" : "low";
  }
  const cap = capKbps === null || capKbps === undefined ? "uncapped" : `of ${capText(capKbps)}`;
  const dropping = dir.dropped_bps ? node("span", { class: "drop" }, ` dropping ${mbit(dir.dropped_bps)}`) : null;
  return node(
    "div",
    { class: `bar level-${level}` },
    node("span", { class: "dir" }, label),
    node("span", { class: "track" }, fill),
    node("span", { class: "figure" }, `${mbit(dir.bps)} ${cap}`, dropping),
  );
}

function showUsage(result) {
  const box = $("usage");
  if (result.status !== "fulfilled") {
    box.replaceChildren(node("p", { class: "msg" }, explain(result.reason)));
    return;
  }
  const opds = [...(result.value.opds || [])].sort(
    (a, b) => (a.kind === b.kind ? 0 : a.kind === "policy" ? -1 : 1) || (a.name || a.opd).localeCompare(b.name || b.opd),
  );
  if (!opds.length) {
    box.replaceChildren(node("p", { class: "hint" }, "No OPD counted yet."));
    return;
  }
  box.replaceChildren(
    ...opds.map((o) => {
      const row = node(
        "div",
        { class: `opd kind-${o.kind}`, "data-opd": o.opd, title: o.kind === "policy" ? "click to change its caps" : "" },
        node("div", { class: "opd-name" }, o.name || o.opd, node("span", { class: "opd-id" }, ` ${o.opd}`)),
        bar(o.down || {}, "↓"),
        bar(o.up || {}, "↑"),
      );
      if (o.kind === "policy") row.addEventListener("click", () => choose(o.opd));
      return row;
    }),
  );
}

function when(t) {
  const d = new Date(t * 1000);
  const time = d.toLocaleTimeString([], { hour12: false });
  return d.toDateString() === new Date().toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

const KIND_LABELS = {
  failover: "failover",
  link_silent: "link silent",
  link_up: "link up",
  switch_up: "switch up",
  switch_down: "switch down",
  drift_repaired: "repaired",
  topology_check: "topology",
  policy: "policy",
  settings: "settings",
};

function showEvents(events) {
  const list = $("events");
  if (!events.length) {
    list.replaceChildren(node("li", { class: "hint" }, "Nothing has happened yet."));
    return;
  }
  list.replaceChildren(
    ...events.map((e) =>
      node(
        "li",
        { class: `event kind-${e.kind}`, "data-kind": e.kind },
        node("time", { datetime: new Date(e.t * 1000).toISOString() }, when(e.t)),
        node("span", { class: "badge" }, KIND_LABELS[e.kind] || e.kind),
        node("span", { class: "text" }, e.text),
        e.who ? node("span", { class: "who" }, e.who) : null,
      ),
    ),
  );
}

// ---- the caps form -------------------------------------------------------------------------

function showPolicies(list) {
  policies = Object.fromEntries(list.map((p) => [p.id, p]));
  const select = $("opd");
  const current = select.value;
  const ids = list.map((p) => p.id);
  const same = ids.length === select.options.length && ids.every((id, i) => select.options[i].value === id);
  if (!same) {
    select.replaceChildren(...list.map((p) => node("option", { value: p.id }, `${p.name} (${p.id})`)));
    if (ids.includes(current)) select.value = current;
    fillForm();
  }
}

function choose(id) {
  $("opd").value = id;
  fillForm();
  $("down").focus();
}

function fillForm() {
  const p = policies[$("opd").value];
  if (!p) return;
  $("down").value = p.download_kbps / 1000;
  $("up").value = p.upload_kbps / 1000;
  hint();
}

function kbps(input) {
  const v = Number(input.value);
  return Number.isFinite(v) ? Math.round(v * 1000) : NaN;
}

function hint() {
  const p = policies[$("opd").value];
  const now = p ? `Now: download ${p.download_kbps} kbit/s, upload ${p.upload_kbps} kbit/s. ` : "";
  $("cap-hint").textContent = `${now}New: ${kbps($("down"))} and ${kbps($("up"))} kbit/s.`;
}

async function save(ev) {
  ev.preventDefault();
  const id = $("opd").value;
  const msg = $("form-msg");
  const down = kbps($("down"));
  const up = kbps($("up"));
  msg.className = "msg";
  if (!Number.isFinite(down) || !Number.isFinite(up)) {
    msg.className = "msg bad";
    msg.textContent = "Give both caps as numbers of Mbit/s, e.g. 20 or 2.5.";
    return;
  }
  $("save").disabled = true;
  msg.textContent = "Saving…";
  try {
    const current = await api("GET", `/v1/policies/${encodeURIComponent(id)}`); // the other fields, as they are now
    const saved = await api("PUT", `/v1/policies/${encodeURIComponent(id)}`, {
      ...current,
      download_kbps: down,
      upload_kbps: up,
    });
    policies[id] = saved;
    msg.className = "msg good";
    const caps = `download ${capText(saved.download_kbps)}, upload ${capText(saved.upload_kbps)}`;
    msg.textContent = `Saved: ${saved.name} now has ${caps}. The switches are being updated.`;
    await refresh();
  } catch (err) {
    msg.className = "msg bad";
    msg.textContent = explain(err);
    if (err.status === 401) showLogin("Your token is no longer accepted. Sign in again.");
  } finally {
    $("save").disabled = false;
  }
}

// ---- start ---------------------------------------------------------------------------------

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const t = $("token").value.trim();
  if (t) signIn(t);
});
$("signout").addEventListener("click", signOut);
$("cap-form").addEventListener("submit", save);
$("opd").addEventListener("change", fillForm);
$("down").addEventListener("input", hint);
$("up").addEventListener("input", hint);

if (token) signIn(token);
else showLogin("");
