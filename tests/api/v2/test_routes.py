"""/v2 in-process, on SQLite and PostgreSQL: the protocol's objects, the tensor format (flat,
nested, binary), requested outputs, MC dropout, versions, and the {"error": "..."} shape."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.engine.datasets import load_builtin
from tests.factories import spec

ROWS = load_builtin("digits").x_test[:5]


@pytest.fixture
def trained(client: TestClient, run_jobs) -> str:
    job_id = client.post("/v1/jobs", json=spec(iterations=100)).json()["id"]
    run_jobs()
    return job_id


def tensor(rows: np.ndarray, *, datatype: str = "FP32", nested: bool = False) -> dict[str, Any]:
    return {"name": "input", "shape": list(rows.shape), "datatype": datatype,
            "data": rows.tolist() if nested else rows.ravel().tolist()}


def outputs(body: dict[str, Any]) -> dict[str, np.ndarray]:
    """name -> array of the response's (JSON) outputs, shaped and checked against datatype."""
    arrays = {}
    for output in body["outputs"]:
        dtype = {"FP32": np.float32, "INT64": np.int64}[output["datatype"]]
        arrays[output["name"]] = np.array(output["data"], dtype=dtype).reshape(output["shape"])
    return arrays


def assert_protocol_error(response: Any, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), body
    for word in words:
        assert word in body["error"], body["error"]
    return body["error"]


def test_server_metadata_and_health(client: TestClient) -> None:
    assert client.get("/v2").json() == {"name": "dropnet", "version": "0.1.0",
                                        "extensions": ["binary_tensor_data"]}
    assert client.get("/v2/health/live").json() == {"live": True}
    ready = client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})


def test_model_metadata_names_shapes_and_datatypes(client: TestClient, trained: str) -> None:
    for path in (f"/v2/models/{trained}", f"/v2/models/{trained}/versions/1"):
        metadata = client.get(path).json()
        assert metadata["name"] == trained and metadata["versions"] == ["1"]
        assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}]
        assert {o["name"]: (o["datatype"], o["shape"]) for o in metadata["outputs"]} == {
            "probabilities": ("FP32", [-1, 10]), "predictions": ("INT64", [-1]),
            "entropy": ("FP32", [-1]), "mutual_information": ("FP32", [-1]),
            "std": ("FP32", [-1, 10])}


def test_a_model_is_ready_once_its_job_has_trained(client: TestClient, run_jobs) -> None:
    job_id = client.post("/v1/jobs", json=spec(iterations=20)).json()["id"]
    assert_protocol_error(client.get(f"/v2/models/{job_id}/ready"), 409, "no trained model")
    assert_protocol_error(client.get(f"/v2/models/{job_id}"), 409, "no trained model")
    run_jobs()
    for path in (f"/v2/models/{job_id}/ready", f"/v2/models/{job_id}/versions/1/ready"):
        assert client.get(path).json() == {"name": job_id, "ready": True}


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer_answers_what_v1_predict_answers(client: TestClient, trained: str, nested: bool,
                                               datatype: str) -> None:
    response = client.post(f"/v2/models/{trained}/infer", json={
        "id": "req-1", "inputs": [tensor(ROWS, datatype=datatype, nested=nested)]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (trained, "1", "req-1")
    assert [o["name"] for o in body["outputs"]] == ["probabilities", "predictions"]
    arrays = outputs(body)
    v1 = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": ROWS.tolist()}).json()
    assert arrays["predictions"].tolist() == v1["predictions"]
    np.testing.assert_allclose(arrays["probabilities"], v1["probabilities"], rtol=1e-6)
    assert arrays["probabilities"].shape == (5, 10)


def test_requested_outputs_are_answered_in_their_order(client: TestClient, trained: str) -> None:
    body = client.post(f"/v2/models/{trained}/versions/1/infer", json={
        "inputs": [tensor(ROWS)], "outputs": [{"name": "predictions"}]}).json()
    assert [o["name"] for o in body["outputs"]] == ["predictions"]
    assert body["outputs"][0]["shape"] == [5]


def test_mc_dropout_adds_the_uncertainty_outputs(client: TestClient, trained: str) -> None:
    request = {"inputs": [tensor(ROWS)], "parameters": {"mc_samples": 20, "seed": 3}}
    body = client.post(f"/v2/models/{trained}/infer", json=request).json()
    assert body["parameters"] == {"mc_samples": 20}
    arrays = outputs(body)
    assert list(arrays) == ["probabilities", "predictions", "entropy", "mutual_information",
                            "std"]
    v1 = client.post(f"/v1/jobs/{trained}/predict", json={
        "inputs": ROWS.tolist(), "mc_samples": 20, "seed": 3}).json()
    for name in ("probabilities", "entropy", "mutual_information", "std"):
        np.testing.assert_allclose(arrays[name], v1[name], rtol=1e-5, atol=1e-7)
    assert arrays["predictions"].tolist() == v1["predictions"]
    assert arrays["std"].shape == (5, 10) and arrays["entropy"].shape == (5,)
    # Without mc_samples the uncertainty outputs do not exist.
    assert_protocol_error(client.post(f"/v2/models/{trained}/infer", json={
        "inputs": [tensor(ROWS)], "outputs": [{"name": "entropy"}]}), 400,
        "outputs[0].name", "mc_samples")


def test_binary_tensors_in_and_out(client: TestClient, trained: str) -> None:
    raw = ROWS.astype("<f4").tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": [5, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}],
                         "outputs": [{"name": "predictions"},
                                     {"name": "probabilities",
                                      "parameters": {"binary_data": True}}]}).encode()
    response = client.post(f"/v2/models/{trained}/infer", content=header + raw,
                           headers={"Inference-Header-Content-Length": str(len(header))})
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    body = json.loads(response.content[:length])
    predictions, probabilities = body["outputs"]
    assert probabilities["parameters"] == {"binary_data_size": 5 * 10 * 4}
    values = np.frombuffer(response.content[length:], dtype="<f4").reshape(5, 10)
    v1 = client.post(f"/v1/jobs/{trained}/predict", json={"inputs": ROWS.tolist()}).json()
    np.testing.assert_allclose(values, v1["probabilities"], rtol=1e-6)
    assert predictions["data"] == v1["predictions"]


