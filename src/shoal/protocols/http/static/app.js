// shoal dashboard: plain JavaScript over /api/v1, live through server-sent events.
// Every value from the server is written with textContent (never innerHTML), so a job's
// payload or a task name can never inject markup.
"use strict";

const body = document.body;
const NS = body.dataset.namespace || "default";
const STATES = ["scheduled", "queued", "running", "succeeded", "failed", "cancelled"];
const TERMINAL = ["succeeded", "failed", "cancelled"];

// ---- helpers --------------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  return search.toString();
}

const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

async function api(method, path, payload, params) {
  const query = qs(Object.assign({ namespace: NS }, params || {}));
  const init = { method, headers: {}, credentials: "same-origin" };
  // The session cookie alone never changes anything: the page's CSRF token must come along.
  if (method !== "GET" && CSRF) init.headers["X-CSRF-Token"] = CSRF;
  if (payload !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(payload);
  }
  const response = await fetch(`/api/v1${path}?${query}`, init);
  if (response.status === 401) { location.href = "/login"; throw new Error("sign in first"); }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new Error(error.message || `HTTP ${response.status}`);
  }
  return data;
}

function toast(message, isError) {
  const node = document.getElementById("toast");
  if (!node) return;
  node.textContent = message;
  node.className = "toast show" + (isError ? " error" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.className = "toast"; }, 2600);
}

async function act(label, fn) {
  try {
    await fn();
    toast(label);
  } catch (error) {
    toast(error.message, true);
  }
}

const fmtNumber = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

function fmtTime(seconds) {
  if (!seconds) return "—";
  const date = new Date(seconds * 1000);
  const pad = (v, n = 2) => String(v).padStart(n, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

function fmtLatency(v) {
  if (v === 0) return "0";
  if (v < 0.001) return `${+(v * 1e6).toPrecision(2)}µs`;
  if (v < 1) return `${+(v * 1000).toPrecision(2)}ms`;
  return `${+v.toPrecision(2)}s`;
}

function ago(seconds) {
  return seconds === null || seconds === undefined ? "—" : `${fmtDuration(Math.max(seconds, 0))} ago`;
}

const badge = (text) => h("span", { class: `badge ${text}`, text });
const num = (n) => h("td", { class: n ? "num" : "num zero", text: fmtNumber(n) });
const jobLink = (id) => h("a", { href: `/jobs/${encodeURIComponent(id)}?${qs({ namespace: NS })}`, class: "mono", text: id });

function debounce(fn, ms) {
  let timer = null;
  return () => { if (timer === null) timer = setTimeout(() => { timer = null; fn(); }, ms); };
}

function fillTable(table, rows, emptyText, columns) {
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: columns, class: "empty", text: emptyText }))]));
}

// Live updates: one EventSource per page; the header's dot shows whether it is connected.
function live(params, onEvent) {
  const source = new EventSource(`/api/v1/events?${qs(Object.assign({ namespace: NS }, params))}`);
  const dot = document.getElementById("live");
  source.onopen = () => dot && dot.classList.add("on");
  source.onerror = () => dot && dot.classList.remove("on");
  source.onmessage = (message) => onEvent(JSON.parse(message.data));
  return source;
}

// ---- charts (SVG, drawn by hand) ---------------------------------------------------------------

// The top of the y axis: a round number that splits into four round steps.
function niceMax(value) {
  if (!(value > 0)) return 1;
  const quarter = value / 4;
  const power = Math.pow(10, Math.floor(Math.log10(quarter)));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= quarter) return 4 * step * power;
  return 40 * power;
}

function drawChart(svg, data, series, fmt) {
  const width = Math.max(svg.clientWidth || 600, 200);
  const height = 200;
  const pad = { left: 44, right: 8, top: 10, bottom: 20 };
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  svg.replaceChildren();
  const { xs, t0, t1 } = data;
  const values = series.flatMap((s) => s.values.filter((v) => v !== null));
  const top = niceMax(Math.max(0, ...values));
  const x = (t) => pad.left + ((t - t0) / Math.max(t1 - t0, 1)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    svg.append(el("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
    svg.append(el("text", { class: "axis", x: pad.left - 6, y: y(v) + 3, "text-anchor": "end" }, fmt(v)));
  }
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    const label = new Date(t * 1000).toTimeString().slice(0, 5);
    svg.append(el("text", { class: "axis", x: x(t), y: height - 4, "text-anchor": t === t0 ? "start" : t === t1 ? "end" : "middle" }, label));
  }
  if (!values.length) {
    svg.append(el("text", { class: "nodata", x: width / 2, y: height / 2, "text-anchor": "middle" }, "no activity yet"));
    return;
  }
  for (const s of series) {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(xs[i]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      const alone = (i === 0 || s.values[i - 1] === null) && (i === s.values.length - 1 || s.values[i + 1] === null);
      // A slot with no neighbour would draw no line at all: mark it with a dot.
      if (alone) svg.append(el("circle", { class: `dot ${s.cls}`, cx: x(xs[i]), cy: y(v), r: 3 }));
    });
    svg.append(el("path", { class: `line ${s.cls}`, d }));
  }
}

