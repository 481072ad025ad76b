"""Model panel: open a checkpoint and see what it holds."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from viewer.state import ViewerState


class ModelPanel(QWidget):
    open_requested = Signal()

    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        layout = QVBoxLayout(self)
        self.open_button = QPushButton("Open checkpoint…")
        self.open_button.setToolTip("Load a trained checkpoint (.pt) — Ctrl+O; you can also drop a file on the window")
        self.open_button.clicked.connect(self.open_requested)
        self.summary = QLabel("No model loaded.\nOpen a checkpoint (File ▸ Open) or drop a .pt file here.")
        self.summary.setWordWrap(True)
        self.summary.setToolTip("Classes, codes, preset, conditioning, colour and training statistics of the model")
        layout.addWidget(self.open_button)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        state.model_changed.connect(self.refresh)

    def refresh(self) -> None:
        m = self.state.model
        if m is None:
            return
        s = m.summary()
        stats = s.get("stats", {})
        losses = stats.get("final_losses", {})
        lines = [
            f"<b>{m.path.name if m.path else 'model'}</b>",
            f"preset: {s['preset']} ({s['parameters']:,} parameters)",
            f"conditioning: {s['conditioning']}",
            f"colour: {'yes' + (' (view-dependent)' if s['view_dependent'] else '') if s['colour'] else 'no'}",
            f"codes: {s['codes']} in {len(s['classes'])} classes",
            f"classes: {', '.join(s['classes'])}",
        ]
        if stats:
            lines.append(f"trained: {stats.get('epochs', '?')} epochs, {stats.get('train_seconds', 0) / 60:.1f} min")
        if losses:
            lines.append("final losses: " + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
        self.summary.setText("<br>".join(lines))
