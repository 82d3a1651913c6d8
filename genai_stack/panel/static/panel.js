// genai_stack panel: live status (health, containers, GPUs) on the stack page, live events on a run page.
// No inline script (the Content-Security-Policy forbids it); text only, never innerHTML.
"use strict";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// --- one time format: UTC, the browser's local time on hover ------------------------------
function utc(date) {
  return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

function timeNode(date) {
  const node = el("time", "", utc(date));
  node.dateTime = date.toISOString();
  node.title = date.toLocaleString();
  return node;
}

function localTitles(root) {
  root.querySelectorAll("time[datetime]").forEach((node) => {
    const date = new Date(node.dateTime);
    if (!Number.isNaN(date.getTime())) node.title = date.toLocaleString() + " (your time)";
  });
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

// --- GPU pictures: per GPU, per service, the planned share (outline) and the use (bar) -------
const LEVEL_TEXT = {
  within: "within plan", near: "near the ceiling", over: "over plan",
  unplanned: "not planned on this GPU", unmeasured: "not measured", other: "other processes",
};

function percent(part, whole) {
  if (!whole || part === null || part === undefined) return 0;
  return Math.max(0, Math.min(100, (100 * part) / whole));
}

function useBar(name, wave, planShare, usedMib, totalMib, level) {
  const line = el("div", "use " + level);
  line.dataset.service = name;
  line.dataset.level = level;
  const label = el("span", "use-name", name);
  if (wave !== undefined) label.append(el("small", "", " w" + wave));
  const bar = el("div", "bar");
  const plan = el("div", "plan");
  plan.style.width = percent(planShare * (totalMib || 0), totalMib) + "%";
  const used = el("div", "used");
  used.style.width = percent(usedMib, totalMib) + "%";
  bar.append(plan, used);
  const planned = planShare ? mib(planShare * totalMib) + " planned (" + planShare.toFixed(2) + ")" : "not planned here";
  const figure = usedMib === null ? "use not measured" : mib(usedMib) + " used";
  const text = el("span", "use-figures", figure + " / " + planned + " · " + LEVEL_TEXT[level]);
  line.title = name + ": " + figure + ", " + planned + ", " + LEVEL_TEXT[level];
  line.append(label, bar, text);
  return line;
}

function gpuPicture(cell, g) {
  const waves = JSON.parse(cell.dataset.waves || "{}");
  const lines = g.uses.map((u) => useBar(u.service, waves[u.service], u.planned_share, u.used_mib, g.memory_total_mib, u.level));
  if (g.other_mib) lines.push(useBar("other processes", undefined, 0, g.other_mib, g.memory_total_mib, "other"));
  if (!lines.length) lines.push(el("span", "muted", "no service planned or found on this GPU"));
  cell.replaceChildren(...lines);
}

function showGpus(table, h) {
  const gpus = new Map(h.gpus.map((g) => [String(g.index), g]));
  table.querySelectorAll("tr[data-gpu]").forEach((row) => {
    const g = gpus.get(row.dataset.gpu);
    if (!g) return;
    row.className = "level-" + g.level;
    row.dataset.level = g.level;
    if (g.measured && g.name) row.querySelector(".gpu-name").textContent = g.name;
    const used = g.measured ? mib(g.memory_used_mib) + " used of " : "";
    row.querySelector(".gpu-memory").textContent = used + mib(g.memory_total_mib) + " · planned " + g.planned_share.toFixed(2)
      + (g.level === "unmeasured" ? "" : " · " + LEVEL_TEXT[g.level]);
    gpuPicture(row.querySelector("[data-gpu-uses]"), g);
  });
  const source = document.querySelector('[data-gpu-source="' + CSS.escape(h.name) + '"]');
  if (!source) return;
  source.classList.toggle("fake", Boolean(h.gpu_fake));
  if (h.gpu_fake) {
    source.textContent = "These GPU figures come from the fake nvidia-smi (tests/standins/nvidia-smi), "
      + "not from a GPU: this demo host has none. The fake gives each container the share it was planned.";
  } else {
    source.textContent = h.gpus.some((g) => g.measured) ? "Measured by nvidia-smi on the host." : "nvidia-smi: " + (h.gpu_reason || "not measured");
  }
}

function ageText(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.floor(s / 60) + " min ago";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min ago";
}

function showFreshness(data) {
  const reading = document.getElementById("status-reading");
  if (reading) reading.hidden = !data.refreshing;
  const age = document.getElementById("status-age");
  if (!age) return;
  if (!data.status) {
    age.textContent = "No read of the hosts yet.";
    return;
  }
  const at = new Date(data.status.checked_at * 1000);
  age.replaceChildren(document.createTextNode("Last read of the hosts: "), timeNode(at),
    document.createTextNode(" (" + ageText(data.now - data.status.checked_at) + ")"));
  age.dataset.checkedAt = data.status.checked_at;
}

function showStatus(data) {
  showFreshness(data);
  const status = data.status;
  if (!status) return;
  const hosts = new Map(status.hosts.map((h) => [h.name, h]));
  document.querySelectorAll("[data-host-state]").forEach((cell) => {
    const h = hosts.get(cell.dataset.hostState);
    const when = utc(new Date(status.checked_at * 1000));
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
  document.querySelectorAll("table[data-gpus]").forEach((table) => {
    const h = hosts.get(table.dataset.gpus);
    if (h && h.state !== "unreachable" && h.state !== "error") showGpus(table, h);
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

// --- the run form -------------------------------------------------------------------------
function selectedPlaybook() {
  const select = document.getElementById("playbook");
  return select.options[select.selectedIndex];
}

function showPlaybook() {
  const option = selectedPlaybook();
  const does = document.getElementById("playbook-does");
  does.textContent = option.dataset.does + (option.dataset.destructive ? " · changes the hosts: asks for a confirmation" : "");
  does.className = "hint" + (option.dataset.destructive ? " warn-text" : "");
  document.getElementById("backup-pick").hidden = option.value !== "restore";
  const check = document.getElementById("check");
  if (option.dataset.forceCheck) check.checked = true;
  check.disabled = Boolean(option.dataset.forceCheck);
}

function setupRunForm(form) {
  const select = document.getElementById("playbook");
  select.addEventListener("change", showPlaybook);
  showPlaybook();
  form.addEventListener("submit", (event) => {
    const option = selectedPlaybook();
    const check = document.getElementById("check");
    const confirmed = document.getElementById("confirmed");
    if (option.dataset.confirm && !check.checked && confirmed.type === "hidden") {
      const limit = document.getElementById("limit").value || "all hosts";
      if (!window.confirm("Run " + option.value + " on " + limit + "? It changes the hosts.")) {
        event.preventDefault();
        return;
      }
      confirmed.value = "yes";
    }
    check.disabled = false; // a disabled box is not sent
    const button = document.getElementById("run-button");
    button.disabled = true;
    button.textContent = "Starting…";
  });
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
  document.getElementById("run-duration-label").textContent = "Duration";
  document.getElementById("run-rc").textContent = run.rc === null ? "–" : run.rc;
  const error = document.getElementById("run-error");
  error.textContent = run.error || "";
  error.hidden = !run.error;
  error.className = "alert " + (run.status === "canceled" ? "warn" : "bad");
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

// --- a run's progress: the rules of genai_stack/panel/progress.py ------------------------
const RESULT_KINDS = new Set(["ok", "changed", "failed", "unreachable", "skipped"]);

function progressHost(progress, name) {
  let h = progress.hosts.find((x) => x.host === name);
  if (!h) {
    h = { host: name, done: 0, changed: 0, failed: 0, current: null, out: false };
    progress.hosts.push(h);
    progress.hosts.sort((a, b) => a.host.localeCompare(b.host));
  }
  return h;
}

function feedProgress(progress, e) {
  progress.last_seq = Math.max(progress.last_seq, e.seq);
  if (e.kind === "play_start") {
    progress.task = null;
    progress.hosts.forEach((h) => { h.current = null; });
  } else if (e.kind === "task_start") {
    progress.task = e.task;
    progress.tasks_started += 1;
    progress.hosts.forEach((h) => { h.current = h.out ? null : e.task; });
  } else if (RESULT_KINDS.has(e.kind) && e.host) {
    const h = progressHost(progress, e.host);
    h.done += 1;
    if (e.kind === "changed") h.changed += 1;
    const failed = e.kind === "unreachable" || (e.kind === "failed" && !e.ignored);
    if (failed) { h.failed += 1; h.out = true; }
    if (h.current === e.task) h.current = null;
  } else if (e.kind === "stats") {
    progress.finished = true;
    progress.task = null;
    progress.hosts.forEach((h) => { h.current = null; });
  }
}

function showProgress(progress, running) {
  document.getElementById("current-task").textContent =
    progress.task || (running ? "starting…" : "none: the run has ended");
  document.getElementById("tasks-started").textContent = progress.tasks_started;
  const body = document.getElementById("progress-body");
  body.replaceChildren(...progress.hosts.map((h) => {
    const row = el("tr");
    row.dataset.host = h.host;
    row.append(el("td", "", h.host), el("td", "done", h.done), el("td", "changed", h.changed),
      el("td", "failed" + (h.failed ? " bad" : ""), h.failed),
      el("td", "current", h.current || (h.out ? "out of the play" : "–")));
    return row;
  }));
}

function tickElapsed(cell) {
  const started = Date.parse(cell.dataset.started);
  if (Number.isNaN(started)) return null;
  const tick = () => { cell.textContent = formatDuration((Date.now() - started) / 1000); };
  tick();
  return setInterval(tick, 1000);
}

// --- follow mode: the event pane scrolls, never the page ------------------------------------
function setupFollow(list) {
  const follow = document.getElementById("follow");
  const stick = () => { if (follow.checked) list.scrollTop = list.scrollHeight; };
  follow.addEventListener("change", stick);
  // scrolling the pane up (wheel, keys, its scroll bar) stops following; back at the end, on again
  list.addEventListener("scroll", () => {
    follow.checked = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
  });
  return stick;
}

function followRun(section) {
  const list = document.getElementById("events");
  const items = list.querySelectorAll("li[data-seq]");
  const last = items.length ? items[items.length - 1].dataset.seq : 0;
  const box = document.getElementById("progress");
  const progress = JSON.parse(box.dataset.json);
  const ticker = tickElapsed(document.getElementById("run-duration"));
  const stick = setupFollow(list);
  stick();
  const source = new EventSource("/runs/" + section.dataset.runId + "/events?after=" + last);
  source.addEventListener("run-event", (message) => {
    const e = JSON.parse(message.data);
    if (list.querySelector('li[data-seq="' + e.seq + '"]')) return;
    const item = el("li", "ev " + e.kind + (e.ignored ? " ignored" : ""), e.line);
    item.dataset.seq = e.seq;
    if (e.detail) item.append(el("pre", "detail", e.detail));
    list.append(item);
    if (e.seq > progress.last_seq) feedProgress(progress, e);
    showProgress(progress, true);
    stick();
  });
  source.addEventListener("end", (message) => {
    source.close();
    if (ticker !== null) clearInterval(ticker);
    showProgress(progress, false);
    showResult(JSON.parse(message.data));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  localTitles(document);
  const last = document.getElementById("last-status");
  if (last && last.dataset.json) showStatus(JSON.parse(last.dataset.json));
  if (document.querySelector("[data-host-state]")) {
    refreshStatus();
    setInterval(refreshStatus, 5000);
  }
  const run = document.getElementById("run");
  if (run && run.dataset.status === "running") followRun(run);
  const form = document.getElementById("run-form");
  if (form) setupRunForm(form);
});
