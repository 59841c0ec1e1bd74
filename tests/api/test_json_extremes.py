"""Property tests of JSON bodies at the text level, where schemathesis does not go: extreme
literals (1e400, integers of 5,000 digits, NaN and Infinity), deep nesting, lone surrogates,
invalid and overlong UTF-8, BOMs and UTF-16/32, NUL bytes, duplicate keys and very long
strings, put anywhere in a valid job spec or prediction request. Every answer is a 4xx in the
error shape naming the problem (a 422 `invalid_json` with the JSON path of the literal when the
text is not strict JSON), never a 5xx, on SQLite and PostgreSQL, and the server still answers.
"""

from __future__ import annotations

import codecs
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api.json_body import MAX_DEPTH, parse
from tests.api.error_shape import assert_error
from tests.api.served_model import VALID_SAMPLE, Served, served_model
from tests.api.shared_app import BACKENDS
from tests.factories import DIGITS_SPEC

SLOT = "\x01slot\x01"
"""Stands for the fragment in a serialized body (json.dumps writes it as "\\u0001slot\\u0001")."""

EXAMPLES = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class Fragment:
    """JSON text for one value of a body. `strict`: the strict parser refuses it (a 422
    `invalid_json`, with the detail `type` and a path at or under the value's), else it is
    JSON that the schema must refuse."""

    text: bytes
    strict: bool
    detail_type: str | None = None
    names_path: bool = True


def _fragments() -> st.SearchStrategy[Fragment]:
    number = "json_number_out_of_range"
    digits = st.integers(4301, 6000).map(lambda n: "9" * n)
    huge_integers = st.builds(lambda sign, text: Fragment(f"{sign}{text}".encode(), True, number),
                              st.sampled_from(["", "-"]), digits)
    readable_integers = st.integers(310, 4300).map(  # big, but within what int() reads
        lambda n: Fragment(b"1" + b"0" * (n - 1), False))
    overflowing = st.sampled_from(["1e400", "-1e400", "1E+309", "-2e308", "123e99999",
                                   "0.5e00400"]).map(
        lambda text: Fragment(text.encode(), True, number))
    non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(
        lambda text: Fragment(text.encode(), True, "json_invalid"))
    not_tokens = st.sampled_from(["nan", "inf", "-inf", "+1", "0x10", "1.", ".5", "01", "1e",
                                  "True", "None", "undefined"]).map(
        lambda text: Fragment(text.encode(), True, "json_invalid", names_path=False))
    depths = st.integers(MAX_DEPTH, 5_000)  # at any slot, at least one level too many
    nesting = (depths.map(lambda n: Fragment(b"[" * n + b"]" * n, True, "json_too_deep"))
               | depths.map(lambda n: Fragment(b'{"a":' * n + b"1" + b"}" * n, True,
                                               "json_too_deep")))
    surrogates = st.sampled_from(["\\ud800", "\\udfff", "\\udc00\\ud800", "a\\ud83d",
                                  "\\ud83d\\u0041"]).map(
        lambda escape: Fragment(f'"{escape}"'.encode(), True, "json_invalid"))
    bad_utf8 = st.sampled_from([b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
                                b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80",
                                b"\xc0\x80", b"\xfe\xff"]).map(
        lambda raw: Fragment(b'"' + raw + b'"', True, "json_invalid", names_path=False))
    raw_controls = st.sampled_from([b"\x00", b"\n", b"\x1f"]).map(  # unescaped in a string
        lambda raw: Fragment(b'"a' + raw + b'b"', True, "json_invalid", names_path=False))
    escaped_nul = st.just(Fragment(b'"\\u0000"', False))
    long_strings = st.integers(1_000, 2_000_000).map(
        lambda n: Fragment(b'"' + b"x" * n + b'"', False))
    return st.one_of(huge_integers, readable_integers, overflowing, non_finite, not_tokens,
                     nesting, surrogates, bad_utf8, raw_controls, escaped_nul, long_strings)


FRAGMENTS = _fragments()


def _put(body: dict[str, Any], path: str) -> dict[str, Any]:
    """`body` with SLOT at `path` ("a.b[1].c", or "extra" for a key the schema lacks)."""
    result = copy.deepcopy(body)
    parts = path.replace("[", ".[").split(".")
    container: Any = result
    for index, part in enumerate(parts):
        key: Any = int(part[1:-1]) if part.startswith("[") else part
        if index == len(parts) - 1:
            container[key] = SLOT
        else:
            container = container[key]
    return result


