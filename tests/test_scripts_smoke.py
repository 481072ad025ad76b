"""Every script in scripts/ and studies/ runs the way its docstring says: a study as a module from the repository
root (``python -m studies.NAME``), a Python tool as a file (``python scripts/NAME.py``), a shell script parses.

Each runs in its own process, so an import that works only inside pytest (the repository root on the path) fails
here. Scripts with their own tests (test_compare_pictures, test_recipe_study_script, ...) get ``--help`` only;
the others make their real output on the built-in procedural shapes or the bundled demo model, small enough for
seconds. Rendering runs under scripts/with_display.sh (a virtual screen when there is no display).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

HELP_ONLY: dict[str, str | None] = {  # script -> the test of its real run
    "studies/compare_pictures.py": "test_compare_pictures.py",
    "studies/ground_truth_figure.py": "test_ground_truth_figure.py",
    "studies/interpolation_study.py": "test_interpolation_study.py",
    "studies/recipe_study.py": "test_recipe_study_script.py",
    "studies/zero_shot_study.py": "test_zero_shot.py",
    "studies/code_start_study.py": "test_code_start_study.py",
    "studies/extra_class_map.py": "test_extra_class_map.py",
    "scripts/export_real_model.py": "test_sweethome3d.py",
    "scripts/gpu_data.py": "test_gpu_data.py",
    "scripts/results.py": None,  # main.py evaluate (tested) over the study's runs: nothing small to run
    "scripts/results_report.py": "test_model_figures.py",
}
REAL_RUN = {  # tested below with a small real run
    "studies/demo_floaters.py",
    "studies/thin_parts_study.py",
    "studies/edit_figures.py",
    "studies/class_inference_study.py",
    "scripts/make_scans.py",
    "scripts/make_icon.py",
    "scripts/results_figures.py",
}


def _command(script: str) -> list[str]:
    """The documented way to run ``script``: studies as modules, tools as files."""
    if script.startswith("studies/"):
        return [sys.executable, "-m", "studies." + Path(script).stem]
    return [sys.executable, script]


def _run(script: str, *args: str | Path, display: bool = False, timeout: int = 280) -> str:
    """Run ``script`` with ``args`` from the repository root; its stdout (the test fails on a non-zero exit)."""
    command = (["bash", "scripts/with_display.sh"] if display else []) + _command(script) + [str(a) for a in args]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(command)}: exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _table_rows(text: str) -> dict[str, list[str]]:
    """The markdown table rows of ``text`` by their first cell (header and separator rows included)."""
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")
    ]
    return {row[0]: row for row in rows}


def test_every_script_has_a_smoke_test():
    python = {
        str(p.relative_to(ROOT))
        for folder in ("scripts", "studies")
        for p in (ROOT / folder).glob("*.py")
        if p.name != "__init__.py"
    }
    assert python == set(HELP_ONLY) | REAL_RUN, "a script without a smoke test (add it here) or a stale entry"
    assert not set(HELP_ONLY) & REAL_RUN
    for test in filter(None, HELP_ONLY.values()):
        assert (ROOT / "tests" / test).is_file(), test


@pytest.mark.parametrize("script", sorted(HELP_ONLY))
def test_help(script):
    out = _run(script, "--help")
    assert out.startswith("usage:") and "--help" in out


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "scripts").glob("*.sh")))
def test_shell_script_parses(script):
    proc = subprocess.run(["bash", "-n", f"scripts/{script}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_demo_floaters_counts_fragments_of_every_class_of_the_demo():
    out = _run("studies/demo_floaters.py", "--per-class", "1", "--resolution", "32", "--threads", "1")
    rows = _table_rows(out)
    assert list(rows["class"]) == [
        "class",
        "n",
        "with floaters %",
        "components",
        "floaters",
        "largest share",
        "gt components",
    ]
    classes = [name for name in rows if name not in ("class", "---", "**all**")]
    assert len(classes) == 7 and all(rows[c][1] == "1" for c in classes)  # one training code per class
    assert rows["**all**"][1] == "7"
    assert all(float(rows[c][3]) >= 1 and 0 < float(rows[c][5]) <= 1 for c in classes)  # components, largest share
    assert all(rows[c][6] == "1.0" for c in classes)  # the built-in shapes are each one piece


def test_thin_parts_study_scores_both_masks_and_draws_them(tmp_path):
    from PIL import Image

    image = tmp_path / "thin_parts.png"
    out = _run(
        "studies/thin_parts_study.py", "--per-class", "1", "--classes", "chair", "--points", "2000", "--image", image
    )
    rows = _table_rows(out)
    assert {"chair2 (real chair)", "desklamp (real lamp)", "duck (no thin part)", "chair"} <= set(rows)
    duck_old, duck_new = (float(v) for v in rows["duck (no thin part)"][1:3])
    chair_old, chair_new = (float(v) for v in rows["chair2 (real chair)"][1:3])
    assert duck_new < 5 and chair_new > 5 and chair_old > chair_new  # the new mask takes legs, not bulk
    assert float(rows["chair"][1]) > 10  # a chair's legs are rods by the generator's labels
    share, precision, recall = (float(v) for v in rows["chair"][3].split(" / "))  # the new mask (mesh)
    assert precision > 50 and 0 < share < 100
    with Image.open(image) as picture:
        assert picture.width > picture.height > 100


def test_edit_figures_draws_each_edit_kind(tmp_path):
    from PIL import Image

    _run("studies/edit_figures.py", "--img-dir", tmp_path, "--resolution", "40", display=True)
    panels = {"edit_drag.png": 4, "edit_paint.png": 2, "edit_graft.png": 3}  # before + the edits, 360 x 440 each
    for name, n in panels.items():
        with Image.open(tmp_path / name) as picture:
            assert picture.size == (360 * n, 440), name
            assert np.asarray(picture.convert("L")).std() > 5, f"{name} is blank"


def test_make_scans_writes_a_scan_that_loads_as_an_observation(tmp_path):
    from core.tto import load_observation

    out = _run("scripts/make_scans.py", "lamp_arm", "--out", tmp_path)
    assert "lamp_arm: lamp #903" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lamp_arm.glb",
        "lamp_arm_partial.npz",
        "lamp_arm_partial_points.ply",
    ]
    obs = load_observation(tmp_path / "lamp_arm_partial.npz")
    assert len(obs.surface_points) > 500 and np.abs(obs.surface_points).max() <= 1.0 + 1e-5  # unit-sphere frame
    assert (tmp_path / "lamp_arm_partial_points.ply").read_bytes().startswith(b"ply\nformat binary_little_endian")


def test_make_icon_renders_a_transparent_square(tmp_path):
    from PIL import Image

    icon = tmp_path / "icon.png"
    _run("scripts/make_icon.py", "mug", "--out", icon, "--resolution", "40", display=True)
    with Image.open(icon) as picture:
        alpha = np.asarray(picture.convert("RGBA"))[..., 3]
    assert alpha.shape == (256, 256)
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0  # transparent around the shape
    assert 0.1 < (alpha == 255).mean() < 0.9  # the mug fills part of it


def test_results_figures_draws_the_interpolation_strip(tmp_path):
    from PIL import Image

    _run("scripts/results_figures.py", "interpolation", "--img-dir", tmp_path, "--resolution", "32", display=True)
    with Image.open(tmp_path / "interpolation.png") as picture:
        assert picture.size == (6 * 220, 2 * 220)  # t = 0 .. 1 in six steps, two class pairs
        assert np.asarray(picture.convert("L")).std() > 5


def test_class_inference_study_scores_every_held_out_shape_by_fit_and_descriptor(toy_trained, tmp_path):
    import json

    out = _run(
        "studies/class_inference_study.py",
        *("--ckpt", toy_trained["ckpt"], "--data", toy_trained["data"], "--out", tmp_path, "--threads", "1"),
        *("--variants", "class_iterations=20,class_samples=200"),
    )
    rows = _table_rows(out)
    assert {"fit (defaults)", "fit (class_iterations=20,class_samples=200)", "descriptor (no decoder)"} <= set(rows)
    result = json.loads((tmp_path / "results.json").read_text())
    assert [r["shapes"] for r in result["rows"]] == [2, 2, 2, 2]  # the toy set holds out one ball and one slab
    by_name = {r["strategy"]: r for r in result["rows"]}
    # a ball and a thin slab differ in every outline number: the descriptor, trained on the train split, tells them
    assert by_name["descriptor (no decoder)"]["per_class"] == {"ball": "1/1", "slab": "1/1"}
    assert (tmp_path / "summary.md").read_text().startswith("| strategy |")


def test_class_inference_study_refuses_bad_input_in_one_line_before_any_fit(toy_trained, tmp_path):
    a_file = tmp_path / "taken.txt"
    a_file.write_text("not a folder")
    cases = {
        ("--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out")): "manifest.json",
        ("--data", str(toy_trained["data"]), "--out", str(a_file)): "a file is there",
        ("--data", str(toy_trained["data"]), "--out", str(tmp_path / "o2"), "--variants", "bogus=1"): "bogus",
    }
    for args, words in cases.items():
        command = _command("studies/class_inference_study.py") + ["--ckpt", str(toy_trained["ckpt"]), *args]
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert a_file.read_text() == "not a folder" and not (tmp_path / "out").exists() and not (tmp_path / "o2").exists()
