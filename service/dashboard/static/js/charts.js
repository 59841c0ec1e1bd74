// Charts over uPlot (vendored, a global from uPlot.iife.min.js): metric curves keyed by step.
//
// Every chart element records what it drew: after each draw, data-points-<key> holds the number
// of points of that series in the drawn data and data-draws counts the draws, so that tests and
// benchmarks compare the picture with the API's history.

/* global uPlot */

export const COLORS = {
  batch: "#9fb0c8",
  train: "#2563eb",
  test: "#ea580c",
  gap: "rgba(234, 88, 12, 0.14)",
  dropout: "#7c3aed",
  learningRate: "#0d9488",
  axis: "#475569",
  grid: "#e7ebf1",
};

/** Colours for runs ordered by a swept value: low values blue, high values orange-red. */
export const RUN_COLORS = ["#1d4ed8", "#0891b2", "#059669", "#65a30d", "#ca8a04", "#ea580c",
                           "#dc2626", "#c026d3"];

const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = '600 12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

/** A uPlot axis with the dashboard's font and grid; `options` override (e.g. side: 1). */
export function axis(label, options = {}) {
  return { label, stroke: COLORS.axis, font: FONT, labelFont: LABEL_FONT, labelSize: 20,
           grid: { stroke: COLORS.grid, width: 1 }, ticks: { stroke: COLORS.grid, width: 1 },
           ...options };
}

/** A right-hand axis on its own scale, without grid lines. */
export function rightAxis(label, scale, options = {}) {
  return axis(label, { scale, side: 1, grid: { show: false }, ...options });
}

/** uPlot axis values for fractions as percentages, with as many decimals as the ticks need. */
export function percentTicks(u, ticks) {
  const spacing = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const decimals = spacing >= 0.01 ? 0 : spacing >= 0.001 ? 1 : 2;
  return ticks.map((t) => `${(100 * t).toFixed(decimals)}%`);
}

/** The same for differences of fractions, in percentage points. */
export function pointTicks(u, ticks) {
  const spacing = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
  const decimals = spacing >= 0.01 ? 0 : spacing >= 0.001 ? 1 : 2;
  return ticks.map((t) => (100 * t).toFixed(decimals));
}

/**
 * Align series sampled at different steps on one x array, as uPlot wants:
 * columns [{steps: number[] ascending, values: number[]}] -> [xs, ys_1, ..., ys_k] with null
 * where a series has no point at that step. One column is returned as it is; otherwise a
 * k-way merge, linear in the number of points.
 */
export function alignSeries(columns) {
  if (columns.length === 1) return [columns[0].steps, columns[0].values];
  const xs = [];
  const cursor = columns.map(() => 0);
  for (;;) {
    let next = Infinity;
    columns.forEach((column, k) => {
      if (cursor[k] < column.steps.length && column.steps[cursor[k]] < next) {
        next = column.steps[cursor[k]];
      }
    });
    if (next === Infinity) break;
    xs.push(next);
    columns.forEach((column, k) => {
      if (column.steps[cursor[k]] === next) cursor[k] += 1;
    });
  }
  const ys = columns.map((column) => {
    const aligned = new Array(xs.length).fill(null);
    let j = 0;
    for (let i = 0; i < column.steps.length; i++) {
      while (xs[j] !== column.steps[i]) j++;
      aligned[j] = column.values[i];
    }
    return aligned;
  });
  return [xs, ...ys];
}

function countPoints(values) {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== null) count++;
  return count;
}

function legendValue(format) {
  return (u, value) => (value === null || value === undefined ? "–" : format(value));
}

/** First index whose step is >= `step` (steps ascending). */
function lowerBound(steps, step) {
  let lo = 0;
  let hi = steps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] < step) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Curves of metric series against the iteration.
 * series: [{key, label, color, scale = "y", width, dash, points}]; axes: uPlot axes after the
 * x axis; bands: uPlot bands by series index (1-based, in `series` order); xAxis: options of
 * the x axis; draw: more uPlot draw hooks.
 */
