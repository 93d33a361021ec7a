// The web page of rtest serve: runs list, a run's live DAG, failures, steps, "what changed", timeline and log.
// A file of its own (no inline script), so the service may send a strict Content-Security-Policy.
"use strict";
// The token is never seen here: the URL rtest serve printed (/?token=...) set it as an HttpOnly cookie, which
// the browser sends; the custom header is one a cross-site form cannot send (uploads require it).
const headers = {"X-Rtest-Client": "page"};
const $ = (id) => document.getElementById(id);
const FAILED = ["failed", "upstream_failed", "error"];
let current = null, eventsAbort = null, logAbort = null, redraw = null, logNode = null;

async function api(path, options = {}) {
  const response = await fetch(path, {credentials: "same-origin", ...options,
                                      headers: {...headers, ...(options.headers || {})}});
  if (!response.ok) throw new Error((await response.json().catch(() => ({}))).detail || response.statusText);
  return response;
}
function fmt(seconds) { return seconds == null ? "" : seconds.toFixed(1) + "s"; }
function esc(text) { const d = document.createElement("div"); d.textContent = text ?? ""; return d.innerHTML; }
function badge(status) { return `<span class="badge st-${esc(status)}">${esc(status)}</span>`; }
function when(epoch) {
  if (epoch == null) return "";
  const d = new Date(epoch * 1000), two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

async function loadRuns() {
  const query = new URLSearchParams({limit: "50"});
  if ($("filter-status").value) query.set("status", $("filter-status").value);
  if ($("filter-pipeline").value) query.set("pipeline", $("filter-pipeline").value);
  const page = await (await api("/api/runs?" + query)).json();
  const chosen = $("filter-pipeline").value;
  $("filter-pipeline").innerHTML = `<option value="">any</option>` +
    page.pipelines.map(p => `<option${p === chosen ? " selected" : ""}>${esc(p)}</option>`).join("");
  $("runs-total").textContent = `${page.total} run(s)`;
  $("runs").innerHTML = page.runs.map(r =>
    `<tr class="run${r.id === current ? " selected" : ""}" data-run="${esc(r.id)}" data-status="${esc(r.status)}">` +
    `<td><a class="run-link" href="/runs/${encodeURIComponent(r.id)}">${esc(r.id)}</a></td><td>${badge(r.status)}</td>` +
    `<td>${esc(r.pipeline)}</td><td>${when(r.started_at)}</td>` +
    `<td class="steps-count">${r.steps_total == null ? "" : `${r.steps_done}/${r.steps_total}`}</td>` +
    `<td>${fmt(r.duration_s)}</td><td>${esc(r.submitter)}</td></tr>`).join("");
  for (const row of document.querySelectorAll("tr.run")) {
    row.onclick = (e) => { e.preventDefault(); select(row.dataset.run, true); };
  }
}

async function refresh() {
  if (!current) return;
  const id = current;
  const [run, view] = await Promise.all([(await api(`/api/runs/${id}`)).json(), (await api(`/api/runs/${id}/view`)).json()]);
  if (id !== current) return;
  $("run-status").textContent = run.status;
  $("run-status").className = `badge st-${run.status}`;
  $("queue").textContent = run.queue_position ? `(queue position ${run.queue_position})` : "";
  $("run-message").textContent = run.message || "";
  const finished = !["queued", "running"].includes(run.status);
  $("cancel").hidden = finished;
  $("report-link").hidden = !finished;
  $("report-link").href = `/api/runs/${id}/artifacts/report.html`;
  $("dag").innerHTML = view.dag_svg;
  $("timeline").innerHTML = view.timeline_svg;
  $("warnings").innerHTML = view.warnings.map(w => `<li class="warning">${esc(w)}</li>`).join("");
  for (const node of document.querySelectorAll("#dag g.dag-node")) {
    node.addEventListener("click", (e) => { e.preventDefault(); followLog(node.dataset.node); });
  }
  showSteps(run.steps);
  const failed = run.steps.filter(s => FAILED.includes(s.status));
  showFailures(failed);
  if (finished && failed.length && logNode === null) followLog(failed[0].node);  // a failed run opens its log
  if (finished) loadChanges(id).catch(e => { $("changes").textContent = e.message; });
}
function scheduleRefresh() { clearTimeout(redraw); redraw = setTimeout(() => refresh().catch(console.error), 100); }

function showSteps(steps) {
  $("steps").innerHTML = steps.map(s =>
    `<tr data-node="${esc(s.node)}"><td><a href="#" class="run-link step-log">${esc(s.node)}</a></td><td>${badge(s.status)}</td>` +
    `<td>${fmt(s.duration_s)}</td><td>${s.exit_code ?? ""}</td><td class="host">${esc(s.host || "")}</td>` +
    `<td>${esc(s.reason || "")}</td></tr>`).join("");
  for (const link of document.querySelectorAll("#steps a.step-log")) {
    link.onclick = (e) => { e.preventDefault(); followLog(link.closest("tr").dataset.node); };
  }
}

function showFailures(failed) {
  $("failures").innerHTML = failed.map(s =>
    `<div class="failure" data-node="${esc(s.node)}"><b>${esc(s.node)}</b> ${badge(s.status)}` +
    `${s.exit_code != null ? ` exit ${s.exit_code}` : ""}${s.host ? ` on ${esc(s.host)}` : ""} ` +
    `<button class="open-log">open log</button><div class="reason">${esc(s.reason || "no reason recorded")}</div></div>`).join("");
  for (const button of document.querySelectorAll("#failures button.open-log")) {
    button.onclick = () => followLog(button.closest(".failure").dataset.node);
  }
}

async function loadChanges(id) {
  const c = await (await api(`/api/runs/${id}/changes`)).json();
  if (id !== current) return;
  $("changes-summary").textContent = c.previous ? `since ${c.previous}: ${c.summary}` : `(${c.summary})`;
  const tone = (change) => ({"newly failing": "change-bad", "slower": "change-bad", "fixed": "change-good",
                             "faster": "change-good"})[change] || "change-neutral";
  const rows = c.steps.map(s => `<tr class="step-change"><td>${esc(s.node)}</td><td class="${tone(s.change)}">${esc(s.change)}</td>` +
    `<td>${esc(s.before ?? "")} → ${esc(s.after ?? "")}</td><td>${fmt(s.duration_before_s)} → ${fmt(s.duration_after_s)}` +
    `${s.duration_change_s != null && Math.abs(s.duration_change_s) >= 0.1 ? ` (${s.duration_change_s > 0 ? "+" : ""}${s.duration_change_s.toFixed(1)}s)` : ""}</td></tr>`);
  const scripts = c.scripts.map(s => `<tr class="script-change"><td>${esc(s.node)}</td><td class="change-neutral">script changed</td>` +
    `<td>${esc(s.script)}</td><td>${esc(s.changed.map(p => p === "script_digest" ? "entry point" : "source folder").join(", "))}</td></tr>`);
  const values = c.values.map(v => `<tr class="value-change"><td>${esc(v.node)}</td><td class="change-neutral">${esc(v.key)}</td>` +
    `<td colspan="2">${esc(v.before ?? "(unset)")} → ${esc(v.after ?? "(unset)")}</td></tr>`);
  const all = [...rows, ...scripts, ...values];
  $("changes").innerHTML = all.length ? `<table><tbody>${all.join("")}</tbody></table>` : "";
}

async function streamLines(path, signal, onChunk) {
  const response = await api(path, {signal});
  const reader = response.body.getReader(), decoder = new TextDecoder();
  for (;;) { const {value, done} = await reader.read(); if (done) return; onChunk(decoder.decode(value, {stream: true})); }
}

async function followEvents(id) {
  if (eventsAbort) eventsAbort.abort();
  eventsAbort = new AbortController();
  let buffer = "";
  try {
    await streamLines(`/api/runs/${id}/events`, eventsAbort.signal, (text) => {
      buffer += text;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) { buffer = buffer.slice(cut + 2); scheduleRefresh(); }
    });
  } catch (e) { if (e.name !== "AbortError") console.error(e); }
  scheduleRefresh(); loadRuns().catch(console.error);
}

