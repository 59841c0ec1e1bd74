"""The client commands as a person runs them: `dropnet submit|jobs|logs|predict` in a
pseudo-terminal against a real `dropnet serve`, checked on the rendered screen and the exit
status."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from service.client import Client, Job
from service.engine.datasets import load_builtin
from tests.client.conftest import KEY
from tests.client.terminal import Terminal
from tests.e2e.conftest import DROPNET, Server
from tests.factories import spec


@pytest.fixture
def env(server: Server) -> dict[str, str]:
    """The connection by environment, as a user would set it once."""
    return {"DROPNET_URL": server.url, "DROPNET_API_KEY": KEY}


def dropnet(*args: str, env: dict[str, str]) -> Terminal:
    return Terminal([DROPNET, *args], env)


def spec_file(tmp_path: Path, **training: object) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec(**training)))
    return path


@pytest.fixture(scope="module")
def trained(server: Server) -> Job:
    with Client(server.url, api_key=KEY) as client:
        job = client.submit(spec(iterations=300, eval_every=50))
        return client.wait(job.id, timeout=120, poll_seconds=0.1)


def test_submit_prints_the_job_id(env: dict[str, str], tmp_path: Path,
                                  client: Client) -> None:
    terminal = dropnet("submit", str(spec_file(tmp_path, iterations=20)), env=env)
    assert terminal.finish() == 0
    job_id = terminal.text()
    assert re.fullmatch(r"[0-9a-f]{32}", job_id), job_id
    assert client.get(job_id).name == "digits-mlp"


def test_submit_follow_draws_progress_and_metrics_until_success(
        env: dict[str, str], tmp_path: Path, client: Client) -> None:
    terminal = dropnet("submit", str(spec_file(tmp_path, iterations=3000, eval_every=100)),
                       "--follow", env=env)
    terminal.wait_for(r"digits-mlp running .* \d+/3000")  # the bar, while it trains
    assert terminal.finish() == 0
    screen = terminal.text()
    job_id = screen.splitlines()[0]
    job = client.get(job_id)
    assert job.status == "succeeded"
    assert re.search(r"digits-mlp succeeded .*3000/3000", screen), screen
    accuracy = f"{job.metrics['test_accuracy']:.4f}"
    assert re.search(rf"accuracy +train [0-9.]+ +test {accuracy}", screen), screen
    assert re.search(r"loss +batch [0-9.e-]+ +train [0-9.e-]+ +test [0-9.e-]+", screen)
    assert re.search(r"dropout +0\.1 +learning rate 0\.1", screen), screen
    assert re.search(rf"job {job_id} succeeded after \d+:\d\d  test acc {accuracy}", screen)


def test_a_cancelled_follow_exits_non_zero(env: dict[str, str], tmp_path: Path,
                                           client: Client) -> None:
    terminal = dropnet("submit", str(spec_file(tmp_path, iterations=200_000,
                                               eval_every=10_000)), "--follow", env=env)
    job_id = terminal.wait_for(r"(?m)^[0-9a-f]{32}$").group(0)
    terminal.wait_for(r"digits-mlp running")
    client.cancel(job_id)
    assert terminal.finish() == 3
    assert re.search(rf"job {job_id} cancelled after", terminal.text()), terminal.text()


def test_a_refused_spec_names_the_field_and_exits_2(env: dict[str, str],
                                                    tmp_path: Path) -> None:
    bad = spec()
    bad["model"]["layers"][1]["rate"] = 1.5
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    terminal = dropnet("submit", str(path), "--follow", env=env)
    assert terminal.finish() == 2
    screen = terminal.text()
    assert "error: invalid_spec" in screen and "(HTTP 422)" in screen
    assert "model.layers[1].rate: Input should be less than 1 (received 1.5)" in screen


def test_jobs_lists_a_table_filtered_by_status(env: dict[str, str], trained: Job) -> None:
    terminal = dropnet("jobs", "--status", "succeeded", env=env)
    assert terminal.finish() == 0
    header, *rows = terminal.text().splitlines()
    assert header.split() == ["id", "name", "status", "progress", "test", "acc", "created"]
    row = next(line for line in rows if line.startswith(trained.id))
    accuracy = f"{trained.metrics['test_accuracy']:.4f}"
    assert re.search(rf"digits-mlp +succeeded +300/300 100% +{accuracy}", row), row
    assert all(" succeeded " in line for line in rows)
    terminal = dropnet("jobs", "--status", "failed", env=env)
    assert terminal.finish() == 0 and terminal.text() == "no jobs failed"


def test_logs_shows_the_metrics_and_one_history(env: dict[str, str], trained: Job) -> None:
    terminal = dropnet("logs", trained.id, env=env)
    assert terminal.finish() == 0
    screen = terminal.text()
    assert f"digits-mlp {trained.id} succeeded  iteration 300/300" in screen
    assert re.search(r"batch_loss +300 +1 +300", screen), screen
    accuracy = f"{trained.metrics['test_accuracy']:.4f}"
    assert re.search(rf"test_accuracy +6 +50 +300 +{accuracy}", screen), screen
    terminal = dropnet("logs", trained.id, "--key", "test_accuracy", "--max-points", "3",
                       env=env)
    assert terminal.finish() == 0
    lines = terminal.text().splitlines()
    assert lines[1].split() == ["step", "value"]
    assert lines[2].split()[0] == "50" and lines[-1].split() == ["300", accuracy]


def test_predict_a_npy_and_a_csv_file(env: dict[str, str], trained: Job, tmp_path: Path,
                                      client: Client) -> None:
    rows = load_builtin("digits").x_test[:3]
    expected = client.predict(trained.id, rows)
    np.save(tmp_path / "rows.npy", rows)
    np.savetxt(tmp_path / "rows.csv", rows, delimiter=",", comments="",
               header=",".join(f"pixel{i}" for i in range(64)))
    for name in ("rows.npy", "rows.csv"):
        terminal = dropnet("predict", trained.id, str(tmp_path / name), env=env)
        assert terminal.finish() == 0
        header, *lines = terminal.text().splitlines()
        assert header.split() == ["row", "class", "probability", "next", "likeliest"]
        assert [line.split()[:3] for line in lines] == [
            [str(row), str(label), f"{expected.probabilities[row][label]:.3f}"]
            for row, label in enumerate(expected.predictions)]
    terminal = dropnet("predict", trained.id, str(tmp_path / "rows.npy"), "--mc-samples", "20",
                       env=env)
    assert terminal.finish() == 0
    header = terminal.text().splitlines()[0]
    assert header.split()[:6] == ["row", "class", "probability", "entropy", "mutual", "info"]
    assert re.search(r"\n0 +\d +[01]\.\d{3} ± [01]\.\d{3} +\d\.\d{3} +\d\.\d{3}",
                     terminal.text())


def test_url_and_key_options_override_the_environment(server: Server, trained: Job) -> None:
    nowhere = {"DROPNET_URL": "http://127.0.0.1:1", "DROPNET_API_KEY": "wrong"}
    terminal = dropnet("logs", trained.id, env=nowhere)
    assert terminal.finish() == 2 and "error: unreachable" in terminal.text()
    terminal = dropnet("logs", trained.id, "--url", server.url, env=nowhere)
    assert terminal.finish() == 2 and "(HTTP 401)" in terminal.text()
    terminal = dropnet("logs", trained.id, "--url", server.url, "--api-key", KEY, env=nowhere)
    assert terminal.finish() == 0 and trained.id in terminal.text()
