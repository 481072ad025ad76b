"""Values as strict JSON: the one sanitiser every JSON file of the project is written through.

Why one: three copies had drifted apart (one wrote ``NaN`` into the file, which is not JSON and which
strict readers such as browsers and ``jq`` refuse; two wrote infinities as the strings ``"inf"``, which
turns a numeric column into a mixed one). Here every non-finite float becomes ``null``, the one value
every JSON reader takes as "no number".
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import numpy as np

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """``value`` in plain JSON types, for ``json.dumps(..., allow_nan=False)``.

    - float NaN / ±inf (also numpy and torch ones) → ``None``;
    - numpy scalars → Python numbers; numpy arrays and torch tensors → nested lists (on any device);
    - ``pathlib.Path`` (any ``os.PathLike``) → ``str``;
    - dicts → dicts, their keys strings or what ``json.dumps`` turns into strings itself (other keys go
      through ``str``, so a tuple key does not stop the write); lists and tuples → lists.

    Anything else is returned as it is, so ``json.dumps`` names the type it cannot write.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict):
        return {_key(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)) or _is_tensor(value):
        return json_safe(value.tolist())  # tolist gives Python scalars; NaN among them is caught above
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _key(key: Any) -> Any:
    """A dict key ``json.dumps`` accepts: str, int, float, bool, None as they are; numpy scalars as numbers."""
    if isinstance(key, np.generic):
        key = key.item()
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    return os.fspath(key) if isinstance(key, os.PathLike) else str(key)


def _is_tensor(value: Any) -> bool:
    """A torch tensor, without importing torch when nothing has (a plain JSON write stays light)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)
