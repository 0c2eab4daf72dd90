"""NumPy/torch interoperability: one implementation, two array types.

Every numerical routine in the package is written once, in torch. The
:func:`numpy_or_torch` decorator lets it accept NumPy arrays too: NumPy inputs are
converted to float64 tensors on the CPU and every tensor in the result is converted
back, so NumPy in -> NumPy out and torch in -> torch out (on the input's device).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

F = TypeVar("F", bound=Callable[..., Any])


def is_torch(*values: Any) -> bool:
    """True if any of ``values`` is a torch tensor."""
    return any(isinstance(v, torch.Tensor) for v in values)


def as_tensor(
    x: Any, *, dtype: torch.dtype | None = None, device=None, copy: bool = True
) -> torch.Tensor:
    """Convert an array-like to a tensor, keeping its dtype unless ``dtype`` is given.

    ``copy=False`` shares a writable NumPy array's memory (for callers that only read it);
    a read-only one is still copied. Raises ValueError (not TypeError) for non-numeric or
    ragged input.
    """
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype or x.dtype, device=device or x.device)
    try:
        arr = np.asarray(x)
    except ValueError as err:  # ragged nested sequences
        raise ValueError(f"expected a numeric array, got {type(x).__name__}: {err}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"expected a numeric array, got dtype {arr.dtype} of shape {arr.shape}")
    if copy or not arr.flags.writeable or any(st < 0 for st in arr.strides):
        arr = np.array(arr, copy=True)  # a copy: the caller's array may be read-only
    t = torch.from_numpy(arr)
    return t.to(dtype=dtype or t.dtype, device=device)


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple):
        return (
            type(value)(*(_to_numpy(v) for v in value))
            if hasattr(value, "_fields")
            else (tuple(_to_numpy(v) for v in value))
        )
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def numpy_or_torch(fn: F) -> F:
    """Run a torch implementation on NumPy arrays as well (see module docstring).

    Positional and keyword arguments that are NumPy arrays become float64 tensors
    (integer and bool arrays keep their kind). If no argument was a tensor, every
    tensor in the result (also inside tuples, lists and dicts) is turned back into
    a NumPy array.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        torch_mode = is_torch(*args, *kwargs.values())

        def convert(v):
            if isinstance(v, np.ndarray):
                # A copy: torch.from_numpy needs a writable buffer (a Camera's arrays are
                # read-only), and float inputs become float64.
                dtype = np.float64 if v.dtype.kind in "fc" else v.dtype
                return torch.from_numpy(np.array(v, dtype=dtype, copy=True))
            return v

        out = fn(*(convert(a) for a in args), **{k: convert(v) for k, v in kwargs.items()})
        return out if torch_mode else _to_numpy(out)

    return wrapper  # type: ignore[return-value]


def check_finite(name: str, x: torch.Tensor | np.ndarray) -> None:
    """Raise a ValueError naming ``name`` if it holds NaN or inf."""
    t = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
    # A sum is finite iff every term is, unless finite terms overflow: one streaming pass,
    # no (N,) bool temporary; only a non-finite sum pays for the exact element-wise check.
    ok = not t.is_floating_point() or bool(torch.isfinite(t.sum()))
    if not ok:
        ok = bool(torch.isfinite(t).all())
    if not ok:
        raise ValueError(f"{name} contains NaN or inf; clean or mask the input before calling")


def check_shape(name: str, x: Any, shape: tuple[int | None, ...]) -> None:
    """Raise a ValueError unless ``x.shape`` matches ``shape`` (None matches any size)."""
    got = tuple(x.shape)
    if len(got) != len(shape) or any(
        s is not None and s != g for s, g in zip(shape, got, strict=False)
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {got}")
