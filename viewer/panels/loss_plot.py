"""A small live line plot of loss curves (log scale), drawn with QPainter: no extra dependency."""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]


class LossPlot(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(120)
        self.setToolTip("Loss curves of the running fit (log scale)")
        self.series: dict[str, list[tuple[int, float]]] = {}

    def clear(self) -> None:
        self.series = {}
        self.update()

    def add(self, iteration: int, losses: dict[str, float]) -> None:
        for k, v in losses.items():
            if v is not None and math.isfinite(v) and v > 0:
                self.series.setdefault(k, []).append((iteration, float(v)))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), QColor("#ffffff"))
        pts = [pt for s in self.series.values() for pt in s]
        if not pts:
            p.drawText(self.rect(), Qt.AlignCenter, "loss curves appear here during a fit")
            return
        x_max = max(1, max(x for x, _ in pts))
        lo = math.log10(min(v for _, v in pts))
        hi = math.log10(max(v for _, v in pts))
        hi = hi if hi > lo else lo + 1
        w, h, m = self.width(), self.height(), 6
        for n, (name, series) in enumerate(self.series.items()):
            pen = QPen(QColor(COLOURS[n % len(COLOURS)]), 1.6)
            p.setPen(pen)
            poly = [QPointF(m + (w - 2 * m) * x / x_max, h - m - (h - 2 * m) * (math.log10(v) - lo) / (hi - lo))
                    for x, v in series]
            for a, b in zip(poly[:-1], poly[1:]):
                p.drawLine(a, b)
            p.drawText(m + 4, 14 + 13 * n, f"{name} {series[-1][1]:.4g}")
