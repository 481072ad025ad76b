"""Test-time optimisation speed: iterations per second for each loss set, as ratios to the baseline.

    python -m benchmarks.bench_tto [--presets default,paper] [--iterations 40] [--samples 8000] [--device auto|cpu|cuda]
    python -m benchmarks.bench_tto --ckpt run/checkpoints/latest.pt    # time a trained model instead

Untrained decoders of each model preset are enough for speed (the work per step does not depend
on the weights). All loss sets are timed in the same process, one after the other, after a warm-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.device_info import device_line, synchronize
from core.tto.config import TTOConfig
from core.tto.fit import fit
from core.tto.observations import from_point_cloud
from core.utils.devices import resolve_device
from core.utils.markdown import markdown_table

LOSS_SETS = ("baseline", "surface", "curriculum", "coarse_to_fine", "finetune", "all")


def sphere_observation(n: int = 20_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    colours = rng.random((n, 3))
    return from_point_cloud(0.6 * normals, normals, colours, normalization=None, source="sphere")


def untrained_model(preset: str, device: str):
    """An untrained model of a ``core.model`` preset (see core/model for the preset names)."""
    from core.model import untrained_model as make  # provided by core/model

    return make(preset, device=device)


def time_loss_set(model, observation, losses: str, iterations: int, samples: int, class_name) -> dict[str, float]:
    config = TTOConfig.from_losses(losses, iterations=iterations, n_samples=samples, finetune_iterations=iterations)
    synchronize(model.device)
    start = time.perf_counter()
    result = fit(model, observation, config, class_name=class_name, every=iterations)
    synchronize(model.device)
    seconds = time.perf_counter() - start
    steps = len(result.history)
    return {"steps": steps, "seconds": seconds, "it_per_s": steps / seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="default,paper", help="model presets to time")
    parser.add_argument("--ckpt", type=Path, default=None, help="time this trained checkpoint instead of presets")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--losses", default=",".join(LOSS_SETS))
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(device_line(device))
    observation = sphere_observation()
    models = []
    if args.ckpt is not None:
        from core.model import load_trained_model

        models.append((args.ckpt.name, load_trained_model(args.ckpt, device=device)))
    else:
        for preset in args.presets.split(","):
            models.append((preset, untrained_model(preset.strip(), device)))
    print(f"device {device}, {args.iterations} steps per loss set, {args.samples} samples per step")
    for name, model in models:
        class_name = (list(getattr(model, "class_names", []) or []) or [None])[0]
        time_loss_set(model, observation, "baseline", 5, args.samples, class_name)  # warm-up
        rows = {
            losses: time_loss_set(model, observation, losses, args.iterations, args.samples, class_name)
            for losses in args.losses.split(",")
        }
        base = rows["baseline"]["it_per_s"] if "baseline" in rows else next(iter(rows.values()))["it_per_s"]
        params = sum(p.numel() for p in model.decoder.parameters())
        print(f"\n### preset {name} ({params:,} decoder parameters)\n")
        print(
            markdown_table(
                ["losses", "steps", "it/s", "× baseline"],
                [
                    [losses, row["steps"], f"{row['it_per_s']:.1f}", f"{row['it_per_s'] / base:.2f}"]
                    for losses, row in rows.items()
                ],
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
