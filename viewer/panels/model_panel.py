"""Model panel: open a checkpoint and see what it holds (classes, codes, preset, conditioning, colour)."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from viewer.state import ViewerState

NO_MODEL = (
    "No model loaded.<br>Pick a bundled model in the <b>Models</b> menu, open a checkpoint "
    "(<b>Ctrl+O</b>, File ▸ Open) or drop a <tt>.pt</tt> file on the window."
)


class ModelPanel(QWidget):
    """Shows :meth:`core.model.TrainedModel.summary`; asks the window to open files (it owns the dialogs)."""

    open_requested = Signal()

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.open_button = QPushButton("Open checkpoint…")
        self.open_button.setToolTip("Load a trained checkpoint (.pt) — Ctrl+O; you can also drop a file on the window")
        self.open_button.clicked.connect(self.open_requested)
        self.summary = QLabel(NO_MODEL)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setToolTip("Classes, codes, preset, conditioning, colour and training statistics of the model")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.summary)
        scroll.setToolTip(self.summary.toolTip())
        layout.addWidget(self.open_button)
        layout.addWidget(scroll, 1)
        state.model_changed.connect(self.refresh)

    def refresh(self) -> None:
        m = self.state.model
        if m is None:
            self.summary.setText(NO_MODEL)
            return
        s = m.summary()
        stats = s.get("stats") or {}
        colour = ("yes, view-dependent" if s["view_dependent"] else "yes") if s["colour"] else "no"
        rows = [
            (
                "preset",
                f"{s['preset']} ({s['parameters']:,} parameters, code {m.shape_codes.shape[1]}"
                + (f" + colour {m.colour_codes.shape[1]}" if m.colour_codes is not None else "")
                + ")",
            ),
            ("conditioning", s["conditioning"]),
            ("colour", colour),
            ("codes", f"{s['codes']} in {len(s['classes'])} classes"),
            ("classes", ", ".join(f"{c} ({len(m.codes_of_class(c))})" for c in s["classes"])),
        ]
        if stats.get("epochs") is not None:
            minutes = float(stats.get("train_seconds") or 0) / 60
            rows.append(("trained", f"{stats['epochs']} epochs, {minutes:.1f} min on {stats.get('device', '?')}"))
        losses = stats.get("final_losses") or {}
        if losses:
            rows.append(("final losses", ", ".join(f"{k} {float(v):.4f}" for k, v in losses.items())))
        name = m.path.name if m.path else "model"
        body = "".join(
            f"<tr><td style='color:#666;padding-right:6px'>{escape(k)}</td><td>{escape(str(v))}</td></tr>"
            for k, v in rows
        )
        self.summary.setText(f"<b>{escape(name)}</b><table cellspacing=0 cellpadding=1>{body}</table>")
        self.summary.setToolTip(str(m.path) if m.path else "model")
