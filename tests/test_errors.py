"""service.errors: the engine's refusals become API error details at the request's path."""

from __future__ import annotations

from service.engine.errors import SpecError
from service.errors import ErrorDetail, spec_detail


def test_a_spec_error_keeps_its_message_expected_and_received_at_the_given_path() -> None:
    error = SpecError("invalid value", field="decay", expected="a number in (0, 1]",
                      received=1.5)
    assert spec_detail(error, "training.lr_schedule.decay") == ErrorDetail(
        "training.lr_schedule.decay", "invalid value", type="invalid",
        expected="a number in (0, 1]", received=1.5)