async function followLog(node) {
  if (logAbort) logAbort.abort();
  logAbort = new AbortController();
  logNode = node;
  $("log-node").textContent = node; $("log").textContent = "";
  try {
    await streamLines(`/api/runs/${current}/steps/${encodeURIComponent(node)}/log?follow=true&tail=200`,
                      logAbort.signal, (text) => { const log = $("log"); log.textContent += text; log.scrollTop = log.scrollHeight; });
  } catch (e) { if (e.name !== "AbortError") $("log").textContent += "\n[" + e.message + "]"; }
}

function select(id, push) {
  current = id; logNode = null;
  if (push && location.pathname !== `/runs/${id}`) history.pushState({run: id}, "", `/runs/${encodeURIComponent(id)}`);
  $("detail").hidden = false; $("run-id").textContent = id; $("run-id").href = `/runs/${encodeURIComponent(id)}`;
  $("log").textContent = ""; $("log-node").textContent = "(click a step)";
  $("failures").innerHTML = ""; $("changes").innerHTML = ""; $("changes-summary").textContent = "";
  loadRuns().catch(console.error); refresh().catch(console.error); followEvents(id);
}

async function submit(e) {
  e.preventDefault();
  $("submit-result").textContent = "submitting…";
  const request = {submitter: $("submitter").value || null, settings: {cache: !$("no-cache").checked}};
  if ($("example").checked) request.example = true;
  const dag = $("dag-path").value.trim(), config = $("config-path").value.trim();
  const interfaces = $("interfaces-path").value.trim();
  if (dag || config) request.spec = {pipeline: {dag: dag || null, config: config || null, interfaces: interfaces ? [interfaces] : []}};
  for (const line of $("inputs").value.split("\n").map(l => l.trim()).filter(Boolean)) {
    const [target, ...rest] = line.split("="), cut = target.lastIndexOf(".");
    if (cut <= 0 || !rest.length) { $("submit-result").textContent = `'${line}' is not NODE.INPUT=PATH`; return; }
    request.spec = request.spec || {};
    const scripts = request.spec.scripts = request.spec.scripts || {};
    (scripts[target.slice(0, cut)] = scripts[target.slice(0, cut)] || {inputs: {}}).inputs[target.slice(cut + 1)] = rest.join("=");
  }
  try {
    let response;
    const bundle = $("bundle").files[0];
    if (bundle) {
      const form = new FormData();
      form.append("request", JSON.stringify(request));
      form.append("bundle", bundle);
      response = await api("/api/runs", {method: "POST", body: form});
    } else {
      response = await api("/api/runs", {method: "POST", body: JSON.stringify(request),
                                         headers: {"Content-Type": "application/json"}});
    }
    const made = await response.json();
    $("submit-result").textContent = "submitted " + made.id;
    select(made.id, true);
  } catch (err) { $("submit-result").textContent = err.message; }
}

function showError(e) {  // e.g. no token yet: open the URL that rtest serve printed (it carries the token)
  $("runs").innerHTML = `<tr><td colspan="7" class="warning">${esc(e.message)} (open the URL rtest serve printed, /?token=...)</td></tr>`;
}

function fromLocation() {
  const match = location.pathname.match(/^\/runs\/([^/]+)$/);
  if (match) select(decodeURIComponent(match[1]), false);
  else { current = null; $("detail").hidden = true; }
}

document.addEventListener("DOMContentLoaded", () => {
  $("submit-form").addEventListener("submit", submit);
  $("cancel").onclick = async () => { await api(`/api/runs/${current}/cancel`, {method: "POST"}).catch(e => alert(e.message)); scheduleRefresh(); };
  $("filter-status").onchange = () => loadRuns().catch(showError);
  $("filter-pipeline").onchange = () => loadRuns().catch(showError);
  window.addEventListener("popstate", fromLocation);
  fromLocation();
  loadRuns().catch(showError);
  setInterval(() => loadRuns().catch(showError), 3000);
});
