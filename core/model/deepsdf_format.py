"""Open an experiment directory of the original DeepSDF code (facebookresearch/DeepSDF) as a TrainedModel.

The original code releases no trained models, so its users each have their own experiment
directory; this module reads one exactly as ``deep_sdf/workspace.py`` and ``train_deep_sdf.py``
write it, and never runs its pickles (``torch.load(weights_only=True)``)::

    EXP/specs.json                  NetworkArch "deep_sdf_decoder", CodeLength, TrainSplit, DataSource,
                                    NetworkSpecs {dims, dropout, dropout_prob, norm_layers, latent_in,
                                                  xyz_in_all, use_tanh, latent_dropout, weight_norm}
    EXP/ModelParameters/<c>.pth     {"epoch", "model_state_dict"} of DataParallel(Decoder): "module.lin<i>.weight_g",
                                    ".weight_v", ".bias" (weight norm) or ".weight"; "module.bn<i>.*" (LayerNorm)
    EXP/LatentCodes/<c>.pth         {"epoch", "latent_codes"}: nn.Embedding state dict {"weight": (K, L)}, or in
                                    older versions a plain tensor (K, 1, L)
    TrainSplit JSON                 {dataset: {synset: [instance, ...]}}; code k is the k-th instance in file order
                                    (``deep_sdf.data.get_instance_filenames``), listed files missing or not

``<c>`` is an epoch number or ``latest``. The decoder maps onto :class:`SdfColourDecoder` with
DeepSDF's own switches (``norm_layers``, ``dropout`` list, ``xyz_in_all``, ``use_tanh``), keeping the
weight-norm parametrisation (``weight_g`` / ``weight_v`` become ``original0`` / ``original1``), so
the imported model computes what the original ``Decoder`` computes in eval mode: SDF =
tanh(lin_N(...)) (tanh twice with ``use_tanh``). There is no class conditioning and no colour;
the class of a shape is the ShapeNet synset folder of the split, named where known.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from core.model.checkpoint import save_checkpoint, weights_only_detail
from core.model.config import ModelConfig
from core.model.trained_model import TrainedModel, build_module
from core.utils import config_io
from core.utils.devices import resolve_device
from core.utils.errors import CheckpointError

__all__ = [
    "DeepSDFExperimentError",
    "SHAPENET_SYNSETS",
    "is_deepsdf_experiment",
    "resolve_experiment",
    "list_checkpoints",
    "model_config_from_specs",
    "load_deepsdf_experiment",
    "save_imported_checkpoint",
]

log = logging.getLogger(__name__)

SPECS = "specs.json"
MODEL_PARAMS = "ModelParameters"
LATENT_CODES = "LatentCodes"
ORIGINAL_ARCH = "deep_sdf_decoder"

SHAPENET_SYNSETS: dict[str, str] = {
    "02691156": "airplane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "display",
    "03636649": "lamp",
    "03691459": "loudspeaker",
    "04090263": "rifle",
    "04256520": "sofa",
    "04379243": "table",
    "04401088": "telephone",
    "04530566": "watercraft",
}
"""The 13 common ShapeNet classes (3D-R2N2's subset; DeepSDF's chairs, lamps, planes, sofas, tables)."""

_LOAD_ERRORS = (
    RuntimeError,
    pickle.UnpicklingError,
    EOFError,
    zipfile.BadZipFile,
    ValueError,
    OSError,
    io.UnsupportedOperation,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    MemoryError,
    OverflowError,
)


class DeepSDFExperimentError(CheckpointError):
    """A DeepSDF experiment directory is incomplete, inconsistent or holds files that are not DeepSDF's."""


def _error(path: Path, reason: str, fix: str) -> DeepSDFExperimentError:
    return DeepSDFExperimentError(f"{path}: {reason}. {fix}")


