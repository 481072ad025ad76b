"""The one ``codes.json`` format: fitted or chosen codes that ``reconstruct`` writes and the viewer saves and loads.

One file holds the codes of one shape (shape code, colour code, class / prompt and the condition
vector, which a cross-class blend in the viewer makes different from any class's own) plus,
under ``info``, free notes of whoever wrote it (the fit's settings and losses, the input, the
mesh, metrics). A fine-tuned decoder (the ``finetune`` loss set) cannot be told apart from the
checkpoint's own by its codes alone, so its weights are written beside the JSON (``decoder``
names the file, relative to the JSON) and read back with it: dropping them would show another
shape than the one fitted.

The file carries ``format`` and ``version``; :func:`read_codes` refuses files of another
format or a newer version with a message that says so, and still reads the two earlier forms:
version 1 (the viewer's first File ▸ Export codes) and files without ``format`` that hold a
``shape_code`` (``reconstruct`` before version 2, whose fine-tuned decoder is
``decoder_finetuned.pt`` beside it). Values must be finite: JSON has no NaN, and a NaN code decodes to
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.utils.errors import ExplorerError
from core.utils.io_utils import atomic_torch_save, atomic_write_bytes
from core.utils.json_safe import json_safe

__all__ = ["CODES_FORMAT", "CODES_VERSION", "CodesFileError", "SavedCodes", "write_codes", "read_codes"]

CODES_FORMAT = "deepsdf-explorer-codes"
CODES_VERSION = 2
"""2: ``decoder`` (fine-tuned weights beside the file), ``text``, ``config``, ``info``. 1: the viewer's first export."""
_READABLE_VERSIONS = (1, 2)
_LEGACY_DECODER = "decoder_finetuned.pt"
"""Where ``reconstruct`` put the fine-tuned decoder before version 2 (no ``decoder`` key then)."""


class CodesFileError(ExplorerError):
    """A codes file is unreadable, of another format or version, or does not fit the model."""


@dataclass
class SavedCodes:
    """The content of one codes file.

    Tensors are CPU float32: ``shape_code`` (Ds,), ``colour_code`` (Dc,) or None, ``condition``
    (Dcond,) or None (a model without conditioning, or a file that leaves it to ``class_name``).
    ``decoder_state``: fine-tuned decoder weights (a state dict) or None for the checkpoint's own.
    """

    shape_code: torch.Tensor
    colour_code: torch.Tensor | None = None
    class_name: str | None = None
    text: str | None = None
    condition: torch.Tensor | None = None
    label: str = ""
    checkpoint: str | None = None
    decoder_state: dict[str, torch.Tensor] | None = None
    config: dict[str, Any] | None = None
    """The TTO settings (``TTOConfig.to_dict()``) of the fit that made the codes; None for chosen codes."""
    info: dict[str, Any] = field(default_factory=dict)

    def check_against(self, model: Any, source: str | Path = "codes") -> None:
        """Raise :class:`CodesFileError` when the sizes do not fit ``model`` (a TrainedModel)."""
        expected = tuple(model.shape_codes.shape[1:])
        if tuple(self.shape_code.shape) != expected:
            raise CodesFileError(
                f"{source}: the shape code has {tuple(self.shape_code.shape)} values but this model "
                f"needs {expected}. Load it with the checkpoint it was made with ({self.checkpoint})."
            )
        colours = getattr(model, "colour_codes", None)
        wanted = None if colours is None else tuple(colours.shape[1:])
        if self.colour_code is not None and wanted is not None and tuple(self.colour_code.shape) != wanted:
            raise CodesFileError(
                f"{source}: the colour code has {tuple(self.colour_code.shape)} values but this model "
                f"needs {wanted}. Load it with the checkpoint it was made with."
            )
        if self.decoder_state is not None:
            own = model.decoder.state_dict()
            wrong = sorted(
                k
                for k in own
                if k not in self.decoder_state or tuple(self.decoder_state[k].shape) != tuple(own[k].shape)
            )
            extra = sorted(k for k in self.decoder_state if k not in own)
            if wrong or extra:
                raise CodesFileError(
                    f"{source}: its fine-tuned decoder does not fit this model's decoder "
                    f"(differs at {(wrong + extra)[:3]}). "
                    "Load it with the checkpoint it was made with."
                )

    def condition_for(self, model: Any) -> torch.Tensor | None:
        """(Dcond,) CPU condition vector for ``model``: the saved one when its size fits, else the
        class's (or the prompt's) own; None for a model without conditioning."""
        expected = model.condition()
        if expected is None:
            return None
        if self.condition is not None and tuple(self.condition.shape) == tuple(expected.shape):
            return self.condition
        known = self.class_name if self.class_name in (getattr(model, "class_names", None) or []) else None
        text = self.text if known is None else None
        return model.condition(class_name=known, text=text).detach().cpu()


def _vector(value: Any, what: str, path: Path) -> torch.Tensor | None:
    if value is None:
        return None
    try:
        tensor = torch.tensor(value, dtype=torch.float32)
    except (TypeError, ValueError) as exc:
        raise CodesFileError(f"{path}: '{what}' is not a list of numbers ({exc}). The file is damaged.") from None
    if tensor.ndim != 1 or len(tensor) == 0:
        raise CodesFileError(f"{path}: '{what}' must be a flat list of numbers, got shape {tuple(tensor.shape)}.")
    if not torch.isfinite(tensor).all():
        raise CodesFileError(f"{path}: '{what}' holds NaN or infinite values. The fit that wrote it diverged; redo it.")
    return tensor


