"""Atomic writes: an interrupted write leaves the old file whole and no temporary file behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.utils.io_utils import atomic_save_npz, atomic_write, atomic_write_json


def test_interrupted_write_keeps_old_file(tmp_path):
    target = tmp_path / "manifest.json"
    atomic_write_json(target, {"version": 1})

    def crash(handle):
        handle.write(b'{"version": 2, "half')
        raise KeyboardInterrupt  # as if the process were stopped mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_npz_keeps_exact_name_and_plain_arrays(tmp_path):
    path = tmp_path / "shape.npz"
    atomic_save_npz(path, pos=np.ones((3, 4), np.float32), colour_path=np.asarray("texture"))
    with np.load(path) as data:
        assert data["pos"].shape == (3, 4)
        assert str(data["colour_path"]) == "texture"
