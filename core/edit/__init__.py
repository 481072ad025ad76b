"""Shape editing by code optimisation: drag the surface, paint colour, graft a part.

Each edit takes the shape as it was (:func:`take_snapshot`) and the user's constraints
(:mod:`core.edit.constraints`), optimises one code with the decoder frozen, and returns an
:class:`EditResult` with the new codes, the loss history, what the edit achieved and the
plausibility of the new code (:mod:`core.edit.plausibility`). All three run on a worker
thread, report progress and stop on ``cancel``.
"""

from core.edit.constraints import Brush, EditError, Handle, Pin, Region
from core.edit.drag import DragConfig, drag
from core.edit.graft import GraftConfig, graft
from core.edit.optimise import EditProgress, EditResult
from core.edit.paint import PaintConfig, delta_e, paint, rgb_to_lab
from core.edit.plausibility import CodeGaussian, Plausibility, class_gaussian
from core.edit.snapshot import ShapeCodes, Snapshot, codes_of, take_snapshot

__all__ = [
    "Brush",
    "EditError",
    "Handle",
    "Pin",
    "Region",
    "DragConfig",
    "drag",
    "GraftConfig",
    "graft",
    "PaintConfig",
    "paint",
    "delta_e",
    "rgb_to_lab",
    "EditProgress",
    "EditResult",
    "CodeGaussian",
    "Plausibility",
    "class_gaussian",
    "ShapeCodes",
    "Snapshot",
    "codes_of",
    "take_snapshot",
]
