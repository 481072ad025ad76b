"""Background work: everything that runs the network or marching cubes happens here.

* :class:`LatestWinsWorker`: one thread, one pending request; a newer request replaces the
  pending one, so a dragged slider never builds a queue (the mesh shown is always the newest).
* :func:`run_task`: a one-off job on a thread pool (load a checkpoint, a scan, metrics), its
  result handed to a callback on the UI thread.
* :class:`TTOWorker`: test-time optimisation with pause / stop, reporting every k iterations.

Workers send plain numpy arrays / dataclasses through signals; only the UI thread touches VTK.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from typing import TYPE_CHECKING, Any, Callable

import pyvista as pv
import torch
from PySide6.QtCore import QObject, QThread, Signal

from core.meshing import extract_mesh, sdf_slice
from core.meshing.extract import MeshArrays
from viewer.scene import mesh_polydata

if TYPE_CHECKING:
    from core.model.trained_model import TrainedModel
    from core.tto.config import TTOConfig
    from core.tto.observations import Observation
    from viewer.state import CodeSelection

__all__ = ["LatestWinsWorker", "run_task", "wait_for_tasks", "TTOWorker", "mesh_job", "slice_job"]


_orphans: list[QThread] = []


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
        self._running = False

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing running (results may still be in the event queue)."""
        with self._cond:
            return self._pending is None and not self._running

    @property
    def last_id(self) -> int:
        """Id of the newest request submitted (0 before the first)."""
        with self._cond:
            return self._next_id

    @property
    def has_pending(self) -> bool:
        with self._cond:
            return self._pending is not None

    def submit(self, fn: Callable[[], Any]) -> int:
        with self._cond:
            self._next_id += 1
            if self._pending is not None:
                self.superseded += 1
            self._pending = (self._next_id, fn)
            self._cond.notify()
            return self._next_id

    def stop(self, timeout_ms: int = 60_000) -> None:
        """Drop the pending request and end the thread after the running one (not interruptible)."""
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify()
        if not self.wait(timeout_ms):
            # A huge extraction is still running: never destroy a running QThread (Qt aborts);
            # keep it referenced and let the process end it.
            self.setParent(None)
            _orphans.append(self)

    def run(self) -> None:  # noqa: D401 - QThread entry point
        torch.set_grad_enabled(True)
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                pending = self._pending
                assert pending is not None  # the wait above ends on a request or on stop
                request_id, fn = pending
                self._pending = None
                self._running = True
            self.busy_changed.emit(True)
            t0 = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:  # a bad request must never kill the thread
                self.failed_job.emit(request_id, f"{type(exc).__name__}: {exc}")
            else:
                self.finished_job.emit(request_id, result, time.perf_counter() - t0)
            with self._cond:
                self._running = False
                idle = self._pending is None
            if idle:
                self.busy_changed.emit(False)


class _Dispatcher(QObject):
    """Hands one-off results to the UI thread: lives there, signalled from the pool threads."""

    delivered = Signal(int, bool, object)
    """Task id, success, result (or the error message)."""

    def __init__(self) -> None:
        super().__init__()
        self.callbacks: dict[int, tuple[Callable[[Any], None], Callable[[str], None]]] = {}
        self.delivered.connect(self._deliver)

    def _deliver(self, task_id: int, ok: bool, payload: Any) -> None:
        callbacks = self.callbacks.pop(task_id, None)
        if callbacks is not None:
            (callbacks[0] if ok else callbacks[1])(payload)


_dispatcher: _Dispatcher | None = None
_executor: ThreadPoolExecutor | None = None
_futures: list[Future] = []
_task_ids = itertools.count(1)


def run_task(fn: Callable[[], Any], on_done: Callable[[Any], None], on_failed: Callable[[str], None]) -> Future:
    """Run ``fn`` on a pool thread; ``on_done(result)`` or ``on_failed(message)`` runs on the UI thread.

    Call from the UI thread. Plain Python threads and one long-lived dispatcher object, rather
    than a QRunnable and a signal object per task: nothing Qt-owned is created or freed per
    task, so no object can be freed while a pool thread is still returning from it.
    """
    global _dispatcher, _executor
    if _dispatcher is None or _executor is None:  # created together, on the first task
        _dispatcher = _Dispatcher()
        _executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="viewer-task")
    dispatcher, executor = _dispatcher, _executor
    task_id = next(_task_ids)
    dispatcher.callbacks[task_id] = (on_done, on_failed)

    def work() -> None:
        try:
            result = fn()
        except Exception as exc:  # reported to the UI, never lost in the pool
            dispatcher.delivered.emit(task_id, False, str(exc) or traceback.format_exc(limit=2))
        else:
            dispatcher.delivered.emit(task_id, True, result)

    future = executor.submit(work)
    _futures[:] = [f for f in _futures if not f.done()] + [future]
    return future


