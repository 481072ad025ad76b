"""Does the thin-part mask select what a person calls thin? (docs/results.md, "Thin parts")

    bash scripts/with_display.sh .venv/bin/python -m studies.thin_parts_study [--per-class 4]

For built-in shapes the generator labels its parts (legs, posts, slats, arms, handles, rods are
rods; wings, stabilisers and fins are thin plates), so the script scores the old mask (thinner
than 3 % of the diagonal) and the new one (:func:`core.data.thickness.thin_part_mask`: slender parts)
against those labels, point by point. For the real Sweet Home 3D meshes in tests/data (chair2,
desklamp) and the duck it reports the share of the surface each mask takes and renders both to
docs/img/thin_parts.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import trimesh

from core.data.mesh_io import load_mesh
from core.data.sources.synthetic import CLASSES, build_shape
from core.data.thickness import thin_mask, thin_part_mask
from core.utils.markdown import markdown_table

ROOT = Path(__file__).resolve().parents[1]

REAL = [
    ("chair2 (real chair)", ROOT / "tests/data/meshes/obj_mtl_tex_chair_cc0/chair2.obj"),
    ("desklamp (real lamp)", ROOT / "tests/data/meshes/obj_mtl_kd_lamp_cc0/desklamp.obj"),
    ("duck (no thin part)", ROOT / "tests/data/meshes/obj_mtl_tex_duck/duck.obj"),
]
PLATES = ("wing", "stabiliser", "fin")


def labelled_points(class_name: str, index: int, n: int = 12000, seed: int = 0):
    """Area-uniform samples of a built-in shape with the generator's thin / plate label per point."""
    scene, info = build_shape(class_name, index)
    meshes, names = [], []
    for name, geometry in scene.geometry.items():
        meshes.append(geometry)
        names.append(name)
    areas = np.array([m.area for m in meshes])
    counts = np.random.default_rng(seed).multinomial(n, areas / areas.sum())
    points, normals, rod, plate = [], [], [], []
    for mesh, name, count in zip(meshes, names, counts, strict=True):
        if count == 0:
            continue
        p, face = trimesh.sample.sample_surface(mesh, int(count), seed=seed)
        points.append(p)
        normals.append(mesh.face_normals[face])
        is_thin = name in info["thin_parts"]
        plate.append(np.full(len(p), is_thin and name.startswith(PLATES)))
        rod.append(np.full(len(p), is_thin and not name.startswith(PLATES)))
    whole = trimesh.util.concatenate(meshes)
    return (
        np.vstack(points),
        np.vstack(normals),
        np.concatenate(rod),
        np.concatenate(plate),
        np.asarray(whole.vertices),
        np.asarray(whole.faces),
    )


def score(mask: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(precision, recall) in percent; nan where undefined."""
    tp = float((mask & truth).sum())
    precision = 100 * tp / mask.sum() if mask.any() else float("nan")
    recall = 100 * tp / truth.sum() if truth.any() else float("nan")
    return precision, recall


BUILTIN_HEADERS = (
    "class",
    "rod share %",
    "old mask: share / precision / recall %",
    "new mask (mesh): share / precision / recall %",
    "new mask (points only): share / precision / recall %",
    "plates taken, old / new %",
)
REAL_HEADERS = ("mesh", "old mask share %", "new mask share %")


def builtin_table(per_class: int, classes: Sequence[str] = tuple(CLASSES), points: int = 12000) -> str:
    """The markdown table of the masks against the generator's labels: one row per class of ``classes``
    (``per_class`` shapes of ``points`` labelled surface points each)."""
    rows = []
    for class_name in classes:
        acc: dict[str, list[np.ndarray]] = {"rod": [], "plate": [], "old": [], "new": [], "pts": []}
        for index in range(per_class):
            p, n, rod, plate, v, f = labelled_points(class_name, index, points)
            acc["rod"].append(rod)
            acc["plate"].append(plate)
            acc["old"].append(thin_mask(v, f, p, n))
            acc["new"].append(thin_part_mask(p, n, v, f))
            acc["pts"].append(thin_part_mask(p, n))
        cat = {k: np.concatenate(v) for k, v in acc.items()}
        cells = []
        for key in ("old", "new", "pts"):
            precision, recall = score(cat[key], cat["rod"])
            cells.append(f"{100 * cat[key].mean():.0f} / {precision:.0f} / {recall:.0f}")
        plates = (
            f"{100 * cat['old'][cat['plate']].mean():.0f} / {100 * cat['new'][cat['plate']].mean():.0f}"
            if cat["plate"].any()
            else None
        )
        rows.append([class_name, 100 * cat["rod"].mean(), *cells, plates])
        print(f"# {class_name}: done", file=sys.stderr, flush=True)
    return markdown_table(BUILTIN_HEADERS, rows, digits=0)


def real_meshes(image: Path | None, points: int = 20000) -> str:
    """The markdown table of each mask's share of the real meshes' surfaces (``points`` samples each); renders
    both masks to ``image`` (if given)."""
    rows = []
    shown = []
    for label, path in REAL:
        mesh = load_mesh(path)
        whole = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
        p, face = trimesh.sample.sample_surface(whole, points, seed=0)
        n = whole.face_normals[face]
        old = thin_mask(mesh.vertices, mesh.faces, p, n)
        new = thin_part_mask(p, n, mesh.vertices, mesh.faces)
        rows.append([label, 100 * old.mean(), 100 * new.mean()])
        shown.append((label, p, old, new))
    if image is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, len(shown), figsize=(4 * len(shown), 7.5))
        for col, (label, p, old, new) in enumerate(shown):
            order = np.argsort(p[:, 2])  # draw back to front, looking down -z
            for row, (name, mask) in enumerate((("old: thinner than 3 %", old), ("new: slender parts", new))):
                ax = axes[row, col]
                colours = np.where(mask[order, None], [[0.85, 0.2, 0.1]], [[0.75, 0.75, 0.78]])
                ax.scatter(p[order, 0], p[order, 1], c=colours, s=0.6)
                ax.set_title(f"{label}\n{name}: {100 * mask.mean():.0f} %", fontsize=9)
                ax.set_aspect("equal")
                ax.axis("off")
        fig.tight_layout()
        fig.savefig(image, dpi=80)
        print(f"wrote {image}")
    return markdown_table(REAL_HEADERS, rows, digits=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=4, help="built-in shapes per class")
    parser.add_argument(
        "--classes",
        nargs="+",
        choices=list(CLASSES),
        default=list(CLASSES),
        metavar="CLASS",
        help="built-in classes to score (default: all)",
    )
    parser.add_argument(
        "--points",
        type=int,
        default=None,
        help="surface points per shape (default: 12,000 per built-in shape, 20,000 per real mesh)",
    )
    parser.add_argument("--image", type=Path, default=ROOT / "docs" / "img" / "thin_parts.png")
    args = parser.parse_args(argv)
    print(real_meshes(args.image, args.points or 20000) + "\n")
    print(builtin_table(args.per_class, args.classes, args.points or 12000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
