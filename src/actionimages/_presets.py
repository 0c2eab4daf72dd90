"""One lookup for every family of named presets (openpi's idiom): a dict of frozen configs.

PRESETS = {"debug": ModelConfig(...), "tiny": ModelConfig(...)}
cfg = lookup(PRESETS, "tinny", "model")   # ValueError: ... did you mean 'tiny'?
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def lookup(presets: Mapping[str, T], name: str, kind: str) -> T:
    """``presets[name]``, or a one-line ValueError suggesting the closest name."""
    if name in presets:
        return presets[name]
    close = difflib.get_close_matches(str(name), list(presets), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown {kind} preset {name!r}{hint} (presets: {', '.join(sorted(presets))})"
    )
