"""The 3D scene: owns every pyvista actor. UI thread only (pyvistaqt aborts otherwise).

The shape is one PolyData bound to one actor for the whole session; new meshes are copied into
it in place (``copy_from``), because re-adding actors leaks and flickers (pyvista #7808,
pyvista-support #224).
"""
from __future__ import annotations


from pathlib import Path

import numpy as np
import pyvista as pv

from core.meshing.extract import MeshArrays

__all__ = ["Scene", "CAMERA_PRESETS"]

# Data are Y-up (glTF); views look at the origin.
CAMERA_PRESETS: dict[str, tuple] = {
    "iso": ((2.2, 1.6, 2.6), (0, 0, 0), (0, 1, 0)),
    "front": ((0, 0, 3.6), (0, 0, 0), (0, 1, 0)),
    "side": ((3.6, 0, 0), (0, 0, 0), (0, 1, 0)),
    "top": ((0, 3.6, 0.001), (0, 0, 0), (0, 0, -1)),
}
LIGHT_BG, DARK_BG = "#f4f4f2", "#26282c"


def _polydata(mesh: MeshArrays) -> pv.PolyData:
    faces = np.hstack([np.full((len(mesh.faces), 1), 3, np.int64), mesh.faces]).ravel()
    poly = pv.PolyData(np.asarray(mesh.vertices, np.float32), faces)
    poly.point_data["Normals"] = np.asarray(mesh.normals, np.float32)
    poly.point_data.active_normals_name = "Normals"
    rgb = mesh.colours if mesh.colours is not None else np.full((len(mesh.vertices), 3), 0.75, np.float32)
    poly.point_data["rgb"] = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return poly


