"""POST /v1/datasets with a zip of image folders, on SQLite and PostgreSQL: a CNN trains on the
upload, predict takes the same (N, C, H, W) images and names the classes; bad forms are 422."""

from __future__ import annotations

import numpy as np
import pytest

from tests.datasets.image_folders import SHAPES, shape_image, shape_members, shapes_zip, zip_of
from tests.factories import spec

CNN = [{"type": "conv2d", "filters": 8, "kernel_size": 5, "activation": "relu"},
       {"type": "maxpool2d", "pool_size": 4},
       {"type": "flatten"},
       {"type": "dropout", "rate": 0.2},
       {"type": "dense", "units": 3, "activation": "softmax"}]


def upload(client, data, **form):
    return client.post("/v1/datasets", files={"file": ("shapes.zip", data)}, data=form)


def cnn_job(dataset_id: str, input_shape: list[int], layers: list[dict]) -> dict:
    job = spec(iterations=200, batch_size=32, eval_every=200,
               optimizer={"type": "adam", "learning_rate": 0.005})
    del job["training"]["dropout_schedule"]
    job["model"] = {"input_shape": input_shape, "layers": layers}
    job["data"] = {"dataset_id": dataset_id}
    return job


def fresh_images(n_per_class: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """New shapes (not in the upload) as the upload stores them: (N, 1, 28, 28) in [0, 1]."""
    rng = np.random.default_rng(seed)
    names = [shape for shape in SHAPES for _ in range(n_per_class)]
    images = [np.asarray(shape_image(name, rng), dtype=np.float32) / 255 for name in names]
    return np.stack(images)[:, np.newaxis], names


def test_a_cnn_trains_on_image_folders_and_predict_names_the_classes(client, run_jobs):
    created = upload(client, shapes_zip(100, 30), color_mode="grayscale", name="shapes")
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert (dataset["format"], dataset["n_train"], dataset["n_test"], dataset["input_shape"],
            dataset["n_classes"], dataset["class_names"]) == (
        "images", 300, 90, [1, 28, 28], 3, ["circle", "square", "triangle"])
    assert client.get(f"/v1/datasets/{dataset['id']}").json()["class_names"] == list(SHAPES)

    job = client.post("/v1/jobs", json=cnn_job(dataset["id"], [1, 28, 28], CNN))
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]
    run_jobs()
    finished = client.get(f"/v1/jobs/{job_id}").json()
    assert finished["status"] == "succeeded", finished["error"]
    assert finished["metrics"]["test_accuracy"] >= 0.9, finished["metrics"]

    inputs, truth = fresh_images(10, seed=99)
    for attempt in ("loaded by the route", "from the cache (FastPredict)"):
        answer = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": inputs.tolist()})
        assert answer.status_code == 200, (attempt, answer.text)
        body = answer.json()
        assert body["class_names"] == list(SHAPES), attempt
        predicted = [body["class_names"][index] for index in body["predictions"]]
        accuracy = np.mean([p == t for p, t in zip(predicted, truth, strict=True)])
        assert accuracy >= 0.85, (attempt, predicted)
    mc = client.post(f"/v1/jobs/{job_id}/predict",
                     json={"inputs": inputs[:2].tolist(), "mc_samples": 4}).json()
    assert mc["class_names"] == list(SHAPES) and len(mc["entropy"]) == 2


def test_a_channels_last_model_reads_the_images_as_nhwc(client, run_jobs):
    dataset = upload(client, shapes_zip(10, 2), color_mode="grayscale").json()
    layers = [{"type": "permute", "dims": [3, 1, 2]}, *CNN]  # (H, W, C) -> (C, H, W)
    job = cnn_job(dataset["id"], [28, 28, 1], layers)
    job["training"]["iterations"] = 5
    job_id = client.post("/v1/jobs", json=job).json()["id"]
    run_jobs()
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    inputs, _ = fresh_images(1, seed=5)
    answer = client.post(f"/v1/jobs/{job_id}/predict",
                         json={"inputs": inputs.transpose(0, 2, 3, 1).tolist()})
    assert answer.status_code == 200, answer.text
    assert answer.json()["class_names"] == list(SHAPES)


def test_a_model_trained_on_an_npz_has_no_class_names(client, run_jobs):
    job_id = client.post("/v1/jobs", json=spec(iterations=5)).json()["id"]
    run_jobs()
    answer = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": [[0.0] * 64]}).json()
    assert "class_names" not in answer and len(answer["probabilities"][0]) == 10


@pytest.mark.parametrize(("form", "data", "path"), [
    ({"image_height": "28"}, "zip", "image_width"),
    ({"color_mode": "cmyk"}, "zip", "color_mode"),
    ({"image_height": "0", "image_width": "28"}, "zip", "image_height"),
    ({"color_mode": "rgb"}, "csv", "color_mode"),
    ({}, "bad image", "file.train/square/000.png"),
])
def test_bad_image_uploads_are_422_naming_the_field(client, form, data, path):
    payload = {"zip": shapes_zip(2, 1),
               "csv": b"a,label\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(20)),
               "bad image": _with_corrupt_square()}[data]
    response = upload(client, payload, **form)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] and path in [detail["path"] for detail in error["details"]], error


def _with_corrupt_square() -> bytes:
    members = shape_members(2)
    members["train/square/000.png"] = b"not a PNG"
    return zip_of(members)
