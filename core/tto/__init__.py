"""Test-time optimisation: fit a trained decoder's codes to a new observation.

``observations`` builds what is fitted (sample file, mesh, point cloud, single-view scan),
``config`` holds the settings (DeepSDF's baseline plus thin-structure switches), ``losses``
the terms and schedules, ``fit`` the loop, ``scan`` the depth-scan renderer, ``measure`` the viewer's live
read-out of a fit against its observation.
"""

from core.tto.config import LOSS_PRESETS, TTOConfig, parse_losses
from core.tto.fit import TTOProgress, TTOResult, fit, iterate_fit, resolve_condition
from core.tto.observations import (
    Observation,
    estimate_normals,
    from_mesh,
    from_npz,
    from_point_cloud,
    from_point_cloud_file,
    from_scan,
    load_observation,
)

__all__ = [
    "LOSS_PRESETS",
    "TTOConfig",
    "parse_losses",
    "TTOProgress",
    "TTOResult",
    "fit",
    "iterate_fit",
    "resolve_condition",
    "Observation",
    "estimate_normals",
    "from_mesh",
    "from_npz",
    "from_point_cloud",
    "from_point_cloud_file",
    "from_scan",
    "load_observation",
]
