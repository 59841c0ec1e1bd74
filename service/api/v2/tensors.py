"""Tensors in and out of the protocol: the JSON tensor format (data flat or nested, row-major)
and the binary tensor data extension (raw little-endian bytes after the JSON header).

    input  {"name": "input", "shape": [rows, *input_shape], "datatype": "FP32", "data": [...]}
    output {"name": "probabilities", "shape": [rows, classes], "datatype": "FP32", "data": [...]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import ErrorDetail, InvalidInput

from .schemas import InferenceRequest, OutputName

HEADER_LENGTH = "inference-header-content-length"
"""The binary extension's header: how many leading bytes of the body (or answer) are JSON."""
DATATYPES: dict[str, np.dtype] = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"),
                              "INT64": np.dtype("<i8")}
DETERMINISTIC_OUTPUTS: tuple[OutputName, ...] = ("probabilities", "predictions")
UNCERTAINTY_OUTPUTS: tuple[OutputName, ...] = ("entropy", "mutual_information", "std")
OUTPUT_DATATYPES: dict[OutputName, str] = {
    "probabilities": "FP32", "predictions": "INT64", "entropy": "FP32",
    "mutual_information": "FP32", "std": "FP32"}


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """(the JSON header, the binary tensor data after it); all JSON without the header."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 <= length <= len(body):
        raise InvalidInput("invalid Inference-Header-Content-Length", [ErrorDetail(
            "Inference-Header-Content-Length", "must be the length of the body's JSON header",
            expected=f"an integer from 0 to the body's {len(body)} bytes",
            received=header_length[:40])])
    return body[:length], body[length:]


def input_array(request: InferenceRequest, binary: bytes) -> np.ndarray:
    """The request's input as an array of its declared shape and datatype, from its JSON data
    or its binary data. InvalidInput naming the field otherwise."""
    tensor = request.inputs[0]
    dtype = DATATYPES[tensor.datatype]
    count = math.prod(tensor.shape)
    if tensor.shape[0] < 1:
        raise _invalid("inputs[0].shape", "the batch axis holds the rows: at least one",
                       "a shape [rows, ...] with rows >= 1", tensor.shape)
    size = tensor.parameters.binary_data_size if tensor.parameters else None
    if size is not None:
        if tensor.data is not None:
            raise _invalid("inputs[0].data", "an input is sent as JSON data or as binary data, "
                           "not both", "no data with binary_data_size", "data")
        if size != len(binary) or size != count * dtype.itemsize:
            raise _invalid("inputs[0].parameters.binary_data_size",
                           "must be the bytes after the JSON header and fit the shape",
                           f"{count * dtype.itemsize} ({count} {tensor.datatype} values), "
                           f"with as many bytes after the header", size)
        return np.frombuffer(binary, dtype=dtype).reshape(tensor.shape)
    if binary:
        raise _invalid("inputs[0].parameters.binary_data_size",
                       "the body has bytes after its JSON header that no input claims",
                       "binary_data_size for binary data", f"{len(binary)} bytes")
    if tensor.data is None:
        raise _invalid("inputs[0].data", "the input has no data",
                       "data, or binary_data_size with binary data", None)
    values = _numbers(tensor.data)
    if values.size != count:
        raise _invalid("inputs[0].data", "the data must have as many values as the shape",
                       f"{count} values for shape {tensor.shape}", values.size)
    with np.errstate(over="ignore"):  # too large for FP32: refused later as not finite
        return values.astype(dtype).reshape(tensor.shape)


def _numbers(data: list[Any]) -> np.ndarray:
    try:
        values = np.asarray(data)
    except ValueError:  # ragged nesting
        values = None
    if values is None:
        received = "ragged lists"
    elif values.dtype.kind not in "iuf":
        received = f"{values.dtype.kind!r}-kind values (booleans, strings, nulls or mixed)"
    elif _has_boolean(data):
        received = "booleans among the numbers"
    else:
        return values
    raise _invalid("inputs[0].data", "must be numbers, flat or nested in equal rows",
                   "JSON numbers in row-major order", received)


def _has_boolean(data: list[Any]) -> bool:
    """Whether nested lists hold a JSON true or false, which numpy reads as 1 and 0 among
    numbers. Element types are collected at C speed, one set per innermost list."""
    stack = [data]
    while stack:
        items = stack.pop()
        types = set(map(type, items))
        if bool in types:
            return True
        if list in types:
            stack.extend(item for item in items if type(item) is list)
    return False


def _invalid(path: str, message: str, expected: str, received: Any) -> InvalidInput:
    return InvalidInput(f"invalid tensor {path}", [ErrorDetail(
        path, message, expected=expected, received=received)])


def requested_outputs(request: InferenceRequest) -> list[tuple[OutputName, bool]]:
    """(name, as binary data) of each output to answer, in the order asked for; every
    available one (in the order of OUTPUT_DATATYPES) when the request names none."""
    mc = request.parameters is not None and request.parameters.mc_samples > 0
    available = DETERMINISTIC_OUTPUTS + (UNCERTAINTY_OUTPUTS if mc else ())
    if request.outputs is None:
        binary = request.parameters is not None and request.parameters.binary_data_output
        return [(name, binary) for name in available]
    names = [output.name for output in request.outputs]
    for index, name in enumerate(names):
        if name not in available:
            raise _invalid(f"outputs[{index}].name", "this output needs MC dropout",
                           "parameters.mc_samples > 0, or one of " + ", ".join(available), name)
        if name in names[:index]:
            raise _invalid(f"outputs[{index}].name", "each output may be asked for once",
                           "distinct names", name)
    return [(output.name, output.parameters is not None and output.parameters.binary_data)
            for output in request.outputs]


def output_arrays(answer: dict[str, Any]) -> dict[OutputName, np.ndarray]:
    """The serving answer ({"predictions", "probabilities"} and, with MC dropout, "entropy",
    "mutual_information", "std") as arrays of the outputs' datatypes."""
    return {name: np.asarray(answer[name], dtype=DATATYPES[OUTPUT_DATATYPES[name]])
            for name in OUTPUT_DATATYPES if name in answer}


def encode_response(header: dict[str, Any], arrays: dict[OutputName, np.ndarray],
                    outputs: Sequence[tuple[OutputName, bool]]) -> tuple[bytes, int | None]:
    """(the response body, the length of its JSON header when binary data follows it, else
    None): `header` ({"model_name", ...}) with an "outputs" list in the order of `outputs`."""
    tensors, chunks = [], []
    for name, binary in outputs:
        array = arrays[name]
        tensor: dict[str, Any] = {"name": name, "datatype": OUTPUT_DATATYPES[name],
                                  "shape": list(array.shape)}
        if binary:
            raw = array.tobytes()
            tensor["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            tensor["data"] = array.ravel().tolist()
        tensors.append(tensor)
    text = json.dumps({**header, "outputs": tensors}, separators=(",", ":")).encode()
    if not chunks:
        return text, None
    return b"".join([text, *chunks]), len(text)
