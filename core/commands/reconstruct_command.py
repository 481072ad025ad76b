"""``python main.py reconstruct``: fit a trained model's codes to one input, mesh the result.

Writes ``codes.json`` (the one codes format of :mod:`core.model.codes_file`: codes, class, and under
``info`` the fit's settings, losses, input and metrics), ``mesh.ply`` (coloured when the model
has colour) and ``losses.json`` (the loss history) into ``--out``; with the ``finetune`` loss
set also ``decoder_finetuned.pt`` (the fine-tuned decoder, named in codes.json and loaded with
it by the viewer). When the input is a mesh (also a scan of one) or a sample file with surface
points, the result is measured against it: Chamfer distance, F-score, normal consistency.
Every option is checked before the model is loaded and the fit starts.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from core.commands.cli_types import (
    add_tto_set_argument,
    check_out_dir,
    non_negative_int,
    positive_float,
    positive_int,
    resolution,
)
from core.utils.errors import ExplorerError

__all__ = ["add_arguments", "run", "parse_direction", "DECODER_FILE"]

DECODER_FILE = "decoder_finetuned.pt"
OUTPUT_FILES = ("codes.json", "mesh.ply", "losses.json", DECODER_FILE)
"""What the command writes into ``--out``."""
METRIC_POINTS = 30_000
"""Points sampled on the reconstruction and on a mesh input for the metrics (DeepSDF: 30,000)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.tto.config import LOSS_PRESETS, TTOConfig
    from core.utils.config_io import arg_default

    parser.add_argument("--ckpt", type=Path, required=True, help="trained checkpoint (.pt)")
    parser.add_argument(
        "--input",
        type=Path,
        required=True,
        help="mesh (obj/glb/ply/stl/off), sample file (.npz) or point cloud (ply/xyz/npy/npz)",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--class",
        dest="class_name",
        default=None,
        help="condition on this class (default: inferred by a short fit under every class)",
    )
    group.add_argument("--text", default=None, help="free text prompt (text-conditioned models)")
    parser.add_argument(
        "--losses",
        default="baseline",
        help=f"loss set: {', '.join(LOSS_PRESETS)} or a comma list (default: baseline = DeepSDF)",
    )
    parser.add_argument(
        "--iterations", type=positive_int, **arg_default(TTOConfig, "iterations", "optimisation steps (DeepSDF: 800)")
    )
    parser.add_argument(
        "--samples-per-step", type=positive_int, **arg_default(TTOConfig, "n_samples", "SDF samples per step")
    )
    parser.add_argument("--lr", type=positive_float, **arg_default(TTOConfig, "lr", "code learning rate"))
    add_tto_set_argument(parser)
    parser.add_argument(
        "--resolution", type=resolution, default=128, help="marching-cubes grid resolution, 16 … 2048 (default: 128)"
    )
    parser.add_argument("--mesh-method", choices=["coarse_to_fine", "dense"], default="coarse_to_fine")
    parser.add_argument(
        "--scan-direction",
        default=None,
        help="x,y,z: treat a mesh input as a single-view depth scan from this direction",
    )
    parser.add_argument(
        "--input-samples", type=positive_int, default=100_000, help="SDF samples drawn from a mesh input"
    )
    parser.add_argument(
        "--original-frame",
        action="store_true",
        help="write the mesh in the input's original frame (default: unit-sphere frame)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--device", default=None, help="auto / cpu / cuda[:N] (default: CUDA when present)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def parse_direction(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not any(values) or not all(v == v and abs(v) != float("inf") for v in values):
        raise ExplorerError(f"--scan-direction must be three finite numbers x,y,z, not all zero; got {text!r}")
    return values


def _config(args: argparse.Namespace):
    from core.tto.config import TTOConfig

    config = TTOConfig.from_losses(args.losses, iterations=args.iterations, n_samples=args.samples_per_step, lr=args.lr)
    return config.with_overrides(args.tto_overrides)


def measure_against_input(args: argparse.Namespace, observation: Any, mesh: Any) -> dict[str, float] | None:
    """Metrics of ``mesh`` (unit-sphere frame) against the input, or None when it has no surface to compare.

    A mesh input (a scan of one included: the fit is judged on the whole shape, not the seen
    side) is sampled afresh; a sample file brings its own ``surface_points`` / ``surface_normals``.
    A bare point cloud has neither a closed surface nor reliable normals, so it is not measured.
    """
    from core.data.mesh_io import MESH_SUFFIXES
    from core.evaluation.ground_truth import mesh_ground_truth
    from core.evaluation.metrics import evaluate_reconstruction
    from core.evaluation.thin_masks import approximate_thin_mask

    if observation.kind in ("mesh", "scan") and args.input.suffix.lower() in MESH_SUFFIXES:
        gt = mesh_ground_truth(args.input, METRIC_POINTS, seed=args.seed)
        mask = gt.pop("thin_mask")
    elif observation.kind == "npz" and observation.has_surface and observation.has_normals:
        gt = {"surface_points": observation.surface_points, "surface_normals": observation.surface_normals}
        if observation.surface_colours is not None:
            gt["surface_rgb"] = observation.surface_colours
        mask = approximate_thin_mask(gt["surface_points"], gt["surface_normals"])
    else:
        return None
    return evaluate_reconstruction(gt, mesh, thin_mask=mask, n_points=METRIC_POINTS, rng=args.seed)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from core.meshing import export_mesh, extract_mesh
    from core.model import load_trained_model
    from core.model.codes_file import SavedCodes, write_codes
    from core.tto.config import for_observation
    from core.tto.fit import fit
    from core.tto.observations import load_observation
    from core.utils.devices import resolve_device
    from core.utils.io_utils import atomic_write_json

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = _config(args)
        direction = parse_direction(args.scan_direction)
        device = resolve_device(args.device)
        check_out_dir(args.out, files=OUTPUT_FILES)
        model = load_trained_model(args.ckpt, device=device)
        observation = load_observation(
            args.input, n_samples=args.input_samples, scan_direction=direction, seed=args.seed
        )
    except (ExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = for_observation(config, observation.kind)  # as the fit would: the log below names the weight
    if observation.kind == "scan" and config.finetune_last_layers and config.finetune_anchor_weight:
        logging.getLogger(__name__).info(
            "fine-tuning a partial scan with the prior anchor (weight %g): where the camera saw nothing the "
            "decoder keeps the prior's field (docs/results.md, 'Partial scans')",
            config.finetune_anchor_weight,
        )

    def report(progress) -> None:
        if args.quiet:
            return
        terms = " ".join(f"{k}={v:.5f}" for k, v in progress.losses.items())
        print(f"[{progress.stage}] step {progress.iteration}: {terms}", flush=True)

    cancel = threading.Event()
    try:
        result = fit(
            model,
            observation,
            config,
            callback=report,
            every=max(1, config.iterations // 10),
            cancel=cancel,
            class_name=args.class_name,
            text=args.text,
            seed=args.seed,
        )
        used = model.with_decoder(result.decoder_override)
        condition = used.condition(class_name=result.class_name, text=result.text)
        mesh = extract_mesh(
            used.sdf_fn(result.shape_code, condition),
            args.resolution,
            used.colour_fn(result.shape_code, result.colour_code, condition),
            method=args.mesh_method,
            device=device,
        )
        metrics = None if mesh.is_empty else measure_against_input(args, observation, mesh)
    except (ExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130

    out: Path = args.out
    if args.original_frame and observation.normalization is not None and not mesh.is_empty:
        mesh.vertices = observation.normalization.invert(mesh.vertices).astype(np.float32)
    info = {
        "fit": {
            k: v
            for k, v in result.to_dict().items()
            if k not in ("shape_code", "colour_code", "class_name", "text", "config")
        },
        "input": str(args.input),
        "observation": observation.summary(),
        "frame": "original" if args.original_frame else "unit_sphere",
        "mesh": {"n_vertices": int(len(mesh.vertices)), "n_faces": int(len(mesh.faces)), "resolution": args.resolution},
        "metrics": metrics,
    }
    codes = SavedCodes(
        result.shape_code,
        result.colour_code,
        result.class_name,
        result.text,
        condition=None if condition is None else condition.detach().cpu(),
        label=f"fit of {args.input.name}",
        checkpoint=str(args.ckpt),
        decoder_state=result.decoder_override,
        config=config.to_dict(),
        info=info,
    )
    try:
        write_codes(out / "codes.json", codes, decoder_name=DECODER_FILE)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if mesh.is_empty:
        print(
            f"warning: the fitted shape has no surface inside [-1, 1]^3 ({mesh.stats.get('reason')}); "
            "mesh.ply not written. Try more --iterations or another --class.",
            file=sys.stderr,
        )
        (out / "mesh.ply").unlink(missing_ok=True)  # an earlier fit's mesh must not pass for this one
    else:
        export_mesh(mesh, out / "mesh.ply")
    atomic_write_json(out / "losses.json", {"losses": config.losses, "history": result.history})
    final = result.final_losses
    print(
        f"class {result.class_name!r}, sdf loss {final.get('sdf', float('nan')):.5f}, {result.seconds:.1f} s, "
        f"{len(mesh.faces)} faces → {out}"
    )
    if metrics:
        print(
            f"against the input: CD×10³ {1e3 * metrics['chamfer']:.3f}, F@1 {100 * metrics['fscore_1pct']:.1f} %, "
            f"F@2 {100 * metrics['fscore_2pct']:.1f} %, NC {metrics['normal_consistency']:.3f}"
            + (f", thin F@1 {100 * metrics['thin_fscore_1pct']:.1f} %" if "thin_fscore_1pct" in metrics else "")
        )
    return 0