function chartData(overview, windowSeconds) {
  const step = overview.bucket_seconds;
  const t1 = overview.now - (overview.now % step);
  const t0 = t1 - windowSeconds;
  const bySlot = new Map(overview.points.map((p) => [p.at, p]));
  const xs = [];
  for (let t = t0; t <= t1; t += step) xs.push(t);
  const pick = (key, zero) => xs.map((t) => (bySlot.has(t) ? bySlot.get(t)[key] : zero));
  return { xs, t0, t1, pick };
}

// ---- pages ---------------------------------------------------------------------------------------

async function overviewPage() {
  const windowSeconds = 900;
  async function refresh() {
    const overview = await api("GET", "/overview", undefined, { window: windowSeconds });
    for (const state of STATES) {
      const node = document.querySelector(`[data-count="${state}"]`);
      if (node) node.textContent = fmtNumber(overview.counts[state]);
    }
    const online = overview.workers.idle + overview.workers.busy + overview.workers.draining;
    document.getElementById("workers-online").textContent = fmtNumber(online);
    document.getElementById("queue-count").textContent = fmtNumber(overview.queues.length);
    const data = chartData(overview, windowSeconds);
    drawChart(document.getElementById("chart-throughput"), data, [
      { cls: "enq", values: data.pick("enqueued", 0) },
      { cls: "ok", values: data.pick("succeeded", 0) },
      { cls: "bad", values: data.pick("failed", 0) },
    ], (v) => fmtNumber(Math.round(v)));
    drawChart(document.getElementById("chart-latency"), data, [
      { cls: "wait", values: data.pick("wait_avg", null) },
      { cls: "run", values: data.pick("run_avg", null) },
    ], fmtLatency);
    fillTable(document.getElementById("overview-queues"), overview.queues.map((q) =>
      h("tr", {}, h("td", {}, h("a", { href: `/jobs?${qs({ namespace: NS, queue: q.name })}`, text: q.name })),
        h("td", {}, badge(q.paused ? "paused" : "active")),
        STATES.map((s) => num(q.counts[s])))), "No queues yet: enqueue a job.", 8);
  }
  const soon = debounce(() => refresh().catch(() => {}), 200);
  live({ batch: 1 }, soon);
  setInterval(soon, 5000);
  window.addEventListener("resize", soon);
  await refresh();
}

async function queuesPage() {
  const table = document.getElementById("queues-table");
  async function showTasks(name) {
    const stats = await api("GET", `/queues/${encodeURIComponent(name)}/stats`);
    document.getElementById("queue-detail").hidden = false;
    document.getElementById("queue-detail-name").textContent = name;
    fillTable(document.getElementById("tasks-table"), Object.entries(stats.by_task).map(([task, counts]) =>
      h("tr", {}, h("td", { text: task }), STATES.map((s) => num(counts[s])))), "No jobs.", 7);
  }
  async function refresh() {
    const { queues } = await api("GET", "/queues");
    const path = (q, verb) => `/queues/${encodeURIComponent(q.name)}${verb ? "/" + verb : ""}`;
    const rows = queues.map((q) => h("tr", { "data-queue": q.name },
      h("td", {}, h("a", { href: "#", text: q.name, onclick: (e) => { e.preventDefault(); showTasks(q.name); } })),
      h("td", {}, badge(q.paused ? "paused" : "active")),
      STATES.map((s) => num(q.counts[s])), num(q.total),
      h("td", { class: "actions" },
        q.paused
          ? h("button", { class: "btn small", text: "Resume", onclick: () => act(`Resumed ${q.name}`, () => api("POST", path(q, "resume"))).then(refresh) })
          : h("button", { class: "btn small", text: "Pause", onclick: () => act(`Paused ${q.name}`, () => api("POST", path(q, "pause"))).then(refresh) }),
        h("button", { class: "btn small", text: "Purge", onclick: () => confirm(`Delete the waiting jobs of ${q.name}?`) && act(`Purged ${q.name}`, () => api("POST", path(q, "purge"))).then(refresh) }),
        h("button", { class: "btn small danger", text: "Delete", onclick: () => confirm(`Delete queue ${q.name} and all its jobs?`) && act(`Deleted ${q.name}`, () => api("DELETE", path(q))).then(refresh) }))));
    fillTable(table, rows, "No queues yet: enqueue a job.", 10);
  }
  const soon = debounce(() => refresh().catch(() => {}), 100);
  live({ batch: 0.5 }, soon);
  await refresh();
}

