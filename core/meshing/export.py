"""Write :class:`MeshArrays` to .ply / .obj / .glb with vertex colours, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from core.meshing.extract import MeshArrays
from core.utils.io_utils import atomic_write_bytes

__all__ = ["to_trimesh", "export_mesh", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("ply", "obj", "glb")


def to_trimesh(mesh: MeshArrays) -> trimesh.Trimesh:
    """A ``trimesh.Trimesh`` sharing the vertex order (``process=False``), normals and colours.

    Colours become RGBA uint8 vertex colours; without colours trimesh's default colour is used.
    """
    vertex_colors = None  # trimesh's default colour
    if mesh.colours is not None:
        rgb = np.clip(np.round(np.asarray(mesh.colours, np.float64) * 255.0), 0, 255).astype(np.uint8)
        vertex_colors = np.concatenate([rgb, np.full((rgb.shape[0], 1), 255, np.uint8)], axis=1)
    tm = trimesh.Trimesh(
        vertices=np.asarray(mesh.vertices, np.float64),
        faces=np.asarray(mesh.faces, np.int64),
        vertex_normals=np.asarray(mesh.normals, np.float64) if len(mesh.normals) else None,
        vertex_colors=vertex_colors,
        process=False,
    )
    return tm


def export_mesh(mesh: MeshArrays, path: str | os.PathLike) -> Path:
    """Write ``mesh`` to ``path``; the format comes from the suffix (.ply, .obj or .glb).

    The file is written to a temporary name and renamed (``core.utils.io_utils``), so a killed process
    never leaves half a file. Returns the path.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"cannot export mesh to {path}: unknown suffix {path.suffix!r}; use .ply, .obj or .glb")
    tm = to_trimesh(mesh)
    if fmt == "obj":
        data = trimesh.exchange.obj.export_obj(tm, include_normals=True, include_color=True, include_texture=False)
    else:
        data = tm.export(file_type=fmt)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return atomic_write_bytes(path, data)
