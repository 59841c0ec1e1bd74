"""Turning spec dicts (the job spec's plain JSON objects) into constructor calls."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import SpecError

T = TypeVar("T")


def call_with_spec(factory: Callable[..., T], spec: dict[str, Any], *, prefix: str = "",
                   ignore: tuple[str, ...] = ("type",)) -> T:
    """factory(**spec without `ignore` keys), with SpecErrors for unknown and missing fields.

    Field names in errors get `prefix` (e.g. "optimizer.") so they point into the spec.
    """
    parameters = inspect.signature(factory).parameters
    accepted = {name for name, p in parameters.items()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    kwargs = {key: value for key, value in spec.items() if key not in ignore}
    for key in kwargs:
        if key not in accepted:
            raise SpecError("unknown field", field=f"{prefix}{key}",
                            expected="one of " + ", ".join(sorted(accepted)), received=key)
    for name, parameter in parameters.items():
        if name in accepted and parameter.default is inspect.Parameter.empty and name not in kwargs:
            raise SpecError("field required", field=f"{prefix}{name}")
    try:
        return factory(**kwargs)
    except SpecError as error:
        raise SpecError(error.message, layer_index=error.layer_index,
                        field=f"{prefix}{error.field}" if error.field else prefix.rstrip(".")
                        or None,
                        expected=error.expected, received=error.received) from None
