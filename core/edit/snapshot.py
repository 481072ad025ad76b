"""The shape before an edit: its codes and a frozen sample of its surface and nearby field.

Every edit compares against the shape as it was when the edit began (the locality term of a
drag, the colours a paint keeps, the A and B fields of a graft). Taking that sample once — at
mouse press in the viewer — lets a drag re-optimise many times per second from the same
reference without re-meshing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.edit.constraints import EditError
from core.evaluation.metrics import sample_mesh_surface
from core.meshing import extract_mesh
from core.meshing.extract import MeshArrays

__all__ = ["ShapeCodes", "Snapshot", "take_snapshot", "codes_of", "BAND_OFFSETS"]

BAND_OFFSETS = (-0.04, -0.015, 0.015, 0.04)
"""Offsets along the normal of the near-surface probes (unit-sphere frame): the field just
inside and outside the surface, so an edit keeps the thickness of parts, not only their skin."""


@dataclass(frozen=True)
class ShapeCodes:
    """The codes of one shape: shape (Ds,), colour (Dc,) | None, condition (Dcond,) | None; CPU float32."""

    shape_code: torch.Tensor
    colour_code: torch.Tensor | None
    condition: torch.Tensor | None
    class_name: str | None = None
    label: str = ""


def codes_of(model, shape_id: str) -> ShapeCodes:
    """The learned codes of a training shape, by ``"chair_003"`` or ``"chair/chair_003"``.

    Raises :class:`EditError` naming the id and a few valid ones.
    """
    text = shape_id.strip()
    sid = text.split("/", 1)[1] if "/" in text else text
    if sid not in model.shape_ids:
        hint = ", ".join(f"{c}/{s}" for c, s in list(zip(model.shape_classes, model.shape_ids, strict=True))[:4])
        raise EditError(
            f"unknown code id {shape_id!r}: the model has {len(model.shape_ids)} training codes, "
            f"named class/id such as {hint}"
        )
    i = model.shape_ids.index(sid)
    cls = model.shape_classes[i]
    if "/" in text and text.split("/", 1)[0] != cls:
        raise EditError(
            f"code id {shape_id!r}: shape {sid!r} belongs to class {cls!r}, not "
            f"{text.split('/', 1)[0]!r}; write {cls}/{sid}"
        )
    colour = None if model.colour_codes is None else model.colour_codes[i].detach().cpu()
    cond = model.training_condition(i)
    return ShapeCodes(
        model.shape_codes[i].detach().cpu(), colour, None if cond is None else cond.detach().cpu(), cls, f"{cls}/{sid}"
    )


@dataclass
class Snapshot:
    """The shape at the start of an edit (tensors on the model's device, unit-sphere frame).

    Attributes
    ----------
    codes : the :class:`ShapeCodes` edited.
    mesh : its mesh at ``resolution`` (coloured when the model has colour).
    surface : (S, 3) area-weighted points on that mesh; ``normals`` (S, 3) their face normals.
    colours : (S, 3) the colour head's RGB at ``surface`` (None without colour).
    probes : (P, 3) the surface points and their offsets by :data:`BAND_OFFSETS` along the normal;
    probe_sdf : (P,) the SDF there before the edit; probe_of : (P,) index into ``surface``.
    """

    codes: ShapeCodes
    mesh: MeshArrays
    surface: torch.Tensor
    normals: torch.Tensor
    colours: torch.Tensor | None
    probes: torch.Tensor
    probe_sdf: torch.Tensor
    probe_of: torch.Tensor
    resolution: int

    @property
    def voxel(self) -> float:
        return 2.0 / (self.resolution - 1)


def decode_sdf(model, codes: ShapeCodes, points: torch.Tensor, shape_code: torch.Tensor | None = None) -> torch.Tensor:
    """SDF (N,) of ``codes`` (or ``shape_code`` under its condition) at ``points`` (N, 3)."""
    code = codes.shape_code if shape_code is None else shape_code
    return model.decode(points, code.to(model.device), None, codes.condition)[0]


@torch.no_grad()
def take_snapshot(
    model, codes: ShapeCodes, resolution: int = 64, n_surface: int = 6000, seed: int = 0, mesh: MeshArrays | None = None
) -> Snapshot:
    """Mesh ``codes`` at ``resolution`` (or use ``mesh``) and sample its surface and near field.

    Raises :class:`EditError` when the shape has no surface in [-1, 1]^3 (nothing to edit).
    """
    device = model.device
    if mesh is None:
        field = model.mesh_field(codes.shape_code, codes.colour_code, codes.condition)
        # torch's marching cubes lets go of the GIL between tensor operations (scikit-image's holds
        # it for the whole pass): the viewer's UI thread keeps running while a drag starts.
        mesh = extract_mesh(field, resolution, device=device, mc_backend="torch")
    if mesh.is_empty:
        raise EditError(f"{codes.label or 'this shape'} has no surface inside [-1, 1]^3; pick another code to edit")
    pts, nrm, _, _ = sample_mesh_surface(mesh.vertices, mesh.faces, n_surface, rng=seed)
    surface = torch.as_tensor(pts, dtype=torch.float32, device=device)
    normals = torch.as_tensor(nrm, dtype=torch.float32, device=device)
    probes = [surface] + [surface + d * normals for d in BAND_OFFSETS]
    probe_of = torch.arange(len(surface), device=device).repeat(len(probes))
    probes_t = torch.cat(probes)
    probe_sdf = torch.cat([decode_sdf(model, codes, chunk) for chunk in probes_t.split(32768)])
    colours = None
    if codes.colour_code is not None and model.has_colour:
        colours = model.decode(surface, codes.shape_code.to(device), codes.colour_code.to(device), codes.condition)[1]
    return Snapshot(codes, mesh, surface, normals, colours, probes_t, probe_sdf, probe_of, resolution)
