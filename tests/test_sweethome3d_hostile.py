"""The Sweet Home 3D source as a hostile but realistic user feeds it (issue 28, items 1-3, 6-8, 14-19).

Every test runs ``python main.py preprocess --source sweethome3d`` through ``main.main`` on tiny
libraries it writes (tests/sh3f_factory.py: tetrahedra with an MTL colour), and checks the exit
code, the one-line message, what was written and that nothing outside ``--out`` was touched.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import trimesh

import main
from tests.sh3f_factory import MTL, Item, chairs, member_offsets, set_declared_size, tetra_obj, write_library

FAST = ["--samples", "100", "--surface-samples", "50", "--no-progress", "--test-fraction", "0"]


def _preprocess(libs: Path, out: Path, *extra: str | Path) -> int:
    return main.main(
        [
            "preprocess",
            "--source",
            "sweethome3d",
            "--library-dir",
            str(libs),
            "--out",
            str(out),
            *FAST,
            *map(str, extra),
        ]
    )


def _manifest(out: Path) -> list[dict]:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))["shapes"]


def _report(out: Path) -> dict:
    return json.loads((out / "sweethome3d_report.json").read_text(encoding="utf-8"))


def _class_map(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------ 1: class names reach the file system


@pytest.mark.parametrize("name", ["../../../../victim", ".", "..", "a/b", "/tmp/abs", ".hidden", "", "x" * 300])
def test_a_class_name_that_is_not_a_plain_folder_name_is_refused_before_any_work(tmp_path, capsys, name):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", chairs(2))
    victim = tmp_path / "victim"
    (victim / "keep.txt").parent.mkdir()
    (victim / "keep.txt").write_text("precious")
    class_map = _class_map(tmp_path / "map.toml", f'[[class]]\nname = "{name}"\nkeywords = ["chair"]\n')
    out = tmp_path / "work" / "a" / "b" / "out"
    assert _preprocess(libs, out, "--class-map", class_map) == 2
    line = _one_line_error(capsys)
    assert str(class_map) in line and "rule 1" in line and "folders under --out" in line
    assert (victim / "keep.txt").read_text() == "precious" and sorted(victim.iterdir()) == [victim / "keep.txt"]
    assert not (out / "meshes").exists() and not (out / "SdfSamples").exists()


def test_an_existing_folder_in_the_cache_is_never_deleted(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", chairs(2))
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    folder = Path(_manifest(out)[0]["source"]).parent
    for path in folder.iterdir():  # the user put something else under that name
        path.unlink()
    (folder / "mine.txt").write_text("keep")
    assert _preprocess(libs, out) == 0
    assert (folder / "mine.txt").read_text() == "keep" and [p.name for p in folder.iterdir()] == ["mine.txt"]
    failures = _report(out)["failures"]
    assert len(failures) == 1 and "not a complete extraction" in failures[0]["reason"]


# ------------------------------------------------------------------ 2: a damaged member is one item's failure


@pytest.mark.parametrize("damage", ["deflate", "crc"])
def test_a_damaged_member_fails_its_item_and_the_rest_go_on(tmp_path, capsys, damage):
    libs = tmp_path / "libs"
    path = write_library(libs / "Mini.sh3f", chairs(3))
    data = bytearray(path.read_bytes())
    start, size = member_offsets(path)["lib/Chair_2/Chair_2.obj"]
    if damage == "deflate":
        data[start : start + size] = b"\xff" * size  # not a deflate stream
    else:
        data[start + size // 2] ^= 0x55  # still inflates, to other bytes than the CRC says
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(s["id"] for s in _manifest(out)) == ["Mini_Chair_1", "Mini_Chair_3"]
    (failure,) = _report(out)["failures"]
    assert failure["item"] == "Test#Chair_2" and "Chair_2.obj is damaged" in failure["reason"]
    assert "Mini.sh3f" in failure["reason"]


# ------------------------------------------------------------------ 3: extracted meshes follow the library


def _extent(record: dict, out: Path) -> np.ndarray:
    mesh = trimesh.load(record["source"], force="mesh", process=False)
    return mesh.vertices.max(axis=0) - mesh.vertices.min(axis=0)


def test_a_changed_catalogue_size_is_extracted_and_sampled_again(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", [Item("Chair 1", width="50")])
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    first = _manifest(out)[0]
    write_library(libs / "Mini.sh3f", [Item("Chair 1", width="300")])
    assert _preprocess(libs, out) == 2  # samples of the 50 cm chair are not passed off as the 300 cm one
    line = _one_line_error(capsys)
    assert "changed since it was sampled" in line and "--resample-changed" in line
    assert _preprocess(libs, out, "--resample-changed") == 0
    (record,) = _manifest(out)
    assert record["extra"]["size_cm"][0] == 300 and record["source"] != first["source"]
    assert _extent(record, out)[0] == pytest.approx(300, rel=1e-4)
    assert record["stats"]["source_digest"] != first["stats"]["source_digest"]
    assert Path(first["source"]).is_file()  # the old extraction is left alone, never deleted


def test_a_library_fixed_after_a_bad_rotation_is_used(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", [Item("Chair 1", rotation="nan 0 0 0 1 0 0 0 1")])
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 2  # nothing usable: the reason is printed and kept
    assert "modelRotation" in _one_line_error(capsys)
    write_library(libs / "Mini.sh3f", [Item("Chair 1", rotation="1 0 0 0 0 1 0 -1 0")])
    assert _preprocess(libs, out) == 0
    assert _manifest(out)[0]["extra"]["model_rotation"] == [1, 0, 0, 0, 0, 1, 0, -1, 0]


# ------------------------------------------------------------------ 6: one bad catalogue entry


@pytest.mark.parametrize(
    "bad",
    [
        dict(width=""),
        dict(width="abc"),
        dict(rotation="1 0 0 0 1 0 0 0"),
        dict(rotation="0 0 0 0 0 0 0 0 0"),
        dict(rotation="2 0 0 0 1 0 0 0 1"),
        dict(height="1e309"),
        dict(depth="-4"),
        dict(model="/../../etc/passwd.obj"),
    ],
)
def test_one_bad_catalogue_entry_fails_alone(tmp_path, capsys, bad):
    libs = tmp_path / "libs"
    write_library(libs / "A.sh3f", [Item("Chair 1"), Item("Chair 2", **bad), Item("Chair 3")])
    write_library(libs / "B.sh3f", [Item("Chair 4")])
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(s["id"] for s in _manifest(out)) == ["A_Chair_1", "A_Chair_3", "B_Chair_4"]
    (failure,) = _report(out)["failures"]
    assert failure["item"] == "Test#Chair_2" and "A.sh3f: item #2 (Chair 2)" in failure["reason"]


# ------------------------------------------------------------------ 7: size limits (zip bombs)


def test_a_member_past_the_size_limit_is_refused_without_writing_it(tmp_path, capsys):
    from core.data.sources.sh3f import MAX_MEMBER_BYTES

    libs = tmp_path / "libs"
    bomb = tetra_obj("bomb", "Chair_2.mtl") + b"#" * (MAX_MEMBER_BYTES + 10)
    write_library(
        libs / "Mini.sh3f",
        [Item("Chair 1"), Item("Chair 2", files={"lib/Chair_2/Chair_2.obj": bomb, "lib/Chair_2/Chair_2.mtl": MTL})],
    )
    assert (libs / "Mini.sh3f").stat().st_size < 1_000_000
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    (failure,) = _report(out)["failures"]
    assert "past the limit of 64 MiB per file" in failure["reason"] and "zip bomb" in failure["reason"]
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert written < 1_000_000


def test_a_declared_size_that_lies_is_refused(tmp_path, capsys):
    libs = tmp_path / "libs"
    path = write_library(libs / "Mini.sh3f", chairs(2))
    set_declared_size(path, "lib/Chair_2/Chair_2.obj", 0xFFFFFFF0)  # 4 GB, the data stays 200 bytes
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    (failure,) = _report(out)["failures"]
    assert "declares 4294967280 bytes" in failure["reason"]


# ------------------------------------------------------------------ 8: class map types


@pytest.mark.parametrize(
    "body, says",
    [
        ('[[class]]\nname = "chair"\nkeywords = [1, 2]\n', "keywords must be a non-empty list of texts"),
        ('[[class]]\nname = "chair"\nkeywords = "chair"\n', "keywords must be a non-empty list of texts"),
        ('[[class]]\nname = "chair"\nkeywords = ["chair"]\ncategories = "Living room"\n', "categories must be a list"),
        ('[[class]]\nname = "chair"\nkeywords = ["chair"]\nexlcude = ["x"]\n', "unknown key(s) ['exlcude']"),
        (
            'skip_category = ["x"]\n[[class]]\nname = "chair"\nkeywords = ["chair"]\n',
            "unknown key(s) ['skip_category']",
        ),
        ('[[class]]\nname = "chair"\nkeywords = [" "]\n', "keywords must be a non-empty list of texts"),
        ('[[class]]\nname = 3\nkeywords = ["chair"]\n', "is a int, not a text"),
        ('class = "chair"\n', "no [[class]] rules"),
        ("class = [1]\n", "rule 1 is a int, not a table"),
    ],
)
def test_class_map_values_of_the_wrong_type_are_refused(tmp_path, capsys, body, says):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", chairs(1))
    class_map = _class_map(tmp_path / "map.toml", body)
    out = tmp_path / "out"
    assert _preprocess(libs, out, "--class-map", class_map) == 2
    line = _one_line_error(capsys)
    assert str(class_map) in line and says in line
    assert not (out / "meshes").exists()


@pytest.mark.parametrize("flag", ["--class-map", "--exclude-hashes"])
def test_a_binary_class_map_or_digest_list_names_the_file(tmp_path, capsys, flag):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", chairs(1))
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    assert _preprocess(libs, tmp_path / "out", flag, binary) == 2
    line = _one_line_error(capsys)
    assert str(binary) in line and "not UTF-8 text" in line


# ------------------------------------------------------------------ 14: every item unreadable


def test_when_every_item_is_unreadable_the_report_keeps_the_reasons(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", [Item("Chair 1", width="0"), Item("Chair 2", width="x")])
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 2
    line = _one_line_error(capsys)
    assert "width#1=0.0 is not a size" in line and str(out / "sweethome3d_report.json") in line
    reasons = [f["reason"] for f in _report(out)["failures"]]
    assert len(reasons) == 2 and "width#2 is missing or not a number" in reasons[1]


# ------------------------------------------------------------------ 15: an interrupted extraction


def test_a_killed_extraction_is_completed_by_the_next_run_with_usual_permissions(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", chairs(2))
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    folder = Path(_manifest(out)[0]["source"]).parent
    obj = folder / "Chair_1.obj"
    expected = obj.read_bytes()
    # what kill -9 during the extraction leaves: the hidden partial folder with a half-written file
    partial = folder.with_name(f".{folder.name}.partial")
    folder.rename(partial)
    (partial / "Chair_1.obj").write_bytes(expected[:20])
    for path in out.glob("SdfSamples/*/*/*.npz"):
        path.unlink()
    assert _preprocess(libs, out) == 0
    assert obj.read_bytes() == expected and not partial.exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    umask = os.umask(0)
    os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask
    assert obj.stat().st_mode & 0o777 == 0o666 & ~umask


# ------------------------------------------------------------------ 16: library names that differ in punctuation


def test_libraries_whose_names_differ_only_in_punctuation_keep_every_item(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini lib.sh3f", [Item("Chair 1")])
    write_library(
        libs / "Mini_lib.sh3f",
        [
            Item(
                "Chair 1",
                files={
                    "lib/Chair_1/Chair_1.obj": tetra_obj("another", "Chair_1.mtl", 2.0),
                    "lib/Chair_1/Chair_1.mtl": MTL,
                },
            )
        ],
    )
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    assert "Traceback" not in capsys.readouterr().err
    shapes = _manifest(out)
    assert len(shapes) == 2 and len({s["id"] for s in shapes}) == 2
    assert {s["extra"]["library"] for s in shapes} == {"Mini lib", "Mini_lib"}
    assert json.loads((out / "failures.json").read_text()) == []


# ------------------------------------------------------------------ 17: a FIFO or a folder named *.sh3f


def test_a_fifo_or_folder_named_like_a_library_is_reported_not_waited_on(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", chairs(1))
    os.mkfifo(libs / "Pipe.sh3f")
    (libs / "Folder.sh3f").mkdir()
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    reasons = {f["library"]: f["reason"] for f in _report(out)["failures"]}
    assert "not a regular file (a FIFO" in reasons["Pipe.sh3f"]
    assert "not a regular file (a folder)" in reasons["Folder.sh3f"]
    assert len(_manifest(out)) == 1


# ------------------------------------------------------------------ 18: --exclude-hashes and the manifest's source


def test_exclude_hashes_matches_the_extracted_obj_the_manifest_lists(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", chairs(3))
    first = tmp_path / "first"
    assert _preprocess(libs, first) == 0
    chair2 = next(s for s in _manifest(first) if s["id"] == "Mini_Chair_2")
    holdout = tmp_path / "holdout.sha256"
    holdout.write_text(hashlib.sha256(Path(chair2["source"]).read_bytes()).hexdigest() + "\n")
    out = tmp_path / "out"
    assert _preprocess(libs, out, "--exclude-hashes", holdout) == 0
    assert "1 reserved models skipped" in capsys.readouterr().out
    assert sorted(s["id"] for s in _manifest(out)) == ["Mini_Chair_1", "Mini_Chair_3"]
    assert "Chair_2" not in (out / "sweethome3d_report.json").read_text()


# ------------------------------------------------------------------ 19: a model at the zip's root


def test_a_model_at_the_root_of_the_zip_is_extracted_with_its_material(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", [Item("Chair 1", folder="/")])
    out = tmp_path / "out"
    assert _preprocess(libs, out) == 0
    (record,) = _manifest(out)
    folder = Path(record["source"]).parent
    assert sorted(p.name for p in folder.iterdir()) == ["Chair_1.mtl", "Chair_1.obj"]
    assert record["stats"]["n_pos"] + record["stats"]["n_neg"] == 100


def test_a_reserved_model_with_a_broken_catalogue_entry_is_counted_never_named(tmp_path, capsys):
    libs = tmp_path / "libs"
    write_library(libs / "Mini.sh3f", [Item("Chair 1"), Item("Chair 2", width="abc")])
    holdout = tmp_path / "holdout.sha256"
    holdout.write_text(hashlib.sha256(tetra_obj("Chair 2", "Chair_2.mtl")).hexdigest() + "\n")
    out = tmp_path / "out"
    assert _preprocess(libs, out, "--exclude-hashes", holdout) == 0
    assert "1 reserved models skipped" in capsys.readouterr().out
    report = _report(out)
    assert report["failures"] == [] and report["reserved_skipped"] == 1 and "Chair_2" not in json.dumps(report)
