"""Carry a training set to a GPU machine whose calls take 64 MiB, and put it back together there.

A preprocessed set of real furniture is gigabytes (200,000 samples of 40 bytes a shape); a device
call carries 64 MiB with the code. So ``pack`` keeps a random subset of each training shape's
samples in the compact form of :func:`core.data.samples.write_samples` (11 bytes a sample, zipped),
split into parts small enough for one call each, every part a valid data set of its own (a call
can train on the first part alone). ``merge`` joins the parts into one data set on the machine.

    python scripts/gpu_data.py pack --data data/sweethome3d_thin --samples 30000 --parts 2 --out .gpu_data
    python scripts/gpu_data.py merge .gpu_data/part-* --out /tmp/real   # on the GPU machine

Only the manifest's own relative file paths are used, and only when they stay inside the folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from core.data.manifest import load_manifest
from core.data.samples import ShapeSamples, read_samples, write_samples
from core.utils.errors import DataSetError
from core.utils.io_utils import atomic_write_json


def _inside(root: Path, relative: str) -> Path:
    """``root / relative`` when it stays inside ``root`` (a manifest names only its own files)."""
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or root.resolve() not in path.parents:
        raise DataSetError(f"{root}/manifest.json: file {relative!r} lies outside the data set; refusing it.")
    return path


def _slices(n: int, parts: int, total: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``parts`` disjoint random index sets of ``[0, n)``, ``total`` indices in all (at most ``n``)."""
    keep = rng.permutation(n)[: min(n, total)]
    return np.array_split(keep, parts)


def pack(data: Path, out: Path, samples: int, parts: int, split: str, classes: list[str] | None, seed: int) -> int:
    manifest = load_manifest(data)
    records = [
        r
        for r in manifest["shapes"]
        if r.get("split", "train") == split and (not classes or r["class_name"] in classes)
    ]
    if not records:
        raise DataSetError(f"{data}: no {split} shapes" + (f" of {classes}" if classes else ""))
    rng = np.random.default_rng(seed)
    packed: list[list[dict]] = [[] for _ in range(parts)]
    for record in records:
        source = read_samples(_inside(data, record["file"]))
        pos_parts = _slices(len(source.pos), parts, samples // 2, rng)
        neg_parts = _slices(len(source.neg), parts, samples - samples // 2, rng)
        for k in range(parts):
            ip, ineg = np.sort(pos_parts[k]), np.sort(neg_parts[k])
            piece = ShapeSamples(
                pos=source.pos[ip],
                neg=source.neg[ineg],
                pos_rgb=None if source.pos_rgb is None else source.pos_rgb[ip],
                neg_rgb=None if source.neg_rgb is None else source.neg_rgb[ineg],
                normalization=source.normalization,
                colour_path=source.colour_path,
                sdf_backend=source.sdf_backend,
                stats=source.stats,
            )
            folder = out / f"part-{k + 1}"
            write_samples(_inside(folder, record["file"]), piece, compressed=True, compact=True)
            packed[k].append(record)
    for k, shapes in enumerate(packed):
        atomic_write_json(out / f"part-{k + 1}" / "manifest.json", {**manifest, "shapes": shapes})
    sizes = [sum(f.stat().st_size for f in (out / f"part-{k + 1}").rglob("*") if f.is_file()) for k in range(parts)]
    print(
        f"{len(records)} shapes, {samples} samples each, in {parts} part(s) of "
        + ", ".join(f"{s / 2**20:.1f} MiB" for s in sizes)
        + f" → {out}"
    )
    return 0


def _joined(pieces: list[ShapeSamples], key: str) -> np.ndarray | None:
    """One array of the pieces' ``key`` rows (None when a piece has none)."""
    arrays = [getattr(piece, key) for piece in pieces]
    return None if any(a is None for a in arrays) else np.concatenate(arrays)


def merge(part_dirs: list[Path], out: Path) -> int:
    manifests = [load_manifest(p) for p in part_dirs]
    records = {(r["class_name"], r["id"]): r for m in manifests for r in m["shapes"]}
    for record in records.values():
        pieces = [read_samples(_inside(p, record["file"])) for p in part_dirs if _inside(p, record["file"]).is_file()]
        first = pieces[0]
        merged = ShapeSamples(
            **{key: _joined(pieces, key) for key in ("pos", "neg", "pos_rgb", "neg_rgb")},
            normalization=first.normalization,
            colour_path=first.colour_path,
            sdf_backend=first.sdf_backend,
            stats=first.stats,
        )
        write_samples(_inside(out, record["file"]), merged, compact=True)
    atomic_write_json(out / "manifest.json", {**manifests[0], "shapes": list(records.values())})
    print(f"{len(records)} shapes from {len(part_dirs)} part(s) → {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="subsample a data set's training shapes into parts")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--samples", type=int, default=30_000, help="samples kept per shape, over all parts")
    p.add_argument("--parts", type=int, default=1)
    p.add_argument("--split", default="train")
    p.add_argument("--classes", nargs="*")
    p.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("merge", help="join packed parts into one data set")
    m.add_argument("parts", type=Path, nargs="+")
    m.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            if args.samples < 2 or args.parts < 1:
                raise DataSetError("--samples must be at least 2 and --parts at least 1")
            return pack(args.data, args.out, args.samples, args.parts, args.split, args.classes, args.seed)
        return merge(args.parts, args.out)
    except (DataSetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
