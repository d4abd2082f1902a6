/// The web dashboard: one page with its CSS and JavaScript inside (no framework, nothing fetched from elsewhere).
/// It opens `/v1/events` (Server-Sent Events) and re-renders on every snapshot.
enum DashboardPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mgpu</title>
<style>
:root { --bg:#0f1115; --card:#181b22; --line:#2a2f3a; --text:#e6e8ee; --dim:#8b93a5; --ok:#3fb950; --bad:#f85149; --warn:#d29922; --acc:#58a6ff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; flex-wrap:wrap; gap:12px 24px; align-items:baseline; padding:12px 16px; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; }
.stat b { font-size:16px; }
#live { margin-left:auto; color:var(--dim); }
#live.on::before { content:"● "; color:var(--ok); }
#live.off::before { content:"● "; color:var(--bad); }
main { padding:12px 16px; display:grid; gap:16px; }
h2 { font-size:15px; margin:4px 0 8px; color:var(--dim); font-weight:600; }
#nodes { display:grid; grid-template-columns:repeat(auto-fill,minmax(320px,1fr)); gap:12px; }
.node { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px; }
.node.down { opacity:.7; border-color:var(--bad); }
.node .top { display:flex; gap:8px; align-items:center; flex-wrap:wrap; }
.badge { font-size:11px; padding:1px 6px; border-radius:10px; border:1px solid var(--line); }
.badge.up { color:var(--ok); border-color:var(--ok); } .badge.down { color:var(--bad); border-color:var(--bad); }
.badge.sim { color:var(--warn); border-color:var(--warn); }
.age { margin-left:auto; color:var(--dim); font-size:12px; }
.bars { display:grid; grid-template-columns:40px 1fr 80px; gap:2px 8px; align-items:center; margin:8px 0; font-size:12px; color:var(--dim); }
.bar { height:8px; background:var(--line); border-radius:4px; overflow:hidden; }
.bar > i { display:block; height:100%; background:var(--acc); }
.gpus { display:grid; grid-template-columns:repeat(auto-fill,minmax(140px,1fr)); gap:8px; }
.gpu { border:1px solid var(--line); border-radius:6px; padding:6px; font-size:12px; }
.gpu.busy { border-color:var(--acc); } .gpu.outside { border-color:var(--warn); }
.gpu .util { font-size:18px; font-weight:600; }
.gpu .who { color:var(--dim); overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.gpu .who.outside { color:var(--warn); }
svg.spark { width:100%; height:28px; display:block; }
.wrap { overflow-x:auto; }
table { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); border-radius:8px; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--dim); font-weight:600; font-size:12px; }
td.reason { white-space:normal; color:var(--dim); }
a { color:var(--acc); text-decoration:none; }
.st-RUNNING { color:var(--acc); } .st-PENDING { color:var(--warn); } .st-COMPLETED { color:var(--ok); }
.st-FAILED, .st-NODE_FAIL, .st-TIMEOUT { color:var(--bad); } .st-CANCELLED { color:var(--dim); }
.empty { color:var(--dim); padding:8px; }
.filters { display:flex; flex-wrap:wrap; gap:8px 14px; align-items:center; margin:0 0 8px; color:var(--dim); font-size:12px; }
.filters input, .filters select, .filters button { background:var(--card); color:var(--text); border:1px solid var(--line); border-radius:4px; padding:3px 6px; font:inherit; }
.dim { color:var(--dim); }
button.act { background:transparent; color:var(--dim); border:1px solid var(--line); border-radius:4px; padding:1px 8px; font:inherit; font-size:12px; cursor:pointer; }
button.act:hover { color:var(--bad); border-color:var(--bad); }
#who { color:var(--dim); } #who button { margin-left:6px; }
#notice { padding:6px 16px; border-bottom:1px solid var(--line); } #notice.bad { color:var(--bad); } #notice:empty { display:none; }
#signin { max-width:560px; margin:48px auto; background:var(--card); border:1px solid var(--line); border-radius:8px; padding:20px; }
#signin input { width:100%; background:var(--bg); color:var(--text); border:1px solid var(--line); border-radius:4px; padding:6px 8px; font:13px ui-monospace,monospace; margin:8px 0; }
#signin button { background:var(--acc); color:#000; border:0; border-radius:4px; padding:6px 14px; font:inherit; cursor:pointer; }
#signin-error { color:var(--bad); } code { background:var(--bg); padding:0 4px; border-radius:3px; }
[hidden] { display:none !important; }
</style>
</head>
<body data-live="0">
<header>
  <h1>mgpu</h1>
  <span class="stat">nodes <b id="nodes-up">–</b>/<b id="node-count">–</b> up</span>
  <span class="stat">GPUs <b id="gpus-free">–</b> free of <b id="gpu-count">–</b></span>
  <span class="stat">jobs <b id="jobs-running">–</b> running, <b id="jobs-pending">–</b> pending</span>
  <span id="live" class="off">connecting…</span>
  <span id="who"></span>
