// genai_stack panel: live status (health, containers, GPUs) on the stack page, live events on a run page.
// No inline script (the Content-Security-Policy forbids it); text only, never innerHTML.
"use strict";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// --- live status (status.yml on the hosts, through /api/status) --------------------------
function setState(cell, state, label, title) {
  cell.querySelector(".dot").className = "dot " + state;
  cell.querySelector(".text").textContent = label;
  if (title) cell.title = title;
}

function mib(value) {
  if (value === null || value === undefined) return "–";
  return (value / 1024).toFixed(1) + " GiB";
}

function serviceLabel(s) {
  if (s.state === "up") {
    const latency = s.latency_ms === null ? "" : " · " + Math.round(s.latency_ms) + " ms";
    return "up · " + s.checks.length + " checks" + latency + (s.reason ? " · " + s.reason : "");
  }
  return s.state + (s.reason ? " · " + s.reason : "");
}

function containerLabel(c) {
  if (!c) return "–";
  const parts = [c.status];
  if (c.health) parts.push(c.health);
  parts.push(c.restarts + " restart" + (c.restarts === 1 ? "" : "s"));
  parts.push(c.image);
  return parts.join(" · ");
}

function gpuTable(host) {
  if (!host.gpus.length) return el("p", "muted", "No GPU planned or found.");
  const table = el("table", "gpus-now");
  const head = el("tr");
  ["GPU", "Name", "Used / total", "Planned", "Per service: used / planned", ""].forEach((h) => head.append(el("th", "", h)));
  const thead = el("thead");
  thead.append(head);
  table.append(thead);
  const body = el("tbody");
  host.gpus.forEach((g) => {
    const row = el("tr", g.over ? "over" : "");
    row.dataset.gpu = g.index;
    row.append(el("td", "", g.index), el("td", "", g.name || "–"));
    row.append(el("td", "", g.measured ? mib(g.memory_used_mib) + " / " + mib(g.memory_total_mib) : "not measured"));
    row.append(el("td", "", g.planned_share.toFixed(2) + " · " + mib(g.planned_mib)));
    const uses = el("td", "uses");
    g.uses.forEach((u) => {
      const used = u.used_mib === null ? "–" : mib(u.used_mib);
      const text = u.service + ": " + used + " / " + (u.planned ? mib(u.planned_mib) : "not planned here");
      uses.append(el("span", "tag" + (u.over ? " over" : ""), text));
    });
    if (g.other_mib) uses.append(el("span", "tag muted", "other processes: " + mib(g.other_mib)));
    row.append(uses);
    row.append(el("td", g.over ? "bad" : "", g.over ? "over plan" : ""));
    body.append(row);
  });
  table.append(body);
  return table;
}

function showStatus(data) {
  const status = data.status;
  if (!status) return;
  const hosts = new Map(status.hosts.map((h) => [h.name, h]));
  document.querySelectorAll("[data-host-state]").forEach((cell) => {
    const h = hosts.get(cell.dataset.hostState);
    const when = new Date(status.checked_at * 1000).toLocaleTimeString();
    if (!h) {
      setState(cell, status.error ? "down" : "unknown", status.error || "not reported by status.yml (" + when + ")");
      return;
    }
    const state = h.state === "ok" ? "up" : h.state === "degraded" ? "down" : h.state;
    let label = h.state + (h.reason ? ": " + h.reason : "") + " · read at " + when + " in " + status.duration_s.toFixed(1) + " s";
    if (h.credentials_error) label += " · credentials: " + h.credentials_error;
    if (h.docker_error) label += " · docker: " + h.docker_error;
    setState(cell, state, label);
  });
  document.querySelectorAll("[data-health]").forEach((cell) => {
    const [hostName, name] = cell.dataset.health.split("/");
    const h = hosts.get(hostName);
    if (!h) return;
    if (h.state === "unreachable" || h.state === "error") {
      setState(cell, h.state === "unreachable" ? "unreachable" : "unknown", h.state + " · " + h.reason);
      return;
    }
    const s = h.services.find((x) => x.name === name);
    if (!s) return;
    const failed = s.checks.filter((c) => !c.ok).map((c) => c.name + " (" + (c.status || c.error) + ")");
    setState(cell, s.state, serviceLabel(s), failed.join("\n") || s.url);
    const container = document.querySelector('[data-container="' + CSS.escape(cell.dataset.health) + '"]');
    if (container) container.textContent = containerLabel(s.container);
  });
  document.querySelectorAll("[data-gpus]").forEach((box) => {
    const h = hosts.get(box.dataset.gpus);
    if (!h || h.state === "unreachable" || h.state === "error") return;
    const parts = [gpuTable(h)];
    if (h.gpu_reason) parts.push(el("p", "hint", "nvidia-smi: " + h.gpu_reason));
    box.replaceChildren(...parts);
  });
}