# -- locating ----------------------------------------------------------------------------------
def is_deepsdf_experiment(path: str | Path) -> bool:
    """True for a folder that looks like a DeepSDF experiment (specs.json or ModelParameters/), its
    ModelParameters/ or LatentCodes/ folder, or a ``.pth`` inside ModelParameters/ — what
    :func:`load_trained_model` hands to this module."""
    path = Path(path)
    if path.is_file():
        return path.suffix == ".pth" and path.parent.name == MODEL_PARAMS
    if path.is_dir() and path.name in (MODEL_PARAMS, LATENT_CODES) and (path.parent / SPECS).is_file():
        return True
    return path.is_dir() and ((path / SPECS).is_file() or (path / MODEL_PARAMS).is_dir())


def resolve_experiment(path: str | Path, epoch: str | int | None = None) -> tuple[Path, str | None]:
    """``(experiment dir, checkpoint name or None)`` for a folder or a ``ModelParameters/<c>.pth`` file."""
    path = Path(path)
    if path.is_file() and path.suffix == ".pth" and path.parent.name == MODEL_PARAMS:
        return path.parent.parent, (None if epoch is None else _checkpoint_name(epoch)) or path.stem
    if path.is_dir() and path.name in (MODEL_PARAMS, LATENT_CODES) and (path.parent / SPECS).is_file():
        path = path.parent  # a sub-folder dropped or picked instead of the experiment
    return path, None if epoch is None else _checkpoint_name(epoch)


def _checkpoint_name(epoch: str | int) -> str:
    text = str(epoch).strip()
    if text.lower() == "latest":
        return "latest"
    try:
        return str(int(text))
    except ValueError:
        raise DeepSDFExperimentError(f"--epoch {epoch!r}: not an epoch number or 'latest'.") from None


def _epoch_sort_key(name: str) -> tuple[int, int, str]:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def list_checkpoints(experiment: str | Path) -> list[str]:
    """Checkpoint names in ``EXP/ModelParameters`` (epoch numbers ascending, then ``latest``)."""
    folder = Path(experiment) / MODEL_PARAMS
    if not folder.is_dir():
        return []
    return sorted((p.stem for p in folder.glob("*.pth") if p.is_file()), key=_epoch_sort_key)


def _find_file(experiment: Path, recorded: str) -> Path | None:
    """A path recorded in specs.json, relative to wherever training ran: try the experiment folder and
    each folder above it (DeepSDF runs from its repository root with EXP = examples/<name>), the current
    folder, and last the bare file name inside the experiment folder."""
    rel = Path(recorded).expanduser()
    if rel.is_absolute():
        candidates = [rel]
    else:
        base = experiment.resolve()
        candidates = [base / rel, *(a / rel for a in base.parents), Path.cwd() / rel]
    candidates.append(experiment / rel.name)
    return next((c for c in candidates if c.is_file()), None)


# -- reading files -----------------------------------------------------------------------------
def _read_specs(experiment: Path) -> dict[str, Any]:
    path = experiment / SPECS
    if not experiment.exists():
        raise _error(
            experiment,
            "no such folder",
            "Pass the experiment directory of a DeepSDF run "
            "(the folder holding specs.json, ModelParameters/ and LatentCodes/)",
        )
    if not experiment.is_dir():
        raise _error(experiment, "not a folder", "Pass the experiment directory of a DeepSDF run, or a .pt checkpoint")
    if not path.is_file():
        raise _error(
            experiment,
            "no specs.json: not a DeepSDF experiment directory (or specs.json was deleted)",
            "Pass the folder that train_deep_sdf.py was run with (-e), which holds specs.json; "
            "copy the specs.json used for training back into it if it is lost",
        )
    try:
        specs = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _error(
            path, f"not valid JSON ({exc})", "Fix the file; DeepSDF's own examples/*/specs.json show the layout"
        ) from exc
    if not isinstance(specs, dict):
        raise _error(path, "does not hold a JSON object", "Use DeepSDF's specs.json layout")
    for key in ("NetworkSpecs", "CodeLength"):
        if key not in specs:
            raise _error(
                path,
                f"has no {key!r}",
                "Every DeepSDF specs.json names NetworkSpecs and CodeLength; "
                "restore the specs.json the model was trained with",
            )
    arch = specs.get("NetworkArch", ORIGINAL_ARCH)
    if arch != ORIGINAL_ARCH:
        raise _error(
            path,
            f"NetworkArch is {arch!r}, not DeepSDF's {ORIGINAL_ARCH!r}; only the original decoder "
            "can be imported (another network computes other things from the same weights)",
            f"If networks/{arch}.py is an unchanged copy of deep_sdf_decoder.py, set NetworkArch to "
            f"{ORIGINAL_ARCH!r} in specs.json",
        )
    return specs