async function jobsPage() {
  const form = document.getElementById("job-filters");
  const url = new URLSearchParams(location.search);
  for (const key of ["state", "queue", "task", "tag"]) if (url.get(key)) form.elements[key].value = url.get(key);
  let cursors = [null]; // cursors[i] opens page i; keyset pages cost the same at any depth
  let page = 0;
  let seen = new Set();
  const filters = () => {
    const f = {};
    for (const key of ["state", "queue", "task", "tag"]) f[key] = form.elements[key].value.trim();
    return f;
  };
  async function load() {
    const result = await api("GET", "/jobs", undefined, Object.assign(filters(), { cursor: cursors[page], limit: 50 }));
    const rows = result.jobs.map((job) => {
      const ran = job.started_at && job.finished_at ? job.finished_at - job.started_at : null;
      return h("tr", { "data-job-id": job.id, class: seen.size && !seen.has(job.id) ? "fresh" : null },
        h("td", {}, jobLink(job.id)), h("td", { text: job.task }), h("td", { text: job.queue }),
        h("td", {}, badge(job.state)), h("td", { class: "num", text: `${job.attempt}/${job.max_attempts}` }),
        h("td", { text: fmtTime(job.created_at) }), h("td", { class: "num", text: fmtDuration(ran) }));
    });
    seen = new Set(result.jobs.map((job) => job.id));
    fillTable(document.getElementById("jobs-table"), rows, "No jobs match.", 7);
    cursors = cursors.slice(0, page + 1);
    if (result.next_cursor) cursors.push(result.next_cursor);
    document.getElementById("next-page").disabled = !result.next_cursor;
    document.getElementById("prev-page").disabled = page === 0;
    document.getElementById("first-page").disabled = page === 0;
    document.getElementById("page-label").textContent = `page ${page + 1}`;
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const id = form.elements.id.value.trim();
    if (id) { location.href = `/jobs/${encodeURIComponent(id)}?${qs({ namespace: NS })}`; return; }
    history.replaceState(null, "", `/jobs?${qs(Object.assign({ namespace: NS }, filters()))}`);
    cursors = [null]; page = 0; seen = new Set();
    load().catch((err) => toast(err.message, true));
  });
  form.addEventListener("reset", () => setTimeout(() => form.requestSubmit(), 0));
  document.getElementById("next-page").onclick = () => { page += 1; seen = new Set(); load(); };
  document.getElementById("prev-page").onclick = () => { page = Math.max(page - 1, 0); seen = new Set(); load(); };
  document.getElementById("first-page").onclick = () => { page = 0; seen = new Set(); load(); };
  // Only the newest page follows live changes; an older page stays put while you read it.
  const soon = debounce(() => { if (page === 0) load().catch(() => {}); }, 100);
  live({ kind: "job.", batch: 0.3 }, soon);
  await load();
}

function timelineOf(job, events) {
  const items = events.map((e) => ({ at: e.at, kind: e.kind, detail: [e.worker_id && `worker ${e.worker_id}`, e.attempt && `attempt ${e.attempt}`].filter(Boolean).join(" · ") }));
  const has = (kind) => items.some((i) => i.kind === kind);
  if (!has("job.enqueued")) items.push({ at: job.created_at, kind: "job.enqueued", detail: `queue ${job.queue}` });
  if (job.run_at > job.created_at + 0.001 && job.state === "scheduled") items.push({ at: job.run_at, kind: "due", detail: "runs at" });
  if (job.started_at && !has("job.claimed")) items.push({ at: job.started_at, kind: "job.claimed", detail: `attempt ${job.attempt}` });
  if (job.finished_at && !items.some((i) => i.at === job.finished_at)) items.push({ at: job.finished_at, kind: `job.${job.state}`, detail: "" });
  return items.sort((a, b) => a.at - b.at);
}

