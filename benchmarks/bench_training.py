"""Training and inference throughput of the model presets, as ratios to ``paper`` measured in the same run.

    python -m benchmarks.bench_training                 # tiny, default, paper; ~3-6 minutes on a 2-core CPU
    python -m benchmarks.bench_training --quick         # smaller sizes, a smoke run (under a minute)
    python -m benchmarks.bench_training --presets default,paper --device cuda
    python -m benchmarks.bench_training --device cuda --gpu-sizes          # DeepSDF-sized batches on a GPU
    python -m benchmarks.bench_training --presets default --threads 1 --compare-gather   # the step's speed-up

Training: one optimisation step of the trainer on a synthetic in-memory batch (no data loading):
forward + backward + Adam of :class:`core.model.autodecoder.AutoDecoder` through the trainer's own
loss (``core.training.trainer._step``: clamped L1 SDF + near-surface colour L1 + code regulariser),
``shapes`` shapes x ``samples`` points per step (the ``paper`` preset gets fewer samples per shape
so a step stays within seconds on a CPU; samples/s is per point, so the presets still compare),
plus the ``default`` preset at the demo recipe's batch (``--demo-batch``, 8 x 2048). Steps run as the
trainer runs them: the presets' embedding conditioning, the trainer's row layout, and on the CPU
deterministic algorithms (``trainer._deterministic_on_cpu``). ``--compare-gather`` also times every
row with the decoder's per-point gather of the latent terms (``decoder.fold_blocks = False``, the
path before the block broadcast) in the same rounds and prints the speed-up as a ratio.
The matmul peak is timed in the same rounds and with the same thread count as the steps (one
2048^2 GEMM per round, median), so load from other processes hits both alike.
Inference: SDF of a batch of points for one shared code, no gradient (the folded-latent path of
meshing and the viewer). After a warm-up the presets take turns round by round (so load from
other processes hits them alike) and each number is the median over the rounds. The machines
are noisy: read the ``x paper`` columns, not the absolute numbers.

On CUDA the device's matrix-product peaks are measured in float32, TF32 and bf16 (8192^2 GEMMs),
and each preset's training throughput is given as a share of the TF32 and bf16 peaks (the ceilings
of ``torch.set_float32_matmul_precision("high")`` and of bf16 autocast); ``--tf32`` times the steps
with TF32 matrix products allowed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from benchmarks.device_info import device_line
from core.model import preset_config, untrained_model
from core.model.autodecoder import AutoDecoder
from core.training.config import RunConfig, TrainConfig
from core.training.trainer import _deterministic_on_cpu, _step  # the trainer's loss, as it trains
from core.utils.devices import resolve_device
from core.utils.markdown import markdown_table


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_batch(shapes: int, samples: int, num_classes: int, device: torch.device, seed: int = 0) -> dict:
    """A training batch in the layout of ``core.training.trainer._batch_tensors``: balls of radius 0.5."""
    g = torch.Generator().manual_seed(seed)
    n = shapes * samples
    xyz = torch.rand(n, 3, generator=g) * 2 - 1
    view = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1)
    batch = {
        "xyz": xyz,
        "sdf": xyz.norm(dim=-1) - 0.5,
        "rgb": torch.rand(n, 3, generator=g),
        "view": view,
        "has_rgb": torch.ones(n, dtype=torch.bool),
        "shape": torch.arange(shapes),
        "class": torch.arange(shapes) % num_classes,
        "row": torch.arange(shapes).repeat_interleave(samples),
    }
    return {k: v.to(device) for k, v in batch.items()}


class TrainingBench:
    """One preset's module, optimiser and batch; :meth:`step` is one timed training step."""

    def __init__(self, preset: str, shapes: int, samples: int, device: torch.device, gather: bool = False) -> None:
        torch.manual_seed(0)
        model_cfg = preset_config(preset)
        self.config = RunConfig(model=model_cfg, train=TrainConfig(shapes_per_batch=shapes, samples_per_shape=samples))
        self.module = AutoDecoder(model_cfg, num_shapes=shapes, num_classes=2).to(device).train()
        self.module.decoder.fold_blocks = not gather  # gather: the per-point path, the baseline of --compare-gather
        codes = list(self.module.shape_codes.parameters()) + list(self.module.colour_codes.parameters())
        code_ids = {id(p) for p in codes}
        net = [p for p in self.module.parameters() if id(p) not in code_ids]
        self.optimizer = torch.optim.Adam([{"params": net, "lr": 1e-3}, {"params": codes, "lr": 2e-3}])
        self.batch = synthetic_batch(shapes, samples, 2, device)
        self.shapes, self.points, self.device = shapes, shapes * samples, device
        self.params = sum(p.numel() for p in self.module.decoder.parameters())
        self.times: list[float] = []
        self._run()  # warm-up (allocations, Adam state)

    def _run(self) -> None:
        losses = _step(
            self.module,
            self.module,
            self.batch,
            self.config,
            epoch=50,
            global_shapes=self.shapes,
            world=1,
            device=self.device,
        )
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.optimizer.step()

    def step(self) -> None:
        _sync(self.device)
        tic = time.perf_counter()
        self._run()
        _sync(self.device)
        self.times.append(time.perf_counter() - tic)

    def result(self) -> dict[str, float]:
        seconds = statistics.median(self.times)
        return {
            "points_per_step": self.points,
            "step_s": seconds,
            "steps_per_s": 1.0 / seconds,
            "samples_per_s": self.points / seconds,
            "params": self.params,
            "steps": len(self.times),
        }


