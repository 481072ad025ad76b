"""Stage 3 of the results: the study's tables and the shipped models' figures, from scripts/results.py's evaluations.

    python scripts/results_report.py                  # the study's tables (between the markers of REPORT)
    python scripts/results_report.py --models [KEY …]  # the figures of resources/<key>/model.json

The study's tables (conditioning modes, thin-structure TTO losses, colour; first measured
2026-11-25) go between two markers of its dated file in docs/experiments/. Cells of runs that were
not evaluated say so ("not run") rather than being left out.

``--models`` reads what ``scripts/results.py --stages models`` measured for each bundled model
(``runs/models/<key>/known`` and ``held_out``) and writes it into that model's card as its
``figures`` (the card's other fields are kept; the speed groups, which come from the benchmarks, are
kept unless measured again). A group that was not evaluated is left as it was.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from pathlib import Path
from typing import Any

from core.model.bundled_models import CARD_NAME, bundled_models
from core.utils.io_utils import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
REPORT = ROOT / "docs" / "experiments" / "2026-11-25-conditioning-thin-colour.md"
"""Where the study's tables go (between ``TABLES_START`` and ``TABLES_END``)."""
TABLES_START, TABLES_END = "<!-- tables:start (scripts/results_report.py) -->", "<!-- tables:end -->"
MODEL_RUNS = RUNS / "models"
"""``scripts/results.py --stages models`` evaluates bundled model ``key`` into ``MODEL_RUNS/key/<group>``."""
FIGURE_GROUPS = ("known", "held_out")
"""The card's figure groups this script writes: training shapes with their codes, held-out shapes by TTO."""
FIGURE_FIELDS = {
    "f1_pct": ("F@1 %", 1),
    "thin_f1_pct": ("thin F@1 %", 1),
    "chamfer_x1e3_mean": ("CD×10³ mean", 3),
    "chamfer_x1e3_median": ("CD×10³ median", 3),
    "psnr_db": ("PSNR dB", 1),
}
"""Card field -> (the ``main.py evaluate`` summary column it comes from, decimals kept)."""
MODES = ("none", "onehot", "embedding", "text")
LOSS_SETS = ("baseline", "surface", "curriculum", "coarse_to_fine", "finetune", "all")


def _summary(path: Path) -> dict | None:
    if not path.exists():
        return None
    return json.loads(path.read_text())["summary"]


