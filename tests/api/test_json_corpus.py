"""Every document of JSONTestSuite's test_parsing (tests/data/jsontestsuite, 318 files), sent as
the body of every route that takes JSON, alone and as the value of a field: each answer is a
4xx in the error shape, or a 2xx for a valid spec, never a 5xx, and the server still answers.

- `n_` documents are not JSON: the strict parser refuses each with a 422 `invalid_json`, before
  the prediction hot path or any route sees it.
- `y_` documents are JSON: the schema judges them (422 `invalid_spec` / `invalid_input` naming
  the field, or 201), except for the ones the service refuses on purpose (`REFUSED_ON_PURPOSE`).
- `i_` documents are left to the parser by RFC 8259: either outcome, in the error shape.

One app on SQLite serves the module: no corpus document is a spec that gets as far as the
database, apart from the lonely string "asd" as a job's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.error_shape import assert_error
from tests.api.served_model import VALID_SAMPLE, Served, served_model
from tests.factories import DIGITS_SPEC

CORPUS = Path(__file__).parents[1] / "data" / "jsontestsuite" / "test_parsing"
DOCUMENTS = sorted(path.name for path in CORPUS.iterdir())

REFUSED_ON_PURPOSE = {
    "y_object_duplicated_key.json": "json_duplicate_key",  # RFC 8259: names SHOULD be unique
    "y_object_duplicated_key_and_value.json": "json_duplicate_key",
}
"""Valid JSON the strict parser refuses anyway, with the detail type it answers."""

JSON_TYPES = {"json_invalid", "json_duplicate_key", "json_number_out_of_range", "json_too_deep"}


@pytest.fixture(scope="module", params=["sqlite"])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_model(request, tmp_path_factory) as served:
        yield served


def without_name(document: bytes) -> bytes:
    """DIGITS_SPEC with `document` as its name, byte for byte."""
    rest = {key: value for key, value in DIGITS_SPEC.items() if key != "name"}
    return json.dumps(rest)[:-1].encode() + b', "name": ' + document + b"}"


def assert_json_refused(response: Any, detail_type: str | None = None) -> None:
    error = assert_error(response)
    assert response.status_code == 422 and error["code"] == "invalid_json", error
    assert error["details"][0]["type"] in JSON_TYPES, error
    if detail_type is not None:
        assert error["details"][0]["type"] == detail_type, error


def assert_schema_refused(response: Any, code: str, path: str | None = None) -> None:
    """A 422 from the schema (`code`), with a detail at or under `path` when one is given."""
    error = assert_error(response)
    assert response.status_code == 422 and error["code"] == code, error
    if path is not None:
        paths = [detail["path"] for detail in error["details"]]
        assert any(p == path or p.startswith((f"{path}.", f"{path}[")) for p in paths), error


def test_the_corpus_is_all_there() -> None:
    kinds = {prefix: sum(name.startswith(prefix) for name in DOCUMENTS)
             for prefix in ("y_", "n_", "i_")}
    assert kinds == {"y_": 95, "n_": 188, "i_": 35}, kinds
    assert (CORPUS.parent / "LICENSE").read_text().startswith("MIT License")
    assert set(REFUSED_ON_PURPOSE) <= set(DOCUMENTS)


@pytest.mark.parametrize("name", [name for name in DOCUMENTS if name.startswith("n_")])
def test_documents_that_are_not_json_are_422_on_every_route(served: Served, name: str) -> None:
    document = (CORPUS / name).read_bytes()
    before = served.model_lookups()
    for url, body in [("/v1/jobs", document), ("/v1/jobs", without_name(document)),
                      (served.predict_url, document),
                      (served.predict_url, b'{"inputs": ' + document + b"}")]:
        response = served.post_json(url, body)
        if body:
            assert_json_refused(response)
        else:  # n_structure_no_data: no body at all, which the route refuses as missing
            error = assert_error(response)
            assert response.status_code == 422 and error["details"][0]["path"] == "body", error
            assert error["details"][0]["type"] == "missing", error
    assert served.model_lookups() == before  # refused before the hot path looked


@pytest.mark.parametrize("name", [name for name in DOCUMENTS if name.startswith("y_")])
def test_json_documents_are_judged_by_the_schema(served: Served, name: str) -> None:
    document = (CORPUS / name).read_bytes()
    if name in REFUSED_ON_PURPOSE:
        for url in ("/v1/jobs", served.predict_url):
            assert_json_refused(served.post_json(url, document), REFUSED_ON_PURPOSE[name])
        return
    value = json.loads(document)
    assert_schema_refused(served.post_json("/v1/jobs", document), "invalid_spec")
    named = served.post_json("/v1/jobs", without_name(document))
    if named.status_code == 201:
        assert named.json()["name"] == value
    else:
        assert_schema_refused(named, "invalid_spec", "name")
    for body, path in [(document, None), (b'{"inputs": ' + document + b"}", "inputs")]:
        before = served.model_lookups()
        assert_schema_refused(served.post_json(served.predict_url, body), "invalid_input",
                              path)
        # The hot path looked the model up and left the body to the route, which refused it
        # by the schema (no second look) or by the model's input shape (a second look).
        assert served.model_lookups() - before in (1, 2)


@pytest.mark.parametrize("name", [name for name in DOCUMENTS if name.startswith("i_")])
def test_documents_left_to_the_parser_are_4xx(served: Served, name: str) -> None:
    """Refused as JSON, or parsed and then refused by the schema: a 422 either way."""
    document = (CORPUS / name).read_bytes()
    for url, body, schema_code in [
            ("/v1/jobs", document, "invalid_spec"),
            ("/v1/jobs", without_name(document), "invalid_spec"),
            (served.predict_url, document, "invalid_input"),
            (served.predict_url, b'{"inputs": ' + document + b"}", "invalid_input")]:
        response = served.post_json(url, body)
        error = assert_error(response)
        assert response.status_code == 422, error
        assert error["code"] == "invalid_json" or error["code"] == schema_code, error
        if error["code"] == "invalid_json":
            assert error["details"][0]["type"] in JSON_TYPES, error


def test_the_server_still_answers_after_the_corpus(served: Served) -> None:
    assert served.client.get("/readyz").status_code == 200
    before = served.model_lookups()
    response = served.client.post(served.predict_url, json=VALID_SAMPLE)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1
    assert served.model_lookups() == before + 1  # answered by the hot path