def _load_pth(path: Path, what: str, available: list[str], folder_hint: str) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with errors that say which file and what to do."""
    if not path.is_file():
        if not available:
            raise _error(
                path,
                f"{what} not found: {folder_hint} holds no .pth files",
                "train_deep_sdf.py has not saved a snapshot there yet (it writes latest.pth every "
                "LogFrequency epochs); wait for one or point at the experiment that has them",
            )
        raise _error(
            path,
            f"{what} not found (checkpoints in {folder_hint}: {', '.join(available)})",
            "Pass --epoch with one of those, or 'latest'",
        )
    if path.stat().st_size == 0:
        raise _error(path, f"the {what} file is empty (an interrupted copy?)", "Use another epoch (--epoch N)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except _LOAD_ERRORS as exc:
        text = str(exc).strip()
        detail = weights_only_detail(text) if "Weights only load failed" in text else ""
        if "GLOBAL" in detail:
            raise _error(
                path,
                f"refused: the file holds pickled Python objects, not only tensors and numbers "
                f"({detail[:200]}); DeepSDF writes only tensors, numbers and dicts, so this file was "
                "altered or written by other code, and loading it could run that code",
                "It was not executed. Use the file train_deep_sdf.py wrote, or re-save its tensors",
            ) from exc
        reason = detail or (text.splitlines()[0] if text else type(exc).__name__)
        raise _error(
            path,
            f"not a readable PyTorch file ({reason[:200]})",
            "The file is damaged or truncated; use another epoch (--epoch N)",
        ) from exc
    if not isinstance(data, dict):
        raise _error(
            path,
            f"holds a {type(data).__name__}, not DeepSDF's {{'epoch', ...}} dict",
            "Use the file train_deep_sdf.py wrote",
        )
    return data


def _read_latent_codes(path: Path, data: dict[str, Any]) -> torch.Tensor:
    """(K, L) float32 from either latent-code format."""
    codes = data.get("latent_codes")
    if isinstance(codes, dict):
        codes = codes.get("weight")
    if not isinstance(codes, torch.Tensor):
        raise _error(
            path,
            "has no latent codes (expected 'latent_codes': an nn.Embedding state dict with 'weight', or a tensor)",
            "Use the LatentCodes file train_deep_sdf.py wrote",
        )
    if codes.dim() == 3 and codes.shape[1] == 1:  # older versions: a tensor of K (1, L) codes
        codes = codes[:, 0]
    if codes.dim() != 2 or codes.shape[0] == 0:
        raise _error(
            path,
            f"latent codes of shape {tuple(codes.shape)}, expected (K, CodeLength)",
            "The file is damaged or not DeepSDF's",
        )
    return codes.detach().float()


def _read_split(path: Path) -> list[tuple[str, str, str]]:
    """[(dataset, synset, instance)] in DeepSDF's code order."""
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _error(path, f"the train split is not valid JSON ({exc})", "Fix or replace the split file") from exc
    fix = 'DeepSDF splits read {"<dataset>": {"<class>": ["<instance>", ...]}}; fix the file or pass another --split'
    if not isinstance(split, dict):
        raise _error(path, "the train split is not a JSON object", fix)
    entries: list[tuple[str, str, str]] = []
    for dataset, classes in split.items():
        if not isinstance(classes, dict):
            raise _error(path, f"split entry {dataset!r} is not an object of classes", fix)
        for synset, instances in classes.items():
            if not isinstance(instances, list) or not all(isinstance(i, str) for i in instances):
                raise _error(path, f"split class {dataset}/{synset} is not a list of instance names", fix)
            entries.extend((str(dataset), str(synset), name) for name in instances)
    return entries


