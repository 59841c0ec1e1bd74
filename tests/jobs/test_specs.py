"""service.jobs.specs: checkpoint defaults written in once, at submission; the built-in data
specs refuse what the engine's table of datasets refuses (test_data_specs.py ties the fields)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.engine.datasets import BUILTIN_DATASETS, MAX_SAMPLES
from service.jobs.specs import BlobsData, JobSpec, SpiralsData, XorData
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


BUILTIN_MODELS = {"spirals": SpiralsData, "blobs": BlobsData, "xor": XorData}


@pytest.mark.parametrize("dataset", ["spirals", "blobs", "xor"])
def test_a_parameter_past_the_engine_bound_is_refused_by_name(dataset: str) -> None:
    [n_samples] = [p for p in BUILTIN_DATASETS[dataset]["params"] if p["name"] == "n_samples"]
    model = BUILTIN_MODELS[dataset]
    assert model.model_validate({"dataset": dataset,
                                 "n_samples": n_samples["maximum"]}).n_samples == MAX_SAMPLES
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"dataset": dataset, "n_samples": n_samples["maximum"] + 1})
    assert [error["loc"] for error in caught.value.errors()] == [("n_samples",)]
