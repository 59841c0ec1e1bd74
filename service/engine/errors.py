"""Errors raised by the engine: invalid network specs and failed training."""

from __future__ import annotations

from typing import Any


class SpecError(ValueError):
    """An invalid layer spec or shape.

    Carries where the problem is (`layer_index`, `field`), what was expected and what was
    received, so that the service can point at `model.layers[i].field`.
    """

    def __init__(
        self,
        message: str,
        *,
        layer_index: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        received: Any = None,
    ) -> None:
        self.layer_index = layer_index
        self.field = field
        self.expected = expected
        self.received = received
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.layer_index is not None:
            where.append(f"layers[{self.layer_index}]")
        if self.field is not None:
            where.append(self.field)
        prefix = ".".join(where)
        text = f"{prefix}: {self.message}" if prefix else self.message
        if self.expected is not None:
            text += f". Expected {self.expected}"
            text += f". Received: {self.received!r}" if self.received is not None else ""
        return text

    def at_layer(self, index: int) -> SpecError:
        """The same error, located at layer `index` (for errors raised inside a layer)."""
        return SpecError(
            self.message,
            layer_index=index,
            field=self.field,
            expected=self.expected,
            received=self.received,
        )


class TrainingError(RuntimeError):
    """Training could not go on."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite at `iteration` (1-based)."""

    def __init__(self, iteration: int, value: float) -> None:
        self.iteration = iteration
        self.value = value
        super().__init__(f"loss is not finite at iteration {iteration} (loss={value})")