</header>
<div id="notice" role="status"></div>
<form id="signin" hidden>
  <h2>Sign in to mgpu</h2>
  <div>Paste your mgpu token. On a machine where you use mgpu it is in <code>~/.config/mgpu/token</code>
  (or the file <code>mgpu up</code> names); an admin makes one with <code>mgpu admin user add NAME</code>.
  Or run <code>mgpu dashboard</code> for a link that signs you in once.</div>
  <input name="token" type="password" autocomplete="off" spellcheck="false" placeholder="token (64 hex digits)" aria-label="token">
  <button>Sign in</button> <span id="signin-error"></span>
  <div class="dim" style="margin-top:8px">The token stays in this browser for this address only, and leaves it when you sign out.</div>
</form>
<main id="app" hidden>
  <section><h2>My jobs</h2><div class="wrap"><table id="mine"><thead><tr><th>Job</th><th>Name</th><th>State</th><th>GPUs</th><th>Elapsed</th><th>Why / reason</th><th></th></tr></thead><tbody></tbody></table></div></section>
  <section><h2>Nodes</h2><div id="nodes"><div class="empty">waiting for data…</div></div></section>
  <section><h2>Queue</h2><div class="wrap"><table id="queue"><thead><tr><th>Job</th><th>Name</th><th>User</th><th>State</th><th>GPUs</th><th>Elapsed</th><th>Reason</th><th></th></tr></thead><tbody></tbody></table></div></section>
  <section><h2>Recently finished</h2><div class="wrap"><table id="finished"><thead><tr><th>Job</th><th>Name</th><th>User</th><th>State</th><th>Exit</th><th>GPUs</th><th>Ran</th></tr></thead><tbody></tbody></table></div></section>
  <section><h2>History</h2>
    <form id="hist-form" class="filters">
      <label>user <input name="user" size="10" placeholder="you (an admin: anyone, * for all)"></label>
      <label>state <select name="state"><option value="">any</option><option>COMPLETED</option><option>FAILED</option><option>CANCELLED</option><option>TIMEOUT</option><option>NODE_FAIL</option></select></label>
      <label>ended in the last <select name="since"><option value="3600">hour</option><option value="86400" selected>day</option><option value="604800">week</option><option value="2592000">30 days</option><option value="">any time</option></select></label>
      <label>node <input name="node" size="8"></label> <label>name <input name="name" size="10"></label>
      <button>show</button> <span id="hist-note" class="dim"></span>
    </form>
    <div class="wrap"><table id="history"><thead><tr><th>Job</th><th>Name</th><th>User</th><th>State</th><th>Exit</th><th>Ended</th><th>Ran</th><th>Waited</th><th>GPU-h</th><th>Energy</th><th>Util</th><th>Nodes</th></tr></thead><tbody></tbody></table></div></section>
</main>
<script>
"use strict";
let snap = null, received = 0;
\#(authScript)
const $ = id => document.getElementById(id);
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
function dur(s) { s = Math.max(0, Math.floor(s)); const d = Math.floor(s/86400), h = Math.floor(s%86400/3600), m = Math.floor(s%3600/60), x = s%60;
  const p = n => String(n).padStart(2, "0"); return d ? `${d}-${p(h)}:${p(m)}:${p(x)}` : h ? `${h}:${p(m)}:${p(x)}` : `${m}:${p(x)}`; }
function bar(label, frac, text) { const w = Math.max(0, Math.min(100, frac * 100));
  return `<span>${label}</span><span class="bar"><i style="width:${w.toFixed(1)}%"></i></span><span>${esc(text)}</span>`; }