class Scene:
    """Shape, comparison shape, scan points and slice plane in one plotter."""

    def __init__(self, plotter) -> None:
        self.plotter = plotter
        self.shape = pv.PolyData()
        self.shape_actor = None
        self.compare = pv.PolyData()
        self.compare_actor = None
        self.scan_actor = None
        self.slice_actors: list = []
        self.colour_on = True
        self.wireframe = False
        self.has_mesh = False
        self.set_background(False)
        self.set_camera("iso")

    # -- shape ---------------------------------------------------------------------------------
    def show_mesh(self, mesh: MeshArrays) -> None:
        if mesh.is_empty:
            if self.shape_actor is not None:
                self.shape_actor.SetVisibility(False)
            self.has_mesh = False
            self.plotter.render()
            return
        new = _polydata(mesh)
        self.shape.copy_from(new)
        if self.shape_actor is None:
            self.shape_actor = self.plotter.add_mesh(self.shape, scalars="rgb", rgb=True, smooth_shading=True,
                                                     name="shape", specular=0.2, show_scalar_bar=False)
            self._apply_style()
        else:
            self.shape.point_data.active_scalars_name = "rgb"
        self.shape_actor.SetVisibility(True)
        self.has_mesh = True
        self.shape.Modified()
        self.plotter.render()

    def show_comparison(self, mesh: MeshArrays | None, offset: float = 2.2) -> None:
        """A second mesh beside the first (e.g. the baseline TTO result); None hides it."""
        if mesh is None or mesh.is_empty:
            if self.compare_actor is not None:
                self.compare_actor.SetVisibility(False)
            self.plotter.render()
            return
        shifted = MeshArrays(mesh.vertices + np.array([offset, 0, 0], np.float32), mesh.faces, mesh.normals,
                             mesh.colours, mesh.stats)
        self.compare.copy_from(_polydata(shifted))
        if self.compare_actor is None:
            self.compare_actor = self.plotter.add_mesh(self.compare, scalars="rgb", rgb=True, smooth_shading=True,
                                                       name="compare", show_scalar_bar=False)
        self.compare_actor.SetVisibility(True)
        self._apply_style()
        self.plotter.render()

    def set_colour(self, on: bool) -> None:
        self.colour_on = on
        self._apply_style()
        self.plotter.render()

    def set_wireframe(self, on: bool) -> None:
        self.wireframe = on
        self._apply_style()
        self.plotter.render()

    def _apply_style(self) -> None:
        for actor in (self.shape_actor, self.compare_actor):
            if actor is None:
                continue
            actor.mapper.SetScalarVisibility(self.colour_on)
            prop = actor.GetProperty()
            prop.SetColor(0.78, 0.78, 0.8)
            prop.SetRepresentationToWireframe() if self.wireframe else prop.SetRepresentationToSurface()

    # -- scan and slice ------------------------------------------------------------------------
    def show_scan(self, points: np.ndarray | None, visible: bool = True) -> None:
        if self.scan_actor is not None:
            self.plotter.remove_actor(self.scan_actor, render=False)
            self.scan_actor = None
        if points is not None and len(points) and visible:
            cloud = pv.PolyData(np.asarray(points, np.float32))
            self.scan_actor = self.plotter.add_points(cloud, color="#d0302a", point_size=3, name="scan",
                                                      render_points_as_spheres=False)
        self.plotter.render()

    def show_slice(self, data: dict | None) -> None:
        for actor in self.slice_actors:
            self.plotter.remove_actor(actor, render=False)
        self.slice_actors = []
        if data is not None:
            grid = data["grid"]
            n = grid.shape[0]
            coords = data["coords"]
            axis = data["axis"]
            others = [i for i in range(3) if i != axis]
            a, b = np.meshgrid(coords, coords, indexing="ij")
            pts = np.zeros((n, n, 3), np.float32)
            pts[..., others[0]], pts[..., others[1]], pts[..., axis] = a, b, data["position"]
            sgrid = pv.StructuredGrid(pts[..., 0], pts[..., 1], pts[..., 2])
            sgrid.point_data["sdf"] = grid.ravel(order="F")
            limit = max(0.05, float(np.abs(grid).max()))
            self.slice_actors.append(self.plotter.add_mesh(sgrid, scalars="sdf", cmap="RdBu", clim=(-limit, limit),
                                                           opacity=0.85, name="slice", show_scalar_bar=False))
            zero = sgrid.contour([0.0], scalars="sdf")
            if zero.n_points:
                self.slice_actors.append(self.plotter.add_mesh(zero, color="black", line_width=3, name="slice_zero"))
        self.plotter.render()

    # -- camera, background, screenshots -------------------------------------------------------
    def set_camera(self, preset: str) -> None:
        """Look from the preset's direction and fit the unit sphere the shapes live in."""
        self.plotter.camera_position = CAMERA_PRESETS[preset]
        self.plotter.reset_camera(bounds=(-1.0, 1.0, -1.0, 1.0, -1.0, 1.0))
        self.plotter.camera.zoom(1.15)
        self.plotter.reset_camera_clipping_range()
        self.plotter.render()

    def set_background(self, dark: bool) -> None:
        self.plotter.set_background(DARK_BG if dark else LIGHT_BG)
        self.plotter.render()

    def camera_json(self) -> dict:
        cam = self.plotter.camera
        return {"position": list(cam.position), "focal_point": list(cam.focal_point), "view_up": list(cam.up),
                "view_angle": cam.view_angle}

    def load_camera_json(self, data: dict) -> None:
        try:
            self.plotter.camera_position = (tuple(data["position"]), tuple(data["focal_point"]), tuple(data["view_up"]))
            if "view_angle" in data:
                self.plotter.camera.view_angle = float(data["view_angle"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a camera file: {exc}") from exc
        self.plotter.render()

    def screenshot(self, path: str | Path, scale: int = 1, transparent: bool = False) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.plotter.render()
        image = self.plotter.screenshot(None, transparent_background=transparent, return_img=True, scale=max(1, int(scale)))
        from PIL import Image

        tmp = path.with_name(path.name + ".part")
        Image.fromarray(image).save(tmp, format="PNG")
        tmp.replace(path)
        return path

    def image(self) -> np.ndarray:
        self.plotter.render()
        return self.plotter.screenshot(None, return_img=True)



