"""Display panel: resolution, colour, wireframe, SDF slice, scan points, camera, background, screenshot."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from viewer.scene import CAMERA_PRESETS
from viewer.state import ViewerState


class DisplayPanel(QWidget):
    """Edits :class:`viewer.state.DisplayOptions`; camera and screenshots go to the window (it owns the scene)."""

    camera_requested = Signal(str)
    screenshot_requested = Signal(int, bool)
    """Resolution multiple, transparent background."""

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        d = state.display
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        self.preview = QSpinBox()
        self.preview.setRange(16, 128)
        self.preview.setValue(d.preview_resolution)
        self.preview.setToolTip("Grid resolution while dragging a slider or the map (fast, coarse previews)")
        self.full = QSpinBox()
        self.full.setRange(32, 512)
        self.full.setSingleStep(32)
        self.full.setValue(d.full_resolution)
        self.full.setToolTip("Grid resolution once the interaction pauses (the refined mesh)")
        form.addRow("preview resolution", self.preview)
        form.addRow("full resolution", self.full)
        layout.addLayout(form)
        self.colour = QCheckBox("colour (C)")
        self.colour.setChecked(d.colour)
        self.colour.setToolTip("Per-vertex colours from the colour head; off shows plain normal shading")
        self.wire = QCheckBox("wireframe (W)")
        self.wire.setChecked(d.wireframe)
        self.wire.setToolTip("Show the triangle edges")
        self.dark = QCheckBox("dark background")
        self.dark.setChecked(d.dark_background)
        self.dark.setToolTip("Switch between a light and a dark background")
        self.scan = QCheckBox("scan points")
        self.scan.setChecked(d.show_scan)
        self.scan.setToolTip("Show the loaded scan's surface points in red")
        self.slice = QCheckBox("SDF slice")
        self.slice.setChecked(d.slice_enabled)
        self.slice.setToolTip(
            "A plane through the SDF field: red inside, blue outside, lines every 0.1, "
            "the zero level (the surface) in black"
        )
        checks = QGridLayout()
        for i, w in enumerate((self.colour, self.wire, self.dark, self.scan, self.slice)):
            checks.addWidget(w, i // 2, i % 2)
        layout.addLayout(checks)
        self.axis = QComboBox()
        self.axis.addItems(["x", "y", "z"])
        self.axis.setCurrentIndex(d.slice_axis)
        self.axis.setToolTip("Axis the slice plane is perpendicular to")
        self.position = QSlider(Qt.Orientation.Horizontal)
        self.position.setRange(-100, 100)
        self.position.setValue(round(d.slice_position * 100))
        self.position.setToolTip("Position of the slice plane along its axis (-1 … 1)")
        row = QHBoxLayout()
        row.addWidget(QLabel("slice"))
        row.addWidget(self.axis)
        row.addWidget(self.position, 1)
        layout.addLayout(row)
        cams = QGridLayout()
        for i, name in enumerate(CAMERA_PRESETS):
            b = QPushButton(name)
            b.setToolTip(f"Camera preset: {name}, framing the shape (R resets to iso)")
            b.clicked.connect(lambda _=False, n=name: self.camera_requested.emit(n))
            cams.addWidget(b, i // 3, i % 3)
        layout.addLayout(cams)
        shot = QHBoxLayout()
        self.scale = QSpinBox()
        self.scale.setRange(1, 4)
        self.scale.setPrefix("×")
        self.scale.setToolTip("Screenshot resolution multiple of the view's size")
        self.transparent = QCheckBox("transparent")
        self.transparent.setToolTip("Screenshot with a transparent background (RGBA PNG)")
        self.shot = QPushButton("Screenshot…")
        self.shot.setToolTip("Save the 3D view as PNG (Ctrl+S)")
        self.shot.clicked.connect(
            lambda: self.screenshot_requested.emit(self.scale.value(), self.transparent.isChecked())
        )
        shot.addWidget(self.scale)
        shot.addWidget(self.transparent)
        shot.addWidget(self.shot, 1)
        layout.addLayout(shot)
        layout.addStretch(1)

        self.preview.valueChanged.connect(lambda v: state.set_display(preview_resolution=v))
        self.full.valueChanged.connect(lambda v: state.set_display(full_resolution=v))
        self.colour.toggled.connect(lambda v: state.set_display(colour=v))
        self.wire.toggled.connect(lambda v: state.set_display(wireframe=v))
        self.dark.toggled.connect(lambda v: state.set_display(dark_background=v))
        self.scan.toggled.connect(lambda v: state.set_display(show_scan=v))
        self.slice.toggled.connect(lambda v: state.set_display(slice_enabled=v))
        self.axis.currentIndexChanged.connect(lambda v: state.set_display(slice_axis=v))
        self.position.valueChanged.connect(lambda v: state.set_display(slice_position=v / 100.0))
        state.display_changed.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        """Show options changed elsewhere (shortcuts, the command line) without echoing them back."""
        d = self.state.display
        pairs = (
            (self.preview, d.preview_resolution),
            (self.full, d.full_resolution),
            (self.colour, d.colour),
            (self.wire, d.wireframe),
            (self.dark, d.dark_background),
            (self.scan, d.show_scan),
            (self.slice, d.slice_enabled),
            (self.axis, d.slice_axis),
            (self.position, round(d.slice_position * 100)),
        )
        for widget, value in pairs:
            widget.blockSignals(True)
            if isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            elif isinstance(widget, QComboBox):
                widget.setCurrentIndex(int(value))
            else:
                widget.setValue(int(value))
            widget.blockSignals(False)
        self.axis.setEnabled(d.slice_enabled)
        self.position.setEnabled(d.slice_enabled)