async function refreshStatus() {
  try {
    const response = await fetch("/api/status", { credentials: "same-origin" });
    if (response.ok) showStatus(await response.json());
  } catch (err) {
    // the panel may be restarting; the next poll tries again
  }
}

// --- live run events ----------------------------------------------------------------------
const STATUS_CLASS = {
  successful: "ok", running: "running", failed: "bad", error: "bad", timeout: "bad",
  canceled: "warn", interrupted: "warn",
};

function formatDuration(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return value.toFixed(1) + " s";
  const total = Math.round(value);
  return Math.floor(total / 60) + " min " + String(total % 60).padStart(2, "0") + " s";
}

function showResult(run) {
  const status = document.getElementById("run-status");
  status.textContent = run.status;
  status.className = "status big " + (STATUS_CLASS[run.status] || "");
  document.getElementById("run").dataset.status = run.status;
  document.getElementById("run-duration").textContent = formatDuration(run.duration_s);
  document.getElementById("run-rc").textContent = run.rc === null ? "–" : run.rc;
  const error = document.getElementById("run-error");
  error.textContent = run.error || "";
  error.hidden = !run.error;
  const cancel = document.getElementById("cancel-form");
  if (cancel) cancel.remove();
  document.getElementById("live").textContent = "";

  const body = document.getElementById("stats-body");
  body.replaceChildren();
  Object.keys(run.stats).sort().forEach((host) => {
    const s = run.stats[host];
    const row = el("tr");
    row.append(el("td", "", host));
    ["ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored"].forEach((key) => {
      const bad = (key === "failed" || key === "unreachable") && s[key] > 0;
      row.append(el("td", bad ? "bad" : "", s[key]));
    });
    body.append(row);
  });
  const failed = document.getElementById("failed-tasks");
  failed.replaceChildren();
  if (!run.failed_tasks.length) failed.append(el("li", "none muted", "None."));
  run.failed_tasks.forEach((t) => {
    const item = el("li");
    item.append(el("strong", "", t.host), document.createTextNode(" · " + t.task + (t.unreachable ? " (unreachable)" : "")));
    item.append(el("pre", "", t.message));
    failed.append(item);
  });
  document.getElementById("result").hidden = false;
}

function followRun(section) {
  const list = document.getElementById("events");
  const items = list.querySelectorAll("li[data-seq]");
  const last = items.length ? items[items.length - 1].dataset.seq : 0;
  const source = new EventSource("/runs/" + section.dataset.runId + "/events?after=" + last);
  source.addEventListener("run-event", (message) => {
    const e = JSON.parse(message.data);
    if (list.querySelector('li[data-seq="' + e.seq + '"]')) return;
    const item = el("li", "ev " + e.kind + (e.ignored ? " ignored" : ""), e.line);
    item.dataset.seq = e.seq;
    if (e.detail) item.append(el("pre", "detail", e.detail));
    list.append(item);
    item.scrollIntoView({ block: "nearest" });
  });
  source.addEventListener("end", (message) => {
    source.close();
    showResult(JSON.parse(message.data));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.querySelector("[data-host-state]")) {
    refreshStatus();
    setInterval(refreshStatus, 5000);
  }
  const run = document.getElementById("run");
  if (run && run.dataset.status === "running") followRun(run);
  const form = document.getElementById("run-form");
  if (form) {
    form.addEventListener("submit", () => {
      const button = document.getElementById("run-button");
      button.disabled = true;
      button.textContent = "Starting…";
    });
  }
});