async function jobPage() {
  const id = body.dataset.jobId;
  const path = `/jobs/${encodeURIComponent(id)}`;
  const show = (value, b64) => (b64 ? `(base64) ${b64}` : value === null || value === undefined ? "—" : JSON.stringify(value, null, 2));
  async function refresh() {
    let job;
    try {
      job = await api("GET", path);
    } catch (error) {
      document.getElementById("job-task").textContent = "Job not found";
      document.getElementById("job-state").textContent = "gone";
      for (const b of ["job-cancel", "job-retry", "job-delete"]) document.getElementById(b).disabled = true;
      return;
    }
    const { events } = await api("GET", `${path}/events`);
    document.getElementById("job-task").textContent = job.task;
    const stateBadge = document.getElementById("job-state");
    stateBadge.textContent = job.cancel_requested && job.state === "running" ? "cancel requested" : job.state;
    stateBadge.className = `badge ${job.state}`;
    document.getElementById("job-cancel").disabled = TERMINAL.includes(job.state) || job.cancel_requested;
    document.getElementById("job-retry").disabled = !["failed", "cancelled"].includes(job.state);
    document.getElementById("job-delete").disabled = job.state === "running";
    const fields = [
      ["Id", job.id], ["Queue", job.queue], ["Priority", job.priority],
      ["Attempts", `${job.attempt} of ${job.max_attempts}`], ["Backoff", job.backoff || "—"],
      ["Timeout", job.timeout ? fmtDuration(job.timeout) : "—"], ["Created", fmtTime(job.created_at)],
      ["Runs at", fmtTime(job.run_at)], ["Started", fmtTime(job.started_at)], ["Finished", fmtTime(job.finished_at)],
      ["Worker", job.worker_id || "—"], ["Lease expires", fmtTime(job.lease_expires_at)],
      ["Progress", job.progress === null ? "—" : `${Math.round(job.progress * 100)} %`],
      ["Tags", job.tags.join(", ") || "—"], ["Idempotency key", job.idempotency_key || "—"],
      ["Parent", job.parent_id || "—"], ["Schedule", job.schedule_id || "—"],
    ];
    document.getElementById("job-fields").replaceChildren(...fields.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: String(v) })]));
    document.getElementById("job-ctype").textContent = job.content_type;
    document.getElementById("job-payload").textContent = show(job.payload, job.payload_base64);
    document.getElementById("job-result").textContent = show(job.result, job.result_base64);
    const panel = document.getElementById("job-error-panel");
    panel.hidden = !job.error;
    if (job.error) {
      document.getElementById("job-error").textContent = `${job.error.type}: ${job.error.message}`;
      document.getElementById("job-traceback").textContent = job.error.traceback || "(no traceback)";
    }
    document.getElementById("job-timeline").replaceChildren(...timelineOf(job, events).map((item) =>
      h("li", { class: item.kind.replace("job.", "") }, h("strong", { text: item.kind.replace("job.", "") }),
        item.detail ? h("span", { class: "muted", text: ` · ${item.detail}` }) : null,
        h("span", { class: "when", text: fmtTime(item.at) }))));
  }
  document.getElementById("job-cancel").onclick = () => act("Cancel sent", () => api("POST", `${path}/cancel`)).then(refresh);
  document.getElementById("job-retry").onclick = () => act("Queued again", () => api("POST", `${path}/retry`)).then(refresh);
  document.getElementById("job-delete").onclick = () => confirm("Delete this job?") &&
    act("Deleted", () => api("DELETE", path)).then(() => { location.href = `/jobs?${qs({ namespace: NS })}`; });
  const soon = debounce(() => refresh().catch(() => {}), 200);
  live({ job_id: id }, soon);
  await refresh();
}

async function workersPage() {
  let fetchedAt = Date.now();
  async function refresh() {
    const { workers } = await api("GET", "/workers");
    fetchedAt = Date.now();
    const path = (w, verb) => `/workers/${encodeURIComponent(w.id)}/${verb}`;
    const rows = workers.map((w) => h("tr", { "data-worker": w.id },
      h("td", {}, h("span", { class: "mono", text: w.id }), h("div", { class: "muted", text: w.host ? `${w.host} · pid ${w.pid}` : "" })),
      h("td", {}, badge(w.state)), h("td", { text: w.queues.join(", ") }),
      h("td", { text: `${w.language} · ×${w.concurrency}` }),
      h("td", { class: "num", text: `${w.running}/${w.concurrency}` }),
      h("td", { class: "num heartbeat", "data-age": w.heartbeat_age, text: ago(w.heartbeat_age) }),
      h("td", { text: fmtTime(w.connected_at) }),
      h("td", { class: "actions" },
        h("button", { class: "btn small", text: "Drain", disabled: w.state === "draining", onclick: () => act(`Draining ${w.id}`, () => api("POST", path(w, "drain"))).then(refresh) }),
        h("button", { class: "btn small danger", text: "Kick", onclick: () => confirm(`Kick ${w.id}? Its running jobs go back to their queues.`) && act(`Kicked ${w.id}`, () => api("POST", path(w, "kick"))).then(refresh) }))));
    fillTable(document.getElementById("workers-table"), rows, "No workers connected.", 8);
  }
  // Heartbeat ages tick every second between refreshes.
  setInterval(() => {
    const elapsed = (Date.now() - fetchedAt) / 1000;
    for (const cell of document.querySelectorAll("td.heartbeat")) cell.textContent = ago(Number(cell.dataset.age) + elapsed);
  }, 1000);
  const soon = debounce(() => refresh().catch(() => {}), 100);
  live({ kind: "worker.", batch: 0.5 }, soon);
  setInterval(soon, 5000);
  await refresh();
}

