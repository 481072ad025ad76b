"""The one-line description of the device a benchmark ran on, printed at the top of every report.

A figure means little without the machine beside it: on CUDA the line names the GPU, its memory,
the driver, torch and the CUDA version torch was built with; on the CPU the processor and threads.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvidia_driver() -> str:
    """The NVIDIA driver version from ``nvidia-smi`` (torch does not expose it), or ``"?"``."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.splitlines()[0].strip() if out else "?"


def device_line(device: torch.device) -> str:
    """``device cuda:0 (NVIDIA H100 80GB HBM3, 79.2 GiB, driver 580.x, CUDA 13.0), torch 2.11.0, ...``."""
    common = f"torch {torch.__version__}, Python {platform.python_version()}"
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return (
            f"device cuda:{index} ({props.name}, {props.total_memory / 2**30:.1f} GiB, "
            f"{props.multi_processor_count} SMs, driver {nvidia_driver()}, CUDA {torch.version.cuda}), "
            f"{common}, CPU {_cpu_name()} ({os.cpu_count()} cores)"
        )
    return f"device cpu ({_cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads), {common}"


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a wall-clock timer around it measures the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
