"""Latent map: a 2-D PCA of all training shape codes, coloured by class (QPainter, no extra deps).

Click decodes the code under the cursor (inverse PCA: the mean plus the two components);
dragging decodes continuously at preview resolution, the release refines. The current code,
A, B and the TTO result are marked. The nearest training shape lends its class condition and
colour code, so a point between two chairs is a chair coloured like the closer one.
"""

from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.model.latent_ops import CodePCA
from viewer.state import CodeSelection, ViewerState

CLASS_COLOURS = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
MARK_COLOURS = {"A": "#0a7d32", "B": "#b8860b", "TTO": "#c0161b"}


class LatentMap(QWidget):
    """The scatter itself; emits map coordinates, knows nothing about models."""

    picked = Signal(object, bool)
    """(2,) map position, interactive (True while the button is down)."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(220, 180)
        self.setToolTip(
            "PCA of the training shape codes, coloured by class. "
            "Click to decode the point under the cursor; drag to explore continuously"
        )
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.points = np.zeros((0, 2))
        self.classes: list[int] = []
        self.marks: dict[str, np.ndarray] = {}
        self.current: np.ndarray | None = None
        self.bounds = (-1.0, 1.0, -1.0, 1.0)
        self._dragging = False
        self._backdrop: QPixmap | None = None
        """Axes and training points, drawn once per size and point set: the marks move on every
        drag step, and redrawing hundreds of antialiased points each time cost the UI thread
        about 5 ms per step."""

    def set_points(self, points: np.ndarray, classes: list[int]) -> None:
        self.points, self.classes = np.asarray(points, np.float64), classes
        lo, hi = self.points.min(axis=0), self.points.max(axis=0)
        span = np.maximum(hi - lo, 1e-3)
        pad = 0.15 * span
        self.bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
        self._backdrop = None
        self.update()

    def set_marks(self, marks: dict[str, np.ndarray], current: np.ndarray | None) -> None:
        self.marks, self.current = marks, current
        self.update()

    def _plot_rect(self) -> QRectF:
        return QRectF(8, 8, max(1, self.width() - 16), max(1, self.height() - 16))

    def to_screen(self, xy) -> QPointF:
        r = self._plot_rect()
        x0, x1, y0, y1 = self.bounds
        return QPointF(
            r.left() + (xy[0] - x0) / (x1 - x0) * r.width(), r.top() + (1 - (xy[1] - y0) / (y1 - y0)) * r.height()
        )

    def to_map(self, pos) -> np.ndarray:
        r = self._plot_rect()
        x0, x1, y0, y1 = self.bounds
        return np.array(
            [x0 + (pos.x() - r.left()) / r.width() * (x1 - x0), y0 + (1 - (pos.y() - r.top()) / r.height()) * (y1 - y0)]
        )

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt name
        self._backdrop = None
        super().resizeEvent(event)

    def _paint_backdrop(self) -> QPixmap:
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(max(1, round(self.width() * ratio)), max(1, round(self.height() * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        p = QPainter(pixmap)
        p.setFont(self.font())
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#fbfbfb"))
        p.setPen(QPen(QColor("#dddddd"), 1))
        origin = self.to_screen((0.0, 0.0))
        p.drawLine(QPointF(0, origin.y()), QPointF(self.width(), origin.y()))
        p.drawLine(QPointF(origin.x(), 0), QPointF(origin.x(), self.height()))
        p.setPen(QColor("#999999"))
        align = Qt.AlignmentFlag
        p.drawText(QRectF(0, 0, self.width() - 4, self.height() - 2), align.AlignRight | align.AlignBottom, "PC1 →")
        p.drawText(QRectF(4, 2, self.width(), self.height()), align.AlignLeft | align.AlignTop, "↑ PC2")
        for xy, c in zip(self.points, self.classes, strict=True):
            colour = QColor(CLASS_COLOURS[c % len(CLASS_COLOURS)])
            p.setPen(QPen(colour.darker(140), 1))
            p.setBrush(colour)
            p.drawEllipse(self.to_screen(xy), 4, 4)
        p.end()
        return pixmap

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        if self._backdrop is None or self._backdrop.devicePixelRatio() != self.devicePixelRatioF():
            self._backdrop = self._paint_backdrop()  # first paint, new points or size, other screen
        p = QPainter(self)
        p.drawPixmap(0, 0, self._backdrop)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        for name, xy in self.marks.items():
            pt = self.to_screen(xy)
            colour = QColor(MARK_COLOURS.get(name, "#333333"))
            p.setPen(QPen(colour, 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(pt.x() - 6, pt.y() - 6, 12, 12))
            p.drawText(pt + QPointF(8, -7), name)
        if self.current is not None:
            pt = self.to_screen(self.current)
            p.setPen(QPen(QColor("black"), 2))
            p.drawLine(pt + QPointF(-9, 0), pt + QPointF(-4, 0))
            p.drawLine(pt + QPointF(4, 0), pt + QPointF(9, 0))
            p.drawLine(pt + QPointF(0, -9), pt + QPointF(0, -4))
            p.drawLine(pt + QPointF(0, 4), pt + QPointF(0, 9))
            p.drawEllipse(pt, 4, 4)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._dragging = True
        self.picked.emit(self.to_map(event.position()), True)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._dragging:
            self.picked.emit(self.to_map(event.position()), True)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if not self._dragging:
            return
        self._dragging = False
        self.picked.emit(self.to_map(event.position()), False)


class LatentMapPanel(QWidget):
    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.pca: CodePCA | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.map = LatentMap()
        self.legend = QLabel("Open a checkpoint to see its codes.")
        self.legend.setWordWrap(True)
        self.legend.setToolTip("Classes, and how much of the codes' variance the two axes show")
        layout.addWidget(self.map, 1)
        layout.addWidget(self.legend)
        state.model_changed.connect(self._on_model)
        state.selection_changed.connect(lambda _i: self._refresh_marks())
        state.marks_changed.connect(self._refresh_marks)
        self.map.picked.connect(self._picked)

    def _on_model(self) -> None:
        m = self.state.require_model()
        self.pca = CodePCA.fit(m.shape_codes.detach().cpu())
        classes = [m.class_names.index(c) for c in m.shape_classes]
        self.map.set_points(self.pca.project(m.shape_codes.detach().cpu()), classes)
        self.legend.setText(
            " ".join(
                f"<span style='color:{CLASS_COLOURS[i % len(CLASS_COLOURS)]}'>●</span> {c}"
                for i, c in enumerate(m.class_names)
            )
            + f"<br><span style='color:#666'>PC1 {self.pca.explained[0]:.0%}, "
            f"PC2 {self.pca.explained[1]:.0%} of the variance</span>"
        )
        self._refresh_marks()

    @staticmethod
    def _project(pca: CodePCA, code: torch.Tensor) -> np.ndarray:
        return pca.project(code.detach().cpu().reshape(1, -1).numpy())[0]

    def _refresh_marks(self) -> None:
        pca = self.pca
        if pca is None:
            return
        sel = self.state.selection
        marks = {name: self._project(pca, code) for name, code in self.state.marks.items()}
        self.map.set_marks(marks, None if sel is None else self._project(pca, sel.shape_code))

    def _picked(self, xy: np.ndarray, interactive: bool) -> None:
        m = self.state.model
        if m is None or self.pca is None:
            return
        code = torch.tensor(self.pca.inverse(xy), dtype=torch.float32)
        nearest = int(np.argmin(((self.map.points - xy) ** 2).sum(axis=1)))
        ref = self.state.training_code(nearest)
        selection = CodeSelection(
            code, ref.colour_code, ref.condition, f"map ({xy[0]:.2f}, {xy[1]:.2f}) near {ref.label}", ref.class_name
        )
        # The press opened one undo step for the whole drag; the release only refines.
        self.state.select(selection, interactive=interactive, record=interactive)
