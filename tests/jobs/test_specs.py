"""service.jobs.specs: checkpoint defaults are written into the spec once, at submission."""

from __future__ import annotations

import pytest

from service.jobs.specs import JobSpec
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
