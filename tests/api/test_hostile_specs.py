"""Whatever a client POSTs to /v1/jobs, the answer is a 4xx naming the field and the rule (or a
201 for a valid spec), never a 500, on SQLite and PostgreSQL alike; the same for hostile path
and query parameters.

One app per backend serves most of the module: the cases are refused before anything is
stored, so they cannot disturb each other.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.shared_app import BACKENDS, shared_client
from tests.factories import DIGITS_SPEC

# Small limits, so that "over the limit" is cheap to build.
LIMITS = {"max_layers": 8, "max_iterations": 5_000, "max_batch_size": 256,
          "max_parameters": 200_000, "max_eval_rows": 1_000_000}

Spec = dict[str, Any]


@pytest.fixture(scope="module", params=BACKENDS)
def api(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with shared_client(request, tmp_path_factory, **LIMITS) as client:
        yield client


def post_spec(client: TestClient, body: Any) -> Any:
    return client.post("/v1/jobs", json=body)


def post_raw(client: TestClient, content: bytes, content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type else {}
    return client.post("/v1/jobs", content=content, headers=headers)


def assert_refused(response: Any, path: str) -> dict[str, Any]:
    """A 422 in the one error shape whose details name `path`, each with the rule broken."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    error = body["error"]
    assert error["code"] in ("invalid_spec", "invalid_json"), error
    assert error["details"], error
    for detail in error["details"]:
        assert {"path", "message", "type"} <= set(detail), detail
        assert detail["message"] and detail["type"], detail
    assert path in [d["path"] for d in error["details"]], error
    return error


def mutated(change: Callable[[Spec], Any]) -> Spec:
    body = copy.deepcopy(DIGITS_SPEC)
    change(body)
    return body


def layers(spec: Spec) -> list[dict[str, Any]]:
    return spec["model"]["layers"]


def on_images(*stack: dict[str, Any]) -> Callable[[Spec], None]:
    """The digits as (1, 8, 8) images through `stack`, then a softmax over the ten classes."""
    def change(spec: Spec) -> None:
        spec["model"] = {"input_shape": [1, 8, 8], "layers": [
            *stack, {"type": "flatten"}, {"type": "dense", "units": 10,
                                          "activation": "softmax"}]}
    return change


def data(**fields: Any) -> Callable[[Spec], None]:
    def change(spec: Spec) -> None:
        spec["data"] = fields
        if fields.get("dataset") in ("spirals", "xor"):
            spec["model"]["input_shape"] = [2]
    return change


def training(**fields: Any) -> Callable[[Spec], None]:
    return lambda spec: spec["training"].update(fields)


def optimizer(**fields: Any) -> Callable[[Spec], None]:
    return lambda spec: spec["training"]["optimizer"].update(fields)


