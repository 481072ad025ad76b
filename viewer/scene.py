"""The 3D scene: owns every pyvista actor. UI thread only (VTK is not thread-safe).

The shape is one PolyData bound to one actor for the whole session; new meshes are copied into
it in place (``copy_from``), because re-adding actors on every slider step leaks and flickers
(pyvista #7808, pyvista-support #224). The scan cloud and the SDF slice follow the same rule.
Everything here takes plain numpy arrays (from :mod:`viewer.workers`) and never runs the network.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyvista as pv

from core.meshing.extract import MeshArrays

__all__ = ["Scene", "CAMERA_PRESETS", "LIGHT_BG", "DARK_BG", "polydata_faces", "is_software_gl", "mesh_polydata"]

# Direction from the focal point to the camera, and view-up. Data are Y-up (glTF, ShapeNet).
CAMERA_PRESETS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "iso": ((0.62, 0.45, 0.75), (0.0, 1.0, 0.0)),
    "front": ((0.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
    "side": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "back": ((0.0, 0.0, -1.0), (0.0, 1.0, 0.0)),
    "top": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
}
LIGHT_BG, DARK_BG = "#f4f4f2", "#26282c"
PLAIN_COLOUR = (0.78, 0.78, 0.80)
"""Surface colour when per-vertex colours are off (or the model has no colour head)."""
SLICE_LEVELS = np.linspace(-0.5, 0.5, 11)
"""Iso-distance lines drawn on the slice plane (unit-sphere frame), zero excluded (drawn bold)."""


SOFTWARE_GL_NAMES = ("llvmpipe", "softpipe", "swiftshader", "software rasterizer", "lavapipe")
"""OpenGL renderer strings of CPU rasterisers (Mesa under Xvfb, remote desktops, VMs)."""


def is_software_gl(plotter) -> bool:
    """Whether the plotter's OpenGL renderer is a CPU rasteriser (False when it cannot tell)."""
    try:
        report = plotter.render_window.ReportCapabilities() or ""
    except (AttributeError, RuntimeError):
        return False
    renderer = next((line for line in report.splitlines() if "renderer string" in line.lower()), "")
    return any(name in renderer.lower() for name in SOFTWARE_GL_NAMES)


SOFTWARE_GL_LIGHT_GAINS = (2.0, 1.4)
"""Headlight and key-light intensity gains of the two-light rig of interactive frames on a CPU rasteriser: the
shape's mean brightness about the five-light kit's (98 against 94 on the real model's first shape), its
pixels 4.5 levels of 255 from it on average."""


def polydata_faces(faces: np.ndarray) -> np.ndarray:
    """(F, 3) triangle indices → VTK's flat cell array ``[3, i, j, k, 3, ...]`` (int64)."""
    faces = np.asarray(faces, np.int64)
    return np.hstack([np.full((len(faces), 1), 3, np.int64), faces]).ravel()


def mesh_polydata(mesh: MeshArrays) -> pv.PolyData:
    """The VTK surface :meth:`Scene.show_mesh` draws: points, faces, normals and 8-bit colours.

    Building it copies every array into VTK (about 6 ms for the real model's 44,000-vertex 128³ mesh), so the
    mesher builds it on its own thread (:func:`viewer.workers.displayed_mesh_job`) and the UI thread only
    swaps it in: the frame that first draws a refined mesh is the UI thread's longest (issue 29: ≤ 50 ms).
    """
    poly = pv.PolyData(np.asarray(mesh.vertices, np.float32), polydata_faces(mesh.faces))
    poly.point_data["Normals"] = np.asarray(mesh.normals, np.float32)
    poly.point_data.active_normals_name = "Normals"
    rgb = mesh.colours if mesh.colours is not None else np.full((len(mesh.vertices), 3), PLAIN_COLOUR, np.float32)
    poly.point_data["rgb"] = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    poly.point_data.active_scalars_name = "rgb"
    return poly


