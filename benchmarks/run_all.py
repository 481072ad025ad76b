"""Run every benchmark and write their output to docs/benchmarks.md (with the machine and commands).

    python -m benchmarks.run_all            # the full set (about 10 minutes on a 2-core CPU)
    python -m benchmarks.run_all --quick    # smaller sizes, a smoke run (about 2 minutes)

Each benchmark prints ratios against a baseline measured in the same process (dense grid,
plain DeepSDF TTO, the paper preset, mesh-to-sdf, ...), so results compare across machines.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (full arguments, quick arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "bench_meshing.py": (
        ["--resolutions", "64", "128", "256", "--dense-max", "256"],
        ["--resolutions", "64", "128", "--repeats", "3", "--train-steps", "100"],
    ),
    "bench_bundled_meshing.py": (
        ["--resolutions", "64", "128", "--repeats", "5"],
        ["--resolutions", "64", "128", "--repeats", "3", "--models", "demo", "real"],
    ),
    "bench_tto.py": ([], ["--iterations", "20", "--presets", "default"]),
    "bench_training.py": ([], ["--quick"]),
    "bench_sdf_backends.py": ([], ["--n-winding", "50000", "--n-mesh-to-sdf", "5000", "--scan-count", "20"]),
    "bench_viewer.py": ([], ["--quick"]),
    "bench_viewer_parts.py": ([], []),
    "bench_edit.py": ([], ["--quick"]),
}


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"GPU: {gpu}, Python {platform.python_version()}"
    )


INTRO = (
    "Every benchmark prints ratios against a baseline measured in the same process, so the ratios "
    "(not the absolute times) compare across machines."
)
_RUN_BLOCK = re.compile(r"`[^`\n]*` \([^)\n]*\)\n\n```\n.*?\n```\n", re.S)


def update_document(old: str, last_run: str, sections: dict[str, str]) -> str:
    """docs/benchmarks.md with each benchmark's command and output replaced, the rest kept.

    Why not rewrite the file: it also holds what one run cannot print — earlier runs for comparison,
    notes on slow hosts, the GPU section — and a new run must not delete them. In the section
    ``## NAME`` the first "`command` (N s)" line with its output block is replaced (or put first);
    a benchmark without a section gets one before ``## GPU`` (or at the end).
    """
    text = old or f"# Benchmarks\n\n{last_run}\n\n{INTRO}\n\n"
    if re.search(r"^Last run .*$", text, re.M):
        text = re.sub(r"^Last run .*$", lambda _: last_run, text, count=1, flags=re.M)
    for name, block in sections.items():
        heading = re.search(rf"^## {re.escape(name)}\n", text, re.M)
        if heading is None:
            new = f"## {name}\n\n{block}\n"
            gpu = re.search(r"^## GPU\n", text, re.M)
            text = text[: gpu.start()] + new + text[gpu.start() :] if gpu else text.rstrip("\n") + "\n\n" + new
            continue
        start = heading.end()
        following = re.search(r"^## ", text[start:], re.M)
        end = start + following.start() if following else len(text)
        body = text[start:end]
        match = _RUN_BLOCK.search(body)
        if match:
            body = body[: match.start()] + block + body[match.end() :]
        else:
            body = "\n" + block + body
        text = text[:start] + body + text[end:]
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these scripts")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()

    sections: dict[str, str] = {}
    failed = []
    for name, (full, quick) in BENCHMARKS.items():
        if args.only and name not in args.only and name.removesuffix(".py") not in args.only:
            continue
        script = ROOT / "benchmarks" / name
        if not script.exists():
            continue
        argv = quick if args.quick else full
        module = f"benchmarks.{name.removesuffix('.py')}"
        command = f"python -m {module} {' '.join(argv)}".strip()
        print(f"== {command}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        output = proc.stdout.strip()
        print(output, flush=True)
        if proc.returncode != 0:
            failed.append(name)
            output += f"\n\n(exit code {proc.returncode})\n" + proc.stderr.strip()[-3000:]
            print(proc.stderr[-3000:], file=sys.stderr)
        sections[name] = f"`{command}` ({seconds:.0f} s)\n\n```\n{output}\n```\n"

    last_run = (
        f"Last run {dt.date.today().isoformat()} with `python -m benchmarks.run_all"
        f"{' --quick' if args.quick else ''}` on: {machine()}."
    )
    old = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
    from core.utils.io_utils import atomic_write_bytes

    atomic_write_bytes(args.out, update_document(old, last_run, sections).encode("utf-8"))
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
