"""Python's cyclic garbage collection on the UI thread only.

Automatic collection runs in whichever thread happens to allocate; when that is a worker
(meshing, TTO, a checkpoint load) and the garbage holds Qt or VTK wrappers of a closed
window or a replaced actor, their C++ destructors run off the UI thread and the process
crashes (we saw a segmentation fault inside ``torch.load`` on a worker). pyqtgraph solves this
the same way (``pyqtgraph.util.garbage_collector.GarbageCollector``): disable automatic
collection and collect from a timer on the UI thread, generation by generation with the
thresholds Python would have used.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

__all__ = ["GuiThreadGarbageCollector"]

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
                if count2 > self.threshold[2]:
                    gc.collect(2)

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
