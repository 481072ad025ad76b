"""Signed distances that open meshes can have: the exact distance to the surface dilated by ``ε``.

Why: real models are rarely closed. Shelves, back panels, chair shells, lamp shades and glass are
single-sided sheets, and a generalised winding number is about 0.5 on both sides of a sheet, so
"inside where it exceeds 0.5" flips at random along it: the training targets get stripes, holes
and flakes. The practice of large 3D pipelines (Dora's ``to_watertight_mesh``, cubvh's watertight
remesh) gives every sheet an inside instead: it becomes a closed slab ``2 ε`` thick.

The field of :class:`FillSdfField`, for a mesh in the unit-sphere frame, is the signed distance to
the surface dilated by ``ε``: ``sdf = u − ε`` outside and ``−(u + ε)`` inside, ``u`` the exact distance
to the closest surface point (libigl's AABB tree, at the sample points themselves, not a resampled
grid). Both give ``−ε`` on the surface, so the field is continuous across it, and every part is kept
(no "largest component" rule). What is inside:

1. **Closed parts** (:func:`mesh_closure`: welded parts whose every edge is run both ways, outward
   oriented): inside where their own winding number exceeds 0.5 — exact, as for a closed mesh.
2. **Sealed cavities of open parts**, by a flood fill: on a grid of spacing ``h ≈ ε`` over the unit
   cube plus a margin (cropped to the mesh's box), the nodes within ``ε`` of an *opaque* face form a
   barrier (exact distances only in a narrow band found by rasterising the surface, so the cost grows
   with the area, not the volume); free nodes connected (6-neighbourhood) to the border are outside,
   the others enclosed (a cushion made of open patches, a cabinet behind opaque doors: what cannot
   be seen from outside is filled). A query point is on an enclosed side when the node just beyond
   the barrier on its side of its closest point ``c`` — ``c + d · max(u, ε + 0.9 h)``, ``d`` the
   direction from ``c`` to it — is enclosed; a pocket narrower than the grid resolves is sealed
   (:meth:`FillSdfField.side`). A mesh whose parts are all closed needs no fill: its field is its
   exact SDF minus ``ε``.

See-through faces (opacity below :data:`core.data.mesh_io.SEE_THROUGH_BELOW`: glass doors, panes) are
left out of the barrier but kept in the distances, so they become slabs too, while the fill passes
through them: a glass-fronted cabinet keeps its shelves instead of filling solid.

Every shape of a data set is dilated by the same ``ε`` (closed ones too), so a model trained on it
draws every surface ``ε`` outside the true one and an inward step along the normals recovers it
(:func:`core.meshing.extract_mesh`'s ``surface_offset``; :func:`mesh_step`: 0.9 ε, so that a sheet's
two faces stay apart).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.data.mesh_queries import aabb_tree, as_mesh_arrays, as_points, closest_points, face_normals, winding_numbers

__all__ = [
    "DEFAULT_EPSILON",
    "MESH_STEP_FRACTION",
    "mesh_step",
    "FillSdfSettings",
    "MeshClosure",
    "mesh_closure",
    "FillSdfField",
]

DEFAULT_EPSILON = 1.0 / 64.0
"""Half thickness ``ε`` of a sheet's slab (unit-sphere units): one voxel of the 128³ grid the viewer
meshes at, 0.74 of the 96³ evaluation grid's. Below about 0.75 voxel a slab breaks into pieces when
meshed; above the F-score's 1 % threshold (0.02-0.035 here) sheets would miss it."""
MESH_STEP_FRACTION = 0.9
"""Meshes of a dilated field step their vertices back by this share of ``ε``, not all of it: a sheet's
slab keeps 0.2 ε of thickness, so its two faces never coincide (coincident faces z-fight in every
renderer and make degenerate exports), while every surface sits within 0.1 ε (0.0016) of the true one."""
GRID_MARGIN = 1.05
"""Half edge of the fill grid: the unit-sphere frame keeps surfaces within 1 / 1.03, so its border
nodes are free and the fill starts from all of them."""
_BARRIER, _OUTSIDE, _ENCLOSED = 0, 1, 2
"""Fill labels of grid nodes (and of query points while they are classified)."""
_LATTICE_CHUNK = 2_000_000
"""Lattice points rasterised per batch (bounds the temporaries)."""


