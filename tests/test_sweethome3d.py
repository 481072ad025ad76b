"""Sweet Home 3D furniture libraries as a data source, on a tiny .sh3f the tests build.

The library is made from the real Sweet Home 3D models in tests/data/meshes (chair2 with its
texture, desklamp with colour-only materials; both CC0 from Debian's sweethome3d-furniture).
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.data.mesh_io import load_mesh
from core.data.sources.sweethome3d import (
    DEFAULT_LIBRARY_DIR,
    RESERVED_DIGESTS,
    CatalogItem,
    ClassMap,
    SweetHome3DConfig,
    read_digests,
    read_library,
    read_properties,
    sweethome3d_jobs,
    transform_obj,
)
from core.utils.errors import SourceError

DATA = Path(__file__).parent / "data" / "meshes"
SHARED_RESERVED = Path(__file__).resolve().parents[2] / "shared" / "reserved" / RESERVED_DIGESTS.name

# Rotation that stands a model lying along -z upright: (x, y, z) -> (x, z, -y), row-major.
ROTATION = "1 0 0 0 0 1 0 -1 0"

CATALOGUE = """# test catalogue
id=Test#Library
name=Test library
id#1=Test#chair2
name#1=Chair
tags#1=Blend Swap, seat
category#1=Living room
creator#1=Ingoenius
model#1=/test/chair2/chair2.obj
multiPartModel#1=true
width#1=50
depth#1=40
height#1=90
modelRotation#1={rotation}
id#2=Test#desklamp
name#2=Desk lamp
tags#2=light, \\
  office
