"""The viewer's state: the loaded model, the current codes, display options, marks, undo/redo.

Panels never talk to each other; they change this object and listen to its signals
(kaolin-wisp's shared-state pattern). Nothing here runs the network except the cheap
condition look-up of :meth:`ViewerState.training_code` (an embedding row).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from PySide6.QtCore import QObject, Signal

from core.model import TrainedModel

__all__ = ["CodeSelection", "DisplayOptions", "ViewerState"]


@dataclass(frozen=True)
class CodeSelection:
    """What to decode: shape code, colour code, class condition, and a human label.

    Tensors are CPU float32: ``shape_code`` (Ds,), ``colour_code`` (Dc,) or None,
    ``condition`` (Dcond,) or None (a model without conditioning).
    """

    shape_code: torch.Tensor
    colour_code: torch.Tensor | None
    condition: torch.Tensor | None
    label: str = ""
    class_name: str | None = None
    decoder_override: dict | None = None
    """Fine-tuned decoder weights of a TTO result (None: the model's own decoder)."""


@dataclass(frozen=True)
class DisplayOptions:
    """How the shape is drawn; changed only through :meth:`ViewerState.set_display`."""

    colour: bool = True
    """Per-vertex colours from the colour head; off = plain normal shading."""
    wireframe: bool = False
    dark_background: bool = False
    show_scan: bool = True
    slice_enabled: bool = False
    slice_axis: int = 2
    """0, 1, 2 = the plane perpendicular to x, y, z."""
    slice_position: float = 0.0
    """Plane offset along its axis, unit-sphere frame."""
    preview_resolution: int = 32
    """Grid resolution while dragging (fast, coarse): 32³ gives 10-13 previews/s with the demo
    model on 2 CPU cores and software OpenGL; the 8/s target needs about 0.1 s per preview,
    which 48³ takes on its own (benchmarks/bench_viewer.py)."""
    full_resolution: int = 128
    """Grid resolution once the interaction pauses."""


@dataclass
class _History:
    undo: list[CodeSelection] = field(default_factory=list)
    redo: list[CodeSelection] = field(default_factory=list)


class ViewerState(QObject):
    """Observable state. Signals carry no payload except the interactive flag: observers read attributes."""

    model_changed = Signal()
    selection_changed = Signal(bool)
    """True while interacting (preview resolution), False for a final edit (full resolution)."""
    display_changed = Signal()
    history_changed = Signal()
    marks_changed = Signal()
    status = Signal(str)

    UNDO_LIMIT = 200

    def __init__(self) -> None:
        super().__init__()
        self.model: TrainedModel | None = None
        self.selection: CodeSelection | None = None
        self.first_index = 0
        """The training code the model on screen opened on (:func:`start_index`)."""
        self.display = DisplayOptions()
        self.marks: dict[str, torch.Tensor] = {}
        """Named shape codes to mark on the latent map (A, B, TTO)."""
        self._history = _History()
        self._in_edit = False  # an interactive edit (drag, running fit) already opened its undo step

    # -- model ---------------------------------------------------------------------------------
    def require_model(self) -> TrainedModel:
        """The model on screen, for code that runs only once one is loaded (``model_changed`` observers,
        controls enabled with a model); :class:`RuntimeError` before."""
        if self.model is None:
            raise RuntimeError("no model is loaded yet")
        return self.model

    def require_selection(self) -> CodeSelection:
        """The codes on screen, for code that runs only once a model is shown (:meth:`set_model` selects
        a code); :class:`RuntimeError` before."""
        if self.selection is None:
            raise RuntimeError("no code is selected yet")
        return self.selection

    def set_model(self, model: TrainedModel, first_shape: str | None = None) -> None:
        """Show ``model``, starting on training shape ``first_shape`` (a bundled model's card names one)
        or else the first code of its first class; history is cleared."""
        self.model = model
        self._history = _History()
        self._in_edit = False
        self.marks = {}
        self.first_index = start_index(model, first_shape)
        self.selection = self.training_code(self.first_index)
        self.model_changed.emit()
        self.history_changed.emit()
        self.marks_changed.emit()
        self.selection_changed.emit(False)

    def training_code(self, index: int) -> CodeSelection:
        """The learned codes of training shape ``index`` with the condition it was trained with."""
        m = self.require_model()
        cls = m.shape_classes[index]
        return CodeSelection(
            m.shape_codes[index].detach().cpu(),
            None if m.colour_codes is None else m.colour_codes[index].detach().cpu(),
            _cpu(m.training_condition(index)),
            f"{cls}/{m.shape_ids[index]}",
            cls,
        )

    # -- codes ---------------------------------------------------------------------------------
    def select(self, selection: CodeSelection, interactive: bool = False, record: bool = True) -> None:
        """Show ``selection``.

        A final edit (``interactive=False``) is one undo step. An interactive edit (slider or
        map drag, a running fit) opens one undo step on its first call; the calls that follow
        join it until :meth:`finish_interaction` or a final edit closes it.
        """
        if record and self.selection is not None and not self._in_edit:
            self._history.undo.append(self.selection)
            del self._history.undo[: -self.UNDO_LIMIT]
            self._history.redo.clear()
            self.history_changed.emit()
        self._in_edit = interactive
        self.selection = selection
        self.selection_changed.emit(interactive)

    def finish_interaction(self) -> None:
        """The drag ended (or paused): close its undo step and refine at full resolution."""
        self._in_edit = False
        if self.selection is not None:
            self.selection_changed.emit(False)

    def cancel_interaction(self, before: CodeSelection) -> None:
        """Abandon an edit that began at ``before`` (a cancelled shape edit): show ``before`` again.

        The undo step the edit opened (``before`` on top of the undo stack) is dropped, so neither
        undo nor redo offers the abandoned codes.
        """
        self._in_edit = False
        if self._history.undo and self._history.undo[-1] is before:
            self._history.undo.pop()
            self.history_changed.emit()
        self.selection = before
        self.selection_changed.emit(False)

    def can_undo(self) -> bool:
        return bool(self._history.undo)

    def can_redo(self) -> bool:
        return bool(self._history.redo)

    def undo(self) -> None:
        self._step(self._history.undo, self._history.redo)

    def redo(self) -> None:
        self._step(self._history.redo, self._history.undo)

    def _step(self, source: list, target: list) -> None:
        """Undo and redo are the same move between the two stacks, in opposite directions."""
        if not source:
            return
        self._in_edit = False
        target.append(self.selection)
        self.selection = source.pop()
        self.history_changed.emit()
        self.selection_changed.emit(False)

    # -- marks and display ---------------------------------------------------------------------
    def set_mark(self, name: str, code: torch.Tensor | None) -> None:
        """Mark a shape code (A, B, TTO) on the latent map; None removes the mark."""
        if code is None:
            if self.marks.pop(name, None) is None:
                return
        else:
            self.marks[name] = code.detach().cpu()
        self.marks_changed.emit()

    def set_display(self, **changes) -> None:
        self.display = replace(self.display, **changes)
        self.display_changed.emit()


def _cpu(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().cpu()


def start_index(model: TrainedModel, first_shape: str | None = None) -> int:
    """The code a model opens on: ``first_shape`` when the model has it, else its first class's first code."""
    if first_shape is not None and first_shape in model.shape_ids:
        return model.shape_ids.index(first_shape)
    first = model.class_names[0] if model.class_names else None
    idx = model.codes_of_class(first) if first else [0]
    return idx[0] if idx else 0
