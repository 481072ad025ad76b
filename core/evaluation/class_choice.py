"""What each shape of a split is reconstructed under: its class, an inferred class, or a text prompt.

The choice is made once per shape (:func:`choose_class`) and shared by every loss set of an ablation,
so loss sets are compared on one class per shape. ``--text-prompt`` is checked before any fit
(:func:`check_text_prompt`) so a wrong model or a shape without a description fails at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from core.utils.errors import ConfigError, DataSetError

if TYPE_CHECKING:
    from core.evaluation.held_out_split import EvalShape
    from core.evaluation.settings import EvalSettings
    from core.model.trained_model import TrainedModel
    from core.tto.config import TTOConfig
    from core.tto.observations import Observation

__all__ = [
    "ClassChoice",
    "TEXT_PROMPTS",
    "MEAN_CONDITION",
    "check_text_prompt",
    "text_choice",
    "unknown_class_message",
    "choose_class",
    "class_fields",
]


@dataclass(frozen=True)
class ClassChoice:
    """The class one shape is reconstructed under, chosen once and shared by every loss set.

    source: ``given`` (the manifest's label), ``inferred`` (short fits under every class),
    ``text`` (a prompt: the class name or the shape's description), ``mean`` (:data:`MEAN_CONDITION`)
    or ``none`` (a model without conditioning).
    """

    class_name: str | None
    source: str
    text: str | None = None
    scores: dict[str, float] | None = None
    seconds: float = 0.0


TEXT_PROMPTS: tuple[str, ...] = ("class", "description")
"""What ``--text-prompt`` conditions each shape on (see :attr:`EvalSettings.text_prompt`)."""

MEAN_CONDITION = ClassChoice(None, "mean", text="")
"""The class-agnostic condition: an empty prompt makes :meth:`TrainedModel.condition` return the
mean over the trained classes' conditions, and, being a prompt, keeps :func:`core.tto.fit.fit` from
inferring a class. The "no condition" reference of a zero-shot study (a conditioned decoder never
saw a zero condition vector; the mean is the centre of the conditions it saw)."""


def check_text_prompt(model: TrainedModel, shapes: Sequence[EvalShape], text_prompt: str) -> None:
    """Refuse ``--text-prompt`` before any fit: a model without text conditioning, or shapes without text.

    Raises
    ------
    ConfigError
        An unknown ``text_prompt`` or a model not trained with ``conditioning = text``.
    DataSetError
        ``description`` for shapes whose manifest record has no ``text`` (names up to five).
    """
    if text_prompt not in TEXT_PROMPTS:
        raise ConfigError(f"--text-prompt {text_prompt!r}: choose one of {', '.join(TEXT_PROMPTS)}")
    mode = model.conditioning
    if mode != "text":
        where = f"{model.path}: " if model.path else ""
        raise ConfigError(
            f"{where}--text-prompt needs a text-conditioned model; this one uses conditioning "
            f"{mode!r}. Train one with 'main.py train --conditioning text' (add "
            "--set model.text_source=description for per-shape descriptions), or drop --text-prompt."
        )
    if text_prompt == "description":
        missing = [f"{s.class_name}/{s.id}" for s in shapes if not (s.text and s.text.strip())]
        if missing:
            raise DataSetError(
                f"--text-prompt description: {len(missing)} of {len(shapes)} shapes have no text in the manifest "
                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}). Preprocess with a source that "
                "writes descriptions (synthetic, sweethome3d), leave those shapes out with --classes, or use "
                "--text-prompt class."
            )


def text_choice(shape: EvalShape, text_prompt: str) -> ClassChoice:
    """The prompt ``shape`` is fitted under for ``--text-prompt`` (``class`` or ``description``)."""
    if text_prompt == "description":
        if not (shape.text and shape.text.strip()):
            raise DataSetError(
                f"{shape.class_name}/{shape.id}: no text in the manifest, so it cannot be conditioned "
                "on its description; use --text-prompt class for it."
            )
        return ClassChoice(None, "text", text=shape.text.strip())
    return ClassChoice(None, "text", text=shape.class_name)


def unknown_class_message(shape: EvalShape, model: TrainedModel) -> str:
    """Why ``shape``'s given class cannot condition ``model``, and the two ways on."""
    names = ", ".join(model.class_names)
    return (
        f"class {shape.class_name!r} is not one of this model's classes ({names}); evaluate with --infer-class "
        "to reconstruct it under the class the model finds closest, or skip it with --classes"
    )


def choose_class(
    model: TrainedModel,
    shape: EvalShape,
    obs: Observation,
    config: TTOConfig,
    settings: EvalSettings,
    cancel: Any = None,
    callback: Callable[[Any], None] | None = None,
) -> ClassChoice:
    """The class ``shape`` is fitted under (see :class:`ClassChoice`).

    Inference runs the baseline losses whatever ``config`` turns on, so every loss set of an
    ablation compares reconstructions under one class. Raises DataSetError for a given class
    the model does not know (the message names ``--infer-class``). ``callback`` gets the short
    fits' progress (stage ``class:<name>``) a few times per class.
    """
    from core.tto.fit import fit

    if settings.text_prompt:
        check_text_prompt(model, [], settings.text_prompt)
        return text_choice(shape, settings.text_prompt)
    if model.condition() is None:
        return ClassChoice(None, "none")
    if settings.class_as_text:
        return ClassChoice(None, "text", text=shape.class_name)
    if not settings.infer_class:
        if shape.class_name not in model.class_names:
            raise DataSetError(unknown_class_message(shape, model))
        return ClassChoice(shape.class_name, "given")
    probe = replace(config.with_losses("baseline"), iterations=1, lr_decay_every=None)
    result = fit(
        model,
        obs,
        probe,
        callback=callback,
        class_name=None,
        seed=settings.seed,
        cancel=cancel,
        every=max(1, config.class_iterations // 4),
    )
    return ClassChoice(result.class_name, "inferred", scores=result.class_scores, seconds=result.seconds)


def class_fields(shape: EvalShape, choice: ClassChoice, model: TrainedModel) -> dict[str, Any]:
    """A result row's class columns: how the class was chosen, what was used, and whether an inferred class is
    right (None when nothing was inferred or the true class is one the model never saw)."""
    known = shape.class_name in model.class_names
    correct = (choice.class_name == shape.class_name) if choice.source == "inferred" and known else None
    return {
        "class_source": choice.source,
        "class_pred": choice.class_name if choice.source != "text" else choice.text,
        "class_correct": correct,
        "seconds_class": choice.seconds,
    }