def _render(body: dict[str, Any], fragment: Fragment) -> bytes:
    text = json.dumps(body).encode()
    slot = json.dumps(SLOT).encode()
    assert text.count(slot) == 1
    return text.replace(slot, fragment.text)


SPEC_PATHS = ["name", "model.layers[1].rate", "model.input_shape[0]", "model.layers[0]",
              "training.optimizer.learning_rate", "training.iterations", "training.seed",
              "data", "data.test_fraction", "extra"]
PREDICT_PATHS = ["inputs", "inputs[0]", "inputs[0][0]", "inputs[0][63]", "extra"]


@pytest.fixture(scope="module", params=BACKENDS)
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """An app with a trained job whose model is cached, so the prediction hot path answers."""
    with served_model(request, tmp_path_factory) as served:
        yield served


def _check(response: Any, fragment: Fragment, path: str, schema_code: str) -> None:
    error = assert_error(response)
    assert response.status_code == 422, error
    if not fragment.strict:
        assert error["code"] == schema_code, error
        return
    assert error["code"] == "invalid_json", error
    detail = error["details"][0]
    assert detail["type"] == fragment.detail_type, error
    if fragment.names_path:
        # Nesting past the stack's reach is refused before any path is known.
        assert (detail["path"] == path or detail["path"].startswith((f"{path}.", f"{path}["))
                or (detail["type"] == "json_too_deep" and detail["path"] == "body")), error


@EXAMPLES
@given(fragment=FRAGMENTS, path=st.sampled_from(SPEC_PATHS))
def test_extreme_values_in_a_job_spec_are_4xx(served: Served, fragment: Fragment,
                                              path: str) -> None:
    body = _render(_put(DIGITS_SPEC, path), fragment)
    _check(served.post_json("/v1/jobs", body), fragment, path, "invalid_spec")


@EXAMPLES
@given(fragment=FRAGMENTS, path=st.sampled_from(PREDICT_PATHS))
def test_extreme_values_in_a_prediction_are_4xx(served: Served, fragment: Fragment,
                                                path: str) -> None:
    body = _render(_put(VALID_SAMPLE, path), fragment)
    _check(served.post_json(served.predict_url, body), fragment, path, "invalid_input")


WIDE_ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
NAMED_SPEC = {**DIGITS_SPEC, "name": "dropout é ✓ 🧠"}
"""Its é is not UTF-8 in the single-byte encodings (latin-1, cp1252)."""
BOMS = [codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE,
        codecs.BOM_UTF32_BE]


def _bodies() -> st.SearchStrategy[tuple[str, bytes]]:
    """(what was done, the body) for a valid spec or prediction spoilt as a whole."""
    documents = st.sampled_from([NAMED_SPEC, VALID_SAMPLE])
    encoded = st.builds(lambda document, encoding: (
        encoding, json.dumps(document, ensure_ascii=False).encode(encoding, "replace")),
        documents, st.sampled_from(WIDE_ENCODINGS)) | st.builds(lambda encoding: (
            encoding, json.dumps(NAMED_SPEC, ensure_ascii=False).encode(encoding, "replace")),
            st.sampled_from(["latin-1", "cp1252"]))
    with_bom = st.builds(lambda document, bom: ("bom", bom + json.dumps(document).encode()),
                         documents, st.sampled_from(BOMS))
    with_nul = st.builds(lambda document, at_start: (
        "nul", b"\x00" + json.dumps(document).encode() if at_start
        else json.dumps(document).encode() + b"\x00"), documents, st.booleans())
    duplicated = st.builds(lambda document, value: (
        "duplicate", b'{"' + next(iter(document)).encode() + b'": ' + value + b", "
        + json.dumps(document).encode()[1:]), documents,
        st.sampled_from([b"1", b'"x"', b"null", b"[]"]))
    overlong_key = st.builds(lambda document: (
        "overlong", json.dumps(document).encode().replace(b'"', b'"\xc0\xa2', 1)), documents)
    return st.one_of(encoded, with_bom, with_nul, duplicated, overlong_key)


