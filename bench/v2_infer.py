"""Open Inference Protocol infer against /v1 predict: one row, the same model, the same run.

    python bench/v2_infer.py [--runs N] [--seconds S]

One digits MLP (64-256-10, float32) is trained with JobRunner before a real `dropnet serve`
starts; both endpoints are warmed up (the model is cached by the first request), then load
tests alternate between `POST /v1/jobs/{id}/predict` ({"inputs": [[...64 values]]}) and
`POST /v2/models/{id}/infer` (one FP32 tensor of shape [1, 64], JSON data), N runs of S seconds
each, from a separate process (wrk when on PATH, else bench/service_speed.py's asyncio
client), 8 connections. Prints requests/s, p50 and p99 per endpoint (medians over the runs)
and V2's requests/s as a share of /v1's. Every answer must be 2xx; the two answers are
checked to give the same class before the load starts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from service_speed import (
    DIGIT_ZERO,
    LoadResult,
    bench_settings,
    load_test,
    log,
    mlp_spec,
    new_database,
    serving,
    train_jobs,
)


def summary(name: str, results: list[LoadResult]) -> str:
    return (f"{name}: {statistics.median(r.rps for r in results):,.0f} req/s, p50 "
            f"{statistics.median(r.p50_ms for r in results):.2f} ms, p99 "
            f"{statistics.median(r.p99_ms for r in results):.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="alternating pairs (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="duration of each load test (default 10)")
    args = parser.parse_args(argv)
    row = [value / 16 for value in DIGIT_ZERO]
    v1_body = json.dumps({"inputs": [row]}).encode()
    v2_body = json.dumps({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                                      "data": row}]}).encode()
    with tempfile.TemporaryDirectory(prefix="dropnet-bench-v2-") as directory:
        workdir = Path(directory)
        url, db = new_database(workdir)
        (job_id,) = train_jobs(db, bench_settings(url), [mlp_spec([256], iterations=300)])
        db.dispose()
        v1_path, v2_path = f"/v1/jobs/{job_id}/predict", f"/v2/models/{job_id}/infer"
        v1, v2 = [], []
        with serving(url, workdir) as server:
            headers = {"Content-Type": "application/json"}
            predicted = server.client.post(v1_path, content=v1_body, headers=headers)
            inferred = server.client.post(v2_path, content=v2_body, headers=headers)
            predicted.raise_for_status()
            inferred.raise_for_status()
            classes = {output["name"]: output["data"] for output in inferred.json()["outputs"]}
            if classes["predictions"] != predicted.json()["predictions"]:
                raise RuntimeError(f"V2 and /v1 disagree: {inferred.text} {predicted.text}")
            for path, body in ((v1_path, v1_body), (v2_path, v2_body)):  # warm-up
                load_test(server.url + path, method="POST", body=body, seconds=2,
                          workdir=workdir)
            for index in range(args.runs):
                # Alternate which goes first, so that drift in the machine's load favours
                # neither.
                order = [("v1", v1_path, v1_body), ("v2", v2_path, v2_body)]
                for name, path, body in order if index % 2 == 0 else order[::-1]:
                    result = load_test(server.url + path, method="POST", body=body,
                                       seconds=args.seconds, workdir=workdir)
                    (v1 if name == "v1" else v2).append(result)
                log(f"run {index + 1}/{args.runs}: /v1 predict {v1[-1].rps:,.0f} req/s, "
                    f"V2 infer {v2[-1].rps:,.0f} req/s")
    failures = sum(r.non_2xx + r.errors for r in v1 + v2)
    if failures:
        raise RuntimeError(f"{failures} failed requests during the load test")
    tool = "wrk -t1 -c8" if shutil.which("wrk") else "asyncio client, 8 connections"
    ratios = [b.rps / a.rps * 100 for a, b in zip(v1, v2, strict=True)]
    print(f"\none row, {args.runs} alternating pairs of {args.seconds:g} s, {tool}")
    print(summary("/v1 predict", v1))
    print(summary("V2 infer   ", v2))
    print(f"V2 infer req/s / v1 predict req/s: {statistics.median(ratios):.1f} % "
          f"(per pair: {', '.join(f'{r:.1f}' for r in ratios)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