def _finite_list(tensor: torch.Tensor | None, what: str, path: Path) -> list[float] | None:
    if tensor is None:
        return None
    values = tensor.detach().cpu().float().reshape(-1)
    if not torch.isfinite(values).all():
        raise CodesFileError(
            f"{path}: cannot save the {what}: it holds NaN or infinite values (the fit diverged). "
            "Try a smaller --lr or fewer thin-structure losses."
        )
    return values.tolist()


def _decoder_path(path: Path, decoder_name: str | None) -> Path:
    return path.with_name(decoder_name or f"{path.stem}.decoder.pt")


def write_codes(path: str | Path, codes: SavedCodes, decoder_name: str | None = None) -> Path:
    """Write ``codes`` to ``path`` (JSON, atomic) and its fine-tuned decoder beside it.

    ``decoder_name``: file name of the decoder weights in the same folder (default
    ``<stem>.decoder.pt``); written only when ``codes.decoder_state`` is set.

    Raises
    ------
    CodesFileError
        A code holds NaN / inf (nothing is written), or ``info`` is not JSON-able.
    """
    path = Path(path)
    decoder_file = None
    if codes.decoder_state is not None:
        decoder_file = _decoder_path(path, decoder_name)
    data = {
        "format": CODES_FORMAT,
        "version": CODES_VERSION,
        "checkpoint": codes.checkpoint,
        "label": codes.label,
        "class_name": codes.class_name,
        "text": codes.text,
        "shape_code": _finite_list(codes.shape_code, "shape code", path),
        "colour_code": _finite_list(codes.colour_code, "colour code", path),
        "condition": _finite_list(codes.condition, "condition vector", path),
        "decoder": None if decoder_file is None else decoder_file.name,
        "config": codes.config,
        "info": codes.info,
    }
    try:
        text = json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise CodesFileError(f"{path}: cannot write the codes as JSON ({exc}).") from exc
    if decoder_file is not None and codes.decoder_state is not None:
        atomic_torch_save(decoder_file, {k: v.detach().cpu() for k, v in codes.decoder_state.items()})
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def read_codes(path: str | Path, model: Any = None) -> SavedCodes:
    """Read a codes file (and its fine-tuned decoder); check it against ``model`` when given.

    Raises
    ------
    CodesFileError
        Missing or unreadable file, another format, a newer version, bad values, sizes that
        do not fit ``model``, a missing or damaged decoder file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CodesFileError(f"{path}: no such codes file. Check the path.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodesFileError(
            f"{path}: not a readable JSON file ({exc}). Give a codes.json written by "
            "'main.py reconstruct' or File ▸ Export codes."
        ) from None
    legacy = isinstance(data, dict) and "format" not in data and "shape_code" in data
    if not legacy and (not isinstance(data, dict) or data.get("format") != CODES_FORMAT):
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CodesFileError(
            f"{path}: not a codes file (format {found!r}, expected {CODES_FORMAT!r}). Give a "
            "codes.json written by 'main.py reconstruct' or File ▸ Export codes."
        )
    version = 0 if legacy else data.get("version")
    if legacy and data.get("finetuned_decoder"):
        data["decoder"] = _LEGACY_DECODER
    if not legacy and version not in _READABLE_VERSIONS:
        raise CodesFileError(
            f"{path}: codes file version {version!r}; this program reads versions "
            f"{', '.join(map(str, _READABLE_VERSIONS))}. Update the program or re-export the codes."
        )
    shape = _vector(data.get("shape_code"), "shape_code", path)
    if shape is None:
        raise CodesFileError(f"{path}: no 'shape_code'. The file is damaged; re-export the codes.")
    decoder_state = None
    if data.get("decoder"):
        decoder_file = path.with_name(str(data["decoder"]))
        if Path(str(data["decoder"])).name != str(data["decoder"]):
            raise CodesFileError(f"{path}: 'decoder' must name a file beside it, got {data['decoder']!r}.")
        try:
            decoder_state = torch.load(decoder_file, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CodesFileError(
                f"{path}: its fine-tuned decoder {decoder_file.name} is missing; keep the two files "
                "together (without it the codes show another shape)."
            ) from None
        except Exception as exc:  # torch raises many types for a damaged file
            raise CodesFileError(
                f"{decoder_file}: the fine-tuned decoder is unreadable ({exc}); re-run the fit."
            ) from None
        if not isinstance(decoder_state, dict) or not all(isinstance(v, torch.Tensor) for v in decoder_state.values()):
            raise CodesFileError(f"{decoder_file}: not a decoder state dict; re-run the fit.")
        bad = [k for k, v in decoder_state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
        if bad:
            raise CodesFileError(
                f"{decoder_file}: the fine-tuned decoder holds NaN or infinite weights "
                f"({', '.join(bad[:3])}); re-run the fit."
            )
    info = data.get("info")
    codes = SavedCodes(
        shape_code=shape,
        colour_code=_vector(data.get("colour_code"), "colour_code", path),
        class_name=data.get("class_name"),
        text=data.get("text"),
        condition=_vector(data.get("condition"), "condition", path),
        label=str(data.get("label") or ""),
        checkpoint=data.get("checkpoint"),
        decoder_state=decoder_state,
        config=data.get("config") if isinstance(data.get("config"), dict) else None,
        info=info if isinstance(info, dict) else {},
    )
    if model is not None:
        codes.check_against(model, path)
    return codes