def _f(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def _rows_all(paths: list[Path]) -> list[dict]:
    rows = []
    for p in paths:
        if p.exists():
            rows += json.loads(p.read_text())["rows"]
    return rows


def conditioning() -> str:
    out = [
        "## 1. Generalisation across classes: conditioning modes\n",
        "Every mode after 150 epochs of the same schedule (batch 8 shapes × 2,048 samples). "
        "Known = training shapes with their trained codes (4 per class); unknown = held-out test shapes "
        "fitted by TTO (baseline DeepSDF losses, 150 iterations, 3,000 samples per step). Chamfer ×10³ "
        "(unit-sphere frame, squared distances, DeepSDF's convention), F-score at 1 % of the shape's size.\n",
        "| conditioning | known CD mean | known CD median | known F@1 % "
        "| unknown CD mean | unknown CD median | unknown F@1 % | unknown thin F@1 % | unknown colour PSNR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    from core.evaluation.report import summarise

    per_class: dict[str, dict] = {}
    # Same shapes in every row: the ids every mode evaluated.
    test_rows = {m: _rows_all([RUNS / f"cond_{m}" / "eval_test" / "results.json"]) for m in MODES}
    evaluated = [{r["id"] for r in rows} for rows in test_rows.values() if rows]
    common = set.intersection(*evaluated) if evaluated else set()
    known_by_mode = {m: _summary(RUNS / f"cond_{m}" / "eval_train" / "results.json") for m in MODES}
    for mode in MODES:
        known = known_by_mode[mode]
        rows = [r for r in test_rows[mode] if r["id"] in common]
        unknown = summarise(rows) if rows else None
        if unknown:
            per_class[mode] = unknown
        k = (known or {}).get("all", {})
        u = (unknown or {}).get("all", {})
        cells = [
            _f(k.get("CD×10³ mean")),
            _f(k.get("CD×10³ median")),
            _f(k.get("F@1 %"), 1),
            _f(u.get("CD×10³ mean")),
            _f(u.get("CD×10³ median")),
            _f(u.get("F@1 %"), 1),
            _f(u.get("thin F@1 %"), 1),
            _f(u.get("PSNR dB"), 1),
        ]
        if not known and not unknown:
            cells = ["not run"] * 8
        out.append(f"| {mode} | " + " | ".join(cells) + " |")
    known_per_class = {m: v for m, v in known_by_mode.items() if v}
    if known_per_class:
        classes = [c for c in next(iter(known_per_class.values())) if c != "all"]
        out += [
            "",
            "Known (training) shapes per class, Chamfer ×10³ mean (4 shapes per class, trained codes):",
            "",
            "| class | " + " | ".join(known_per_class) + " |",
            "|---|" + "---|" * len(known_per_class),
        ]
        for c in classes:
            means = (_f(v.get(c, {}).get("CD×10³ mean")) for v in known_per_class.values())
            out.append(f"| {c} | " + " | ".join(means) + " |")
    if per_class:
        classes = [c for c in next(iter(per_class.values())) if c != "all"]
        out += [
            "",
            f"Unknown (held-out) shapes per class ({len(common)} shapes, the same for every mode), "
            "Chamfer ×10³ mean / F@1 %:",
            "",
            "| class | " + " | ".join(per_class) + " |",
            "|---|" + "---|" * len(per_class),
        ]
        for c in classes:
            pairs = (
                f"{_f(s.get(c, {}).get('CD×10³ mean'))} / {_f(s.get(c, {}).get('F@1 %'), 1)}"
                for s in per_class.values()
            )
            out.append(f"| {c} | " + " | ".join(pairs) + " |")
    out += [
        "",
        "### Zero-shot: a class never trained",
        "",
        "Both models trained 100 epochs on six classes without `shelf`; "
        "the 4 held-out shelves are fitted by TTO. `text` is "
        'conditioned on the prompt "shelf" (never seen in training), `none` has no condition.',
        "",
        "| model | shapes | CD mean | CD median | F@1 % | thin F@1 % |",
        "|---|---|---|---|---|---|",
    ]
    for run in ("zs_text", "zs_none"):
        rows = _rows_all([RUNS / run / "eval_shelf_test" / "results.json"])
        if not rows:
            out.append(f"| {run} | not run | | | | |")
            continue
        a = summarise(rows)["all"]
        out.append(
            f"| {run} | {a['n']} | {_f(a['CD×10³ mean'])} | {_f(a['CD×10³ median'])} | {_f(a['F@1 %'], 1)} | "
            f"{_f(a['thin F@1 %'], 1)} |"
        )
    return "\n".join(out) + "\n"


def thin() -> str:
    path = RUNS / "demo" / "ablation_thin" / "ablation.json"
    out = [
        "## 2. Thin structures: test-time optimisation losses\n",
        "Demo model, held-out shapes of the classes with thin parts (3 per class: chair, lamp, table, shelf, "
        "airplane, mug), 150 iterations, 3,000 samples per step, same seed for every row.\n",
    ]
    if not path.exists():
        return "\n".join(out + ["not run\n"])
    data = json.loads(path.read_text())
    base = data.get("baseline", {}).get("all", {})
    out += [
        "| TTO losses | CD×10³ mean | CD×10³ median | F@1 % | thin F@1 % | NC | s / shape "
        "| beats baseline (thin F@1) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in LOSS_SETS:
        s = data.get(name, {}).get("all")
        if not s:
            out.append(f"| {name} | not run | | | | | | |")
            continue
        verdict = "–" if name == "baseline" else ("yes" if s.get("thin F@1 %", 0) > base.get("thin F@1 %", 0) else "no")
        out.append(
            f"| {name} | {_f(s.get('CD×10³ mean'))} | {_f(s.get('CD×10³ median'))} | {_f(s.get('F@1 %'), 1)} | "
            f"{_f(s.get('thin F@1 %'), 1)} | {_f(s.get('NC'), 3)} | {_f(s.get('s'), 1)} | {verdict} |"
        )
    run = [name for name in LOSS_SETS if data.get(name)]
    classes = [c for c in data.get("baseline", {}) if c != "all"]
    if classes:
        out += [
            "",
            "Per class, thin-part F@1 % / Chamfer ×10³ mean:",
            "",
            "| class | " + " | ".join(run) + " |",
            "|---|" + "---|" * len(run),
        ]
        for c in classes:
            out.append(
                f"| {c} | "
                + " | ".join(
                    f"{_f(data[n].get(c, {}).get('thin F@1 %'), 1)} / {_f(data[n].get(c, {}).get('CD×10³ mean'))}"
                    for n in run
                )
                + " |"
            )
    return "\n".join(out) + "\n"


def colour() -> str:
    out = [
        "## 3. Colour\n",
        "All at 100 epochs (the embedding run's own epoch-100 checkpoint is the view-independent row). "
        "Colour L1 (RGB in [0, 1]) and PSNR of the reconstruction's vertex colours against the nearest "
        "ground-truth surface colours. Train = 4 training shapes per class with their trained codes (28); "
        "test = 1 held-out shape per class fitted by TTO (7).\n",
        "| model | train colour L1 | train PSNR | test colour L1 | test PSNR "
        "| train CD×10³ mean | train F@1 % | test CD×10³ mean | test F@1 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, run, suffix in (
        ("view-independent colour head", "cond_embedding", "_e100"),
        ("view-dependent colour head (seed)", "colour_viewdep", ""),
        ("no colour head (geometry only)", "nocolour", ""),
    ):
        tr = (_summary(RUNS / run / f"eval_train{suffix}" / "results.json") or {}).get("all")
        te = (_summary(RUNS / run / f"eval_test{suffix}" / "results.json") or {}).get("all")
        if not tr and not te:
            out.append(f"| {label} | not run | | | | | | | |")
            continue
        tr, te = tr or {}, te or {}
        out.append(
            f"| {label} | {_f(tr.get('colour L1'), 3)} | {_f(tr.get('PSNR dB'), 1)} | "
            f"{_f(te.get('colour L1'), 3)} | {_f(te.get('PSNR dB'), 1)} | "
            f"{_f(tr.get('CD×10³ mean'))} | {_f(tr.get('F@1 %'), 1)} | "
            f"{_f(te.get('CD×10³ mean'))} | {_f(te.get('F@1 %'), 1)} |"
        )
    return "\n".join(out) + "\n"


def evaluation_figures(results: Path, command: str, date: str | None = None) -> dict[str, Any]:
    """One figure group of a model card from the ``results.json`` that ``main.py evaluate`` wrote.

    ``{"shapes", "f1_pct", "thin_f1_pct", "chamfer_x1e3_mean", "chamfer_x1e3_median", "psnr_db",
    "resolution", "losses", "command", "date"}``: the summary over all shapes (Chamfer ×10³ in the
    unit-sphere frame, squared distances as DeepSDF; F-scores at 1 % of the shape's size), the grid it was
    meshed on, the TTO losses (None for trained codes), the command that measured it and the day
    (default: the day ``results`` was written). A value the evaluation could not give (no thin parts,
    no colour) is None.
    """
    data = json.loads(Path(results).read_text(encoding="utf-8"))
    try:
        summary = data["summary"]["all"]
    except (KeyError, TypeError):
        raise ValueError(
            f"{results}: no summary of all shapes; give a results.json that 'main.py evaluate' "
            "wrote (with --ablation, the one in a loss set's sub-folder)"
        ) from None
    group: dict[str, Any] = {"shapes": int(summary["n"]) - int(summary.get("n_failed", 0))}
    for field, (column, digits) in FIGURE_FIELDS.items():
        value = summary.get(column)
        group[field] = round(float(value), digits) if isinstance(value, (int, float)) and math.isfinite(value) else None
    settings, meta = data.get("settings") or {}, data.get("meta") or {}
    group["resolution"] = settings.get("resolution")
    group["losses"] = (
        None if settings.get("use_trained_codes") else (meta.get("losses") or (data.get("config") or {}).get("losses"))
    )
    group["command"] = command
    if date is None:
        mtime = Path(results).stat().st_mtime
        date = dt.datetime.fromtimestamp(mtime, dt.timezone.utc).date().isoformat()
    group["date"] = date
    return group


def write_model_figures(card: Path, groups: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """Put ``groups`` into the ``figures`` of the model card ``card`` (a ``model.json``), atomically.

    Each given group replaces the card's group of that name; the card's other groups and fields stay
    as they were, in their order. The card is rewritten whole through a temporary file, so a reader (the
    viewer's Models menu) sees the old card or the new one, never half of one. Returns the new card.
    Raises ValueError naming the card when it is not a JSON object.
    """
    card = Path(card)
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{card}: invalid JSON at line {exc.lineno} ({exc.msg}); fix the card first") from None
    if not isinstance(data, dict):
        raise ValueError(f"{card}: a model card is a JSON object, got {type(data).__name__}")
    figures = dict(data.get("figures") or {})
    figures.update(groups)
    data["figures"] = figures
    json.dumps(data, allow_nan=False)  # refuse NaN before anything is written: JSON readers reject it
    atomic_write_json(card, data)
    return data


def model_figures(keys: list[str] | None = None) -> int:
    """``--models``: each bundled model's measured groups into its card; 0, or 1 when nothing was measured."""
    written = 0
    for model in bundled_models():
        if keys and model.key not in keys:
            continue
        groups = {}
        for group in FIGURE_GROUPS:
            out = MODEL_RUNS / model.key / group
            if (out / "results.json").is_file():
                command_file = out / "command.txt"
                command = (
                    command_file.read_text(encoding="utf-8").strip()
                    if command_file.is_file()
                    else "python main.py evaluate (command not recorded)"
                )
                groups[group] = evaluation_figures(out / "results.json", command)
        if not groups:
            print(
                f"[figures] {model.key}: nothing measured under {MODEL_RUNS / model.key}; "
                "run scripts/results.py --stages models first"
            )
            continue
        write_model_figures(model.folder / CARD_NAME, groups)
        print(f"[figures] {model.folder / CARD_NAME}: {', '.join(groups)}")
        written += 1
    return 0 if written else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models",
        nargs="*",
        default=None,
        metavar="KEY",
        help="write the bundled models' figures into their model.json cards (all, or these keys) "
        "instead of the study's tables",
    )
    args = ap.parse_args(argv)
    if args.models is not None:
        return model_figures(args.models)
    text = "\n".join([conditioning(), thin(), colour()])
    from core.utils.io_utils import atomic_write_bytes

    # The tables go between two markers; the analysis around them is written by hand and kept when
    # the tables are rebuilt.
    current = REPORT.read_text(encoding="utf-8") if REPORT.exists() else f"# Results\n\n{TABLES_START}\n{TABLES_END}\n"
    if TABLES_START not in current or TABLES_END not in current:
        print(
            f"error: {REPORT} lacks the markers {TABLES_START!r} and {TABLES_END!r}; add them where the tables go",
            file=sys.stderr,
        )
        return 2
    head, rest = current.split(TABLES_START, 1)
    tail = rest.split(TABLES_END, 1)[1]
    atomic_write_bytes(REPORT, f"{head}{TABLES_START}\n{text}\n{TABLES_END}{tail}".encode("utf-8"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