// ---- schedules ---------------------------------------------------------------------------------

function triggerText(s) {
  if (s.kind === "interval") return `every ${fmtDuration(s.every_ms / 1000)}`;
  if (s.kind === "cron") return `cron ${s.cron}${s.timezone !== "UTC" ? ` (${s.timezone})` : ""}`;
  return `once at ${fmtTime(s.at)}`;
}

async function schedulesPage() {
  async function refresh() {
    const { schedules } = await api("GET", "/schedules");
    const path = (s, verb) => `/schedules/${encodeURIComponent(s.id)}${verb ? "/" + verb : ""}`;
    const upcoming = await Promise.all(schedules.map((s) =>
      s.paused ? Promise.resolve({ fires: [] }) : api("GET", path(s, "upcoming"), undefined, { count: 3 }).catch(() => ({ fires: [] }))));
    const rows = schedules.map((s, i) => h("tr", { "data-schedule": s.id },
      h("td", { class: "mono", text: s.id }), h("td", { text: s.task }), h("td", { text: s.queue }),
      h("td", { text: triggerText(s) }), h("td", {}, badge(s.paused ? "paused" : "active")),
      h("td", { class: "mono" }, ...upcoming[i].fires.map((t) => h("div", { text: fmtTime(t) }))),
      h("td", {}, s.last_job_id ? [jobLink(s.last_job_id), h("div", { class: "muted", text: fmtTime(s.last_fire_at) })] : "—"),
      h("td", { class: "actions" },
        s.paused
          ? h("button", { class: "btn small", text: "Resume", onclick: () => act(`Resumed ${s.id}`, () => api("POST", path(s, "resume"))).then(refresh) })
          : h("button", { class: "btn small", text: "Pause", onclick: () => act(`Paused ${s.id}`, () => api("POST", path(s, "pause"))).then(refresh) }),
        h("button", { class: "btn small", text: "Trigger", onclick: () => act(`Fired ${s.id}`, () => api("POST", path(s, "trigger"))).then(refresh) }),
        h("button", { class: "btn small danger", text: "Delete", onclick: () => confirm(`Delete schedule ${s.id}? Its jobs stay.`) && act(`Deleted ${s.id}`, () => api("DELETE", path(s))).then(refresh) }))));
    fillTable(document.getElementById("schedules-table"), rows, "No schedules in this namespace.", 8);
  }
  const soon = debounce(() => refresh().catch(() => {}), 200);
  live({ kind: "schedule.", batch: 0.5 }, soon);
  setInterval(soon, 5000);
  await refresh();
}

function loginPage() {
  document.getElementById("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const body = f.token.value ? { token: f.token.value } : { name: f.name.value, password: f.password.value };
    const response = await fetch("/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (response.ok) location.href = "/";
    else document.getElementById("login-error").textContent = "Wrong user name, password or token.";
  });
}

function wireLogout() {
  const button = document.getElementById("logout");
  if (!button) return;
  button.addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": CSRF }, credentials: "same-origin" });
    location.href = "/login";
  });
}
wireLogout();  // the script runs at the end of the body: the button exists

// ---- chrome: theme, namespace switcher ---------------------------------------------------------------

function chrome() {
  const toggle = document.getElementById("theme-toggle");
  if (toggle) toggle.onclick = () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("shoal-theme", next);
    window.dispatchEvent(new Event("resize"));
  };
  const switcher = document.getElementById("namespace-switcher");
  if (switcher) switcher.onchange = () => {
    const base = body.dataset.page === "job" ? "/jobs" : location.pathname;
    location.href = `${base}?${qs({ namespace: switcher.value })}`;
  };
}

chrome();
const pages = { overview: overviewPage, queues: queuesPage, jobs: jobsPage, job: jobPage, workers: workersPage, schedules: schedulesPage, login: loginPage };
const start = pages[body.dataset.page];
if (start) Promise.resolve(start()).catch((error) => toast(error.message, true));
