"""The service as users run it: `dropnet serve`, real HTTP, real worker processes."""

import numpy as np

from service.engine.datasets import load_builtin

DIGITS_JOB = {
    "name": "digits-mlp",
    "model": {"input_shape": [64],
              "layers": [{"type": "dense", "units": 256, "activation": "relu"},
                         {"type": "dropout", "rate": 0.5},
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
    "data": {"dataset": "digits", "test_fraction": 0.25},
    "training": {"iterations": 1500, "batch_size": 64, "seed": 0, "eval_every": 100,
                 "sampling": "epoch", "loss": "cross_entropy",
                 "optimizer": {"type": "sgd", "learning_rate": 0.1, "momentum": 0.9},
                 "dropout_schedule": {"type": "step", "every": 500, "delta": -0.1, "min": 0.1}},
}


def test_submit_train_watch_predict_over_http(serve):
    server = serve(env={"DROPNET_WORKERS": "2"})
    ready = server.api.health()
    assert ready.checks["workers"]["workers_alive"] == 2
    assert ready.checks["migrations"]["ok"] is True

    submitted = server.api.submit(DIGITS_JOB)
    job = server.api.wait(submitted.id, timeout=300)
    assert job.status == "succeeded", job.error
    assert job.worker is not None and job.worker.pid in ready.checks["workers"]["pids"]

    # The client follows the history's cursors, 400 points a page.
    points = server.api.history(job.id, "batch_loss", page_size=400).points
    assert [p.step for p in points] == list(range(1, 1501))  # no gaps, no duplicates

    digits = load_builtin("digits")  # the same split the job trained on: held-out rows
    predictions = np.array(server.api.predict(job.id, digits.x_test).predictions)
    accuracy = float((predictions == digits.y_test).mean())
    assert accuracy >= 0.95, accuracy
    assert job.metrics["test_accuracy"] == accuracy

    exposition = server.api.prometheus_metrics()  # summed over the worker processes
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in exposition.splitlines() if line and not line.startswith("#")}
    assert values['dropnet_jobs{status="succeeded"}'] == 1.0
    assert values["dropnet_queue_depth"] == 0.0
    assert values["dropnet_training_iterations_total"] == 1500.0
    assert values["dropnet_metric_rows_written_total"] >= 3 * 1500
    assert any(key.startswith("dropnet_http_request_duration_seconds_count{")
               and 'route="/v1/jobs"' in key for key in values)

    assert server.api.download_model(job.id)[:2] == b"PK"
    assert server.stop() == 0
