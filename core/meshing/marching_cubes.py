"""Marching cubes: scikit-image (reference, CPU) and a vectorised torch path (GPU or CPU).

Both return vertices in *index units* of the volume (``volume[i, j, k]`` sits at ``(i, j, k)``)
and faces oriented so that the right-hand-rule normal points towards *increasing* values,
i.e. outward for a signed distance field (negative inside).

The torch path's triangle table is not copied from anywhere: :func:`triangle_table` derives it
at import time from the cube's geometry (see its docstring), so there is no licence question.
Its only choice is how an ambiguous face (two diagonal corners inside) is cut: the inside
corners are always separated. The choice depends on the face's own corner signs only, so the
two cubes sharing a face agree and the mesh is watertight. scikit-image's Lewiner method
resolves ambiguous faces with the asymptotic decider instead, so on ambiguous cubes the two
paths give the same vertices (every vertex is a linear interpolation on a sign-changing grid
edge) but may connect them differently; tests compare vertex sets and surfaces, not faces.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

__all__ = ["marching_cubes", "marching_cubes_skimage", "marching_cubes_torch", "triangle_table"]

# Corner c of a cube sits at offset (c & 1, c >> 1 & 1, c >> 2 & 1) along (i, j, k).
_CORNER_OFFSETS = np.array([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=np.int64)
# Edge e joins corners (c0, c0 | 1 << axis); its vertex lies on grid edge `axis` at the c0 corner.
_EDGES = [(c0, c0 | (1 << a), a) for a in range(3) for c0 in range(8) if not c0 & (1 << a)]
_EDGE_AXIS = np.array([a for _, _, a in _EDGES], dtype=np.int64)  # (12,)
_EDGE_BASE = _CORNER_OFFSETS[[c0 for c0, _, _ in _EDGES]]  # (12, 3)
_EDGE_C0 = [c0 for c0, _, _ in _EDGES]
_EDGE_C1 = [c1 for _, c1, _ in _EDGES]


def _edge_index(c0: int, c1: int) -> int:
    key = (min(c0, c1), max(c0, c1))
    for e, (a, b, _) in enumerate(_EDGES):
        if (a, b) == key:
            return e
    raise ValueError(key)


def _face_cycles() -> list[list[int]]:
    """The 6 cube faces as corner cycles, counter-clockwise seen from outside the cube."""
    cycles = []
    for a in range(3):
        b, c = (a + 1) % 3, (a + 2) % 3
        for side in (0, 1):
            # (b, c) = (0,0), (1,0), (1,1), (0,1) is counter-clockwise seen from +a.
            cyc = [(side << a) | (ub << b) | (uc << c) for ub, uc in ((0, 0), (1, 0), (1, 1), (0, 1))]
            cycles.append(cyc if side == 1 else cyc[::-1])
    return cycles


def _case_triangles(case: int) -> list[tuple[int, int, int]]:
    inside = [(case >> c) & 1 for c in range(8)]
    nxt: dict[int, int] = {}
    for cyc in _face_cycles():
        crossings = []  # (edge, is_entry) in counter-clockwise order
        for k in range(4):
            p, q = cyc[k], cyc[(k + 1) % 4]
            if inside[p] != inside[q]:
                crossings.append((_edge_index(p, q), bool(inside[q])))
        if not crossings:
            continue
        # Pair every entry with the next exit counter-clockwise: the segment then cuts off an
        # inside arc of the face, which separates diagonal inside corners on ambiguous faces.
        n = len(crossings)
        for i, (edge, is_entry) in enumerate(crossings):
            if is_entry:
                nxt[edge] = crossings[(i + 1) % n][0]
    tris = []
    seen: set[int] = set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        e = nxt[start]
        while e != start:
            loop.append(e)
            seen.add(e)
            e = nxt[e]
        tris += _triangulate(loop)
    return tris


def _edge_faces() -> list[set[int]]:
    faces: list[set[int]] = [set() for _ in range(12)]
    for f, cyc in enumerate(_face_cycles()):
        for k in range(4):
            faces[_edge_index(cyc[k], cyc[(k + 1) % 4])].add(f)
    return faces


_FACES_OF_EDGE = _edge_faces()


def _triangulate(loop: list[int]) -> list[tuple[int, int, int]]:
    """Triangulate a contour loop without a diagonal between two vertices of one cube face.

    Such a diagonal would lie in the face, and the neighbouring cube would use the same
    vertex pair too: a non-manifold edge. A plain fan can create one on loops of 6 or more.
    """

    def ok(a: int, b: int) -> bool:
        return not (_FACES_OF_EDGE[a] & _FACES_OF_EDGE[b])

    def solve(poly: list[int]) -> list[tuple[int, int, int]] | None:
        if len(poly) < 3:
            return []
        a, b = poly[0], poly[1]
        for k in range(2, len(poly)):
            c = poly[k]
            if (k != 2 and not ok(b, c)) or (k != len(poly) - 1 and not ok(a, c)):
                continue
            left, right = solve(poly[1 : k + 1]), solve([a] + poly[k:])
            if left is not None and right is not None:
                return [(a, b, c)] + left + right
        return None

    tris = solve(loop)
    if tris is None:
        raise RuntimeError(f"no conforming triangulation of marching-cubes loop {loop}")
    return tris


@lru_cache(maxsize=1)
def triangle_table() -> np.ndarray:
    """(256, T, 3) int64 table of local edge indices per cube case, padded with -1.

    Case bit ``c`` is set when corner ``c`` is inside (value < level). Built by walking the
    iso-contour on each cube face (entry crossing -> next exit, counter-clockwise seen from
    outside), chaining the face segments into closed loops and fanning each loop. The loop
    direction is then fixed once, on the one-corner case, so normals point to increasing values.
    """
    cases = [_case_triangles(c) for c in range(256)]
    # Orientation check on case 1 (corner 0 inside): the normal must point away from corner 0.
    mid = (_CORNER_OFFSETS[[c0 for c0, _, _ in _EDGES]] + _CORNER_OFFSETS[[c1 for _, c1, _ in _EDGES]]) / 2.0
    a, b, c = (mid[i] for i in cases[1][0])
    flip = np.dot(np.cross(b - a, c - a), np.ones(3)) < 0
    width = max(len(t) for t in cases)
    table = -np.ones((256, width, 3), dtype=np.int64)
    for case, tris in enumerate(cases):
        for t, tri in enumerate(tris):
            table[case, t] = tri[::-1] if flip else tri
    return table


def marching_cubes_skimage(volume: np.ndarray | torch.Tensor, level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Reference path: scikit-image's Lewiner marching cubes on the CPU.

    Parameters
    ----------
    volume : (X, Y, Z) array or tensor (moved to the CPU).
    level : iso-value.

    Returns
    -------
    vertices (V, 3) float32 in index units, faces (F, 3) int64, normals towards increasing values.
    """
    from skimage import measure

    if isinstance(volume, torch.Tensor):
        volume = volume.detach().cpu().numpy()
    volume = np.asarray(volume, dtype=np.float32)
    if not (volume.min() < level <= volume.max()) or min(volume.shape) < 2:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    # With the default 'descent', scikit-image's winding gives normals towards increasing values
    # (checked on a sphere SDF in tests/test_marching_cubes.py).
    verts, faces, _, _ = measure.marching_cubes(volume, level=level)
    return verts.astype(np.float32), faces.astype(np.int64)