@EXAMPLES
@given(spoilt=_bodies())
def test_bodies_spoilt_as_a_whole_are_422_invalid_json(served: Served,
                                                       spoilt: tuple[str, bytes]) -> None:
    how, body = spoilt
    for url in ("/v1/jobs", served.predict_url):
        response = served.post_json(url, body)
        error = assert_error(response)
        assert response.status_code == 422 and error["code"] == "invalid_json", (how, error)
        expected = "json_duplicate_key" if how == "duplicate" else "json_invalid"
        assert error["details"][0]["type"] == expected, (how, error)


_tricky = st.text(st.sampled_from(list('[]{}"\\:,aé\n')), max_size=6)
_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False) | _tricky,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(_tricky, children, max_size=3), max_leaves=20)


def _depth(document: Any) -> int:
    if isinstance(document, dict):
        return 1 + max(map(_depth, document.values()), default=0)
    if isinstance(document, list):
        return 1 + max(map(_depth, document), default=0)
    return 0


@settings(max_examples=500, derandomize=True, deadline=None, database=None)
@given(document=_documents, extra=st.integers(-3, 3), ascii_only=st.booleans())
def test_nesting_is_judged_by_depth_alone(document: Any, extra: int, ascii_only: bool) -> None:
    """Wrapped to MAX_DEPTH + extra levels, whatever brackets and quotes its strings hold, a
    document parses exactly when it is at most MAX_DEPTH deep."""
    wrap = max(MAX_DEPTH + extra - _depth(document), 0)
    text = "[" * wrap + json.dumps(document, ensure_ascii=ascii_only) + "]" * wrap
    parsed, problem = parse(text.encode())
    if _depth(document) + wrap <= MAX_DEPTH:
        assert problem is None and parsed == json.loads(text)
    else:
        assert problem is not None and problem.type == "json_too_deep", problem


def test_a_float_of_400_digits_without_exponent_is_refused_on_both_routes(
        served: Served) -> None:
    """Numbers are read one by one only in bodies with an exponent (see json_body.load), so
    in a prediction without one this infinity reaches the route, which refuses it."""
    literal = b"1" * 400 + b".5"
    spec_body = _render(_put(DIGITS_SPEC, "training.optimizer.learning_rate"),
                        Fragment(literal, True))
    error = assert_error(served.post_json("/v1/jobs", spec_body))
    assert error["code"] == "invalid_json", error
    assert error["details"][0]["path"] == "training.optimizer.learning_rate", error
    assert error["details"][0]["type"] == "json_number_out_of_range", error
    predict_body = _render(_put(VALID_SAMPLE, "inputs[0][5]"), Fragment(literal, True))
    response = served.post_json(served.predict_url, predict_body)
    error = assert_error(response)
    assert response.status_code == 422 and error["code"] == "invalid_input", error
    assert error["details"][0]["path"] == "inputs", error
    assert error["details"][0]["type"] == "not_finite", error


def test_the_server_still_answers_afterwards(served: Served) -> None:
    assert served.client.get("/readyz").status_code == 200
    response = served.client.post(served.predict_url, json=VALID_SAMPLE)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 1


_header_noise = st.text(st.sampled_from(list(" \t;,=\"()/+\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0aJx")),
                        max_size=4)


@EXAMPLES
@given(before=_header_noise, media_type=st.sampled_from(["application/json", "Application/JSON",
                                                         "application/problem+json"]),
       after=_header_noise)
def test_no_content_type_lets_a_body_past_the_strict_check(served: Served, before: str,
                                                           media_type: str, after: str) -> None:
    """A Content-Type FastAPI reads as JSON gets the strict check (here: a 422 for a duplicate
    key), any other a 415: FastAPI's lenient parser never sees an unchecked body (it took
    "application/json\\x1c", which our own reading of the header did not)."""
    body = b'{"name": "first", ' + json.dumps(DIGITS_SPEC).encode()[1:]
    response = served.client.post("/v1/jobs", content=body, headers={
        "content-type": (before + media_type + after).encode("latin-1")})
    error = assert_error(response)
    if response.status_code == 415:
        assert error["code"] == "unsupported_media_type", error
    else:
        assert response.status_code == 422 and error["code"] == "invalid_json", error
        assert error["details"][0] == {"path": "name", "message": "duplicate key 'name'",
                                       "type": "json_duplicate_key"}, error
