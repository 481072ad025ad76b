"""Meshing: SDF grid evaluation (dense / coarse-to-fine), marching cubes, extraction, export.

``extract_mesh(sdf_fn, resolution, colour_fn, method, device) -> MeshArrays`` is the entry point;
``export_mesh(mesh, path)`` writes it; ``sdf_slice(sdf_fn, axis, position)`` samples a plane.
"""

from core.meshing.export import export_mesh, to_trimesh
from core.meshing.extract import MeshArrays, extract_mesh, mesh_from_grid
from core.meshing.grid import GridResult, evaluate_coarse_to_fine, evaluate_dense
from core.meshing.marching_cubes import marching_cubes, marching_cubes_skimage, marching_cubes_torch
from core.meshing.slice import SdfSlice, sdf_slice

__all__ = [
    "MeshArrays",
    "extract_mesh",
    "mesh_from_grid",
    "export_mesh",
    "to_trimesh",
    "GridResult",
    "evaluate_dense",
    "evaluate_coarse_to_fine",
    "marching_cubes",
    "marching_cubes_skimage",
    "marching_cubes_torch",
    "SdfSlice",
    "sdf_slice",
]
