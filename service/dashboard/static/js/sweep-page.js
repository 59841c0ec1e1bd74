// The sweep page at /sweeps/{id}: test accuracy and generalization gap against each swept
// value (mean ± std over the runs with that value, from the API's summary), every run's
// test-accuracy curve overlaid, and the runs. Live from the sweep's event stream.

import { COLORS, MetricChart, RUN_COLORS, axis, errorBars, percentTicks, pointTicks,
         rightAxis } from "./charts.js";
import { describeError, formatPercent, formatTime, h, notice, section,
         statusBadge } from "./dom.js";
import { getJSON } from "./api.js";
import { followEvents } from "./sse.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const REFRESH_DEBOUNCE_MS = 300;

const page = document.getElementById("page");
const sweepId = decodeURIComponent(location.pathname.split("/")[2] || "");
const sweepPath = `/v1/sweeps/${encodeURIComponent(sweepId)}`;

function describeParameters(parameters) {
  return Object.entries(parameters).map(([path, value]) => `${path}=${JSON.stringify(value)}`)
    .join(", ");
}

/** Test accuracy and accuracy gap against one parameter's values, with ± std whiskers. */
class ValueChart {
  constructor(parameter, entries) {
    this.parameter = parameter;
    const numeric = entries.every((entry) => typeof entry.value === "number");
    const order = entries.map((entry) => JSON.stringify(entry.value));
    // Numeric values sit at their value; others (strings, booleans, lists) at their index.
    this.position = numeric ? (entry) => entry.value
                            : (entry) => order.indexOf(JSON.stringify(entry.value));
    this.labels = [];
    this.positions = [];
    this.std = { 1: [], 2: [] };
    this.element = h("div", { class: "chart", "data-parameter": parameter });
    this.card = section(`Test accuracy and gap against ${parameter}`,
      h("p", { class: "muted small",
               text: "Mean ± standard deviation over the finished runs with each value (seeds "
                     + "and the other parameters); gap = train − test accuracy, in points, on "
                     + "the right axis." }),
      this.element);
    this.entries = entries;
  }

  mount() {
    const extent = (index) => (u, min, max) => padded(...this.extent(u, index, min, max));
    this.chart = new MetricChart(this.element, {
      series: [
        { key: "test_accuracy", label: "test accuracy", color: COLORS.test, width: 2,
          points: true },
        { key: "accuracy_gap", label: "accuracy gap", color: COLORS.train, width: 2,
          points: true, scale: "gap", dash: [6, 4] },
      ],
      axes: [axis("test accuracy", { values: percentTicks }),
             rightAxis("gap (points)", "gap", { values: pointTicks })],
      scales: { x: { time: false, range: (u, min, max) => padded(min, max) },
                y: { range: extent(1) }, gap: { range: extent(2) } },
      xLabel: this.parameter,
      // Ticks at the swept values only, labelled as the API writes them.
      xAxis: { splits: () => this.positions,
               values: (u, ticks) => ticks.map((t) => this.labels[this.positions.indexOf(t)]
                                                   ?? "") },
      draw: [errorBars(this.std, { 1: COLORS.test, 2: COLORS.train })],
      format: (v) => v.toFixed(4),
      height: 240,
    });
    this.update(this.entries);
  }

  /** [low, high] of a series' means ± std (the scale must show the whiskers). */
  extent(u, index, min, max) {
    const means = u.data[index];
    let low = min;
    let high = max;
    means.forEach((mean, i) => {
      const spread = this.std[index][i] ?? 0;
      if (mean === null) return;
      low = Math.min(low, mean - spread);
      high = Math.max(high, mean + spread);
    });
    return [low, high];
  }

  update(entries) {
    const sorted = [...entries].sort((a, b) => this.position(a) - this.position(b));
    this.labels = sorted.map((entry) => JSON.stringify(entry.value));
    this.positions = sorted.map((entry) => this.position(entry));
    const series = (name) => sorted.map((entry) => ({ step: this.position(entry),
                                                      value: entry[name].mean }));
    this.std[1] = sorted.map((entry) => entry.test_accuracy.std);
    this.std[2] = sorted.map((entry) => entry.accuracy_gap.std);
    this.chart.set("test_accuracy", series("test_accuracy"));
    this.chart.set("accuracy_gap", series("accuracy_gap"));
  }
}

function padded(min, max) {
  const span = max - min || Math.abs(max) || 1;
  return [min - 0.08 * span, max + 0.08 * span];
}

/** Colours by the rank of the first swept parameter's value (seeds last). */
function runColors(sweep) {
  const paths = Object.keys(sweep.spec.parameters || {});
  const main = paths.find((path) => !path.endsWith("seed")) ?? paths[0];
  const values = [...new Set(sweep.runs.map((run) => JSON.stringify(run.parameters[main])))]
    .sort((a, b) => (JSON.parse(a) > JSON.parse(b) ? 1 : -1));
  const color = (run) => {
    const rank = values.indexOf(JSON.stringify(run.parameters[main]));
    const scaled = values.length > 1 ? rank / (values.length - 1) : 0;
    return RUN_COLORS[Math.round(scaled * (RUN_COLORS.length - 1))];
  };
  return { main, color };
}

