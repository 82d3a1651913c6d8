// genai_stack panel: live health on the stack page, live events on a run page.
// No inline script (the Content-Security-Policy forbids it); text only, never innerHTML.
"use strict";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// --- live health ------------------------------------------------------------------------
async function refreshHealth() {
  const cells = document.querySelectorAll("[data-health]");
  if (!cells.length) return;
  try {
    const response = await fetch("/api/health", { credentials: "same-origin" });
    if (!response.ok) return;
    const data = await response.json();
    const byKey = new Map(data.services.map((s) => [s.host + "/" + s.service, s]));
    cells.forEach((cell) => {
      const s = byKey.get(cell.dataset.health);
      if (!s) return;
      const dot = cell.querySelector(".dot");
      const text = cell.querySelector(".text");
      let state = "unknown";
      let label = s.error || "not checked";
      if (s.ok === true) {
        state = "up";
        label = "up · " + s.status + " · " + Math.round(s.latency_ms) + " ms";
      } else if (s.ok === false) {
        state = "down";
        label = "down · " + (s.status ? s.status + " · " : "") + (s.error || "");
      }
      dot.className = "dot " + state;
      text.textContent = label;
      cell.title = s.url;
    });
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
  if (document.querySelector("[data-health]")) {
    refreshHealth();
    setInterval(refreshHealth, 5000);
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
