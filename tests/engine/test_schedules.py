import math

import numpy as np
import pytest

from service.engine.errors import SpecError
from service.engine.schedules import build_dropout_schedule, build_lr_schedule


def test_seed_step_schedule_lowers_by_0_1_every_n_with_floor_0_1():
    schedule = build_dropout_schedule({"type": "step", "every": 100, "delta": -0.1, "min": 0.1})
    rates = [schedule(t, 0.5, 1000) for t in (0, 99, 100, 199, 200, 300, 400, 900)]
    assert rates == pytest.approx([0.5, 0.5, 0.4, 0.4, 0.3, 0.2, 0.1, 0.1])


def test_step_schedule_is_relative_to_each_layers_rate_and_clamped_above():
    schedule = build_dropout_schedule({"type": "step", "every": 10, "delta": 0.2, "max": 0.6})
    assert schedule(10, 0.2, 100) == pytest.approx(0.4)
    assert schedule(10, 0.5, 100) == pytest.approx(0.6)
    assert schedule(50, 0.1, 100) == pytest.approx(0.6)


def test_linear_schedule_is_absolute_and_holds_its_end():
    schedule = build_dropout_schedule({"type": "linear", "from": 0.5, "to": 0.1})
    assert schedule(0, 0.9, 100) == pytest.approx(0.5)
    assert schedule(50, 0.9, 100) == pytest.approx(0.3)
    assert schedule(100, 0.9, 100) == pytest.approx(0.1)
    short = build_dropout_schedule({"type": "linear", "from": 0.5, "to": 0.0, "iterations": 10})
    assert short(20, 0.5, 100) == 0.0


def test_constant_schedules():
    assert build_dropout_schedule(None)(500, 0.3, 1000) == 0.3
    assert build_lr_schedule({"type": "constant"})(500, 0.1, 1000) == 0.1


def test_lr_step_and_cosine():
    step = build_lr_schedule({"type": "step", "every": 100, "gamma": 0.5})
    assert [step(t, 0.8, 1000) for t in (0, 100, 250)] == pytest.approx([0.8, 0.4, 0.2])
    cosine = build_lr_schedule({"type": "cosine", "min_learning_rate": 0.01})
    assert cosine(0, 0.1, 100) == pytest.approx(0.1)
    assert cosine(50, 0.1, 100) == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi / 2)) / 2)
    assert cosine(100, 0.1, 100) == pytest.approx(0.01)


@pytest.mark.parametrize(("builder", "spec", "field"), [
    (build_dropout_schedule, {"type": "step", "delta": -0.1}, "dropout_schedule.every"),
    (build_dropout_schedule, {"type": "step", "every": 0, "delta": -0.1}, "dropout_schedule.every"),
    (build_dropout_schedule, {"type": "step", "every": 5, "delta": -0.1, "min": 0.8, "max": 0.2},
     "dropout_schedule.min"),
    (build_dropout_schedule, {"type": "linear", "to": 0.1}, "dropout_schedule.from"),
    (build_dropout_schedule, {"type": "linear", "from": 1.2, "to": 0.1}, "dropout_schedule.from"),
    (build_dropout_schedule, {"type": "exponential"}, "dropout_schedule.type"),
    (build_dropout_schedule, {"type": "curriculum"}, "dropout_schedule.gamma"),
    (build_dropout_schedule, {"type": "curriculum", "gamma": 0}, "dropout_schedule.gamma"),
    (build_dropout_schedule, {"type": "curriculum", "gamma": -0.5}, "dropout_schedule.gamma"),
    (build_dropout_schedule, {"type": "curriculum", "gamma": float("inf")},
     "dropout_schedule.gamma"),
    (build_dropout_schedule, {"type": "curriculum", "gamma": "0.1"}, "dropout_schedule.gamma"),
    (build_dropout_schedule, {"type": "curriculum", "gamma": 0.1, "rate": 0.5},
     "dropout_schedule.rate"),
    (build_lr_schedule, {"type": "step", "every": 10, "gamma": 0}, "lr_schedule.gamma"),
    (build_lr_schedule, {"type": "cosine", "warm": 1}, "lr_schedule.warm"),
])
def test_invalid_specs_name_the_field(builder, spec, field):
    with pytest.raises(SpecError) as info:
        builder(spec)
    assert info.value.field == field


def test_curriculum_schedule_rises_from_zero_towards_each_layers_rate():
    schedule = build_dropout_schedule({"type": "curriculum", "gamma": 0.01})
    assert schedule(0, 0.5, 1000) == 0.0
    for t in (1, 10, 100, 250, 1000):
        assert schedule(t, 0.5, 1000) == pytest.approx(0.5 * (1 - math.exp(-0.01 * t)),
                                                       rel=1e-12)
        assert schedule(t, 0.2, 1000) == pytest.approx(0.2 * (1 - math.exp(-0.01 * t)),
                                                       rel=1e-12)
    rates = [schedule(t, 0.5, 1000) for t in range(0, 1500, 50)]
    assert np.all(np.diff(rates) > 0)
    assert 0.5 - 1e-9 < schedule(10**9, 0.5, 1000) <= 0.5
    assert schedule.config() == {"type": "curriculum", "gamma": 0.01}


def test_curriculum_schedule_with_the_papers_gamma_reaches_the_rate_by_the_end():
    total = 2000
    schedule = build_dropout_schedule({"type": "curriculum", "gamma": 10 / total})
    assert schedule(total, 0.5, total) == pytest.approx(0.5, rel=1e-4)
    assert schedule(total // 10, 0.5, total) == pytest.approx(0.5 * (1 - math.exp(-1)))
