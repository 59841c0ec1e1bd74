// The predict panel of a job page: for 8x8 digit models a drawing grid, otherwise a JSON
// batch; the answer as class probabilities and, with MC dropout, their spread.

import { describeError, formatPercent, h, notice } from "./dom.js";
import { postJSON } from "./api.js";

const SIDE = 8;
const INK = 16; // the digits dataset's pixel range is 0..16
const DIGIT_SHAPES = ["64", "1,8,8", "8,8,1"];

/** Whether a job's model reads 8x8 digit images (flat, channels first or channels last). */
export function isDigitModel(spec) {
  const shape = (spec.model.input_shape || []).join(",");
  return spec.data.dataset === "digits" && DIGIT_SHAPES.includes(shape);
}

function hasDropout(spec) {
  return (spec.model.layers || []).some((layer) => String(layer.type).includes("dropout")
                                                   || (layer.dropconnect || 0) > 0);
}

/** The 64 pixels as one sample shaped like the model's input_shape. */
function asSample(pixels, shape) {
  const rows = Array.from({ length: SIDE }, (_, r) => pixels.slice(r * SIDE, (r + 1) * SIDE));
  if (shape === "64") return pixels.slice();
  if (shape === "1,8,8") return [rows];
  return rows.map((row) => row.map((value) => [value]));
}

function drawingGrid(onDrawn) {
  const pixels = new Array(SIDE * SIDE).fill(0);
  const cells = pixels.map((_, i) => h("div", { class: "cell", "data-index": i }));
  let mode = null; // "ink" or "erase" while the pointer is down
  const set = (i, value) => {
    pixels[i] = value;
    cells[i].style.backgroundColor = value ? `rgba(15, 23, 42, ${value / INK})` : "";
  };
  const paint = (index) => {
    if (mode === "erase") {
      set(index, 0);
      return;
    }
    const r = Math.floor(index / SIDE);
    const c = index % SIDE;
    const brush = [[r, c, INK], [r - 1, c, INK / 2], [r + 1, c, INK / 2], [r, c - 1, INK / 2],
                   [r, c + 1, INK / 2]];
    for (const [y, x, amount] of brush) {
      if (y >= 0 && y < SIDE && x >= 0 && x < SIDE) {
        set(y * SIDE + x, Math.max(pixels[y * SIDE + x], amount));
      }
    }
  };
  const grid = h("div", { class: "draw-grid", role: "img", "aria-label": "8 by 8 drawing grid",
    onpointerdown: (event) => {
      const index = Number(event.target.dataset.index);
      if (Number.isNaN(index)) return;
      event.preventDefault();
      grid.setPointerCapture(event.pointerId);
      mode = event.button === 2 || event.shiftKey ? "erase" : "ink";
      paint(index);
    },
    onpointermove: (event) => {
      if (!mode) return;
      const target = document.elementFromPoint(event.clientX, event.clientY);
      if (target && target.parentElement === grid) paint(Number(target.dataset.index));
    },
    onpointerup: () => {
      if (!mode) return;
      mode = null;
      onDrawn();
    },
    oncontextmenu: (event) => event.preventDefault(),
  }, cells);
  const clear = () => pixels.forEach((_, i) => set(i, 0));
  return { grid, pixels, clear };
}

/** One row of an answer: a bar per class, the most probable highlighted, ± std when known. */
function probabilityBars(probabilities, predicted, std) {
  return h("ol", { class: "probabilities", start: 0 }, probabilities.map((p, k) => {
    const fill = h("span", { class: "bar-fill" });
    fill.style.width = `${(100 * p).toFixed(2)}%`;
    const track = h("span", { class: "bar-track" }, fill);
    const spread = std ? std[k] : null;
    if (spread !== null && spread >= 0.0005) {  // a band under a pixel would only be its border
      const band = h("span", { class: "bar-spread" });
      band.style.left = `${(100 * Math.max(0, p - spread)).toFixed(2)}%`;
      band.style.width = `${(100 * (Math.min(1, p + spread) - Math.max(0, p - spread))).toFixed(2)}%`;
      track.append(band);
    }
    const text = spread !== null ? `${formatPercent(p)} ± ${formatPercent(spread)}`
                                 : formatPercent(p);
    return h("li", { class: k === predicted ? "predicted" : null, "data-class": k,
                     "data-probability": p },
      h("span", { class: "class-label", text: String(k) }), track,
      h("span", { class: "bar-value", text }));
  }));
}

function answerView(answer) {
  return answer.predictions.slice(0, 10).map((predicted, row) => h("div", { class: "answer" },
    h("p", { class: "prediction" }, "Prediction ",
      h("strong", { class: "predicted-class", text: String(predicted) }),
      answer.mc_samples
        ? h("span", { class: "muted",
                      text: ` · MC dropout, ${answer.mc_samples} samples · entropy `
                            + `${answer.entropy[row].toFixed(3)} nats · mutual information `
                            + `${answer.mutual_information[row].toFixed(3)}` })
        : null),
    probabilityBars(answer.probabilities[row], predicted, answer.std ? answer.std[row] : null)));
}

/**
 * The panel: {element, update(job)}. It predicts once the job has succeeded (a trained
 * model exists); before that it says so.
 */
export function predictPanel(jobId) {
  const element = h("div", { class: "predict", id: "predict" });
  let shown = null;

  function build(job) {
    const spec = job.spec;
    const digits = isDigitModel(spec);
    const shape = (spec.model.input_shape || []).join(",");
    const result = h("div", { class: "predict-result", "aria-live": "polite" });
    const samples = h("input", { type: "number", min: 0, max: 1000, step: 1,
                                 value: hasDropout(spec) ? 30 : 0, name: "mc-samples" });
    let grid = null;
    let batch = null;
    const predict = async () => {
      let inputs;
      if (digits) {
        inputs = [asSample(grid.pixels, shape)];
      } else {
        try {
          inputs = JSON.parse(batch.value);
        } catch (error) {
          result.replaceChildren(notice("error", "Inputs are not JSON", error.message));
          return;
        }
      }
      result.dataset.state = "pending";
      try {
        const answer = await postJSON(`/v1/jobs/${encodeURIComponent(jobId)}/predict`,
                                      { inputs, mc_samples: Number(samples.value) || 0 });
        result.replaceChildren(...answerView(answer));
        result.dataset.state = "answered";
      } catch (error) {
        result.replaceChildren(notice("error", "Prediction refused", describeError(error)));
        result.dataset.state = "error";
      }
    };
    const controls = h("div", { class: "predict-controls" },
      h("label", {}, "MC dropout samples ", samples),
      h("button", { type: "button", class: "primary", onclick: predict, text: "Predict" }));
    if (digits) {
      grid = drawingGrid(predict);
      controls.append(h("button", { type: "button", onclick: () => {
        grid.clear();
        result.replaceChildren();
      }, text: "Clear" }));
      return h("div", { class: "predict-layout" },
        h("div", {}, grid.grid,
          h("p", { class: "muted small", text: "Draw a digit (shift or right button erases)." }),
          controls),
        result);
    }
    batch = h("textarea", { rows: 4, spellcheck: "false", name: "inputs",
                            placeholder: `[[...]]: samples shaped [${shape}]` });
    return h("div", {}, h("label", { class: "muted small", text: "Inputs (JSON list of samples)" }),
      batch, controls, result);
  }

  function update(job) {
    const ready = job.status === "succeeded";
    if (ready === shown) return;
    shown = ready;
    element.replaceChildren(ready ? build(job)
      : notice("empty", "No trained model yet",
               `Predictions open once the job has succeeded (it is ${job.status}).`));
  }

  return { element, update };
}
