"""Stage 3 of the results: tables of docs/results.md from the evaluations of scripts/results.py.

    python scripts/results_report.py      # rewrites the tables between the markers of docs/results.md

Cells of runs that were not evaluated say so ("not run") rather than being left out.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
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
    out = ["## 1. Generalisation across classes: conditioning modes\n",
           "Every mode after 150 epochs of the same schedule (batch 8 shapes × 2,048 samples). "
           "Known = training shapes with their trained codes (4 per class); unknown = held-out test shapes "
           "fitted by TTO (baseline DeepSDF losses, 150 iterations, 3,000 samples per step). Chamfer ×10³ "
           "(unit-sphere frame, squared distances, DeepSDF's convention), F-score at 1 % of the shape's size.\n",
           "| conditioning | known CD mean | known CD median | known F@1 % "
           "| unknown CD mean | unknown CD median | unknown F@1 % | unknown thin F@1 % | unknown colour PSNR |",
           "|---|---|---|---|---|---|---|---|---|"]
    from core.evaluation.split_evaluation import summarise

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
        cells = [_f(k.get("CD×10³ mean")), _f(k.get("CD×10³ median")), _f(k.get("F@1 %"), 1),
                 _f(u.get("CD×10³ mean")), _f(u.get("CD×10³ median")), _f(u.get("F@1 %"), 1),
                 _f(u.get("thin F@1 %"), 1), _f(u.get("PSNR dB"), 1)]
        if not known and not unknown:
            cells = ["not run"] * 8
        out.append(f"| {mode} | " + " | ".join(cells) + " |")
    known_per_class = {m: v for m, v in known_by_mode.items() if v}
    if known_per_class:
        classes = [c for c in next(iter(known_per_class.values())) if c != "all"]
        out += ["", "Known (training) shapes per class, Chamfer ×10³ mean (4 shapes per class, trained codes):", "",
                "| class | " + " | ".join(known_per_class) + " |", "|---|" + "---|" * len(known_per_class)]
        for c in classes:
            means = (_f(v.get(c, {}).get("CD×10³ mean")) for v in known_per_class.values())
            out.append(f"| {c} | " + " | ".join(means) + " |")
    if per_class:
        classes = [c for c in next(iter(per_class.values())) if c != "all"]
        out += ["", f"Unknown (held-out) shapes per class ({len(common)} shapes, the same for every mode), "
                "Chamfer ×10³ mean / F@1 %:", "",
                "| class | " + " | ".join(per_class) + " |", "|---|" + "---|" * len(per_class)]
        for c in classes:
            pairs = (f"{_f(s.get(c, {}).get('CD×10³ mean'))} / {_f(s.get(c, {}).get('F@1 %'), 1)}"
                     for s in per_class.values())
            out.append(f"| {c} | " + " | ".join(pairs) + " |")
    out += ["", "### Zero-shot: a class never trained", "",
            "Both models trained 100 epochs on six classes without `shelf`; "
            "the 4 held-out shelves are fitted by TTO. `text` is "
            "conditioned on the prompt \"shelf\" (never seen in training), `none` has no condition.", "",
            "| model | shapes | CD mean | CD median | F@1 % | thin F@1 % |", "|---|---|---|---|---|---|"]
    for run in ("zs_text", "zs_none"):
        rows = _rows_all([RUNS / run / "eval_shelf_test" / "results.json"])
        if not rows:
            out.append(f"| {run} | not run | | | | |")
            continue
        a = summarise(rows)["all"]
        out.append(f"| {run} | {a['n']} | {_f(a['CD×10³ mean'])} | {_f(a['CD×10³ median'])} | {_f(a['F@1 %'], 1)} | "
                   f"{_f(a['thin F@1 %'], 1)} |")
    return "\n".join(out) + "\n"


def thin() -> str:
    path = RUNS / "demo" / "ablation_thin" / "ablation.json"
    out = ["## 2. Thin structures: test-time optimisation losses\n",
           "Demo model, held-out shapes of the classes with thin parts (3 per class: chair, lamp, table, shelf, "
           "airplane, mug), 150 iterations, 3,000 samples per step, same seed for every row.\n"]
    if not path.exists():
        return "\n".join(out + ["not run\n"])
    data = json.loads(path.read_text())
    base = data.get("baseline", {}).get("all", {})
    out += ["| TTO losses | CD×10³ mean | CD×10³ median | F@1 % | thin F@1 % | NC | s / shape "
            "| beats baseline (thin F@1) |",
            "|---|---|---|---|---|---|---|---|"]
    for name in LOSS_SETS:
        s = data.get(name, {}).get("all")
        if not s:
            out.append(f"| {name} | not run | | | | | | |")
            continue
        verdict = "–" if name == "baseline" else ("yes" if s.get("thin F@1 %", 0) > base.get("thin F@1 %", 0) else "no")
        out.append(f"| {name} | {_f(s.get('CD×10³ mean'))} | {_f(s.get('CD×10³ median'))} | {_f(s.get('F@1 %'), 1)} | "
                   f"{_f(s.get('thin F@1 %'), 1)} | {_f(s.get('NC'), 3)} | {_f(s.get('s'), 1)} | {verdict} |")
    run = [name for name in LOSS_SETS if data.get(name)]
    classes = [c for c in data.get("baseline", {}) if c != "all"]
    if classes:
        out += ["", "Per class, thin-part F@1 % / Chamfer ×10³ mean:", "",
                "| class | " + " | ".join(run) + " |", "|---|" + "---|" * len(run)]
        for c in classes:
            out.append(f"| {c} | " + " | ".join(
                f"{_f(data[n].get(c, {}).get('thin F@1 %'), 1)} / {_f(data[n].get(c, {}).get('CD×10³ mean'))}"
                for n in run) + " |")
    return "\n".join(out) + "\n"


def colour() -> str:
    out = ["## 3. Colour\n",
           "All at 100 epochs (the embedding run's own epoch-100 checkpoint is the view-independent row). "
           "Colour L1 (RGB in [0, 1]) and PSNR of the reconstruction's vertex colours against the nearest "
           "ground-truth surface colours. Train = 4 training shapes per class with their trained codes (28); "
           "test = 1 held-out shape per class fitted by TTO (7).\n",
           "| model | train colour L1 | train PSNR | test colour L1 | test PSNR "
           "| train CD×10³ mean | train F@1 % | test CD×10³ mean | test F@1 % |",
           "|---|---|---|---|---|---|---|---|---|"]
    for label, run, suffix in (("view-independent colour head", "cond_embedding", "_e100"),
                               ("view-dependent colour head (seed)", "colour_viewdep", ""),
                               ("no colour head (geometry only)", "nocolour", "")):
        tr = (_summary(RUNS / run / f"eval_train{suffix}" / "results.json") or {}).get("all")
        te = (_summary(RUNS / run / f"eval_test{suffix}" / "results.json") or {}).get("all")
        if not tr and not te:
            out.append(f"| {label} | not run | | | | | | | |")
            continue
        tr, te = tr or {}, te or {}
        out.append(f"| {label} | {_f(tr.get('colour L1'), 3)} | {_f(tr.get('PSNR dB'), 1)} | "
                   f"{_f(te.get('colour L1'), 3)} | {_f(te.get('PSNR dB'), 1)} | "
                   f"{_f(tr.get('CD×10³ mean'))} | {_f(tr.get('F@1 %'), 1)} | "
                   f"{_f(te.get('CD×10³ mean'))} | {_f(te.get('F@1 %'), 1)} |")
    return "\n".join(out) + "\n"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    text = "\n".join([conditioning(), thin(), colour()])
    from core.utils.io_utils import atomic_write_bytes

    # The tables go between two markers in docs/results.md; the analysis around them is written
    # by hand and kept when the tables are rebuilt.
    report = ROOT / "docs" / "results.md"
    start, end = "<!-- tables:start (scripts/results_report.py) -->", "<!-- tables:end -->"
    current = report.read_text(encoding="utf-8") if report.exists() else f"# Results\n\n{start}\n{end}\n"
    if start not in current or end not in current:
        print(f"error: {report} lacks the markers {start!r} and {end!r}; add them where the tables go",
              file=sys.stderr)
        return 2
    head, rest = current.split(start, 1)
    tail = rest.split(end, 1)[1]
    atomic_write_bytes(report, f"{head}{start}\n{text}\n{end}{tail}".encode("utf-8"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
