"""One place that turns a user's device choice into a ``torch.device``.

Every command, the trainer, meshing and the viewer take a device as text (``auto``, ``cpu``,
``cuda``, ``cuda:N``) or ``None``. They all resolve it here, so a bad choice gives the same clear
message everywhere and is caught before any work starts, and "auto" means the same thing in every
part: CUDA when torch sees a device, else the CPU. Nothing in the project requires CUDA.
"""

from __future__ import annotations

import torch

from core.utils.errors import ConfigError

__all__ = ["resolve_device", "default_device", "cuda_available"]


def cuda_available() -> bool:
    """Whether torch can run on a CUDA device here (False on CPU-only builds of torch)."""
    return torch.cuda.is_available()


def default_device() -> torch.device:
    """CUDA when present, else CPU (nothing ever requires CUDA)."""
    return torch.device("cuda" if cuda_available() else "cpu")


def resolve_device(device: str | torch.device | None, what: str = "--device") -> torch.device:
    """``None`` / ``"auto"`` → :func:`default_device`; ``"cpu"``; ``"cuda"`` / ``"cuda:N"`` if present.

    ``what`` names the option in the error message (``--device``, ``train.device``, ...).
    Raises :class:`ConfigError` for anything else, and for CUDA on a machine or a torch build
    without it, naming the choices that work.
    """
    if device is None:
        return default_device()
    if isinstance(device, torch.device):
        text = str(device)
    else:
        text = str(device).strip().lower()
    if text in ("", "auto"):
        return default_device()
    if text.startswith("cuda"):
        if not cuda_available():
            reason = (
                "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA device is visible"
            )
            raise ConfigError(f"{what}={device!r} but {reason}; use {what}=cpu or {what}=auto")
        try:
            parsed = torch.device(text)
        except RuntimeError as exc:
            raise ConfigError(f"{what}={device!r} is not a device; use auto, cpu or cuda[:N]") from exc
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise ConfigError(f"{what}={device!r} but only {count} CUDA device(s) exist (cuda:0..cuda:{count - 1})")
        return parsed
    if text == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"{what}={device!r} is not a device; use auto, cpu or cuda[:N]")
