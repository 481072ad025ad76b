"""Stage 2 of the results: evaluate the study's runs (scripts/results_train.sh) and the shipped models.

    python scripts/results.py [--stages conditioning zeroshot thin colour]
    python scripts/results.py --stages models [--models demo real]

Every evaluation writes into ``runs/<run>/eval_*`` through ``main.py evaluate`` (the same code
users run) and is skipped when its ``results.json`` / ``ablation.json`` exists, so the script
can be re-run after a cut. ``scripts/results_report.py`` then builds the study's tables
(docs/experiments/2026-11-25-conditioning-thin-colour.md). The study's budget is the same for every
row: TTO iterations, samples per step, grid resolution and points sampled for the metrics are the
constants below.

The ``models`` stage measures each bundled model (``resources/<key>/``) as docs/results.md "The
shipped models" reports it: training shapes with their trained codes and held-out shapes fitted by
300 TTO iterations with the decoder fine-tuned, at 128³, into ``runs/models/<key>/known`` and
``held_out`` (with the command in ``command.txt``); ``scripts/results_report.py --models`` then
writes the figures into the model's ``model.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "synthetic"
RUNS = ROOT / "runs"
MODES = ("none", "onehot", "embedding", "text")
THIN_CLASSES = ("chair", "lamp", "table", "shelf", "airplane", "mug")
HELD_OUT_CLASS = "shelf"
BUDGET = ["--iterations", "150", "--samples-per-step", "3000", "--resolution", "96", "--eval-points", "5000"]
MODEL_RUNS = RUNS / "models"
REAL_CLASSES = (
    "appliance",
    "bathroom_fixture",
    "bed",
    "cabinet",
    "chair",
    "electronics",
    "lamp",
    "plant",
    "sofa",
    "table",
    "vehicle",
)
# What each bundled model is measured on: its data folder (the built-in set preprocessed with
# `--samples 200000`, as the recipe study did; the Sweet Home 3D set of `make data-real`), its classes, and
# how many training shapes per class with their codes.
MODEL_EVALUATIONS: dict[str, dict] = {
    "demo": {"data": "data/study_base", "classes": (), "known_limit": 6, "held_out_limit": 2},
    "real": {"data": "data/sweethome3d", "classes": REAL_CLASSES, "known_limit": 5, "held_out_limit": 1},
    "real_paper": {"data": "data/sweethome3d", "classes": REAL_CLASSES, "known_limit": 1, "held_out_limit": 1},
}
MODEL_GROUPS = {
    "known": ["--split", "train", "--use-trained-codes"],
    "held_out": ["--split", "test", "--iterations", "300", "--losses", "finetune"],
}


def _trained(run: str, ckpt_name: str = "latest.pt") -> bool:
    import json

    if ckpt_name != "latest.pt":
        return (RUNS / run / "checkpoints" / ckpt_name).exists()
    stats, config = RUNS / run / "stats.json", RUNS / run / "config.json"
    if not (stats.exists() and config.exists()):
        return False
    return json.loads(stats.read_text())["epochs"] >= json.loads(config.read_text())["train"]["epochs"]


def evaluate(run: str, out: str, *extra: str, marker: str = "results.json", ckpt_name: str = "latest.pt") -> None:
    ckpt = RUNS / run / "checkpoints" / ckpt_name
    out_dir = RUNS / run / out
    if (out_dir / marker).exists():
        print(f"[results] {run}/{out}: done")
        return
    if not _trained(run, ckpt_name):
        print(f"[results] {run}: not trained (to its last epoch) yet, skipped")
        return
    cmd = [
        sys.executable,
        str(ROOT / "main.py"),
        "evaluate",
        "--ckpt",
        str(ckpt),
        "--data",
        str(DATA),
        "--out",
        str(out_dir),
        "--quiet",
        *BUDGET,
        *extra,
    ]
    print("[results]", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def model_command(key: str, checkpoint: Path, group: str) -> list[str]:
    """The ``main.py evaluate`` arguments that measure bundled model ``key``'s ``group`` (known / held_out)."""
    spec = MODEL_EVALUATIONS[key]
    limit = spec["known_limit"] if group == "known" else spec["held_out_limit"]
    classes = ["--classes", *spec["classes"]] if spec["classes"] else []
    return [
        "main.py",
        "evaluate",
        "--ckpt",
        str(checkpoint.relative_to(ROOT) if checkpoint.is_relative_to(ROOT) else checkpoint),
        "--data",
        spec["data"],
        *MODEL_GROUPS[group],
        "--limit",
        str(limit),
        "--resolution",
        "128",
        *classes,
        "--out",
        str((MODEL_RUNS / key / group).relative_to(ROOT)),
    ]


