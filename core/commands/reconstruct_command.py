"""``python main.py reconstruct``: fit a trained model's codes to one input, mesh the result.

Writes ``codes.json`` (codes, class, config, observation summary), ``mesh.ply`` (coloured
when the model has colour) and ``losses.json`` (the loss history) into ``--out``; with the
``finetune`` loss set also ``decoder_finetuned.pt`` (the fine-tuned decoder's state dict).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

from core.errors import ExplorerError

__all__ = ["add_arguments", "run", "parse_direction"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.tto.config import LOSS_PRESETS

    parser.add_argument("--ckpt", type=Path, required=True, help="trained checkpoint (.pt)")
    parser.add_argument("--input", type=Path, required=True,
                        help="mesh (obj/glb/ply/stl/off), sample file (.npz) or point cloud (ply/xyz/npy/npz)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--class", dest="class_name", default=None,
                       help="condition on this class (default: inferred by a short fit under every class)")
    group.add_argument("--text", default=None, help="free text prompt (text-conditioned models)")
    parser.add_argument("--losses", default="baseline",
                        help=f"loss set: {', '.join(LOSS_PRESETS)} or a comma list (default: baseline = DeepSDF)")
    parser.add_argument("--iterations", type=int, default=None, help="optimisation steps (default 800, DeepSDF)")
    parser.add_argument("--samples-per-step", type=int, default=None, help="SDF samples per step (default 8000)")
    parser.add_argument("--lr", type=float, default=None, help="code learning rate (default 5e-3)")
    parser.add_argument("--resolution", type=int, default=128, help="marching-cubes grid resolution")
    parser.add_argument("--mesh-method", choices=["coarse_to_fine", "dense"], default="coarse_to_fine")
    parser.add_argument("--scan-direction", default=None,
                        help="x,y,z: treat a mesh input as a single-view depth scan from this direction")
    parser.add_argument("--input-samples", type=int, default=100_000, help="SDF samples drawn from a mesh input")
    parser.add_argument("--original-frame", action="store_true",
                        help="write the mesh in the input's original frame (default: unit-sphere frame)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu / cuda (default: where the checkpoint loads)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def parse_direction(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not any(values):
        raise ExplorerError(f"--scan-direction must be three numbers x,y,z, not all zero; got {text!r}")
    return values  # type: ignore[return-value]


def _config(args: argparse.Namespace):
    from core.tto.config import TTOConfig

    overrides = {}
    if args.iterations is not None:
        overrides["iterations"] = args.iterations
    if args.samples_per_step is not None:
        overrides["n_samples"] = args.samples_per_step
    if args.lr is not None:
        overrides["lr"] = args.lr
    return TTOConfig.from_losses(args.losses, **overrides)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from core.io_utils import atomic_torch_save, atomic_write_json
    from core.meshing import export_mesh, extract_mesh
    from core.model import load_trained_model
    from core.tto.fit import decode_fns, fit
    from core.tto.observations import load_observation

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = _config(args)
        model = load_trained_model(args.ckpt, device=args.device) if args.device else load_trained_model(args.ckpt)
        observation = load_observation(args.input, n_samples=args.input_samples,
                                       scan_direction=parse_direction(args.scan_direction), seed=args.seed)
    except (ExplorerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def report(progress) -> None:
        if args.quiet:
            return
        terms = " ".join(f"{k}={v:.5f}" for k, v in progress.losses.items())
        print(f"[{progress.stage}] step {progress.iteration}: {terms}", flush=True)

    cancel = threading.Event()
    try:
        result = fit(model, observation, config, callback=report, every=max(1, config.iterations // 10),
                     cancel=cancel, class_name=args.class_name, text=args.text, seed=args.seed)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

    sdf_fn, colour_fn = decode_fns(model, result)
    mesh = extract_mesh(sdf_fn, args.resolution, colour_fn, method=args.mesh_method)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.original_frame and observation.normalization is not None and not mesh.is_empty:
        mesh.vertices = observation.normalization.invert(mesh.vertices).astype(np.float32)
    if mesh.is_empty:
        print(f"warning: the fitted shape has no surface inside [-1, 1]^3 ({mesh.stats.get('reason')}); "
              "mesh.ply not written. Try more --iterations or another --class.", file=sys.stderr)
    else:
        export_mesh(mesh, out / "mesh.ply")
    codes = result.to_dict()
    codes.update(
        checkpoint=str(args.ckpt),
        input=str(args.input),
        observation=observation.summary(),
        frame="original" if args.original_frame else "unit_sphere",
        mesh={"n_vertices": int(len(mesh.vertices)), "n_faces": int(len(mesh.faces)), "resolution": args.resolution},
    )
    atomic_write_json(out / "codes.json", codes)
    atomic_write_json(out / "losses.json", {"losses": config.losses, "history": result.history})
    if result.decoder_override is not None:
        atomic_torch_save(out / "decoder_finetuned.pt", result.decoder_override)
    final = result.final_losses
    print(f"class {result.class_name!r}, sdf loss {final.get('sdf', float('nan')):.5f}, {result.seconds:.1f} s, "
          f"{len(mesh.faces)} faces → {out}")
    return 0
