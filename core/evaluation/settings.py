"""How the shapes of a split are reconstructed and measured: :class:`EvalSettings`, one object per evaluation.

Apart from the loop that reads it (:mod:`core.evaluation.loop`) because the class choice
(:mod:`core.evaluation.class_choice`) and the written report (:mod:`core.evaluation.report`) read it too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EvalSettings"]


@dataclass
class EvalSettings:
    """How shapes are reconstructed and measured."""

    resolution: int = 128
    """Marching-cubes grid resolution."""
    mesh_method: str = "coarse_to_fine"
    """Grid evaluation: ``coarse_to_fine`` or ``dense``."""
    n_eval_points: int = 30_000
    """Points sampled on the reconstruction for the metrics (DeepSDF: 30,000)."""
    infer_class: bool = False
    """Infer the class by TTO instead of using the manifest's label (also reports class accuracy)."""
    use_trained_codes: bool = False
    """Training shapes: use the checkpoint's codes, no optimisation."""
    class_as_text: bool = False
    """Condition on the class name as a free text prompt (text-conditioned models): the zero-shot
    setting for classes the model never saw. Models without conditioning ignore the class."""
    text_prompt: str | None = None
    """Text-conditioned models only (checked by :func:`core.evaluation.class_choice.check_text_prompt`):
    ``class`` conditions each shape on its class name as a prompt, ``description`` on its own text from the
    manifest (the per-shape description a ``text_source = description`` model was trained on). Zero-shot for
    classes the model never saw; None: the class (given or inferred) as usual."""
    seed: int = 0
    grid_reference: bool = True
    """Also mesh each shape's source mesh's exact SDF on the same grid (when the source is there) and
    report the reconstruction's floaters beyond it and the exact field's own F@1 and thin F@1 on
    that grid, the grid's ceiling (:mod:`core.evaluation.grid_reference`); 2-5 s a shape."""
    iso_level: float = 0.0
    """Mesh the level set ``sdf = iso_level`` instead of zero (SDF units: the grid's voxel is
    2 / (resolution - 1)). A small positive level dilates the surface and closes sheets the field
    tears just above zero, at the price of accuracy everywhere (docs/results.md, "The grid's
    ceiling"); the ground-truth references stay at zero."""
    observation: str = "samples"
    """What each shape is fitted to: ``samples`` (its sample file: a full observation) or ``scan`` (a
    single-view depth scan of its source mesh from the shape's :attr:`EvalShape.view`, as the viewer's
    "Partial scan" makes; rows then also measure the side the scan did not see: ``unseen_*``)."""
    scan_resolution: int = 128
    """Pixels per side of a partial scan's depth image."""
    save_meshes: bool = False
    """Write each reconstruction to ``<out>/meshes/<class>/<id>.ply``."""
    device: str | None = None
