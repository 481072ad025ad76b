"""Latent map: a 2-D PCA of all training shape codes, coloured by class.

Click decodes the code under the cursor; dragging decodes continuously (previews, then a full
resolution mesh on release). A, B and the TTO result are marked.
"""
from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from core.latent_ops import CodePCA
from viewer.state import CodeSelection, ViewerState

CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"]


class LatentMap(QWidget):
    picked = Signal(object, bool)  # 2-D position, interactive

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumSize(220, 200)
        self.setToolTip("PCA of the training codes. Click to decode a point; drag to explore continuously")
        self.points = np.zeros((0, 2))
        self.classes: list[int] = []
        self.marks: dict[str, np.ndarray] = {}
        self.bounds = (-1.0, 1.0, -1.0, 1.0)
        self._dragging = False

    def set_points(self, points: np.ndarray, classes: list[int]) -> None:
        self.points, self.classes = points, classes
        lo, hi = points.min(axis=0), points.max(axis=0)
        pad = 0.15 * np.maximum(hi - lo, 1e-3)
        self.bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
        self.update()

    def set_mark(self, name: str, xy: np.ndarray | None) -> None:
        if xy is None:
            self.marks.pop(name, None)
        else:
            self.marks[name] = np.asarray(xy)
        self.update()

    def to_screen(self, xy) -> QPointF:
        x0, x1, y0, y1 = self.bounds
        return QPointF((xy[0] - x0) / (x1 - x0) * self.width(), (1 - (xy[1] - y0) / (y1 - y0)) * self.height())

    def to_map(self, pos) -> np.ndarray:
        x0, x1, y0, y1 = self.bounds
        return np.array([x0 + pos.x() / max(1, self.width()) * (x1 - x0), y0 + (1 - pos.y() / max(1, self.height())) * (y1 - y0)])

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), QColor("#fbfbfb"))
        for xy, c in zip(self.points, self.classes):
            colour = QColor(CLASS_COLOURS[c % len(CLASS_COLOURS)])
            p.setPen(QPen(colour.darker(130), 1))
            p.setBrush(colour)
            p.drawEllipse(self.to_screen(xy), 4, 4)
        for name, xy in self.marks.items():
            pt = self.to_screen(xy)
            p.setPen(QPen(QColor("black"), 2))
            p.setBrush(Qt.NoBrush)
            p.drawEllipse(pt, 7, 7)
            p.drawText(pt + QPointF(8, -8), name)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._dragging = True
        self.picked.emit(self.to_map(event.position()), True)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._dragging:
            self.picked.emit(self.to_map(event.position()), True)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._dragging = False
        self.picked.emit(self.to_map(event.position()), False)


class LatentMapPanel(QWidget):
    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self.pca: CodePCA | None = None
        layout = QVBoxLayout(self)
        self.map = LatentMap()
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        layout.addWidget(self.map, 1)
        layout.addWidget(self.legend)
        state.model_changed.connect(self._on_model)
        state.selection_changed.connect(self._on_selection)
        self.map.picked.connect(self._picked)

    def _on_model(self) -> None:
        m = self.state.model
        self.pca = CodePCA.fit(m.shape_codes.cpu())
        classes = [m.class_names.index(c) for c in m.shape_classes]
        self.map.set_points(self.pca.project(m.shape_codes.cpu()), classes)
        self.legend.setText(" ".join(f"<span style='color:{CLASS_COLOURS[i % len(CLASS_COLOURS)]}'>●</span> {c}"
                                     for i, c in enumerate(m.class_names))
                            + f"<br>PC1 {self.pca.explained[0]:.0%}, PC2 {self.pca.explained[1]:.0%} of variance")

    def _on_selection(self, interactive: bool) -> None:
        sel = self.state.selection
        if self.pca is not None and sel is not None:
            self.map.set_mark("●", self.pca.project(sel.shape_code[None].numpy())[0])

    def mark(self, name: str, code: torch.Tensor | None) -> None:
        if self.pca is not None:
            self.map.set_mark(name, None if code is None else self.pca.project(code[None].cpu().numpy())[0])

    def _picked(self, xy: np.ndarray, interactive: bool) -> None:
        m = self.state.model
        if m is None or self.pca is None:
            return
        code = torch.tensor(self.pca.inverse(xy), dtype=torch.float32)
        # Nearest training shape lends its class (condition) and colour code.
        nearest = int(np.argmin(((self.map.points - xy) ** 2).sum(axis=1)))
        ref = self.state.training_code(nearest)
        selection = CodeSelection(code, ref.colour_code, ref.condition, f"map ({xy[0]:.2f}, {xy[1]:.2f}) near {ref.label}",
                                  ref.class_name)
        # The press opened one undo step for the whole drag; the release only refines.
        self.state.select(selection, interactive=interactive, record=interactive)
