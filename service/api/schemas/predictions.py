"""Prediction request and response."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FlatSample = list[float]
ImageSample = list[list[list[float]]]


class PredictRequest(BaseModel):
    # Strict: numbers only, as the schema says (no "1.5" strings, no booleans).
    model_config = ConfigDict(extra="forbid", strict=True)

    inputs: Annotated[list[FlatSample] | list[ImageSample], Field(
        min_length=1, description="a batch of samples shaped like the model's input_shape: "
                                  "[features] or [channels, height, width]")]


class PredictResponse(BaseModel):
    predictions: list[int]
    probabilities: list[list[float]]