def evaluate_models(keys: list[str] | None) -> None:
    """The ``models`` stage: every bundled model (or ``keys``) measured into ``runs/models/<key>/<group>``."""
    from core.model.bundled_models import bundled_models

    for model in bundled_models():
        if (keys and model.key not in keys) or model.key not in MODEL_EVALUATIONS:
            if not keys or model.key in keys:
                print(f"[results] {model.key}: no evaluation settings in MODEL_EVALUATIONS, skipped")
            continue
        if not (ROOT / MODEL_EVALUATIONS[model.key]["data"] / "manifest.json").is_file():
            print(f"[results] {model.key}: {MODEL_EVALUATIONS[model.key]['data']} is not preprocessed yet, skipped")
            continue
        for group in MODEL_GROUPS:
            out = MODEL_RUNS / model.key / group
            if (out / "results.json").exists():
                print(f"[results] models/{model.key}/{group}: done")
                continue
            cmd = model_command(model.key, model.checkpoint, group)
            print("[results] python", " ".join(cmd), flush=True)
            subprocess.run([sys.executable, *cmd, "--quiet"], check=True, cwd=ROOT)
            from core.utils.io_utils import atomic_write_bytes

            atomic_write_bytes(out / "command.txt", ("python " + " ".join(cmd) + "\n").encode("utf-8"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--stages",
        nargs="*",
        default=["conditioning", "zeroshot", "thin", "colour"],
        help="conditioning, zeroshot, thin, colour (the study), models (the bundled models)",
    )
    ap.add_argument(
        "--models",
        nargs="*",
        default=None,
        metavar="KEY",
        help="with --stages models: only these bundled models (default: every one)",
    )
    args = ap.parse_args()
    for stage in args.stages:
        if stage == "models":
            evaluate_models(args.models)
        elif stage == "conditioning":
            # Every mode at the same budget: the checkpoint after 150 epochs.
            for mode in MODES:
                evaluate(f"cond_{mode}", "eval_test", "--split", "test", "--limit", "2", ckpt_name="epoch_0150.pt")
                evaluate(
                    f"cond_{mode}",
                    "eval_train",
                    "--split",
                    "train",
                    "--use-trained-codes",
                    "--limit",
                    "4",
                    ckpt_name="epoch_0150.pt",
                )
        elif stage == "zeroshot":
            for run, flag in (("zs_text", "--class-as-text"), ("zs_none", "--class-as-text")):
                evaluate(run, f"eval_{HELD_OUT_CLASS}_test", "--split", "test", "--classes", HELD_OUT_CLASS, flag)
        elif stage == "thin":
            evaluate(
                "demo",
                "ablation_thin",
                "--split",
                "test",
                "--classes",
                *THIN_CLASSES,
                "--limit",
                "3",
                "--ablation",
                "baseline,surface,curriculum,coarse_to_fine,finetune,all",
                "--save-meshes",
                marker="ablation.json",
            )
        elif stage == "colour":
            # The colour runs train 100 epochs; their reference is the embedding run's own
            # checkpoint at epoch 100 (same data, seed and schedule up to there).
            evaluate("cond_embedding", "eval_test_e100", "--split", "test", "--limit", "1", ckpt_name="epoch_0100.pt")
            evaluate(
                "cond_embedding",
                "eval_train_e100",
                "--split",
                "train",
                "--use-trained-codes",
                "--limit",
                "4",
                ckpt_name="epoch_0100.pt",
            )
            for run in ("colour_viewdep", "nocolour"):
                evaluate(run, "eval_test", "--split", "test", "--limit", "1")
                evaluate(run, "eval_train", "--split", "train", "--use-trained-codes", "--limit", "4")
        else:
            print(f"unknown stage {stage}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
