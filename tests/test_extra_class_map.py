"""studies/extra_class_map.py: the shipped map plus broad classes for a report's unmapped items."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from core.data.sources.sweethome3d import ClassMap

ROOT = Path(__file__).resolve().parents[1]

UNMAPPED = [
    {"library": "L", "item": "L#door", "name": "Double door with panes", "category": "Doors and windows"},
    {"library": "L", "item": "L#boy", "name": "Sitting boy", "category": "Characters"},
    {"library": "L", "item": "L#ac", "name": "Air conditioning - External unit", "category": "Exterior"},
    {"library": "L", "item": "L#box", "name": "Box", "category": "Office"},
    {"library": "L", "item": "L#bowl", "name": "Bowl", "category": "Kitchen"},
]


def _write(tmp_path: Path, report: object) -> subprocess.CompletedProcess:
    (tmp_path / "report.json").write_text(json.dumps(report))
    return subprocess.run(
        [sys.executable, "-m", "studies.extra_class_map", "--report", str(tmp_path / "report.json")]
        + ["--out", str(tmp_path / "map.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_unmapped_items_get_broad_classes_and_the_shipped_rules_come_first(tmp_path):
    proc = _write(tmp_path, {"unmapped": UNMAPPED})
    assert proc.returncode == 0, proc.stderr
    cmap = ClassMap.load(tmp_path / "map.toml")
    assert cmap.class_names[:2] == ClassMap.load().class_names[:2]  # the shipped rules, in their order
    assert not cmap.skip_categories

    def cls(name: str, category: str) -> str | None:
        return cmap.classify(SimpleNamespace(name=name, category=category))  # type: ignore[arg-type]

    assert cls("Double door with panes", "Doors and windows") == "door_window"
    assert cls("Sitting boy", "Characters") == "figure"
    assert cls("Air conditioning - External unit", "Exterior") == "outdoor"  # a dash matched as the map reads names
    assert cls("Box", "Office") == "household" and cls("Bowl", "Kitchen") == "kitchenware"
    assert cls("Box", "Kitchen") is None  # a name is matched within its own category only
    assert cls("Office chair", "Office") == "chair"  # the shipped rules still decide what they map


def test_a_file_that_is_no_report_is_refused_with_its_name(tmp_path):
    proc = _write(tmp_path, {"items_seen": 3})
    assert proc.returncode == 1 and "report.json" in proc.stderr and "unmapped" in proc.stderr
    assert not (tmp_path / "map.toml").exists()


def test_an_out_path_that_cannot_be_written_is_refused_with_its_name(tmp_path):
    (tmp_path / "map.toml").mkdir()  # a folder where the file should go
    proc = _write(tmp_path, {"unmapped": UNMAPPED})
    assert proc.returncode == 1 and "map.toml" in proc.stderr and "cannot write" in proc.stderr