def _time_call(fn, min_seconds: float, device: torch.device) -> float:
    """Seconds per call of ``fn``, averaged over as many calls as fit in ``min_seconds`` (at least one)."""
    calls, total = 0, 0.0
    while calls == 0 or total < min_seconds:
        _sync(device)
        tic = time.perf_counter()
        fn()
        _sync(device)
        total += time.perf_counter() - tic
        calls += 1
    return total / calls


def matmul_peak(device: torch.device, n: int = 2048, seconds: float = 1.0, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a large matrix product of ``dtype`` on ``device``: the ceiling an MLP step can reach.

    float32 products use TF32 on the GPU only where ``torch.set_float32_matmul_precision`` allows it.
    """
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    count, tic = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - tic < seconds:  # at least one product
        a @ b
        count += 1
    _sync(device)
    return 2.0 * n**3 * count / (time.perf_counter() - tic)


def _fmt(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.2f}"


def _training_table(train_rows: dict, peak: float, gpu_peaks: dict[str, float], compare_gather: bool) -> str:
    """The training-step table: one row per preset (its gather-path run in extra columns), against the paper."""
    base_train = train_rows.get(("paper", False))
    gpu_kinds = [k for k in ("tf32", "bf16") if k in gpu_peaks]
    headers = (
        ["preset", "decoder params", "points/step", "ms/step", "samples/s", "samples/s x paper", "% of matmul peak"]
        + [f"% of {k} peak" for k in gpu_kinds]
        + (["ms/step, gather path", "speed-up over gather"] if compare_gather else [])
    )
    table = []
    for (label, gather), r in train_rows.items():
        if gather:
            continue
        ratio = f"{r['samples_per_s'] / base_train['samples_per_s']:.1f}x" if base_train else "n/a"
        # forward 2 and backward 4 FLOPs per weight and point (an upper bound on the useful work:
        # the folded latent columns are not multiplied per point)
        useful = 6.0 * r["params"] * r["samples_per_s"]
        cells = [
            label,
            f"{r['params']:,}",
            f"{r['points_per_step']:,}",
            f"{1e3 * r['step_s']:.1f}",
            _fmt(r["samples_per_s"]),
            ratio,
            f"{100 * useful / peak:.0f} %",
        ] + [f"{100 * useful / gpu_peaks[k]:.1f} %" for k in gpu_kinds]
        if compare_gather:
            slow = train_rows[(label, True)]
            cells += [f"{1e3 * slow['step_s']:.1f}", f"{slow['step_s'] / r['step_s']:.2f}x"]
        table.append(cells)
    return markdown_table(headers, table)


def _inference_table(infer_rows: dict, batch_sizes: list[int]) -> str:
    """The inference table: points/s per preset and batch size, and the geometric mean against the paper."""
    base_infer = infer_rows.get("paper")
    table = []
    for preset, r in infer_rows.items():
        if base_infer:
            ratios = [r[n] / base_infer[n] for n in batch_sizes]
            ratio = f"{statistics.geometric_mean(ratios):.1f}x"
        else:
            ratio = "n/a"
        table.append([preset] + [_fmt(r[n]) for n in batch_sizes] + [ratio])
    return markdown_table(["preset"] + [f"{n:,}" for n in batch_sizes] + ["x paper (geometric mean)"], table)


def _time_inference(
    presets: list[str], batch_sizes: list[int], repeats: int, min_seconds: float, device: torch.device
) -> dict[str, dict[int, float]]:
    """Points per second of each preset's SDF at each batch size (median of ``repeats`` rounds taking turns)."""
    sdf_fns, points = (
        {},
        {n: (torch.rand(n, 3, generator=torch.Generator().manual_seed(n)) * 2 - 1).to(device) for n in batch_sizes},
    )
    for preset in presets:
        model = untrained_model(preset, device=device)
        sdf_fns[preset] = model.sdf_fn(model.shape_codes[0], model.condition())
    samples: dict[str, dict[int, list[float]]] = {p: {n: [] for n in batch_sizes} for p in presets}
    with torch.no_grad():
        for preset in presets:  # warm-up
            for n in batch_sizes:
                sdf_fns[preset](points[n])
        for _ in range(repeats):
            for preset in presets:
                for n in batch_sizes:
                    seconds = _time_call(lambda fn=sdf_fns[preset], x=points[n]: fn(x), min_seconds, device)
                    samples[preset][n].append(n / seconds)
    return {p: {n: statistics.median(v) for n, v in rows.items()} for p, rows in samples.items()}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="tiny,default,paper", help="model presets, comma separated")
    parser.add_argument("--shapes", type=int, default=16, help="shapes per training step")
    parser.add_argument("--samples", type=int, default=4096, help="samples per shape per step")
    parser.add_argument("--paper-samples", type=int, default=1024, help="samples per shape for the paper preset")
    parser.add_argument("--steps", type=int, default=8, help="timed training steps (after one warm-up)")
    parser.add_argument("--paper-steps", type=int, default=3, help="timed training steps of the paper preset")
    parser.add_argument("--batch-sizes", default="4096,16384,65536", help="inference batch sizes ('' for none)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per inference batch (median)")
    parser.add_argument("--min-seconds", type=float, default=0.3, help="least time of one inference measurement")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    parser.add_argument(
        "--gpu-sizes",
        action="store_true",
        help="DeepSDF-sized steps for a GPU: 64 shapes x 8192 samples for every preset, "
        "10 timed steps, inference batches up to 1 M points",
    )
    parser.add_argument("--tf32", action="store_true", help="allow TF32 matrix products in the timed steps")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--demo-batch",
        default="8x2048",
        help="SHAPESxSAMPLES of the extra `default` row (the demo recipe's batch); '' for none",
    )
    parser.add_argument(
        "--compare-gather",
        action="store_true",
        help="also time each row with the per-point latent gather (the path before the block "
        "broadcast) and print the speed-up",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args(argv)
    _apply_size_presets(args)
    return args


def _apply_size_presets(args: argparse.Namespace) -> None:
    """--quick and --gpu-sizes: the sizes they stand for."""
    if args.quick:
        args.samples, args.paper_samples, args.steps, args.paper_steps = 1024, 256, 3, 2
        args.batch_sizes, args.repeats, args.min_seconds = "4096,16384", 3, 0.1
    if args.gpu_sizes:
        args.shapes, args.samples, args.paper_samples, args.steps, args.paper_steps = 64, 8192, 8192, 10, 10
        args.batch_sizes = "65536,262144,1048576"


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(device_line(device), flush=True)
    if args.tf32:
        torch.set_float32_matmul_precision("high")
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]  # '' skips inference
    threads = torch.get_num_threads()
    print(
        f"training {args.shapes} shapes x {args.samples} samples per step "
        f"(paper: x {args.paper_samples}); inference batches {batch_sizes}; {threads} torch thread(s)",
        flush=True,
    )

    # Rows: (label, preset, shapes, samples); each also with the gather path under --compare-gather.
    rows = [(p, p, args.shapes, args.paper_samples if p == "paper" else args.samples) for p in presets]
    if args.demo_batch and "default" in presets:
        demo_shapes, demo_samples = (int(v) for v in args.demo_batch.lower().split("x"))
        rows.append((f"default, demo batch {demo_shapes} x {demo_samples}", "default", demo_shapes, demo_samples))
    variants = (False, True) if args.compare_gather else (False,)
    tic = time.perf_counter()
    peaks: list[float] = []
    with _deterministic_on_cpu(device):  # as the trainer runs a CPU step
        benches = {
            (label, gather): TrainingBench(preset, shapes, samples, device, gather=gather)
            for label, preset, shapes, samples in rows
            for gather in variants
        }
        # Rows take turns in every round, and the peak is timed in every round too, so load from
        # other processes hits them alike.
        for round_ in range(max(args.steps, args.paper_steps)):
            for (label, _), bench in benches.items():
                if round_ < (args.paper_steps if label == "paper" else args.steps):
                    bench.step()
            peaks.append(matmul_peak(device, seconds=0.0))
    train_rows = {key: b.result() for key, b in benches.items()}
    del benches
    print(f"training timed in {time.perf_counter() - tic:.0f} s", flush=True)

    tic = time.perf_counter()
    infer_rows = _time_inference(presets, batch_sizes, args.repeats, args.min_seconds, device)
    print(f"inference timed in {time.perf_counter() - tic:.0f} s", flush=True)

    peak = statistics.median(peaks)
    precision = torch.get_float32_matmul_precision()
    print(
        f"\nmatmul peak of this device at {threads} torch thread(s) (2048 x 2048 float32 GEMM, matmul precision "
        f"{precision!r}, median of {len(peaks)} timed between the training rounds): {peak / 1e9:.1f} GFLOP/s"
    )
    gpu_peaks: dict[str, float] = {}
    if device.type == "cuda":
        torch.set_float32_matmul_precision("highest")
        gpu_peaks["fp32"] = matmul_peak(device, 8192)
        torch.set_float32_matmul_precision("high")
        gpu_peaks["tf32"] = matmul_peak(device, 8192)
        torch.set_float32_matmul_precision(precision)
        gpu_peaks["bf16"] = matmul_peak(device, 8192, dtype=torch.bfloat16)
        print(
            "GPU matmul peaks (8192^3 GEMM): " + ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in gpu_peaks.items())
        )
    print("\n### Training step (forward + backward + Adam)\n")
    print(_training_table(train_rows, peak, gpu_peaks, args.compare_gather))
    if not batch_sizes:
        return 0
    print("\n### Inference, SDF only, one shared code, no gradient (points/s)\n")
    print(_inference_table(infer_rows, batch_sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