@dataclass(frozen=True)
class FillSdfSettings:
    """How the open-mesh field is built."""

    epsilon: float = DEFAULT_EPSILON
    """Half thickness of each sheet's slab (unit-sphere units); see :data:`DEFAULT_EPSILON`."""
    spacing_per_epsilon: float = 1.0
    """Fill grid spacing as a multiple of ``epsilon``. The barrier is ``2 ε`` thick, so spacings up to
    ``2 ε`` cannot leak through a sheet; ``ε`` keeps a margin for sheets at an angle to the grid."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and 1e-4 <= self.epsilon <= 0.2):
            raise ValueError(f"FillSdfSettings.epsilon must be in [1e-4, 0.2], got {self.epsilon}.")
        if not (math.isfinite(self.spacing_per_epsilon) and 0.25 <= self.spacing_per_epsilon <= 1.9):
            raise ValueError(
                f"FillSdfSettings.spacing_per_epsilon must be in [0.25, 1.9], got {self.spacing_per_epsilon}."
            )

    @property
    def spacing(self) -> float:
        return self.epsilon * self.spacing_per_epsilon

    @property
    def resolution(self) -> int:
        """Nodes per axis of the fill grid over ``[-GRID_MARGIN, GRID_MARGIN]``."""
        return int(math.ceil(2 * GRID_MARGIN / self.spacing)) + 1


@dataclass(frozen=True)
class MeshClosure:
    """Which parts of a mesh bound a solid, so that their winding number is a trustworthy sign."""

    closed: bool
    """Every part is closed: the winding sign alone is exact for the whole mesh."""
    reason: str
    """One line for the manifest: why the mesh is (not) closed."""
    closed_faces: np.ndarray
    """(F,) bool: faces of closed parts (welded vertex-connected components whose every edge is run as
    often one way as the other, with a positive volume)."""
    face_part: np.ndarray
    """(F,) int64: the part (welded vertex-connected component) of each face."""
    boundary_edges: int = 0
    """Edges with one face (the rims of open sheets)."""
    unbalanced_edges: int = 0
    """Edges with two faces or more that do not run as often one way along them as the other
    (inconsistent orientation, or an odd fan of faces)."""


def mesh_step(surface_offset: float) -> float:
    """How far meshes of a field dilated by ``surface_offset`` step their vertices back (:data:`MESH_STEP_FRACTION`)."""
    return MESH_STEP_FRACTION * max(0.0, float(surface_offset))


def mesh_closure(vertices: np.ndarray, faces: np.ndarray) -> MeshClosure:
    """Find the closed parts of a mesh: every edge run as often one way as the other, positive volume.

    That is the condition under which a part's winding number is an integer everywhere, so its sign
    is exact: overlapping closed parts and closed parts sharing an edge are fine; a part with one
    open rim is open. Vertices are welded by position first (within 1e-7 of the bounding-box
    diagonal): loaders split vertices along texture seams, which would otherwise count as rims.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    diag = float(np.linalg.norm(np.ptp(vertices, axis=0))) or 1.0
    _, weld = np.unique(np.round(vertices / (1e-7 * diag)).astype(np.int64), axis=0, return_inverse=True)
    f = weld.reshape(-1)[faces]
    n = int(f.max()) + 1
    graph = coo_matrix((np.ones(3 * len(f), np.int8), (f.reshape(-1), np.roll(f, 1, axis=1).reshape(-1))), shape=(n, n))
    _, vertex_part = connected_components(graph, directed=False)
    part = vertex_part[f[:, 0]]
    n_parts = int(part.max()) + 1
    proper = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    fp = f[proper]
    directed = np.concatenate([fp[:, [0, 1]], fp[:, [1, 2]], fp[:, [2, 0]]])
    edge_part = np.tile(part[proper], 3)
    _, edge_id, uses = np.unique(np.sort(directed, axis=1), axis=0, return_inverse=True, return_counts=True)
    edge_id = edge_id.reshape(-1)
    way = np.where(directed[:, 0] < directed[:, 1], 1.0, -1.0)
    balance = np.bincount(edge_id, weights=way, minlength=len(uses))
    open_edge = (uses == 1) | (balance != 0)
    open_part = np.zeros(n_parts, bool)
    open_part[edge_part[open_edge[edge_id]]] = True
    tri = vertices[faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    inverted = (np.bincount(part, weights=signed, minlength=n_parts) <= 0) & ~open_part
    closed_faces = ~(open_part | inverted)[part]
    boundary = int((uses == 1).sum())
    unbalanced = int(((uses > 1) & (balance != 0)).sum())
    counts = dict(closed_faces=closed_faces, face_part=part, boundary_edges=boundary, unbalanced_edges=unbalanced)
    if closed_faces.all():
        return MeshClosure(True, f"closed: {n_parts} part(s), every edge run both ways, outward oriented", **counts)
    details = [
        f"{n} {what}"
        for n, what in (
            (boundary, "boundary edge(s)"),
            (unbalanced, "inconsistently oriented or non-manifold edge(s)"),
            (int(inverted.sum()), "inside-out part(s)"),
        )
        if n
    ]
    n_open = int((open_part | inverted).sum())
    return MeshClosure(False, f"open: {n_open} of {n_parts} part(s) not closed ({', '.join(details)})", **counts)


def _lattice_points(vertices: np.ndarray, faces: np.ndarray, spacing: float):
    """Points on every triangle, no surface point farther than ``spacing`` from one (batches of (n, 3)).

    A triangle whose longest edge is ``L`` gets the barycentric lattice of ``k = ceil(L / spacing)``
    steps: any point of it lies within ``L / k / sqrt(3) <= spacing`` of a lattice point.
    """
    tri = vertices[faces]
    longest = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
    steps = np.maximum(1, np.ceil(longest / spacing)).astype(np.int64)
    for k in np.unique(steps):
        i, j = np.meshgrid(np.arange(k + 1), np.arange(k + 1), indexing="ij")
        keep = i + j <= k
        bary = np.stack([i[keep], j[keep], k - i[keep] - j[keep]], axis=1).astype(np.float64) / k
        group = tri[steps == k]
        per_chunk = max(1, _LATTICE_CHUNK // len(bary))
        for start in range(0, len(group), per_chunk):
            yield np.einsum("pk,tkd->tpd", bary, group[start : start + per_chunk]).reshape(-1, 3)


class FillSdfField:
    """The signed distance of one mesh's ``ε``-dilated surface (module docstring); build once, query many times.

    Parameters
    ----------
    vertices : (V, 3) float
        Unit-sphere frame.
    faces : (F, 3) int
    see_through : (F,) bool, optional
        Faces left out of the fill's barrier (glass); None: every face is opaque.
    settings : FillSdfSettings, optional
    closure : MeshClosure, optional
        :func:`mesh_closure` of this mesh when the caller already has it.

    Attributes
    ----------
    closure : MeshClosure
    enclosed_share : float
        Share of the fill grid's free nodes the fill did not reach (sealed cavities), 0 without a fill.
    """

    def __init__(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        see_through: np.ndarray | None = None,
        settings: FillSdfSettings | None = None,
        closure: MeshClosure | None = None,
    ) -> None:
        self.settings = settings or FillSdfSettings()
        self.vertices, self.faces = as_mesh_arrays(vertices, faces)
        self.closure = closure or mesh_closure(self.vertices, self.faces)
        self._tree = aabb_tree(self.vertices, self.faces)
        self._normals = face_normals(self.vertices, self.faces)
        opaque = np.ones(len(self.faces), bool) if see_through is None else ~np.asarray(see_through, bool)
        if opaque.shape != (len(self.faces),):
            raise ValueError(f"see_through must have one entry per face ({len(self.faces)}), got {opaque.shape}.")
        self.n_see_through = int((~opaque).sum())
        self.h = 2 * GRID_MARGIN / (self.settings.resolution - 1)
        self._closed = self._boxed(self.closure.closed_faces)
        self._closed_see_through = self._boxed(self.closure.closed_faces & ~opaque)
        # Only open parts need the fill: a closed part's inside is its winding number's business.
        self._enclosed = None if self.closure.closed else self._fill(opaque)
        free = getattr(self, "_free_count", 0)
        self.enclosed_share = float(self._enclosed.sum()) / free if self._enclosed is not None and free else 0.0

    def _boxed(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(faces, box low, box high) of the faces ``mask`` picks, or None: only points in the box can be inside."""
        if not mask.any():
            return None
        faces = self.faces[mask]
        corners = self.vertices[faces.reshape(-1)]
        return faces, corners.min(axis=0) - 1e-9, corners.max(axis=0) + 1e-9

    # -- the grid ------------------------------------------------------------------------------

    def _node_index(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) int64 nearest grid node of each point (may lie outside the grid)."""
        return np.rint((points + GRID_MARGIN) / self.h).astype(np.int64)

    def _fill(self, opaque: np.ndarray) -> np.ndarray:
        """(X, Y, Z) bool over the mesh's box: free nodes the fill from the box's border does not reach.

        The grid covers the mesh's bounding box and a margin wider than the barrier, so its border is
        free, outside, and everything beyond it is outside too: a flat or small object fills a
        fraction of the unit cube's grid.
        """
        from scipy import ndimage

        n = self.settings.resolution
        eps = self.settings.epsilon
        pad = int(math.ceil(eps / self.h)) + 3
        low = (self.vertices.min(axis=0) + GRID_MARGIN) / self.h
        high = (self.vertices.max(axis=0) + GRID_MARGIN) / self.h
        self._lo = np.clip(np.floor(low).astype(np.int64) - pad, 0, n - 1)
        hi = np.clip(np.ceil(high).astype(np.int64) + pad, 0, n - 1)
        self._shape = tuple(int(x) for x in hi - self._lo + 1)
        barrier = np.zeros(self._shape, bool)
        if opaque.any():
            faces = self.faces[opaque]
            marked = np.zeros(self._shape, bool)
            top = np.asarray(self._shape) - 1
            for points in _lattice_points(self.vertices, faces, 0.5 * self.h):
                idx = np.clip(self._node_index(points) - self._lo, 0, top)
                marked[idx[:, 0], idx[:, 1], idx[:, 2]] = True
            # A node within eps of the surface lies within eps + h/2 (lattice) + sqrt(3)/2 h (rounding)
            # of a marked node: every such node is in the band, whose exact distances decide.
            reach = int(math.ceil(eps / self.h + 0.5 + math.sqrt(3) / 2))
            band = ndimage.binary_dilation(marked, structure=np.ones((3, 3, 3), bool), iterations=reach)
            nodes = np.argwhere(band)
            distance = closest_points(self.vertices, faces, (nodes + self._lo) * self.h - GRID_MARGIN).distance
            barrier[tuple(nodes[distance < eps].T)] = True
        free = ~barrier
        self._free_count = int(free.sum())
        labels, _ = ndimage.label(free)  # 6-connected: the tightest fill, it squeezes through no corner
        border = np.unique(
            np.concatenate(
                [labels[[0, -1], :, :].ravel(), labels[:, [0, -1], :].ravel(), labels[:, :, [0, -1]].ravel()]
            )
        )
        enclosed = free & ~np.isin(labels, border)
        self._labels = np.where(enclosed, _ENCLOSED, np.where(free, _OUTSIDE, _BARRIER)).astype(np.int8)
        return enclosed

    # -- queries -------------------------------------------------------------------------------

    def closest(self, points: np.ndarray):
        """Exact closest points on every face (:class:`core.data.mesh_queries.ClosestPoints`)."""
        return closest_points(self.vertices, self.faces, points, tree=self._tree)

    def side(self, points: np.ndarray, closest) -> np.ndarray:
        """(N,) int8 :data:`_OUTSIDE`, :data:`_ENCLOSED` or :data:`_BARRIER` (a pocket the fill cannot see).

        Inside a closed part is enclosed: its winding number says so (the closed faces' winding
        numbers add up, so one sum serves every closed part, overlapping ones too). Where there is a
        fill it already knows the insides of opaque closed parts wider than its barrier, so the
        winding number is asked only near the surface (``u < ε + 0.9 h``, where the barrier hides
        them) and, everywhere, of see-through closed parts (the fill passes through those). Other
        points far enough from the surface take their nearest node's fill label, which is then
        free; nearer ones look just beyond the barrier on their side of their closest point ``c``. A
        probe that lands in the barrier again is in a pocket narrower than the grid resolves (two
        walls a voxel or two apart), which the barrier seals as it seals any gap under ``2 ε``.
        """
        label = np.full(len(points), _OUTSIDE, np.int8)
        if self._enclosed is None:  # every part closed: the winding sign alone
            self._mark_inside(label, points, np.arange(len(points)), self._closed)
            return label
        u = closest.distance
        clear = self.settings.epsilon + 0.9 * self.h  # a point this far from the surface has a free nearest node
        near = np.flatnonzero(u < clear)
        self._mark_inside(label, points, near, self._closed)
        self._mark_inside(label, points, np.flatnonzero(u >= clear), self._closed_see_through)
        own = np.flatnonzero((u >= clear) & (label != _ENCLOSED))
        label[own] = self._label_at(points[own])
        near = near[label[near] != _ENCLOSED]
        direction = points[near] - closest.point[near]
        length = np.linalg.norm(direction, axis=1, keepdims=True)
        direction = np.where(length > 1e-12, direction / np.maximum(length, 1e-300), self._normals[closest.face[near]])
        label[near] = self._label_at(closest.point[near] + direction * clear)
        return label

    def _mark_inside(
        self,
        label: np.ndarray,
        points: np.ndarray,
        which: np.ndarray,
        faces: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> None:
        """Set ``label[which]`` to enclosed where the closed ``faces`` (faces, box low, box high) wind around."""
        if faces is None or len(which) == 0:
            return
        closed, low, high = faces
        which = which[np.all((points[which] >= low) & (points[which] <= high), axis=1)]
        if len(which):
            label[which[winding_numbers(self.vertices, closed, points[which]) > 0.5]] = _ENCLOSED

    def _label_at(self, points: np.ndarray) -> np.ndarray:
        """(N,) int8 fill label of each point's nearest node (outside the grid: outside)."""
        node = self._node_index(points) - self._lo
        in_grid = np.all((node >= 0) & (node < np.asarray(self._shape)), axis=1)
        label = np.full(len(points), _OUTSIDE, np.int8)
        hit = node[in_grid]
        label[in_grid] = self._labels[hit[:, 0], hit[:, 1], hit[:, 2]]
        return label

    def signed_distance(self, points: np.ndarray, closest=None) -> np.ndarray:
        """(N,) float64 distance to the ``ε``-dilated surface at ``points``, negative inside."""
        points = as_points(points)
        if closest is None:
            closest = self.closest(points)
        u = closest.distance
        eps = self.settings.epsilon
        side = self.side(points, closest)
        # enclosed: the distance to the dilated surface around it; a sealed pocket: negative and zero
        # at its rim (no surface there: it touches the shell's zero from below); outside: u - eps
        return np.where(side == _ENCLOSED, -(u + eps), np.where(side == _BARRIER, -np.abs(u - eps), u - eps))
