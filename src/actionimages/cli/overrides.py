"""``--set KEY=VALUE`` overrides of a frozen config dataclass, shared by the CLI groups."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


def parse_overrides(items: list[str], config_cls: type) -> dict[str, Any]:
    """``["lr=1e-4", "betas=[0.9,0.99]"]`` -> ``{"lr": 1e-4, "betas": (0.9, 0.99)}``.

    Values are parsed as JSON (lists become tuples, as the frozen configs store them); a
    value that is not JSON is kept as a bare string. Unknown keys are a ``ValueError``.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in defaults:
            raise ValueError(
                f"--set expects KEY=VALUE with KEY a {config_cls.__name__} field, got {item!r}"
            )
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value  # a bare string
        values[key] = _typed(key, tuple(parsed) if isinstance(parsed, list) else parsed,
                             defaults[key])  # fmt: skip
    return values


def _typed(key: str, value: Any, default: Any) -> Any:
    """Check a parsed value against the field's default type (numbers stay numbers)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"--set {key} expects true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"--set {key} expects an integer, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, str):  # "nan", "inf": numbers JSON does not spell
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"--set {key} expects a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"--set {key} expects a number, got {value!r}")
        value = float(value)
    return value
