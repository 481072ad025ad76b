"""scripts/results_report.py: a bundled model's measured figures into its ``model.json`` card, atomically.

The input is real: ``tests/data/model_figures/real_known_results.json`` is the ``results.json`` that
``main.py evaluate --split train --use-trained-codes --limit 5 --resolution 128`` wrote for the shipped
real-object model on 2026-12-04 (its summary whole, its per-shape rows cut to two). The cards are copies
of the shipped demo's card and checkpoint, read back by ``core.model.bundled_models`` as the viewer does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from core.model.bundled_models import CARD_NAME, PROJECT_RESOURCES, bundled_models
from scripts import results_report

REAL_KNOWN = Path(__file__).parent / "data" / "model_figures" / "real_known_results.json"
README = Path(__file__).resolve().parents[1] / "README.md"


def demo_copy(root: Path) -> Path:
    """``root/demo/`` holding the shipped demo's checkpoint and its card as shipped; returns the card."""
    folder = root / "demo"
    folder.mkdir(parents=True)
    for name in ("demo.pt", CARD_NAME):
        shutil.copyfile(PROJECT_RESOURCES / "demo" / name, folder / name)
    return folder / CARD_NAME


def test_evaluation_figures_reads_the_summary_of_all_shapes():
    group = results_report.evaluation_figures(REAL_KNOWN, "python main.py evaluate ...", date="2026-12-04")
    assert group == {
        "shapes": 55,
        "f1_pct": 81.4,
        "thin_f1_pct": 59.1,
        "chamfer_x1e3_mean": 2.181,
        "chamfer_x1e3_median": 0.987,
        "psnr_db": 20.1,
        "resolution": 128,
        "losses": None,
        "command": "python main.py evaluate ...",
        "date": "2026-12-04",
    }


def test_evaluation_figures_dates_the_measurement_by_the_results_file(tmp_path):
    results = tmp_path / "results.json"
    shutil.copyfile(REAL_KNOWN, results)
    os.utime(results, (1_796_000_000, 1_796_000_000))  # 2026-11-30 UTC
    assert results_report.evaluation_figures(results, "cmd")["date"] == "2026-11-30"


def test_a_results_file_without_a_summary_is_refused_by_name(tmp_path):
    bad = tmp_path / "ablation.json"
    bad.write_text(json.dumps({"baseline": {}}), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        results_report.evaluation_figures(bad, "cmd")


def test_figures_go_into_the_card_which_the_viewer_still_reads(tmp_path):
    card = demo_copy(tmp_path)
    before = json.loads(card.read_text(encoding="utf-8"))
    known = results_report.evaluation_figures(REAL_KNOWN, "python main.py evaluate ...", date="2026-12-04")

    results_report.write_model_figures(card, {"known": known})

    after = json.loads(card.read_text(encoding="utf-8"))
    assert after["figures"]["known"] == known
    # the other groups (the benchmarks' speed figures) and every other field are kept, in their order
    assert {k: v for k, v in after["figures"].items() if k != "known"} == {
        k: v for k, v in before["figures"].items() if k != "known"
    }
    assert list(after) == list(before)
    assert {k: v for k, v in after.items() if k != "figures"} == {k: v for k, v in before.items() if k != "figures"}
    models = bundled_models(tmp_path)
    assert [m.key for m in models] == ["demo"]
    assert models[0].title == before["title"] and models[0].checkpoint == card.parent / "demo.pt"


def test_a_card_without_figures_gets_them(tmp_path):
    card = demo_copy(tmp_path)
    data = json.loads(card.read_text(encoding="utf-8"))
    del data["figures"]
    card.write_text(json.dumps(data), encoding="utf-8")
    results_report.write_model_figures(card, {"held_out": None})
    assert json.loads(card.read_text(encoding="utf-8"))["figures"] == {"held_out": None}


def test_a_failed_write_leaves_the_old_card_whole_and_no_temporary_file(tmp_path):
    card = demo_copy(tmp_path)
    old = card.read_bytes()
    with pytest.raises(ValueError):
        results_report.write_model_figures(card, {"known": {"f1_pct": float("nan")}})
    assert card.read_bytes() == old
    assert sorted(p.name for p in card.parent.iterdir()) == ["demo.pt", CARD_NAME]


def test_a_card_that_is_not_an_object_is_refused_naming_it(tmp_path):
    card = tmp_path / CARD_NAME
    card.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(card))):
        results_report.write_model_figures(card, {"known": None})
    assert card.read_text(encoding="utf-8") == "[1, 2]"


def test_every_shipped_card_has_figures_and_the_readme_table_shows_them():
    """The README's "Shipped models" row of each card shows the card's figures (one source, two places)."""
    readme = README.read_text(encoding="utf-8")
    for model in bundled_models(PROJECT_RESOURCES):
        card = json.loads((model.folder / CARD_NAME).read_text(encoding="utf-8"))
        figures = card["figures"]
        assert set(figures) >= {"known", "held_out", "fit", "mesh_128"}, model.key
        row = next(
            (
                line
                for line in readme.splitlines()
                if line.startswith("|") and f"resources/{model.key}/README.md" in line
            ),
            None,
        )
        assert row is not None, f"README.md has no Shipped models row linking resources/{model.key}/README.md"
        assert card["version"] in row
        for group in ("known", "held_out"):
            if figures[group]:
                assert f"{figures[group]['f1_pct']:.1f}" in row, (model.key, group)
        if figures["mesh_128"]:
            assert f"{figures['mesh_128']['seconds']:.2f}" in row, model.key