# -- the network -------------------------------------------------------------------------------
def _int_list(specs_path: Path, name: str, value: Any) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise _error(
            specs_path,
            f"NetworkSpecs.{name} is {value!r}, not a list of integers",
            "Restore the specs.json the model was trained with",
        )
    return list(value)


def model_config_from_specs(specs: dict[str, Any], specs_path: Path = Path(SPECS)) -> ModelConfig:
    """This project's :class:`ModelConfig` computing what DeepSDF's ``Decoder(CodeLength, **NetworkSpecs)``
    computes in eval mode (dropout and latent dropout act only in training)."""
    net = specs["NetworkSpecs"]
    if not isinstance(net, dict):
        raise _error(specs_path, "NetworkSpecs is not an object", "Restore the specs.json the model was trained with")
    known = {
        "dims",
        "dropout",
        "dropout_prob",
        "norm_layers",
        "latent_in",
        "weight_norm",
        "xyz_in_all",
        "use_tanh",
        "latent_dropout",
    }
    unknown = sorted(set(net) - known)
    if unknown:  # Decoder(**NetworkSpecs) itself would fail on these
        raise _error(
            specs_path,
            f"NetworkSpecs has arguments the original Decoder does not take: {unknown}",
            "This is not the original deep_sdf_decoder; only that network can be imported",
        )
    dims = _int_list(specs_path, "dims", net.get("dims"))
    code = specs["CodeLength"]
    if not dims or min(dims) < 1 or not isinstance(code, int) or isinstance(code, bool) or code < 1:
        raise _error(
            specs_path,
            f"dims {dims} / CodeLength {code!r}: need positive layer widths and code length",
            "Restore the specs.json the model was trained with",
        )
    n = len(dims)
    latent_in = _int_list(specs_path, "latent_in", net.get("latent_in"))
    bad = [i for i in latent_in if not 0 < i < n]
    if bad:
        raise _error(
            specs_path,
            f"NetworkSpecs.latent_in {bad}: only hidden layers 1..{n - 1} can re-read the input "
            "(the original decoder fails on layer 0 and beyond its layers; the output layer is unsupported)",
            "Restore the specs.json the model was trained with",
        )
    norm = sorted({i for i in _int_list(specs_path, "norm_layers", net.get("norm_layers")) if i <= n})
    dropout = [i for i in _int_list(specs_path, "dropout", net.get("dropout")) if i < n]
    prob = _dropout_prob(specs_path, net.get("dropout_prob")) if dropout else 0.0
    switches = {
        name: _switch(specs_path, name, net.get(name))
        for name in ("weight_norm", "xyz_in_all", "use_tanh", "latent_dropout")
    }
    return ModelConfig(
        preset="deepsdf",
        hidden_dims=tuple(dims),
        latent_in=tuple(latent_in),
        code_size=int(code),
        dropout=prob,
        dropout_layers=tuple(dropout),
        weight_norm=switches["weight_norm"],
        norm_layers=tuple(norm),
        xyz_in_all=switches["xyz_in_all"],
        output_tanh_twice=switches["use_tanh"],
        fourier_frequencies=0,
        conditioning="none",
        colour=False,
    )


def _dropout_prob(specs_path: Path, value: Any) -> float:
    """NetworkSpecs.dropout_prob: a number in [0, 1) (absent or null: 0)."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise _error(
            specs_path,
            f"NetworkSpecs.dropout_prob is {value!r}, not a probability in [0, 1)",
            "Restore the specs.json the model was trained with",
        )
    return float(value)


def _switch(specs_path: Path, name: str, value: Any) -> bool:
    """A true/false switch of NetworkSpecs (absent or null: false); "false" as a string is refused, not taken
    for true."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _error(
            specs_path,
            f"NetworkSpecs.{name} is {value!r}, not true or false",
            "Restore the specs.json the model was trained with",
        )
    return value


