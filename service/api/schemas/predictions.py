"""Prediction request and response."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from service.engine.uncertainty import MAX_MC_SAMPLES

FlatSample = list[float]
ImageSample = list[list[list[float]]]


class PredictRequest(BaseModel):
    # Strict: numbers only, as the schema says (no "1.5" strings, no booleans).
    model_config = ConfigDict(extra="forbid", strict=True)

    inputs: Annotated[list[FlatSample] | list[ImageSample], Field(
        min_length=1, description="a batch of samples shaped like the model's input_shape: "
                                  "[features] or [channels, height, width]")]
    mc_samples: int = Field(0, ge=0, le=MAX_MC_SAMPLES, description=(
        "Monte-Carlo dropout: 0 (default) predicts deterministically; T > 0 runs T forwards "
        "with dropout on, each dropout layer at its rate at the end of training, and adds "
        "per-row uncertainty"))
    seed: int = Field(0, ge=0, le=2**32 - 1,
                      description="seed of the MC-dropout masks: same seed, same answer")


class PredictResponse(BaseModel):
    predictions: list[int] = Field(description="class per row (of the MC mean with mc_samples)")
    probabilities: list[list[float]] = Field(
        description="class probabilities per row (their MC mean with mc_samples)")
    class_names: list[str] | None = Field(
        None, description="each class's name by index (the columns of probabilities), when "
                          "the model was trained on image folders")
    mc_samples: int | None = Field(None, description="T, when MC dropout was asked for")
    entropy: list[float] | None = Field(
        None, description="predictive entropy of the mean probabilities, nats, per row")
    mutual_information: list[float] | None = Field(
        None, description="mutual information between prediction and weights (BALD), per row")
    std: list[list[float]] | None = Field(
        None, description="standard deviation of each class probability across the T samples")
