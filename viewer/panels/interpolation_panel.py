"""Interpolation panel: blend shape A into shape B (codes, colours and class), play, export."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QPushButton, QSlider,
                               QSpinBox, QVBoxLayout, QWidget)

from core.latent_ops import blend
from viewer.state import CodeSelection, ViewerState


class InterpolationPanel(QWidget):
    export_requested = Signal(int)  # number of frames

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.a_box, self.b_box = QComboBox(), QComboBox()
        self.a_box.setToolTip("Shape A (any class)")
        self.b_box.setToolTip("Shape B (any class); when classes differ, the class condition is blended too")
        self.shape_slider = QSlider(Qt.Horizontal)
        self.colour_slider = QSlider(Qt.Horizontal)
        for s, tip in ((self.shape_slider, "Blend of the shape codes (and classes) from A (left) to B (right)"),
                       (self.colour_slider, "Blend of the colour codes from A to B")):
            s.setRange(0, 100)
            s.setToolTip(tip)
        self.link = QCheckBox("colour follows shape")
        self.link.setChecked(True)
        self.link.setToolTip("Move the colour blend with the shape slider")
        self.spherical = QCheckBox("spherical (slerp)")
        self.spherical.setToolTip("Interpolate on the sphere instead of a straight line (keeps the code norm)")
        form.addRow("A", self.a_box)
        form.addRow("B", self.b_box)
        form.addRow("shape", self.shape_slider)
        form.addRow("colour", self.colour_slider)
        layout.addLayout(form)
        layout.addWidget(self.link)
        layout.addWidget(self.spherical)
        row = QHBoxLayout()
        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.play.setToolTip("Loop the interpolation (Space)")
        self.frames = QSpinBox()
        self.frames.setRange(2, 120)
        self.frames.setValue(12)
        self.frames.setToolTip("Frames in an exported sequence")
        self.export = QPushButton("Export…")
        self.export.setToolTip("Save the sequence as GIF, MP4 or a PNG strip")
        row.addWidget(self.play)
        row.addWidget(self.frames)
        row.addWidget(self.export)
        layout.addLayout(row)
        layout.addStretch(1)
        self.timer = QTimer(self)
        self.timer.setInterval(120)
        self._direction = 1

        state.model_changed.connect(self._on_model)
        self.shape_slider.valueChanged.connect(self._shape_moved)
        self.colour_slider.valueChanged.connect(lambda _: self._update(interactive=True))
        self.shape_slider.sliderReleased.connect(self.state.finish_interaction)
        self.colour_slider.sliderReleased.connect(self.state.finish_interaction)
        self.a_box.activated.connect(lambda _: self._update(False))
        self.b_box.activated.connect(lambda _: self._update(False))
        self.play.toggled.connect(lambda on: self.timer.start() if on else (self.timer.stop(), self.state.finish_interaction()))
        self.timer.timeout.connect(self._tick)
        self.export.clicked.connect(lambda: self.export_requested.emit(self.frames.value()))

    def _on_model(self) -> None:
        m = self.state.model
        for box in (self.a_box, self.b_box):
            box.clear()
            for i, (c, sid) in enumerate(zip(m.shape_classes, m.shape_ids)):
                box.addItem(f"{c}/{sid}", i)
        # default B: the first shape of another class, so the class blend shows
        other = next((i for i, c in enumerate(m.shape_classes) if c != m.shape_classes[0]), min(1, len(m.shape_ids) - 1))
        self.b_box.setCurrentIndex(other)

    def _shape_moved(self, value: int) -> None:
        if self.link.isChecked():
            self.colour_slider.blockSignals(True)
            self.colour_slider.setValue(value)
            self.colour_slider.blockSignals(False)
        self._update(interactive=True)

    def selection_at(self, t_shape: float, t_colour: float | None = None) -> CodeSelection | None:
        m = self.state.model
        if m is None or self.a_box.count() == 0:
            return None
        t_colour = t_shape if t_colour is None else t_colour
        a = self.state.training_code(int(self.a_box.currentData()))
        b = self.state.training_code(int(self.b_box.currentData()))
        spherical = self.spherical.isChecked()
        cls = a.class_name if t_shape < 0.5 else b.class_name
        return CodeSelection(blend(a.shape_code, b.shape_code, t_shape, spherical),
                             blend(a.colour_code, b.colour_code, t_colour, spherical),
                             blend(a.condition, b.condition, t_shape, False),
                             f"{a.label} → {b.label} @ {t_shape:.2f}", cls)

    def _update(self, interactive: bool) -> None:
        sel = self.selection_at(self.shape_slider.value() / 100.0, self.colour_slider.value() / 100.0)
        if sel is not None:
            self.state.select(sel, interactive=interactive)

    def _tick(self) -> None:
        v = self.shape_slider.value() + 5 * self._direction
        if v >= 100 or v <= 0:
            self._direction *= -1
            v = max(0, min(100, v))
        self.shape_slider.setValue(v)
