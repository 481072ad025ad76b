"""A small live plot of loss curves (log scale), drawn with QPainter: cheap to repaint every report."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

COLOURS = {
    "total": "#222222",
    "sdf": "#1f77b4",
    "surface": "#2ca02c",
    "normal": "#9467bd",
    "colour": "#d62728",
    "reg": "#8c564b",
}
SHOWN = tuple(COLOURS)
"""Loss terms drawn (``l1`` duplicates ``sdf`` for the baseline and is left out)."""


class LossPlot(QWidget):
    """Loss terms against iterations; class-inference trials are not drawn (they restart at 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.setMinimumHeight(130)
        self.setToolTip("Loss terms of the running fit against iterations (log scale)")
        self.series: dict[str, list[tuple[int, float]]] = {}

    def clear(self) -> None:
        self.series = {}
        self.update()

    def add(self, iteration: int, losses: dict[str, float], stage: str = "code") -> None:
        if stage.startswith("class:"):
            return
        for k, v in losses.items():
            if k in SHOWN and v is not None and math.isfinite(v) and v > 0:
                points = self.series.setdefault(k, [])
                if points and points[-1][0] == iteration:
                    points[-1] = (iteration, float(v))
                else:
                    points.append((iteration, float(v)))
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#ffffff"))
        p.setPen(QColor("#cccccc"))
        p.drawRect(self.rect().adjusted(0, 0, -1, -1))
        pts = [pt for s in self.series.values() for pt in s]
        if not pts:
            p.setPen(QColor("#888888"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loss curves appear here during a fit")
            return
        x_max = max(1, max(x for x, _ in pts))
        hi = math.ceil(math.log10(max(v for _, v in pts)))
        # At most 4 decades: a tiny term (the code prior) must not flatten the others.
        lo = max(math.floor(math.log10(min(v for _, v in pts))), hi - 4)
        hi = hi if hi > lo else lo + 1
        area = QRectF(34, 6, max(1, self.width() - 40), max(1, self.height() - 22))

        def to_px(x: float, v: float) -> QPointF:
            y = min(max(math.log10(v), lo), hi)
            return QPointF(area.left() + area.width() * x / x_max, area.bottom() - area.height() * (y - lo) / (hi - lo))

        p.setPen(QColor("#999999"))
        for e in range(lo, hi + 1):
            y = to_px(0, 10.0**e).y()
            p.setPen(QPen(QColor("#eeeeee"), 1))
            p.drawLine(QPointF(area.left(), y), QPointF(area.right(), y))
            p.setPen(QColor("#888888"))
            p.drawText(QRectF(0, y - 7, 31, 14), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"1e{e}")
        p.drawText(QRectF(area.left(), area.bottom() + 2, area.width(), 14), Qt.AlignmentFlag.AlignRight, f"{x_max} it")
        for name, series in self.series.items():
            p.setPen(QPen(QColor(COLOURS.get(name, "#ff7f0e")), 1.6))
            visible = [(x, v) for x, v in series if math.log10(v) >= lo]  # terms below the range: legend only
            poly = [to_px(x, v) for x, v in visible]
            for a, b in zip(poly[:-1], poly[1:], strict=True):
                p.drawLine(a, b)
            if len(poly) == 1:
                p.drawEllipse(poly[0], 2, 2)
        # Legend with the latest values, on a light box in the top-right corner.
        legend = QRectF(area.right() - 112, area.top() + 2, 110, 4 + 13 * len(self.series))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(255, 255, 255, 215))
        p.drawRect(legend)
        for n, (name, series) in enumerate(self.series.items()):
            p.setPen(QColor(COLOURS.get(name, "#ff7f0e")))
            p.drawText(QPointF(legend.left() + 4, legend.top() + 13 * (n + 1)), f"{name} {series[-1][1]:.3g}")
