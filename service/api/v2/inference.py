"""One inference request from its bytes to its answer's bytes, for the infer route and its
fast path (FastInfer): read (strict JSON, the schema, the tensors), then encode the serving
answer as the protocol's response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from service.errors import InvalidInput

from ..json_body import parse
from .schemas import InferenceRequest, OutputName
from .tensors import encode_response, input_array, output_arrays, requested_outputs, split_body

VERSION = "1"
"""A job has one trained model: its one version."""


@dataclass(frozen=True)
class Inference:
    """A read inference request: `batch` (rows, *shape) in the input's datatype, the
    outputs to answer (name, as binary data), and the MC-dropout parameters (0: none)."""

    request_id: str | None
    batch: np.ndarray
    outputs: list[tuple[OutputName, bool]]
    mc_samples: int
    seed: int


def read(body: bytes, header_length: str | None) -> Inference:
    """The request in `body` (JSON, or a JSON header of `header_length` bytes and binary
    tensor data after it). InvalidInput or RequestValidationError naming the field."""
    header, binary = split_body(body, header_length)
    document, problem = parse(header)
    if problem is not None:
        raise InvalidInput("the inference request is not strict JSON", [problem])
    try:
        request = InferenceRequest.model_validate(document)
    except ValidationError as error:
        raise RequestValidationError(
            [{**detail, "loc": ("body", *detail["loc"])} for detail in error.errors()],
            body=document) from None
    outputs = requested_outputs(request)
    parameters = request.parameters
    return Inference(request_id=request.id, batch=input_array(request, binary),
                     outputs=outputs, mc_samples=parameters.mc_samples if parameters else 0,
                     seed=parameters.seed if parameters else 0)


def encode(model_name: str, inference: Inference,
           answer: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """(the response body, its headers) for the serving `answer` to `inference`: JSON, or
    application/octet-stream with Inference-Header-Content-Length when an output is binary."""
    header: dict[str, Any] = {"model_name": model_name, "model_version": VERSION}
    if inference.request_id is not None:
        header["id"] = inference.request_id
    if inference.mc_samples:
        header["parameters"] = {"mc_samples": inference.mc_samples}
    content, json_length = encode_response(header, output_arrays(answer), inference.outputs)
    if json_length is None:
        return content, {"content-type": "application/json"}
    return content, {"content-type": "application/octet-stream",
                     "inference-header-content-length": str(json_length)}
