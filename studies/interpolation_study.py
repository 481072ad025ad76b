"""Does interpolating between training shapes of different classes keep structure? (issue 11, item 3)

For fixed pairs of *training* shapes of different classes (the first training shape of each class,
in :data:`DEFAULT_PAIRS` order, plus any ``--pair A:B``), the trained codes are blended the way the
viewer's interpolation panel blends them (:func:`core.model.latent_ops.blend`, linear: shape code and
colour code at the same t; the class condition by :func:`core.model.latent_ops.blend_condition`, the
nearer end's by default as in the viewer, or ``--condition linear``) and each blend is meshed at ``--resolution``
(:func:`core.meshing.extract_mesh`). Per shape (:func:`shape_measures`):

* ``volume``: enclosed volume; the mesh volume when the mesh is watertight, otherwise a voxel
  occupancy volume by winding number at the meshing grid's spacing (``volume_method`` says which);
* ``volume_ratio``: the volume against the range of the end points' volumes: 1 inside
  ``[min(V(0), V(1)), max(V(0), V(1))]``, else ``V(t) / min`` below it or ``V(t) / max`` above it;
* ``obb_ratio``: smallest / largest extent of the oriented bounding box of the main body (floaters
  dropped, :func:`main_body`; a slab has a small one);
* ``thin_share``: share of the surface on thin parts (:func:`core.data.thickness.thin_part_mask` on
  points sampled on the mesh, with the mesh for the thickness);
* ``components`` / ``floaters``: :func:`core.evaluation.metrics.mesh_components`.

A mid-shape (0 < t < 1) is **collapsed** (:func:`collapse_reasons`, thresholds in :class:`CollapseRule`)
when it is empty, or its volume ratio is below 0.5 or above 2 (it holds less than half the smaller
end's bulk or more than twice the larger's), or the end it is nearer to has thin parts (thin share
>= 5 %; at t = 0.5 the end with fewer) and its thin share is below 25 % of that end's (it lost its
legs, stems or handles), or the smallest extent of its main body's OBB is below 0.1 of the largest
while both end points' are above 0.2 (it flattened into a slab neither end point is), or it carries
more floating fragments than either end point (it broke apart).

The references are the end points' own range and the nearer end, not a linear blend of the two:
with the viewer's nearer-end class condition (:func:`core.model.latent_ops.blend_condition`) a blend
stays close to one end and then switches, so an intact lamp at t = 0.25 of a lamp -> mug blend
holds a quarter of the linearly blended volume and the earlier rule (until 2026-11-28) flagged it;
it also let a stem broken into pieces pass. A blend towards a shape without thin parts (a vase) may
lose them once it is nearer that end.

Writes OUT/interpolation.json and OUT/interpolation.md, prints the table, and renders a coloured
strip (rows = pairs, columns = t; collapsed cells framed red) to docs/img/interpolation_structure_<tag>.png.

    nice -n 19 bash scripts/with_display.sh .venv/bin/python -m studies.interpolation_study \\
        --ckpt resources/demo/demo.pt --data data/study_base --out runs/interp_demo --tag before
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.model.latent_ops import CONDITION_BLENDS
from core.utils.errors import ConfigError, DataSetError, ExplorerError
from core.utils.markdown import markdown_table

ROOT = Path(__file__).resolve().parents[1]

CONDITION_WORDS = {"nearest": "of the nearer end (A's for t < 0.5, B's after)", "linear": "blended linearly"}

DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("airplane", "chair"),
    ("chair", "table"),
    ("lamp", "mug"),
    ("table", "lamp"),
    ("shelf", "vase"),
)
"""Class pairs of the built-in set, in order; the first training shape of each class stands for it."""
TS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class CollapseRule:
    """When a mid-shape counts as collapsed (see the module docstring)."""

    min_volume_ratio: float = 0.5
    """Below this share of the smaller end's volume the shape lost its bulk."""
    max_volume_ratio: float = 2.0
    """Above this multiple of the larger end's volume it bloated into a blob."""
    thin_present: float = 0.05
    """Thin parts are expected when the nearer end's thin share (at t = 0.5 the smaller) is at least this."""
    thin_kept: float = 0.25
    """... and kept when the mid-shape's thin share is at least this fraction of that end's."""
    slab_ratio: float = 0.1
    """Smallest / largest OBB extent below this is a slab ..."""
    ends_not_slab: float = 0.2
    """... when both end points' ratios are above this (a blend of two flat shapes may be flat)."""


