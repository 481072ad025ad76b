"""Tests of core/data/mesh_io.py on the real files in tests/data/meshes (see tests/data/LICENSES.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from core.data.mesh_io import SEE_THROUGH_BELOW, LoadedMesh, load_mesh, sample_texture_bilinear
from core.utils.errors import MeshLoadError

MESHES = Path(__file__).parent / "data" / "meshes"

DUCK = MESHES / "obj_mtl_tex_duck" / "duck.obj"
CHAIR = MESHES / "obj_mtl_tex_chair_cc0" / "chair2.obj"
LAMP = MESHES / "obj_mtl_kd_lamp_cc0" / "desklamp.obj"
SPIDER = MESHES / "obj_spider_backslash_paths" / "spider.obj"
CUBE_VC = MESHES / "obj_vertexcolor" / "cube_with_vertexcolors.obj"
BOX_GLB = MESHES / "glb" / "BoxTextured.glb"


def _random_points(mesh: LoadedMesh, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n,) face indices and (n, 3) barycentric weights of random surface points."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, len(mesh.faces), n), rng.dirichlet([1.0, 1.0, 1.0], n)


def _face_centres(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return faces, np.full((len(faces), 3), 1.0 / 3.0)


# ------------------------------------------------------------------ formats and colour paths


@pytest.mark.parametrize(
    ("relpath", "colour_path"),
    [
        ("glb/BoxTextured.glb", "texture"),
        ("obj_vertexcolor/cube_with_vertexcolors.obj", "vertex"),
        ("obj_mtl_tex_duck/duck.obj", "texture"),
        ("obj_mtl_tex_chair_cc0/chair2.obj", "texture"),
        ("obj_mtl_kd_lamp_cc0/desklamp.obj", "material"),
        ("obj_spider_backslash_paths/spider.obj", "texture"),
        ("stl/Spider_ascii.stl", "default"),
        ("stl/Spider_binary.stl", "default"),
        ("ply/float-color.ply", "vertex"),
        ("ply/cube_binary.ply", "default"),
    ],
)
def test_each_file_loads_with_its_colour_path(relpath: str, colour_path: str) -> None:
    mesh = load_mesh(MESHES / relpath)
    assert mesh.colour_path == colour_path
    assert mesh.vertices.dtype == np.float64 and mesh.vertices.shape[1] == 3
    assert mesh.faces.dtype == np.int64 and mesh.faces.shape[1] == 3
    assert mesh.source == MESHES / relpath
    assert mesh.text is None
    # clean: every vertex referenced, no degenerate face
    assert np.array_equal(np.unique(mesh.faces), np.arange(len(mesh.vertices)))
    assert (mesh.face_areas > 0).all()
    assert len(mesh.face_part) == len(mesh.faces)
    assert len(mesh.part_colour_paths) == len(mesh.parts)
    colours = mesh.colours_at(*_random_points(mesh, 200))
    assert colours.shape == (200, 3) and colours.dtype == np.float32
    assert colours.min() >= 0.0 and colours.max() <= 1.0


def test_duck_texture_is_yellow() -> None:
    mesh = load_mesh(DUCK)
    mean = mesh.colours_at(*_random_points(mesh, 2000)).mean(axis=0)
    assert mean[0] > 0.7 and mean[1] > 0.5 and mean[2] < 0.3, mean
    assert mesh.warnings == []


def test_chair_has_red_texture_part_and_material_part() -> None:
    mesh = load_mesh(CHAIR)
    assert sorted(mesh.part_colour_paths) == ["material", "texture"]
    textured = mesh.part_colour_paths.index("texture")
    faces = np.nonzero(mesh.face_part == textured)[0]
    red = mesh.colours_at(*_face_centres(faces)).mean(axis=0)
    assert red[0] > red[1] + 0.3 and red[0] > red[2] + 0.3, red
    # the metal frame has no texture: its colour is the MTL's Kd 0.53 0.45 0.32
    metal = mesh.part_colour_paths.index("material")
    faces = np.nonzero(mesh.face_part == metal)[0][:10]
    metal_colours = mesh.colours_at(*_face_centres(faces))
    np.testing.assert_allclose(metal_colours, [[0.53, 0.45, 0.32]] * 10, atol=1 / 255)


def test_colour_only_mtl_gives_material_colours() -> None:
    mesh = load_mesh(LAMP)
    assert mesh.part_colour_paths == ["material", "material"]
    got = sorted(tuple(np.round(p.base_colour, 2)) for p in mesh.parts)
    assert got == sorted([(0.71, 0.57, 0.12), (0.9, 0.9, 0.9)])
    assert mesh.warnings == []


def test_vertex_colour_cube_matches_file_values() -> None:
    mesh = load_mesh(CUBE_VC)
    expected = {}
    for line in CUBE_VC.read_text().splitlines():
        if line.startswith("v "):
            x, y, z, r, g, b = map(float, line.split()[1:])
            expected[(x, y, z)] = (r, g, b)
    # at a face corner the colour is exactly that vertex's colour
    corner_bary = np.tile(np.eye(3), (len(mesh.faces), 1))
    faces = np.repeat(np.arange(len(mesh.faces)), 3)
    colours = mesh.colours_at(faces, corner_bary)
    positions = mesh.vertices[mesh.faces.reshape(-1)]
    for pos, col in zip(positions, colours, strict=True):
        np.testing.assert_allclose(col, expected[tuple(pos)], atol=1 / 255)
    assert len(np.unique(np.round(colours, 3), axis=0)) == 8


def test_vertex_colours_interpolate_barycentrically_exactly() -> None:
    mesh = load_mesh(CUBE_VC)
    face_index, bary = _random_points(mesh, 500, seed=3)
    expected = np.einsum("nk,nkc->nc", bary, mesh.vertex_colours[mesh.faces[face_index]])
    np.testing.assert_allclose(mesh.colours_at(face_index, bary), expected, atol=1e-6)


def test_float_colour_ply_is_blue() -> None:
    mesh = load_mesh(MESHES / "ply" / "float-color.ply")
    np.testing.assert_allclose(mesh.colours_at([0, 0], [[1, 0, 0], [0.2, 0.3, 0.5]]), [[0, 0, 1]] * 2)


def test_stl_ascii_and_binary_agree_and_are_welded() -> None:
    ascii_mesh = load_mesh(MESHES / "stl" / "Spider_ascii.stl")
    binary_mesh = load_mesh(MESHES / "stl" / "Spider_binary.stl")
    assert len(ascii_mesh.faces) == len(binary_mesh.faces)
    assert ascii_mesh.area == pytest.approx(binary_mesh.area, rel=1e-5)
    # STL is a triangle soup; equal positions are merged into shared vertices
    assert len(binary_mesh.vertices) < 3 * len(binary_mesh.faces)
    np.testing.assert_allclose(binary_mesh.colours_at(*_random_points(binary_mesh, 5)), 0.5)


def test_box_glb_texture_is_sampled_bilinearly() -> None:
    mesh = load_mesh(BOX_GLB)
    part = mesh.parts[0]
    assert part.colour_path == "texture" and part.texture.dtype == np.uint8 and part.texture.shape[2] == 3
    face_index, bary = _random_points(mesh, 300)
    colours = mesh.colours_at(face_index, bary)
    uv = np.einsum("nk,nkd->nd", bary, mesh.uv[mesh.faces[face_index]])
    np.testing.assert_allclose(colours, sample_texture_bilinear(part.texture, uv), atol=1e-6)
    assert len(np.unique(np.round(colours, 2), axis=0)) > 10  # a logo, not one flat colour


# ------------------------------------------------------------------ texture sampling


def _tiny_image() -> np.ndarray:
    """2x2 RGB: row 0 (top) red, green; row 1 blue, white."""
    return np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], dtype=np.uint8)


def test_bilinear_centre_is_mean_of_2x2() -> None:
    image = _tiny_image()
    got = sample_texture_bilinear(image, np.array([[0.5, 0.5]]))
    np.testing.assert_allclose(got[0], image.reshape(-1, 3).mean(axis=0) / 255.0, atol=1e-6)


def test_bilinear_texel_centres_v_flip_and_repeat() -> None:
    image = _tiny_image().astype(np.float32) / 255.0
    # v = 0 is the bottom row (OpenGL / trimesh convention)
    uv = np.array([[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25]])
    expected = image.reshape(-1, 3)
    np.testing.assert_allclose(sample_texture_bilinear(_tiny_image(), uv), expected, atol=1e-6)
    # REPEAT: whole-number shifts land on the same texels
    np.testing.assert_allclose(sample_texture_bilinear(_tiny_image(), uv + [3.0, -2.0]), expected, atol=1e-6)
    # at u = 0 the left and right columns blend across the wrap
    left_edge = sample_texture_bilinear(_tiny_image(), np.array([[0.0, 0.75]]))[0]
    np.testing.assert_allclose(left_edge, (image[0, 0] + image[0, 1]) / 2, atol=1e-6)


def test_glb_texture_multiplied_by_base_colour_factor(tmp_path: Path) -> None:
    tri = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    material = trimesh.visual.material.PBRMaterial(
        baseColorTexture=Image.fromarray(_tiny_image()), baseColorFactor=[128, 255, 255, 255]
    )
    tri.visual = trimesh.visual.TextureVisuals(uv=[[0.25, 0.75], [1.0, 0.0], [0.0, 1.0]], material=material)
    path = tmp_path / "factor.glb"
    tri.export(path)
    mesh = load_mesh(path)
    assert mesh.colour_path == "texture"
    # corner 0 sits on the top-left (red) texel centre; red is halved by the factor
    np.testing.assert_allclose(mesh.colours_at([0], [[1, 0, 0]])[0], [128 / 255, 0, 0], atol=1e-6)


# ------------------------------------------------------------------ scenes and other formats


def test_multi_node_glb_is_flattened_in_world_frame(tmp_path: Path) -> None:
    box = trimesh.creation.box(extents=[1, 1, 1])
    ball = trimesh.creation.icosphere(subdivisions=1, radius=0.5)
    pbr = trimesh.visual.material.PBRMaterial
    box.visual = trimesh.visual.TextureVisuals(material=pbr(baseColorFactor=[255, 0, 0, 255]))
    ball.visual = trimesh.visual.TextureVisuals(material=pbr(baseColorFactor=[0, 0, 255, 255]))
    tf = trimesh.transformations
    scene = trimesh.Scene()
    turn_and_shift = tf.translation_matrix([3, 0, 0]) @ tf.rotation_matrix(0.7, [0, 0, 1])
    scene.add_geometry(box, node_name="a", geom_name="box", transform=turn_and_shift)
    scene.add_geometry(ball, node_name="b", geom_name="ball", transform=tf.translation_matrix([0, -2, 1]))
    scene.add_geometry(box, node_name="a2", geom_name="box", transform=tf.translation_matrix([0, 0, 5]))
    path = tmp_path / "scene.glb"
    scene.export(path)

    mesh = load_mesh(path)
    assert len(mesh.parts) == 3  # the box geometry is instanced twice
    assert len(mesh.faces) == 2 * len(box.faces) + len(ball.faces)
    bounds = [mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)]
    np.testing.assert_allclose(bounds, scene.bounds, atol=1e-6)
    assert mesh.area == pytest.approx(scene.area, rel=1e-6)
    assert mesh.colour_path == "material"
    # the ball's faces are blue, the boxes' red, wherever the nodes put them
    colours = mesh.colours_at(*_face_centres(np.arange(len(mesh.faces))))
    ball_part = [i for i, p in enumerate(mesh.parts) if p.name == "ball"][0]
    is_ball = mesh.face_part == ball_part
    np.testing.assert_allclose(colours[is_ball], [[0, 0, 1]] * int(is_ball.sum()))
    np.testing.assert_allclose(colours[~is_ball], [[1, 0, 0]] * int((~is_ball).sum()))
    assert np.linalg.norm(mesh.vertices[mesh.faces[is_ball]].mean(axis=(0, 1)) - [0, -2, 1]) < 1e-6


def test_off_file_loads(tmp_path: Path) -> None:
    sphere = trimesh.creation.icosphere(subdivisions=1)
    path = tmp_path / "sphere.off"
    sphere.export(path)
    mesh = load_mesh(path)
    assert mesh.faces.shape == sphere.faces.shape
    assert mesh.area == pytest.approx(sphere.area)
    assert mesh.colour_path == "default"


def test_gltf_with_separate_buffers_loads(tmp_path: Path) -> None:
    box = trimesh.creation.box()
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(_tiny_image()))
    box.visual = trimesh.visual.TextureVisuals(uv=np.full((8, 2), 0.25), material=material)
    for name, data in box.export(file_type="gltf").items():  # model.gltf + external .bin buffers
        (tmp_path / name).write_bytes(data)
    mesh = load_mesh(tmp_path / "model.gltf")
    assert mesh.colour_path == "texture" and len(mesh.faces) == 12
    # every corner at uv (0.25, 0.25): the bottom-left (blue) texel centre
    np.testing.assert_allclose(mesh.colours_at([0], [[0.2, 0.3, 0.5]]), [[0, 0, 1]], atol=1e-6)


def test_face_colour_ply(tmp_path: Path) -> None:
    box = trimesh.creation.box()
    box.visual.face_colors = np.tile([[255, 0, 0, 255], [0, 255, 0, 255]], (6, 1))
    path = tmp_path / "faces.ply"
    box.export(path)
    mesh = load_mesh(path)
    assert mesh.colour_path == "face"
    got = mesh.colours_at([0, 1], [[0.2, 0.3, 0.5], [1, 0, 0]])
    np.testing.assert_allclose(got, [[1, 0, 0], [0, 1, 0]])


# ------------------------------------------------------------------ texture file lookup


def test_backslash_texture_paths_are_resolved() -> None:
    mesh = load_mesh(SPIDER)
    assert mesh.part_colour_paths == ["texture"] * len(mesh.parts)
    assert mesh.warnings == []


def test_missing_texture_falls_back_to_material_with_warning(tmp_path: Path) -> None:
    for name in ("spider.obj", "spider.mtl", "SpiderTex.jpg"):  # the other four textures are missing
        shutil.copy(SPIDER.parent / name, tmp_path / name)
    mesh = load_mesh(tmp_path / "spider.obj")
    paths = dict(zip([p.name for p in mesh.parts], mesh.part_colour_paths, strict=True))
    assert paths["HLeibTex"] == "texture"
    assert paths["Skin"] == "material"
    skin = mesh.parts[[p.name for p in mesh.parts].index("Skin")]
    np.testing.assert_allclose(skin.base_colour, [0.827451, 0.792157, 0.772549], atol=1 / 255)
    assert any("wal67ar_small.jpg" in w for w in mesh.warnings)
    assert all("SpiderTex" not in w for w in mesh.warnings)


def test_texture_found_case_insensitively(tmp_path: Path) -> None:
    shutil.copy(DUCK, tmp_path / "duck.obj")
    shutil.copy(DUCK.with_suffix(".mtl"), tmp_path / "duck.mtl")
    shutil.copy(DUCK.parent / "duckCM.png", tmp_path / "DUCKCM.PNG")
    mesh = load_mesh(tmp_path / "duck.obj")
    assert mesh.colour_path == "texture" and mesh.warnings == []


# ------------------------------------------------------------------ cleaning and helpers


def test_degenerate_faces_and_unused_vertices_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "messy.obj"
    path.write_text(
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nv 2 0 0\nv 9 9 9\n"
        "f 1 2 3\nf 2 4 3\nf 1 2 5\nf 1 1 2\n"  # the last two are degenerate (collinear, repeated)
    )
    mesh = load_mesh(path)
    assert len(mesh.faces) == 2
    assert len(mesh.vertices) == 4  # (2,0,0) and (9,9,9) are no longer referenced
    assert mesh.area == pytest.approx(1.0)
    np.testing.assert_allclose(mesh.face_normals, [[0, 0, 1], [0, 0, 1]])


def test_transformed_keeps_faces_and_colours() -> None:
    mesh = load_mesh(DUCK)
    moved = mesh.transformed(mesh.vertices * 2.0 + 1.0)
    assert moved.faces is mesh.faces and moved.source == mesh.source
    assert moved.area == pytest.approx(4.0 * mesh.area)
    points = _random_points(mesh, 100)
    np.testing.assert_array_equal(moved.colours_at(*points), mesh.colours_at(*points))
    np.testing.assert_allclose(moved.face_normals, mesh.face_normals, atol=1e-9)
    with pytest.raises(ValueError):
        mesh.transformed(mesh.vertices[:-1])


# ------------------------------------------------------------------ bad input


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    files["empty"] = tmp_path / "empty.obj"
    files["empty"].write_bytes(b"")
    files["truncated"] = tmp_path / "truncated.glb"
    data = BOX_GLB.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["point_cloud"] = tmp_path / "cloud.ply"
    trimesh.PointCloud(np.random.default_rng(0).random((20, 3))).export(files["point_cloud"])
    files["no_faces"] = tmp_path / "nofaces.obj"
    files["no_faces"].write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    files["nan"] = tmp_path / "nan.obj"
    files["nan"].write_text("v 0 0 0\nv 1 0 nan\nv 0 1 0\nv 1 1 0\nf 1 2 3\nf 2 4 3\n")
    files["inf"] = tmp_path / "inf.obj"
    files["inf"].write_text("v 0 0 0\nv 1 0 inf\nv 0 1 0\nf 1 2 3\n")
    files["zero_area"] = tmp_path / "flat.obj"
    files["zero_area"].write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nv 3 0 0\nf 1 2 3\nf 2 3 4\nf 1 1 2\n")
    files["unsupported"] = tmp_path / "model.fbx"
    files["unsupported"].write_bytes(b"Kaydara FBX Binary")
    files["missing"] = tmp_path / "does_not_exist.obj"
    files["folder"] = tmp_path / "folder.obj"
    files["folder"].mkdir()
    return files


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "does not exist"),
        ("empty", "empty"),
        ("truncated", "could not read"),
        ("point_cloud", "no triangle faces"),
        ("no_faces", "no triangle faces"),
        ("nan", "NaN or infinite"),
        ("inf", "NaN or infinite"),
        ("zero_area", "zero area"),
        ("unsupported", "not supported"),
        ("folder", "not a regular file"),
    ],
)
def test_bad_input_raises_mesh_load_error(tmp_path: Path, case: str, reason: str) -> None:
    path = _bad_files(tmp_path)[case]
    with pytest.raises(MeshLoadError) as info:
        load_mesh(path)
    message = str(info.value)
    assert path.name in message and reason in message and "Fix:" in message


def test_see_through_parts_are_read_from_mtl_dissolve_and_gltf_blend(tmp_path: Path) -> None:
    """MTL ``d`` (or ``Tr``, its complement) and glTF BLEND alpha give a part's opacity; glass is see-through."""
    (tmp_path / "cab.mtl").write_text(
        "newmtl wood\nKd 0.6 0.4 0.2\nd 1.0\n"
        "newmtl glass\nKd 0.8 0.9 1.0\nd 0.25\n"
        "newmtl tinted\nKd 0.5 0.5 0.5\nTr 0.6\n"
    )
    (tmp_path / "cab.obj").write_text(
        "mtllib cab.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1\nv 1 0 1\nv 1 1 1\n"
        "usemtl wood\nf 1 2 3\nusemtl glass\nf 1 3 4\nusemtl tinted\nf 5 6 7\n"
    )
    mesh = load_mesh(tmp_path / "cab.obj")
    opacity = {p.name: p.opacity for p in mesh.parts}
    by_colour = sorted(round(o, 2) for o in opacity.values())
    assert by_colour == [0.25, 0.4, 1.0]
    assert ((mesh.face_opacity < SEE_THROUGH_BELOW).sum()) == 2
    box = trimesh.creation.box()
    box.visual = trimesh.visual.TextureVisuals(
        material=trimesh.visual.material.PBRMaterial(baseColorFactor=[200, 200, 255, 60], alphaMode="BLEND")
    )
    box.export(tmp_path / "glass.glb")
    assert load_mesh(tmp_path / "glass.glb").face_opacity.max() == pytest.approx(60 / 255, abs=1e-3)
    box.visual = trimesh.visual.TextureVisuals(
        material=trimesh.visual.material.PBRMaterial(baseColorFactor=[200, 200, 255, 60], alphaMode="OPAQUE")
    )
    box.export(tmp_path / "opaque.glb")
    assert load_mesh(tmp_path / "opaque.glb").face_opacity.min() == 1.0
