"""A loss ablation: one split evaluated under several loss sets, on the same shapes, seed and classes.

Each loss set gets its own folder of results (:func:`core.evaluation.report.write_results`); the comparison
(one row per loss set) goes to ``ablation.md`` / ``ablation.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from core.evaluation.class_choice import ClassChoice
from core.evaluation.held_out_split import EvalShape
from core.evaluation.loop import evaluate_split
from core.evaluation.report import Summary, comparison_markdown, partial_note, write_results
from core.evaluation.settings import EvalSettings
from core.tto.config import TTOConfig
from core.utils.cancel import Cancel
from core.utils.io_utils import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from core.model.trained_model import TrainedModel

__all__ = ["run_ablation"]


def run_ablation(
    model: TrainedModel,
    shapes: Sequence[EvalShape],
    loss_sets: Iterable[str],
    base_config: TTOConfig,
    settings: EvalSettings,
    out_dir: Path,
    progress: Callable[[str, int, int, dict[str, Any]], None] | None = None,
    meta: dict[str, Any] | None = None,
    cancel: Cancel = None,
    on_step: Callable[[EvalShape, Any], None] | None = None,
) -> tuple[dict[str, Summary], str]:
    """Evaluate each loss set on the same shapes (same seed, same class per shape: it is chosen
    once, by the first loss set, and shared); ``<out>/<losses>/`` each with ``meta`` in its
    results.json, plus ``ablation.md`` / ``ablation.json``. Returns the summaries and the table.

    A cancelled loss set is written as partial (see :func:`core.evaluation.report.write_results`) and the
    loss sets after it are not run; the table ends with a line saying so.
    """
    out_dir = Path(out_dir)
    summaries: dict[str, Summary] = {}
    classes: dict[tuple[str, str], ClassChoice] = {}
    stopped = None
    for losses in loss_sets:
        config = base_config.with_losses(losses)
        cb = None if progress is None else (lambda i, n, row, _l=losses: progress(_l, i, n, row))
        rows = evaluate_split(
            model,
            shapes,
            config,
            settings,
            out_dir / losses.replace(",", "+"),
            cb,
            cancel=cancel,
            classes=classes,
            on_step=on_step,
        )
        summaries[losses] = write_results(
            out_dir / losses.replace(",", "+"), rows, config, settings, {**(meta or {}), "losses": losses}
        )
        if rows.cancelled:
            stopped = f"\nLoss set {losses}: {partial_note(rows)} The loss sets after it were not run.\n"
            break
    table = comparison_markdown(summaries) + (stopped or "")
    atomic_write_bytes(out_dir / "ablation.md", ("# Loss ablation\n\n" + table).encode("utf-8"))
    atomic_write_json(out_dir / "ablation.json", summaries)
    return summaries, table
