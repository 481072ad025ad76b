"""Pictures of the training target itself: each shape's winding-number field next to its open-mesh field.

Why: a decoder learns the field its samples were drawn from, so the first thing to look at on real
furniture is that field meshed on the grid a reconstruction is meshed on. Rows are shapes of a
preprocessed data set (by id), columns the undilated winding-number field and the field the sample
file recorded (``auto``: the open-mesh field for open meshes). Floating pieces are red
(:func:`core.evaluation.metrics.main_component_faces`); under each cell the numbers of
:func:`core.evaluation.ground_truth_quality.ground_truth_quality` against the source mesh (pieces beyond the
source's own parts, F@1 % of the surface stepped back as a model's meshes are). Run from the repository
root under a display::

    bash scripts/with_display.sh .venv/bin/python -m studies.ground_truth_figure --data data/sweethome3d \\
        --resolution 96 --out docs/img/ground_truth_open_mesh.png bookcase desk wallLight designChair
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from core.commands.cli_types import resolution
from core.evaluation.figures import floater_painted, label_grid, render_grid
from core.utils.errors import ExplorerError
from core.utils.io_utils import atomic_write_bytes, atomic_write_json


def find_shapes(data_dir: Path, patterns: Sequence[str]) -> list[dict]:
    """The manifest record of the first shape whose id contains each pattern (in order)."""
    from core.data.manifest import load_manifest

    records = load_manifest(data_dir)["shapes"]
    found = []
    for pattern in patterns:
        match = next((r for r in records if pattern in str(r["id"])), None)
        if match is None:
            raise ExplorerError(
                f"{data_dir / 'manifest.json'}: no shape id contains {pattern!r}; "
                "give part of an id the manifest lists."
            )
        found.append(match)
    return found


def field_cells(data_dir: Path, record: dict, resolution: int) -> tuple[list, list[str], list[dict]]:
    """(cells, captions, numbers) of one shape: the winding field, then the recorded field."""
    from core.data.open_mesh_sdf import mesh_step
    from core.data.sdf_backends import sdf_field
    from core.evaluation.grid_reference import field_mesh
    from core.evaluation.ground_truth import load_ground_truth, shape_source_mesh
    from core.evaluation.ground_truth_quality import ground_truth_quality
    from core.evaluation.held_out_split import EvalShape

    shape = EvalShape(
        str(record["id"]),
        str(record["class_name"]),
        data_dir / record["file"],
        Path(record["source"]) if record.get("source") else None,
        None,
    )
    source = shape_source_mesh(shape, load_ground_truth(shape.file))
    if source is None:
        raise ExplorerError(
            f"{record.get('source')}: the source mesh of {shape.id} is missing or unreadable; "
            "run from the checkout that preprocessed the data set."
        )
    cells, captions, numbers = [], [], []
    for field in (sdf_field(source.vertices, source.faces, "winding"), source.field()):
        epsilon = float(field.details.get("epsilon", 0.0))
        mesh = field_mesh(field, resolution, surface_offset=mesh_step(epsilon))  # no step at ε = 0 (winding)
        quality = ground_truth_quality(source.vertices, source.faces, field, resolution).to_dict()
        cells.append(floater_painted((mesh.vertices, mesh.faces)) if not mesh.is_empty else None)
        f1 = quality["fscore_1pct_deflated"]  # the surface as a model's meshes step it back (ε = 0: unchanged)
        captions.append(f"{field.backend}: torn {quality['torn_pieces']}  F@1 {100 * f1:.1f}")
        numbers.append(quality)
    return cells, captions, numbers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a data set made by main.py preprocess")
    parser.add_argument("--resolution", type=resolution, default=96, help="grid samples per side (the evaluation grid)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write (numbers go beside it as JSON)")
    parser.add_argument("shapes", nargs="+", help="part of each shape's id, one row each")
    args = parser.parse_args(argv)
    try:
        if args.out.is_dir():
            raise ExplorerError(f"--out {args.out}: is a folder; give a file name such as {args.out / 'figure.png'}.")
        if args.out.suffix.lower() != ".png":
            raise ExplorerError(f"--out {args.out}: the figure is a PNG; end the name with .png.")
        rows, captions, numbers = [], [], {}
        for record in find_shapes(args.data, args.shapes):
            cells, caps, nums = field_cells(args.data, record, args.resolution)
            rows.append(cells)
            captions.append(caps)
            numbers[str(record["id"])] = nums
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    titles = ["winding-number sign", "recorded field (open-mesh)"]
    with tempfile.TemporaryDirectory() as tmp:
        grid = Path(tmp) / "grid.png"
        render_grid(rows, [], grid)
        torn = [np.mean([n[c]["torn_pieces"] > 0 for n in numbers.values()]) for c in range(2)]
        footers = [f"shapes torn {100 * t:.0f}%" for t in torn]
        note = f"the training field meshed on a {args.resolution}-per-side grid; floaters red"
        atomic_write_bytes(
            args.out, label_grid(grid, titles, [r.split("_", 1)[-1] for r in numbers], captions, footers, note)
        )
    atomic_write_json(args.out.with_suffix(".json"), {"resolution": args.resolution, "shapes": numbers})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