HOSTILE: list[tuple[str, Callable[[Spec], Any], str]] = [
    # -- the name
    ("name-number", lambda s: s.update(name=123), "name"),
    ("name-empty", lambda s: s.update(name=""), "name"),
    ("name-201-chars", lambda s: s.update(name="n" * 201), "name"),
    ("name-201-unicode-chars", lambda s: s.update(name="é" * 201), "name"),
    ("name-null", lambda s: s.update(name=None), "name"),
    ("name-nul-byte", lambda s: s.update(name="drop\x00net"), "name"),
    ("name-newline", lambda s: s.update(name="two\nlines"), "name"),
    ("name-array", lambda s: s.update(name=["a"]), "name"),
    ("name-missing", lambda s: s.pop("name"), "name"),
    # -- the model's shape
    ("model-array", lambda s: s.update(model=[]), "model"),
    ("model-null", lambda s: s.update(model=None), "model"),
    ("input-shape-string", lambda s: s["model"].update(input_shape="64"), "model.input_shape"),
    ("input-shape-empty", lambda s: s["model"].update(input_shape=[]), "model.input_shape"),
    ("input-shape-zero", lambda s: s["model"].update(input_shape=[0]), "model.input_shape[0]"),
    ("input-shape-negative", lambda s: s["model"].update(input_shape=[-64]),
     "model.input_shape[0]"),
    ("input-shape-10**30", lambda s: s["model"].update(input_shape=[10**30]),
     "model.input_shape[0]"),
    ("input-shape-float", lambda s: s["model"].update(input_shape=[64.0]),
     "model.input_shape[0]"),
    ("input-shape-4d", lambda s: s["model"].update(input_shape=[1, 1, 8, 8]),
     "model.input_shape"),
    ("input-shape-not-the-data", lambda s: s["model"].update(input_shape=[10]),
     "model.input_shape"),
    ("dtype-float16", lambda s: s["model"].update(dtype="float16"), "model.dtype"),
    # -- the layers
    ("layers-empty", lambda s: s["model"].update(layers=[]), "model.layers"),
    ("layers-object", lambda s: s["model"].update(layers={"type": "dense", "units": 10}),
     "model.layers"),
    ("layer-array", lambda s: layers(s).__setitem__(0, []), "model.layers[0]"),
    ("layer-null", lambda s: layers(s).__setitem__(0, None), "model.layers[0]"),
    ("layer-nested-in-array", lambda s: s["model"].update(layers=[[layers(s)[0]]]),
     "model.layers[0]"),
    ("layer-type-unknown", lambda s: layers(s)[0].update(type="lstm"), "model.layers[0]"),
    ("layer-type-missing", lambda s: layers(s)[0].pop("type"), "model.layers[0]"),
    ("units-string", lambda s: layers(s)[0].update(units="32"), "model.layers[0].units"),
    ("units-zero", lambda s: layers(s)[0].update(units=0), "model.layers[0].units"),
    ("units-negative", lambda s: layers(s)[0].update(units=-5), "model.layers[0].units"),
    ("units-1e308", lambda s: layers(s)[0].update(units=1e308), "model.layers[0].units"),
    ("units-10**30", lambda s: layers(s)[0].update(units=10**30), "model.layers[0].units"),
    ("units-boolean", lambda s: layers(s)[0].update(units=True), "model.layers[0].units"),
    ("units-missing", lambda s: layers(s)[0].pop("units"), "model.layers[0].units"),
    ("activation-unknown", lambda s: layers(s)[0].update(activation="swish"),
     "model.layers[0].activation"),
    ("layer-unknown-field", lambda s: layers(s)[0].update(bias=1), "model.layers[0].bias"),
    ("max-norm-zero", lambda s: layers(s)[0].update(max_norm=0), "model.layers[0].max_norm"),
    ("rate-one", lambda s: layers(s)[1].update(rate=1.0), "model.layers[1].rate"),
    ("rate-negative", lambda s: layers(s)[1].update(rate=-0.1), "model.layers[1].rate"),
    ("rate-string", lambda s: layers(s)[1].update(rate="0.5"), "model.layers[1].rate"),
    ("rate-nan-string", lambda s: layers(s)[1].update(rate="NaN"), "model.layers[1].rate"),
    ("rate-infinity-string", lambda s: layers(s)[1].update(rate="Infinity"),
     "model.layers[1].rate"),
    ("rate-1e308", lambda s: layers(s)[1].update(rate=1e308), "model.layers[1].rate"),
    ("rate-null", lambda s: layers(s)[1].update(rate=None), "model.layers[1].rate"),
    ("noise-shape-wrong-size", lambda s: layers(s)[1].update(noise_shape=[5, 7]),
     "model.layers[1].noise_shape"),
    ("too-many-layers", lambda s: s["model"].update(layers=[
        {"type": "dense", "units": 16, "activation": "relu"}] * 8 + [
        {"type": "dense", "units": 10, "activation": "softmax"}]), "model.layers"),
    ("too-many-parameters", lambda s: layers(s)[0].update(units=65_536), "model.layers"),
    ("last-layer-too-narrow", lambda s: layers(s)[2].update(units=5), "model.layers[2]"),
    # -- shapes that do not fit
    ("kernel-larger-than-input", on_images(
        {"type": "conv2d", "filters": 4, "kernel_size": 9}), "model.layers[0].kernel_size"),
    ("pool-larger-than-input", on_images({"type": "maxpool2d", "pool_size": 16}),
     "model.layers[0].pool_size"),
    ("kernel-size-zero", on_images({"type": "conv2d", "filters": 4, "kernel_size": 0}),
     "model.layers[0].kernel_size"),
    ("stride-three-numbers", on_images(
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "stride": [1, 2, 3]}),
     "model.layers[0].stride"),
    ("dense-on-image-input", lambda s: s["model"].update(input_shape=[1, 8, 8]),
     "model.layers[0].type"),
    ("conv-on-flat-input", lambda s: layers(s).insert(
        0, {"type": "conv2d", "filters": 2, "kernel_size": 3}), "model.layers[0].type"),
    ("spatial-dropout-on-flat-input", lambda s: layers(s).__setitem__(
        1, {"type": "spatial_dropout2d", "rate": 0.2}), "model.layers[1].type"),
    # -- training
    ("cross-entropy-without-softmax", lambda s: layers(s)[2].update(activation="relu"),
     "training.loss"),
    ("loss-unknown", training(loss="hinge"), "training.loss"),
    ("iterations-zero", training(iterations=0), "training.iterations"),
    ("iterations-over-the-limit", training(iterations=LIMITS["max_iterations"] + 1),
     "training.iterations"),
    ("iterations-10**30", training(iterations=10**30), "training.iterations"),
    ("iterations-string", training(iterations="100"), "training.iterations"),
    ("batch-size-negative", training(batch_size=-1), "training.batch_size"),
    ("batch-size-over-the-limit", training(batch_size=LIMITS["max_batch_size"] + 1),
     "training.batch_size"),
    ("eval-cost-over-the-limit", training(iterations=5_000, eval_every=1),
     "training.eval_every"),
    ("seed-negative", training(seed=-1), "training.seed"),
    ("seed-2**31", training(seed=2**31), "training.seed"),
    ("sampling-unknown", training(sampling="bootstrap"), "training.sampling"),
    ("checkpoint-array", training(checkpoint=[]), "training.checkpoint"),
    ("checkpoint-every-seconds-zero", training(checkpoint={"every_seconds": 0}),
     "training.checkpoint.every_seconds"),
    ("optimizer-missing", lambda s: s["training"].pop("optimizer"), "training.optimizer"),
    ("optimizer-unknown", optimizer(type="lbfgs"), "training.optimizer"),
    ("learning-rate-zero", optimizer(learning_rate=0), "training.optimizer.learning_rate"),
    ("learning-rate-1e308", optimizer(learning_rate=1e308),
     "training.optimizer.learning_rate"),
    ("momentum-one", optimizer(momentum=1.0), "training.optimizer.momentum"),
    ("dropout-schedule-unknown", training(dropout_schedule={"type": "exponential"}),
     "training.dropout_schedule"),
    ("dropout-schedule-every-zero", training(dropout_schedule={
        "type": "step", "every": 0, "delta": -0.1}), "training.dropout_schedule.every"),
    ("curriculum-gamma-zero", training(dropout_schedule={"type": "curriculum", "gamma": 0}),
     "training.dropout_schedule.gamma"),
    ("dropconnect-rate-one", lambda s: layers(s)[0].update(dropconnect=1.0),
     "model.layers[0].dropconnect"),
    ("cosine-floor-above-learning-rate", training(lr_schedule={
        "type": "cosine", "min_learning_rate": 5.0}), "training.lr_schedule.min_learning_rate"),
    ("training-string", lambda s: s.update(training="fast"), "training"),
    ("training-nested-in-training", lambda s: s.update(training={"training": s["training"]}),
     "training.training"),
    # -- data
    ("dataset-unknown", data(dataset="mnist"), "data"),
    ("data-empty", data(), "data"),
    ("dataset-id-unknown", data(dataset_id="0" * 32), "data.dataset_id"),
    ("dataset-id-empty", data(dataset_id=""), "data.dataset_id"),
    ("test-fraction-zero", data(dataset="digits", test_fraction=0), "data.test_fraction"),
    ("test-fraction-1.5", data(dataset="digits", test_fraction=1.5), "data.test_fraction"),
    ("spirals-too-few-samples", data(dataset="spirals", n_samples=5), "data.n_samples"),
    ("spirals-too-many-classes", data(dataset="spirals", n_classes=11), "data.n_classes"),
    ("spirals-negative-noise", data(dataset="spirals", noise=-1), "data.noise"),
    ("spirals-fewer-than-two-per-class", data(dataset="spirals", n_samples=10, n_classes=10),
     "data.n_samples"),
    ("xor-empty-test-set", data(dataset="xor", n_samples=10, test_fraction=0.01),
     "data.test_fraction"),
    ("xor-has-no-classes-parameter", data(dataset="xor", n_classes=3), "data.n_classes"),
    ("digits-has-no-seed", data(dataset="digits", seed=1), "data.seed"),
    ("digits-train-size-below-ten", data(dataset="digits", train_size=5), "data.train_size"),
    ("digits-train-size-above-the-split", data(dataset="digits", train_size=1500),
     "data.train_size"),
    ("digits-train-size-string", data(dataset="digits", train_size="150"), "data.train_size"),
    ("digits-label-noise-above-one", data(dataset="digits", label_noise=1.5),
     "data.label_noise"),
    ("digits-label-noise-null", data(dataset="digits", label_noise=None), "data.label_noise"),
    ("spirals-has-no-label-noise", data(dataset="spirals", label_noise=0.1),
     "data.label_noise"),
    # -- the document
    ("unknown-top-level-field", lambda s: s.update(extra=1), "extra"),
    ("unknown-unicode-field", lambda s: s.update(ñame="x"), "ñame"),
]