@dataclass(frozen=True)
class Endpoint:
    """One training shape: its index among the checkpoint's codes, id and class."""

    index: int
    shape_id: str
    class_name: str


# -- measures ---------------------------------------------------------------------------------------
def enclosed_volume(vertices: np.ndarray, faces: np.ndarray, pitch: float) -> tuple[float, str]:
    """(volume, method): the mesh volume when watertight ("mesh"), else a voxel occupancy volume ("voxels").

    ``vertices`` (V, 3), ``faces`` (F, 3). The fall-back counts the centres of a grid of ``pitch`` (the meshing
    grid's spacing, coarsened to 64 cells along the longest side) over the mesh's bounds whose generalised winding
    number is above 1/2 (libigl's fast winding number): unlike filling a voxelised shell, this still finds the
    inside of a mesh with holes, e.g. one cut open by the meshing box. An empty mesh has volume 0 ("empty").
    """
    import igl
    import trimesh

    if len(faces) == 0:
        return 0.0, "empty"
    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=True)
    if mesh.is_watertight:
        return float(abs(mesh.volume)), "mesh"
    lo, hi = mesh.bounds
    pitch = max(pitch, float((hi - lo).max()) / 64)  # at most 64 cells a side: the fall-back is rare, keep it cheap
    axes = [np.arange(a + 0.5 * pitch, b, pitch) for a, b in zip(lo, hi, strict=True)]
    gx, gy = np.meshgrid(axes[0], axes[1], indexing="ij")
    plane = np.stack([gx.ravel(), gy.ravel()], axis=1)
    v, f = np.ascontiguousarray(mesh.vertices), np.ascontiguousarray(mesh.faces, dtype=np.int64)
    layers = max(1, 1_000_000 // max(len(plane), 1))  # about a million points a call: memory stays flat
    inside = 0
    for k in range(0, len(axes[2]), layers):
        z = axes[2][k : k + layers]
        block = np.c_[np.tile(plane, (len(z), 1)), np.repeat(z, len(plane))]
        inside += int((igl.fast_winding_number(v, f, np.ascontiguousarray(block)) > 0.5).sum())
    return float(inside * pitch**3), "voxels"


def main_body(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(K, 3) vertices of the mesh's main components: floaters dropped by
    :func:`core.evaluation.metrics.mesh_components`' rule.

    The main components are the largest and every one holding at least ``FLOATER_SHARE`` (5 %) of the surface
    area; a few specks far from the body would otherwise stretch the bounding box of a flat plate into a cube.
    """
    from core.evaluation.metrics import main_component_faces

    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    kept = faces[main_component_faces(vertices, faces)]
    return np.asarray(vertices, np.float64)[np.unique(kept)]


def obb_ratio(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Smallest / largest extent of the oriented bounding box of the mesh's :func:`main_body`; 0 when degenerate.

    ``vertices`` (V, 3), ``faces`` (F, 3). A slab scores near 0, a cube 1, a chair about 0.4.
    """
    import trimesh

    if len(faces) == 0:
        return 0.0
    v = np.unique(main_body(vertices, faces), axis=0)
    if len(v) < 4:
        return 0.0
    try:
        _, extents = trimesh.bounds.oriented_bounds(v)
    except Exception:  # noqa: BLE001 - a degenerate (coplanar) hull: a slab of zero thickness
        return 0.0
    extents = np.sort(np.abs(np.asarray(extents, np.float64)))
    return float(extents[0] / extents[-1]) if extents[-1] > 0 else 0.0


def thin_share(vertices: np.ndarray, faces: np.ndarray, n_points: int = 4000, seed: int = 0) -> float:
    """Share of the surface of the mesh (V, 3) / (F, 3) on thin parts
    (:func:`core.data.thickness.thin_part_mask`)."""
    from core.data.thickness import thin_part_mask
    from core.evaluation.metrics import sample_mesh_surface

    if len(faces) == 0:
        return 0.0
    points, normals, _, _ = sample_mesh_surface(vertices, faces, n_points, seed)
    mask = thin_part_mask(points, normals, np.asarray(vertices, np.float64), np.asarray(faces, np.int64), seed=seed)
    return float(mask.mean())


def shape_measures(vertices: np.ndarray, faces: np.ndarray, pitch: float) -> dict[str, Any]:
    """Volume, OBB ratio, thin share, components and floaters of one mesh (V, 3) / (F, 3) (see module docstring)."""
    from core.evaluation.metrics import mesh_components

    volume, method = enclosed_volume(vertices, faces, pitch)
    comps = mesh_components(vertices, faces)
    empty = len(faces) == 0
    return {
        "empty": empty,
        "volume": volume,
        "volume_method": method,
        "obb_ratio": obb_ratio(vertices, faces),
        "thin_share": thin_share(vertices, faces),
        "components": comps["components"],
        "floaters": comps["floaters"],
    }


def volume_ratio(volume: float, v0: float, v1: float) -> float:
    """``volume`` against the range of the end points' volumes: 1 inside it, else against the bound it
    passed (``volume / min`` below, ``volume / max`` above; inf above two empty ends)."""
    low, high = sorted((float(v0), float(v1)))
    if volume < low:
        return float(volume / low)
    if volume > high:
        return float(volume / high) if high > 0 else float("inf")
    return 1.0


def nearer_end_thin_share(t: float, s0: float, s1: float) -> float:
    """The thin share a mid-shape at ``t`` should keep: the nearer end's, at t = 0.5 the smaller of the two."""
    if t < 0.5:
        return float(s0)
    if t > 0.5:
        return float(s1)
    return float(min(s0, s1))


def collapse_reasons(
    mid: dict[str, Any], end0: dict[str, Any], end1: dict[str, Any], rule: CollapseRule = CollapseRule()
) -> list[str]:
    """Why the mid-shape ``mid`` counts as collapsed against its end points (empty list: it is not).

    Each dict holds :func:`shape_measures`' keys; ``mid`` also ``volume_ratio``.
    """
    if mid["empty"]:
        return ["empty"]
    reasons = []
    if not rule.min_volume_ratio <= mid["volume_ratio"] <= rule.max_volume_ratio:
        reasons.append(f"volume ratio {mid['volume_ratio']:.2f}")
    expected_thin = nearer_end_thin_share(mid["t"], end0["thin_share"], end1["thin_share"])
    if expected_thin >= rule.thin_present and mid["thin_share"] < rule.thin_kept * expected_thin:
        reasons.append(f"thin parts lost ({mid['thin_share']:.0%} of the surface, nearer end {expected_thin:.0%})")
    if (
        mid["obb_ratio"] < rule.slab_ratio
        and end0["obb_ratio"] > rule.ends_not_slab
        and end1["obb_ratio"] > rule.ends_not_slab
    ):
        reasons.append(f"slab (OBB {mid['obb_ratio']:.2f})")
    if mid["floaters"] > max(end0["floaters"], end1["floaters"]):
        reasons.append(f"broke apart ({mid['floaters']} floaters; ends {end0['floaters']} / {end1['floaters']})")
    return reasons


# -- choosing the pairs -----------------------------------------------------------------------------
def training_endpoints(model, data_dir: Path) -> tuple[dict[str, Endpoint], dict[str, Endpoint], dict[str, Any]]:
    """(first training shape per class, every training shape by id, a check report).

    The training shapes are the data set's train split; each must be a code of the checkpoint with
    the same class, which checks that ``data_dir`` is the set the model was trained on.
    """
    from core.data.manifest import load_manifest

    manifest = load_manifest(data_dir)
    train = sorted(
        (r for r in manifest["shapes"] if r.get("split", "train") == "train"),
        key=lambda r: (str(r["class_name"]), str(r["id"])),
    )
    if not train:
        raise DataSetError(
            f"{data_dir}/manifest.json: no shape in the train split; pass the data set the model was trained on."
        )
    known = {sid: i for i, sid in enumerate(model.shape_ids)}
    by_id: dict[str, Endpoint] = {}
    wrong_class = []
    for record in train:
        sid, cls = str(record["id"]), str(record["class_name"])
        if sid in known:
            if model.shape_classes[known[sid]] != cls:
                wrong_class.append(sid)
            else:
                by_id[sid] = Endpoint(known[sid], sid, cls)
    if not by_id or wrong_class:
        raise DataSetError(
            f"{data_dir}: its train split does not match the checkpoint {model.path} "
            f"({len(by_id)} of {len(train)} training ids are codes of the model"
            f"{', classes differ for ' + ', '.join(wrong_class[:3]) if wrong_class else ''}). "
            "Pass the data set the model was trained on."
        )
    first: dict[str, Endpoint] = {}
    for ep in by_id.values():
        first.setdefault(ep.class_name, ep)
    report = {
        "data_train_ids": len(train),
        "matched_codes": len(by_id),
        "model_codes": len(model.shape_ids),
        "missing_from_model": sorted(set(r["id"] for r in train) - set(by_id))[:10],
    }
    return first, by_id, report


def choose_pairs(
    first: dict[str, Endpoint], by_id: dict[str, Endpoint], n_pairs: int, extra: list[str] | tuple[str, ...] = ()
) -> list[tuple[Endpoint, Endpoint]]:
    """The pairs to study: :data:`DEFAULT_PAIRS` whose classes exist (else consecutive classes), first
    ``n_pairs`` of them, then each ``extra`` "A:B" (a class name or a training shape id on each side)."""
    defaults = [(a, b) for a, b in DEFAULT_PAIRS if a in first and b in first]
    if not defaults:
        classes = sorted(first)
        defaults = list(zip(classes[:-1], classes[1:], strict=True))
    pairs = [(first[a], first[b]) for a, b in defaults[:n_pairs]]

    def resolve(name: str, spec: str) -> Endpoint:
        if name in by_id:
            return by_id[name]
        if name in first:
            return first[name]
        raise ConfigError(
            f"--pair {spec}: {name!r} is neither a class nor a training shape id of the data set; "
            f"classes: {', '.join(sorted(first))}"
        )

    for spec in extra:
        a, sep, b = spec.partition(":")
        if not sep or not a or not b:
            raise ConfigError(f"--pair {spec}: write it as A:B (two classes or training shape ids), e.g. lamp:chair")
        pa, pb = resolve(a.strip(), spec), resolve(b.strip(), spec)
        if pa.class_name == pb.class_name:
            raise ConfigError(f"--pair {spec}: both ends are of class {pa.class_name!r}; pick shapes of two classes")
        pairs.append((pa, pb))
    if not pairs:
        raise ConfigError("no pair to study: the data set's train split has fewer than two classes and no --pair given")
    return pairs


# -- the study --------------------------------------------------------------------------------------
def run_study(
    model,
    pairs: list[tuple[Endpoint, Endpoint]],
    resolution: int,
    ts: tuple[float, ...] = TS,
    rule: CollapseRule = CollapseRule(),
    progress: bool = True,
    condition: str = "nearest",
    spherical: bool = False,
) -> tuple[list[dict], list[list]]:
    """Mesh and measure every pair at every t; return (one row per pair and t, mesh cells per pair for the strip).

    ``condition``: how the class condition moves (:data:`core.model.latent_ops.CONDITION_BLENDS`).
    ``spherical``: blend the codes by :func:`core.model.latent_ops.slerp` (the viewer's "spherical"), which
    keeps a blend's code length between the ends' instead of dipping toward the mean shape.
    """
    from tqdm import tqdm

    from core.meshing import extract_mesh
    from core.meshing.grid import grid_spacing
    from core.model.latent_ops import blend, blend_condition

    pitch = grid_spacing(resolution)
    rows: list[dict] = []
    cells: list[list] = []
    bar = tqdm(total=len(pairs) * len(ts), desc="interpolation", disable=not progress)
    for a, b in pairs:
        ca, cb = model.training_condition(a.index), model.training_condition(b.index)  # the ends as trained
        col_a = None if model.colour_codes is None else model.colour_codes[a.index]
        col_b = None if model.colour_codes is None else model.colour_codes[b.index]
        measured, row_cells = [], []
        for t in ts:
            code = blend(model.shape_codes[a.index], model.shape_codes[b.index], t, spherical)
            cond = blend_condition(ca, cb, t, condition)
            colour = blend(col_a, col_b, t, spherical)
            mesh = extract_mesh(model.sdf_fn(code, cond), resolution, model.colour_fn(code, colour, cond))
            m = shape_measures(mesh.vertices, mesh.faces, pitch)
            m.update(
                {
                    "pair": f"{a.shape_id} → {b.shape_id}",
                    "from": a.shape_id,
                    "to": b.shape_id,
                    "from_class": a.class_name,
                    "to_class": b.class_name,
                    "t": float(t),
                }
            )
            measured.append(m)
            row_cells.append(None if mesh.is_empty else (mesh.vertices, mesh.faces, mesh.colours))
            bar.update(1)
        rows.extend(judge_pair(measured, rule))
        cells.append(row_cells)
    bar.close()
    return rows, cells


def judge_pair(measured: list[dict], rule: CollapseRule = CollapseRule()) -> list[dict]:
    """Add ``volume_ratio``, ``collapsed`` (None at the end points) and ``reasons`` to one pair's rows, in t order."""
    v0, v1 = measured[0]["volume"], measured[-1]["volume"]
    for m in measured:
        m["volume_ratio"] = volume_ratio(m["volume"], v0, v1)
        mid = 0.0 < m["t"] < 1.0
        reasons = collapse_reasons(m, measured[0], measured[-1], rule) if mid else []
        m["collapsed"] = bool(reasons) if mid else None
        m["reasons"] = reasons
    return measured


def rescore(rows: list[dict], rule: CollapseRule = CollapseRule()) -> list[dict]:
    """A saved study's rows judged again by ``rule`` (the measures are kept; no meshing): how an
    earlier interpolation.json reads under today's rule."""
    by_pair: dict[str, list[dict]] = {}
    for r in rows:
        by_pair.setdefault(r["pair"], []).append(dict(r))
    return [m for pair in by_pair.values() for m in judge_pair(sorted(pair, key=lambda r: r["t"]), rule)]


def table_markdown(rows: list[dict]) -> str:
    """One row per pair and t: the measures and the verdict (— at the end points, which are not judged)."""
    headers = [
        "pair",
        "t",
        "volume",
        "method",
        "vol. ratio",
        "OBB min/max",
        "thin share",
        "components",
        "floaters",
        "collapsed",
    ]
    cells = []
    for r in rows:
        verdict = None if r["collapsed"] is None else "**yes**: " + "; ".join(r["reasons"]) if r["collapsed"] else "no"
        cells.append(
            [
                r["pair"],
                r["t"],
                f"{r['volume']:.4f}",
                r["volume_method"],
                r["volume_ratio"],
                r["obb_ratio"],
                f"{100 * r['thin_share']:.0f} %",
                r["components"],
                r["floaters"],
                verdict,
            ]
        )
    return markdown_table(headers, cells, align="lrrlrrrrrl")


def summary(rows: list[dict]) -> dict[str, Any]:
    mids = [r for r in rows if r["collapsed"] is not None]
    return {
        "mid_shapes": len(mids),
        "collapsed": sum(r["collapsed"] for r in mids),
        "mid_with_floaters": sum(r["floaters"] > 0 for r in mids),
        "pairs_with_collapse": sorted({r["pair"] for r in mids if r["collapsed"]}),
    }


def render_strip(
    cells: list[list],
    rows: list[dict],
    pairs: list[tuple[Endpoint, Endpoint]],
    ts: tuple[float, ...],
    path: Path,
    size: int = 220,
) -> Path:
    """The coloured strip (rows = pairs, columns = t) by :func:`core.evaluation.figures.render_grid`, then pair
    labels on the left and a red frame around collapsed cells (PIL), written atomically to ``path``."""
    import io
    import tempfile

    from PIL import Image, ImageDraw, ImageFont

    from core.evaluation.figures import render_grid
    from core.utils.io_utils import atomic_write_bytes

    with tempfile.TemporaryDirectory() as tmp:
        render_grid(cells, [], Path(tmp) / "grid.png", size=size)  # column titles go above, clear of the frames
        grid = Image.open(Path(tmp) / "grid.png").convert("RGB")
        grid.load()
    cw, ch = grid.width / len(ts), grid.height / len(pairs)
    margin, header = 150, 28
    img = Image.new("RGB", (grid.width + margin, grid.height + header), "white")
    img.paste(grid, (margin, header))
    draw = ImageDraw.Draw(img)
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    for j, t in enumerate(ts):
        draw.text((margin + cw * (j + 0.5), header // 2), f"t = {t:.2f}", fill="black", font=font, anchor="mm")
    for i, (a, b) in enumerate(pairs):
        y = header + int(ch * (i + 0.5))
        draw.text((8, y - 18), f"{a.class_name} -> {b.class_name}", fill="black", font=font)
        draw.text((8, y + 2), f"{a.shape_id} -> {b.shape_id}", fill="#555555", font=small)
        for j in range(len(ts)):
            r = rows[i * len(ts) + j]
            if r["collapsed"]:
                x0, y0 = margin + int(cw * j), header + int(ch * i)
                draw.rectangle((x0 + 2, y0 + 2, x0 + int(cw) - 3, y0 + int(ch) - 3), outline="#d62728", width=4)
                draw.text((x0 + 8, y0 + int(ch) - 20), "collapsed", fill="#d62728", font=font)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="trained checkpoint (e.g. resources/demo/demo.pt)")
    parser.add_argument("--data", type=Path, help="the preprocessed data set it was trained on")
    parser.add_argument("--out", type=Path, help="folder for interpolation.json / interpolation.md")
    parser.add_argument(
        "--rescore",
        type=Path,
        metavar="JSON",
        help="judge a saved interpolation.json again by today's collapse rule and print it "
        "(no meshing; nothing written)",
    )
    parser.add_argument("--pairs", type=int, default=len(DEFAULT_PAIRS), help="how many of the default class pairs")
    parser.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="A:B",
        help="an extra pair: two classes or training shape ids (repeatable)",
    )
    parser.add_argument("--resolution", type=int, default=128, help="meshing grid samples per side")
    parser.add_argument("--tag", default="run", help="picture name: docs/img/interpolation_structure_<tag>.png")
    parser.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img", help="where the picture goes")
    parser.add_argument("--no-picture", action="store_true", help="skip rendering (no display needed)")
    parser.add_argument(
        "--condition",
        choices=CONDITION_BLENDS,
        default="nearest",
        help="class condition along the blend: the nearer end's (the viewer's default) or linear",
    )
    parser.add_argument(
        "--spherical",
        action="store_true",
        help="blend the codes spherically (slerp, the viewer's 'spherical') instead of linearly",
    )
    args = parser.parse_args(argv)
    if args.rescore:
        try:
            saved = json.loads(args.rescore.read_text(encoding="utf-8"))
            rows = rescore(saved["rows"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: --rescore {args.rescore}: not a readable interpolation.json ({exc})", file=sys.stderr)
            return 2
        s = summary(rows)
        print(table_markdown(rows))
        print(
            f"\n{s['collapsed']} of {s['mid_shapes']} mid-shapes collapsed by today's rule "
            f"({saved.get('summary', {}).get('collapsed', '?')} by the rule it was saved with)"
        )
        return 0
    missing = [flag for flag in ("ckpt", "data", "out") if getattr(args, flag) is None]
    if missing:
        parser.error("the following arguments are required: " + ", ".join("--" + m for m in missing))

    from core.model import load_trained_model
    from core.utils.io_utils import atomic_write_bytes, atomic_write_json

    try:
        if args.resolution < 16:
            raise ConfigError(
                f"--resolution {args.resolution}: too coarse to mesh thin parts; use 16 or more (128 for the study)"
            )
        if args.pairs < 0:
            raise ConfigError(f"--pairs {args.pairs}: must be 0 or more")
        if not args.tag.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"--tag {args.tag!r}: use letters, digits, '-' and '_' only (it names a file)")
        if not args.ckpt.exists():
            raise ConfigError(f"--ckpt {args.ckpt}: no such file; pass a checkpoint written by `main.py train`")
        model = load_trained_model(args.ckpt, device="cpu")
        first, by_id, check = training_endpoints(model, args.data)
        pairs = choose_pairs(first, by_id, args.pairs, args.pair)
        args.out.mkdir(parents=True, exist_ok=True)
        print(
            f"{check['matched_codes']} of {check['data_train_ids']} training ids of {args.data} are codes of "
            f"{args.ckpt} ({check['model_codes']} codes); {len(pairs)} pairs at {args.resolution}³"
        )
        rows, cells = run_study(model, pairs, args.resolution, condition=args.condition, spherical=args.spherical)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rule = CollapseRule()
    picture = None
    if not args.no_picture:
        picture = render_strip(cells, rows, pairs, TS, args.img_dir / f"interpolation_structure_{args.tag}.png")
    result = {
        "ckpt": str(args.ckpt),
        "data": str(args.data),
        "resolution": args.resolution,
        "ts": list(TS),
        "condition": args.condition,
        "blend": "spherical" if args.spherical else "linear",
        "training_check": check,
        "collapse_rule": asdict(rule),
        "summary": summary(rows),
        "picture": None if picture is None else str(picture),
        "rows": rows,
    }
    table = table_markdown(rows)
    s = result["summary"]
    verdict = f"{s['collapsed']} of {s['mid_shapes']} mid-shapes collapsed"
    atomic_write_json(args.out / "interpolation.json", result)
    md = (
        f"# Interpolation between training shapes of different classes\n\n`{args.ckpt}`, {args.resolution}³, "
        f"{'spherical' if args.spherical else 'linear'} blend of shape and colour codes, "
        f"class condition {CONDITION_WORDS[args.condition]}. "
        f"{verdict}.\n\n{table}\n"
    )
    atomic_write_bytes(args.out / "interpolation.md", md.encode("utf-8"))
    print(table)
    print(f"\n{verdict}; wrote {args.out / 'interpolation.json'}" + (f" and {picture}" if picture else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
