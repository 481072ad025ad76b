"""The data set's index (core/data/manifest.py): written atomically, read with errors naming file, reason and fix."""

from __future__ import annotations

import json

import pytest

from core.data.manifest import (
    MANIFEST_FORMAT,
    check_record,
    load_manifest,
    manifest_path,
    split_keys,
    split_path,
    write_index,
)
from core.utils.errors import DataSetError


def _record(class_name, shape_id, split, set_name="toy"):
    return {
        "id": shape_id,
        "class_name": class_name,
        "source": None,
        "text": None,
        "split": split,
        "file": f"SdfSamples/{set_name}/{class_name}/{shape_id}.npz",
        "stats": {},
    }


def test_write_index_round_trips_and_writes_deepsdf_splits(tmp_path):
    records = [
        _record("sofa", "s1", "train"),
        _record("chair", "c1", "test"),
        _record("chair", "c2", "train"),
        _record("chair", "old", "train", set_name="earlier"),
    ]
    written = write_index(tmp_path, "toy", {"seed": 0}, records)
    assert load_manifest(tmp_path) == written
    assert written["format"] == MANIFEST_FORMAT and written["classes"] == ["chair", "sofa"]
    assert json.loads(split_path(tmp_path, "train").read_text()) == {
        "toy": {"sofa": ["s1"], "chair": ["c2"]},
        "earlier": {"chair": ["old"]},
    }
    assert split_keys(tmp_path, "test") == {("chair", "c1")}
    assert split_keys(tmp_path, "nonexistent") is None
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["manifest.json", "test.json", "train.json"]


def test_an_empty_split_is_still_written(tmp_path):
    write_index(tmp_path, "toy", {}, [_record("chair", "c1", "train")])
    assert json.loads(split_path(tmp_path, "test").read_text()) == {"toy": {}}


@pytest.mark.parametrize(
    "content, says",
    [
        (None, "manifest.json: missing"),
        ("{not json", "not valid JSON"),
        (b"\xff\xfe", "unreadable"),
        (json.dumps({"format": 1}), "no 'shapes' list"),
        (json.dumps([1, 2]), "no 'shapes' list"),
    ],
)
def test_a_bad_manifest_names_file_reason_and_fix(tmp_path, content, says):
    if isinstance(content, bytes):
        manifest_path(tmp_path).write_bytes(content)
    elif content is not None:
        manifest_path(tmp_path).write_text(content)
    with pytest.raises(DataSetError, match=says) as info:
        load_manifest(tmp_path)
    assert str(manifest_path(tmp_path)) in str(info.value) and "preprocess" in str(info.value)


def test_data_that_is_a_file_is_refused_as_missing(tmp_path):
    file = tmp_path / "data.txt"
    file.write_text("not a folder")
    with pytest.raises(DataSetError, match="manifest.json: missing.*no manifest.json"):
        load_manifest(file)


@pytest.mark.parametrize(
    "record, says",
    [
        ({"id": "a", "class_name": "c"}, "lacks a class_name, id or file"),
        ("not a record", "lacks a class_name, id or file"),
        (_record("..", "a", "train"), "cannot name a file"),
        (_record("c", "../../escape", "train"), "cannot name a file"),
    ],
)
def test_check_record_refuses_records_that_cannot_name_files(tmp_path, record, says):
    with pytest.raises(DataSetError, match=f"shape 3.*{says}"):
        check_record(manifest_path(tmp_path), 3, record)


def test_a_damaged_split_file_leaves_the_choice_to_the_records(tmp_path):
    split_path(tmp_path, "test").parent.mkdir()
    split_path(tmp_path, "test").write_text("[1, 2]")
    assert split_keys(tmp_path, "test") is None