class Scene:
    """Shape, comparison shape, scan points and SDF slice plane in one plotter.

    Parameters
    ----------
    plotter : pyvista plotter (``pyvistaqt.QtInteractor`` in the window, any plotter in tests).
    """

    def __init__(self, plotter) -> None:
        self.plotter = plotter
        self.shape = pv.PolyData()
        self.shape_actor: pv.Actor | None = None
        self.compare = pv.PolyData()
        self.compare_actor: pv.Actor | None = None
        self.scan = pv.PolyData()
        self.scan_actor: pv.Actor | None = None
        self._markers_actor: pv.Actor | None = None
        """The Edit panel's handles, targets and pins (made on first use)."""
        self.slice_grid: pv.StructuredGrid | None = None
        self.slice_lines = pv.PolyData()
        self.slice_zero = pv.PolyData()
        self.slice_actors: list = []
        self.colour_on = True
        self.wireframe = False
        self.has_mesh = False
        self.dark = False
        self.preset = "iso"
        self._hint_actor = None
        self._clip_plane: tuple[int, float] | None = None
        self._fxaa = bool(plotter.renderer.GetUseFXAA())
        self._software_gl: bool | None = None
        self._kit: list[tuple[pv.Light, float]] | None = None
        """The light kit's lights with their intensities, while the two-light rig is on (None: the full kit)."""
        self.set_background(False)
        self.set_camera("iso")

    def request_render(self) -> None:
        """Show the scene's changes: one repaint at the next turn of the event loop in a Qt view.

        ``plotter.render()`` draws a frame at every call, so a mesh and its camera set in one
        event cost two frames (about 2 × 20 ms with software OpenGL for a refined mesh; with
        pyvistaqt 0.13 every call even drew twice). Asking the widget to repaint lets Qt merge
        the changes of one event into one frame. Plotters without a Qt widget render at once.
        """
        widget = getattr(self.plotter, "interactor", None)
        if widget is not None and hasattr(widget, "update") and hasattr(widget, "isVisible"):
            widget.update()
        else:
            self.plotter.render()

    @property
    def closed(self) -> bool:
        """The plotter was closed (window shut down): late results must not touch VTK any more."""
        return bool(getattr(self.plotter, "_closed", False))

    # -- shape ---------------------------------------------------------------------------------
    def show_mesh(self, mesh: MeshArrays, poly: pv.PolyData | None = None) -> None:
        """Replace the shape in place; an empty mesh hides it and shows why.

        ``poly``: ``mesh`` already built as :func:`mesh_polydata` (on a worker thread), else built here.
        """
        if self.closed:
            return
        if mesh.is_empty:
            if self.shape_actor is not None:
                self.shape_actor.SetVisibility(False)
            self.has_mesh = False
            self.set_hint(f"no surface: {mesh.stats.get('reason', 'empty mesh')}")
            return
        self.shape.copy_from(poly if poly is not None else mesh_polydata(mesh))
        if self.shape_actor is None:
            self.shape_actor = self.plotter.add_mesh(
                self.shape,
                scalars="rgb",
                rgb=True,
                smooth_shading=True,
                name="shape",
                specular=0.25,
                specular_power=20,
                show_scalar_bar=False,
                render=False,
            )
            self._apply_style()
            self._clip(self._clip_plane)
        self.shape_actor.SetVisibility(True)
        self.has_mesh = True
        self.set_hint(None, render=False)
        self.shape.Modified()
        self.request_render()

    # -- picking (the Edit panel) --------------------------------------------------------------
    def _display_xy(self, x: float, y: float) -> tuple[float, float]:
        """Qt widget coordinates (logical pixels, y down) → VTK display coordinates (device pixels, y up)."""
        widget = getattr(self.plotter, "interactor", None)
        ratio = (
            float(widget.devicePixelRatioF()) if widget is not None and hasattr(widget, "devicePixelRatioF") else 1.0
        )
        height = self.plotter.render_window.GetSize()[1]
        return x * ratio, height - 1 - y * ratio

    def pick(self, x: float, y: float) -> tuple[np.ndarray, np.ndarray] | None:
        """The surface point and its normal under widget position (x, y), or None (no shape there)."""
        if self.closed or self.shape_actor is None or not self.has_mesh:
            return None
        import vtk

        picker = vtk.vtkCellPicker()
        picker.SetTolerance(0.0005)
        picker.PickFromListOn()
        picker.AddPickList(self.shape_actor)
        dx, dy = self._display_xy(x, y)
        if not picker.Pick(dx, dy, 0, self.plotter.renderer) or picker.GetCellId() < 0:
            return None
        return np.array(picker.GetPickPosition(), np.float64), np.array(picker.GetPickNormal(), np.float64)

    def point_on_view_plane(self, x: float, y: float, through: np.ndarray) -> np.ndarray:
        """The point under widget position (x, y) on the plane through ``through`` facing the camera."""
        renderer = self.plotter.renderer
        dx, dy = self._display_xy(x, y)
        ends = []
        for depth in (0.0, 1.0):
            renderer.SetDisplayPoint(dx, dy, depth)
            renderer.DisplayToWorld()
            w = renderer.GetWorldPoint()
            ends.append(np.array(w[:3], np.float64) / (w[3] or 1.0))
        camera = renderer.GetActiveCamera()
        normal = np.array(camera.GetDirectionOfProjection(), np.float64)
        ray = ends[1] - ends[0]
        denom = float(ray @ normal)
        if abs(denom) < 1e-12:
            return np.asarray(through, np.float64)
        t = float((np.asarray(through) - ends[0]) @ normal) / denom
        return ends[0] + t * ray

    def show_edit_markers(self, points: np.ndarray | None, colours: np.ndarray | None = None) -> None:
        """Handles, targets and pins of the Edit panel as points over the shape (None hides them)."""
        if self.closed:
            return
        actor = self._markers_actor
        if points is None or len(points) == 0:
            if actor is not None:
                actor.SetVisibility(False)
                self.request_render()
            return
        cloud = pv.PolyData(np.asarray(points, np.float32))
        rgb = np.zeros((len(points), 3), np.uint8) if colours is None else (np.clip(colours, 0, 1) * 255)
        cloud.point_data["rgb"] = np.asarray(rgb, np.uint8)
        if actor is None:
            self._markers = pv.PolyData()
            self._markers.copy_from(cloud)
            actor = self._markers_actor = self.plotter.add_mesh(
                self._markers,
                scalars="rgb",
                rgb=True,
                point_size=14,
                render_points_as_spheres=True,
                name="edit_markers",
                show_scalar_bar=False,
                render=False,
                pickable=False,
            )
        else:
            self._markers.copy_from(cloud)
            self._markers.Modified()
        actor.SetVisibility(True)
        self.request_render()

    def show_comparison(self, mesh: MeshArrays | None, offset: float = 2.1) -> None:
        """A second mesh beside the first (the baseline TTO result); None hides it."""
        if self.closed:
            return
        if mesh is None or mesh.is_empty:
            if self.compare_actor is not None:
                self.compare_actor.SetVisibility(False)
                self.request_render()
            return
        shifted = MeshArrays(
            mesh.vertices + np.array([offset, 0, 0], np.float32), mesh.faces, mesh.normals, mesh.colours, mesh.stats
        )
        self.compare.copy_from(mesh_polydata(shifted))
        if self.compare_actor is None:
            self.compare_actor = self.plotter.add_mesh(
                self.compare,
                scalars="rgb",
                rgb=True,
                smooth_shading=True,
                name="compare",
                show_scalar_bar=False,
                render=False,
            )
            self._clip(self._clip_plane)
        self.compare_actor.SetVisibility(True)
        self._apply_style()
        self.fit_camera(np.concatenate([self.shape.points, self.compare.points]) if self.has_mesh else None)

    def set_colour(self, on: bool) -> None:
        """Per-vertex RGB from the colour head (on) or plain grey with normal shading (off)."""
        if self.closed:
            return
        self.colour_on = on
        self._apply_style()
        self.request_render()

    def set_wireframe(self, on: bool) -> None:
        if self.closed:
            return
        self.wireframe = on
        self._apply_style()
        self.request_render()

    def _apply_style(self) -> None:
        for actor in (self.shape_actor, self.compare_actor):
            if actor is None:
                continue
            actor.mapper.SetScalarVisibility(self.colour_on)
            prop = actor.GetProperty()
            prop.SetColor(*PLAIN_COLOUR)
            prop.SetRepresentationToWireframe() if self.wireframe else prop.SetRepresentationToSurface()

    # -- antialiasing ------------------------------------------------------------------------
    def set_refined(self, refined: bool) -> None:
        """Antialias (FXAA) the refined mesh, never a preview, and on a CPU rasteriser neither.

        With Mesa's llvmpipe (Xvfb, VMs, remote desktops) FXAA is a second full-window pass
        that costs about as much as drawing the shape (about 16 of 42 ms per frame on 2 cores),
        and the UI thread cannot spare it while a drag or a fit streams meshes. Screenshots
        are antialiased in every case (:meth:`image`).
        """
        if self._software_gl is None and refined:
            self._software_gl = is_software_gl(self.plotter)
            self._set_light_rig(two_lights=self._software_gl)
        self._set_fxaa(refined and not self._software_gl)

    def _set_light_rig(self, two_lights: bool) -> None:
        """Light interactive frames with the light kit's headlight and key light alone on a CPU rasteriser.

        llvmpipe shades every pixel once per light: pyvista's kit of five (head, key, fill, two back lights)
        is most of a frame — on the real model's 128³ mesh (2 cores, Xvfb) 45 ms a frame, 33 ms with two,
        and the UI thread draws every preview of a drag and every refined mesh. The two kept are brightened
        (:data:`SOFTWARE_GL_LIGHT_GAINS`) to look about the same; screenshots use the full kit (:meth:`image`).
        """
        if two_lights == (self._kit is not None) or self.closed:
            return
        if not two_lights:
            for light, intensity in self._kit or []:
                light.SetIntensity(intensity)
                light.SwitchOn()
            self._kit = None
            return
        lights = [light for light in self.plotter.renderer.lights if light.GetSwitch()]
        heads = [light for light in lights if light.is_headlight]
        others = [light for light in lights if not light.is_headlight]
        if len(heads) != 1 or not others:
            return  # not the light kit this was measured on: leave the lights as they are
        key = max(others, key=lambda light: light.GetIntensity())
        self._kit = [(light, light.GetIntensity()) for light in lights]
        for light in lights:
            if light is not key and light is not heads[0]:
                light.SwitchOff()
        heads[0].SetIntensity(heads[0].GetIntensity() * SOFTWARE_GL_LIGHT_GAINS[0])
        key.SetIntensity(key.GetIntensity() * SOFTWARE_GL_LIGHT_GAINS[1])

    def _set_fxaa(self, on: bool) -> None:
        if on == self._fxaa or self.closed:
            return
        self._fxaa = on
        if on:
            self.plotter.enable_anti_aliasing("fxaa")
        else:
            self.plotter.disable_anti_aliasing()
        self.request_render()

    # -- scan and slice ------------------------------------------------------------------------
    def show_scan(self, points: np.ndarray | None, visible: bool = True) -> None:
        """The observed points of a scan as small red dots (updated in place)."""
        if self.closed:
            return
        if points is None or len(points) == 0:
            if self.scan_actor is not None:
                self.scan_actor.SetVisibility(False)
            self.request_render()
            return
        self.scan.copy_from(pv.PolyData(np.asarray(points, np.float32)))
        if self.scan_actor is None:
            self.scan_actor = self.plotter.add_points(
                self.scan, color="#d0302a", point_size=2, name="scan", render_points_as_spheres=False, render=False
            )
        self.scan_actor.SetVisibility(bool(visible))
        self.request_render()

    def show_slice(self, data: dict | None) -> None:
        """The SDF on a plane as a diverging colour map, iso-lines every 0.1 and the zero line bold.

        ``data``: ``{"grid": (n, n) float32 sdf, "coords": (n,) plane coordinates, "axis": 0|1|2,
        "position": float}`` from :func:`viewer.workers.slice_job`; None hides the slice.
        """
        if self.closed:
            return
        if data is None:
            for actor in self.slice_actors:
                actor.SetVisibility(False)
            self._clip(None)
            self.request_render()
            return
        grid, coords, axis = np.asarray(data["grid"], np.float32), np.asarray(data["coords"]), int(data["axis"])
        n = grid.shape[0]
        others = [i for i in range(3) if i != axis]
        a, b = np.meshgrid(coords, coords, indexing="ij")
        pts = np.zeros((n, n, 3), np.float32)
        pts[..., others[0]], pts[..., others[1]], pts[..., axis] = a, b, float(data["position"])
        new = pv.StructuredGrid(pts[..., 0], pts[..., 1], pts[..., 2])
        new.point_data["sdf"] = grid.ravel(order="F")
        if self.slice_grid is None:
            self.slice_grid = new
        else:
            self.slice_grid.copy_from(new)
        self.slice_grid.point_data.active_scalars_name = "sdf"
        levels = [v for v in SLICE_LEVELS if abs(v) > 1e-9 and grid.min() < v < grid.max()]
        self.slice_lines.copy_from(self.slice_grid.contour(levels, scalars="sdf") if levels else pv.PolyData())
        self.slice_zero.copy_from(
            self.slice_grid.contour([0.0], scalars="sdf") if grid.min() < 0 < grid.max() else pv.PolyData()
        )
        if not self.slice_actors:
            limit = 0.5
            self.slice_actors = [
                self.plotter.add_mesh(
                    self.slice_grid,
                    scalars="sdf",
                    cmap="RdBu",
                    clim=(-limit, limit),
                    opacity=0.9,
                    lighting=False,
                    name="slice",
                    show_scalar_bar=False,
                    render=False,
                ),
                self.plotter.add_mesh(
                    self.slice_lines,
                    color="#333333",
                    opacity=0.5,
                    line_width=1,
                    lighting=False,
                    name="slice_lines",
                    render=False,
                ),
                self.plotter.add_mesh(
                    self.slice_zero, color="black", line_width=3, lighting=False, name="slice_zero", render=False
                ),
            ]
        for actor in self.slice_actors:
            actor.SetVisibility(True)
        self._clip((axis, float(data["position"])))
        self.request_render()

    def _clip(self, plane: tuple[int, float] | None) -> None:
        """Cut away the shape's half on the + side of the slice plane (the side the presets look from),
        so the plane shows inside the shape; None restores the whole shape."""
        import vtk

        self._clip_plane = plane
        for actor in (self.shape_actor, self.compare_actor):
            if actor is None:
                continue
            mapper = actor.GetMapper()
            mapper.RemoveAllClippingPlanes()
            if plane is not None:
                axis, position = plane
                normal, origin = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
                normal[axis], origin[axis] = -1.0, position
                cut = vtk.vtkPlane()
                cut.SetNormal(*normal)
                cut.SetOrigin(*origin)
                mapper.AddClippingPlane(cut)

    @property
    def slice_visible(self) -> bool:
        return bool(self.slice_actors) and bool(self.slice_actors[0].GetVisibility())

    # -- text hint -----------------------------------------------------------------------------
    def set_hint(self, text: str | None, render: bool = True) -> None:
        """A line of text in the view (e.g. "open a checkpoint"); None removes it."""
        if self.closed:
            return
        if self._hint_actor is not None:
            self.plotter.remove_actor(self._hint_actor, render=False)
            self._hint_actor = None
        if text:
            colour = "#dddddd" if self.dark else "#444444"
            # A pixel position gives a fixed-size text actor (corner positions scale with the window);
            # pyvista doubles font_size, so 7 is about 14 px.
            self._hint_actor = self.plotter.add_text(
                text, position=(14, 14), font_size=7, color=colour, name="hint", render=False
            )
        if render:
            self.request_render()

    # -- camera, background, screenshots -------------------------------------------------------
    def set_camera(self, preset: str) -> None:
        """Look from the preset's direction and fit the current shape (the unit sphere when none)."""
        if preset not in CAMERA_PRESETS:
            raise ValueError(f"unknown camera preset {preset!r}; use one of {', '.join(CAMERA_PRESETS)}")
        self.preset = preset
        self.fit_camera()

    def fit_camera(self, points: np.ndarray | None = None) -> None:
        """Frame ``points`` (default: the shape) from the current preset, whatever the view's aspect.

        VTK's ``reset_camera`` fits the vertical field of view only, so a narrow view cuts the
        shape at the sides; here the bounding sphere fits both angles.
        """
        if self.closed:
            return
        if points is None and self.has_mesh and self.shape.n_points:
            points = np.asarray(self.shape.points)
        if points is None or len(points) == 0:
            centre, radius = np.zeros(3), 1.0
        else:
            lo, hi = points.min(axis=0), points.max(axis=0)
            centre = (lo + hi) / 2
            radius = max(float(np.linalg.norm(points - centre, axis=1).max()), 1e-3)
        direction, up = (np.asarray(v, np.float64) for v in CAMERA_PRESETS[self.preset])
        direction /= np.linalg.norm(direction)
        camera = self.plotter.camera
        half_v = math.radians(camera.view_angle) / 2
        width, height = self.plotter.window_size
        aspect = max(width, 1) / max(height, 1)
        half_h = math.atan(math.tan(half_v) * aspect)
        distance = 1.04 * radius / math.sin(min(half_v, half_h))
        self.plotter.camera_position = [tuple(centre + direction * distance), tuple(centre), tuple(up)]
        self.plotter.reset_camera_clipping_range()
        self.request_render()

    def set_background(self, dark: bool) -> None:
        if self.closed:
            return
        self.dark = dark
        self.plotter.set_background(DARK_BG if dark else LIGHT_BG)
        self.request_render()

    def camera_json(self) -> dict:
        cam = self.plotter.camera
        return {
            "position": list(cam.position),
            "focal_point": list(cam.focal_point),
            "view_up": list(cam.up),
            "view_angle": cam.view_angle,
        }

    def load_camera_json(self, data: dict) -> None:
        """Restore a view saved by :meth:`camera_json`; raise ValueError on anything else."""
        if self.closed:
            return
        try:
            position = tuple(float(v) for v in data["position"])
            focal = tuple(float(v) for v in data["focal_point"])
            up = tuple(float(v) for v in data["view_up"])
            if not (len(position) == len(focal) == len(up) == 3):
                raise ValueError("position, focal_point and view_up need 3 numbers each")
            self.plotter.camera_position = [position, focal, up]
            if "view_angle" in data:
                self.plotter.camera.view_angle = float(data["view_angle"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a camera file ({exc}); save one with File ▸ Save camera") from exc
        self.plotter.reset_camera_clipping_range()
        self.request_render()

    def screenshot(self, path: str | Path, scale: int = 1, transparent: bool = False) -> Path:
        """Write the view at ``scale`` times the view's pixel size (RGBA when transparent) in the
        format ``path``'s suffix names (:func:`viewer.image_files.save_image`: atomic, checked)."""
        from viewer.image_files import check_image_path, save_image

        path = check_image_path(path, "screenshot")
        hint = self._hint_actor
        if hint is not None:
            hint.SetVisibility(False)
        try:
            image = self.image(scale, transparent)
        finally:
            if hint is not None:
                hint.SetVisibility(True)
        return save_image(path, image)

    def image(self, scale: int = 1, transparent: bool = False) -> np.ndarray:
        """(H, W, 3|4) uint8 of the current view, antialiased and lit by the whole light kit whatever the view's."""
        view_fxaa, two_lights = self._fxaa, self._kit is not None
        self._set_fxaa(True)
        self._set_light_rig(two_lights=False)
        try:
            self.plotter.render()  # synchronous: the pixels are read right after
            return self.plotter.screenshot(
                None, transparent_background=transparent, return_img=True, scale=max(1, int(scale))
            )
        finally:
            self._set_fxaa(view_fxaa)
            self._set_light_rig(two_lights)
