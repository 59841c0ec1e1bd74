"""The protocol's JSON objects: server and model metadata, readiness, inference request and
response (KServe V2 / Triton HTTP), for dropnet's one-input classifier models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.engine.uncertainty import MAX_MC_SAMPLES

INPUT_NAME = "input"
"""A model's one input tensor (as in the ONNX export)."""
Datatype = Literal["FP32", "FP64"]
OutputName = Literal["probabilities", "predictions", "entropy", "mutual_information", "std"]
MAX_RANK = 8
"""Most dimensions of an input tensor: the batch axis and a sample of up to rank 3, with room."""


class _Strict(BaseModel):
    # Numbers are numbers and unknown fields are refused, as in /v1.
    model_config = ConfigDict(extra="forbid", strict=True)


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = Field(description="protocol extensions this server implements")


class ServerLiveness(BaseModel):
    live: bool


class ServerReadiness(BaseModel):
    ready: bool


class ModelReadiness(BaseModel):
    name: str
    ready: bool


class MetadataTensor(BaseModel):
    name: str
    datatype: str = Field(description="FP32, FP64 or INT64")
    shape: list[int] = Field(description="-1 for the batch axis")


class ModelMetadata(BaseModel):
    name: str = Field(description="the job's id")
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor] = Field(description=(
        "probabilities and predictions always; entropy, mutual_information and std when the "
        "request's parameters ask for MC dropout (mc_samples > 0)"))


class InputParameters(_Strict):
    binary_data_size: int | None = Field(None, ge=0, description=(
        "binary tensor data extension: the input's bytes (little-endian) follow the JSON "
        "header, whose length the Inference-Header-Content-Length header gives"))


class RequestInput(_Strict):
    name: Literal["input"]
    shape: Annotated[list[Annotated[int, Field(ge=0)]], Field(
        min_length=1, max_length=MAX_RANK,
        description="[rows, *the model's input shape]")]
    datatype: Datatype
    parameters: InputParameters | None = None
    data: list[Any] | None = Field(None, description=(
        "numbers in row-major order, flat or nested; absent when binary_data_size is given"))


class OutputParameters(_Strict):
    binary_data: bool = Field(False, description="answer this output as binary tensor data")


class RequestOutput(_Strict):
    name: OutputName
    parameters: OutputParameters | None = None


class InferenceParameters(_Strict):
    mc_samples: int = Field(0, ge=0, le=MAX_MC_SAMPLES, description=(
        "Monte-Carlo dropout: T > 0 forwards with dropout on; probabilities and predictions "
        "are then the mean's, and entropy, mutual_information and std are available"))
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the MC-dropout masks")
    binary_data_output: bool = Field(False, description=(
        "answer every output as binary tensor data (when no outputs are named)"))


class InferenceRequest(_Strict):
    id: str | None = Field(None, max_length=256, description="echoed in the response")
    parameters: InferenceParameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1,
                                       description=f"one tensor named {INPUT_NAME!r}")
    outputs: list[RequestOutput] | None = Field(None, max_length=5, description=(
        "the outputs to answer, each at most once; absent: all available"))


class ResponseOutput(BaseModel):
    name: OutputName
    shape: list[int]
    datatype: Literal["FP32", "INT64"]
    parameters: dict[str, int] | None = None
    data: list[float] | list[int] | None = Field(None, description=(
        "row-major, flat; absent for a binary output"))


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str | None = None
    parameters: dict[str, int] | None = None
    outputs: list[ResponseOutput]


class ProtocolError(BaseModel):
    error: str
