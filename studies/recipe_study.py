"""Training-recipe study at a fixed budget (issue 11, item 1), driven by ``main.py train`` / ``evaluate``.

Every variant trains for the same compute budget, ``--minutes`` CPU-minutes of its training process
(``train.max_cpu_minutes``: CPU time, not wall-clock time, so other jobs on the machine do not shrink
one variant's budget more than another's), with the same threads (``train.threads``) on the same shapes,
then is measured twice on the *base* data folder
(the same ground truth and held-out observations for every variant):

(a) known shapes: the training split with the run's own trained codes (``evaluate --use-trained-codes``);
(b) held-out shapes: the test split fitted by TTO (``evaluate``, the TTO defaults unless ``--tto-iterations``).

The schedule fits the budget: a short pilot run measures each variant's CPU seconds per epoch, and the
run gets ``epochs = budget / (CPU seconds per epoch)``; a ``step`` schedule keeps the demo's shape, six
halvings over the run (``lr_interval = epochs // 6``), cosine / one-cycle span the epochs anyway.
``train.max_cpu_minutes`` still stops a run that goes slower than its pilot. ``--no-fit-schedule`` keeps
each variant's own epochs and lets the budget cut it.

Variants are data (:data:`VARIANTS`): preprocessing flags (a variant with flags trains on a second
data folder, made by ``main.py preprocess <--source-args> <flags>`` under ``OUT/data/``), ``--set``
overrides and plain ``train`` arguments on top of the baseline, today's demo recipe (scripts/make_demo.sh).

``--warm-start RUN`` studies a second stage instead (issue 27's generalisation study): every variant
starts from RUN's trained weights and codes (``train.init_from``) with RUN's stored config
(``RUN/config.json``) at the curriculum's last stage, for ``--epochs`` epochs; the baseline is then
``warm_control`` (RUN's recipe continued), and the question is what a fixed budget of further training
does to held-out fits with the decoder frozen.

Resumable: a variant whose run finished (``OUT/<variant>/study_run.json``) is not trained again, an
interrupted run continues with ``--resume``, an evaluation with its ``results.json`` is not redone.
A variant that fails is reported and the others go on. Writes ``OUT/study.md`` and ``OUT/study.json``.

    # smoke run (about 5 minutes on 2 cores)
    .venv/bin/python main.py preprocess --source synthetic --classes chair lamp --shapes-per-class 3 \\
        --samples 20000 --surface-samples 2000 --out /tmp/study_data
    .venv/bin/python -m studies.recipe_study --data /tmp/study_data --out /tmp/study --minutes 0.2 \\
        --variants baseline,curriculum --resolution 64 --tto-iterations 50
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.utils.markdown import markdown_table

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    """One recipe: what it changes on top of the baseline (the demo recipe)."""

    doc: str
    preprocess: tuple[str, ...] = ()
    """Extra ``main.py preprocess`` flags (thin-aware sampling); () trains on the base data folder."""
    sets: tuple[str, ...] = ()
    """Extra ``--set KEY=VALUE`` overrides of ``main.py train`` (applied after the baseline's)."""
    train_args: tuple[str, ...] = ()
    """Extra plain ``main.py train`` arguments (e.g. ``--no-colour``)."""
    epochs: int = 600
    """Epochs with ``--no-fit-schedule`` (the demo's 600); otherwise the pilot sets them."""
    heldout_args: tuple[str, ...] = ()
    """Extra ``main.py evaluate`` arguments of the held-out evaluation (e.g. the text prompt a text model is
    fitted under); known shapes keep the condition they were trained with, with their trained codes."""


DEMO_TRAIN_ARGS = ("--conditioning", "embedding")
DEMO_SETS = (
    "train.shapes_per_batch=8",
    "train.samples_per_shape=2048",
    "train.lr_interval=100",
    "train.checkpoint_every=50",
    "train.max_samples_per_shape=200000",
    # pinned: the default preset now carries the study's winner; the baseline stays the old recipe
    "train.lr_schedule=step",
    "train.curriculum=false",
    "model.fourier_frequencies=4",
    # and the colour head as it was before the demo of 2026-11-28 adopted a wider, stopped one
    "model.colour_detach_trunk=false",
    "model.colour_hidden=64",
)
"""The previous demo recipe, copied from scripts/make_demo.sh before the study (default preset, 600 epochs,
step schedule, four Fourier frequencies): the baseline every variant changes."""
ADOPTED_SETS = ("train.lr_schedule=cosine", "train.curriculum=true", "model.fourier_frequencies=2")
"""The recipe the study adopted (``cos_curr_f2``, the ``default`` preset's since issue 11), spelled out
because the baseline pins the previous one: variants that compare something else on top of today's
recipe use it."""
STOP_TRUNK_SETS = (*ADOPTED_SETS, "model.colour_detach_trunk=true")
"""Today's recipe with the colour head's gradients stopped at the trunk."""
THIN_SAMPLING = ("--near-allocation", "thickness", "--thin-band-variance", "0.00005", "--balance-sign")

VARIANTS: dict[str, Variant] = {
    "baseline": Variant("the previous demo recipe (step schedule, 4 Fourier frequencies)"),
    "thin_sampling": Variant(
        "near samples by local thickness, a tight band at thin parts, balanced signs", preprocess=THIN_SAMPLING
    ),
    "curriculum": Variant("Curriculum DeepSDF tolerance / hard-sample schedule", sets=("train.curriculum=true",)),
    "surface": Variant(
        "surface supervision: SDF = 0 and gradient = normal on surface points",
        sets=("train.surface_weight=1.0", "train.normal_weight=0.1"),
    ),
    "cosine": Variant("cosine learning-rate schedule instead of six halvings", sets=("train.lr_schedule=cosine",)),
    "onecycle": Variant("one-cycle schedule (warm-up, then cosine)", sets=("train.lr_schedule=onecycle",)),
    "batch16": Variant("16 shapes per batch instead of 8", sets=("train.shapes_per_batch=16",)),
    "wide": Variant("6 x 256 trunk instead of 6 x 128", sets=("model.hidden_dims=[256,256,256,256,256,256]",)),
    "deep": Variant("8 x 128 trunk instead of 6 x 128", sets=("model.hidden_dims=[128,128,128,128,128,128,128,128]",)),
    "code128": Variant("shape code 128 instead of 64", sets=("model.code_size=128",)),
    "code32": Variant("shape code 32 instead of 64", sets=("model.code_size=32",)),
    "fourier0": Variant("no Fourier features (raw xyz)", sets=("model.fourier_frequencies=0",)),
    "fourier2": Variant("2 Fourier frequencies instead of 4", sets=("model.fourier_frequencies=2",)),
    "fourier6": Variant("6 Fourier frequencies instead of 4", sets=("model.fourier_frequencies=6",)),
    "colour_detach": Variant("colour gradients stopped at the trunk", sets=("model.colour_detach_trunk=true",)),
    "colour_w02": Variant("colour weight 0.2 instead of 0.5", sets=("train.colour_weight=0.2",)),
    "no_colour": Variant("geometry only (no colour head): colour's cost to geometry", train_args=("--no-colour",)),
    # combinations of the switches the 5-minute pilot found promising (docs/results.md)
    "cos_curr": Variant("cosine schedule + curriculum", sets=("train.lr_schedule=cosine", "train.curriculum=true")),
    "cos_curr_f2": Variant("cosine schedule + curriculum + 2 Fourier frequencies", sets=ADOPTED_SETS),
    "cos_curr_f2_thin": Variant(
        "cosine + curriculum + 2 Fourier frequencies + thin-aware sampling", preprocess=THIN_SAMPLING, sets=ADOPTED_SETS
    ),
    # conditioning on today's recipe (issue 12's table; the same switches as `main.py train --conditioning`)
    "cond_none": Variant(
        "no class condition, today's recipe", sets=ADOPTED_SETS, train_args=("--conditioning", "none")
    ),
    "cond_onehot": Variant("one-hot class, today's recipe", sets=ADOPTED_SETS, train_args=("--conditioning", "onehot")),
    "cond_embedding": Variant(
        "learned class embedding, today's recipe", sets=ADOPTED_SETS, train_args=("--conditioning", "embedding")
    ),
    "cond_text": Variant(
        "text features of each shape's own description, today's recipe",
        sets=(*ADOPTED_SETS, "model.text_source=description"),
        train_args=("--conditioning", "text"),
        heldout_args=("--text-prompt", "description"),
    ),
    # colour on today's recipe (results.md section 3; cond_embedding is the view-independent head)
    "colour_none": Variant(
        "geometry only (no colour head), today's recipe", sets=ADOPTED_SETS, train_args=("--no-colour",)
    ),
    "colour_viewdep": Variant(
        "the seed's view-dependent colour head, today's recipe", sets=ADOPTED_SETS, train_args=("--view-dependent",)
    ),
    "colour_stop_trunk": Variant("colour gradients stopped at the trunk, today's recipe", sets=STOP_TRUNK_SETS),
    "thin_stop_trunk": Variant(
        "thin-aware sampling + colour gradients stopped at the trunk, today's recipe",
        preprocess=THIN_SAMPLING,
        sets=STOP_TRUNK_SETS,
    ),
    # what makes codes generalise (issue 27), meant for --warm-start: a second stage on a trained model
    "warm_control": Variant("the warm-start run's own recipe continued (the control of a --warm-start study)"),
    "code_noise_05": Variant("Gaussian noise of deviation 0.05 on each batch code", sets=("train.code_noise=0.05",)),
    "code_noise_10": Variant("Gaussian noise of deviation 0.1 on each batch code", sets=("train.code_noise=0.1",)),
    "code_reg_1e3": Variant("code regulariser 1e-3 instead of 1e-4 (DeepSDF's sigma)", sets=("train.code_reg=0.001",)),
    "dropout_10": Variant("dropout 0.1 after every trunk layer", sets=("model.dropout=0.1",)),
}

# (summary header in results.json, table header, format)
_METRICS = (
    ("thin F@1 %", "thin F@1 %", "{:.1f}"),
    ("F@1 %", "F@1 %", "{:.1f}"),
    ("CD×10³ mean", "CD×10³", "{:.3f}"),
    ("floaters %", "floaters %", "{:.0f}"),
    ("components", "components", "{:.1f}"),
)


@dataclass
class Study:
    args: argparse.Namespace
    python: str = sys.executable
    log: list[str] = field(default_factory=list)

    # -- commands ------------------------------------------------------------------------------
    def main_py(self, *parts: str) -> list[str]:
        return [self.python, str(ROOT / "main.py"), *parts]

    def run(self, cmd: list[str], what: str) -> bool:
        """Run ``cmd`` (or print it with --dry-run); False (reported) when it fails."""
        print("$ " + shlex.join(cmd), flush=True)
        if self.args.dry_run:
            return True
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=ROOT).returncode
        if rc != 0:
            message = f"{what}: exit {rc} after {time.perf_counter() - t0:.0f} s; skipped (see the output above)"
            print("FAILED " + message, file=sys.stderr, flush=True)
            self.log.append(message)
            return False
        return True

    def data_for(self, name: str, variant: Variant) -> Path | None:
        """The data folder a variant trains on (preprocessing it first when its flags need one)."""
        if not variant.preprocess:
            return self.args.data
        folder = self.args.out / "data" / name
        if (folder / "manifest.json").is_file():
            return folder
        if not self.args.source_args:
            self.log.append(
                f"{name}: needs preprocessing flags {' '.join(variant.preprocess)} but no --source-args "
                "says how --data was made; skipped"
            )
            print("FAILED " + self.log[-1], file=sys.stderr)
            return None
        cmd = self.main_py(
            "preprocess",
            *shlex.split(self.args.source_args),
            *variant.preprocess,
            "--out",
            str(folder),
            "--no-progress",
        )
        return folder if self.run(cmd, f"{name}: preprocess") else None

    def train_cmd(
        self, variant: Variant, data: Path, run_dir: Path, epochs: int, minutes: float, resume: bool
    ) -> list[str]:
        base = self.args.warm_start
        recipe = DEMO_SETS if base is None else warm_start_sets(base)
        sets = [
            *recipe,
            f"train.threads={self.args.threads}",
            f"train.max_cpu_minutes={minutes:g}",
            "train.checkpoint_every=10",
        ]
        if (
            base is None
            and self.args.fit_schedule
            and not any(s.startswith("train.lr_schedule=") for s in variant.sets)
        ):
            sets.append(f"train.lr_interval={max(1, epochs // 6)}")  # the demo's six halvings within the run
        sets += list(variant.sets) + list(self.args.extra_sets)
        if self.args.train_classes:
            sets.append(f"train.classes={json.dumps(self.args.train_classes)}")
        cmd = self.main_py(
            "train",
            "--data",
            str(data),
            "--out",
            str(run_dir),
            *(DEMO_TRAIN_ARGS if base is None else ("--config", str(base / "config.json"))),
            *variant.train_args,
            "--epochs",
            str(epochs),
            "--no-progress",
            "--resume" if resume else "--overwrite",
        )
        for s in sets:
            cmd += ["--set", s]
        return cmd

    def calibrate(self, name: str, variant: Variant, data: Path) -> int | None:
        """Epochs that fill the budget: the steady seconds per epoch of a short pilot run.

        The pilot trains for a tenth of the budget (3 s to 1 min); its first epochs are slow
        (lazy sample loading, thread warm-up), so the rate is the median epoch time of the pilot's
        second half.
        """
        if self.args.epochs:
            return self.args.epochs
        if not self.args.fit_schedule:
            return variant.epochs
        pilot = self.args.out / name / "pilot"
        minutes = min(1.0, max(0.05, 0.1 * self.args.minutes))
        cmd = self.train_cmd(variant, data, pilot, variant.epochs, minutes, False)
        if self.args.dry_run:
            self.run(cmd, f"{name}: pilot")
            print(f"# {name}: epochs = {self.args.minutes} min / the pilot's seconds per epoch")
            return variant.epochs
        if not (pilot / "log.csv").is_file() and not self.run(cmd, f"{name}: pilot"):
            return None
        with (pilot / "log.csv").open(newline="") as handle:
            seconds = [0.0] + [float(r["cpu_seconds"]) for r in csv.DictReader(handle)]
        steps = [b - a for a, b in zip(seconds[:-1], seconds[1:], strict=True)]
        per_epoch = statistics.median(steps[len(steps) // 2 :])
        epochs = max(1, int(60.0 * self.args.minutes / max(per_epoch, 1e-6)))
        print(
            f"# {name}: {per_epoch:.2f} CPU-s per epoch in the pilot -> {epochs} epochs in {self.args.minutes:g} "
            "CPU-min",
            flush=True,
        )
        return epochs

    def evaluate_cmd(self, ckpt: Path, out: Path, known: bool, variant: Variant | None = None) -> list[str]:
        cmd = self.main_py(
            "evaluate",
            "--ckpt",
            str(ckpt),
            "--data",
            str(self.args.data),
            "--resolution",
            str(self.args.resolution),
            "--out",
            str(out),
            "--quiet",
            *(variant.heldout_args if variant and not known else ()),
        )
        if self.args.train_classes:
            cmd += ["--classes", *self.args.train_classes]
        cmd += ["--split", "train", "--use-trained-codes"] if known else ["--split", "test"]
        if self.args.limit:
            cmd += ["--limit", str(self.args.limit)]
        if not known and self.args.tto_iterations:
            cmd += ["--iterations", str(self.args.tto_iterations)]
        if not known and self.args.tto_lr:
            cmd += ["--lr", f"{self.args.tto_lr:g}"]
        if self.args.no_grid_reference:
            cmd.append("--no-grid-reference")
        return cmd

    # -- one variant ---------------------------------------------------------------------------
    def variant(self, name: str) -> dict[str, Any] | None:
        variant = VARIANTS[name]
        run_dir = self.args.out / name / "run"
        done = self.args.out / name / "study_run.json"
        if done.is_file() and not self.args.dry_run:
            print(f"# {name}: trained already ({done})", flush=True)
        else:
            data = self.data_for(name, variant)
            epochs = None if data is None else self.calibrate(name, variant, data)
            if data is None or epochs is None:
                return None
            resume = (run_dir / "log.csv").is_file() and (run_dir / "checkpoints" / "latest.pt").is_file()
            cmd = self.train_cmd(variant, data, run_dir, epochs, self.args.minutes, resume)
            if not self.run(cmd, f"{name}: train"):
                return None
            if not self.args.dry_run:
                from core.utils.io_utils import atomic_write_json

                atomic_write_json(
                    done,
                    {
                        "epochs": epochs,
                        "minutes": self.args.minutes,
                        "threads": self.args.threads,
                        "data": str(data),
                        "command": cmd,
                    },
                )
        ckpt = run_dir / "checkpoints" / "latest.pt"
        for known in (True, False):
            out = self.args.out / name / ("eval_known" if known else "eval_heldout")
            if (out / "results.json").is_file() and not self.args.dry_run:
                print(f"# {name}: {out.name} evaluated already", flush=True)
                continue
            if not self.run(self.evaluate_cmd(ckpt, out, known, variant), f"{name}: {out.name}"):
                return None
        return None if self.args.dry_run else self.collect(name)

    def collect(self, name: str) -> dict[str, Any]:
        folder = self.args.out / name
        stats = json.loads((folder / "run" / "stats.json").read_text())
        meta = json.loads((folder / "study_run.json").read_text())
        cut = (stats.get("time_budget") or {}).get("stopped_early")
        cpu_seconds = stats.get("train_cpu_seconds")
        if cpu_seconds is None:  # a run of an older study: wall-clock seconds x threads
            cpu_seconds = float(stats.get("train_seconds", 0.0)) * (int(meta["threads"]) or os.cpu_count() or 1)
        row: dict[str, Any] = {
            "variant": name,
            "epochs": f"{stats.get('epochs')}{' (cut)' if cut else ''}",
            "cpu_minutes": float(cpu_seconds) / 60.0,
        }
        for part in ("known", "heldout"):
            summary = json.loads((folder / f"eval_{part}" / "results.json").read_text())["summary"]["all"]
            for key, _, _ in _METRICS + (("gt components", "", ""),):
                row[f"{part}:{key}"] = summary.get(key)
        return row


def warm_start_sets(run: Path) -> tuple[str, ...]:
    """The ``--set`` overrides of a second stage on ``run`` (with ``--config run/config.json``): its weights
    and codes, the curriculum's last stage (eps 0, lambda 0.5), its stored learning rates on a fresh schedule."""
    return (f"train.init_from={run / 'checkpoints' / 'latest.pt'}", "train.curriculum_first_stage=3")


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    """``known / held-out`` of one metric, each by ``fmt``, "—" where it is missing."""
    parts = []
    for part in ("known", "heldout"):
        value = row.get(f"{part}:{key}")
        parts.append("—" if not isinstance(value, (int, float)) else fmt.format(value))
    return " / ".join(parts)


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """One row per variant; each metric cell is ``known / held-out``."""
    headers = ["variant", "epochs", "CPU-min"] + [h for _, h, _ in _METRICS] + ["gt components"]
    cells = [
        [row["variant"], str(row["epochs"]), row["cpu_minutes"]]
        + [_cell(row, key, fmt) for key, _, fmt in _METRICS]
        + [_cell(row, "gt components", "{:.1f}")]
        for row in rows
    ]
    return markdown_table(headers, cells, digits=1) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    epilog = "variants:\n" + "\n".join(f"  {k:14s} {v.doc}" for k, v in VARIANTS.items())
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="preprocessed data folder (train and test splits)")
    parser.add_argument("--out", type=Path, required=True, help="study folder (one sub-folder per variant)")
    parser.add_argument(
        "--variants",
        default="baseline,curriculum,surface,cosine,wide,thin_sampling",
        help=f"comma list of {', '.join(VARIANTS)} (or 'all')",
    )
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="training budget per variant in CPU-minutes of the training process"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads per run")
    parser.add_argument(
        "--no-fit-schedule",
        dest="fit_schedule",
        action="store_false",
        help="no pilot: each variant's own epochs (600), cut by the budget",
    )
    parser.add_argument(
        "--source-args",
        default=None,
        help="the 'main.py preprocess' arguments --data was made with, without --out (needed by "
        'variants with preprocessing flags), e.g. "--source synthetic --samples 200000"',
    )
    parser.add_argument("--resolution", type=int, default=128, help="marching-cubes resolution of the evaluation")
    parser.add_argument("--limit", type=int, default=None, help="at most N shapes per class in each evaluation")
    parser.add_argument("--tto-iterations", type=int, default=None, help="TTO steps for held-out shapes")
    parser.add_argument(
        "--train-classes",
        nargs="+",
        default=None,
        help="train and evaluate on these classes of --data only (e.g. to keep a class out for "
        "python -m studies.zero_shot_study --run)",
    )
    parser.add_argument(
        "--set",
        dest="extra_sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a 'main.py train --set' applied to every variant after its own (repeatable), e.g. "
        "model.colour_detach_trunk=true to compare conditioning modes on that recipe",
    )
    parser.add_argument(
        "--warm-start",
        type=Path,
        default=None,
        metavar="RUN",
        help="a finished training run (config.json, checkpoints/latest.pt): every variant is a second stage on "
        "it, with its stored config (see the module docstring)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every variant (no pilot; the budget caps)")
    parser.add_argument("--tto-lr", type=float, default=None, help="TTO code learning rate for held-out shapes")
    parser.add_argument(
        "--no-grid-reference", action="store_true", help="evaluate without meshing each source's exact field"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    names = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not (args.data / "manifest.json").is_file():
        parser.error(f"--data {args.data}: no manifest.json; make it with 'main.py preprocess ... --out {args.data}'")
    from core.utils.config_io import parse_override
    from core.utils.errors import ConfigError

    for item in args.extra_sets:  # parsed as `main.py train --set` will parse it, so a bad one fails here
        try:
            key_path, _ = parse_override(item)
        except ConfigError:
            key_path = []
        if not key_path:
            parser.error(f"--set {item!r}: expected KEY=VALUE, e.g. model.colour_detach_trunk=true")
    if args.minutes <= 0 or args.threads < 1:
        parser.error("--minutes must be > 0 and --threads >= 1")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: need at least one epoch")
    if args.tto_lr is not None and not args.tto_lr > 0:
        parser.error(f"--tto-lr {args.tto_lr}: need a positive learning rate")
    if args.warm_start is not None:
        missing = [p for p in ("config.json", "checkpoints/latest.pt") if not (args.warm_start / p).is_file()]
        if missing:
            parser.error(
                f"--warm-start {args.warm_start}: no {' or '.join(missing)}; give a training run folder "
                "(main.py train --out RUN)"
            )
        if any(VARIANTS[n].preprocess or VARIANTS[n].train_args for n in names):
            parser.error(
                "--warm-start: variants with preprocessing flags or train arguments change the model; drop them"
            )
    if args.train_classes:
        from core.data.manifest import load_manifest, manifest_classes
        from core.utils.errors import DataSetError

        try:
            known = manifest_classes(load_manifest(args.data))
        except DataSetError as exc:
            parser.error(str(exc))
        wrong = [c for c in args.train_classes if c not in known]
        if wrong:
            parser.error(f"--train-classes {' '.join(wrong)}: not a class of {args.data} (classes: {', '.join(known)})")
    args.names = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    study = Study(args)
    rows = []
    try:
        for name in args.names:
            print(f"\n## {name}: {VARIANTS[name].doc}", flush=True)
            row = study.variant(name)
            if row is not None:
                rows.append(row)
    except KeyboardInterrupt:
        print("interrupted: finished variants are kept; run the same command again to go on", file=sys.stderr)
        return 130
    if args.dry_run:
        return 0
    table = table_markdown(rows)
    what = "Recipe study" if args.warm_start is None else f"Second-stage study on {args.warm_start}"
    budget = f"{args.epochs} epochs (at most {args.minutes:g} CPU-min)" if args.epochs else f"{args.minutes:g} CPU-min"
    title = (
        f"# {what}: {budget} per variant, {args.threads} threads, data {args.data}\n\n"
        "Each cell: known shapes (trained codes) / held-out shapes (TTO). floaters % = shapes with a "
        "component holding < 5 % of the area besides the main ones (core.evaluation.metrics.mesh_components); "
        "epochs (cut): the budget ended the run before its schedule did.\n\n"
    )
    from core.utils.io_utils import atomic_write_bytes, atomic_write_json

    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "study.md", (title + table).encode("utf-8"))
    atomic_write_json(args.out / "study.json", {"rows": rows, "failed": study.log})
    print("\n" + table)
    for message in study.log:
        print("failed: " + message, file=sys.stderr)
    return 1 if study.log and not rows else 0


if __name__ == "__main__":
    raise SystemExit(main())
