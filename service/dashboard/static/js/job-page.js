// The job page at /jobs/{id}: loss and accuracy curves (history downsampled by the API's
// max_points, then live from the job's event stream), progress, spec, attempts, predictions.

import { COLORS, MetricChart, axis, percentTicks, rightAxis } from "./charts.js";
import { describeError, formatDuration, formatPercent, formatTime, formatValue, h, notice,
         progressBar, section, statusBadge } from "./dom.js";
import { getJSON } from "./api.js";
import { followEvents } from "./sse.js";
import { predictPanel } from "./predict.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const MAX_POINTS = { min: 500, max: 4000 };

const page = document.getElementById("page");
const jobId = decodeURIComponent(location.pathname.split("/")[2] || "");
const jobPath = `/v1/jobs/${encodeURIComponent(jobId)}`;

/** The chart elements' point budget: two points (a bucket's min and max) per pixel. */
function maxPoints(element) {
  return Math.min(MAX_POINTS.max, Math.max(MAX_POINTS.min, 2 * element.clientWidth));
}

function lossChart(element) {
  return new MetricChart(element, {
    series: [
      { key: "batch_loss", label: "batch loss", color: COLORS.batch, width: 1 },
      { key: "train_loss", label: "train loss", color: COLORS.train, width: 2 },
      { key: "test_loss", label: "test loss", color: COLORS.test, width: 2 },
      { key: "learning_rate", label: "learning rate", color: COLORS.learningRate, scale: "lr",
        dash: [6, 4] },
    ],
    axes: [axis("loss"), rightAxis("learning rate", "lr")],
    scales: { lr: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
  });
}

function accuracyChart(element) {
  return new MetricChart(element, {
    series: [
      { key: "train_accuracy", label: "train accuracy", color: COLORS.train, width: 2 },
      { key: "test_accuracy", label: "test accuracy", color: COLORS.test, width: 2 },
      { key: "dropout_rate", label: "dropout rate", color: COLORS.dropout, scale: "rate",
        dash: [6, 4] },
    ],
    axes: [axis("accuracy", { values: percentTicks }),
           rightAxis("dropout rate", "rate")],
    scales: { rate: { range: [0, 1] } },
    // Shaded between the two accuracies: the generalization gap.
    bands: [{ series: [1, 2], fill: COLORS.gap }],
    format: (v) => v.toFixed(4),
  });
}

function stat(label, id) {
  const value = h("dd", { id, text: "–" });
  return { element: h("div", { class: "stat" }, h("dt", { text: label }), value), value };
}

function attemptsTable(attempts) {
  if (attempts.length === 0) return notice("empty", "No attempts yet", "The job is queued.");
  return h("table", { class: "table compact" },
    h("thead", {}, h("tr", {}, ["#", "Worker", "Started", "Ended", "Outcome", "Resumed from"]
      .map((title) => h("th", { text: title })))),
    h("tbody", {}, attempts.map((a) => h("tr", {},
      h("td", { text: a.number }), h("td", { text: `${a.worker.host} pid ${a.worker.pid}` }),
      h("td", { text: formatTime(a.started_at) }), h("td", { text: formatTime(a.ended_at) }),
      h("td", {}, statusBadge(a.outcome)),
      h("td", { text: a.resumed_from_iteration ?? "–" })))));
}

async function main() {
  // Asked at once, side by side: the job, its metric keys and its attempts.
  const keysRequest = getJSON(`${jobPath}/metrics`);
  const attemptsRequest = getJSON(`${jobPath}/attempts`);
  keysRequest.catch(() => {}); // a missing job is reported once, below
  attemptsRequest.catch(() => {});
  let job;
  try {
    job = await getJSON(jobPath);
  } catch (error) {
    page.append(notice("error", error.status === 404 ? `No job ${jobId}` : "Could not load the job",
                       describeError(error)));
    return;
  }
  document.title = `${job.name || job.id} · dropnet`;

  const badge = h("span", { id: "status" });
  const times = h("p", { class: "muted subtitle" });
  const errorBox = h("div");
  const progress = progressBar();
  const live = h("span", { class: "live", id: "live" });
  const stats = {
    test_accuracy: stat("test accuracy", "stat-test-accuracy"),
    train_accuracy: stat("train accuracy", "stat-train-accuracy"),
    gap: stat("accuracy gap", "stat-gap"),
    test_loss: stat("test loss", "stat-test-loss"),
    attempts: stat("attempts", "stat-attempts"),
  };
  const lossElement = h("div", { class: "chart", id: "loss-chart" });
  const accuracyElement = h("div", { class: "chart", id: "accuracy-chart" });
  const attempts = h("div", { id: "attempts" });
  const predict = predictPanel(job.id);

  page.append(
    h("div", { class: "page-title" }, h("h1", { id: "job-name", text: job.name || job.id }),
      badge, live),
    times,
    errorBox,
    h("section", { class: "card summary" }, progress.element,
      h("dl", { class: "stats" }, Object.values(stats).map((s) => s.element))),
    section("Loss", h("p", { class: "muted small",
      text: "Batch loss every iteration (downsampled to each bucket's min and max), train and "
            + "test loss at each evaluation; learning rate on the right axis." }), lossElement),
    section("Accuracy", h("p", { class: "muted small",
      text: "Train against test accuracy; the shaded band is the generalization gap. Dropout "
            + "rate on the right axis." }), accuracyElement),
    section("Predict", predict.element),
    h("div", { class: "columns" },
      section("Attempts", attempts),
      section("Spec", h("pre", { class: "spec", id: "spec",
                                 text: JSON.stringify(job.spec, null, 2) }))));

  const charts = { loss: lossChart(lossElement), accuracy: accuracyChart(accuracyElement) };
  const chartOf = new Map([
    ...charts.loss.keys.map((key) => [key, charts.loss]),
    ...charts.accuracy.keys.map((key) => [key, charts.accuracy])]);

  function renderJob() {
    badge.replaceChildren(statusBadge(job.status));
    const parts = [`id ${job.id}`, `created ${formatTime(job.created_at)}`];
    if (job.started_at) parts.push(`started ${formatTime(job.started_at)}`);
    if (job.finished_at) {
      parts.push(`finished ${formatTime(job.finished_at)}`);
      if (job.started_at) {
        parts.push(`ran ${formatDuration((new Date(job.finished_at) - new Date(job.started_at))
                                         / 1000)}`);
      }
    }
    if (job.sweep_id) parts.push(`run of sweep ${job.sweep_id}`);
    times.replaceChildren(parts.join(" · "));
    if (job.sweep_id) {
      times.append(" ", h("a", { href: `/sweeps/${encodeURIComponent(job.sweep_id)}`,
                                 text: "open the sweep" }));
    }
    errorBox.replaceChildren(job.error ? notice("error", `Job ${job.status}`, job.error) : "");
    progress.update(job.progress, job.status);
    stats.attempts.value.textContent = String(job.attempts);
    predict.update(job);
  }

  function renderStats() {
    const value = (key) => chartOf.get(key).lastValue(key) ?? job.metrics[key] ?? null;
    const train = value("train_accuracy");
    const test = value("test_accuracy");
    stats.test_accuracy.value.textContent = formatPercent(test);
    stats.train_accuracy.value.textContent = formatPercent(train);
    stats.gap.value.textContent = train !== null && test !== null
      ? `${(100 * (train - test)).toFixed(1)} pts` : "–";
    stats.test_loss.value.textContent = formatValue(value("test_loss"));
  }

  async function refreshAttempts(request = getJSON(`${jobPath}/attempts`)) {
    try {
      const answer = await request;
      attempts.replaceChildren(attemptsTable(answer.data));
    } catch (error) {
      attempts.replaceChildren(notice("error", "Could not load the attempts",
                                      describeError(error)));
    }
  }

  async function loadHistory(keys) {
    const summary = await keys;
    const present = new Set(summary.data.map((s) => s.key));
    const loads = [...chartOf].filter(([key]) => present.has(key)).map(async ([key, chart]) => {
      const budget = maxPoints(chart.container);
      chart.container.dataset.maxPoints = budget;
      const history = await getJSON(
        `${jobPath}/metrics/${encodeURIComponent(key)}?max_points=${budget}`);
      chart.set(key, history.points);
    });
    await Promise.all(loads);
    if (present.size === 0) {
      for (const chart of Object.values(charts)) {
        chart.container.dataset.empty = "no metrics yet";
      }
    }
    await Promise.all(Object.values(charts).map((chart) => chart.whenDrawn()));
  }

  function applyPoints(points) {
    const byKey = new Map();
    for (const point of points) {
      if (!chartOf.has(point.key)) continue;
      if (!byKey.has(point.key)) byKey.set(point.key, []);
      byKey.get(point.key).push(point);
    }
    for (const [key, keyed] of byKey) chartOf.get(key).append(key, keyed);
    for (const chart of Object.values(charts)) delete chart.container.dataset.empty;
    renderStats();
  }

  renderJob();
  refreshAttempts(attemptsRequest);
  performance.mark("dropnet:history-start");

  if (TERMINAL.has(job.status)) {
    await loadHistory(keysRequest);
    performance.mark("dropnet:history-drawn");
    renderStats();
    page.dataset.ready = "true";
    return;
  }

  // Live: the stream opens first (from now on), the history loads, then the points that
  // arrived meanwhile are applied; a point the history already has is skipped.
  let historyLoaded = false;
  const waiting = [];
  let opened;
  const streamOpen = new Promise((resolve) => { opened = resolve; });
  live.textContent = "connecting…";
  const stream = followEvents(`${jobPath}/events?since=now`, {
    open: () => {
      live.textContent = "live";
      live.dataset.state = "live";
      opened();
    },
    interrupted: () => {
      live.textContent = "reconnecting…";
      live.dataset.state = "reconnecting";
    },
    status: (event) => {
      Object.assign(job, { status: event.status, attempts: event.attempts, error: event.error });
      renderJob();
      refreshAttempts();
    },
    progress: (event) => {
      job.progress = event;
      progress.update(event, job.status);
    },
    metrics: (event) => {
      if (historyLoaded) applyPoints(event.points);
      else waiting.push(event.points);
      page.dataset.metricEvents = String(Number(page.dataset.metricEvents || 0) + 1);
    },
    end: async (event) => {
      live.textContent = "";
      live.dataset.state = "ended";
      job = await getJSON(jobPath);
      Object.assign(job.metrics, event.metrics);
      renderJob();
      renderStats();
      refreshAttempts();
    },
  });
  stream.catch((error) => {
    live.textContent = "";
    errorBox.replaceChildren(notice("error", "The live event stream failed",
                                    describeError(error)));
    opened();
  });
  await streamOpen;
  // The keys again: a series first written before the stream opened is in no event.
  await loadHistory(getJSON(`${jobPath}/metrics`));
  historyLoaded = true;
  waiting.forEach(applyPoints);
  performance.mark("dropnet:history-drawn");
  renderStats();
  page.dataset.ready = "true";
}

main();
