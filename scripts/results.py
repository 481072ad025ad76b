"""Stage 2 of the results: evaluate the runs that scripts/results_train.sh trained.

    python scripts/results.py [--stages conditioning zeroshot thin colour] [--quick]

Every evaluation writes into ``runs/<run>/eval_*`` through ``main.py evaluate`` (the same code
users run) and is skipped when its ``results.json`` / ``ablation.json`` exists, so the script
can be re-run after a cut. ``scripts/results_report.py`` then builds docs/results.md.
The budget is the same for every row: TTO iterations, samples per step, grid resolution and
points sampled for the metrics are the constants below.
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
    cmd = [sys.executable, str(ROOT / "main.py"), "evaluate", "--ckpt", str(ckpt), "--data", str(DATA),
           "--out", str(out_dir), "--quiet", *BUDGET, *extra]
    print("[results]", " ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", nargs="*", default=["conditioning", "zeroshot", "thin", "colour"])
    args = ap.parse_args()
    for stage in args.stages:
        if stage == "conditioning":
            # Every mode at the same budget: the checkpoint after 150 epochs.
            for mode in MODES:
                evaluate(f"cond_{mode}", "eval_test", "--split", "test", "--limit", "2", ckpt_name="epoch_0150.pt")
                evaluate(f"cond_{mode}", "eval_train", "--split", "train", "--use-trained-codes", "--limit", "4",
                         ckpt_name="epoch_0150.pt")
        elif stage == "zeroshot":
            for run, flag in (("zs_text", "--class-as-text"), ("zs_none", "--class-as-text")):
                evaluate(run, f"eval_{HELD_OUT_CLASS}_test", "--split", "test", "--classes", HELD_OUT_CLASS, flag)
        elif stage == "thin":
            evaluate("demo", "ablation_thin", "--split", "test", "--classes", *THIN_CLASSES, "--limit", "3",
                     "--ablation", "baseline,surface,curriculum,coarse_to_fine,finetune,all", "--save-meshes",
                     marker="ablation.json")
        elif stage == "colour":
            # The colour runs train 100 epochs; their reference is the embedding run's own
            # checkpoint at epoch 100 (same data, seed and schedule up to there).
            evaluate("cond_embedding", "eval_test_e100", "--split", "test", "--limit", "1", ckpt_name="epoch_0100.pt")
            evaluate("cond_embedding", "eval_train_e100", "--split", "train", "--use-trained-codes", "--limit", "4",
                     ckpt_name="epoch_0100.pt")
            for run in ("colour_viewdep", "nocolour"):
                evaluate(run, "eval_test", "--split", "test", "--limit", "1")
                evaluate(run, "eval_train", "--split", "train", "--use-trained-codes", "--limit", "4")
        else:
            print(f"unknown stage {stage}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
