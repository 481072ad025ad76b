"""The one JSON sanitiser (core/utils/json_safe.py): strict JSON out of numpy, torch, paths and non-finite floats."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from core.utils.io_utils import atomic_write_json
from core.utils.json_safe import json_safe


def test_non_finite_floats_become_null_wherever_they_are():
    value = {
        "nan": math.nan,
        "inf": math.inf,
        "-inf": -math.inf,
        "ok": 1.5,
        "nested": [np.float32("nan"), (np.float64(np.inf), 2.0)],
        "array": np.array([1.0, np.nan]),
    }
    safe = json_safe(value)
    assert safe == {
        "nan": None,
        "inf": None,
        "-inf": None,
        "ok": 1.5,
        "nested": [None, [None, 2.0]],
        "array": [1.0, None],
    }
    json.dumps(safe, allow_nan=False)  # strict JSON: would raise on any NaN left


def test_numpy_torch_and_paths_become_plain_types():
    safe = json_safe(
        {
            "i": np.int64(3),
            "b": np.bool_(True),
            "f": np.float32(0.5),
            "a": np.arange(4).reshape(2, 2),
            "t": torch.tensor([1.0, float("inf")]),
            "t0": torch.tensor(2),
            "p": Path("a") / "b.ply",
            np.int32(7): "numpy key",
            ("x", 1): "tuple key",
            None: "none",
            "s": "text",
            "n": None,
        }
    )
    assert safe == {
        "i": 3,
        "b": True,
        "f": 0.5,
        "a": [[0, 1], [2, 3]],
        "t": [1.0, None],
        "t0": 2,
        "p": str(Path("a") / "b.ply"),
        7: "numpy key",
        "('x', 1)": "tuple key",
        None: "none",
        "s": "text",
        "n": None,
    }
    assert type(safe["i"]) is int and type(safe["b"]) is bool and type(safe["f"]) is float
    json.dumps(safe, allow_nan=False)


def test_what_json_cannot_hold_still_fails_loudly():
    with pytest.raises(TypeError, match="set"):
        json.dumps(json_safe({"s": {1, 2}}))


def test_atomic_write_json_writes_strict_json(tmp_path):
    path = atomic_write_json(tmp_path / "out.json", {"psnr": math.inf, "cd": np.float32("nan"), "p": tmp_path})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"psnr": None, "cd": None, "p": str(tmp_path)}