def test_there_are_at_least_40_distinct_hostile_specs() -> None:
    names = [name for name, _, _ in HOSTILE]
    assert len(set(names)) == len(names) >= 40
    bodies = {json.dumps(mutated(change), sort_keys=True, default=str)
              for _, change, _ in HOSTILE}
    assert len(bodies) == len(HOSTILE)


@pytest.mark.parametrize(("change", "path"), [(change, path) for _, change, path in HOSTILE],
                         ids=[name for name, _, _ in HOSTILE])
def test_hostile_spec_is_422_naming_the_field(api: TestClient, change, path: str) -> None:
    assert_refused(post_spec(api, mutated(change)), path)


def test_nothing_hostile_was_stored(api: TestClient) -> None:
    names = {job["name"] for job in api.get("/v1/jobs", params={"limit": 1000}).json()["data"]}
    assert not names & {"drop\x00net", "two\nlines"}


@pytest.mark.parametrize("body", [[], [DIGITS_SPEC], "spec", 42, True, None],
                         ids=["empty-array", "array", "string", "number", "boolean", "null"])
def test_json_that_is_not_an_object_is_422(api: TestClient, body: Any) -> None:
    assert_refused(post_raw(api, json.dumps(body).encode()), "body")


@pytest.mark.parametrize("content", [
    b"", b"{", b"{'name': 'single quotes'}", b"name=digits", b"\xff\xfe{}", b"\xef\xbb\xbf{}",
    json.dumps(DIGITS_SPEC).encode() + b" trailing",
], ids=["empty", "truncated", "single-quotes", "form-like", "not-utf8", "utf8-bom", "trailing"])
def test_bodies_that_are_not_json_are_422(api: TestClient, content: bytes) -> None:
    error = assert_refused(post_raw(api, content), "body")
    assert error["code"] in ("invalid_json", "invalid_spec")


