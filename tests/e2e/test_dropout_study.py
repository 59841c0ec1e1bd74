"""The question dropnet exists to answer, through a real `dropnet serve`: on a small digits
training set with noisy labels, does dropout shrink the generalisation gap? One sweep over
`dropout.rate` x `training.seed` answers it."""

from __future__ import annotations

import time
from typing import Any

RATES = [0.0, 0.2, 0.5, 0.7]
SEEDS = [1, 2]

NOISY_SMALL_DIGITS: dict[str, Any] = {
    "name": "noisy-small-digits",
    "model": {"input_shape": [64],
              "layers": [{"type": "dense", "units": 512, "activation": "relu"},
                         {"type": "dropout", "rate": 0.0},
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
    # 150 training rows of which 30 carry a wrong label; the 449 test digits stay clean.
    "data": {"dataset": "digits", "train_size": 150, "label_noise": 0.2},
    # Plain SGD at a modest rate for ~170 epochs: without dropout the wide layer learns the
    # flipped labels too (train accuracy near 1), which is the overfitting to stop.
    "training": {"iterations": 800, "batch_size": 32, "eval_every": 200,
                 "optimizer": {"type": "sgd", "learning_rate": 0.1}},
}


def wait_sweep(server: Any, sweep_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep = server.client.get(f"/v1/sweeps/{sweep_id}").json()
        if sweep["status"] not in ("queued", "running"):
            return sweep
        time.sleep(0.2)
    raise AssertionError(f"sweep {sweep_id} still {sweep['status']}: {sweep['counts']}\n"
                         f"{server.log.read_text()[-3000:]}")


def test_dropout_shrinks_the_gap_on_noisy_small_digits(serve) -> None:
    server = serve(env={"DROPNET_WORKERS": "2", "DROPNET_POLL_SECONDS": "0.2",
                        "DROPNET_BLAS_THREADS": "1"})
    created = server.client.post("/v1/sweeps", json={
        "name": "does-dropout-stop-overfitting", "base": NOISY_SMALL_DIGITS,
        "parameters": {"dropout.rate": RATES, "training.seed": SEEDS}})
    assert created.status_code == 201, created.text

    sweep = wait_sweep(server, created.json()["id"], timeout=240)

    assert sweep["counts"] == {"succeeded": len(RATES) * len(SEEDS)}, sweep["counts"]
    by_rate = {entry["value"]: entry for entry in sweep["summary"]
               if entry["parameter"] == "dropout.rate"}
    assert sorted(by_rate) == RATES
    assert all(entry["accuracy_gap"]["n"] == len(SEEDS) for entry in by_rate.values())
    gap = {rate: by_rate[rate]["accuracy_gap"]["mean"] for rate in RATES}
    assert gap[0.5] < gap[0.0], gap
    job = server.client.get(f"/v1/jobs/{sweep['runs'][0]['job_id']}").json()
    assert job["spec"]["data"] == {"dataset": "digits", "test_fraction": 0.25, "split_seed": 0,
                                   "train_size": 150, "label_noise": 0.2}
