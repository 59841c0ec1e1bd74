"""The Open Inference Protocol with its real client: tritonclient's InferenceServerClient
against a real `dropnet serve`, with API keys, giving what /v1/jobs/{id}/predict gives."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from service.engine.datasets import load_builtin
from tests.e2e.conftest import Server
from tests.factories import spec


def alice() -> dict[str, str]:
    """Alice's key as a new dict each call: tritonclient's infer writes its own headers
    (Inference-Header-Content-Length) into the dict it is given."""
    return {"Authorization": "Bearer key-a"}


BOB = {"Authorization": "Bearer key-b"}
CNN_LAYERS = [
    {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": 2, "padding": "same",
     "activation": "relu"},
    {"type": "spatial_dropout2d", "rate": 0.2},
    {"type": "maxpool2d", "pool_size": 2}, {"type": "flatten"},
    {"type": "dropout", "rate": 0.3}, {"type": "dense", "units": 10, "activation": "softmax"}]


def job_spec(kind: str, dtype: str) -> dict[str, Any]:
    body = copy.deepcopy(spec(iterations=150, eval_every=50))
    if kind == "cnn":
        body["model"] = {"input_shape": [1, 8, 8], "layers": CNN_LAYERS}
    body["model"]["dtype"] = dtype
    return body


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """One `dropnet serve` with alice's and bob's keys, holding alice's trained MLP and CNN in
    float32 and float64 (job ids by "mlp-float32", ...)."""
    from tests.e2e import conftest

    tmp = tmp_path_factory.mktemp("v2")
    port = conftest.free_port()
    env = {"DROPNET_DATABASE_URL": f"sqlite:///{tmp / 'dropnet.db'}", "DROPNET_PORT": str(port),
           "DROPNET_HOST": "127.0.0.1", "DROPNET_WORKERS": "1",
           "DROPNET_API_KEYS": "alice:key-a,bob:key-b"}
    log = tmp / "serve.log"
    server = Server(conftest.start(["serve"], env, log), port, log)
    try:
        server.wait_ready()
        server.client.headers.update(alice())
        jobs = {}
        for kind in ("mlp", "cnn"):
            for dtype in ("float32", "float64"):
                created = server.client.post("/v1/jobs", json=job_spec(kind, dtype))
                assert created.status_code == 201, created.text
                jobs[f"{kind}-{dtype}"] = created.json()["id"]
        for job_id in jobs.values():
            assert server.wait_job(job_id)["status"] == "succeeded"
        yield server, jobs
    finally:
        assert server.stop() == 0


@pytest.fixture
def client(service: tuple[Server, dict[str, str]]) -> Iterator[triton.InferenceServerClient]:
    server, _ = service
    connection = triton.InferenceServerClient(server.url.removeprefix("http://"))
    yield connection
    connection.close()


def rows(kind: str) -> np.ndarray:
    digits = load_builtin("digits", flat=kind == "mlp")
    return digits.x_test[:7]


def v1_predict(server: Server, job_id: str, x: np.ndarray, **options: int) -> dict[str, Any]:
    response = server.client.post(f"/v1/jobs/{job_id}/predict",
                                  json={"inputs": x.tolist(), **options})
    assert response.status_code == 200, response.text
    return response.json()


def test_server_and_model_health(service, client) -> None:
    _, jobs = service
    assert client.is_server_live(headers=alice()) and client.is_server_ready(headers=alice())
    assert client.get_server_metadata()["name"] == "dropnet"
    for job_id in jobs.values():
        assert client.is_model_ready(job_id, headers=alice())
        assert client.is_model_ready(job_id, model_version="1", headers=alice())
        assert not client.is_model_ready(job_id, model_version="2", headers=alice())
        assert not client.is_model_ready(job_id, headers=BOB)  # alice's: unknown to bob
        assert not client.is_model_ready(job_id)  # no key
    assert not client.is_model_ready("f" * 32, headers=alice())


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_metadata(service, client, kind: str, dtype: str) -> None:
    _, jobs = service
    metadata = client.get_model_metadata(jobs[f"{kind}-{dtype}"], headers=alice())
    shape = [-1, 64] if kind == "mlp" else [-1, 1, 8, 8]
    datatype = {"float32": "FP32", "float64": "FP64"}[dtype]
    assert metadata["inputs"] == [{"name": "input", "datatype": datatype, "shape": shape}]
    assert metadata["outputs"][:2] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "predictions", "datatype": "INT64", "shape": [-1]}]
    assert metadata["versions"] == ["1"]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize("model", ["mlp-float32", "mlp-float64", "cnn-float32", "cnn-float64"])
def test_infer_gives_the_classes_and_probabilities_of_v1(service, client, model: str,
                                                         datatype: str, binary: bool) -> None:
    server, jobs = service
    x = rows(model.split("-")[0]).astype(np.float32 if datatype == "FP32" else np.float64)
    tensor = triton.InferInput("input", list(x.shape), datatype)
    tensor.set_data_from_numpy(x, binary_data=binary)
    requested = [triton.InferRequestedOutput("probabilities", binary_data=binary),
                 triton.InferRequestedOutput("predictions", binary_data=binary)]
    result = client.infer(jobs[model], [tensor], outputs=requested, request_id="r1",
                          headers=alice())
    expected = v1_predict(server, jobs[model], x)
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32 and probabilities.shape == (7, 10)
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=1e-6, atol=1e-7)
    assert result.as_numpy("predictions").tolist() == expected["predictions"]
    assert result.get_response()["id"] == "r1"


def test_infer_with_the_clients_defaults_and_mc_dropout(service, client) -> None:
    """No outputs named: tritonclient asks for every output as binary data."""
    server, jobs = service
    x = rows("cnn").astype(np.float32)
    tensor = triton.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer(jobs["cnn-float32"], [tensor], headers=alice(),
                          parameters={"mc_samples": 30, "seed": 5})
    names = [output["name"] for output in result.get_response()["outputs"]]
    assert names == ["probabilities", "predictions", "entropy", "mutual_information", "std"]
    expected = v1_predict(server, jobs["cnn-float32"], x, mc_samples=30, seed=5)
    for name in ("probabilities", "entropy", "mutual_information", "std"):
        np.testing.assert_allclose(result.as_numpy(name), expected[name], rtol=1e-5, atol=1e-7)
    assert result.as_numpy("predictions").tolist() == expected["predictions"]
    assert result.as_numpy("entropy").shape == (7,)


def test_errors_reach_the_client_with_their_status_and_message(service, client) -> None:
    _, jobs = service
    x = np.zeros((2, 63), dtype=np.float32)
    tensor = triton.InferInput("input", [2, 63], "FP32")
    tensor.set_data_from_numpy(x, binary_data=False)
    with pytest.raises(InferenceServerException) as bad:
        client.infer(jobs["mlp-float32"], [tensor], headers=alice())
    assert bad.value.status() == "400" and "input shape" in bad.value.message()
    with pytest.raises(InferenceServerException) as theirs:
        client.get_model_metadata(jobs["mlp-float32"], headers=BOB)
    assert theirs.value.status() == "404" and jobs["mlp-float32"] in theirs.value.message()
    with pytest.raises(InferenceServerException) as unkeyed:
        client.get_model_metadata(jobs["mlp-float32"])
    assert unkeyed.value.status() == "401" and "API key" in unkeyed.value.message()
    with pytest.raises(InferenceServerException) as uncertain:
        client.infer(jobs["mlp-float32"], [triton.InferInput("input", [1, 64], "FP32")
                                            .set_data_from_numpy(np.zeros((1, 64), np.float32))],
                     outputs=[triton.InferRequestedOutput("entropy")], headers=alice())
    assert uncertain.value.status() == "400" and "mc_samples" in uncertain.value.message()
