// modelyzer ui: sort and filter the ranked table, pick two configs to compare, draw the Plotly figures,
// and follow the live event stream (progress, latest measurements, agents; the table and plots of a model page).
"use strict";

const sortState = { index: null, dir: 1 };

function cellValue(row, index, kind) {
  const cell = row.children[index];
  const raw = cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent.trim();
  if (kind === "num") {
    const n = parseFloat(raw);
    return Number.isNaN(n) ? Infinity : n;
  }
  return raw.toLowerCase();
}

function sortTable(table) {
  if (sortState.index === null) return;
  const th = table.tHead.rows[0].children[sortState.index];
  const kind = th.dataset.sort;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows).filter((r) => r.dataset.name);
  rows.sort((a, b) => {
    const x = cellValue(a, sortState.index, kind), y = cellValue(b, sortState.index, kind);
    return (x < y ? -1 : x > y ? 1 : 0) * sortState.dir;
  });
  rows.forEach((r) => body.appendChild(r));
  Array.from(table.tHead.rows[0].children).forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", sortState.dir > 0 ? "ascending" : "descending");
}

function filterTable(table) {
  const only = document.getElementById("only-met");
  Array.from(table.tBodies[0].rows).forEach((r) => {
    r.hidden = Boolean(only && only.checked && r.dataset.passing === "0");
  });
}

function picked() {
  return Array.from(document.querySelectorAll("input.pick:checked")).map((i) => i.value);
}

function wireTable() {
  const table = document.getElementById("ranked");
  if (!table) return;
  Array.from(table.tHead.rows[0].children).forEach((th, index) => {
    if (!th.dataset.sort) return;
    th.addEventListener("click", () => {
      sortState.dir = sortState.index === index ? -sortState.dir : 1;
      sortState.index = index;
      sortTable(table);
    });
  });
  table.querySelectorAll("input.pick").forEach((box) => box.addEventListener("change", () => {
    document.getElementById("compare").disabled = picked().length !== 2;
  }));
  sortTable(table);
  filterTable(table);
}

function modelName() {
  const holder = document.getElementById("table-holder");
  return holder ? holder.dataset.model : null;
}

function plotlyLoaded() {  // plotly.js (4.8 MB) loads async: the table is usable before it has
  if (window.Plotly) return Promise.resolve();
  const script = document.getElementById("plotly-js");
  return new Promise((resolve) => script.addEventListener("load", resolve, { once: true }));
}

async function drawFigures() {
  const model = modelName();
  if (!model) return;
  const [figs] = await Promise.all([
    fetch(`/model/${encodeURIComponent(model)}/figures.json`).then((r) => r.json()), plotlyLoaded()]);
  for (const id of ["frontier", "breakdown"]) {
    await Plotly.react(id, figs[id].data, figs[id].layout, { responsive: true, displaylogo: false });
  }
  document.body.dataset.plotted = document.body.dataset.version;
}

async function refreshModel() {
  const model = modelName();
  if (!model) return;
  const keep = new Set(picked());
  const html = await (await fetch(`/model/${encodeURIComponent(model)}/table`)).text();
  const holder = document.getElementById("table-holder");
  holder.innerHTML = html;
  holder.querySelectorAll("input.pick").forEach((box) => { box.checked = keep.has(box.value); });
  document.getElementById("compare").disabled = picked().length !== 2;
  wireTable();
  await drawFigures();
}

function text(value, digits) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((c) => { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
  return tr;
}

function renderLive(state) {
  const run = state.run;
  const bar = document.getElementById("bar");
  if (run) {
    const pct = run.total ? Math.min(100, (100 * run.done) / run.total) : 100;
    bar.style.width = `${pct}%`;
    document.getElementById("progress-text").textContent =
      `run ${run.id}: ${run.done}${run.status === "running" ? ` of ~${run.total}` : ""} measured` +
      (run.failed ? `, ${run.failed} failed` : "");
    document.getElementById("eta").textContent = run.eta ? `ETA ${run.eta}` : "";
    const status = document.getElementById("run-status");
    status.textContent = run.status;
    status.className = `status status-${run.status}`;
    const runs = document.getElementById("runs");
    const line = runs && runs.querySelector(`tr[data-run="${run.id}"]`);
    if (runs && !line) window.location.reload();  // a new run started: the runs list is rendered again
    if (line) {  // the runs list: the latest run's status and count
      line.children[1].textContent = run.status;
      line.children[1].className = `status-${run.status}`;
      line.children[7].textContent = run.done;
    }
  }
  const latest = document.querySelector("#latest tbody");
  latest.replaceChildren(...state.latest.map((m) => {
    const tr = row([m.finished, m.variant, m.load, text(m.throughput, 1), text(m.p99, 2), m.where,
      m.ok ? "ok" : `FAILED: ${m.error}`]);
    tr.dataset.finishedAt = m.finished_at;  // when the measurement finished (epoch s): bench/ui.py reads it
    return tr;
  }));
  const panel = document.getElementById("agents-panel");
  panel.hidden = !state.agents;
  if (state.agents) {
    const a = state.agents;
    document.getElementById("agents-summary").textContent = a.error ? a.error :
      `slots ${a.slots} (${a.free} free) · in flight ${a.in_flight} · queued ${a.queued} · done ${a.done} · lost ${a.lost}`;
    document.querySelector("#agents tbody").replaceChildren(...(a.agents || []).map((g) => row([g.name, g.host,
      g.state, g.slots, g.busy, g.done, `${Number(g.silent_seconds).toFixed(1)} s`, (g.gpus || []).join(", ") || "CPU"])));
  }
  const models = document.getElementById("models");
  if (models && state.models.length && models.children.length !== state.models.length) {
    models.replaceChildren(...state.models.map((m) => {
      const li = document.createElement("li"), a = document.createElement("a");
      a.href = `/model/${encodeURIComponent(m)}`; a.textContent = m; li.appendChild(a); return li;
    }));
  }
}

function follow() {
  const source = new EventSource("/events");
  // close the stream when the page goes (or into the back/forward cache): an open stream holds one of the
  // browser's few connections to this host
  window.addEventListener("pagehide", () => source.close());
  window.addEventListener("pageshow", (event) => { if (event.persisted) window.location.reload(); });
  source.addEventListener("update", async (event) => {
    const state = JSON.parse(event.data);
    renderLive(state);
    const version = state.version.join(",");
    if (version !== document.body.dataset.version) {
      document.body.dataset.version = version;
      await refreshModel();
    }
    document.body.dataset.live = version;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireTable();
  const only = document.getElementById("only-met");
  if (only) only.addEventListener("change", () => filterTable(document.getElementById("ranked")));
  const button = document.getElementById("compare");
  if (button) button.addEventListener("click", () => {
    const [a, b] = picked();
    window.location = `/model/${encodeURIComponent(modelName())}/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
  });
  drawFigures();
  follow();
});