export class MetricChart {
  constructor(container, { series, axes, scales = {}, bands = [], height = 260, format,
                           xLabel = "iteration", xAxis = {}, draw = [] }) {
    this.container = container;
    this.keys = series.map((s) => s.key);
    this.columns = new Map(this.keys.map((key) => [key, { steps: [], values: [] }]));
    this.pending = false;
    this.waiters = [];
    this.draws = 0;
    this.height = height;
    const value = legendValue(format || ((v) => Number(v.toPrecision(4)).toString()));
    const options = {
      width: Math.max(320, container.clientWidth),
      height,
      scales: { x: { time: false }, ...scales },
      series: [
        { label: xLabel, value: legendValue((v) => String(v)) },
        ...series.map((s) => ({
          label: s.label, stroke: s.color, width: s.width ?? 1.75, scale: s.scale ?? "y",
          dash: s.dash, spanGaps: true, value,
          points: { show: s.points ?? false, size: 5, fill: s.color },
        })),
      ],
      axes: [axis(xLabel, xAxis), ...axes],
      bands,
      legend: { live: true },
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      hooks: { draw: [...draw, (u) => this.drawn(u)] },
    };
    this.plot = new uPlot(options, this.aligned(), container);
    new ResizeObserver(() => {
      const width = Math.max(320, this.container.clientWidth);
      if (width !== this.plot.width) this.plot.setSize({ width, height: this.height });
    }).observe(container);
  }

  /** Replace a series with points [{step, value}] in step order. */
  set(key, points) {
    const column = this.columns.get(key);
    column.steps = points.map((p) => p.step);
    column.values = points.map((p) => p.value);
    this.schedule();
  }

  /**
   * Add live points. A point at a step the series already has either repeats it (skipped) or
   * rewrites the run from there on (a resumed attempt retrains steps after its checkpoint):
   * the series is cut at that step first.
   */
  append(key, points) {
    const column = this.columns.get(key);
    if (!column) return;
    for (const { step, value } of points) {
      const last = column.steps.length ? column.steps[column.steps.length - 1] : -Infinity;
      if (step <= last) {
        const at = lowerBound(column.steps, step);
        if (column.steps[at] === step && column.values[at] === value) continue;
        column.steps.length = at;
        column.values.length = at;
      }
      column.steps.push(step);
      column.values.push(value);
    }
    this.schedule();
  }

  lastValue(key) {
    const { values } = this.columns.get(key);
    return values.length ? values[values.length - 1] : null;
  }

  /** Resolves once the data set so far has been drawn. */
  whenDrawn() {
    if (!this.pending) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.plot.setData(this.aligned());
    });
  }

  aligned() {
    return alignSeries(this.keys.map((key) => this.columns.get(key)));
  }

  drawn(u) {
    this.draws += 1;
    this.keys.forEach((key, i) => {
      this.container.setAttribute(`data-points-${key.replaceAll("_", "-")}`,
                                  countPoints(u.data[i + 1]));
    });
    this.container.dataset.draws = this.draws;
    if (this.pending) return; // newer data waits for its frame: this draw is not it
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((resolve) => resolve());
  }
}

/**
 * A uPlot draw hook drawing mean ± std whiskers: std[seriesIndex] is an array aligned with
 * the x values (null: no whisker).
 */
export function errorBars(std, colors) {
  return (u) => {
    const { ctx } = u;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    ctx.lineWidth = 1.5 * devicePixelRatio;
    for (const [index, deviations] of Object.entries(std)) {
      const series = u.series[index];
      if (!series.show) continue;
      ctx.strokeStyle = colors[index];
      const cap = 4 * devicePixelRatio;
      u.data[0].forEach((x, i) => {
        const mean = u.data[index][i];
        const spread = deviations[i];
        if (mean === null || spread === null || spread === undefined) return;
        const px = u.valToPos(x, "x", true);
        const top = u.valToPos(mean + spread, series.scale, true);
        const bottom = u.valToPos(mean - spread, series.scale, true);
        ctx.beginPath();
        ctx.moveTo(px, top);
        ctx.lineTo(px, bottom);
        ctx.moveTo(px - cap, top);
        ctx.lineTo(px + cap, top);
        ctx.moveTo(px - cap, bottom);
        ctx.lineTo(px + cap, bottom);
        ctx.stroke();
      });
    }
    ctx.restore();
  };
}