def marching_cubes_torch(volume: torch.Tensor, level: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast path: vectorised marching cubes on the volume's device.

    Parameters
    ----------
    volume : (X, Y, Z) float tensor, any device.
    level : iso-value.

    Returns
    -------
    vertices (V, 3) float32 in index units, faces (F, 3) int64, both on ``volume.device``;
    one vertex per sign-changing grid edge (shared by the faces around it).
    """
    device = volume.device
    volume = volume.float()
    X, Y, Z = volume.shape
    empty = (
        torch.zeros((0, 3), dtype=torch.float32, device=device),
        torch.zeros((0, 3), dtype=torch.int64, device=device),
    )
    if min(X, Y, Z) < 2:
        return empty

    # The cube cases in bytes (eight shifted views of the inside mask): the only pass over the whole volume.
    inside = (volume < level).to(torch.uint8)
    case = torch.zeros((X - 1, Y - 1, Z - 1), dtype=torch.uint8, device=device)
    for c, (ox, oy, oz) in enumerate(_CORNER_OFFSETS.tolist()):
        case |= inside[ox : X - 1 + ox, oy : Y - 1 + oy, oz : Z - 1 + oz] << c
    active = (case != 0) & (case != 255)
    cubes = active.nonzero()  # (M, 3)
    if cubes.shape[0] == 0:
        return empty
    cases = case[active].long()  # (M,)

    # One vertex per sign-changing grid edge, keyed (axis, flat index of its lower end): every such edge
    # belongs to an active cube, and sorting the keys orders the vertices by axis, then row-major.
    n = X * Y * Z
    strides = torch.tensor([Y * Z, Z, 1], device=device)
    bits = (cases[:, None] >> torch.arange(8, device=device)) & 1  # (M, 8) corner inside flags
    crosses = bits[:, _EDGE_C0] != bits[:, _EDGE_C1]  # (M, 12)
    edge_axis = torch.as_tensor(_EDGE_AXIS, device=device)
    edge_offset = edge_axis * n + torch.as_tensor(_EDGE_BASE, device=device) @ strides  # (12,)
    keys = (cubes @ strides)[:, None] + edge_offset[None]  # (M, 12)
    unique_keys, vertex_of = torch.unique(keys[crosses], return_inverse=True)
    gid = torch.full(keys.shape, -1, dtype=torch.int64, device=device)
    gid[crosses] = vertex_of

    axis, flat = unique_keys // n, unique_keys % n
    values = volume.reshape(-1)
    v0, v1 = values[flat], values[flat + strides[axis]]
    t = ((level - v0) / (v1 - v0)).clamp(0.0, 1.0)
    vertices = torch.stack(torch.unravel_index(flat, volume.shape), 1).float()
    vertices[torch.arange(vertices.shape[0], device=device), axis] += t

    table = torch.as_tensor(triangle_table(), device=device)  # (256, T, 3)
    local = table[cases]  # (M, T, 3)
    valid = local[..., 0] >= 0
    faces = torch.gather(gid, 1, local.clamp(min=0).reshape(cubes.shape[0], -1)).reshape(local.shape)[valid]
    return vertices, faces


def marching_cubes(
    volume: torch.Tensor | np.ndarray, level: float = 0.0, backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes with the backend picked by where the volume lives.

    ``backend``: ``"auto"`` (torch when the volume is a CUDA tensor, else scikit-image),
    ``"skimage"`` or ``"torch"``. Returns numpy vertices (V, 3) float32 in index units and
    faces (F, 3) int64 with normals towards increasing values.
    """
    if backend == "auto":
        backend = "torch" if isinstance(volume, torch.Tensor) and volume.is_cuda else "skimage"
    if backend == "skimage":
        return marching_cubes_skimage(volume, level)
    if backend == "torch":
        if not isinstance(volume, torch.Tensor):
            volume = torch.as_tensor(np.asarray(volume, dtype=np.float32))
        v, f = marching_cubes_torch(volume, level)
        return v.cpu().numpy(), f.cpu().numpy()
    raise ValueError(f"unknown marching cubes backend {backend!r}: use 'auto', 'skimage' or 'torch'")