function spark(values, max, color) {
  const pts = (values || []).map((v, i, a) => v == null ? null : [a.length < 2 ? 0 : i / (a.length - 1) * 100, 28 - Math.min(1, v / max) * 26 - 1]).filter(Boolean);
  if (pts.length < 2) return `<svg class="spark" viewBox="0 0 100 28" preserveAspectRatio="none"></svg>`;
  return `<svg class="spark" viewBox="0 0 100 28" preserveAspectRatio="none"><polyline fill="none" stroke="${color}" stroke-width="1.5" vector-effect="non-scaling-stroke" points="${pts.map(p => p.join(",")).join(" ")}"/></svg>`;
}
function holders() { const m = {}; for (const j of snap.jobs) if (j.state === "RUNNING") for (const p of j.parts) for (const g of p.gpus) m[p.nodeId + ":" + g] = j; return m; }
function renderNodes() {
  const held = holders(), now = snap.now + (Date.now() - received) / 1000;
  if (!snap.nodes.length) { $("nodes").innerHTML = `<div class="empty">no node has registered yet: start one with <code>mgpu node</code></div>`; return; }
  $("nodes").innerHTML = snap.nodes.map(n => {
    const up = n.state === "UP", t = up ? n.telemetry : null, age = Math.max(0, now - n.lastSeen);
    const hist = (snap.history[n.id] || {gpus: []}).gpus;
    const gpus = n.gpus.map(g => {
      const r = t ? (t.gpus || []).find(x => x.index === g.index) : null, job = held[n.id + ":" + g.index];
      const outside = (n.outsideGPUs || []).includes(g.index), h = hist.find(x => x.index === g.index) || {};
      let who = `<div class="who">free</div>`;
      if (job) who = `<div class="who" title="${esc(job.name)}"><a href="/jobs/${job.id}">${job.id}</a> ${esc(job.user)} · ${esc(job.name)}</div>`;
      else if (outside) { const p = (r && r.processes || []).find(p => !p.jobId);
        who = `<div class="who outside">in use outside mgpu${p ? ` · pid ${p.pid} ${esc(p.user)}` : ""}</div>`; }
      if (r && r.unhealthy) who = `<div class="who outside" data-unhealthy="${n.id}:${g.index}" title="${esc(r.unhealthy)}">unhealthy: ${esc(r.unhealthy)}</div>` + (job ? who : "");
      const util = r && r.utilization != null ? `${Math.round(r.utilization)}%` : up ? "–" : "";
      const mem = r && r.memoryUsedMB != null ? `${(r.memoryUsedMB/1024).toFixed(1)}/${((r.memoryTotalMB || g.memoryMB)/1024).toFixed(0)} GB` : "";
      const temp = r && r.temperatureC != null ? ` · ${Math.round(r.temperatureC)}°C` : "";
      return `<div class="gpu ${job ? "busy" : ""} ${outside ? "outside" : ""}" data-gpu="${n.id}:${g.index}">
        <div>GPU ${g.index}${g.simulated ? ` <span class="badge sim">sim</span>` : ""} <span class="util">${util}</span></div>
        <div class="who">${esc(g.name)}</div><div>${mem}${temp}</div>${who}
        ${up ? spark(h.utilization, 100, "#58a6ff") + spark(h.memoryUsedMB, g.memoryMB || 1, "#d29922") : ""}</div>`;
    }).join("");
    const cpu = t && t.cpuPercent != null ? bar("CPU", t.cpuPercent / 100, `${Math.round(t.cpuPercent)}%`) : "";
    const ram = t && t.memoryTotalMB ? bar("RAM", t.memoryUsedMB / t.memoryTotalMB, `${(t.memoryUsedMB/1024).toFixed(1)}/${(t.memoryTotalMB/1024).toFixed(0)} GB`) : "";
    return `<div class="node ${up ? "" : "down"}" data-node="${esc(n.id)}">
      <div class="top"><b>${esc(n.id)}</b><span class="badge ${up ? "up" : "down"}">${up ? "UP" : "DOWN"}</span>
      ${n.simulated ? `<span class="badge sim">simulated</span>` : ""}${n.drain ? `<span class="badge down" title="${esc(n.drain.reason)} (by ${esc(n.drain.by)})" data-drain="${esc(n.drainState)}">${esc(n.drainState)}: ${esc(n.drain.reason)}</span>` : ""}<span class="age">${esc(n.address)} · heartbeat ${Math.round(age)}s ago</span>
      ${me && me.admin ? (n.drain ? `<button class="act" data-resume="${esc(n.id)}">resume</button>` : `<button class="act" data-drain-node="${esc(n.id)}">drain</button>`) : ""}</div>
      ${up ? `<div class="bars">${cpu}${ram}</div>` : `<div class="empty">not responding: numbers hidden until it reports again</div>`}
      <div class="gpus">${gpus || `<div class="empty">no GPU</div>`}</div></div>`;
  }).join("");
}
const gpusOf = j => j.parts.length ? j.parts.map(p => p.gpus.length ? `${p.nodeId}:gpu${p.gpus.join(",")}` : `${p.nodeId}:cpu`).join(", ") : String(j.request.pinned ? "pinned" : j.request.gpusPerNode * j.request.nodes);
const isActive = j => j.state === "RUNNING" || j.state === "PENDING";
// Only what the master would allow: a user's own jobs, an admin's any job (the API checks again).
const mayCancel = j => me && (me.admin || j.user === me.name) && isActive(j) && !j.cancelRequested;
const cancelButton = j => mayCancel(j) ? `<button class="act" data-cancel="${j.id}" data-name="${esc(j.name)}">cancel</button>` : "";
function renderQueue() {
  const now = snap.now + (Date.now() - received) / 1000;
  const active = snap.jobs.filter(isActive);
  const mine = snap.jobs.filter(j => me && j.user === me.name);
  const mineShown = mine.filter(isActive).concat(mine.filter(j => !isActive(j)).slice(-10).reverse());
  $("mine").tBodies[0].innerHTML = mineShown.length ? mineShown.map(j => `<tr data-mine="${j.id}"><td><a href="/jobs/${j.id}">${j.id}</a></td><td>${esc(j.name)}</td>
    <td class="st-${j.state}">${j.state}</td><td>${esc(gpusOf(j))}</td><td>${dur((j.endTime || now) - (j.startTime || j.submitTime))}</td>
    <td class="reason">${esc(j.note || j.reason || (j.exit ? (j.exit.signal != null ? "signal " + j.exit.signal : j.exit.code != null ? "exit " + j.exit.code : "") : ""))}</td><td>${cancelButton(j)}</td></tr>`).join("")
    : `<tr><td colspan="7" class="empty">none in the last hour: submit one with <code>mgpu submit</code></td></tr>`;
  $("queue").tBodies[0].innerHTML = active.length ? active.map(j => `<tr data-job="${j.id}"><td><a href="/jobs/${j.id}">${j.id}</a></td><td>${esc(j.name)}</td><td>${esc(j.user)}</td>
    <td class="st-${j.state}">${j.state}</td><td>${esc(gpusOf(j))}</td><td>${dur(now - (j.startTime || j.submitTime))}</td><td class="reason">${esc(j.note || "")}</td><td>${cancelButton(j)}</td></tr>`).join("")
    : `<tr><td colspan="8" class="empty">no running or pending job</td></tr>`;
  const done = snap.jobs.filter(j => !isActive(j)).slice(-20).reverse();
  $("finished").tBodies[0].innerHTML = done.length ? done.map(j => { const e = j.exit || {};
    const exit = e.signal != null ? `signal ${e.signal}` : e.code != null ? `${e.code}` : (e.error ? "error" : "–");
    return `<tr data-job="${j.id}"><td><a href="/jobs/${j.id}">${j.id}</a></td><td>${esc(j.name)}</td><td>${esc(j.user)}</td><td class="st-${j.state}">${j.state}</td>
      <td>${esc(exit)}</td><td>${esc(gpusOf(j))}</td><td>${dur((j.endTime || now) - (j.startTime || j.endTime || now))}</td></tr>`; }).join("")
    : `<tr><td colspan="7" class="empty">none in the last hour</td></tr>`;
}
// Actions: every one goes through the same API and checks as the CLI; the answer is shown in the notice line.
document.addEventListener("click", ev => {
  const b = ev.target.closest("button[data-cancel],button[data-drain-node],button[data-resume]");
  if (!b) return;
  if (b.dataset.cancel) { if (confirm(`Cancel job ${b.dataset.cancel} (${b.dataset.name})?`)) cancelJob(b.dataset.cancel).catch(e => notice(String(e), true)); }
  else if (b.dataset.drainNode) { const reason = prompt(`Drain ${b.dataset.drainNode}: no new jobs go there, running ones finish. Reason?`, "maintenance");
    if (reason != null) nodeAction(b.dataset.drainNode, "drain", reason).catch(e => notice(String(e), true)); }
  else if (confirm(`Resume ${b.dataset.resume}: it takes jobs again?`)) nodeAction(b.dataset.resume, "resume").catch(e => notice(String(e), true));
});
async function nodeAction(id, action, reason) {
  const res = await api(`/v1/admin/nodes/${encodeURIComponent(id)}/${action}`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: action === "drain" ? JSON.stringify({ reason }) : undefined });
  const body = await res.json();
  notice(res.ok ? `${id}: ${action === "drain" ? "draining (" + reason + ")" : "resumed"}` : body.error.message, !res.ok);
}
function render() {
  if (!snap) return;
  const up = snap.nodes.filter(n => n.state === "UP");
  $("node-count").textContent = snap.nodes.length; $("nodes-up").textContent = up.length;
  $("gpu-count").textContent = snap.nodes.reduce((s, n) => s + n.gpus.length, 0);
  $("gpus-free").textContent = up.reduce((s, n) => s + Math.max(0, n.gpus.length - n.busyGPUs.length), 0);
  $("jobs-running").textContent = snap.jobs.filter(j => j.state === "RUNNING").length;
  $("jobs-pending").textContent = snap.jobs.filter(j => j.state === "PENDING").length;
  renderNodes(); renderQueue();
}
// History (GET /v1/history): on load, on "show", and every 30 s.
async function loadHistory(ev) {
  if (ev) ev.preventDefault();
  const f = new FormData($("hist-form")), q = new URLSearchParams({limit: "100"});
  for (const k of ["user", "state", "node", "name"]) if (f.get(k)) q.set(k, f.get(k));
  if (f.get("since")) q.set("since", String(Date.now() / 1000 - Number(f.get("since"))));
  const res = await api("/v1/history?" + q);
  const body = await res.json();
  if (!res.ok) { $("hist-note").textContent = body.error ? body.error.message : "HTTP " + res.status; return; }
  $("hist-note").textContent = `${body.records.length} job${body.records.length === 1 ? "" : "s"}`;
  const when = t => { const d = new Date(t * 1000); return d.toLocaleDateString() === new Date().toLocaleDateString() ? d.toLocaleTimeString() : d.toLocaleString(); };
  $("history").tBodies[0].innerHTML = body.records.length ? body.records.map(r => `<tr data-history="${r.id}"><td><a href="/jobs/${r.id}">${r.id}</a></td>
    <td>${esc(r.name)}</td><td>${esc(r.user)}</td><td class="st-${r.state}">${r.state}</td><td>${esc(r.exit || "–")}</td><td>${esc(when(r.endTime))}</td>
    <td>${dur(r.elapsed)}</td><td>${r.wait == null ? "–" : dur(r.wait)}</td><td>${r.gpuHours.toFixed(2)}</td>
    <td>${r.energyWh == null ? "–" : r.energyWh.toFixed(1) + " Wh"}</td><td>${r.meanUtilization == null ? "–" : Math.round(r.meanUtilization) + " %"}</td><td>${esc(r.nodes)}</td></tr>`).join("")
    : `<tr><td colspan="12" class="empty">no ended job matches</td></tr>`;
}
$("hist-form").addEventListener("submit", e => loadHistory(e).catch(x => $("hist-note").textContent = String(x)));
// The live stream: Server-Sent Events read with fetch, so that the token goes in a header, not the address.
let stream = null;
async function connect() {
  const limit = new URLSearchParams(location.search).get("events"), ctrl = new AbortController();
  stream = ctrl;
  try {
    const res = await api("/v1/events" + (limit ? "?limit=" + encodeURIComponent(limit) : ""), { signal: ctrl.signal });
    const reader = res.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (let i; (i = buffer.indexOf("\n\n")) >= 0; buffer = buffer.slice(i + 2)) {
        const data = buffer.slice(0, i).split("\n").filter(l => l.startsWith("data: ")).map(l => l.slice(6)).join("\n");
        if (!data) continue;
        snap = JSON.parse(data); received = Date.now();
        document.body.dataset.live = String(Number(document.body.dataset.live) + 1);
        $("live").className = "on"; $("live").textContent = "live"; render();
      }
    }
  } catch (e) { if (ctrl.signal.aborted || !auth.token) return; }
  if (stream === ctrl && auth.token) setTimeout(connect, 500);  // as EventSource would: reconnect
}
// Say "reconnecting" only when no event came for a while.
setInterval(() => { if (auth.token && received && Date.now() - received > 8000) { $("live").className = "off"; $("live").textContent = "reconnecting…"; } }, 2000);
let ticker = null;
function signedIn() {
  $("signin").hidden = true; $("app").hidden = false;
  $("who").innerHTML = `signed in as <b>${esc(me.name)}</b>${me.admin ? " (admin)" : ""}<button class="act" id="signout">sign out</button>`;
  $("signout").onclick = () => { auth.forget(); if (stream) stream.abort(); showSignIn("signed out"); };
  connect();
  loadHistory().catch(x => $("hist-note").textContent = String(x));
  if (!ticker) ticker = [setInterval(render, 1000), setInterval(() => { if (auth.token) loadHistory().catch(() => {}); }, 30000)];
}
function showSignIn(message) {
  $("app").hidden = true; $("signin").hidden = false; $("who").textContent = ""; snap = null; received = 0;
  $("live").className = "off"; $("live").textContent = "signed out";
  $("signin-error").textContent = message || ""; $("signin").token.value = ""; $("signin").token.focus();
}
onSignedOut = showSignIn;
$("signin").addEventListener("submit", async ev => {
  ev.preventDefault();
  const token = $("signin").token.value.trim();
  if (!token) { $("signin-error").textContent = "paste a token first"; return; }
  const who = await whoami(token);
  if (!who.ok) { $("signin-error").textContent = who.message; return; }
  auth.save(token); me = who.me; notice(""); signedIn();
});
signIn().then(ok => {
  if (!ok) return;
  const next = new URLSearchParams(location.search).get("next");
  if (next && /^\/jobs\/[0-9A-Fa-f]{8}(_[0-9]+)?(\?once=1)?$/.test(next)) { location.replace(next); return; }
  signedIn();
}).catch(e => showSignIn(String(e)));
</script>
</body>
</html>
"""#

    /// Signing in, shared by both pages: the token lives in the browser's localStorage for this origin only, goes in an
    /// `Authorization` header, never in an address. A one-time `?code=` (from `mgpu dashboard`) is taken out of the
    /// address bar at once and exchanged for the token. Any 401 sends the page back to signing in.
    static let authScript = #"""