@pytest.mark.parametrize(("request_body", "words"), [
    ({"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32", "data": [0.0] * 64}]},
     ["inputs[0].data", "128 values"]),
    ({"inputs": [{"name": "input", "shape": [1, 63], "datatype": "FP32", "data": [0.0] * 63}]},
     ["input shape", "[64]"]),
    ({"inputs": [{"name": "input", "shape": [0, 64], "datatype": "FP32", "data": []}]},
     ["inputs[0].shape", "rows >= 1"]),
    ({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32",
                  "data": [[1.0], [1.0, 2.0]]}]}, ["inputs[0].data", "ragged"]),
    ({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": ["a", "b"]}]},
     ["inputs[0].data", "numbers"]),
    ({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [1.5, True]}]},
     ["inputs[0].data", "numbers", "booleans"]),
    ({"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32",
                  "data": [[1], [False]]}]}, ["inputs[0].data", "numbers"]),
    ({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [1e300] * 64}]},
     ["finite"]),
    ({"inputs": [{"name": "x", "shape": [1, 64], "datatype": "INT8", "data": [0] * 64}]},
     ["inputs[0].name", "inputs[0].datatype", "'FP32' or 'FP64'"]),
    ({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32"}]},
     ["inputs[0].data", "no data"]),
    ({"inputs": []}, ["inputs"]),
    ({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}],
      "outputs": [{"name": "predictions"}, {"name": "predictions"}]}, ["outputs[1].name", "once"]),
    ({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}],
      "parameters": {"mc_samples": 1001}}, ["parameters.mc_samples", "1000"]),
    ({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}],
      "parameters": {"priority": 1}}, ["parameters.priority", "Extra inputs"]),
])
def test_bad_tensors_are_400_naming_the_field(client: TestClient, trained: str,
                                              request_body: dict[str, Any],
                                              words: list[str]) -> None:
    response = client.post(f"/v2/models/{trained}/infer", json=request_body)
    assert_protocol_error(response, 400, *words)


JSON_DATA = b'{"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0]}]}'
BINARY_8 = (b'{"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", '
            b'"parameters": {"binary_data_size": 8}}]}')


@pytest.mark.parametrize(("body", "headers", "words"), [
    (b"", {}, ["not valid JSON"]),
    (b'{"inputs": [NaN]}', {"Content-Type": "application/json"}, ["NaN"]),
    (b'{"inputs": [], "inputs": []}', {}, ["duplicate key"]),
    (b'{"inputs": []}', {"Inference-Header-Content-Length": "99"}, ["Inference-Header"]),
    (JSON_DATA + b"xx", {"Inference-Header-Content-Length": str(len(JSON_DATA))},
     ["binary_data_size", "no input claims"]),
    (BINARY_8 + bytes(8), {"Inference-Header-Content-Length": str(len(BINARY_8))},
     ["binary_data_size", "256"]),
    (BINARY_8 + bytes(8), {}, ["not valid JSON"]),
])
def test_malformed_bodies_are_400(client: TestClient, trained: str, body: bytes,
                                  headers: dict[str, str], words: list[str]) -> None:
    response = client.post(f"/v2/models/{trained}/infer", content=body, headers=headers)
    assert_protocol_error(response, 400, *words)


def test_too_large_a_body_is_413_in_the_protocol_shape(client: TestClient, trained: str) -> None:
    limit = client.app.state.dropnet.settings.max_body_bytes
    response = client.post(f"/v2/models/{trained}/infer", content=b" " * (limit + 1))
    assert_protocol_error(response, 413, f"{limit} bytes")


def test_unknown_models_versions_and_paths_are_404(client: TestClient, trained: str) -> None:
    assert_protocol_error(client.get("/v2/models/" + "f" * 32), 404, "f" * 32)
    assert_protocol_error(client.post("/v2/models/nope/infer", json={
        "inputs": [tensor(ROWS)]}), 404, "nope")
    for path in (f"/v2/models/{trained}/versions/2", f"/v2/models/{trained}/versions/2/ready"):
        assert_protocol_error(client.get(path), 404, "version '2'")
    assert_protocol_error(client.post(f"/v2/models/{trained}/versions/0/infer", json={
        "inputs": [tensor(ROWS)]}), 404, "version '0'")
    assert_protocol_error(client.get("/v2/repository/index"), 404)
    assert_protocol_error(client.get("/v2/models/x", params={"verbose": 1}), 400, "verbose")


def test_v1_keeps_its_error_shape(client: TestClient) -> None:
    response = client.post("/v1/jobs/nope/predict", json={"inputs": [[0.0]]})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