function runsTable(sweep) {
  const best = sweep.best_run?.job_id;
  return h("table", { class: "table compact", id: "runs" },
    h("thead", {}, h("tr", {}, ["Run", "Parameters", "Status", "Test accuracy", "Gap",
                                "Best test accuracy"].map((title) => h("th", { text: title })))),
    h("tbody", {}, sweep.runs.map((run) => h("tr", { class: run.job_id === best ? "best" : null },
      h("td", {}, h("a", { href: `/jobs/${encodeURIComponent(run.job_id)}`,
                           text: run.job_id.slice(0, 8) })),
      h("td", { class: "mono", text: describeParameters(run.parameters) }),
      h("td", {}, statusBadge(run.status)),
      h("td", { class: "num", text: formatPercent(run.test_accuracy) }),
      h("td", { class: "num", text: run.accuracy_gap === null ? "–"
        : `${(100 * run.accuracy_gap).toFixed(1)} pts` }),
      h("td", { class: "num", text: formatPercent(run.best_test_accuracy) })))));
}

async function main() {
  let sweep;
  try {
    sweep = await getJSON(sweepPath);
  } catch (error) {
    page.append(notice("error", error.status === 404 ? `No sweep ${sweepId}`
                                                     : "Could not load the sweep",
                       describeError(error)));
    return;
  }
  document.title = `${sweep.name || sweep.id} · dropnet`;
  const badge = h("span", { id: "status" });
  const counts = h("p", { class: "muted subtitle" });
  const best = h("div", { class: "card summary" });
  const runs = h("div");
  const curvesElement = h("div", { class: "chart", id: "curves-chart" });
  const byParameter = new Map();
  for (const entry of sweep.summary) {
    if (!byParameter.has(entry.parameter)) byParameter.set(entry.parameter, []);
    byParameter.get(entry.parameter).push(entry);
  }
  const valueCharts = [...byParameter].map(([parameter, entries]) =>
    new ValueChart(parameter, entries));
  const { main: colorParameter, color } = runColors(sweep);

  page.append(
    h("div", { class: "page-title" }, h("h1", { id: "sweep-name", text: sweep.name || sweep.id }),
      badge),
    counts, best,
    h("div", { class: "value-charts" }, valueCharts.map((chart) => chart.card)),
    section("Test accuracy of every run", h("p", { class: "muted small",
      text: `One curve per run, coloured by ${colorParameter} (blue: lowest, red: highest).` }),
      curvesElement),
    section("Runs", runs));
  valueCharts.forEach((chart) => chart.mount());
  const curves = new MetricChart(curvesElement, {
    series: sweep.runs.map((run) => ({ key: run.job_id, label: describeParameters(run.parameters),
                                       color: color(run), width: 1.5 })),
    axes: [axis("test accuracy", { values: percentTicks })],
    format: (v) => v.toFixed(4),
    height: 300,
  });
  const curveDone = new Set();

  async function loadCurve(run) {
    const runPath = `/v1/jobs/${encodeURIComponent(run.job_id)}/metrics`;
    const keys = await getJSON(runPath);
    if (!keys.data.some((series) => series.key === "test_accuracy")) return; // not evaluated yet
    const history = await getJSON(`${runPath}/test_accuracy?max_points=2000`);
    curves.set(run.job_id, history.points);
    if (TERMINAL.has(run.status)) curveDone.add(run.job_id);
  }

  function render() {
    badge.replaceChildren(statusBadge(sweep.status));
    counts.textContent = [`id ${sweep.id}`, `created ${formatTime(sweep.created_at)}`,
      ...Object.entries(sweep.counts).map(([status, n]) => `${n} ${status}`)].join(" · ");
    const top = sweep.best_run;
    const objective = sweep.spec.objective || { metric: "test_accuracy", goal: "max" };
    best.replaceChildren(top
      ? h("p", {}, `Best run by ${objective.goal} ${objective.metric}: `,
          h("a", { href: `/jobs/${encodeURIComponent(top.job_id)}`,
                   text: describeParameters(top.parameters) }),
          ` · test accuracy ${formatPercent(top.test_accuracy)}`)
      : notice("empty", "No finished run yet", "Results appear as the runs finish."));
    valueCharts.forEach((chart) => chart.update(
      sweep.summary.filter((entry) => entry.parameter === chart.parameter)));
    runs.replaceChildren(runsTable(sweep));
  }

  async function refresh() {
    sweep = await getJSON(sweepPath);
    render();
    const pending = sweep.runs.filter((run) => !curveDone.has(run.job_id)
                                               && run.status !== "queued");
    await Promise.all(pending.map(loadCurve));
    page.dataset.refreshed = String(Number(page.dataset.refreshed || 0) + 1);
  }

  let timer = null;
  const refreshSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => refresh().catch(showError), REFRESH_DEBOUNCE_MS);
  };
  const showError = (error) => best.replaceChildren(
    notice("error", "Could not refresh the sweep", describeError(error)));

  render();
  await refresh();
  page.dataset.ready = "true";
  if (TERMINAL.has(sweep.status)) return;
  followEvents(`${sweepPath}/events?since=now`, {
    open: refreshSoon, // catch up with what changed before the stream opened
    run: refreshSoon,
    end: refreshSoon,
  }).catch(showError);
}

main();