@pytest.mark.parametrize("content_type", [
    None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml"])
def test_a_spec_sent_with_the_wrong_content_type_is_415(api: TestClient,
                                                        content_type: str | None) -> None:
    response = post_raw(api, json.dumps(DIGITS_SPEC).encode(), content_type)
    assert response.status_code == 415, response.text
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["details"][0]["path"] == "body"
    assert error["details"][0]["expected"] == "Content-Type: application/json"


def test_duplicate_keys_are_refused_with_their_path(api: TestClient) -> None:
    top = json.dumps(DIGITS_SPEC)[:-1] + ', "name": "second"}'
    assert_refused(post_raw(api, top.encode()), "name")
    nested = json.dumps(DIGITS_SPEC).replace('"rate": 0.5', '"rate": 0.5, "rate": 0.9')
    error = assert_refused(post_raw(api, nested.encode()), "model.layers[1].rate")
    assert "duplicate" in error["message"]


@pytest.mark.parametrize(("literal", "path"), [
    ("NaN", "model.layers[1].rate"), ("Infinity", "model.layers[1].rate"),
    ("-Infinity", "model.layers[1].rate")])
def test_nan_and_infinity_literals_are_refused(api: TestClient, literal: str,
                                               path: str) -> None:
    body = json.dumps(DIGITS_SPEC).replace('"rate": 0.5', f'"rate": {literal}')
    error = assert_refused(post_raw(api, body.encode()), path)
    assert error["details"][0]["received"] == literal


def test_a_number_too_large_for_a_float_is_refused(api: TestClient) -> None:
    body = json.dumps(DIGITS_SPEC).replace('"learning_rate": 0.1', '"learning_rate": 1e999')
    assert_refused(post_raw(api, body.encode()), "training.optimizer.learning_rate")


@pytest.mark.parametrize(("body", "path"), [
    ({**DIGITS_SPEC, "name": "\ud800"}, "name"), ({**DIGITS_SPEC, "\udfff": 1}, "\udfff"),
    ({**DIGITS_SPEC, "name": "ok \ud83d\ude00"}, None)], ids=["value", "key", "a-pair"])
def test_lone_surrogate_escapes_are_refused(api: TestClient, body: Spec,
                                            path: str | None) -> None:
    raw = json.dumps(body).encode()  # ensure_ascii: "\\ud800" escapes, as a client sends them
    assert b"\\ud" in raw
    response = post_raw(api, raw)
    if path is None:  # a proper pair is one character: 😀
        assert response.status_code == 201 and response.json()["name"] == "ok 😀"
        return
    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize("depth", [100_000, 5_000, 900, 100])
def test_deeply_nested_documents_are_4xx(api: TestClient, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    for body in (nested, b'{"name": ' + nested + b"}",
                 json.dumps(DIGITS_SPEC)[:-1].encode() + b', "extra": ' + nested + b"}"):
        response = post_raw(api, body)
        assert response.status_code == 422, (depth, response.text[:300])
        assert response.json()["error"]["details"][0]["path"]


VALID_NAMES = [
    "дропаут-сеть", "ドロップアウト網", "شبكة التسرب", "🧠 dropout 🔥", "👩‍👩‍👧‍👦 family",
    "e\u0301te\u0301 (combining)", "zero\u200bwidth", "名" * 200, "n" * 200, "🙂" * 200,
    "'; DROP TABLE jobs; --", "<script>alert(1)</script>", "  spaced  ",
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_unicode_names_are_accepted_and_round_trip(api: TestClient, name: str) -> None:
    response = post_spec(api, mutated(lambda s: s.update(name=name)))
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["name"] == job["spec"]["name"] == name
    fetched = api.get(f"/v1/jobs/{job['id']}").json()
    assert fetched["name"] == fetched["spec"]["name"] == name
    api.post(f"/v1/jobs/{job['id']}/cancel")  # stays under the per-owner queue limit


# -- hostile parameters (PostgreSQL cannot even compare a string holding NUL) ---------------


def cursor_of(value: Any) -> str:
    import base64

    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(("method", "url", "path"), [
    ("GET", "/v1/jobs/a%00b", "job_id"),
    ("DELETE", "/v1/jobs/a%00b", "job_id"),
    ("POST", "/v1/jobs/a%00b/cancel", "job_id"),
    ("GET", "/v1/jobs/a%00b/attempts", "job_id"),
    ("GET", "/v1/jobs/a%00b/model", "job_id"),
    ("GET", "/v1/jobs/a%00b/metrics", "job_id"),
    ("GET", "/v1/jobs/0123/metrics/loss%00", "key"),
    ("GET", "/v1/datasets/a%00b", "dataset_id"),
    ("DELETE", "/v1/datasets/a%00b", "dataset_id"),
    ("GET", "/v1/jobs?cursor=a%00b", "cursor"),
    ("GET", "/v1/jobs?limt=5", "limt"),
    ("GET", "/v1/datasets?limit=5&debug=1", "debug"),
    ("GET", "/v1/jobs/0123/metrics/loss?start_step=" + "9" * 30, "start_step"),
    ("GET", "/v1/jobs/0123/metrics/loss?end_step=-1", "end_step"),
    ("GET", "/v1/jobs?limit=" + "9" * 5000, "limit"),
    ("GET", "/v1/jobs?status=lost", "status"),
])
def test_hostile_parameters_are_422_naming_them(api: TestClient, method: str, url: str,
                                                path: str) -> None:
    response = api.request(method, url)
    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]


@pytest.mark.parametrize("value", [
    ["0001-01-01T00:00:00+14:00", "a"], ["9999-12-31T23:59:59-14:00", "a"],
    ["2020-01-01T00:00:00+00:00", "a\x00b"], ["2020-01-01T00:00:00", "a"], ["x", "a"],
    {"after": 1}, [1, 2], "cursor", None])
def test_forged_list_cursors_are_422(api: TestClient, value: Any) -> None:
    for path in ("/v1/jobs", "/v1/datasets"):
        response = api.get(path, params={"cursor": cursor_of(value)})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["path"] == "cursor"


def test_forged_metric_cursors_and_steps_are_422(client: TestClient,
                                                run_jobs: Callable[[], list[str]]) -> None:
    job = post_spec(client, {**DIGITS_SPEC, "training": {
        **DIGITS_SPEC["training"], "iterations": 10, "eval_every": 5}}).json()["id"]
    assert run_jobs() == [job]
    url = f"/v1/jobs/{job}/metrics/batch_loss"
    assert client.get(url, params={"cursor": cursor_of({"after": 3})}).status_code == 200
    for value in ({"after": 10**30}, {"after": -10**30}, {"after": 2**63}, {"after": "1"},
                  {"after": True}, ["x"], None):
        response = client.get(url, params={"cursor": cursor_of(value)})
        assert response.status_code == 422, (value, response.text)
        assert response.json()["error"]["details"][0]["path"] == "cursor"
    for params, path in (({"start_step": 2**63}, "start_step"), ({"end_step": 10**30},
                                                                 "end_step"),
                         ({"start_step": 5, "end_step": 4}, "end_step")):
        response = client.get(url, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["details"][0]["path"] == path
