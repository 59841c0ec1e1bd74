// The job list at /: every job with its status, progress, speed, ETA and final test accuracy,
// refreshed every 2 s; the sweeps below it.

import { describeError, formatPercent, formatTime, h, notice, progressBar, section,
         statusBadge } from "./dom.js";
import { getJSON } from "./api.js";

const REFRESH_MS = 2000;
const PAGE_SIZE = 100;

const page = document.getElementById("page");
const jobsBody = h("tbody");
const jobsState = h("div");
const sweepsBody = h("tbody");
const sweepsState = h("div");
const rows = new Map(); // job id -> {row, progress, status, accuracy}

function jobRow(job) {
  const progress = progressBar();
  const status = h("td");
  const accuracy = h("td", { class: "num" });
  const row = h("tr", { "data-job-id": job.id },
    h("td", {}, h("a", { href: `/jobs/${encodeURIComponent(job.id)}`, class: "job-name",
                         text: job.name || job.id })),
    status,
    h("td", { class: "progress-column" }, progress.element),
    accuracy,
    h("td", { class: "muted", text: formatTime(job.created_at) }));
  return { row, progress, status, accuracy };
}

function renderJobs(jobs) {
  jobsState.replaceChildren();
  if (jobs.length === 0) {
    jobsState.append(notice("empty", "No jobs yet",
      "POST a job spec to /v1/jobs (see the README's walkthrough); it shows here at once."));
  }
  const order = [];
  for (const job of jobs) {
    let entry = rows.get(job.id);
    if (!entry) {
      entry = jobRow(job);
      rows.set(job.id, entry);
    }
    entry.status.replaceChildren(statusBadge(job.status));
    entry.progress.update(job.progress, job.status);
    const testAccuracy = job.metrics.test_accuracy;
    entry.accuracy.textContent = formatPercent(testAccuracy);
    entry.accuracy.title = job.status === "succeeded" ? "final test accuracy"
                                                      : "latest test accuracy";
    order.push(entry.row);
  }
  for (const [id, entry] of rows) {
    if (!jobs.some((job) => job.id === id)) {
      entry.row.remove();
      rows.delete(id);
    }
  }
  jobsBody.replaceChildren(...order);
}

function renderSweeps(sweeps) {
  sweepsState.replaceChildren();
  if (sweeps.length === 0) {
    sweepsState.append(notice("empty", "No sweeps",
      "POST /v1/sweeps trains a grid of runs from one spec; each sweep gets a page here."));
  }
  sweepsBody.replaceChildren(...sweeps.map((sweep) => {
    const counts = Object.entries(sweep.counts).map(([status, n]) => `${n} ${status}`);
    return h("tr", { "data-sweep-id": sweep.id },
      h("td", {}, h("a", { href: `/sweeps/${encodeURIComponent(sweep.id)}`,
                           text: sweep.name || sweep.id })),
      h("td", {}, statusBadge(sweep.status)),
      h("td", { text: Object.keys(sweep.spec.parameters || {}).join(", ") }),
      h("td", { class: "muted", text: counts.join(", ") }),
      h("td", { class: "muted", text: formatTime(sweep.created_at) }));
  }));
}

async function refresh() {
  try {
    const [jobs, sweeps] = await Promise.all([
      getJSON(`/v1/jobs?limit=${PAGE_SIZE}`), getJSON(`/v1/sweeps?limit=${PAGE_SIZE}`)]);
    renderJobs(jobs.data);
    renderSweeps(sweeps.data);
    page.dataset.refreshed = String(Number(page.dataset.refreshed || 0) + 1);
  } catch (error) {
    jobsState.replaceChildren(notice("error", "Could not load the jobs", describeError(error)));
  }
  setTimeout(refresh, REFRESH_MS);
}

page.append(
  h("div", { class: "page-title" }, h("h1", { text: "Jobs" }),
    h("span", { class: "muted", text: `newest first, refreshed every ${REFRESH_MS / 1000} s` })),
  section("Training jobs",
    h("table", { class: "table", id: "jobs" },
      h("thead", {}, h("tr", {},
        h("th", { text: "Name" }), h("th", { text: "Status" }), h("th", { text: "Progress" }),
        h("th", { class: "num", text: "Test accuracy" }), h("th", { text: "Created" }))),
      jobsBody),
    jobsState),
  section("Sweeps",
    h("table", { class: "table", id: "sweeps" },
      h("thead", {}, h("tr", {},
        h("th", { text: "Name" }), h("th", { text: "Status" }), h("th", { text: "Parameters" }),
        h("th", { text: "Runs" }), h("th", { text: "Created" }))),
      sweepsBody),
    sweepsState));
refresh();
