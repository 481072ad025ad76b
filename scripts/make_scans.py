"""Write the sample scans of resources/scans/: thin-structure objects that are not in training.

Each comes as the full mesh (GLB, coloured) and as a single-view partial depth scan of it (an
``.npz`` in DeepSDF's sample format with the scan's surface points, and a ``.ply`` point cloud
with normals and colours). The shapes are the procedural generator's index 900+, which the
built-in data set (indices 0-19) never contains.

    python scripts/make_scans.py [NAME ...] [--out resources/scans]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.data.samples import ShapeSamples, write_samples
from core.data.sources.synthetic import build_shape
from core.tto import Observation, from_scan
from core.utils.io_utils import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
SCANS = {"chair_thin": ("chair", 901), "lamp_arm": ("lamp", 903), "table_thin": ("table", 900)}
OUT = ROOT / "resources" / "scans"


def _ply(points: np.ndarray, normals: np.ndarray, colours: np.ndarray | None) -> bytes:
    """Binary PLY point cloud with normals (and colours): the point-cloud input of TTO."""
    n = len(points)
    fields = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("nx", "f4"), ("ny", "f4"), ("nz", "f4")]
    if colours is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    rows = np.zeros(n, dtype=[(name, "<" + t) for name, t in fields])
    for i, axis in enumerate("xyz"):
        rows[axis] = points[:, i]
        rows["n" + axis] = normals[:, i]
    if colours is not None:
        for i, c in enumerate(("red", "green", "blue")):
            rows[c] = np.clip(np.rint(colours[:, i] * 255), 0, 255)
    types = {"f4": "float", "u1": "uchar"}
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {n}\n"
    header += "".join(f"property {types[t]} {name}\n" for name, t in fields) + "end_header\n"
    return header.encode("ascii") + rows.tobytes()


def scan_samples(obs: Observation) -> ShapeSamples:
    """The scan's SDF samples and surface points in DeepSDF's sample layout (no per-sample colours)."""
    pos, neg = obs.sdf >= 0, obs.sdf < 0
    return ShapeSamples(
        pos=np.c_[obs.points[pos], obs.sdf[pos]].astype(np.float32),
        neg=np.c_[obs.points[neg], obs.sdf[neg]].astype(np.float32),
        surface_points=obs.surface_points,
        surface_normals=obs.surface_normals,
        surface_rgb=obs.surface_colours,
        normalization=obs.normalization,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "names",
        nargs="*",
        choices=sorted(SCANS),
        metavar="NAME",
        help=f"which scans: {', '.join(SCANS)} (default: all)",
    )
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write (default: resources/scans)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or SCANS:
        cls, index = SCANS[name]
        scene, info = build_shape(cls, index, seed=0)
        mesh_path = atomic_write_bytes(args.out / f"{name}.glb", scene.export(file_type="glb"))
        obs = from_scan(mesh_path, direction=(0.6, 0.4, 0.7), resolution=160)
        write_samples(args.out / f"{name}_partial.npz", scan_samples(obs), compressed=True)
        ply = _ply(obs.surface_points, obs.surface_normals, obs.surface_colours)
        atomic_write_bytes(args.out / f"{name}_partial_points.ply", ply)
        print(f"{name}: {cls} #{index}, thin parts {info['thin_parts']}, scan {len(obs.surface_points)} points")


if __name__ == "__main__":
    main()
