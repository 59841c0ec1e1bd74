"""Keras configs as job models and ONNX export through the API, on SQLite and PostgreSQL."""

import copy
import sys

import numpy as np
import onnx
import onnxruntime
import pytest

from service.engine.checkpoint import load_model
from service.engine.datasets import load_builtin
from tests.factories import spec
from tests.interop.configs import (
    keras3_dense,
    keras3_digits_cnn,
    keras3_input,
    keras3_layer,
    keras3_sequential,
    tf_keras2_seed_model,
)

TRAINING = {"iterations": 30, "batch_size": 32, "seed": 0, "eval_every": 10,
            "optimizer": {"type": "adam", "learning_rate": 0.01}}


def keras_job(keras, data):
    return {"name": "keras", "model": {"keras": keras}, "data": data,
            "training": copy.deepcopy(TRAINING)}


def onnx_probabilities(client, job_id, inputs):
    response = client.get(f"/v1/jobs/{job_id}/model", params={"format": "onnx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/onnx"
    model = onnx.load_from_string(response.content)
    onnx.checker.check_model(model, full_check=True)
    session = onnxruntime.InferenceSession(response.content,
                                           providers=["CPUExecutionProvider"])
    (input_info,) = session.get_inputs()
    assert input_info.name == "input" and input_info.shape[0] == "batch"
    return session.run(["probabilities"], {"input": inputs.astype(np.float32)})[0]


def test_the_seed_model_in_tf_keras2_format_trains_and_predicts(client, run_jobs):
    body = keras_job(tf_keras2_seed_model(),
                     {"dataset": "blobs", "n_features": 100, "n_classes": 10, "n_samples": 400})
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    job = response.json()
    model = job["spec"]["model"]
    assert model["keras"] == tf_keras2_seed_model()
    assert model["input_shape"] == [100] and model["dtype"] == "float32"
    assert [(layer["type"], layer.get("units"), layer.get("rate"))
            for layer in model["layers"]] == [("dense", 64, None), ("dropout", None, 0.5),
                                              ("dense", 64, None), ("dropout", None, 0.5),
                                              ("dense", 10, None)]
    assert model["layers"][0]["kernel_initializer"] == "glorot_uniform"
    assert run_jobs() == [job["id"]]
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    rows = np.random.default_rng(0).standard_normal((3, 100))
    predicted = client.post(f"/v1/jobs/{job['id']}/predict", json={"inputs": rows.tolist()})
    assert predicted.status_code == 200
    np.testing.assert_allclose(onnx_probabilities(client, job["id"], rows),
                               predicted.json()["probabilities"], atol=1e-5)


def test_a_channels_last_cnn_takes_and_predicts_channels_last_images(client, run_jobs):
    response = client.post("/v1/jobs", json=keras_job(keras3_digits_cnn(), {"dataset": "digits"}))
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    assert response.json()["spec"]["model"]["input_shape"] == [8, 8, 1]
    run_jobs()
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    images = load_builtin("digits", flat=False).x_test[:16]  # (16, 1, 8, 8)
    channels_last = images.transpose(0, 2, 3, 1)
    predicted = client.post(f"/v1/jobs/{job_id}/predict",
                            json={"inputs": channels_last.tolist()})
    assert predicted.status_code == 200, predicted.text
    network, _ = load_model(client.get(f"/v1/jobs/{job_id}/model").content)
    np.testing.assert_allclose(predicted.json()["probabilities"],
                               network.predict_proba(channels_last.astype(np.float32)),
                               atol=1e-6)
    wrong_layout = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": images.tolist()})
    assert wrong_layout.status_code == 422
    np.testing.assert_allclose(onnx_probabilities(client, job_id, channels_last),
                               predicted.json()["probabilities"], atol=1e-5)


def test_the_onnx_export_of_a_dropnet_cnn_with_stride_and_padding(client, run_jobs):
    body = spec(iterations=30)
    body["model"] = {"input_shape": [1, 8, 8], "layers": [
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": "same",
         "activation": "relu"},
        {"type": "spatial_dropout2d", "rate": 0.2},
        {"type": "conv2d", "filters": 5, "kernel_size": 2, "padding": 1, "activation": "tanh"},
        {"type": "avgpool2d", "pool_size": 2},
        {"type": "flatten"}, {"type": "dense", "units": 10, "activation": "softmax"}]}
    job_id = client.post("/v1/jobs", json=body).json()["id"]
    run_jobs()
    images = load_builtin("digits", flat=False).x_test[:10]
    predicted = client.post(f"/v1/jobs/{job_id}/predict", json={"inputs": images.tolist()})
    np.testing.assert_allclose(onnx_probabilities(client, job_id, images),
                               predicted.json()["probabilities"], atol=1e-5)


@pytest.mark.parametrize(("keras", "path", "words"), [
    (keras3_sequential(keras3_input(64), keras3_dense(10, "softmax",
                                                      kernel_regularizer={"class_name": "L2"})),
     "model.keras.config.layers[1].config.kernel_regularizer",
     ["Keras layer 1 (Dense)", "kernel_regularizer", "regularizers"]),
    (keras3_sequential(keras3_input(64), keras3_dense(10, "gelu")),
     "model.keras.config.layers[1].config.activation",
     ["Keras layer 1 (Dense)", "activation", "unknown activation"]),
    (keras3_sequential(keras3_input(64), keras3_layer("BatchNormalization"),
                       keras3_dense(10, "softmax")),
     "model.keras.config.layers[1].class_name",
     ["Keras layer 1 (BatchNormalization)", "not supported"]),
    ({**keras3_sequential(keras3_input(64)), "class_name": "Functional"},
     "model.keras.class_name", ["Sequential"]),
    (keras3_sequential(keras3_input(64), keras3_layer("Conv2D", filters=2, kernel_size=3)),
     "model.keras.config.layers[1].config", ["Keras layer 1 (Conv2D)", "image input"]),
])
def test_an_untranslatable_keras_model_is_a_422_naming_layer_class_and_field(
        client, keras, path, words):
    response = client.post("/v1/jobs", json=keras_job(keras, {"dataset": "digits"}))
    assert response.status_code == 422, response.text
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == path
    for word in words:
        assert word in detail["message"]


def test_a_keras_model_that_does_not_fit_the_data_is_a_422(client):
    keras = keras3_sequential(keras3_input(8, 8, 1), keras3_layer("Flatten"),
                              keras3_dense(3, "softmax"))
    response = client.post("/v1/jobs", json=keras_job(keras, {"dataset": "digits"}))
    assert response.status_code == 422
    paths = [d["path"] for d in response.json()["error"]["details"]]
    assert paths == ["model.layers[1]"]


def test_layers_given_beside_keras_must_be_the_translation(client):
    body = keras_job(keras3_digits_cnn(), {"dataset": "digits"})
    body["model"]["layers"] = [{"type": "flatten"}, {"type": "dense", "units": 10,
                                                     "activation": "softmax"}]
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    (detail,) = response.json()["error"]["details"]
    assert detail["path"] == "model.layers" and "omit layers" in detail["message"]
    stored = client.post("/v1/jobs", json=keras_job(keras3_digits_cnn(), {"dataset": "digits"}))
    resubmitted = client.post("/v1/jobs", json={**body, "model": stored.json()["spec"]["model"]})
    assert resubmitted.status_code == 201, resubmitted.text


def test_onnx_without_the_onnx_package_is_a_501_naming_the_extra(client, run_jobs, monkeypatch):
    job_id = client.post("/v1/jobs", json=spec(iterations=5)).json()["id"]
    run_jobs()
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    response = client.get(f"/v1/jobs/{job_id}/model", params={"format": "onnx"})
    assert response.status_code == 501
    assert response.json()["error"]["code"] == "not_implemented"
    assert "dropnet[onnx]" in response.json()["error"]["message"]
    assert client.get(f"/v1/jobs/{job_id}/model").status_code == 200


def test_an_unknown_model_format_is_a_422(client, run_jobs):
    job_id = client.post("/v1/jobs", json=spec(iterations=5)).json()["id"]
    run_jobs()
    response = client.get(f"/v1/jobs/{job_id}/model", params={"format": "h5"})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["path"] == "format"
