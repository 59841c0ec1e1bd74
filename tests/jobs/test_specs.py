"""service.jobs.specs: checkpoint defaults written in once, at submission; the built-in data
specs tied to the engine's table of datasets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.engine.datasets import BUILTIN_DATASETS, MAX_SAMPLES, SPLIT_PARAMETERS
from service.jobs.specs import BlobsData, DigitsData, JobSpec, SpiralsData, XorData
from tests.factories import spec


def test_checkpoint_defaults_fill_only_what_the_client_left_out() -> None:
    given = JobSpec.model_validate(spec(checkpoint={"every_iterations": 25}))
    filled = given.with_checkpoint_defaults(1000, 30.0)
    assert filled.training.checkpoint.intervals() == (25, 30.0)
    assert filled.stored()["training"]["checkpoint"] == {"every_iterations": 25,
                                                         "every_seconds": 30.0}
    assert given.training.checkpoint.every_seconds is None  # the original is not changed


def test_an_unresolved_policy_has_no_intervals() -> None:
    policy = JobSpec.model_validate(spec(checkpoint={"every_seconds": 5})).training.checkpoint
    with pytest.raises(ValueError, match=r"not resolved at submission.*'every_seconds': 5"):
        policy.intervals()


BUILTIN_MODELS = {"digits": DigitsData, "spirals": SpiralsData, "blobs": BlobsData,
                  "xor": XorData}
JSON_TYPES = {int: "integer", float: "number"}


def test_every_builtin_dataset_has_a_spec_model() -> None:
    assert set(BUILTIN_MODELS) == set(BUILTIN_DATASETS)


@pytest.mark.parametrize("dataset", sorted(BUILTIN_MODELS))
def test_a_data_spec_takes_exactly_the_engine_parameters(dataset: str) -> None:
    """The engine's table decides each field's default and bounds; the model names the fields
    and their types, so a parameter added to the table must be added here too."""
    model = BUILTIN_MODELS[dataset]
    params = BUILTIN_DATASETS[dataset]["params"] + SPLIT_PARAMETERS
    assert set(model.model_fields) - {"dataset"} == {param["name"] for param in params}
    schema = model.model_json_schema()["properties"]
    for param in params:
        field = model.model_fields[param["name"]]
        assert JSON_TYPES[field.annotation] == param["type"], param["name"]
        assert field.default == param["default"], param["name"]
        bounds = schema[param["name"]]["minimum"], schema[param["name"]]["maximum"]
        assert bounds == (param["minimum"], param["maximum"]), param["name"]


@pytest.mark.parametrize("dataset", ["spirals", "blobs", "xor"])
def test_a_parameter_past_the_engine_bound_is_refused_by_name(dataset: str) -> None:
    [n_samples] = [p for p in BUILTIN_DATASETS[dataset]["params"] if p["name"] == "n_samples"]
    model = BUILTIN_MODELS[dataset]
    assert model.model_validate({"dataset": dataset,
                                 "n_samples": n_samples["maximum"]}).n_samples == MAX_SAMPLES
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"dataset": dataset, "n_samples": n_samples["maximum"] + 1})
    assert [error["loc"] for error in caught.value.errors()] == [("n_samples",)]
