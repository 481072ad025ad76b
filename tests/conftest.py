"""Shared fixtures: a small analytic data set (balls and slabs, coloured) written in the
project's data set format, and a tiny model trained on it by the project's own trainer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.data.normalization import Normalization
from core.data.samples import ShapeSamples, write_samples

CLASSES = {"ball": (0.9, 0.2, 0.2), "slab": (0.2, 0.3, 0.9)}


def _ball_sdf(p, size):
    return np.linalg.norm(p, axis=1) - size[0]


def _slab_sdf(p, size):
    q = np.abs(p) - np.asarray(size)
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0)


SHAPES = [  # (class, id, size, split)
    ("ball", "ball0", (0.55,), "train"),
    ("ball", "ball1", (0.7,), "train"),
    ("slab", "slab0", (0.7, 0.12, 0.5), "train"),
    ("slab", "slab1", (0.6, 0.08, 0.6), "train"),
    ("ball", "ball2", (0.62,), "test"),
    ("slab", "slab2", (0.65, 0.1, 0.55), "test"),
]


def _surface(cls, size, n, rng):
    if cls == "ball":
        nrm = rng.normal(size=(n, 3))
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
        return size[0] * nrm, nrm
    import trimesh

    box = trimesh.creation.box(extents=2 * np.asarray(size))
    pts, face = trimesh.sample.sample_surface(box, n, seed=int(rng.integers(1 << 30)))
    return pts, box.face_normals[face]


def write_analytic_dataset(root, n_samples=6000, n_surface=3000):
    """Analytic balls and thin slabs as DeepSDF sample files (written by core.data.samples) + manifest + splits."""
    rng = np.random.default_rng(0)
    records, splits = [], {"train": {"toy": {}}, "test": {"toy": {}}}
    for cls, sid, size, split in SHAPES:
        fn = _ball_sdf if cls == "ball" else _slab_sdf
        surf, nrm = _surface(cls, size, n_surface, rng)
        near = surf[rng.integers(0, len(surf), n_samples)] + rng.normal(scale=0.05, size=(n_samples, 3))
        uniform = rng.uniform(-1, 1, size=(n_samples // 4, 3))
        pts = np.concatenate([near, uniform]).astype(np.float32)
        sdf = fn(pts, size).astype(np.float32)
        rgb = np.tile(np.asarray(CLASSES[cls], np.float32), (len(pts), 1))
        pos = sdf >= 0
        rel = f"SdfSamples/toy/{cls}/{sid}.npz"
        write_samples(
            root / rel,
            ShapeSamples(
                pos=np.c_[pts[pos], sdf[pos]],
                neg=np.c_[pts[~pos], sdf[~pos]],
                pos_rgb=rgb[pos],
                neg_rgb=rgb[~pos],
                surface_points=surf.astype(np.float32),
                surface_normals=nrm.astype(np.float32),
                surface_rgb=np.tile(np.asarray(CLASSES[cls], np.float32), (len(surf), 1)),
                normalization=Normalization(offset=np.zeros(3), scale=1.0),
            ),
        )
        records.append(
            {
                "id": sid,
                "class_name": cls,
                "source": None,
                "text": f"a {cls}",
                "split": split,
                "file": rel,
                "stats": {"n_pos": int(pos.sum()), "n_neg": int((~pos).sum())},
            }
        )
        splits[split]["toy"].setdefault(cls, []).append(sid)
    manifest = {"format": 1, "name": "toy", "classes": sorted(CLASSES), "shapes": records}
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "splits").mkdir(exist_ok=True)
    for name, split in splits.items():
        (root / "splits" / f"{name}.json").write_text(json.dumps(split))
    return root


def _train_tiny(data_dir, run_dir):
    """Train with the project's trainer for a few seconds; return the checkpoint path."""
    from core.training import build_run_config, train

    config = build_run_config(
        "tiny",
        overrides=[
            "train.epochs=150",
            "train.samples_per_shape=1024",
            "train.checkpoint_every=1000",
            "train.lr_interval=100",
        ],
    )
    return train(config, data_dir, run_dir, progress=False).checkpoint


@pytest.fixture(scope="module")
def toy_data_dir(tmp_path_factory):
    """A small analytic data set (1,000 samples and 500 surface points a shape), one per test module."""
    return write_analytic_dataset(tmp_path_factory.mktemp("toy"), n_samples=1000, n_surface=500)


@pytest.fixture()
def restore_torch_threads():
    """Training sets torch's thread count (``train.threads``); put it back after the test."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def toy_trained(tmp_path_factory):
    """{"data": data set folder, "ckpt": checkpoint path, "model": TrainedModel} (trained once per session)."""
    root = write_analytic_dataset(tmp_path_factory.mktemp("toy_data"))
    ckpt = _train_tiny(root, tmp_path_factory.mktemp("toy_run"))
    from core.model import load_trained_model

    return {"data": root, "ckpt": ckpt, "model": load_trained_model(ckpt, device="cpu")}


@pytest.fixture(autouse=True)
def no_window_or_plotter_outlives_its_test(request):
    """Viewer tests: after each test no plotter is open and no top-level window is visible.

    As pyvistaqt's and MNE-Python's conftests do: a leaked plotter keeps VTK objects (and an
    OpenGL context) alive and makes later tests flaky; a leaked window keeps its workers running.
    """
    yield
    if not request.module.__name__.rsplit(".", 1)[-1].startswith("test_viewer"):
        return
    import gc

    import pyvista.plotting.plotter as pv_plotter
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        app.processEvents()
    gc.collect()  # here, on the UI thread, not later inside some worker of the next test
    open_plotters = [p for p in pv_plotter._ALL_PLOTTERS.values() if not getattr(p, "_closed", True)]
    assert not open_plotters, f"{len(open_plotters)} pyvista plotter(s) outlived the test"
    visible = [w for w in (app.topLevelWidgets() if app else []) if w.isVisible()]
    assert not visible, f"window(s) outlived the test: {[type(w).__name__ for w in visible]}"