const auth = {
  token: localStorage.getItem("mgpu-token") || "",
  headers() { return this.token ? { Authorization: "Bearer " + this.token } : {}; },
  save(token) { this.token = token; localStorage.setItem("mgpu-token", token); },
  forget() { this.token = ""; localStorage.removeItem("mgpu-token"); },
};
let me = null, onSignedOut = () => {};
function notice(text, bad) { const n = document.getElementById("notice"); if (!n) return; n.textContent = text || ""; n.className = bad ? "bad" : ""; }
async function errorText(res) { try { return (await res.json()).error.message; } catch (e) { return "HTTP " + res.status; } }
// fetch with the token; a 401 forgets it and shows the sign-in form with the master's reason.
async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...auth.headers() } });
  if (res.status === 401) { const why = await errorText(res); auth.forget(); me = null; onSignedOut("signed out: " + why); throw new Error(why); }
  return res;
}
async function whoami(token) {
  const res = await fetch("/v1/whoami", { headers: { Authorization: "Bearer " + token } });
  if (res.ok) return { ok: true, me: await res.json() };
  return { ok: false, message: res.status === 401 ? "refused: " + await errorText(res) : "the master answered " + res.status + ": " + await errorText(res) };
}
// True once signed in (me is set); otherwise the page is told why.
async function signIn() {
  const url = new URL(location.href), code = url.searchParams.get("code");
  if (code) {
    url.searchParams.delete("code");
    history.replaceState(null, "", url.pathname + url.search);
    const res = await fetch("/v1/signin", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }) });
    if (!res.ok) { onSignedOut(await errorText(res)); return false; }
    const body = await res.json();
    // A link someone else sent must not quietly replace who this browser is signed in as.
    if (!auth.token || body.token === auth.token
        || confirm(`This link signs you in as ${body.name}, in place of who this browser is signed in as. Sign in as ${body.name}?`)) auth.save(body.token);
  }
  if (!auth.token) { onSignedOut(""); return false; }
  const who = await whoami(auth.token);
  if (!who.ok) { auth.forget(); onSignedOut("the saved token was " + who.message); return false; }
  me = who.me;
  return true;
}
async function cancelJob(id) {
  const res = await api("/v1/jobs/cancel", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ids: [id] }) });
  if (!res.ok) { const why = await errorText(res); notice(why, true); return why; }
  const r = (await res.json()).results[0];
  const text = { cancelled: `job ${id} cancelled`, cancelling: `job ${id} is being stopped`, alreadyFinished: `job ${id} had already ended (${r.state})`,
    unknown: `no job ${id}`, denied: `job ${id} is not yours: only its owner or an admin may cancel it` }[r.outcome] || r.outcome;
  notice(text, r.outcome === "denied" || r.outcome === "unknown");
  return r.outcome;
}
"""#

    /// A job's live log: its output (every rank and stream), followed at byte offsets until the job ends.
    static func jobPage(_ id: String) -> String {
        #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>mgpu job JOBID</title>
<style>body{margin:0;font:13px/1.4 ui-monospace,Menlo,Consolas,monospace;background:#0f1115;color:#e6e8ee}
header{padding:10px 14px;border-bottom:1px solid #2a2f3a;font-family:system-ui,sans-serif}a{color:#58a6ff}
pre{margin:0;padding:10px 14px;white-space:pre-wrap;word-break:break-all}.err,#notice.bad{color:#f85149}
#notice{padding:6px 14px;font-family:system-ui,sans-serif}#notice:empty{display:none}
button{background:transparent;color:#8b93a5;border:1px solid #2a2f3a;border-radius:4px;padding:1px 8px;cursor:pointer}button:hover{color:#f85149;border-color:#f85149}
#gpus{padding:8px 14px;display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:8px;font-family:system-ui,sans-serif;font-size:12px;color:#8b93a5}
#gpus svg{width:100%;height:48px;display:block;background:#181b22;border:1px solid #2a2f3a;border-radius:4px}</style></head>
<body><header><a href="/">mgpu</a> / job <b>JOBID</b> <span id="state"></span> <span id="usage"></span> <span id="actions"></span></header>
<div id="notice" role="status"></div><div id="gpus"></div><pre id="out"></pre>
<script>
"use strict";
const id = "JOBID", out = document.getElementById("out"), offsets = {}, decoders = {};
\#(authScript)
const once = new URLSearchParams(location.search).get("once") === "1";  // show what is there, do not follow
let graphed = false;
// Its GPUs' utilisation (blue) and memory (orange) while it ran, from its nodes' last hour of samples.
function line(values, max, color) {
  const pts = values.map((v, i, a) => v == null ? null : [a.length < 2 ? 0 : i / (a.length - 1) * 100, 47 - Math.min(1, v / max) * 45]).filter(Boolean);
  return pts.length < 2 ? "" : `<polyline fill="none" stroke="${color}" stroke-width="1.5" vector-effect="non-scaling-stroke" points="${pts.map(p => p.join(",")).join(" ")}"/>`;
}
async function graphs(job) {
  if (!job.startTime) return;
  const s = job.usage && job.usage.series;
  if (s && s.times.length > 1) {  // its own record: its GPUs' mean utilisation and peak memory, every run
    const peak = Math.max(1, ...s.memoryMB);
    document.getElementById("gpus").innerHTML = `<div data-graph="job">its GPUs: ${s.times.length} points, mean utilisation and peak memory
      <svg viewBox="0 0 100 48" preserveAspectRatio="none">${line(s.utilization, 100, "#58a6ff")}${line(s.memoryMB, peak, "#d29922")}</svg></div>`;
    return;
  }
  const end = job.endTime || Date.now() / 1000, html = [];
  for (const part of job.parts) {
    if (!part.gpus.length) continue;
    const res = await api(`/v1/nodes/${encodeURIComponent(part.nodeId)}/history?minutes=60&points=120`);
    if (!res.ok) continue;
    const h = await res.json(), keep = h.times.map(t => t >= job.startTime - 1 && t <= end + 1);
    for (const g of h.gpus.filter(g => part.gpus.includes(g.index))) {
      const util = g.utilization.filter((_, i) => keep[i]), mem = g.memoryUsedMB.filter((_, i) => keep[i]);
      const peak = Math.max(1, ...mem.filter(v => v != null));
      html.push(`<div data-graph="${part.nodeId}:${g.index}">${part.nodeId} gpu${g.index}: ${util.filter(v => v != null).length} samples
        <svg viewBox="0 0 100 48" preserveAspectRatio="none">${line(util, 100, "#58a6ff")}${line(mem, peak, "#d29922")}</svg></div>`);
    }
  }
  document.getElementById("gpus").innerHTML = html.length ? html.join("")
    : job.parts.some(p => p.gpus.length) ? `<div>no samples: the master keeps an hour of each node's readings</div>` : "";
}
function add(text, cls, prefix) { const s = document.createElement("span"); if (cls) s.className = cls;
  s.textContent = prefix ? text.replace(/^(?=.)/gm, prefix) : text; out.appendChild(s); window.scrollTo(0, document.body.scrollHeight); }
async function run() {
  for (;;) {
    const response = await api(`/v1/jobs/${id}`);
    if (!response.ok) { add((await response.json()).error.message + "\n", "err"); return; }
    const job = await response.json();
    document.getElementById("state").textContent = job.state + (job.note ? ` · ${job.note}` : "") + (job.reason ? ` · ${job.reason}` : "");
    const active = job.state === "RUNNING" || job.state === "PENDING", mine = me.admin || job.user === me.name;
    document.getElementById("actions").innerHTML = active && mine && !job.cancelRequested ? `<button id="cancel">cancel</button>` : "";
    if (active && mine && !job.cancelRequested) document.getElementById("cancel").onclick = () => {
      if (confirm(`Cancel job ${id} (${job.name})?`)) cancelJob(id).catch(e => notice(String(e), true)); };
    const u = job.usage;
    if (u) document.getElementById("usage").textContent = ` · ${(u.gpuSeconds / 3600).toFixed(2)} GPU-h` + (u.energyWh ? ` · ${u.energyWh.toFixed(1)} Wh` : "")
      + (u.sampledGPUSeconds ? ` · ${Math.round(100 * u.busyGPUSeconds / u.sampledGPUSeconds)} % util` : "");
    if (!graphed) { graphed = true; graphs(job).catch(() => {}); }
    const ranks = Math.max(1, job.parts.length); let got = false, complete = 0;
    for (let r = 0; r < ranks; r++) for (const s of ["stdout", "stderr"]) {
      const k = r + s, res = await api(`/v1/jobs/${id}/output?rank=${r}&stream=${s}&offset=${offsets[k] || 0}&wait=0`);
      const bytes = new Uint8Array(await res.arrayBuffer()); offsets[k] = (offsets[k] || 0) + bytes.length;
      const text = (decoders[k] = decoders[k] || new TextDecoder()).decode(bytes, {stream: true});
      if (text) { add(text, s === "stderr" ? "err" : "", ranks > 1 ? r + ": " : ""); got = true; }
      if (res.headers.get("mgpu-complete") === "1") complete++;
    }
    if (complete === ranks * 2 || once) return;
    if (!got) await api(`/v1/jobs/${id}/output?rank=0&stream=stdout&offset=${offsets["0stdout"] || 0}&wait=20`);
  }
}
// Not signed in: the dashboard signs in, then comes back here.
onSignedOut = why => { document.getElementById("notice").innerHTML = `${why ? why.replace(/[&<>]/g, "") + ": " : ""}<a href="/?next=/jobs/${id}">sign in</a> to see this job`; };
signIn().then(ok => ok && run()).catch(e => add("\n[" + e + "]\n", "err"));
</script></body></html>
"""#.replacingOccurrences(of: "JOBID", with: id)
    }
}
