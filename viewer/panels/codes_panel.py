"""Codes panel: pick a class, then a training shape, the class mean, a random code or a prompt."""
from __future__ import annotations

import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from core.latent_ops import random_code
from viewer.state import CodeSelection, ViewerState


class CodesPanel(QWidget):
    def __init__(self, state: ViewerState) -> None:
        super().__init__()
        self.state = state
        self._generator = torch.Generator().manual_seed(0)
        layout = QVBoxLayout(self)
        self.class_box = QComboBox()
        self.class_box.setToolTip("Class to condition on and to list shapes of")
        self.search = QLineEdit()
        self.search.setPlaceholderText("search shapes…")
        self.search.setToolTip("Filter the shape list by id")
        self.shapes = QListWidget()
        self.shapes.setToolTip("Training shapes of the class: click to show its codes")
        self.colour_box = QComboBox()
        self.colour_box.setToolTip("Colour code: the shape's own, or another shape's (geometry of one, colours of another)")
        row = QHBoxLayout()
        self.mean_button = QPushButton("Class mean")
        self.mean_button.setToolTip("The mean shape and colour code of the class")
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("A code drawn from a Gaussian fitted to the class's codes (R)")
        row.addWidget(self.mean_button)
        row.addWidget(self.random_button)
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("text prompt (text-conditioned models)")
        self.prompt.setToolTip("Condition on free text, e.g. 'a stool' — works for classes never trained (text mode only)")
        for w in (QLabel("Class"), self.class_box, self.search, self.shapes, QLabel("Colour from"), self.colour_box):
            layout.addWidget(w)
        layout.addLayout(row)
        layout.addWidget(self.prompt)

        state.model_changed.connect(self._on_model)
        self.class_box.currentTextChanged.connect(self._fill_shapes)
        self.search.textChanged.connect(self._filter)
        self.shapes.itemClicked.connect(self._pick)
        self.colour_box.activated.connect(self._pick_colour)
        self.mean_button.clicked.connect(self.pick_mean)
        self.random_button.clicked.connect(self.pick_random)
        self.prompt.returnPressed.connect(self._apply_prompt)

    def _on_model(self) -> None:
        m = self.state.model
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItems(m.class_names)
        self.class_box.blockSignals(False)
        self.colour_box.clear()
        self.colour_box.addItem("(same shape)", -1)
        for i, (c, sid) in enumerate(zip(m.shape_classes, m.shape_ids)):
            self.colour_box.addItem(f"{c}/{sid}", i)
        self.colour_box.setEnabled(m.has_colour)
        self.prompt.setEnabled(m.conditioning == "text")
        self._fill_shapes(self.class_box.currentText())

    def _fill_shapes(self, class_name: str) -> None:
        m = self.state.model
        self.shapes.clear()
        if m is None:
            return
        for i in m.codes_of_class(class_name):
            item = QListWidgetItem(m.shape_ids[i])
            item.setData(Qt.UserRole, i)
            self.shapes.addItem(item)
        self._filter(self.search.text())

    def _filter(self, text: str) -> None:
        for k in range(self.shapes.count()):
            item = self.shapes.item(k)
            item.setHidden(bool(text) and text.lower() not in item.text().lower())

    def _pick(self, item: QListWidgetItem) -> None:
        self.select_index(int(item.data(Qt.UserRole)))

    def select_index(self, index: int) -> None:
        selection = self.state.training_code(index)
        colour_index = self.colour_box.currentData()
        if colour_index is not None and colour_index >= 0 and self.state.model.colour_codes is not None:
            selection = CodeSelection(selection.shape_code, self.state.model.colour_codes[colour_index].cpu(),
                                      selection.condition, selection.label + f" in colours of {self.colour_box.currentText()}",
                                      selection.class_name)
        self.state.select(selection)

    def _pick_colour(self) -> None:
        m, sel = self.state.model, self.state.selection
        index = self.colour_box.currentData()
        if m is None or sel is None or m.colour_codes is None or index is None or index < 0:
            return
        self.state.select(CodeSelection(sel.shape_code, m.colour_codes[index].cpu(), sel.condition,
                                        f"{sel.label} in colours of {self.colour_box.currentText()}", sel.class_name))

    def _class_codes(self) -> tuple[str, list[int]]:
        cls = self.class_box.currentText()
        return cls, self.state.model.codes_of_class(cls)

    def pick_mean(self) -> None:
        m = self.state.model
        if m is None:
            return
        cls, idx = self._class_codes()
        colour = None if m.colour_codes is None else m.colour_codes[idx].mean(dim=0).cpu()
        self.state.select(CodeSelection(m.shape_codes[idx].mean(dim=0).cpu(), colour, _cpu(m.condition(cls)),
                                        f"{cls} mean", cls))

    def pick_random(self) -> None:
        m = self.state.model
        if m is None:
            return
        cls, idx = self._class_codes()
        shape = random_code(m.shape_codes[idx].cpu(), self._generator)
        colour = None if m.colour_codes is None else random_code(m.colour_codes[idx].cpu(), self._generator)
        self.state.select(CodeSelection(shape, colour, _cpu(m.condition(cls)), f"random {cls}", cls))

    def _apply_prompt(self) -> None:
        m, sel = self.state.model, self.state.selection
        text = self.prompt.text().strip()
        if m is None or sel is None or not text:
            return
        try:
            cond = m.condition(text=text)
        except Exception as exc:
            self.state.status.emit(str(exc))
            return
        self.state.select(CodeSelection(sel.shape_code, sel.colour_code, _cpu(cond), f"{sel.label} | '{text}'", None))


def _cpu(t):
    return None if t is None else t.detach().cpu()
