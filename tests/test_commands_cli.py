"""``reconstruct`` and ``evaluate`` as a hostile but realistic user runs them (issue 15, A.5/8/13/14/16).

Each test reproduces the user's command through ``main.main`` on the toy data set and the tiny
model of conftest.py: bad options are refused with a message naming them before any work, a
damaged sample file becomes one error row, a class the model does not know is reported once
per shape with the flag that fixes it, and the results carry what a reader needs.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil

import numpy as np
import pytest
import torch
import trimesh

import main
from core.model.codes_file import read_codes
from core.utils.devices import cuda_available

FAST_FIT = ["--iterations", "6", "--samples-per-step", "500"]


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    """``python main.py ARGV``: (exit code, stdout, stderr); argparse refusals give their SystemExit code."""
    try:
        code = main.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _copy_data(toy_trained, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(toy_trained["data"], data)
    return data


def _rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- reconstruct


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--resolution", "0", "outside 16"),
        ("--resolution", "1", "outside 16"),
        ("--resolution", "-4", "outside 16"),
        ("--lr", "nan", "finite number above 0"),
        ("--lr", "-1", "finite number above 0"),
        ("--iterations", "0", "at least 1"),
        ("--samples-per-step", "x", "not an integer"),
    ],
)
def test_reconstruct_refuses_bad_numbers_while_reading_the_flags(toy_trained, tmp_path, capsys, option, value, says):
    sample = toy_trained["data"] / "SdfSamples/toy/ball/ball2.npz"
    code, _, err = _run(
        capsys,
        "reconstruct",
        "--ckpt",
        str(toy_trained["ckpt"]),
        "--input",
        str(sample),
        "--out",
        str(tmp_path / "out"),
        option,
        value,
    )
    assert code == 2
    assert f"argument {option}: " in err and says in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_reconstruct_refuses_bad_devices_and_a_file_as_out_before_the_fit(toy_trained, tmp_path, capsys):
    sample = str(toy_trained["data"] / "SdfSamples/toy/ball/ball2.npz")
    base = ["reconstruct", "--ckpt", str(toy_trained["ckpt"]), "--input", sample, *FAST_FIT]
    code, out, err = _run(capsys, *base, "--out", str(tmp_path / "o1"), "--device", "banana")
    assert code == 2 and "--device='banana' is not a device; use auto, cpu or cuda" in err
    assert not (tmp_path / "o1").exists() and "step" not in out
    if not cuda_available():
        code, _, err = _run(capsys, *base, "--out", str(tmp_path / "o2"), "--device", "cuda")
        assert code == 2 and "--device='cuda' but" in err and "--device=cpu" in err
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    code, out, err = _run(capsys, *base, "--out", str(a_file))
    assert code == 2 and f"--out {a_file}: is a file, not a folder" in err and "step" not in out
    assert a_file.read_text() == "keep me"


def _ball_mesh(path, radius=0.6):
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    sphere.visual.vertex_colors = np.tile([230, 50, 50, 255], (len(sphere.vertices), 1)).astype(np.uint8)
    sphere.export(path)
    return path


def test_reconstruct_reports_chamfer_and_fscore_against_a_mesh_input(toy_trained, tmp_path, capsys):
    mesh_in = _ball_mesh(tmp_path / "ball.ply")
    out = tmp_path / "fit"
    code, stdout, err = _run(
        capsys,
        "reconstruct",
        "--ckpt",
        str(toy_trained["ckpt"]),
        "--input",
        str(mesh_in),
        "--class",
        "ball",
        *FAST_FIT,
        "--input-samples",
        "3000",
        "--resolution",
        "24",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0, err
    assert "against the input: CD×10³" in stdout and "F@1" in stdout
    codes = read_codes(out / "codes.json", toy_trained["model"])
    metrics = codes.info["metrics"]
    assert math.isfinite(metrics["chamfer"]) and 0.0 <= metrics["fscore_1pct"] <= 1.0
    assert codes.class_name == "ball" and codes.config["iterations"] == 6
    # measured in the fit's frame: the same mesh against the analytic sphere moved into that frame agrees
    from core.data.normalization import Normalization
    from core.evaluation.metrics import evaluate_reconstruction

    norm = codes.info["observation"]["normalization"]
    frame = Normalization(offset=np.asarray(norm["offset"]), scale=float(norm["scale"]))
    directions = np.random.default_rng(3).normal(size=(20_000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    sphere = {"surface_points": frame.apply(0.6 * directions), "surface_normals": directions}
    fitted = trimesh.load(out / "mesh.ply", process=False)
    reference = evaluate_reconstruction(
        sphere, {"vertices": fitted.vertices, "faces": fitted.faces, "colours": None}, n_points=20_000
    )
    assert metrics["chamfer"] == pytest.approx(reference["chamfer"], rel=0.25)
    assert metrics["fscore_2pct"] == pytest.approx(reference["fscore_2pct"], abs=0.1)


def test_reconstruct_finetune_codes_keep_the_decoder_and_read_back(toy_trained, tmp_path, capsys):
    sample = toy_trained["data"] / "SdfSamples/toy/slab/slab2.npz"
    out = tmp_path / "ft"
    code, _, err = _run(
        capsys,
        "reconstruct",
        "--ckpt",
        str(toy_trained["ckpt"]),
        "--input",
        str(sample),
        "--class",
        "slab",
        "--losses",
        "finetune",
        *FAST_FIT,
        "--resolution",
        "24",
        "--out",
        str(out),
        "--quiet",
    )
    assert code == 0, err
    data = json.loads((out / "codes.json").read_text())
    assert data["format"] == "deepsdf-explorer-codes" and data["version"] == 2
    assert data["decoder"] == "decoder_finetuned.pt" and (out / "decoder_finetuned.pt").is_file()
    model = toy_trained["model"]
    codes = read_codes(out / "codes.json", model)
    own = model.decoder.state_dict()
    assert codes.decoder_state.keys() == own.keys()
    assert any(not torch.equal(codes.decoder_state[k].cpu(), own[k].cpu()) for k in own)  # really fine-tuned
    assert codes.info["metrics"] is not None  # a sample file with surface points is measured too
    (out / "decoder_finetuned.pt").unlink()
    with pytest.raises(Exception, match="fine-tuned decoder decoder_finetuned.pt is missing"):
        read_codes(out / "codes.json", model)


# --------------------------------------------------------------------------- evaluate


def _evaluate(capsys, toy_trained, data, out, *extra: str) -> tuple[int, str, str]:
    return _run(
        capsys,
        "evaluate",
        "--ckpt",
        str(toy_trained["ckpt"]),
        "--data",
        str(data),
        "--split",
        "test",
        *FAST_FIT,
        "--resolution",
        "24",
        "--eval-points",
        "1000",
        "--out",
        str(out),
        *extra,
    )


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--eval-points", "0", "at least 1"),
        ("--resolution", "0", "outside 16"),
        ("--limit", "0", "at least 1"),
        ("--iso-level", "nan", "finite number"),
    ],
)
def test_evaluate_refuses_bad_numbers_while_reading_the_flags(toy_trained, tmp_path, capsys, option, value, says):
    code, _, err = _run(
        capsys,
        "evaluate",
        "--ckpt",
        str(toy_trained["ckpt"]),
        "--data",
        str(toy_trained["data"]),
        "--out",
        str(tmp_path / "out"),
        option,
        value,
    )
    assert code == 2 and f"argument {option}: " in err and says in err
    assert not (tmp_path / "out").exists()


def test_evaluate_refuses_an_iso_level_beyond_the_training_clamp(toy_trained, tmp_path, capsys):
    code, _, err = _evaluate(capsys, toy_trained, toy_trained["data"], tmp_path / "out", "--iso-level", "-0.5")
    assert code == 2 and "--iso-level -0.5 is beyond the model's training clamp" in err and "Traceback" not in err


def test_evaluate_damaged_sample_file_gets_an_error_row_and_the_rest_go_on(toy_trained, tmp_path, capsys):
    data = _copy_data(toy_trained, tmp_path)
    damaged = data / "SdfSamples/toy/ball/ball2.npz"
    damaged.write_bytes(damaged.read_bytes()[:5000])  # a truncated zip: BadZipFile
    code, stdout, err = _evaluate(capsys, toy_trained, data, tmp_path / "out")
    assert code == 0, err
    assert "Traceback" not in err and "ball/ball2: failed:" in err
    rows = {r["id"]: r for r in _rows(tmp_path / "out" / "results.csv")}
    assert rows["ball2"]["error"] and "ball2.npz" in rows["ball2"]["error"]
    assert not rows["slab2"]["error"] and float(rows["slab2"]["chamfer_x1e3"]) >= 0
    # the progress bar ran to the end with a rate and ETA field, and the table was printed
    assert "evaluate: 100%" in err and "2/2" in err
    assert "| **all** | 2 |" in stdout


def test_evaluate_exits_non_zero_when_every_shape_failed(toy_trained, tmp_path, capsys):
    data = _copy_data(toy_trained, tmp_path)
    for name in ("ball/ball2", "slab/slab2"):
        (data / f"SdfSamples/toy/{name}.npz").write_bytes(b"not a zip file at all")
    code, _, err = _evaluate(capsys, toy_trained, data, tmp_path / "out")
    assert code == 1 and "every shape failed (2 of 2)" in err


def _rename_test_classes(data, new="teapot"):
    """The test shapes labelled with a class the model never saw."""
    manifest = json.loads((data / "manifest.json").read_text())
    for record in manifest["shapes"]:
        if record["split"] == "test":
            record["class_name"] = new
    (data / "manifest.json").write_text(json.dumps(manifest))
    test_split = {"toy": {new: ["ball2", "slab2"]}}
    (data / "splits" / "test.json").write_text(json.dumps(test_split))


def test_evaluate_unknown_class_names_infer_class_once_per_shape_and_exits_non_zero(toy_trained, tmp_path, capsys):
    data = _copy_data(toy_trained, tmp_path)
    _rename_test_classes(data)
    code, _, err = _evaluate(capsys, toy_trained, data, tmp_path / "out")
    assert code == 1
    assert err.count("class 'teapot' is not one of this model's classes") == 2  # once per shape, not twice
    assert "--infer-class" in err and not re.search(r"--class(?![-\w])", err)  # evaluate has no --class


def test_evaluate_infer_class_on_an_unknown_class_is_honest_about_accuracy(toy_trained, tmp_path, capsys):
    data = _copy_data(toy_trained, tmp_path)
    _rename_test_classes(data)
    code, stdout, err = _evaluate(capsys, toy_trained, data, tmp_path / "out", "--infer-class")
    assert code == 0, err
    assert "teapot/ball2: inferred " in err and "(true class unknown to the model)" in err
    rows = _rows(tmp_path / "out" / "results.csv")
    assert {r["class_pred"] for r in rows} <= {"ball", "slab"} and all(r["class_correct"] == "" for r in rows)
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["summary"]
    assert summary["teapot"]["class accuracy %"] is None  # not 0: there was nothing right to find


def test_evaluate_with_the_class_given_does_not_claim_an_accuracy(toy_trained, tmp_path, capsys):
    code, stdout, err = _evaluate(capsys, toy_trained, toy_trained["data"], tmp_path / "out", "--quiet")
    assert code == 0, err
    header, _, *rows = stdout.strip().splitlines()[:5]
    assert "class accuracy %" in header
    assert all(row.rstrip(" |").endswith("given") for row in rows if row.startswith("|"))
    assert "100.0" not in stdout.split("class accuracy %")[1]


def test_evaluate_ablation_shares_the_inferred_class_and_records_meta_and_full_seconds(toy_trained, tmp_path, capsys):
    out = tmp_path / "abl"
    code, stdout, err = _evaluate(
        capsys, toy_trained, toy_trained["data"], out, "--infer-class", "--ablation", "baseline,surface"
    )
    assert code == 0, err
    assert "inferred ball" in err or "inferred slab" in err
    by_set = {name: {r["id"]: r for r in _rows(out / name / "results.csv")} for name in ("baseline", "surface")}
    for sid in ("ball2", "slab2"):
        assert by_set["baseline"][sid]["class_pred"] == by_set["surface"][sid]["class_pred"]
        row = by_set["surface"][sid]
        parts = sum(float(row[k]) for k in ("seconds_fit", "seconds_mesh", "seconds_metrics"))
        assert float(row["seconds"]) >= parts  # the s column is the whole cost of the shape
    meta = json.loads((out / "surface" / "results.json").read_text())["meta"]
    assert meta["checkpoint"] == str(toy_trained["ckpt"]) and meta["data"] == str(toy_trained["data"])
    assert meta["losses"] == "surface" and meta["split"] == "test"
    settings = json.loads((out / "surface" / "results.json").read_text())["settings"]
    assert settings["resolution"] == 24 and settings["infer_class"] is True


# --------------------------------------------------------------------------- issue 28: outputs and limits


def test_reconstruct_refuses_a_folder_named_like_its_mesh_before_the_fit(toy_trained, tmp_path, capsys):
    sample = str(toy_trained["data"] / "SdfSamples/toy/ball/ball2.npz")
    out = tmp_path / "out"
    (out / "mesh.ply").mkdir(parents=True)
    code, printed, err = _run(
        capsys, "reconstruct", "--ckpt", str(toy_trained["ckpt"]), "--input", sample, *FAST_FIT, "--out", str(out)
    )
    assert code == 2 and f"{out / 'mesh.ply'} is a folder where this command writes a file" in err
    assert "step" not in printed and (out / "mesh.ply").is_dir()


@pytest.mark.parametrize("command", ["view", "evaluate", "reconstruct", "edit"])
def test_every_command_shares_one_resolution_limit(tmp_path, capsys, command):
    from core.commands.cli_types import MAX_RESOLUTION

    args = {
        "view": ["view"],
        "evaluate": ["evaluate", "--ckpt", "x.pt", "--data", "d", "--out", "o"],
        "reconstruct": ["reconstruct", "--ckpt", "x.pt", "--input", "i.npz", "--out", "o"],
        "edit": ["edit", "--ckpt", "x.pt", "--code", "c", "--out", "o"],
    }[command]
    code, _, err = _run(capsys, *args, "--resolution", str(MAX_RESOLUTION + 1))
    assert code == 2 and f"outside 16 … {MAX_RESOLUTION}" in err
    code, _, err = _run(capsys, *args, "--resolution", "100000")
    assert code == 2 and "argument --resolution" in err


@pytest.mark.parametrize("command", ["evaluate", "reconstruct", "preprocess", "train"])
def test_a_negative_seed_is_refused_at_the_command_line(tmp_path, capsys, command):
    # numpy's generators refuse it deep in the run, where reconstruct blamed the input mesh for it and
    # preprocess logged every shape as failed
    args = {
        "evaluate": ["evaluate", "--ckpt", "x.pt", "--data", "d", "--out", str(tmp_path / "o")],
        "reconstruct": ["reconstruct", "--ckpt", "x.pt", "--input", "i.npz", "--out", str(tmp_path / "o")],
        "preprocess": ["preprocess", "--source", "synthetic", "--out", str(tmp_path / "o")],
        "train": ["train", "--data", "d", "--out", str(tmp_path / "o")],
    }[command]
    code, _, err = _run(capsys, *args, "--seed", "-1")
    assert code == 2 and "argument --seed: -1 must be 0 or more" in err
    assert not (tmp_path / "o").exists()


def test_a_negative_seed_in_a_config_is_refused_naming_it():
    # --set train.seed=-1, a config file or a caller of the library: the configs check it themselves
    from core.data.preprocess import PreprocessConfig
    from core.training.config import TrainConfig
    from core.utils.errors import ConfigError

    with pytest.raises(ValueError, match="--seed \\(seed\\) must be 0 or more, got -3"):
        PreprocessConfig(seed=-3)
    with pytest.raises(ConfigError, match="train.seed: -3 must be 0 or more"):
        TrainConfig(seed=-3)
    assert PreprocessConfig(seed=0).seed == TrainConfig(seed=0).seed == 0


@pytest.mark.parametrize(
    "settings, says",
    [
        (["curriculum_stages=[]", "curriculum_eps=[]", "curriculum_lambda=[]"], "curriculum needs at least one stage"),
        (["curriculum_stages=[0, 0.6, 0.4, 0.2, 0.8]"], "must start at 0 and rise strictly"),
        (
            ["curriculum_lambda=[0, 0, -0.1, 0.2, 0.5]"],
            "curriculum_lambda [0.0, 0.0, -0.1, 0.2, 0.5] must be in [0, 1]",
        ),
        (["curriculum_eps=[0.025, -0.01, 0, 0, 0]"], "curriculum_eps"),
    ],
)
def test_evaluate_refuses_a_curriculum_it_cannot_run_before_any_shape(toy_trained, tmp_path, capsys, settings, says):
    extra = [arg for setting in settings for arg in ("--tto-set", setting)]
    out = tmp_path / "out"
    code, printed, err = _evaluate(capsys, toy_trained, toy_trained["data"], out, "--losses", "curriculum", *extra)
    assert code == 2 and says in err and "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("field, value", [("id", "../../escaped"), ("class_name", "..")])
def test_evaluate_refuses_manifest_names_that_would_save_meshes_outside_out(
    toy_trained, tmp_path, capsys, field, value
):
    data = _copy_data(toy_trained, tmp_path)
    manifest = json.loads((data / "manifest.json").read_text())
    record = next(r for r in manifest["shapes"] if r["split"] == "test")
    record[field] = value
    (data / "manifest.json").write_text(json.dumps(manifest))
    (data / "splits" / "test.json").unlink()  # the manifest's own split field decides
    code, printed, err = _evaluate(capsys, toy_trained, data, tmp_path / "out", "--save-meshes")
    assert code == 2 and "manifest.json: shape" in err and "cannot name a file" in err and "Traceback" not in err
    assert not (tmp_path / "escaped.ply").exists() and not list(tmp_path.rglob("escaped*"))


def test_reconstruct_refuses_an_input_that_is_a_fifo_instead_of_waiting_on_it(toy_trained, tmp_path, capsys):
    import os

    fifo = tmp_path / "scan.npz"
    os.mkfifo(fifo)
    code, printed, err = _run(
        capsys,
        "reconstruct",
        "--ckpt",
        str(toy_trained["ckpt"]),
        "--input",
        str(fifo),
        *FAST_FIT,
        "--out",
        str(tmp_path / "out"),
    )
    assert code == 2 and "not a regular file" in err and "step" not in printed
