"""The job spec's DropConnect and curriculum-schedule fields, and what reaches the engine."""

import copy

import pytest
from pydantic import ValidationError

from service.engine.network import build_network
from service.engine.training import TrainingConfig
from service.jobs.specs import JobSpec
from tests.factories import DIGITS_SPEC, spec


def with_dropconnect(rate: object) -> dict:
    result = copy.deepcopy(DIGITS_SPEC)
    result["model"]["layers"][0]["dropconnect"] = rate
    return result


def test_dropconnect_and_the_curriculum_schedule_reach_the_engine():
    accepted = JobSpec.model_validate({
        **with_dropconnect(0.3),
        "training": spec(dropout_schedule={"type": "curriculum", "gamma": 0.05})["training"]})
    layers = accepted.engine_layers()
    assert layers[0]["dropconnect"] == 0.3
    assert "dropconnect" not in layers[2]  # unset: the engine's default, out of the config
    network = build_network(layers, accepted.model.input_shape, seed=0)
    assert network.layers[0].dropconnect == 0.3
    config = TrainingConfig.from_dict(accepted.engine_training())
    assert config.dropout_schedule == {"type": "curriculum", "gamma": 0.05}
    assert accepted.stored()["training"]["dropout_schedule"] == {"type": "curriculum",
                                                                 "gamma": 0.05}


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.3", True])
def test_bad_dropconnect_names_the_layer_field(rate):
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(with_dropconnect(rate))
    locations = [error["loc"] for error in info.value.errors()]
    assert ("model", "layers", 0, "dense", "dropconnect") in locations


@pytest.mark.parametrize("schedule", [{"type": "curriculum"},
                                      {"type": "curriculum", "gamma": 0},
                                      {"type": "curriculum", "gamma": -1.0},
                                      {"type": "curriculum", "gamma": "0.1"}])
def test_bad_curriculum_gamma_names_the_field(schedule):
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate(spec(dropout_schedule=schedule))
    locations = [error["loc"] for error in info.value.errors()]
    assert ("training", "dropout_schedule", "curriculum", "gamma") in locations
