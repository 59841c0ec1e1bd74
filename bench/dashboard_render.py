"""How fast the dashboard draws a history of 1,000,000 points, timed by the browser itself.

    python bench/dashboard_render.py [--runs 5] [--points 1000000]

Two figures, each the median of `--runs`, measured with performance marks in Debian's
Chromium (headless, driven by Playwright) against a real `dropnet serve`:

- page: a finished job with POINTS batch_loss points (inserted with insert_points, as
  bench/service_speed.py's history benchmark does); from navigation start to the job page's
  `dropnet:history-drawn` mark: HTML, modules, the API calls (the history downsampled by
  `max_points` in the database) and the charts drawn.
- chart: the job page's MetricChart given POINTS raw points in the browser (no downsampling):
  from `new MetricChart` to the end of its first draw with every point, performance.now().

Target: both under 1 s. Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright
from service_speed import (
    WORKER,
    Measurement,
    bench_settings,
    fill_history,
    log,
    new_database,
    percentile,
    print_table,
    serving,
)

from service.store import jobs as job_rows
from service.store.session import Database

CHROMIUM = "/usr/bin/chromium"
TARGET_MS = 1000.0

CHART_ALONE = """
async (count) => {
  const { MetricChart } = await import("/dashboard/static/js/charts.js");
  const points = new Array(count);
  for (let i = 0; i < count; i++) {
    points[i] = { step: i + 1, value: 2.3 * Math.exp(-i / (count / 5)) + 0.1 * Math.random() };
  }
  const element = document.createElement("div");
  element.className = "chart";
  document.getElementById("page").append(element);
  const start = performance.now();
  const chart = new MetricChart(element, {
    series: [{ key: "batch_loss", label: "batch loss", color: "#9fb0c8", width: 1 }],
    axes: [{ label: "loss" }],
  });
  chart.set("batch_loss", points);
  await chart.whenDrawn();
  const elapsed = performance.now() - start;
  const drawn = Number(element.getAttribute("data-points-batch-loss"));
  element.remove();
  return { elapsed, drawn };
}
"""

PAGE_TIMING = """
() => {
  const drawn = performance.getEntriesByName("dropnet:history-drawn")[0];
  return { elapsed: drawn ? drawn.startTime : null,
           points: Number(document.getElementById("loss-chart")
                          .getAttribute("data-points-batch-loss")) };
}
"""


def finish_as_trained(db: Database, job_id: str, points: int) -> None:
    """Claim and finish the job as a worker would (through the store): the page then shows a
    finished job, as it would after a real 1,000,000-iteration run, with no live stream."""
    with db.write() as session:
        claim = job_rows.claim(session, WORKER, lease_seconds=60, job_id=job_id)
        assert claim is not None
        assert job_rows.finish(session, claim, status=job_rows.SUCCEEDED, iteration=points)


def run(points: int, runs: int, workdir: Path) -> list[Measurement]:
    url, db = new_database(workdir)
    job_id, fill_seconds = fill_history(db, bench_settings(url), points)
    finish_as_trained(db, job_id, points)
    db.dispose()
    log(f"{points:,} points inserted in {fill_seconds:.1f} s")
    page_ms: list[float] = []
    chart_ms: list[float] = []
    drawn: dict[str, Any] = {}
    with serving(url, workdir) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        for attempt in range(runs + 1):  # the first is a warm-up (caches, JIT)
            page.goto(f"{server.url}/jobs/{job_id}")
            page.wait_for_selector("#page[data-ready=true]", timeout=120_000)
            timing = page.evaluate(PAGE_TIMING)
            if attempt:
                page_ms.append(timing["elapsed"])
            drawn["page"] = timing["points"]
        for attempt in range(runs + 1):
            timing = page.evaluate(CHART_ALONE, points)
            assert timing["drawn"] == points, timing
            if attempt:
                chart_ms.append(timing["elapsed"])
        version = browser.version
        browser.close()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    log(f"Chromium {version}; the page drew {drawn['page']:,} downsampled points; "
        f"load average {load} on {os.cpu_count()} cores")
    return [
        Measurement(f"job page, {points:,}-point history: navigation -> curves drawn",
                    statistics.median(page_ms), "ms", TARGET_MS, "lower",
                    f"{runs} loads, p90 {percentile(page_ms, 90):.0f} ms; "
                    f"{drawn['page']:,} points drawn (max_points)"),
        Measurement(f"MetricChart, {points:,} raw points: new -> first draw",
                    statistics.median(chart_ms), "ms", TARGET_MS, "lower",
                    f"{runs} renders, p90 {percentile(chart_ms, 90):.0f} ms; "
                    f"{points:,} points drawn"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        results = run(args.points, args.runs, Path(directory))
    print_table(results)
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
