"""Python's cyclic garbage collection on the UI thread only.

Automatic collection runs in whichever thread happens to allocate; when that is a worker
(meshing, TTO, a checkpoint load) and the garbage holds Qt or VTK wrappers of a closed
window or a replaced actor, their C++ destructors run off the UI thread and the process
crashes (we saw a segmentation fault inside ``torch.load`` on a worker). pyqtgraph solves this
the same way (``pyqtgraph.util.garbage_collector.GarbageCollector``): disable automatic
collection and collect from a timer on the UI thread, generation by generation with the
thresholds Python would have used.

A full (generation 2) collection walks every tracked object: 255 ms in the viewer with torch,
VTK, Qt and torch's optimiser machinery loaded, a stall the user sees. Python itself runs one
only when the long-lived objects grew by a quarter since the last; the collector does the same,
with the interpreter's allocated memory blocks as the (constant-time) measure of growth, and
:func:`freeze_startup_objects` moves everything loaded at start-up (modules, classes: about
500,000 objects) out of the collector's way for good (a full collection then takes a few ms;
benchmarks/bench_viewer_parts.py).
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import QObject, QTimer

__all__ = ["GuiThreadGarbageCollector", "freeze_startup_objects"]

FULL_COLLECTION_GROWTH = 0.25
"""Full collection once memory in use grew by this fraction since the last (CPython's rule,
which counts long-lived objects; counting them here would itself walk them all)."""


def freeze_startup_objects() -> int:
    """Collect, then exempt every object alive now from future collections (``gc.freeze``).

    For process start-up, after the imports and before any window: what is alive then lives
    until exit anyway, and a full collection no longer has to walk it. Returns the number of
    objects frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


_active = 0  # collectors alive; automatic collection comes back when the last one stops


class GuiThreadGarbageCollector(QObject):
    """While alive (until :meth:`stop`), cyclic garbage is collected only on the UI thread."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        global _active
        self.threshold = gc.get_threshold()
        _active += 1
        gc.disable()
        self._running = True
        self._blocks_after_full = sys.getallocatedblocks()
        self.full_collections = 0
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.check)
        self.timer.start()

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds."""
        count0, count1, count2 = gc.get_count()
        if count0 > self.threshold[0]:
            gc.collect(0)
            if count1 > self.threshold[1]:
                gc.collect(1)
                if count2 > self.threshold[2] and self._grown_since_full_collection():
                    gc.collect(2)
                    self.full_collections += 1
                    self._blocks_after_full = sys.getallocatedblocks()

    def _grown_since_full_collection(self) -> bool:
        return sys.getallocatedblocks() > (1 + FULL_COLLECTION_GROWTH) * self._blocks_after_full

    def stop(self) -> None:
        """Collect everything now (on this, the UI thread) and give collection back to Python."""
        global _active
        if not self._running:
            return
        self._running = False
        self.timer.stop()
        gc.collect()
        _active -= 1
        if _active == 0:
            gc.enable()
