"""A trained model ready for use: what TTO, meshing, evaluation and the viewer see.

:class:`TrainedModel` wraps the decoder, the learned codes and the class metadata of one
checkpoint, and answers two questions: "what is the condition vector for this class / prompt?"
(:meth:`condition`) and "what are SDF and colour at these points for these codes?" (:meth:`decode`,
and as closures for meshing and metrics, :meth:`sdf_fn` / :meth:`colour_fn`). It is the one typed way
to decode: TTO, meshing, evaluation, editing and the viewer take a ``TrainedModel``, and a fine-tuned
decoder (a TTO result's ``decoder_override``) is a :meth:`with_decoder` copy of it, not a second path.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from core.model.autodecoder import AutoDecoder
from core.model.checkpoint import read_checkpoint
from core.model.config import ModelConfig, preset_config
from core.model.decoder_field import DecoderField
from core.utils.config_io import from_dict
from core.utils.devices import default_device, resolve_device
from core.utils.errors import CheckpointError, ObservationError

__all__ = ["TrainedModel", "SdfFn", "ColourFn", "load_checkpoint_model", "untrained_model", "default_device"]

SdfFn = Callable[[torch.Tensor], torch.Tensor]
"""Tensor (N, 3) float32, unit-sphere frame -> Tensor (N,) signed distance (negative inside)."""
ColourFn = Callable[[torch.Tensor], torch.Tensor]
"""Tensor (N, 3) float32, unit-sphere frame -> Tensor (N, 3) RGB (not clamped; meshing clamps to [0, 1])."""


@dataclass
class TrainedModel:
    """Decoder + codes + metadata of one checkpoint. Tensors live on ``device``."""

    config: ModelConfig
    module: AutoDecoder
    shape_ids: list[str]
    shape_classes: list[str]
    shape_texts: list[str | None]
    class_names: list[str]
    stats: dict[str, Any] = field(default_factory=dict)
    normalization: dict[str, Any] = field(default_factory=dict)
    full_config: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    device: torch.device = torch.device("cpu")

    def __post_init__(self) -> None:
        self.module.eval()
        self.decoder = self.module.decoder
        self.shape_codes = self.module.shape_codes.weight.detach()
        self.colour_codes = None if self.module.colour_codes is None else self.module.colour_codes.weight.detach()
        self._text_cache: dict[str, torch.Tensor] = {}

    # -- metadata ------------------------------------------------------------------------------
    @property
    def has_colour(self) -> bool:
        return self.colour_codes is not None and self.decoder.has_colour

    @property
    def surface_offset(self) -> float:
        """How far outside the true surface this model's zero level set lies: the ``ε`` its training
        data dilated every surface by (:mod:`core.data.open_mesh_sdf`); 0 for models of undilated data.
        Meshing steps every vertex this far inward (:func:`core.meshing.extract_mesh`)."""
        try:
            return max(0.0, float(self.stats.get("surface_offset", 0.0) or 0.0))
        except (TypeError, ValueError):
            return 0.0

    @property
    def conditioning(self) -> str:
        return self.config.conditioning

    @property
    def code_size(self) -> int:
        """Length Ds of a shape code (the condition vector is not part of it)."""
        return int(self.shape_codes.shape[-1])

    @property
    def colour_code_size(self) -> int:
        """Length Dc of a colour code; 0 for a model without colour codes."""
        return 0 if self.colour_codes is None else int(self.colour_codes.shape[-1])

    def codes_of_class(self, class_name: str) -> list[int]:
        """Indices of the training codes of ``class_name``."""
        return [i for i, c in enumerate(self.shape_classes) if c == class_name]

    def index_of(self, shape_id: str) -> int:
        try:
            return self.shape_ids.index(shape_id)
        except ValueError:
            raise ObservationError(
                f"unknown shape id {shape_id!r}; the model has {len(self.shape_ids)} codes"
            ) from None

    def summary(self) -> dict[str, Any]:
        """What the viewer's model panel shows."""
        return {
            "path": str(self.path) if self.path else None,
            "preset": self.config.preset,
            "conditioning": self.config.conditioning,
            "classes": list(self.class_names),
            "codes": len(self.shape_ids),
            "colour": self.has_colour,
            "view_dependent": self.config.view_dependent,
            "parameters": sum(p.numel() for p in self.decoder.parameters()),
            "stats": dict(self.stats),
        }

    # -- conditioning --------------------------------------------------------------------------
    @torch.no_grad()
    def training_condition(self, index: int) -> torch.Tensor | None:
        """The condition training shape ``index`` was trained with (None in ``none`` mode).

        Its class's condition, except in a text model trained on per-shape descriptions
        (``text_source = description``): there each shape was trained under its *own* description,
        and its code only reproduces the shape under that condition (the class prompt is a
        different input the decoder met only through the descriptions near it).
        """
        if not 0 <= index < len(self.shape_ids):
            raise ObservationError(f"no training shape {index}; the model has {len(self.shape_ids)} codes")
        conditioner = self.module.conditioner
        if conditioner.mode == "none":
            return None
        class_index = torch.tensor([self.class_names.index(self.shape_classes[index])], device=self.device)
        shape_index = torch.tensor([index], device=self.device)
        return conditioner(class_index, shape_index=shape_index)[0]

    @torch.no_grad()
    def condition(self, class_name: str | None = None, text: str | None = None) -> torch.Tensor | None:
        """The condition vector (Dcond,) for a class or a free prompt; None in ``none`` mode.

        With neither given, conditioned models return the mean over classes (class-agnostic).
        ``text`` works in ``text`` mode only (any prompt, zero-shot included); other modes
        accept it only when it names a known class.
        """
        conditioner = self.module.conditioner
        if conditioner.mode == "none":
            return None
        if text is not None and text.strip():
            if conditioner.mode == "text":
                return self._text_condition(text.strip())
            if text.strip() in self.class_names:
                class_name = text.strip()
            else:
                raise ObservationError(
                    f"free text prompts need a text-conditioned model; this one uses "
                    f"{conditioner.mode!r}. Pick a class: {', '.join(self.class_names)}"
                )
        if class_name is None:
            idx = torch.arange(len(self.class_names), device=self.device)
            return conditioner(idx).mean(dim=0)
        if class_name not in self.class_names:
            raise ObservationError(f"unknown class {class_name!r}; this model knows: {', '.join(self.class_names)}")
        idx = torch.tensor([self.class_names.index(class_name)], device=self.device)
        return conditioner(idx)[0]

    def _text_condition(self, text: str) -> torch.Tensor:
        if text in self._text_cache:
            return self._text_cache[text]
        from core.model.text_encoder import class_prompt, encode_texts

        prompt = class_prompt(text) if len(text.split()) <= 2 else text
        emb = torch.from_numpy(encode_texts([prompt], self.config.text_model)[0]).to(self.device)
        cond = self.module.conditioner.from_text_embedding(emb).detach()
        self._text_cache[text] = cond
        return cond

    def latent(self, shape_code: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        code = shape_code.to(self.device, torch.float32)
        return code if condition is None else torch.cat([code, condition.to(self.device, torch.float32)])

    # -- evaluation ----------------------------------------------------------------------------
    def decode(
        self,
        points: torch.Tensor,
        shape_code: torch.Tensor,
        colour_code: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        view_dirs: torch.Tensor | None = None,
        colour_rows: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """SDF (N,) and RGB (N, 3) | None at ``points`` (N, 3), unit-sphere frame.

        Gradients flow (TTO optimises the codes through this); wrap in ``torch.no_grad()`` for
        plain evaluation. Uses ``self.decoder`` so a copy with other decoder weights works too.
        """
        pts = points.to(self.device, torch.float32)
        latent = self.latent(shape_code, condition)
        colour = None if (colour_code is None or not self.has_colour) else colour_code.to(self.device, torch.float32)
        return self.decoder(pts, latent, colour, view_dirs, with_colour=colour is not None, colour_rows=colour_rows)

    def sdf_fn(self, shape_code: torch.Tensor, condition: torch.Tensor | None = None) -> SdfFn:
        """A ``Tensor (N, 3) -> Tensor (N,)`` closure for :func:`core.meshing.extract_mesh` and metrics.

        ``shape_code`` (Ds,), ``condition`` (Dcond,) or None. Differentiable in the points (meshing
        takes the normals from its gradient); wrap calls in ``torch.no_grad()`` for plain values.
        The closure carries the inward step meshing applies (:func:`core.data.open_mesh_sdf.mesh_step` of the
        model's :attr:`surface_offset`) as its ``surface_offset`` attribute.
        """
        latent = self.latent(shape_code, condition)

        def fn(points: torch.Tensor) -> torch.Tensor:
            return self.decoder(points.to(self.device, torch.float32), latent, None, with_colour=False)[0]

        from core.data.open_mesh_sdf import mesh_step

        fn.surface_offset = mesh_step(self.surface_offset)  # type: ignore[attr-defined]
        return fn

    def colour_fn(
        self, shape_code: torch.Tensor, colour_code: torch.Tensor | None = None, condition: torch.Tensor | None = None
    ) -> ColourFn | None:
        """A ``Tensor (N, 3) -> Tensor (N, 3)`` RGB closure; None without a colour code or colour head."""
        if colour_code is None or not self.has_colour:
            return None
        latent = self.latent(shape_code, condition)
        colour = colour_code.to(self.device, torch.float32)

        def fn(points: torch.Tensor) -> torch.Tensor:
            return self.decoder(points.to(self.device, torch.float32), latent, colour)[1]

        return fn

    def mesh_field(
        self,
        shape_code: torch.Tensor,
        colour_code: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
        precision: str = "auto",
    ) -> DecoderField:
        """The shape's SDF (and colour, with a colour code) as a frozen, fused field for meshing.

        A snapshot of the decoder's current weights (:class:`core.model.decoder_field.DecoderField`):
        :func:`core.meshing.extract_mesh` takes it in place of the ``sdf_fn`` / ``colour_fn`` pair and
        runs the network once per vertex instead of twice. ``precision``: ``auto`` (bfloat16 matrix
        products on a CPU with native bfloat16 units, else float32), ``float32`` (the same numbers as
        :meth:`sdf_fn`) or ``bfloat16``. Carries the model's meshing step as ``surface_offset``.
        """
        from core.data.open_mesh_sdf import mesh_step

        colour = None if (colour_code is None or not self.has_colour) else colour_code.to(self.device, torch.float32)
        return DecoderField(
            self.decoder,
            self.latent(shape_code, condition),
            colour,
            precision,
            surface_offset=mesh_step(self.surface_offset),
        )

    def with_decoder(self, decoder_state: dict[str, torch.Tensor] | None) -> TrainedModel:
        """This model with other decoder weights (e.g. a TTO result's fine-tuned ``decoder_override``).

        The copy shares codes, conditioner and metadata; its decoder is a private deep copy
        loaded with ``decoder_state`` and in eval mode, so this model is never changed. ``None``
        returns this model itself. Raises ``RuntimeError`` when the state does not fit the decoder.
        """
        if decoder_state is None:
            return self
        other = copy.copy(self)
        decoder = copy.deepcopy(self.decoder)
        decoder.load_state_dict(decoder_state)
        decoder.eval()
        other.decoder = decoder
        return other

    def code_statistics(self, class_name: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and per-dimension std of the shape codes (of one class, or all)."""
        idx = self.codes_of_class(class_name) if class_name else list(range(len(self.shape_ids)))
        codes = self.shape_codes[idx] if idx else self.shape_codes
        std = codes.std(dim=0) if len(codes) > 1 else torch.full_like(codes[0], 0.01)
        return codes.mean(dim=0), std


def build_module(config: ModelConfig, num_shapes: int, num_classes: int) -> AutoDecoder:
    return AutoDecoder(config, num_shapes=num_shapes, num_classes=num_classes)


def state_mismatch(config: ModelConfig, num_shapes: int, num_classes: int, state: dict) -> str | None:
    """How ``state`` does not fit the module ``config`` builds (None: it fits).

    The module is built on the meta device (shapes, no memory), so a configuration edited to claim
    huge layers is refused in milliseconds instead of allocating them before the weights are looked at.
    """
    with torch.device("meta"):
        expected = build_module(config, num_shapes, num_classes).state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        return f"missing weights {missing[:4]}, unexpected weights {unexpected[:4]}"
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(expected[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            return f"size mismatch for {key}: {shape} in the file, {tuple(expected[key].shape)} in the configuration"
    return None


def load_checkpoint_model(path: str | Path, device: str | torch.device | None = None) -> TrainedModel:
    """Load one of this project's checkpoints for inference; raise :class:`CheckpointError` on anything wrong
    with it. :func:`core.model.loading.load_trained_model` picks this or the DeepSDF experiment format."""
    device = resolve_device(device)  # None / "auto": CUDA when present; a bad or absent device: ConfigError
    data = read_checkpoint(Path(path))
    try:
        model_cfg = from_dict(ModelConfig, dict(data["config"]["model"]), "checkpoint config.model")
    except Exception as exc:
        raise CheckpointError(
            f"{path}: its config cannot be read ({exc}); the file is damaged or from another program."
        ) from exc
    k, c = len(data["shape_ids"]), len(data["class_names"])
    texts = data.get("shape_texts") or [None] * k
    unknown = sorted(set(data["shape_classes"]) - set(data["class_names"]))
    if len(data["shape_classes"]) != k or len(texts) != k or unknown:
        raise CheckpointError(
            f"{path}: its shape list is inconsistent ({k} ids, {len(data['shape_classes'])} classes, {len(texts)} "
            f"texts{'; classes not in class_names: ' + ', '.join(map(str, unknown[:5])) if unknown else ''}). "
            "The file is damaged or was edited; use the checkpoint the trainer wrote."
        )
    problem = state_mismatch(model_cfg, k, c, data["model_state"])  # before any memory is allocated
    if problem is None:
        module = build_module(model_cfg, k, c)
        try:
            module.load_state_dict(data["model_state"])
        except (RuntimeError, KeyError) as exc:
            first = str(exc).strip().splitlines() or [type(exc).__name__]
            problem = first[0][:160] + ("; " + first[1].strip()[:160] if len(first) > 1 else "")
    if problem is not None:
        raise CheckpointError(
            f"{path}: the weights do not fit the model configuration stored with them (preset {model_cfg.preset!r}, "
            f"{len(model_cfg.hidden_dims)} x {max(model_cfg.hidden_dims)} layers, code {model_cfg.code_size}: "
            f"{problem}). The file is damaged or was edited."
        )
    module.to(device)
    return TrainedModel(
        config=model_cfg,
        module=module,
        shape_ids=list(data["shape_ids"]),
        shape_classes=list(data["shape_classes"]),
        shape_texts=list(texts),
        class_names=list(data["class_names"]),
        stats=dict(data.get("stats") or {}),
        normalization=dict(data.get("normalization") or {}),
        full_config=dict(data["config"]),
        path=Path(path),
        device=device,
    )


def untrained_model(
    preset: str = "default",
    device: str | torch.device = "cpu",
    num_shapes: int = 4,
    class_names: tuple[str, ...] = ("a", "b"),
    **overrides,
) -> TrainedModel:
    """A randomly initialised model of ``preset`` (benchmarks of speed; never for results)."""
    cfg = preset_config(preset, **overrides)
    torch.manual_seed(0)
    module = build_module(cfg, num_shapes, len(class_names)).to(device)
    classes = [class_names[i % len(class_names)] for i in range(num_shapes)]
    return TrainedModel(
        config=cfg,
        module=module,
        shape_ids=[f"s{i}" for i in range(num_shapes)],
        shape_classes=classes,
        shape_texts=[None] * num_shapes,
        class_names=list(class_names),
        device=torch.device(device),
    )
