"""A cancelled evaluation returns the rows it finished, marked partial, and every file it writes says so."""

from __future__ import annotations

import json

from core.evaluation.ablation import run_ablation
from core.evaluation.held_out_split import list_split
from core.evaluation.loop import SplitRows, evaluate_split
from core.evaluation.report import write_results
from core.evaluation.settings import EvalSettings
from core.tto.config import TTOConfig

SETTINGS = EvalSettings(resolution=24, use_trained_codes=True, n_eval_points=500, grid_reference=False)


def test_cancel_between_shapes_marks_the_rows_partial(toy_trained, tmp_path):
    shapes = list_split(toy_trained["data"], "train")
    done: list[str] = []
    rows = evaluate_split(
        toy_trained["model"],
        shapes,
        TTOConfig(),
        SETTINGS,
        progress=lambda i, n, row: done.append(row["id"]),
        cancel=lambda: len(done) >= 2,
    )
    assert isinstance(rows, SplitRows) and rows.cancelled and rows.n_shapes == len(shapes) > 2
    assert [r["id"] for r in rows] == done == [s.id for s in shapes[:2]]

    write_results(tmp_path, rows, TTOConfig(), SETTINGS)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["cancelled"] is True and data["n_shapes"] == len(shapes) and len(data["rows"]) == 2
    assert f"Cancelled after 2 of {len(shapes)} shapes" in (tmp_path / "summary.md").read_text()


def test_a_complete_run_is_not_marked(toy_trained, tmp_path):
    shapes = list_split(toy_trained["data"], "train")[:1]
    rows = evaluate_split(toy_trained["model"], shapes, TTOConfig(), SETTINGS)
    assert not rows.cancelled and len(rows) == 1 and "error" not in rows[0]
    write_results(tmp_path, rows, TTOConfig(), SETTINGS)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["cancelled"] is False and data["n_shapes"] == 1
    assert "Cancelled" not in (tmp_path / "summary.md").read_text()
    write_results(tmp_path / "plain", list(rows), TTOConfig(), SETTINGS)  # a plain list of rows: complete
    assert json.loads((tmp_path / "plain" / "results.json").read_text())["cancelled"] is False


def test_a_fit_cancelled_mid_way_gives_no_row_and_stops_the_ablation(toy_trained, tmp_path):
    shapes = list_split(toy_trained["data"], "test")
    settings = EvalSettings(resolution=24, n_eval_points=500, grid_reference=False)
    config = TTOConfig.from_losses("baseline", iterations=5, n_samples=256)
    calls = {"n": 0}

    def cancel() -> bool:  # false at the check before the first shape, true from inside its fit on
        calls["n"] += 1
        return calls["n"] > 1

    summaries, table = run_ablation(
        toy_trained["model"], shapes, ["baseline", "surface"], config, settings, tmp_path, cancel=cancel
    )
    assert list(summaries) == ["baseline"] and summaries["baseline"]["all"]["n"] == 0
    assert "Cancelled after 0 of" in table and "not run" in table
    assert json.loads((tmp_path / "baseline" / "results.json").read_text())["cancelled"] is True
    assert not (tmp_path / "surface").exists()
    assert "not run" in (tmp_path / "ablation.md").read_text()
