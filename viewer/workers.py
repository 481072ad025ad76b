"""Background work: everything that runs the network or marching cubes happens here.

* :class:`LatestWinsWorker`: one thread, one pending request; a newer request replaces the
  pending one, so a dragged slider never builds a queue (the mesh shown is always the newest).
* :class:`Task`: a one-off job on Qt's thread pool (load a checkpoint, a scan, metrics).
* :class:`TTOWorker`: test-time optimisation with pause / stop, reporting every k iterations.

Workers send plain numpy arrays / dataclasses through signals; only the UI thread touches VTK.
"""
from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable

import numpy as np
import torch
from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

from core.meshing import extract_mesh
from core.meshing.extract import MeshArrays

__all__ = ["LatestWinsWorker", "Task", "run_task", "TTOWorker", "mesh_job", "slice_job"]


class LatestWinsWorker(QThread):
    """Runs submitted callables one at a time; only the newest pending request is kept."""

    finished_job = Signal(int, object, float)  # request id, result, seconds
    failed_job = Signal(int, str)
    busy_changed = Signal(bool)

    def __init__(self, name: str = "worker", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._cond = threading.Condition()
        self._pending: tuple[int, Callable[[], Any]] | None = None
        self._stop = False
        self._next_id = 0
        self.superseded = 0  # requests replaced before they ran (drags that did not pile up)

    def submit(self, fn: Callable[[], Any]) -> int:
        with self._cond:
            self._next_id += 1
            if self._pending is not None:
                self.superseded += 1
            self._pending = (self._next_id, fn)
            self._cond.notify()
            return self._next_id

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify()
        self.wait(10_000)

    def run(self) -> None:  # noqa: D401 - QThread entry point
        torch.set_grad_enabled(True)
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                request_id, fn = self._pending
                self._pending = None
            self.busy_changed.emit(True)
            t0 = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:  # a bad request must never kill the thread
                self.failed_job.emit(request_id, f"{type(exc).__name__}: {exc}")
            else:
                self.finished_job.emit(request_id, result, time.perf_counter() - t0)
            with self._cond:
                idle = self._pending is None
            if idle:
                self.busy_changed.emit(False)


class _TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)


class Task(QRunnable):
    """A one-off background job; connect to ``signals.done`` / ``signals.failed``."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _TaskSignals()
        self.setAutoDelete(False)

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:
            detail = str(exc) or traceback.format_exc(limit=2)
            self.signals.failed.emit(detail)
        else:
            self.signals.done.emit(result)


_live_tasks: set[Task] = set()


def run_task(fn: Callable[[], Any], on_done: Callable[[Any], None], on_failed: Callable[[str], None]) -> Task:
    """Start ``fn`` on the global thread pool; callbacks run on the UI thread."""
    task = Task(fn)
    _live_tasks.add(task)

    def done(result: Any) -> None:
        _live_tasks.discard(task)
        on_done(result)

    def failed(message: str) -> None:
        _live_tasks.discard(task)
        on_failed(message)

    task.signals.done.connect(done)
    task.signals.failed.connect(failed)
    QThreadPool.globalInstance().start(task)
    return task


def mesh_job(model, selection, resolution: int, decoder_override=None) -> Callable[[], MeshArrays]:
    """A callable that extracts the coloured mesh of ``selection`` (runs on a worker thread)."""
    def job() -> MeshArrays:
        used = model
        decoder_override_ = decoder_override if decoder_override is not None else getattr(selection, "decoder_override", None)
        if decoder_override_ is not None:
            from core.tto import model_with_override

            used = model_with_override(model, decoder_override_)
        sdf_fn = used.sdf_fn(selection.shape_code, selection.condition)
        colour_fn = used.colour_fn(selection.shape_code, selection.colour_code, selection.condition)
        return extract_mesh(sdf_fn, resolution, colour_fn, device=model.device)

    return job


def slice_job(model, selection, axis: int, position: float, size: int = 160) -> Callable[[], dict]:
    """A callable that samples the SDF on an axis-aligned plane: {"grid": (size, size), "axis", "position"}."""
    def job() -> dict:
        u = np.linspace(-1.0, 1.0, size, dtype=np.float32)
        a, b = np.meshgrid(u, u, indexing="ij")
        pts = np.zeros((size * size, 3), np.float32)
        others = [i for i in range(3) if i != axis]
        pts[:, others[0]] = a.ravel()
        pts[:, others[1]] = b.ravel()
        pts[:, axis] = position
        fn = model.sdf_fn(selection.shape_code, selection.condition)
        with torch.no_grad():
            sdf = torch.cat([fn(chunk) for chunk in torch.from_numpy(pts).to(model.device).split(8192)]).cpu().numpy()
        return {"grid": sdf.reshape(size, size), "axis": axis, "position": position, "coords": u}

    return job


class TTOWorker(QThread):
    """Test-time optimisation of one observation, reporting every ``every`` iterations."""

    progress = Signal(object)  # core.tto.TTOProgress
    finished_fit = Signal(object)  # core.tto.TTOResult
    failed = Signal(str)

    def __init__(self, model, observation, config, class_name: str | None, text: str | None = None,
                 every: int = 10, seed: int = 0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.observation, self.config = model, observation, config
        self.class_name, self.text, self.every, self.seed = class_name, text, every, seed
        self.cancel_event = threading.Event()
        self._resume = threading.Event()
        self._resume.set()

    def pause(self, paused: bool) -> None:
        (self._resume.clear if paused else self._resume.set)()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def stop(self) -> None:
        self.cancel_event.set()
        self._resume.set()

    def _cancelled(self) -> bool:
        # Pausing blocks inside the fit (between steps) until resumed or stopped.
        while not self._resume.wait(0.05):
            if self.cancel_event.is_set():
                break
        return self.cancel_event.is_set()

    def run(self) -> None:
        from core.tto import iterate_fit

        try:
            for report in iterate_fit(self.model, self.observation, self.config, class_name=self.class_name,
                                      text=self.text, seed=self.seed, cancel=self._cancelled, every=self.every):
                self.progress.emit(report)
                if report.done and report.result is not None:
                    self.finished_fit.emit(report.result)
        except Exception as exc:
            self.failed.emit(f"{type(exc).__name__}: {exc}")
