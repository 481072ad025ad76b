"""The viewer's state object without a window: undo/redo grouping, marks, code files."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("PySide6")

from viewer.state import CodeSelection, ViewerState  # noqa: E402


@pytest.fixture
def state(toy_trained):
    s = ViewerState()
    s.set_model(toy_trained["model"])
    return s


def _sel(value: float, label: str) -> CodeSelection:
    return CodeSelection(torch.full((8,), value), None, None, label)


def test_starts_on_first_code_of_first_class(state):
    assert state.selection.label == "ball/ball0" and state.selection.class_name == "ball"
    assert not state.can_undo() and not state.can_redo()


def test_final_edits_are_one_step_each_and_drags_one_in_all(state):
    seen = []
    state.selection_changed.connect(seen.append)
    state.select(_sel(1, "pick"))
    for i in range(5):
        state.select(_sel(2 + i, f"drag {i}"), interactive=True)
    state.finish_interaction()
    state.select(_sel(9, "tto"), interactive=True, record=True)
    state.select(_sel(10, "tto 2"), interactive=True, record=False)
    state.select(_sel(11, "tto result"), interactive=False, record=False)
    assert seen[:2] == [False, True] and seen[-1] is False
    labels = []
    while state.can_undo():
        state.undo()
        labels.append(state.selection.label)
    assert labels == ["drag 4", "pick", "ball/ball0"]
    state.redo()
    state.redo()
    assert state.selection.label == "drag 4"
    state.select(_sel(0, "new"))
    assert not state.can_redo()


def test_marks_and_display(state):
    fired = []
    state.marks_changed.connect(lambda: fired.append(1))
    state.set_mark("A", torch.zeros(8))
    state.set_mark("A", None)
    state.set_mark("A", None)  # nothing to remove: no signal
    assert fired == [1, 1] and state.marks == {}
    state.set_display(wireframe=True)
    assert state.display.wireframe and state.display.full_resolution == 128


def test_garbage_is_collected_on_the_ui_thread_only(qapp):
    import gc
    import weakref

    from viewer.gui_gc import GuiThreadGarbageCollector

    assert gc.isenabled()
    collector = GuiThreadGarbageCollector(interval_ms=10_000)  # the test calls check() itself
    try:
        assert not gc.isenabled(), "automatic collection must be off while a window lives"

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        probe = weakref.ref(a)
        del a, b
        keep = [Node() for _ in range(collector.threshold[0] + 10)]  # generation 0 past its threshold
        assert probe() is not None, "collected automatically, i.e. on whatever thread allocated"
        collector.check()  # what the UI thread's timer does
        assert probe() is None, "the timer's collection did not free the cycle"
        del keep
    finally:
        collector.stop()
    assert gc.isenabled(), "automatic collection must come back when the last window is gone"


def test_full_collections_wait_for_the_long_lived_objects_to_grow(qapp):
    """A full collection walks every object (a quarter of a second in the viewer): like CPython,
    the collector runs one only after the memory in use grew by a quarter."""
    import sys

    from viewer.gui_gc import FULL_COLLECTION_GROWTH, GuiThreadGarbageCollector

    collector = GuiThreadGarbageCollector(interval_ms=10_000)
    try:
        assert not collector._grown_since_full_collection()
        grown = int(FULL_COLLECTION_GROWTH * sys.getallocatedblocks()) + 1000
        survivors = [[] for _ in range(grown)]  # one memory block each
        assert collector._grown_since_full_collection()
        del survivors
        assert not collector._grown_since_full_collection()
    finally:
        collector.stop()


def test_qt_bindings_keep_none_alive(qapp):
    """PySide6 6.12.0 decrements None's reference count on every void call: on Python < 3.12 a
    long viewer session then aborts ("none_dealloc"). pyproject.toml excludes it; this catches
    a binding that brings the bug back."""
    import sys

    from PySide6.QtCore import QPointF, QRectF
    from PySide6.QtGui import QColor, QImage, QPainter, QPen

    image = QImage(32, 32, QImage.Format_ARGB32)
    painter = QPainter(image)
    try:
        before = sys.getrefcount(None)
        for _ in range(2000):
            painter.setPen(QPen(QColor("red"), 1))
            painter.drawLine(QPointF(0, 0), QPointF(5, 5))
            painter.drawEllipse(QRectF(1, 1, 8, 8))
        lost = before - sys.getrefcount(None)
    finally:
        painter.end()
    assert lost < 1000, f"the Qt bindings dropped {lost} references to None in 6,000 calls: pin another PySide6"
