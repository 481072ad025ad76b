"""``python main.py edit``: drag, pin, paint and graft a training shape from the command line.

    python main.py edit --ckpt resources/demo/demo.pt --code chair/chair_003 \\
        --drag=-0.079,0.816,-0.333:-0.079,0.966,-0.333 --pin 0.397,-0.763,0.333 \\
        --paint=-0.079,0.816,-0.333:0.3:#e01010 --out out/edit

Edits run in the order graft, drag, paint (shape first, colour last), each on the result of the
one before. Writes into ``--out``: ``before.ply`` and ``mesh.ply`` (coloured when the model has
colour), ``codes.json`` (the codes format of :mod:`core.model.codes_file`; the edits, their metrics and
plausibility under ``info``; a paint's fine-tuned colour head as the decoder file ``decoder.pt`` beside
it, which ``read_codes`` loads with it) and ``edit.json`` (every edit's loss history). Points are in the
model's unit-sphere frame; a value may start with a minus sign (``--drag -0.1,0.8,0:...``).
Every argument is checked before any optimisation starts.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from pathlib import Path

from core.commands.cli_types import resolution
from core.edit.constraints import Brush, EditError, Handle, Pin, Region, as_colour, as_point

__all__ = ["add_arguments", "run", "parse_point", "parse_drag", "parse_paint", "parse_region"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # argparse takes "-0.08,0.8,-0.3:..." for an unknown option (its negative-number pattern has no
    # commas); widen the pattern on this parser so points may start with a minus sign.
    parser._negative_number_matcher = re.compile(r"^-\.?\d")
    parser.add_argument("--ckpt", type=Path, required=True, help="trained checkpoint (.pt)")
    parser.add_argument("--code", required=True, help="training shape to edit, class/id (e.g. chair/chair_003) or id")
    parser.add_argument(
        "--drag",
        action="append",
        default=[],
        metavar="X,Y,Z:X',Y',Z'",
        help="move the surface at x,y,z to x',y',z' (repeat for several handles)",
    )
    parser.add_argument(
        "--pin",
        action="append",
        default=[],
        metavar="X,Y,Z",
        help="a surface point that must stay on the surface during the drag (repeatable)",
    )
    parser.add_argument(
        "--paint",
        action="append",
        default=[],
        metavar="X,Y,Z:R:#RRGGBB",
        help="paint the surface within radius R of x,y,z in this colour (repeatable)",
    )
    parser.add_argument(
        "--graft",
        default=None,
        metavar="B_ID",
        help="graft the part of shape B_ID inside --region onto the edited shape",
    )
    parser.add_argument(
        "--region",
        default=None,
        metavar="sphere:X,Y,Z,R | box:X,Y,Z,HX,HY,HZ",
        help="the graft region (sphere radius or box half extents)",
    )
    parser.add_argument("--radius", type=float, default=None, help="drag radius of influence (default 0.3)")
    parser.add_argument("--band", type=float, default=None, help="graft blending half-width (default 0.05)")
    parser.add_argument("--iterations", type=int, default=None, help="optimisation steps per edit (default per edit)")
    parser.add_argument(
        "--no-detail",
        action="store_true",
        help="paint with the colour code only (whole parts change colour; no decoder file)",
    )
    parser.add_argument(
        "--resolution",
        type=resolution,
        default=128,
        help="marching-cubes grid resolution of the written meshes, 16 … 2048 (default: 128)",
    )
    parser.add_argument("--device", default=None, help="cpu / cuda (default: where the checkpoint loads)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def parse_point(text: str, what: str) -> tuple[float, float, float]:
    """``"x,y,z"`` -> three finite floats; :class:`EditError` names ``what`` and the text."""
    parts = text.replace(" ", "").split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise EditError(f"{what}: {text!r} is not a point; write x,y,z with three numbers (e.g. 0,0.8,-0.3)") from None
    return as_point(values, f"{what} {text!r}")


def parse_drag(text: str) -> Handle:
    if text.count(":") != 1:
        raise EditError(f"--drag {text!r}: write source:target as x,y,z:x',y',z' (e.g. 0,0.8,-0.3:0,0.9,-0.3)")
    source, target = text.split(":")
    return Handle(parse_point(source, "--drag source"), parse_point(target, "--drag target"))


def parse_paint(text: str) -> Brush:
    if text.count(":") != 2:
        raise EditError(
            f"--paint {text!r}: write centre:radius:colour as x,y,z:r:#rrggbb (e.g. 0,0.8,-0.3:0.2:#ff0000)"
        )
    centre, radius, colour = text.split(":")
    try:
        r = float(radius)
    except ValueError:
        raise EditError(f"--paint {text!r}: the radius {radius!r} is not a number") from None
    return Brush(parse_point(centre, "--paint centre"), r, as_colour(colour, "paint brush colour"))


def parse_region(text: str) -> Region:
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    try:
        values = [float(v) for v in rest.replace(" ", "").split(",")]
    except ValueError:
        values = []
    want = {"sphere": 4, "box": 6}.get(kind)
    if want is None or len(values) != want:
        raise EditError(f"--region {text!r}: write sphere:x,y,z,r or box:x,y,z,hx,hy,hz (half extents)")
    return Region(kind, (values[0], values[1], values[2]), tuple(values[3:]))


OUTPUT_FILES = ("before.ply", "mesh.ply", "codes.json", "edit.json", "decoder.pt")
"""What the command writes into ``--out``."""


def _parse(args: argparse.Namespace) -> dict:
    """Every edit of the command line, validated (raises EditError before anything runs)."""
    handles = [parse_drag(t) for t in args.drag]
    pins = [Pin(parse_point(t, "--pin")) for t in args.pin]
    brushes = [parse_paint(t) for t in args.paint]
    if (args.graft is None) != (args.region is None):
        raise EditError("--graft and --region go together: --graft B_ID --region sphere:x,y,z,r")
    region = parse_region(args.region) if args.region else None
    if pins and not handles:
        raise EditError("--pin only holds points during a drag; add a --drag")
    if not (handles or brushes or region):
        raise EditError("nothing to edit: give at least one --drag, --paint or --graft/--region")
    for name in ("radius", "band"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise EditError(f"--{name} {value}: must be a number > 0")
    if args.iterations is not None and args.iterations < 1:
        raise EditError(f"--iterations {args.iterations}: must be at least 1")
    return {"handles": handles, "pins": pins, "brushes": brushes, "region": region}


def _configs(args: argparse.Namespace, edits: dict) -> dict:
    """The settings of each edit that runs, built (and so checked) before the first one starts."""
    from core.edit import DragConfig, GraftConfig, PaintConfig

    def given(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    return {
        "graft": GraftConfig(**given(band=args.band, iterations=args.iterations)) if edits["region"] else None,
        "drag": DragConfig(**given(radius=args.radius, iterations=args.iterations)) if edits["handles"] else None,
        "paint": PaintConfig(**given(iterations=args.iterations), detail=not args.no_detail)
        if edits["brushes"]
        else None,
    }


def _prepare(args: argparse.Namespace) -> tuple:
    """Everything an edit needs, checked: the edits, the model, the codes, the settings and ``--out``.

    Whatever can be refused is refused here, before any optimisation: a paint on a model without
    colour used to be refused only after the drag before it had run (and its result was lost).
    """
    from core.commands.cli_types import check_out_dir
    from core.edit import codes_of
    from core.edit.paint import check_paintable
    from core.model import load_trained_model

    edits = _parse(args)
    model = load_trained_model(args.ckpt, device=args.device)
    codes = codes_of(model, args.code)
    donor = codes_of(model, args.graft) if args.graft else None
    if edits["brushes"]:
        check_paintable(model, codes)
    configs = _configs(args, edits)
    created = check_out_dir(args.out, files=OUTPUT_FILES)  # last: a refused edit leaves no folder behind
    return edits, configs, model, codes, donor, created


def _run_edits(model, codes, donor, edits: dict, configs: dict, report) -> tuple:
    """Graft, drag, paint in that order, each on the result of the one before: (codes, results, decoder)."""
    from core.edit import ShapeCodes, drag, graft, paint, take_snapshot

    cancel = threading.Event()
    results = []
    decoder_state = None  # a paint's fine-tuned decoder (the checkpoint's own otherwise)
    snapshot = take_snapshot(model, codes)
    if configs["graft"] is not None:
        result = graft(
            model, snapshot, take_snapshot(model, donor), edits["region"], configs["graft"], cancel, report, 50
        )
        results.append(result)
        codes = ShapeCodes(result.shape_code, result.colour_code, result.condition, codes.class_name, codes.label)
        snapshot = take_snapshot(model, codes)
    if configs["drag"] is not None:
        result = drag(
            model, snapshot, edits["handles"], edits["pins"], configs["drag"], cancel=cancel, callback=report, every=25
        )
        results.append(result)
        codes = ShapeCodes(result.shape_code, codes.colour_code, codes.condition, codes.class_name, codes.label)
        if configs["paint"] is not None:
            snapshot = take_snapshot(model, codes)
    if configs["paint"] is not None:
        result = paint(model, snapshot, edits["brushes"], configs["paint"], cancel, report, 25)
        results.append(result)
        codes = ShapeCodes(codes.shape_code, result.colour_code, codes.condition, codes.class_name, codes.label)
        decoder_state = result.decoder_override
    return codes, results, decoder_state


def _write(args: argparse.Namespace, model, original, codes, results: list, decoder_state) -> int:
    """Mesh and write the shape before and after; the number of faces of the edited mesh."""
    from core.meshing import export_mesh, extract_mesh
    from core.model.codes_file import SavedCodes, write_codes
    from core.utils.io_utils import atomic_write_json

    edited = model.with_decoder(decoder_state)
    mesh = extract_mesh(
        edited.sdf_fn(codes.shape_code, codes.condition),
        args.resolution,
        edited.colour_fn(codes.shape_code, codes.colour_code, codes.condition),
    )
    out: Path = args.out
    export_mesh(
        extract_mesh(
            model.sdf_fn(original.shape_code, original.condition),
            args.resolution,
            model.colour_fn(original.shape_code, original.colour_code, original.condition),
        ),
        out / "before.ply",
    )
    if mesh.is_empty:
        print(
            "warning: the edited shape has no surface inside [-1, 1]^3; mesh.ply not written. Try a smaller drag.",
            file=sys.stderr,
        )
    else:
        export_mesh(mesh, out / "mesh.ply")
    summaries = [
        {k: v for k, v in r.to_dict().items() if k not in ("shape_code", "colour_code", "condition")} for r in results
    ]
    info = {
        "edited": args.code,
        "edits": summaries,
        "mesh": {"n_vertices": int(len(mesh.vertices)), "n_faces": int(len(mesh.faces)), "resolution": args.resolution},
        "frame": "unit_sphere",
    }
    write_codes(
        out / "codes.json",
        SavedCodes(
            codes.shape_code,
            codes.colour_code,
            codes.class_name,
            None,
            codes.condition,
            f"{codes.label} (edited)",
            str(args.ckpt),
            decoder_state=decoder_state,
            info=info,
        ),
        decoder_name="decoder.pt",
    )
    atomic_write_json(out / "edit.json", {"edits": [{"kind": r.kind, "history": r.history} for r in results]})
    return len(mesh.faces)


def run(args: argparse.Namespace) -> int:
    from core.commands.cli_types import remove_if_empty
    from core.utils.errors import ExplorerError

    try:
        edits, configs, model, codes, donor, created = _prepare(args)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def report(progress) -> None:
        if not args.quiet:
            terms = " ".join(f"{k}={v:.4f}" for k, v in progress.losses.items() if k not in ("iteration", "seconds"))
            print(f"[{progress.kind}] step {progress.iteration}: {terms}", flush=True)

    try:
        edited, results, decoder_state = _run_edits(model, codes, donor, edits, configs, report)
    except ExplorerError as exc:
        remove_if_empty(args.out, created)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        remove_if_empty(args.out, created)
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    try:
        faces = _write(args, model, codes, edited, results, decoder_state)
    except (ExplorerError, OSError) as exc:
        print(f"error: writing the results into {args.out} failed: {exc}", file=sys.stderr)
        return 2
    for r in results:
        print(
            f"{r.kind}: {r.iterations} steps, {r.seconds:.2f} s, "
            + ", ".join(f"{k}={v:.4g}" for k, v in r.metrics.items() if isinstance(v, (int, float)))
            + f"; {r.plausibility.text() if r.plausibility else ''}"
        )
    print(f"{faces} faces → {args.out}")
    return 0
