"""The trained models shipped in ``resources/``: one folder per model, described by its ``model.json`` card.

A new user should be able to switch between the models the project ships (the procedural demo,
a real-object model) without knowing where their files live; the viewer's Models menu and the
headless screenshots of ``make run`` list what this module finds. A folder is a bundled model
when it holds a ``model.json`` card::

    resources/<key>/model.json   {"title": "Procedural demo (7 classes)",
                                  "description": "...", "checkpoint": "demo.pt", "licence": "MIT ..."}

An optional ``"first_shape"`` names the training shape the viewer opens the model on (the first
shape a user sees is what they judge a model by; without it, the first code of the first class).
Adding a model is adding such a folder; nothing else names it. A card that cannot be used
(invalid JSON, a missing field, a checkpoint that is not there) is logged as a warning naming the
file, the reason and the fix, and that folder is skipped: one bad folder never hides the others
or stops the viewer from starting.

The resources root is ``<project>/resources``, or the folder the environment variable
``DEEPSDF_RESOURCES`` names (tests and packagers point it elsewhere).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BundledModel",
    "CARD_NAME",
    "DEFAULT_KEY",
    "RESOURCES_ENV",
    "bundled_models",
    "default_bundled_model",
    "resources_root",
]

log = logging.getLogger(__name__)

CARD_NAME = "model.json"
"""The file that makes a folder of the resources root a bundled model."""
DEFAULT_KEY = "demo"
"""The model listed first and opened when no checkpoint is given."""
RESOURCES_ENV = "DEEPSDF_RESOURCES"
"""Environment variable naming another resources root (default: the project's ``resources/``)."""
PROJECT_RESOURCES = Path(__file__).resolve().parents[2] / "resources"
REQUIRED_TEXT_FIELDS = ("title", "checkpoint", "licence")
OPTIONAL_TEXT_FIELDS = ("description", "first_shape")


@dataclass(frozen=True)
class BundledModel:
    """One model shipped in the resources root, as its card describes it."""

    key: str
    """The folder's name (``demo``, ``real``); stable, used for screenshot folders."""
    title: str
    """What a menu shows, e.g. ``Procedural demo (7 classes)``."""
    description: str
    """A sentence or two on what it was trained on and what it does well and badly."""
    checkpoint: Path
    """The checkpoint file, absolute (the card names it relative to ``folder``)."""
    folder: Path
    """``<resources>/<key>``: the card, the checkpoint, its README and training log."""
    licence: str
    """One line: the model's licence and the licences of what it was trained on (CC-BY asks for credit)."""
    first_shape: str | None = None
    """The training shape id the viewer opens this model on (a shape that shows what the model does);
    None, or an id the checkpoint lacks: the first code of its first class."""


class _CardError(ValueError):
    """A card that cannot be used; the message says why and how to fix it."""


def resources_root() -> Path:
    """``$DEEPSDF_RESOURCES`` when set, else the project's ``resources/`` folder."""
    env = os.environ.get(RESOURCES_ENV, "").strip()
    return Path(env).expanduser() if env else PROJECT_RESOURCES


def _read_card(folder: Path) -> BundledModel:
    """The card in ``folder`` as a :class:`BundledModel`; :class:`_CardError` naming what is wrong."""
    card = folder / CARD_NAME
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise _CardError(f"not UTF-8 text ({exc.reason}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise _CardError(f"invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); fix the syntax") from None
    if not isinstance(data, dict):
        raise _CardError(f"expected a JSON object with {', '.join(REQUIRED_TEXT_FIELDS)}, got {type(data).__name__}")
    for name in REQUIRED_TEXT_FIELDS + OPTIONAL_TEXT_FIELDS:
        value = data.get(name)
        if name in REQUIRED_TEXT_FIELDS and value is None:
            raise _CardError(f'the field "{name}" is missing; add it as a string')
        if value is not None and (not isinstance(value, str) or (name in REQUIRED_TEXT_FIELDS and not value.strip())):
            raise _CardError(f'the field "{name}" must be a non-empty string, got {value!r}')
    relative = Path(data["checkpoint"])
    if relative.is_absolute() or ".." in relative.parts:
        raise _CardError(f'"checkpoint": {data["checkpoint"]!r} must name a file inside {folder}, relative to it')
    checkpoint = folder / relative
    if not checkpoint.is_file():
        raise _CardError(f'"checkpoint": {checkpoint} does not exist; put the checkpoint there or correct the name')
    return BundledModel(
        key=folder.name,
        title=data["title"].strip(),
        description=(data.get("description") or "").strip(),
        checkpoint=checkpoint,
        folder=folder,
        licence=data["licence"].strip(),
        first_shape=(data.get("first_shape") or "").strip() or None,
    )


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log ``message`` once per process: the viewer and the screenshot run list the models several times."""
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def bundled_models(root: Path | None = None) -> list[BundledModel]:
    """Every usable model card under ``root`` (default :func:`resources_root`): ``demo`` first, then by key.

    Folders without a card (icons, scans) are not models and are passed over silently; a folder
    whose card cannot be used is skipped with a logged warning. A missing root gives ``[]``.
    """
    root = Path(root) if root is not None else resources_root()
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / CARD_NAME).is_file())
    except OSError:
        return []
    models: list[BundledModel] = []
    for folder in folders:
        try:
            models.append(_read_card(folder))
        except (_CardError, OSError) as exc:
            _warn_once(f"{folder / CARD_NAME}: skipped this bundled model: {exc}")
    return sorted(models, key=lambda m: (m.key != DEFAULT_KEY, m.key))


def default_bundled_model(root: Path | None = None) -> BundledModel | None:
    """The model opened when none is named: ``demo`` when it is there, else the first listed, else None."""
    models = bundled_models(root)
    return models[0] if models else None
