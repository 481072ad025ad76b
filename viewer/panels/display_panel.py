"""Display panel: resolution, colour, wireframe, slice plane, scan points, camera, background, screenshot."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QPushButton, QSlider, QSpinBox,
                               QVBoxLayout, QWidget)

from viewer.scene import CAMERA_PRESETS
from viewer.state import ViewerState


class DisplayPanel(QWidget):
    camera_requested = Signal(str)
    screenshot_requested = Signal(int, bool)  # scale, transparent

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        d = state.display
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.preview = QSpinBox()
        self.preview.setRange(16, 128)
        self.preview.setValue(d.preview_resolution)
        self.preview.setToolTip("Grid resolution while dragging (fast previews)")
        self.full = QSpinBox()
        self.full.setRange(32, 512)
        self.full.setSingleStep(32)
        self.full.setValue(d.full_resolution)
        self.full.setToolTip("Grid resolution when idle (refined mesh)")
        form.addRow("preview res", self.preview)
        form.addRow("full res", self.full)
        layout.addLayout(form)
        self.colour = QCheckBox("colour (C)")
        self.colour.setChecked(d.colour)
        self.colour.setToolTip("Per-vertex colours from the colour head; off shows plain normal shading")
        self.wire = QCheckBox("wireframe (W)")
        self.wire.setToolTip("Show triangle edges")
        self.dark = QCheckBox("dark background")
        self.dark.setToolTip("Switch between a light and a dark background")
        self.scan = QCheckBox("scan points")
        self.scan.setChecked(d.show_scan)
        self.scan.setToolTip("Show the loaded scan as points")
        self.slice = QCheckBox("SDF slice")
        self.slice.setToolTip("A plane through the SDF field, coloured by distance, with the zero level line")
        self.axis = QComboBox()
        self.axis.addItems(["x", "y", "z"])
        self.axis.setCurrentIndex(d.slice_axis)
        self.axis.setToolTip("Axis the slice plane is perpendicular to")
        self.position = QSlider(Qt.Horizontal)
        self.position.setRange(-100, 100)
        self.position.setToolTip("Position of the slice plane along its axis")
        for w in (self.colour, self.wire, self.dark, self.scan, self.slice):
            layout.addWidget(w)
        row = QHBoxLayout()
        row.addWidget(self.axis)
        row.addWidget(self.position, 1)
        layout.addLayout(row)
        cams = QHBoxLayout()
        for name in CAMERA_PRESETS:
            b = QPushButton(name)
            b.setToolTip(f"Camera preset: {name} (R resets to iso)")
            b.clicked.connect(lambda _=False, n=name: self.camera_requested.emit(n))
            cams.addWidget(b)
        layout.addLayout(cams)
        shot = QHBoxLayout()
        self.scale = QSpinBox()
        self.scale.setRange(1, 4)
        self.scale.setToolTip("Screenshot resolution multiple")
        self.transparent = QCheckBox("transparent")
        self.transparent.setToolTip("Screenshot with a transparent background")
        self.shot = QPushButton("Screenshot…")
        self.shot.setToolTip("Save the 3D view as PNG (Ctrl+S)")
        self.shot.clicked.connect(lambda: self.screenshot_requested.emit(self.scale.value(), self.transparent.isChecked()))
        shot.addWidget(self.scale)
        shot.addWidget(self.transparent)
        shot.addWidget(self.shot)
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