category#2=Lights
creator#2=Blend Swap
model#2=/test/desklamp/desklamp.obj
multiPartModel#2=true
width#2=20
depth#2=30
height#2=45
id#3=Test#chair2copy
name#3=Chair
tags#3=seat
category#3=Living room
creator#3=Someone
model#3=/test/chair2copy/chair2.obj
multiPartModel#3=true
width#3=50
depth#3=40
height#3=90
id#4=Test#butter
name#4=Butter caf\\u00e9
category#4=Kitchen
creator#4=Someone
model#4=/test/butter/butter.obj
multiPartModel#4=true
width#4=5
depth#4=5
height#4=5
"""

CC0_LICENCE = "LICENSE\n\nThis file is under the Creative Commons Zero (Public Domain)\nlicense\n"


def _with_comment(path: Path, comment: str) -> bytes:
    """An OBJ file's bytes with one comment line more: another digest, the same geometry.

    The real chair2 and desklamp are on the project's reserved list (they come from the same
    furniture package), so the test library carries edited copies.
    """
    return f"# {comment}\n".encode() + path.read_bytes()


def _chair_copy_bytes() -> bytes:
    return _with_comment(DATA / "obj_mtl_tex_chair_cc0" / "chair2.obj", "a copy that the test reserves")


def build_library(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Test.sh3f"
    chair = DATA / "obj_mtl_tex_chair_cc0"
    lamp = DATA / "obj_mtl_kd_lamp_cc0"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("PluginFurnitureCatalog.properties", CATALOGUE.format(rotation=ROTATION))
        archive.writestr("PluginFurnitureCatalog_de.properties", "name#1=Stuhl\nname#2=Schreibtischlampe\n")
        archive.writestr("LICENSE.TXT", CC0_LICENCE)
        archive.writestr("test/chair2/chair2.obj", _with_comment(chair / "chair2.obj", "test library"))
        for name in ("chair2.mtl", "NY_Chaise_Red.jpg"):
            archive.write(chair / name, f"test/chair2/{name}")
        archive.writestr("test/chair2/LICENSE.html", "<p>CC0</p>")
        archive.writestr("test/chair2copy/chair2.obj", _chair_copy_bytes())
        for name in ("chair2.mtl", "NY_Chaise_Red.jpg"):
            archive.write(chair / name, f"test/chair2copy/{name}")
        archive.writestr("test/desklamp/desklamp.obj", _with_comment(lamp / "desklamp.obj", "test library"))
        archive.write(lamp / "desklamp.mtl", "test/desklamp/desklamp.mtl")
        archive.writestr("test/butter/butter.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    return path


@pytest.fixture()
def library_dir(tmp_path: Path) -> Path:
    build_library(tmp_path / "libs")
    return tmp_path / "libs"


@pytest.fixture()
def reserved_list(tmp_path: Path) -> Path:
    path = tmp_path / "holdout.sha256"
    path.write_text(f"# my hold-out list\n{hashlib.sha256(_chair_copy_bytes()).hexdigest()}  chair2.obj\n")
    return path


def test_properties_parser_handles_escapes_and_continuations():
    props = read_properties("# c\n! c\na=1\nb : two words\nc\\:d=x\\ty\nlong=first, \\\n    second\nu=caf\\u00e9\n")
    assert props == {"a": "1", "b": "two words", "c:d": "x\ty", "long": "first, second", "u": "café"}


def test_library_catalogue_licence_and_translations(library_dir: Path):
    library = read_library(library_dir / "Test.sh3f")
    assert library.licence == "CC0-1.0"
    by_id = {item.item_id: item for item in library.items}
    chair = by_id["Test#chair2"]
    assert chair.size_cm == (50.0, 90.0, 40.0)  # (width, height, depth)
    assert chair.rotation == tuple(float(v) for v in ROTATION.split())
    assert chair.names == {"de": "Stuhl"}
    assert by_id["Test#desklamp"].tags == ("light", "office")
    assert by_id["Test#butter"].name == "Butter café"


def test_source_skips_reserved_maps_classes_and_reports(library_dir: Path, reserved_list: Path, tmp_path: Path):
    config = SweetHome3DConfig(
        cache_dir=tmp_path / "cache", library_dir=library_dir, exclude_hashes=(reserved_list,), test_fraction=0.0
    )
    jobs, report = sweethome3d_jobs(config)
    assert report.items_seen == 4
    assert report.reserved_skipped == 1
    assert sorted((j.class_name, j.extra["item_id"]) for j in jobs) == [
        ("chair", "Test#chair2"),
        ("lamp", "Test#desklamp"),
    ]
    # the reserved item is counted, never named anywhere
    assert all("chair2copy" not in str(row) for row in report.unmapped + report.failures)
    assert [row["name"] for row in report.unmapped] == ["Butter café"]
    chair = next(j for j in jobs if j.class_name == "chair")
    assert chair.text == "Chair — seat; Living room"
    assert chair.extra["licence"] == "CC0-1.0" and chair.extra["creator"] == "Ingoenius"
    assert chair.extra["prompts"] == ["Chair", "Stuhl"]
    assert "3 reserved" not in report.summary_line() and "1 reserved models skipped" in report.summary_line()


def test_rotation_and_catalogue_size_are_applied_and_texture_resolves(
    library_dir: Path, reserved_list: Path, tmp_path: Path
):
    jobs, _ = sweethome3d_jobs(
        SweetHome3DConfig(
            cache_dir=tmp_path / "cache", library_dir=library_dir, classes=("chair",), exclude_hashes=(reserved_list,)
        )
    )
    (chair,) = jobs
    assert (chair.source.parent / "NY_Chaise_Red.jpg").is_file()
    assert not (chair.source.parent / "LICENSE.html").exists()
    mesh = load_mesh(chair.source)
    extent = mesh.vertices.max(axis=0) - mesh.vertices.min(axis=0)
    np.testing.assert_allclose(extent, [50.0, 90.0, 40.0], rtol=1e-4)
    assert "texture" in mesh.part_colour_paths

    # the rotation really happened: vertex by vertex, rotate, centre the box, scale it to the catalogue size
    def vertices(text: str) -> np.ndarray:
        return np.array([[float(v) for v in line.split()[1:4]] for line in text.splitlines() if line.startswith("v ")])

    original = vertices((DATA / "obj_mtl_tex_chair_cc0" / "chair2.obj").read_text())
    rotated = original @ np.asarray(ROTATION.split(), dtype=float).reshape(3, 3).T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    expected = (rotated - (lo + hi) / 2) * (np.array([50.0, 90.0, 40.0]) / (hi - lo))
    np.testing.assert_allclose(vertices(chair.source.read_text()), expected, rtol=1e-4, atol=1e-3)


def test_materialised_items_are_reused_on_a_second_run(library_dir: Path, tmp_path: Path):
    config = SweetHome3DConfig(cache_dir=tmp_path / "cache", library_dir=library_dir, classes=("lamp",))
    (first,), _ = sweethome3d_jobs(config)
    stamp = first.source.stat().st_mtime_ns
    (second,), _ = sweethome3d_jobs(config)
    assert second.source == first.source and second.source.stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "cache" / "lamp").iterdir() if p.name.startswith(".")]


def test_transform_keeps_extra_vertex_fields_and_normalises_normals():
    text = "v 0 0 0 1 0 0\nv 2 0 0 0 1 0\nv 0 4 0 0 0 1\nvn 0 1 0\nvt 0.5 0.5\nf 1/1/1 2/1/1 3/1/1\n"
    out = transform_obj(text, None, (1.0, 2.0, 1.0)).splitlines()
    assert out[0].split()[4:] == ["1", "0", "0"]
    np.testing.assert_allclose([float(v) for v in out[1].split()[1:4]], [0.5, -1.0, 0.0])
    assert out[3] == "vn 0 1 0" and out[4] == "vt 0.5 0.5"


def test_class_map_rules_are_ordered_and_respect_exclusions():
    class_map = ClassMap.load()

    def item(name: str, category: str = "Living room") -> CatalogItem:
        return CatalogItem(
            library="L",
            index=1,
            item_id=name,
            name=name,
            tags=(),
            category=category,
            creator="",
            model="x/x.obj",
            size_cm=(1, 1, 1),
            rotation=None,
            licence="CC0-1.0",
        )

    assert class_map.classify(item("Desk lamp")) == "lamp"
    assert class_map.classify(item("Armchair")) == "armchair"
    assert class_map.classify(item("Office chairs")) == "chair"
    assert class_map.classify(item("Coffee table")) == "table"
    assert class_map.classify(item("Table fan")) is None
    assert class_map.classify(item("Cup cake")) is None
    assert class_map.classify(item("Chair", category="Characters")) is None


def test_bad_inputs_give_clear_errors(tmp_path: Path, library_dir: Path):
    with pytest.raises(SourceError, match="sweethome3d-furniture"):
        sweethome3d_jobs(SweetHome3DConfig(cache_dir=tmp_path / "c", library_dir=tmp_path / "missing"))
    bad = tmp_path / "bad.sha256"
    bad.write_text("not-a-digest\n")
    with pytest.raises(SourceError, match="bad.sha256:1"):
        read_digests([bad])
    with pytest.raises(SourceError, match="no rule for class"):
        sweethome3d_jobs(SweetHome3DConfig(cache_dir=tmp_path / "c", library_dir=library_dir, classes=("sofa2",)))
    broken = tmp_path / "map.toml"
    broken.write_text("[[class]]\nname = 'x'\n")
    with pytest.raises(SourceError, match="keywords"):
        ClassMap.load(broken)
    with pytest.raises(SourceError, match="outside"):
        SweetHome3DConfig(cache_dir=tmp_path, test_fraction=5)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "Broken.sh3f").write_bytes(b"not a zip")
    jobs, report = sweethome3d_jobs(SweetHome3DConfig(cache_dir=tmp_path / "c", library_dir=tmp_path / "junk"))
    assert jobs == [] and "Broken.sh3f: not a readable .sh3f" in report.failures[0]["reason"]


@pytest.mark.skipif(not SHARED_RESERVED.is_file(), reason="../shared/reserved is not beside this clone")
def test_project_copy_of_the_reserved_list_matches_shared():
    assert read_digests([RESERVED_DIGESTS]) == read_digests([SHARED_RESERVED])
    assert len(read_digests([RESERVED_DIGESTS])) == 41


@pytest.mark.skipif(
    not DEFAULT_LIBRARY_DIR.is_dir(),
    reason="Debian's sweethome3d-furniture is not installed (make data-real installs it)",
)
def test_real_libraries_skip_every_reserved_model(tmp_path: Path):
    jobs, report = sweethome3d_jobs(
        SweetHome3DConfig(cache_dir=tmp_path / "cache", classes=("lamp",), per_class=1, seed=3)
    )
    assert report.items_seen == 820 and report.reserved_skipped == 41
    reserved = read_digests([RESERVED_DIGESTS])
    assert all(job.extra["obj_sha256"] not in reserved for job in jobs)
    (job,) = jobs
    mesh = load_mesh(job.source)
    extent = mesh.vertices.max(axis=0) - mesh.vertices.min(axis=0)
    np.testing.assert_allclose(extent, job.extra["size_cm"], rtol=1e-3)


def test_preprocess_command_end_to_end(library_dir: Path, reserved_list: Path, tmp_path: Path, capsys):
    import json

    import main

    out = tmp_path / "data"
    rc = main.main(
        [
            "preprocess",
            "--source",
            "sweethome3d",
            "--library-dir",
            str(library_dir),
            "--out",
            str(out),
            "--exclude-hashes",
            str(reserved_list),
            "--test-fraction",
            "0",
            "--samples",
            "1500",
            "--surface-samples",
            "200",
            "--no-progress",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "1 reserved models skipped" in printed
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    shapes = manifest["shapes"] if isinstance(manifest, dict) else manifest
    by_class = {s["class_name"]: s for s in shapes}
    assert sorted(by_class) == ["chair", "lamp"]
    assert by_class["chair"]["text"] == "Chair — seat; Living room"
    report = json.loads((out / "sweethome3d_report.json").read_text(encoding="utf-8"))
    assert report["reserved_skipped"] == 1 and report["per_class"] == {"chair": 1, "lamp": 1}
    assert "Ingoenius" in (out / "ATTRIBUTION.md").read_text(encoding="utf-8")


def test_exclude_hashes_applies_to_the_folder_source(tmp_path: Path, capsys):
    import main

    root = tmp_path / "meshes" / "box"
    root.mkdir(parents=True)
    for i, size in enumerate((1.0, 2.0)):
        (root / f"b{i}.obj").write_text(
            f"v 0 0 0\nv {size} 0 0\nv 0 {size} 0\nv 0 0 {size}\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
        )
    holdout = tmp_path / "holdout.sha256"
    holdout.write_text(hashlib.sha256((root / "b1.obj").read_bytes()).hexdigest() + "\n")
    out = tmp_path / "data"
    rc = main.main(
        [
            "preprocess",
            "--source",
            "folder",
            "--input",
            str(tmp_path / "meshes"),
            "--out",
            str(out),
            "--exclude-hashes",
            str(holdout),
            "--test-fraction",
            "0",
            "--samples",
            "1500",
            "--surface-samples",
            "200",
            "--no-progress",
        ]
    )
    assert rc == 0
    assert "1 meshes skipped by --exclude-hashes" in capsys.readouterr().out
    assert [p.name for p in (out).rglob("*.npz") if "SdfSamples" in str(p)] == ["b0.npz"]


def test_attribution_keeps_the_creators_of_earlier_runs(library_dir: Path, reserved_list: Path, tmp_path: Path):
    import main

    out = tmp_path / "data"
    common = [
        "preprocess",
        "--source",
        "sweethome3d",
        "--library-dir",
        str(library_dir),
        "--out",
        str(out),
        "--exclude-hashes",
        str(reserved_list),
        "--test-fraction",
        "0",
        "--samples",
        "1500",
        "--surface-samples",
        "200",
        "--no-progress",
    ]
    assert main.main([*common, "--classes", "chair"]) == 0
    assert main.main([*common, "--classes", "lamp"]) == 0
    attribution = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "| Chair | Ingoenius |" in attribution and "| Desk lamp | Blend Swap |" in attribution


def test_export_real_model_ships_the_trained_items_credits_and_a_card(
    library_dir: Path, reserved_list: Path, tmp_path: Path, monkeypatch
):
    """scripts/export_real_model.py: a run on chairs only is packaged with the chair's creator credited (not
    the lamp's: it was not trained on), a card the Models menu lists, and a checkpoint that loads; a run whose
    items are under another licence is refused and nothing is written."""
    import json

    import main
    from core.model import load_trained_model
    from core.model.bundled_models import RESOURCES_ENV, bundled_models
    from core.training import build_run_config, train
    from scripts import export_real_model

    data = tmp_path / "data"
    assert (
        main.main(
            [
                "preprocess",
                "--source",
                "sweethome3d",
                "--library-dir",
                str(library_dir),
                "--out",
                str(data),
                "--exclude-hashes",
                str(reserved_list),
                "--test-fraction",
                "0",
                "--samples",
                "1500",
                "--surface-samples",
                "200",
                "--no-progress",
            ]
        )
        == 0
    )
    run = tmp_path / "run"
    config = build_run_config(
        "tiny", overrides=["train.epochs=2", "train.samples_per_shape=256", 'train.classes=["chair"]']
    )
    train(config, data, run, progress=False)
    out = tmp_path / "resources" / "real"
    argv = [
        "--run",
        str(run),
        "--data",
        str(data),
        "--out",
        str(out),
        "--title",
        "Real (test)",
        "--description",
        "a chair model",
    ]
    assert export_real_model.main(argv) == 0
    attribution = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "| Chair | Ingoenius |" in attribution and "Desk lamp" not in attribution
    monkeypatch.setenv(RESOURCES_ENV, str(out.parent))
    (model,) = bundled_models()
    assert model.key == "real" and model.title == "Real (test)" and "1 Sweet Home 3D" in model.licence
    assert load_trained_model(model.checkpoint, device="cpu").class_names == ["chair"]
    # a run trained elsewhere (a GPU machine) comes back as an exported checkpoint and its log
    again = tmp_path / "again" / "real"
    assert (
        export_real_model.main(
            [
                "--checkpoint",
                str(out / "model.pt"),
                "--log",
                str(run / "log.csv"),
                "--data",
                str(data),
                "--out",
                str(again),
                "--title",
                "Real (GPU)",
                "--description",
                "from a checkpoint",
            ]
        )
        == 0
    )
    assert (again / "ATTRIBUTION.md").read_text(encoding="utf-8") == attribution
    config_of = [json.loads((folder / "config.json").read_text()) for folder in (out, again)]
    assert config_of[0]["model"] == config_of[1]["model"]

    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    for record in manifest["shapes"]:
        record["extra"]["licence"] = "proprietary"
    (data / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    refused = tmp_path / "refused"
    assert export_real_model.main([*argv[:4], "--out", str(refused), *argv[6:]]) == 2
    assert not refused.exists()
