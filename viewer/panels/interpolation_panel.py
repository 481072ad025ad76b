"""Interpolation panel: blend shape A into shape B (shape codes, colour codes and class), play, export.

Shape and colour have their own sliders, so geometry can morph while colour stays (or the
reverse). The class condition follows the shape slider: across classes it is A's up to the
middle and B's after it (``core.model.latent_ops.blend_condition``), or, with "blend classes", a linear
blend through a part of the conditioning space the decoder never trained on.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.model.latent_ops import blend, blend_condition, nearer_end
from viewer.state import CodeSelection, ViewerState


class InterpolationPanel(QWidget):
    export_requested = Signal(int)
    """Number of frames; the window asks for the file and renders them."""

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.a: CodeSelection | None = None
        self.b: CodeSelection | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        self.a_box, self.b_box = QComboBox(), QComboBox()
        self.a_box.setToolTip("Shape A: a training shape (any class)")
        self.b_box.setToolTip(
            "Shape B: a training shape (any class); when classes differ the class switches at the middle"
        )
        self.a_current, self.b_current = QPushButton("← current"), QPushButton("← current")
        self.a_current.setToolTip("Use the codes on screen (a random code, the map, a TTO result…) as A")
        self.b_current.setToolTip("Use the codes on screen as B")
        self.shape_slider = QSlider(Qt.Orientation.Horizontal)
        self.colour_slider = QSlider(Qt.Orientation.Horizontal)
        for s, tip in (
            (self.shape_slider, "Blend of the shape codes (and classes) from A (left) to B (right)"),
            (self.colour_slider, "Blend of the colour codes from A (left) to B (right)"),
        ):
            s.setRange(0, 100)
            s.setToolTip(tip)
        a_row, b_row = QHBoxLayout(), QHBoxLayout()
        a_row.addWidget(self.a_box, 1)
        a_row.addWidget(self.a_current)
        b_row.addWidget(self.b_box, 1)
        b_row.addWidget(self.b_current)
        form.addRow("A", a_row)
        form.addRow("B", b_row)
        form.addRow("shape", self.shape_slider)
        form.addRow("colour", self.colour_slider)
        layout.addLayout(form)
        self.link = QCheckBox("colour follows shape")
        self.link.setChecked(True)
        self.link.setToolTip("Move the colour blend with the shape slider")
        self.linear = QRadioButton("linear")
        self.linear.setChecked(True)
        self.linear.setToolTip("Straight line between the codes")
        self.spherical = QRadioButton("spherical (slerp)")
        self.spherical.setToolTip(
            "Great-circle blend: keeps the code norm, so the middle does not shrink to the mean shape"
        )
        mode = QHBoxLayout()
        mode.addWidget(self.linear)
        mode.addWidget(self.spherical)
        self.blend_classes = QCheckBox("blend classes")
        self.blend_classes.setToolTip(
            "Off: the class condition is A's up to the middle and B's after it (the decoder was trained on\n"
            "those only). On: blend the two class conditions too; the decoder never saw a condition between\n"
            "two classes, and cross-class blends then often collapse into slabs or lose their legs"
        )
        layout.addWidget(self.link)
        layout.addLayout(mode)
        layout.addWidget(self.blend_classes)
        row = QHBoxLayout()
        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.play.setToolTip("Loop the shape slider back and forth (P)")
        self.frames = QSpinBox()
        self.frames.setRange(2, 120)
        self.frames.setValue(12)
        self.frames.setSuffix(" frames")
        self.frames.setToolTip("Frames in an exported sequence")
        self.export = QPushButton("Export…")
        self.export.setToolTip("Save the A→B sequence as an animated GIF or a PNG strip")
        row.addWidget(self.play)
        row.addWidget(self.frames)
        row.addWidget(self.export)
        layout.addLayout(row)
        layout.addStretch(1)
        self.timer = QTimer(self)
        self.timer.setInterval(120)
        self._direction = 1
        self.setEnabled(False)

        state.model_changed.connect(self._on_model)
        self.shape_slider.valueChanged.connect(self._shape_moved)
        self.colour_slider.valueChanged.connect(lambda _: self._update(interactive=True))
        self.shape_slider.sliderReleased.connect(self.state.finish_interaction)
        self.colour_slider.sliderReleased.connect(self.state.finish_interaction)
        self.a_box.activated.connect(lambda _: self._endpoint_from_box("A"))
        self.b_box.activated.connect(lambda _: self._endpoint_from_box("B"))
        self.a_current.clicked.connect(lambda: self._endpoint_from_current("A"))
        self.b_current.clicked.connect(lambda: self._endpoint_from_current("B"))
        self.spherical.toggled.connect(lambda _: self._update(False))
        self.blend_classes.toggled.connect(lambda _: self._update(False))
        self.play.toggled.connect(self._play)
        self.timer.timeout.connect(self._tick)
        self.export.clicked.connect(lambda: self.export_requested.emit(self.frames.value()))

    # -- endpoints -----------------------------------------------------------------------------
    def _on_model(self) -> None:
        m = self.state.require_model()
        self.setEnabled(True)
        self.play.setChecked(False)
        for box in (self.a_box, self.b_box):
            box.clear()
            for i, (c, sid) in enumerate(zip(m.shape_classes, m.shape_ids, strict=True)):
                box.addItem(f"{c}/{sid}", i)
        # Default B: the first shape of another class, so the class blend shows.
        fallback = min(1, len(m.shape_ids) - 1)
        other = next((i for i, c in enumerate(m.shape_classes) if c != m.shape_classes[0]), fallback)
        self.b_box.setCurrentIndex(other)
        self.a = self.state.training_code(int(self.a_box.currentData()))
        self.b = self.state.training_code(int(self.b_box.currentData()))
        self.shape_slider.blockSignals(True)
        self.colour_slider.blockSignals(True)
        self.shape_slider.setValue(0)
        self.colour_slider.setValue(0)
        self.shape_slider.blockSignals(False)
        self.colour_slider.blockSignals(False)
        self._mark()

    def set_endpoints(self, a_index: int, b_index: int) -> None:
        """Pick training shapes ``a_index`` and ``b_index`` as A and B (headless mode, tests)."""
        self.a_box.setCurrentIndex(self.a_box.findData(a_index))
        self.b_box.setCurrentIndex(self.b_box.findData(b_index))
        self.a = self.state.training_code(a_index)
        self.b = self.state.training_code(b_index)
        self._mark()

    def _endpoint_from_box(self, which: str) -> None:
        box = self.a_box if which == "A" else self.b_box
        sel = self.state.training_code(int(box.currentData()))
        self._set_endpoint(which, sel)

    def _endpoint_from_current(self, which: str) -> None:
        if self.state.selection is not None:
            self._set_endpoint(which, self.state.selection)

    def _set_endpoint(self, which: str, sel: CodeSelection) -> None:
        if which == "A":
            self.a = sel
        else:
            self.b = sel
        self._mark()
        self._update(False)

    def _mark(self) -> None:
        self.state.set_mark("A", None if self.a is None else self.a.shape_code)
        self.state.set_mark("B", None if self.b is None else self.b.shape_code)

    # -- blending ------------------------------------------------------------------------------
    def selection_at(self, t_shape: float, t_colour: float | None = None) -> CodeSelection | None:
        """The blend at ``t_shape`` (shape code, class condition) and ``t_colour`` (colour code)."""
        if self.a is None or self.b is None:
            return None
        t_colour = t_shape if t_colour is None else t_colour
        a, b = self.a, self.b
        spherical = self.spherical.isChecked()
        cls = nearer_end(a.class_name, b.class_name, t_shape)
        return CodeSelection(
            blend(a.shape_code, b.shape_code, t_shape, spherical),
            blend(a.colour_code, b.colour_code, t_colour, spherical),
            blend_condition(
                a.condition, b.condition, t_shape, "linear" if self.blend_classes.isChecked() else "nearest"
            ),
            f"{a.label} → {b.label} @ {t_shape:.2f}",
            cls,
        )

    def _shape_moved(self, value: int) -> None:
        if self.link.isChecked():
            self.colour_slider.blockSignals(True)
            self.colour_slider.setValue(value)
            self.colour_slider.blockSignals(False)
        self._update(interactive=True)

    def _update(self, interactive: bool) -> None:
        sel = self.selection_at(self.shape_slider.value() / 100.0, self.colour_slider.value() / 100.0)
        if sel is not None:
            self.state.select(sel, interactive=interactive)

    def _play(self, on: bool) -> None:
        self.play.setText("Stop" if on else "Play")
        if on:
            self.timer.start()
        else:
            self.timer.stop()
            self.state.finish_interaction()

    def _tick(self) -> None:
        v = self.shape_slider.value() + 5 * self._direction
        if v >= 100 or v <= 0:
            self._direction *= -1
            v = max(0, min(100, v))
        self.shape_slider.setValue(v)