_PARAM_NAMES = {
    "weight": "weight",
    "bias": "bias",
    "weight_g": "parametrizations.weight.original0",
    "weight_v": "parametrizations.weight.original1",
    "parametrizations.weight.original0": "parametrizations.weight.original0",
    "parametrizations.weight.original1": "parametrizations.weight.original1",
}


def _convert_decoder_state(
    path: Path, state: dict[str, Any], n_hidden: int
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """DeepSDF decoder keys -> AutoDecoder keys; also returns {our key: original key} for messages."""
    out: dict[str, torch.Tensor] = {}
    names: dict[str, str] = {}
    unexpected = []
    for key, value in state.items():
        bare = key[len("module.") :] if key.startswith("module.") else key
        lin = re.fullmatch(r"lin(\d+)\.(.+)", bare)
        bn = re.fullmatch(r"bn(\d+)\.(weight|bias)", bare)
        if lin and int(lin.group(1)) <= n_hidden and lin.group(2) in _PARAM_NAMES:
            i = int(lin.group(1))
            prefix = f"decoder.layers.{i}" if i < n_hidden else "decoder.sdf_out"
            target = f"{prefix}.{_PARAM_NAMES[lin.group(2)]}"
        elif bn and int(bn.group(1)) < n_hidden:
            target = f"decoder.layer_norms.{bn.group(1)}.{bn.group(2)}"
        elif bn and int(bn.group(1)) == n_hidden:
            continue  # the original builds a LayerNorm for the output layer too but never applies it
        else:
            unexpected.append(key)
            continue
        if not isinstance(value, torch.Tensor):
            raise _error(path, f"{key} is a {type(value).__name__}, not a tensor", "The file is damaged")
        out[target] = value.detach().float()
        names[target] = bare
    if unexpected:
        raise _error(
            path,
            f"weights the original decoder does not have: {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}",
            "This file is not from deep_sdf_decoder (or it was edited); use the file train_deep_sdf.py wrote",
        )
    return out, names


def _original_name(ours: str) -> str:
    """Our parameter name -> DeepSDF's (for messages about parameters the file lacks)."""
    m = re.fullmatch(r"decoder\.(layers\.(\d+)|sdf_out|layer_norms\.(\d+))\.(.+)", ours)
    if not m:
        return ours
    rest = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}.get(
        m.group(4), m.group(4)
    )
    if m.group(3) is not None:
        return f"bn{m.group(3)}.{rest}"
    return f"lin{m.group(2) if m.group(2) is not None else 'N'}.{rest}"


