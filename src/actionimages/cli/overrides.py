"""``--set KEY=VALUE`` overrides of a frozen config dataclass, shared by the CLI groups."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


def parse_overrides(items: list[str], config_cls: type) -> dict[str, Any]:
    """``["lr=1e-4", "betas=[0.9,0.99]"]`` -> ``{"lr": 1e-4, "betas": (0.9, 0.99)}``.

    Values are parsed as JSON (lists become tuples, as the frozen configs store them); a
    value that is not JSON is kept as a bare string. A dotted key reaches into a field
    that is itself a config (``model.num_layers=6`` -> ``{"model": {"num_layers": 6}}``);
    :func:`apply_overrides` applies such a dict. Unknown keys are a ``ValueError``.
    """
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value  # a bare string
        parsed = tuple(parsed) if isinstance(parsed, list) else parsed
        cls, target, path = config_cls, values, key.split(".")
        for depth, name in enumerate(path):
            defaults = {f.name: f.default for f in dataclasses.fields(cls)}
            if not sep or name not in defaults:
                raise ValueError(
                    f"--set expects KEY=VALUE with KEY a {cls.__name__} field, got {item!r}"
                )
            if depth == len(path) - 1:
                nested = dataclasses.is_dataclass(defaults[name])
                # a whole nested config given by preset name, e.g. model=tiny-lowdim
                target[name] = parsed if nested else _typed(key, parsed, defaults[name])
            else:
                if not dataclasses.is_dataclass(defaults[name]):
                    raise ValueError(f"--set {key}: {name} is not a nested config")
                cls, target = type(defaults[name]), target.setdefault(name, {})
    return values


def apply_overrides(config: Any, values: dict[str, Any]) -> Any:
    """``config`` with :func:`parse_overrides` values replaced, nested configs included."""
    changes = {}
    for name, value in values.items():
        current = getattr(config, name)
        if isinstance(value, dict) and dataclasses.is_dataclass(current):
            value = apply_overrides(current, value)
        changes[name] = value
    return dataclasses.replace(config, **changes)


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
