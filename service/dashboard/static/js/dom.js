// Building the DOM without markup strings: every text goes through textContent or a Text
// node, so a job named "<script>…" shows literally and runs nothing.

/**
 * h("a", {class: "x", href: "/", text: "label", onclick: f}, ...children): an element.
 * Props: class, text (textContent), on<event> (listener), anything else an attribute.
 * Children: elements or strings (appended as Text nodes); null and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = String(value);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  return element;
}

const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

export function formatInteger(value) {
  return integer.format(value);
}

/** 0.9734 -> "97.3%"; null -> "–". */
export function formatPercent(value) {
  return value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`;
}

/** A metric value with 4 significant digits; null -> "–". */
export function formatValue(value) {
  if (value === null || value === undefined) return "–";
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5)) return value.toExponential(2);
  return Number(value.toPrecision(4)).toString();
}

/** 3725 -> "1 h 02 min", 185 -> "3 min 05 s", 12.3 -> "12 s", 0.42 -> "0.4 s". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  const total = Math.max(0, Math.round(seconds));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (hours) return `${hours} h ${pad(minutes)} min`;
  if (minutes) return `${minutes} min ${pad(rest)} s`;
  return `${rest} s`;
}

/** An ISO timestamp as local date and time; null -> "–". */
export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status, text: status });
}

/**
 * A progress bar: {element, update(progress, status)} where progress is the API's
 * {iteration, total, iterations_per_second, eta_seconds}. The bar carries role=progressbar
 * with aria-valuenow = the iteration.
 */
export function progressBar() {
  const fill = h("div", { class: "progress-fill" });
  const bar = h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0 }, fill);
  const label = h("span", { class: "progress-label" });
  const element = h("div", { class: "progress-cell" }, bar, label);
  function update(progress, status) {
    const { iteration, total } = progress;
    const fraction = total > 0 ? Math.min(1, iteration / total) : 0;
    bar.setAttribute("aria-valuenow", iteration);
    bar.setAttribute("aria-valuemax", total);
    bar.dataset.status = status;
    fill.style.width = `${(100 * fraction).toFixed(2)}%`;
    const parts = [`${formatInteger(iteration)} / ${formatInteger(total)}`];
    if (status === "running") {
      if (progress.iterations_per_second) {
        parts.push(`${formatInteger(progress.iterations_per_second)} it/s`);
      }
      if (progress.eta_seconds !== null && progress.eta_seconds !== undefined) {
        parts.push(`ETA ${formatDuration(progress.eta_seconds)}`);
      }
    }
    label.textContent = parts.join(" · ");
  }
  return { element, update };
}

/** A message in place of content: kind "empty" (nothing yet) or "error". */
export function notice(kind, title, detail) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : null },
    h("strong", { text: title }), detail ? h("p", { text: detail }) : null);
}

/** The message for an error thrown by the API helpers or fetch itself. */
export function describeError(error) {
  const details = (error.details || []).map((d) => `${d.path}: ${d.message}`).join("; ");
  return details ? `${error.message} (${details})` : error.message || String(error);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", { text: title }), ...children);
}