# -- the whole experiment ----------------------------------------------------------------------
def load_deepsdf_experiment(
    path: str | Path,
    epoch: str | int | None = None,
    split: str | Path | None = None,
    device: str | torch.device | None = None,
) -> TrainedModel:
    """A DeepSDF experiment directory as a :class:`TrainedModel` (no conditioning, no colour).

    Parameters
    ----------
    path : the experiment directory, or a ``ModelParameters/<c>.pth`` inside one.
    epoch : an epoch number or ``"latest"`` (default; when there is no latest.pth, the highest epoch).
    split : the train split JSON; default: specs.json's TrainSplit, searched from the experiment folder up.
        Without one the codes are named ``shape_0000``... in class ``unknown`` (a warning says so).
    device : where the model lives (default: CUDA when present).

    Raises
    ------
    DeepSDFExperimentError (a :class:`CheckpointError`)
        specs.json missing or malformed, the epoch not found (the message lists those there), a file
        that is not DeepSDF's or carries code, weights or codes that do not fit specs.json, a split
        whose shape count differs from the codes.
    """
    experiment, name = resolve_experiment(path, epoch)
    specs = _read_specs(experiment)
    specs_path = experiment / SPECS
    config = model_config_from_specs(specs, specs_path)
    warnings: list[str] = []
    available = list_checkpoints(experiment)
    if name is None:
        name = "latest"
        if "latest" not in available and available:
            name = available[-1]
            warnings.append(f"no ModelParameters/latest.pth; using the last epoch there, {name}")
    model_data = _load_pth(experiment / MODEL_PARAMS / f"{name}.pth", f"epoch {name!r}", available, f"{MODEL_PARAMS}/")
    codes_available = sorted((p.stem for p in (experiment / LATENT_CODES).glob("*.pth")), key=_epoch_sort_key)
    codes_path = experiment / LATENT_CODES / f"{name}.pth"
    codes_data = _load_pth(codes_path, f"latent codes of epoch {name!r}", codes_available, f"{LATENT_CODES}/")
    state = model_data.get("model_state_dict")
    model_path = experiment / MODEL_PARAMS / f"{name}.pth"
    if not isinstance(state, dict):
        raise _error(model_path, "has no 'model_state_dict'", "Use the ModelParameters file train_deep_sdf.py wrote")
    codes = _read_latent_codes(codes_path, codes_data)
    model_epoch, codes_epoch = model_data.get("epoch"), codes_data.get("epoch")
    if model_epoch is not None and codes_epoch is not None and model_epoch != codes_epoch:
        raise _error(
            codes_path,
            f"latent codes of epoch {codes_epoch} but the decoder in {model_path.name} is of "
            f"epoch {model_epoch} (codes only fit the decoder they were trained with)",
            "Use an epoch whose ModelParameters and LatentCodes files were saved together",
        )
    if codes.shape[1] != config.code_size:
        raise _error(
            codes_path,
            f"latent codes of length {codes.shape[1]} but specs.json's CodeLength is {config.code_size}",
            "specs.json was changed after training, or the codes are from another "
            "experiment; restore the specs.json the model was trained with",
        )

    entries, split_path = _split_entries(experiment, specs, split, len(codes), warnings)
    shape_ids, shape_classes, class_names, synsets = _shape_names(entries, len(codes))

    with torch.device("meta"):  # the layout specs.json asks for, without memory: dims [200000] * 4 would need 160 GB
        layout = build_module(config, len(codes), max(1, len(class_names)))
    converted, original = _convert_decoder_state(model_path, state, len(config.hidden_dims))
    expected = {k: v for k, v in layout.state_dict().items() if k.startswith("decoder.")}
    missing = sorted(set(expected) - set(converted))
    if missing:
        raise _error(
            model_path,
            f"lacks weights that specs.json's NetworkSpecs need: {[_original_name(k) for k in missing[:6]]}",
            "specs.json (weight_norm, norm_layers, dims) was changed after training, or the file is "
            "from another experiment; restore the specs.json the model was trained with",
        )
    extra = sorted(set(converted) - set(expected))
    if extra:
        raise _error(
            model_path,
            f"holds weights that specs.json's NetworkSpecs do not have: {[original[k] for k in extra[:6]]}",
            "specs.json (weight_norm, norm_layers, dims) was changed after training; restore it",
        )
    for key, value in converted.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise _error(
                model_path,
                f"{original[key]} has shape {tuple(value.shape)} but specs.json (dims "
                f"{list(config.hidden_dims)}, CodeLength {config.code_size}, latent_in "
                f"{list(config.latent_in)}, xyz_in_all {config.xyz_in_all}) needs "
                f"{tuple(expected[key].shape)}",
                "specs.json was changed after training, or the weights are from another experiment; "
                "restore the specs.json the model was trained with",
            )
    converted["shape_codes.weight"] = codes
    bad = [original.get(k, "latent codes") for k, v in converted.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise _error(
            model_path if bad[0] != "latent codes" else codes_path,
            f"NaN or infinite values in {bad[:6]}: every shape it decodes would be NaN (the training "
            "diverged at this epoch)",
            "Import an earlier epoch (--epoch N)",
        )
    module = build_module(config, len(codes), max(1, len(class_names)))  # only now: the weights fit it
    module.load_state_dict(converted, strict=True)
    dev = resolve_device(device)
    module.to(dev)
    for text in warnings:
        log.warning("%s: %s", experiment, text)
    stats = {
        "source": "DeepSDF experiment",
        "experiment": str(experiment),
        "checkpoint": name,
        "deepsdf_epoch": model_epoch,
        "split": None if split_path is None else str(split_path),
        "synsets": synsets,
        "warnings": warnings,
    }
    if specs.get("NetworkSpecs", {}).get("latent_dropout"):
        stats["note"] = "latent_dropout acts only in training; inference is unchanged"
    return TrainedModel(
        config=config,
        module=module,
        shape_ids=shape_ids,
        shape_classes=shape_classes,
        shape_texts=[None] * len(shape_ids),
        class_names=class_names,
        stats=stats,
        normalization={},
        full_config={"model": config_io.to_dict(config), "deepsdf": {"specs": specs, "checkpoint": name}},
        path=experiment,
        device=dev,
    )


def _split_entries(
    experiment: Path, specs: dict[str, Any], split: str | Path | None, n_codes: int, warnings: list[str]
) -> tuple[list[tuple[str, str, str]] | None, Path | None]:
    """The train split's shapes (None when no split can be found, with a warning)."""
    path: Path | None
    if split is not None:
        path = Path(split)
        if not path.is_file():
            raise _error(path, "no such split file", "Pass the train split JSON the model was trained on (--split)")
    else:
        recorded = specs.get("TrainSplit")
        path = _find_file(experiment, str(recorded)) if isinstance(recorded, str) and recorded else None
        if path is None:
            warnings.append(
                f"train split {recorded!r} not found (searched from the experiment folder up and in the "
                "current folder); shapes are unnamed and in class 'unknown'. Pass --split to name them"
            )
            return None, None
    entries = _read_split(path)
    if len(entries) != n_codes:
        raise _error(
            path,
            f"the split lists {len(entries)} shapes but the experiment has {n_codes} latent codes",
            "Pass the train split the model was trained on (--split); TrainSplit in specs.json may name "
            "a file that changed since",
        )
    return entries, path


def _shape_names(
    entries: list[tuple[str, str, str]] | None, n_codes: int
) -> tuple[list[str], list[str], list[str], dict[str, str]]:
    """(shape ids, shape classes, class names, {class name: synset})."""
    if entries is None:
        return [f"shape_{k:04d}" for k in range(n_codes)], ["unknown"] * n_codes, ["unknown"], {}
    names = {synset: SHAPENET_SYNSETS.get(synset, synset) for _, synset, _ in entries}
    # Two synsets can only share a display name through an odd split; keep them apart then.
    clash = {n for n in names.values() if list(names.values()).count(n) > 1}
    names = {s: (f"{n} ({s})" if n in clash else n) for s, n in names.items()}
    instances = [inst for _, _, inst in entries]
    unique = len(set(instances)) == len(instances)
    shape_ids = instances if unique else [f"{synset}/{inst}" for _, synset, inst in entries]
    shape_classes = [names[synset] for _, synset, _ in entries]
    class_names = list(dict.fromkeys(shape_classes))
    return shape_ids, shape_classes, class_names, {names[s]: s for s in names}


def save_imported_checkpoint(model: TrainedModel, out: str | Path) -> Path:
    """Write an imported model as this project's checkpoint (atomic), readable by every command."""
    stats = dict(model.stats)
    payload = {
        "config": {
            "model": config_io.to_dict(model.config),
            **{k: v for k, v in model.full_config.items() if k != "model"},
        },
        "model_state": {k: v.detach().cpu() for k, v in model.module.state_dict().items()},
        "shape_ids": list(model.shape_ids),
        "shape_classes": list(model.shape_classes),
        "shape_texts": list(model.shape_texts),
        "class_names": list(model.class_names),
        "normalization": dict(model.normalization),
        "stats": stats,
        "epoch": stats.get("deepsdf_epoch"),
    }
    return save_checkpoint(Path(out), payload)
