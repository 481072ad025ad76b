"""Codes panel: pick a class, then a training shape, the class mean, a random code or a text prompt.

The colour code is picked separately, so one shape can be shown in another shape's colours.
"""

from __future__ import annotations

import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.model.latent_ops import random_code
from viewer.state import CodeSelection, ViewerState
from viewer.workers import run_task

SAME_SHAPE = -1


class CodesPanel(QWidget):
    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self._generator = torch.Generator().manual_seed(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.class_box = QComboBox()
        self.class_box.setToolTip("Class to condition on and to list the training shapes of")
        self.search = QLineEdit()
        self.search.setPlaceholderText("search shapes…")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Filter the shape list by id (or text description)")
        self.shapes = QListWidget()
        self.shapes.setToolTip("Training shapes of the class: click (or Enter) to show its learned codes")
        self.colour_box = QComboBox()
        self.colour_box.setToolTip(
            "Colour code: the shape's own, or another training shape's (geometry of one, colours of another)"
        )
        row = QHBoxLayout()
        self.mean_button = QPushButton("Class mean")
        self.mean_button.setToolTip("The mean shape and colour codes of the class")
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("Codes drawn from a Gaussian fitted to the class's codes (N)")
        row.addWidget(self.mean_button)
        row.addWidget(self.random_button)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("text prompt, Enter to apply")
        self.prompt.setToolTip(
            "Condition on free text, e.g. 'a tall stool' (text-conditioned models only; the current shape code is kept)"
        )
        self.current = QLabel("")
        self.current.setWordWrap(True)
        self.current.setToolTip("The codes on screen")
        layout.addWidget(QLabel("Class"))
        layout.addWidget(self.class_box)
        layout.addWidget(self.search)
        layout.addWidget(self.shapes, 1)
        layout.addWidget(QLabel("Colour from"))
        layout.addWidget(self.colour_box)
        layout.addLayout(row)
        layout.addWidget(self.prompt)
        layout.addWidget(self.current)
        self.setEnabled(False)

        state.model_changed.connect(self._on_model)
        state.selection_changed.connect(self._on_selection)
        self.class_box.currentTextChanged.connect(self._fill_shapes)
        self.search.textChanged.connect(self._filter)
        self.shapes.itemClicked.connect(self._pick)
        self.shapes.itemActivated.connect(self._pick)
        self.colour_box.activated.connect(self._pick_colour)
        self.mean_button.clicked.connect(self.pick_mean)
        self.random_button.clicked.connect(self.pick_random)
        self.prompt.returnPressed.connect(self._apply_prompt)

    def _on_model(self) -> None:
        m = self.state.require_model()
        self.setEnabled(True)
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItems(m.class_names)
        opened_on = self.state.first_index  # the class and shape the model opened on (a card may choose it)
        if m.shape_classes:
            self.class_box.setCurrentText(m.shape_classes[opened_on])
        self.class_box.blockSignals(False)
        self.colour_box.clear()
        self.colour_box.addItem("(same shape)", SAME_SHAPE)
        for i, (c, sid) in enumerate(zip(m.shape_classes, m.shape_ids, strict=True)):
            self.colour_box.addItem(f"{c}/{sid}", i)
        self.colour_box.setEnabled(m.has_colour)
        text_mode = m.conditioning == "text"
        self.prompt.setEnabled(text_mode)
        self.prompt.setPlaceholderText(
            "text prompt, Enter to apply"
            if text_mode
            else f"text prompts need a text-conditioned model (this one: {m.conditioning})"
        )
        self._fill_shapes(self.class_box.currentText())
        for k in range(self.shapes.count()):  # highlighted only: itemClicked / itemActivated pick
            if self.shapes.item(k).data(Qt.ItemDataRole.UserRole) == opened_on:
                self.shapes.setCurrentRow(k)

    def _on_selection(self, _interactive: bool) -> None:
        sel = self.state.selection
        self.current.setText(f"showing <b>{sel.label}</b>" if sel is not None else "")

    def _fill_shapes(self, class_name: str) -> None:
        m = self.state.model
        self.shapes.clear()
        if m is None:
            return
        for i in m.codes_of_class(class_name):
            item = QListWidgetItem(m.shape_ids[i])
            item.setData(Qt.ItemDataRole.UserRole, i)
            text = m.shape_texts[i]
            if text:
                item.setToolTip(text)
            self.shapes.addItem(item)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for k in range(self.shapes.count()):
            item = self.shapes.item(k)
            haystack = f"{item.text()} {item.toolTip()}".lower()
            item.setHidden(bool(needle) and needle not in haystack)

    def _pick(self, item: QListWidgetItem) -> None:
        self.select_index(int(item.data(Qt.ItemDataRole.UserRole)))

    def select_index(self, index: int) -> None:
        """Show training shape ``index``, in the colours picked in "Colour from" (its own by default)."""
        selection = self.state.training_code(index)
        colour_index = self.colour_box.currentData()
        colour_codes = self.state.require_model().colour_codes  # training_code above needs the model too
        if colour_index is not None and colour_index != SAME_SHAPE and colour_codes is not None:
            selection = CodeSelection(
                selection.shape_code,
                colour_codes[colour_index].detach().cpu(),
                selection.condition,
                f"{selection.label} in colours of {self.colour_box.currentText()}",
                selection.class_name,
            )
        self.state.select(selection)

    def _pick_colour(self) -> None:
        m, sel = self.state.model, self.state.selection
        index = self.colour_box.currentData()
        if m is None or sel is None or m.colour_codes is None or index is None:
            return
        if index == SAME_SHAPE:
            own = sel.label.split(" in colours of ")[0]
            if own in [f"{c}/{s}" for c, s in zip(m.shape_classes, m.shape_ids, strict=True)]:
                self.select_index(m.index_of(own.split("/", 1)[1]))
            return
        base = sel.label.split(" in colours of ")[0]
        self.state.select(
            CodeSelection(
                sel.shape_code,
                m.colour_codes[index].detach().cpu(),
                sel.condition,
                f"{base} in colours of {self.colour_box.currentText()}",
                sel.class_name,
                sel.decoder_override,
            )
        )

    def _class_codes(self) -> tuple[str, list[int]]:
        cls = self.class_box.currentText()
        return cls, self.state.require_model().codes_of_class(cls)

    def pick_mean(self) -> None:
        m = self.state.model
        if m is None:
            return
        cls, idx = self._class_codes()
        colour = None if m.colour_codes is None else m.colour_codes[idx].mean(dim=0).detach().cpu()
        self.state.select(
            CodeSelection(
                m.shape_codes[idx].mean(dim=0).detach().cpu(), colour, _cpu(m.condition(cls)), f"{cls} mean", cls
            )
        )

    def pick_random(self) -> None:
        m = self.state.model
        if m is None:
            return
        cls, idx = self._class_codes()
        shape = random_code(m.shape_codes[idx].detach().cpu(), self._generator)
        colour = None if m.colour_codes is None else random_code(m.colour_codes[idx].detach().cpu(), self._generator)
        self.state.select(CodeSelection(shape, colour, _cpu(m.condition(cls)), f"random {cls}", cls))

    def _apply_prompt(self) -> None:
        """Encode the prompt on a worker (the sentence encoder may take seconds to load)."""
        m, sel = self.state.model, self.state.selection
        text = self.prompt.text().strip()
        if m is None or sel is None or not text:
            return
        self.state.status.emit(f"encoding '{text}'…")

        def done(cond) -> None:
            current = self.state.selection
            if self.state.model is m and current is not None:
                base = current.label.split(" | ")[0]
                self.state.select(
                    CodeSelection(
                        current.shape_code,
                        current.colour_code,
                        _cpu(cond),
                        f"{base} | '{text}'",
                        None,
                        current.decoder_override,
                    )
                )

        run_task(lambda: m.condition(text=text), done, self.state.status.emit)


def _cpu(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().cpu()