def wait_for_tasks(timeout_s: float = 60.0) -> bool:
    """Block until every started one-off task has returned (their callbacks are queued, not run)."""
    _, not_done = futures_wait(list(_futures), timeout=timeout_s)
    return not not_done


def mesh_job(model: TrainedModel, selection: CodeSelection, resolution: int) -> Callable[[], MeshArrays]:
    """A callable that extracts the coloured mesh of ``selection`` (to run on a worker thread).

    Returns :class:`core.meshing.MeshArrays` in the unit-sphere frame; ``stats["resolution"]``
    tells the preview from the full-resolution mesh.
    """

    def job() -> MeshArrays:
        used = model.with_decoder(selection.decoder_override)
        # The fused field (core.model.decoder_field): bfloat16 products on CPUs that have them, the
        # normals from the grid and one network pass per vertex for the colours.
        field = used.mesh_field(selection.shape_code, selection.colour_code, selection.condition)
        # torch's marching cubes, not scikit-image's, on the CPU too: it lets go of the GIL
        # between tensor operations (longest hold about 5 ms at 128^3), where scikit-image's Cython
        # holds it for the whole pass (20-30 ms) and the UI thread stalls behind it; since it works
        # on the active cubes only it is also the faster of the two (13 against 21 ms at 128^3 on
        # 2 cores, benchmarks/bench_viewer_parts.py).
        return extract_mesh(field, resolution, device=model.device, mc_backend="torch")

    return job


def displayed_mesh_job(job: Callable[[], MeshArrays]) -> Callable[[], tuple[MeshArrays, pv.PolyData | None]]:
    """``job`` followed by the VTK surface the scene draws (:func:`viewer.scene.mesh_polydata`), both on the
    worker's thread: the UI thread then only swaps the surface in. None for an empty mesh (nothing to draw)."""

    def displayed() -> tuple[MeshArrays, pv.PolyData | None]:
        mesh = job()
        return mesh, (None if mesh.is_empty else mesh_polydata(mesh))

    return displayed


def slice_job(
    model: TrainedModel, selection: CodeSelection, axis: int, position: float, size: int = 160
) -> Callable[[], dict]:
    """A callable that samples the SDF of ``selection`` on an axis-aligned plane (:func:`core.meshing.sdf_slice`).

    Returns ``{"grid": (size, size) float32 sdf, "coords": (size,), "axis", "position"}``;
    ``grid[i, j]`` is at coordinate ``coords[i]`` on the first other axis, ``coords[j]`` on the second.
    """

    def job() -> dict:
        used = model.with_decoder(selection.decoder_override)
        field = used.mesh_field(selection.shape_code, None, selection.condition)
        return sdf_slice(field.sdf, axis, position, size, device=model.device).as_dict()

    return job


def load_optimizer_machinery() -> None:
    """Import what torch loads on the first optimiser of a process, here and now.

    ``torch.optim.Optimizer`` imports ``torch._dynamo`` (and sympy) the first time one is
    made: 1.2-1.7 s on 2 cores. Left to the first live fit, that import ran on the fit's thread
    and held the GIL for up to 100 ms at a time (unmarshalling large modules), stalling the UI;
    done at start-up (:func:`viewer.app.application`) it costs the same time before anything
    is on screen.
    """
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])


class TTOWorker(QThread):
    """Test-time optimisation of one observation (``core.tto.iterate_fit``), reporting every ``every`` steps.

    ``stop()`` sets ``cancel_event`` (a ``threading.Event``), which the fit checks before every
    step; the final report then carries the codes reached so far (``cancelled=True``).
    ``pause(True)`` blocks the fit between two steps until resumed or stopped.
    """

    progress = Signal(object)
    """core.tto.TTOProgress (codes as CPU tensors, losses as floats)."""
    finished_fit = Signal(object)
    """core.tto.TTOResult, also after a stop."""
    failed = Signal(str)

    def __init__(
        self,
        model: TrainedModel,
        observation: Observation,
        config: TTOConfig,
        class_name: str | None,
        text: str | None = None,
        every: int = 10,
        seed: int = 0,
        parent: QObject | None = None,
    ) -> None:
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
            for report in iterate_fit(
                self.model,
                self.observation,
                self.config,
                class_name=self.class_name,
                text=self.text,
                seed=self.seed,
                cancel=self._cancelled,
                every=self.every,
            ):
                self.progress.emit(report)
                if report.done and report.result is not None:
                    self.finished_fit.emit(report.result)
        except Exception as exc:  # an ObservationError names the input and the fix
            self.failed.emit(str(exc) or type(exc).__name__)
