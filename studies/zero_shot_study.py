"""Zero-shot study (issue 12, item 2): a class the model never saw, fitted under three conditions.

One text-conditioned model (``conditioning = text``, ``text_source = description``: each training
shape is conditioned on its own description) is trained by ``main.py train`` on every class of
``--data`` but ``--holdout``, as :mod:`studies.recipe_study`'s ``cond_text`` variant (today's recipe), with its
budget (``--minutes`` CPU-minutes of the training process) and its pilot that sizes the schedule; or
``--run`` names such a run already trained. Then every shape of
the held-out class, *train and test split alike* (the model never saw the class, so none of its
shapes is a training shape), is fitted by test-time optimisation (``baseline`` losses) and measured, under

(a) ``none``: the class-agnostic condition, :data:`core.evaluation.class_choice.MEAN_CONDITION` (the mean of the
    trained classes' conditions, what ``TrainedModel.condition()`` gives with no class: a decoder
    trained with conditions never saw a zero vector, so the mean is the fair "no information" input);
(b) ``nearest class``: the trained class whose prompt ("a 3D model of a sofa") embeds closest to the
    held-out class's prompt (cosine of the all-MiniLM-L6-v2 sentence embeddings), as that class;
(c) ``description``: each shape's own description from the manifest (``evaluate --text-prompt
    description``).

(a) and (b) are what :meth:`TrainedModel.condition` gives for "no class" and for a class, also in the
viewer. In a description-trained model they are class *prompts* through the learned projection, which
the decoder met only through the descriptions near them; (c) is the input it was trained on.

Same shapes, seed, TTO settings and metrics for the three. Resumable: a finished training run
(``OUT/study_run.json``) is not trained again, an interrupted one continues with ``--resume``, and
a condition with its ``OUT/<condition>/results.json`` is not evaluated again. Writes
``OUT/zero_shot.md`` and ``OUT/zero_shot.json``.

    .venv/bin/python -m studies.zero_shot_study --data data/sweethome3d --out runs/zero_shot_sofa \\
        --holdout sofa --minutes 30 --threads 2 --resolution 128
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from core.data.manifest import load_manifest, manifest_classes
from core.utils.errors import DataSetError
from core.utils.markdown import markdown_table
from studies.recipe_study import VARIANTS, Study, Variant

CONDITIONS: tuple[tuple[str, str], ...] = (
    ("none", "class-agnostic mean condition"),
    ("nearest_class", "nearest trained class"),
    ("description", "each shape's own description"),
)
"""(folder under OUT, table label), in table order."""

# (summary header in results.json, table header, format)
METRICS = (
    ("F@1 %", "F@1 %", "{:.1f}"),
    ("thin F@1 %", "thin F@1 %", "{:.1f}"),
    ("CD×10³ mean", "CD×10³ mean", "{:.3f}"),
    ("CD×10³ median", "CD×10³ median", "{:.3f}"),
)


def trained_classes(manifest: dict[str, Any], holdout: str) -> list[str]:
    """Every class of the data set but ``holdout``, in manifest order."""
    return [c for c in manifest_classes(manifest) if c != holdout]


TEXT_VARIANT: Variant = VARIANTS["cond_text"]
"""What the study trains: today's recipe with per-shape text conditioning (recipe_study's ``cond_text``);
the held-out class is kept out by ``train.classes`` (``Study`` adds it from ``args.train_classes``)."""


def nearest_class(model, holdout: str) -> tuple[str, dict[str, float]]:
    """The trained class whose prompt embedding is closest (cosine) to the held-out class's prompt.

    The text conditioner keeps the trained classes' prompt embeddings (L2-normalised, (C, 384)),
    so the cosine is a dot product with the held-out prompt's embedding. Returns the class and
    every class's cosine.
    """
    import numpy as np

    from core.model.text_encoder import class_prompt, encode_texts

    query = encode_texts([class_prompt(holdout)], model.config.text_model)[0]
    table = model.module.conditioner.class_text_embeddings.detach().cpu().numpy()
    cosines = {name: float(np.dot(table[i], query)) for i, name in enumerate(model.class_names)}
    return max(cosines, key=cosines.get), cosines


def heldout_shapes(data: Path, holdout: str, limit: int | None):
    """Every shape of ``holdout``, the train split then the test split; at most ``limit`` in all."""
    from core.evaluation.held_out_split import list_split

    shapes = []
    for split in ("train", "test"):
        try:
            shapes += list_split(data, split, classes=[holdout])
        except DataSetError:
            continue  # a class wholly in one split
    return shapes[:limit] if limit else shapes


def evaluate_condition(args: argparse.Namespace, model, shapes, name: str, choice_of) -> dict[str, Any]:
    """Fit and measure ``shapes`` under one condition; ``OUT/<name>/results.json`` (skipped when there)."""
    from core.evaluation.loop import evaluate_split
    from core.evaluation.report import write_results
    from core.evaluation.settings import EvalSettings
    from core.tto.config import TTOConfig

    out = args.out / name
    if (out / "results.json").is_file():
        print(f"# {name}: evaluated already ({out / 'results.json'})", flush=True)
        return json.loads((out / "results.json").read_text(encoding="utf-8"))["summary"]
    from tqdm import tqdm

    config = TTOConfig.from_losses("baseline", **({"iterations": args.tto_iterations} if args.tto_iterations else {}))
    settings = EvalSettings(
        resolution=args.resolution,
        text_prompt="description" if name == "description" else None,
        device=str(model.device),
    )
    choices = {} if name == "description" else {(s.class_name, s.id): choice_of(s) for s in shapes}
    with tqdm(total=len(shapes), unit="shape", desc=name, dynamic_ncols=True) as bar:

        def report(_i: int, _n: int, row: dict[str, Any]) -> None:
            bar.update(1)
            if "error" in row:
                tqdm.write(f"{row['class']}/{row['id']}: failed: {row['error']}", file=sys.stderr)

        rows = evaluate_split(model, shapes, config, settings, out, report, classes=choices)
    meta = {
        "checkpoint": str(model.path),
        "data": str(args.data),
        "holdout": args.holdout,
        "condition": name,
        "splits": "train+test",
        "n_shapes": len(shapes),
    }
    return write_results(out, rows, config, settings, meta)


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """One row per condition: its label, the number of shapes and :data:`METRICS` (each by its format)."""

    def cell(value: Any, fmt: str) -> str | None:
        return fmt.format(value) if isinstance(value, (int, float)) and value == value else None

    headers = ["condition", "n"] + [h for _, h, _ in METRICS]
    cells = [[row["label"], row["n"]] + [cell(row.get(key), fmt) for key, _, fmt in METRICS] for row in rows]
    return markdown_table(headers, cells) + "\n"


def train(study: Study, args: argparse.Namespace, classes: list[str]) -> Path | None:
    """Train (or resume) the text model on ``classes``; its checkpoint, or None when training failed."""
    if args.run is not None:
        return args.run / "checkpoints" / "latest.pt"
    run_dir = args.out / "run"
    done = args.out / "study_run.json"
    ckpt = run_dir / "checkpoints" / "latest.pt"
    if done.is_file() and not args.dry_run:
        print(f"# trained already ({done})", flush=True)
        return ckpt
    variant = TEXT_VARIANT
    epochs = study.calibrate("train", variant, args.data)  # pilot under OUT/train/pilot
    if epochs is None:
        return None
    resume = (run_dir / "log.csv").is_file() and ckpt.is_file()
    cmd = study.train_cmd(variant, args.data, run_dir, epochs, args.minutes, resume)
    if not study.run(cmd, "train"):
        return None
    if not args.dry_run:
        from core.utils.io_utils import atomic_write_json

        atomic_write_json(
            done,
            {
                "epochs": epochs,
                "minutes": args.minutes,
                "threads": args.threads,
                "classes": classes,
                "holdout": args.holdout,
                "command": cmd,
            },
        )
    return ckpt


def _check_run(parser: argparse.ArgumentParser, run: Path, holdout: str) -> list[str]:
    """The classes ``run`` trained on; a parser error when it is unfinished, not text or saw ``holdout``."""
    config_path, ckpt = run / "config.json", run / "checkpoints" / "latest.pt"
    if not (config_path.is_file() and ckpt.is_file()):
        parser.error(f"--run {run}: no config.json and checkpoints/latest.pt; give a finished 'main.py train' run")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    model, train_cfg = config.get("model", {}), config.get("train", {})
    if model.get("conditioning") != "text":
        parser.error(
            f"--run {run}: conditioning {model.get('conditioning')!r}; the study needs a text model "
            "(main.py train --conditioning text --set model.text_source=description)"
        )
    stats_path = run / "stats.json"  # the classes the run trained on; train.classes is None for "all of --data"
    stats = json.loads(stats_path.read_text(encoding="utf-8")) if stats_path.is_file() else {}
    classes = list(stats.get("classes") or train_cfg.get("classes") or [])
    if not classes or holdout in classes:
        parser.error(
            f"--run {run} trained on {', '.join(classes) or 'every class'}, which includes --holdout "
            f"{holdout!r}: train with --set 'train.classes=[...]' without it"
        )
    return classes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="preprocessed data folder with per-shape text")
    parser.add_argument("--out", type=Path, required=True, help="study folder (run/, one folder per condition)")
    parser.add_argument("--holdout", required=True, help="the class left out of training and fitted zero-shot")
    parser.add_argument(
        "--train-classes",
        nargs="+",
        default=None,
        help="train on these classes only (default: every class of --data but --holdout)",
    )
    parser.add_argument(
        "--run",
        type=Path,
        default=None,
        help="fit with this finished text run (e.g. recipe_study's cond_text/run trained with "
        "--train-classes) instead of training one; it must not have seen --holdout",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=10.0,
        help="training budget in CPU-minutes of the training process (recipe_study's)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (training and TTO)")
    parser.add_argument(
        "--no-fit-schedule", dest="fit_schedule", action="store_false", help="no pilot: 600 epochs, cut by the budget"
    )
    parser.add_argument("--resolution", type=int, default=128, help="marching-cubes resolution of the evaluation")
    parser.add_argument("--limit", type=int, default=None, help="at most N held-out shapes")
    parser.add_argument("--tto-iterations", type=int, default=None, help="TTO steps per shape (default: TTO's)")
    parser.add_argument("--dry-run", action="store_true", help="print the training commands only")
    args = parser.parse_args(argv)
    if not (args.data / "manifest.json").is_file():
        parser.error(f"--data {args.data}: no manifest.json; make it with 'main.py preprocess ... --out {args.data}'")
    if args.minutes <= 0 or args.threads < 1 or args.resolution < 8 or (args.limit is not None and args.limit < 1):
        parser.error("--minutes must be > 0, --threads >= 1, --resolution >= 8 and --limit >= 1")
    try:
        manifest = load_manifest(args.data)
    except DataSetError as exc:
        parser.error(str(exc))
    shapes = [r for r in manifest.get("shapes", []) if r.get("class_name") == args.holdout]
    classes = trained_classes(manifest, args.holdout)
    if args.train_classes:
        wrong = [c for c in args.train_classes if c not in classes]
        if wrong:
            parser.error(
                f"--train-classes {' '.join(wrong)}: not a class of {args.data} other than --holdout "
                f"(choose from {', '.join(classes)})"
            )
        classes = [c for c in classes if c in args.train_classes]
    if args.run is not None:
        classes = _check_run(parser, args.run, args.holdout)
    args.classes = classes
    if not shapes:
        known = sorted({r["class_name"] for r in manifest.get("shapes", [])})
        parser.error(f"--holdout {args.holdout!r}: no shape of that class in {args.data} (classes: {', '.join(known)})")
    if not classes:
        parser.error(f"--holdout {args.holdout!r} is the only class of {args.data}: nothing is left to train on")
    used = {args.holdout, *classes}
    untexted = [
        f"{r['class_name']}/{r['id']}"
        for r in manifest["shapes"]
        if r.get("class_name") in used and not (r.get("text") or "").strip()
    ]
    if untexted:
        parser.error(
            f"{args.data}: {len(untexted)} shapes have no text ({', '.join(untexted[:5])}); this study needs "
            "per-shape descriptions (preprocess with --source synthetic or sweethome3d)"
        )
    args.source_args = None  # recipe_study's Study reads it; the study trains on --data as it is
    args.extra_sets = []  # ... and its --set overrides: none beyond the cond_text variant's own
    args.train_classes = classes  # Study trains on these only (train.classes): never on the held-out class
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    classes = args.classes
    study = Study(args)
    print(f"## zero-shot: train on {', '.join(classes)}; fit {args.holdout} under three conditions", flush=True)
    try:
        ckpt = train(study, args, classes)
        if ckpt is None:
            return 1
        if args.dry_run:
            return 0
        import torch

        from core.evaluation.class_choice import MEAN_CONDITION, ClassChoice
        from core.model import load_trained_model

        torch.set_num_threads(args.threads)
        model = load_trained_model(ckpt, device=None)  # CUDA when present, else the CPU
        nearest, cosines = nearest_class(model, args.holdout)
        print(f"# nearest trained class to {args.holdout!r}: {nearest} (cosine {cosines[nearest]:.3f})", flush=True)
        shapes = heldout_shapes(args.data, args.holdout, args.limit)
        pick = {
            "none": lambda s: MEAN_CONDITION,
            "nearest_class": lambda s: ClassChoice(nearest, "given"),
            "description": None,
        }
        rows = []
        for name, label in CONDITIONS:
            summary = evaluate_condition(args, model, shapes, name, pick[name])["all"]
            if name == "nearest_class":
                label = f"{label} ({nearest})"
            rows.append(
                {
                    "condition": name,
                    "label": label,
                    "n": summary.get("n"),
                    "n_failed": summary.get("n_failed"),
                    **{k: summary.get(k) for k, _, _ in METRICS},
                }
            )
    except KeyboardInterrupt:
        print("interrupted: finished parts are kept; run the same command again to go on", file=sys.stderr)
        return 130
    table = table_markdown(rows)
    trained_how = f"the run {args.run}" if args.run is not None else f"trained {args.minutes:g} CPU-min"
    title = (
        f"# Zero-shot: {args.holdout} held out\n\n"
        f"One text model (per-shape descriptions), {trained_how}, on {', '.join(classes)}; all "
        f"{len(shapes)} {args.holdout} shapes (train and test split: the model never saw the class) fitted by "
        f"TTO (baseline losses) at resolution {args.resolution}. none = the mean of the trained classes' "
        f"conditions; nearest class = {nearest} (prompt-embedding cosine {cosines[nearest]:.3f}); "
        "description = each shape's own text.\n\n"
    )
    from core.utils.io_utils import atomic_write_bytes, atomic_write_json

    atomic_write_bytes(args.out / "zero_shot.md", (title + table).encode("utf-8"))
    atomic_write_json(
        args.out / "zero_shot.json",
        {
            "holdout": args.holdout,
            "trained_classes": classes,
            "checkpoint": str(ckpt),
            "nearest_class": nearest,
            "cosines": cosines,
            "minutes": args.minutes,
            "threads": args.threads,
            "resolution": args.resolution,
            "tto_iterations": args.tto_iterations,
            "shapes": [f"{s.class_name}/{s.id}" for s in shapes],
            "rows": [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows],
            "failed": study.log,
        },
    )
    print("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
