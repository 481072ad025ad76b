"""``core.model.bundled_models``: which folders of resources/ are models, in which order, and what a bad card does.

The resources roots here are made in tmp folders from the shipped demo checkpoint; the last
tests read the project's own resources/ (the cards the viewer and ``make run`` list).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from core.model.bundled_models import (
    CARD_NAME,
    PROJECT_RESOURCES,
    RESOURCES_ENV,
    bundled_models,
    default_bundled_model,
    resources_root,
)

DEMO = PROJECT_RESOURCES / "demo"


def write_model(root: Path, key: str, **card) -> Path:
    """``root/key/`` with a copy of the demo checkpoint and a card (fields overridable; None drops one)."""
    folder = root / key
    folder.mkdir(parents=True)
    shutil.copyfile(DEMO / "demo.pt", folder / "model.pt")
    fields = {
        "title": f"Model {key}",
        "description": f"what {key} was trained on",
        "checkpoint": "model.pt",
        "licence": f"CC0 ({key})",
    }
    fields.update(card)
    (folder / CARD_NAME).write_text(json.dumps({k: v for k, v in fields.items() if v is not None}), encoding="utf-8")
    return folder


def test_discovers_model_folders_demo_first_and_skips_a_broken_card_with_a_warning(tmp_path, caplog):
    write_model(tmp_path, "real", title="Real objects (4 classes)")
    write_model(tmp_path, "demo")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CARD_NAME).write_text('{"title": "half a card",', encoding="utf-8")
    (tmp_path / "icons").mkdir()  # no card: not a model, passed over without a word
    (tmp_path / "icons" / "icon.png").write_bytes(b"not a model")

    with caplog.at_level(logging.WARNING, logger="core.model.bundled_models"):
        models = bundled_models(tmp_path)

    assert [m.key for m in models] == ["demo", "real"]
    real = models[1]
    assert real.title == "Real objects (4 classes)" and real.description == "what real was trained on"
    assert real.licence == "CC0 (real)" and real.folder == tmp_path / "real"
    assert real.checkpoint == tmp_path / "real" / "model.pt" and real.checkpoint.is_file()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(broken / CARD_NAME) in warnings[0] and "invalid JSON" in warnings[0]


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ({"checkpoint": "missing.pt"}, "does not exist"),
        ({"checkpoint": None}, '"checkpoint" is missing'),
        ({"licence": None}, '"licence" is missing'),
        ({"title": ""}, '"title" must be a non-empty string'),
        ({"description": 3}, '"description" must be a non-empty string'),
        ({"checkpoint": "../demo/model.pt"}, "must name a file inside"),
    ],
)
def test_an_unusable_card_is_skipped_naming_the_file_and_the_reason(tmp_path, caplog, card, reason):
    write_model(tmp_path, "demo")
    bad = write_model(tmp_path, "bad", **card)
    with caplog.at_level(logging.WARNING, logger="core.model.bundled_models"):
        models = bundled_models(tmp_path)
    assert [m.key for m in models] == ["demo"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(str(bad / CARD_NAME) in m and reason in m for m in messages), messages


def test_a_card_that_is_not_an_object_is_skipped(tmp_path, caplog):
    folder = write_model(tmp_path, "listy")
    (folder / CARD_NAME).write_text("[1, 2]", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="core.model.bundled_models"):
        assert bundled_models(tmp_path) == []
    assert any("expected a JSON object" in r.getMessage() for r in caplog.records)


def test_default_is_the_demo_else_the_first_key_else_none(tmp_path):
    assert bundled_models(tmp_path / "no such folder") == []
    assert default_bundled_model(tmp_path) is None
    write_model(tmp_path, "zebra")
    write_model(tmp_path, "alpha")
    assert [m.key for m in bundled_models(tmp_path)] == ["alpha", "zebra"]
    assert default_bundled_model(tmp_path).key == "alpha"
    write_model(tmp_path, "demo")
    assert [m.key for m in bundled_models(tmp_path)] == ["demo", "alpha", "zebra"]
    assert default_bundled_model(tmp_path).key == "demo"


def test_the_resources_root_can_be_moved_by_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(RESOURCES_ENV, raising=False)
    assert resources_root() == PROJECT_RESOURCES
    write_model(tmp_path, "real")
    monkeypatch.setenv(RESOURCES_ENV, str(tmp_path))
    assert resources_root() == tmp_path
    assert [m.key for m in bundled_models()] == ["real"]
    assert default_bundled_model().checkpoint == tmp_path / "real" / "model.pt"


def test_every_shipped_card_is_usable_and_the_demo_comes_first(caplog, monkeypatch):
    """The cards in resources/ itself: none is skipped, and the demo opens by default."""
    monkeypatch.delenv(RESOURCES_ENV, raising=False)
    cards = sorted(p.parent.name for p in PROJECT_RESOURCES.glob(f"*/{CARD_NAME}"))
    with caplog.at_level(logging.WARNING, logger="core.model.bundled_models"):
        models = bundled_models()
    assert sorted(m.key for m in models) == cards
    assert not [r for r in caplog.records if r.name == "core.model.bundled_models"]
    demo = default_bundled_model()
    assert demo.key == "demo" and demo.checkpoint == DEMO / "demo.pt"
    assert demo.title == "Procedural demo (7 classes)" and "MIT" in demo.licence and demo.description
    assert all(m.licence and m.description for m in models), "a shipped model must say what it is and its licence"
