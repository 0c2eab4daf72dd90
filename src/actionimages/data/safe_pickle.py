"""An allow-list unpickler: pickles are data from strangers (SPEC section 5).

``pickle.load`` imports and calls whatever a file names, so a crafted file runs code.
This unpickler resolves only the classes it is given (plus NumPy's array
reconstruction); any other name is refused before anything is imported.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


class UnsafePickleError(ValueError):
    """The pickle names a class or function that is not on the allow-list."""


def _numpy_globals() -> dict[tuple[str, str], Any]:
    # NumPy 2 moved numpy.core to numpy._core; old pickles use the old names.
    from numpy._core import multiarray

    table = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(mod, "_reconstruct")] = multiarray._reconstruct
        table[(mod, "scalar")] = multiarray.scalar
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(mod, "_frombuffer")] = np.frombuffer
    return table


class AllowListUnpickler(pickle.Unpickler):
    """Unpickler that maps ``(module, name)`` pairs to allowed objects and refuses the rest."""

    def __init__(self, file, allowed: Mapping[tuple[str, str], Any], *, source: str = "pickle"):
        super().__init__(file)
        self._allowed = {**_numpy_globals(), **dict(allowed)}
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source} refers to {module}.{name}, which is not on the allow-list of "
                "classes this loader will create; refusing to load it (a pickle can run "
                "arbitrary code). If the file is trusted and the class is plain data, add "
                "it to the allow-list."
            ) from None


def safe_load(
    path_or_bytes: str | Path | bytes, allowed: Mapping[tuple[str, str], Any] = ()
) -> Any:
    """Load a pickle file (or bytes) through :class:`AllowListUnpickler`."""
    allowed = dict(allowed)
    if isinstance(path_or_bytes, bytes):
        return AllowListUnpickler(io.BytesIO(path_or_bytes), allowed).load()
    path = Path(path_or_bytes)
    if not path.is_file():
        raise FileNotFoundError(f"no such pickle file: {path}")
    with open(path, "rb") as f:
        try:
            return AllowListUnpickler(f, allowed, source=str(path)).load()
        except (pickle.UnpicklingError, EOFError) as err:
            raise ValueError(
                f"{path} is not a readable pickle ({err}); is the file truncated?"
            ) from err


class PlainRecord:
    """A stand-in for a pickled class: restores the instance ``__dict__`` and nothing else."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise UnsafePickleError(f"unexpected pickled state of type {type(state).__name__}")
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(sorted(self.__dict__))})"
