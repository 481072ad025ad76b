"""Mesh-file suffixes have one owner, :data:`core.data.mesh_io.MESH_SUFFIXES`: the loader, the folder source,
TTO's input dispatch and the viewer's command line accept the same files."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from core.data import mesh_io
from core.data.mesh_io import MESH_SUFFIXES, has_mesh_suffix, load_mesh
from core.data.sources.folder import folder_jobs
from core.tto import observations
from core.tto.observations import POINT_CLOUD_SUFFIXES, load_observation
from core.utils.errors import MeshLoadError, ObservationError, SourceError


def test_the_mesh_suffixes_are_the_loaders():
    assert MESH_SUFFIXES == (".obj", ".glb", ".gltf", ".ply", ".stl", ".off")
    assert observations.MESH_SUFFIXES is mesh_io.MESH_SUFFIXES  # re-used, not a copy
    assert not set(POINT_CLOUD_SUFFIXES) & set(MESH_SUFFIXES)  # a .ply is told apart by its faces instead


@pytest.mark.parametrize("name", ["a.obj", "b.GLB", "c.gltf", "d.Ply", "e.stl", "f.OFF", "dir.x/g.obj"])
def test_has_mesh_suffix_accepts_every_mesh_suffix_in_any_case(name):
    assert has_mesh_suffix(name)
    assert has_mesh_suffix(Path(name))


@pytest.mark.parametrize("name", ["a.xyz", "b.npz", "c.pt", "obj", "d.obj.bak", "e"])
def test_has_mesh_suffix_refuses_the_rest(name):
    assert not has_mesh_suffix(name)


def test_load_mesh_names_the_suffixes_it_reads(tmp_path):
    path = tmp_path / "cloud.xyz"
    path.write_text("0 0 0\n")
    with pytest.raises(MeshLoadError, match=r"\.obj, \.glb, \.gltf, \.ply, \.stl, \.off"):
        load_mesh(path)


def test_folder_source_lists_every_mesh_suffix_and_nothing_else(tmp_path):
    chair = tmp_path / "chair"
    chair.mkdir()
    for i, suffix in enumerate(MESH_SUFFIXES):
        (chair / f"m{i}{suffix.upper() if i % 2 else suffix}").write_bytes(b"x")
    for name in ("notes.txt", "cloud.xyz", "samples.npz"):
        (chair / name).write_bytes(b"x")
    jobs = folder_jobs(tmp_path)
    assert sorted(job.source.suffix.lower() for job in jobs) == sorted(MESH_SUFFIXES)


def test_folder_source_error_names_the_suffixes(tmp_path):
    (tmp_path / "chair").mkdir()
    with pytest.raises(SourceError, match=r"no mesh files \(\.obj, \.glb, \.gltf, \.ply, \.stl, \.off\)"):
        folder_jobs(tmp_path)


def test_tto_input_error_names_the_mesh_suffixes(tmp_path):
    path = tmp_path / "shape.abc"
    path.write_bytes(b"x")
    with pytest.raises(ObservationError, match=r"Give a mesh \(\.obj, \.glb, \.gltf, \.ply, \.stl, \.off\)"):
        load_observation(path)


def test_view_command_draws_every_mesh_suffix_as_a_mesh():
    pytest.importorskip("pyvista")
    from viewer import view_command

    meshes = [Path(f"m{i}{suffix.upper() if i % 2 else suffix}") for i, suffix in enumerate(MESH_SUFFIXES)]
    assert view_command._split_inputs(meshes) == (None, meshes)
    assert view_command._split_inputs([Path("run/latest.pt")]) == (Path("run/latest.pt"), [])
    with pytest.raises(ValueError, match="not both"):
        view_command._split_inputs([Path("run/latest.pt"), Path("a.obj")])
    parser = argparse.ArgumentParser()
    view_command.add_arguments(parser)
    assert all(suffix in parser.format_help() for suffix in MESH_SUFFIXES)
