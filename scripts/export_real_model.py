"""Package a training run on Sweet Home 3D data as a bundled model (issue 12, item 3).

Writes ``OUT/`` (e.g. ``resources/real``): the inference checkpoint (no optimiser state), the run's
``config.json`` and ``training_log.csv``, ``trained_items.json`` (id, licence and OBJ digest of each
trained item), ``ATTRIBUTION.md`` naming every item the run *trained* on
(its classes, the train split: CC-BY asks for credit of exactly those) and the ``model.json`` card
the viewer's Models menu reads (core/model/bundled_models.py). The README beside them is written by hand:
it says how the model was made and what it does well and badly.

Refuses (exit 2, nothing written) when a trained item's licence is not one the Sweet Home 3D source
accepts (CC0 / CC-BY, ``ALL_LICENCES``): a model we ship must be one we may ship.

    .venv/bin/python scripts/export_real_model.py --run runs/real/cond_embedding/run \\
        --data data/sweethome3d --out resources/real --title "Real furniture (5 classes)" \\
        --description "..."   # both default to the card already in --out (a rebuild keeps them)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

CHECKPOINT_NAME = "model.pt"
TRAINED_ITEMS = "trained_items.json"


def trained_items(data: Path, classes: list[str]) -> list[dict[str, Any]]:
    """The manifest records of the train split in ``classes``: what the run saw."""
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    return [r for r in manifest.get("shapes", []) if r.get("split") == "train" and r.get("class_name") in classes]


def licence_line(items: list[dict[str, Any]]) -> str:
    counts = Counter(r["extra"]["licence"] for r in items)
    parts = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
    return (
        f"Weights: MIT, as the project. Trained on {len(items)} Sweet Home 3D furniture models ({parts}); "
        "their creators are credited in ATTRIBUTION.md beside the checkpoint."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="finished 'main.py train' run folder")
    source.add_argument(
        "--checkpoint",
        type=Path,
        help="an exported checkpoint of a run trained elsewhere (scripts/gpu_train_real.sh brings "
        "one back from a GPU machine); its config and stats come from inside it",
    )
    parser.add_argument("--log", type=Path, help="with --checkpoint: the run's log.csv")
    parser.add_argument("--data", type=Path, required=True, help="the Sweet Home 3D data folder it trained on")
    parser.add_argument("--out", type=Path, required=True, help="bundled-model folder to write, e.g. resources/real")
    parser.add_argument("--title", help="the card's title (the Models menu's entry; default: OUT/model.json's)")
    parser.add_argument("--description", help="the card's description (a tooltip; default: OUT/model.json's)")
    args = parser.parse_args(argv)
    from core.data.sources.sweethome3d import ALL_LICENCES, attribution_markdown
    from core.model.bundled_models import CARD_NAME
    from core.model.export import export_inference_checkpoint
    from core.utils.io_utils import atomic_write_bytes, atomic_write_json

    card_path = args.out / CARD_NAME
    try:  # a rebuild keeps the card's words, version and first shape
        old_card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        parser.error(f"{card_path}: not a readable JSON card ({exc}); fix it or give --title and --description")
    if not (args.title and args.description):
        args.title = args.title or old_card.get("title")
        args.description = args.description or old_card.get("description")
    if not (args.title and args.description):
        parser.error(f"--title and --description are needed: {card_path} does not give them")

    if args.run is not None:
        needed = [args.run / n for n in ("stats.json", "config.json", "log.csv", "checkpoints/latest.pt")]
        missing = [str(f) for f in needed if not f.is_file()]
        if missing:
            parser.error(f"--run {args.run}: missing {', '.join(missing)}; give a finished 'main.py train' run folder")
        checkpoint, log_file = args.run / "checkpoints" / "latest.pt", args.run / "log.csv"
        stats = json.loads((args.run / "stats.json").read_text(encoding="utf-8"))
        config_bytes = (args.run / "config.json").read_bytes()
    else:
        from core.model.checkpoint import read_checkpoint
        from core.utils.errors import CheckpointError

        if args.log is None or not args.log.is_file():
            parser.error("--checkpoint needs --log, the run's log.csv")
        try:
            data = read_checkpoint(args.checkpoint)
        except CheckpointError as exc:
            parser.error(str(exc))
        checkpoint, log_file = args.checkpoint, args.log
        stats = dict(data.get("stats") or {})
        config_bytes = (json.dumps(data["config"], indent=2) + "\n").encode("utf-8")
    if not (args.data / "manifest.json").is_file():
        parser.error(f"--data {args.data}: no manifest.json; give the folder 'main.py preprocess' wrote")
    items = trained_items(args.data, list(stats["classes"]))
    if len(items) != int(stats["shapes"]):
        parser.error(
            f"{args.data}: {len(items)} train-split shapes in {', '.join(stats['classes'])}, but the run "
            f"trained {stats['shapes']}: is --data the folder the run trained on?"
        )
    bad = sorted({r["extra"].get("licence", "?") for r in items} - set(ALL_LICENCES))
    if bad:
        print(f"refused: trained items under {', '.join(bad)}; ship only CC0 / CC-BY models", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    export_inference_checkpoint(checkpoint, args.out / CHECKPOINT_NAME)
    atomic_write_bytes(args.out / "config.json", config_bytes)
    atomic_write_bytes(args.out / "training_log.csv", log_file.read_bytes())

    attribution = (
        "# Models this checkpoint was trained on, and their creators\n\nFrom Debian's "
        "sweethome3d-furniture 1.8-1 libraries (train split of "
        + ", ".join(stats["classes"])
        + "); CC-BY items require this attribution.\n\n"
        + attribution_markdown([r["extra"] for r in items])
    )
    atomic_write_bytes(args.out / "ATTRIBUTION.md", attribution.encode("utf-8"))
    # machine-readable: which item each training code is, so a test can check none is reserved
    atomic_write_json(
        args.out / TRAINED_ITEMS,
        {
            "items": [
                {
                    "class": r["class_name"],
                    "id": r["id"],
                    "item_id": r["extra"].get("item_id"),
                    "creator": r["extra"].get("creator"),
                    "licence": r["extra"].get("licence"),
                    "obj_sha256": r["extra"].get("obj_sha256"),
                }
                for r in items
            ]
        },
    )
    # The measured figures belong to the old weights: dropped here, written again by
    # `python scripts/results.py --stages models` (scripts/results_report.py).
    card = {key: value for key, value in old_card.items() if key != "figures"}
    card.update(title=args.title, description=args.description, checkpoint=CHECKPOINT_NAME, licence=licence_line(items))
    atomic_write_json(card_path, card)
    if "figures" in old_card:
        print(
            f"{card_path}: its figures were measured on the old weights and are dropped; measure the new ones "
            "with `python scripts/results.py --stages models`"
        )
    size = (args.out / CHECKPOINT_NAME).stat().st_size / 2**20
    print(f"wrote {args.out} ({len(items)} trained items, checkpoint {size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
