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
    fields = {f.name for f in dataclasses.fields(config_cls)}
    values: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(
                f"--set expects KEY=VALUE with KEY a {config_cls.__name__} field, got {item!r}"
            )
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value  # a bare string
        values[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return values
