"""The training-recipe switches of ``train`` (issue 11): the curriculum, surface supervision,
the cosine / onecycle schedules and the time budget, each checked for what it claims on the
analytic toy data set, and the defaults checked to be today's recipe."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from core.data.samples import read_samples, write_samples
from core.data.training_set import SdfDataSet
from core.model import load_trained_model
from core.model.autodecoder import AutoDecoder
from core.model.checkpoint import read_checkpoint
from core.model.losses import curriculum_l1
from core.training import build_run_config, train
from core.training.config import CURRICULUM_EPS, CURRICULUM_LAMBDA, RunConfig, TrainConfig
from core.training.trainer import _batch_tensors, _step, curriculum_stage, learning_rates
from core.utils.errors import CheckpointError, ConfigError, DataSetError

ROOT = Path(__file__).resolve().parents[1]
BASE = [
    "train.samples_per_shape=128",
    "train.shapes_per_batch=2",
    "train.threads=1",
    "train.device=cpu",
    "train.seed=3",
]


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


@pytest.fixture(scope="module")
def data_dir(toy_data_dir):
    return toy_data_dir


def _config(epochs: int, *extra: str):
    return build_run_config("tiny", overrides=[f"train.epochs={epochs}", *BASE, *extra])


def _same_state(a: dict, b: dict) -> bool:
    return a["epoch"] == b["epoch"] and all(torch.equal(v, b["model_state"][k]) for k, v in a["model_state"].items())


# -- curriculum --------------------------------------------------------------------------------


def test_curriculum_stages_split_the_epochs_in_four():
    assert CURRICULUM_EPS == (0.025, 0.01, 0.0025, 0.0) and CURRICULUM_LAMBDA == (0.0, 0.1, 0.2, 0.5)
    eight = [curriculum_stage(_config(8, "train.curriculum=true"), e) for e in range(8)]
    assert eight == [(0.025, 0.0)] * 2 + [(0.01, 0.1)] * 2 + [(0.0025, 0.2)] * 2 + [(0.0, 0.5)] * 2
    ten = [curriculum_stage(_config(10, "train.curriculum=true"), e)[0] for e in range(10)]
    assert ten == [0.025] * 3 + [0.01] * 2 + [0.0025] * 3 + [0.0] * 2  # stage = epoch * 4 // 10


def test_curriculum_weighting_on_a_constructed_example():
    """Errors within eps are free; erring to the wrong side weighs 1 + lambda, to the far side 1 - lambda."""
    eps, lam = curriculum_stage(_config(8, "train.curriculum=true"), 5)  # stage 3 of 4: (0.0025, 0.2)
    gt = torch.tensor([0.02, 0.02, -0.02, 0.02])
    pred = torch.tensor([-0.01, 0.05, 0.01, 0.021])  # wrong side, far side, wrong side, within eps
    per_sample = [curriculum_l1(pred[i : i + 1], gt[i : i + 1], 0.1, eps, lam).item() for i in range(4)]
    assert per_sample == pytest.approx([(0.03 - eps) * 1.2, (0.03 - eps) * 0.8, (0.03 - eps) * 1.2, 0.0])


def test_the_trainer_step_uses_curriculum_l1_at_the_epoch_stage(data_dir):
    config = _config(8, "train.curriculum=true", "train.shapes_per_batch=4")
    data = SdfDataSet(data_dir, "train")
    torch.manual_seed(0)
    module = AutoDecoder(config.model, num_shapes=len(data), num_classes=len(data.class_names))
    shapes = list(range(len(data)))
    for epoch in (0, 3, 7):
        batch = _batch_tensors(data, shapes, config, epoch, torch.device("cpu"))
        losses = _step(module, module, batch, config, epoch, len(shapes), 1, torch.device("cpu"))
        with torch.no_grad():
            pred, _ = module(batch["xyz"], batch["shape"], batch["class"], batch["row"], with_colour=False)
        eps, lam = curriculum_stage(config, epoch)
        expected = curriculum_l1(pred, batch["sdf"], config.train.clamp, eps, lam)
        assert losses["sdf"].item() == pytest.approx(expected.item(), rel=1e-5)
    plain = _step(module, module, batch, _config(8, "train.shapes_per_batch=4"), 7, len(shapes), 1, torch.device("cpu"))
    assert plain["sdf"].item() != pytest.approx(losses["sdf"].item(), rel=1e-3)  # lambda 0.5 does weigh


def test_curriculum_run_logs_its_stages(data_dir, tmp_path):
    result = train(_config(4, "train.curriculum=true"), data_dir, tmp_path / "run", progress=False)
    assert [(r["eps"], r["lambda"]) for r in result.history] == list(
        zip(CURRICULUM_EPS, CURRICULUM_LAMBDA, strict=True)
    )
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0].split(",")
    assert "eps" in header and "lambda" in header and "surface" not in header
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["recipe"] == {"curriculum": True}


# -- surface supervision -----------------------------------------------------------------------


def _normal_error(checkpoint: Path, data_dir: Path) -> float:
    """mean(1 - cos(grad f, n)) over the training shapes' own surface points, with their trained codes."""
    model = load_trained_model(checkpoint, device="cpu")
    manifest = json.loads((data_dir / "manifest.json").read_text())
    errors = []
    for record in (r for r in manifest["shapes"] if r["split"] == "train"):
        samples = read_samples(data_dir / record["file"])
        i = model.index_of(record["id"])
        points = torch.tensor(samples.surface_points[:300], requires_grad=True)
        code, colour, condition = model.shape_codes[i], model.colour_codes[i], model.condition(record["class_name"])
        sdf, _ = model.decode(points, code, colour, condition)
        (grad,) = torch.autograd.grad(sdf.sum(), points)
        cos = torch.nn.functional.cosine_similarity(grad, torch.tensor(samples.surface_normals[:300]), dim=1)
        errors.append(float((1.0 - cos).mean()))
    return float(np.mean(errors))


def test_normal_term_turns_the_trained_gradient_toward_the_normals(data_dir, tmp_path):
    """Same runs with and without the normal term (four seeds): the term lowers 1 - cos on every one."""
    ratios = []
    for seed in range(4):
        without = train(_config(6, f"train.seed={seed}"), data_dir, tmp_path / f"without{seed}", progress=False)
        with_normals = train(
            _config(6, f"train.seed={seed}", "train.normal_weight=1"),
            data_dir,
            tmp_path / f"with{seed}",
            progress=False,
        )
        assert "normal" in with_normals.history[-1] and "normal" not in without.history[-1]
        plain = _normal_error(without.checkpoint, data_dir)
        supervised = _normal_error(with_normals.checkpoint, data_dir)
        assert supervised < 0.95 * plain, (seed, plain, supervised)
        ratios.append(supervised / plain)
    assert np.mean(ratios) < 0.85, ratios  # measured: 0.74, 0.58, 0.56, 0.81


def _plane_batch(n: int, m: int, normal: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """SDF samples on the plane through 0 with normal ``normal`` (sdf 0: they say nothing about the
    gradient's direction), and ``m`` surface points on it with that normal."""
    g = torch.Generator().manual_seed(seed)

    def on_plane(k: int) -> torch.Tensor:
        p = torch.rand(k, 3, generator=g) * 1.6 - 0.8
        return p - (p @ normal)[:, None] * normal

    zeros = torch.zeros(n, 3)
    return {
        "xyz": on_plane(n),
        "sdf": torch.zeros(n),
        "rgb": zeros,
        "view": zeros,
        "has_rgb": torch.zeros(n, dtype=torch.bool),
        "shape": torch.tensor([0]),
        "class": torch.tensor([0]),
        "row": torch.zeros(n, dtype=torch.long),
        "surface_xyz": on_plane(m),
        "surface_normal": normal.expand(m, 3).clone(),
        "surface_row": torch.zeros(m, dtype=torch.long),
        "surface_level": torch.tensor(0.0),
    }  # an undilated field: the surface is its zero level


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_normal_term_on_a_plane(weight):
    """A toy decoder trained on a tilted plane's points: only the normal term aligns its gradient."""
    normal = torch.nn.functional.normalize(torch.tensor([1.0, 0.0, 1.0]), dim=0)
    config = _config(
        1,
        "train.surface_weight=1",
        f"train.normal_weight={weight}",
        "train.code_reg=0",
        "train.samples_per_shape=256",
        "model.colour=false",
    )
    torch.manual_seed(0)
    module = AutoDecoder(config.model, num_shapes=1, num_classes=1)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)

    def normal_error() -> float:
        probe = _plane_batch(256, 256, normal, seed=99)
        points = probe["surface_xyz"].requires_grad_(True)
        sdf, _ = module(points, probe["shape"], probe["class"], probe["surface_row"], with_colour=False)
        (grad,) = torch.autograd.grad(sdf.sum(), points)
        return float((1.0 - torch.nn.functional.cosine_similarity(grad, probe["surface_normal"], dim=1)).mean())

    before = normal_error()
    for step in range(40):
        losses = _step(module, module, _plane_batch(256, 64, normal, seed=step), config, 0, 1, 1, torch.device("cpu"))
        assert ("normal" in losses) == bool(weight)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
    after = normal_error()
    if weight:
        assert after < 0.1 and after < 0.5 * before, (before, after)
    else:  # f = 0 on the plane is learnt, its gradient's direction is not
        assert after > 0.2, (before, after)


def test_surface_draws_leave_the_sample_draws_unchanged(data_dir):
    """Surface points come from their own generators: the SDF samples of a batch are those of the default."""
    plain = SdfDataSet(data_dir, "train")
    assert all(s.surface_points is None for s in plain.shapes)  # nothing extra held by default
    with_surface = SdfDataSet(data_dir, "train", with_surface=True)
    default, on = _config(4), _config(4, "train.surface_weight=0.5")
    a = _batch_tensors(plain, [0, 2], default, 1, torch.device("cpu"))
    b = _batch_tensors(with_surface, [0, 2], on, 1, torch.device("cpu"))
    assert "surface_xyz" not in a and b["surface_xyz"].shape == (2 * 32, 3)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    norms = b["surface_normal"].norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_surface_supervision_needs_surface_points(data_dir, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(data_dir, bare)
    first = next((bare / "SdfSamples").rglob("*.npz"))
    write_samples(first, replace(read_samples(first), surface_points=None, surface_normals=None, surface_rgb=None))
    SdfDataSet(bare, "train")  # fine without surface supervision
    with pytest.raises(DataSetError, match="surface_weight=0"):
        train(_config(2, "train.surface_weight=1"), bare, tmp_path / "run", progress=False)


# -- code noise --------------------------------------------------------------------------------


def test_code_noise_evaluates_the_loss_at_shifted_codes(data_dir):
    """The step's SDF loss is the clamped L1 at z_i + n_i, n_i drawn per (seed, epoch, shape) from its own
    generator with the configured deviation; the samples of the batch are those of a run without noise."""
    data = SdfDataSet(data_dir, "train")
    plain, noisy = (
        _config(4, "train.shapes_per_batch=4"),
        _config(4, "train.shapes_per_batch=4", "train.code_noise=0.3"),
    )
    torch.manual_seed(0)
    module = AutoDecoder(noisy.model, num_shapes=len(data), num_classes=len(data.class_names))
    shapes = list(range(len(data)))
    a = _batch_tensors(data, shapes, plain, 2, torch.device("cpu"))
    b = _batch_tensors(data, shapes, noisy, 2, torch.device("cpu"))
    assert "code_noise" not in a and b["code_noise"].shape == (len(shapes), noisy.model.code_size)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(b["code_noise"], _batch_tensors(data, shapes, noisy, 2, torch.device("cpu"))["code_noise"])
    assert not torch.equal(b["code_noise"], _batch_tensors(data, shapes, noisy, 3, torch.device("cpu"))["code_noise"])
    assert float(b["code_noise"].std()) == pytest.approx(0.3, rel=0.35)
    losses = _step(module, module, b, noisy, 2, len(shapes), 1, torch.device("cpu"))
    with torch.no_grad():
        pred, _ = module(b["xyz"], b["shape"], b["class"], b["row"], with_colour=False)
        module.shape_codes.weight[b["shape"]] += b["code_noise"]
        shifted, _ = module(b["xyz"], b["shape"], b["class"], b["row"], with_colour=False)
    clamp = noisy.train.clamp

    def l1(p):
        return (p.clamp(-clamp, clamp) - b["sdf"].clamp(-clamp, clamp)).abs().mean().item()

    assert losses["sdf"].item() == pytest.approx(l1(shifted), rel=1e-5)
    assert losses["sdf"].item() != pytest.approx(l1(pred), rel=1e-3)  # the noise does move the codes


def test_a_code_noise_run_resumes_exactly(data_dir, tmp_path):
    straight = tmp_path / "straight"
    train(_config(3, "train.code_noise=0.2"), data_dir, straight, progress=False)
    run = tmp_path / "run"
    train(_config(3, "train.code_noise=0.2", "train.max_minutes=1e-9"), data_dir, run, progress=False)
    assert main.main(["train", "--out", str(run), "--resume", "--set", "train.max_minutes=0", "--no-progress"]) == 0
    finished = read_checkpoint(run / "checkpoints" / "latest.pt")
    assert _same_state(finished, read_checkpoint(straight / "checkpoints" / "latest.pt"))
    without = read_checkpoint(train(_config(3), data_dir, tmp_path / "plain", progress=False).checkpoint)
    assert not _same_state(finished, without)


# -- learning-rate schedules -------------------------------------------------------------------


def test_every_model_preset_has_its_training_recipe(tmp_path):
    from core.model.config import PRESETS
    from core.training.config import TRAIN_PRESETS

    assert set(TRAIN_PRESETS) == set(PRESETS)
    paper = build_run_config("paper").train  # DeepSDF's specs.json
    assert (paper.epochs, paper.shapes_per_batch, paper.samples_per_shape) == (2001, 64, 16384)
    assert (paper.lr_decoder, paper.lr_codes, paper.lr_interval, paper.lr_schedule) == (5e-4, 1e-3, 500, "step")
    for name, values in TRAIN_PRESETS.items():
        train_config = build_run_config(name).train
        assert all(getattr(train_config, k) == v for k, v in values.items())
        untouched = [f for f in TrainConfig.__dataclass_fields__ if f not in values]
        assert all(getattr(train_config, f) == getattr(TrainConfig(), f) for f in untouched)
    # a config file naming another preset takes that preset's recipe; --set still wins over both
    toml = tmp_path / "run.toml"
    toml.write_text('[model]\npreset = "paper"\n')
    config = build_run_config("default", toml, overrides=["train.epochs=7"])
    assert config.model.preset == "paper" and config.train.shapes_per_batch == 64 and config.train.epochs == 7


def test_the_dataclass_default_schedule_is_the_step_schedule():
    config = RunConfig(train=TrainConfig())
    t = config.train
    assert t.lr_schedule == "step" and not t.curriculum and t.surface_weight == t.normal_weight == t.max_minutes == 0
    for epoch in (0, 199, 200, 450, 499):
        factor = t.lr_factor ** (epoch // t.lr_interval)
        assert learning_rates(config, epoch) == (t.lr_decoder * factor, t.lr_codes * factor)


def test_cosine_schedule():
    config = _config(101, "train.lr_schedule=cosine", "train.lr_min_factor=0.1")
    lr0, lc0 = config.train.lr_decoder, config.train.lr_codes
    assert learning_rates(config, 0) == pytest.approx((lr0, lc0))
    assert learning_rates(config, 50) == pytest.approx((0.55 * lr0, 0.55 * lc0))  # half way: (1 + m) / 2
    assert learning_rates(config, 100) == pytest.approx((0.1 * lr0, 0.1 * lc0))
    e = 20
    expected = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * e / 100))
    assert learning_rates(config, e)[0] == pytest.approx(expected * lr0)
    rates = [learning_rates(config, e)[0] for e in range(101)]
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))


def test_onecycle_schedule():
    config = _config(100, "train.lr_schedule=onecycle", "train.lr_min_factor=0.01")
    lr0 = config.train.lr_decoder  # 5 warm-up epochs (5 % of 100), then a cosine over epochs 5..99
    warm = [learning_rates(config, e)[0] / lr0 for e in range(6)]
    assert warm == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    assert learning_rates(config, 52)[0] == pytest.approx((0.01 + 0.99 * 0.5) * lr0)  # p = 47 / 94
    assert learning_rates(config, 99)[0] == pytest.approx(0.01 * lr0)


def test_schedule_is_what_the_run_uses(data_dir, tmp_path):
    config = _config(4, "train.lr_schedule=cosine")
    result = train(config, data_dir, tmp_path / "run", progress=False)
    assert [(r["lr_decoder"], r["lr_codes"]) for r in result.history] == [learning_rates(config, e) for e in range(4)]


def test_extending_a_cosine_run_says_the_schedule_stretches(data_dir, tmp_path, caplog):
    run = tmp_path / "run"
    train(_config(2, "train.lr_schedule=cosine"), data_dir, run, progress=False)
    with caplog.at_level(logging.WARNING, logger="core.training.trainer"):
        result = train(_config(3, "train.lr_schedule=cosine"), data_dir, run, resume=True, progress=False)
    assert "train.epochs 2 -> 3 stretches the cosine learning rates" in caplog.text
    assert result.history[-1]["lr_decoder"] == pytest.approx(
        learning_rates(_config(3, "train.lr_schedule=cosine"), 2)[0]
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr_schedule=linear", "train.lr_schedule: 'linear'"),
        ("train.lr_min_factor=1.5", "train.lr_min_factor"),
        ("train.surface_weight=-1", "train.surface_weight"),
        ("train.code_noise=-0.1", "train.code_noise"),
        ("train.normal_weight=inf", "train.normal_weight"),
        ("train.max_minutes=nan", "train.max_minutes"),
        ("train.max_minutes=-5", "train.max_minutes"),
    ],
)
def test_impossible_recipe_values(override, message):
    with pytest.raises(ConfigError, match=message):
        build_run_config("tiny", overrides=[override])


# -- time budget -------------------------------------------------------------------------------


def test_time_budget_stops_after_an_epoch_and_resumes_exactly(data_dir, tmp_path, caplog, capsys):
    straight = tmp_path / "straight"
    train(_config(3), data_dir, straight, progress=False)
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="core.training.trainer"):
        result = train(_config(3, "train.max_minutes=1e-9"), data_dir, run, progress=False)
    assert result.stopped_by_time and not result.cancelled and result.epochs_done == 1
    assert "stopped at the time budget after 1 epochs" in caplog.text
    stats = json.loads((run / "stats.json").read_text())
    assert stats["epochs"] == 1 and stats["time_budget"]["stopped_early"] and stats["time_budget"]["epochs_done"] == 1
    assert stats["time_budget"]["seconds"] == pytest.approx(stats["train_seconds"]) and stats["train_seconds"] > 0
    model = load_trained_model(result.checkpoint, device="cpu")  # a normal checkpoint
    assert model.index_of("ball0") == 0
    # the same budget again: one more epoch; then --resume without a budget finishes the run exactly
    again = train(_config(3, "train.max_minutes=1e-9"), data_dir, run, resume=True, progress=False)
    assert again.stopped_by_time and again.epochs_done == 2
    assert main.main(["train", "--out", str(run), "--resume", "--set", "train.max_minutes=0", "--no-progress"]) == 0
    assert "trained 3 epochs" in capsys.readouterr().out
    finished = read_checkpoint(run / "checkpoints" / "latest.pt")
    assert _same_state(finished, read_checkpoint(straight / "checkpoints" / "latest.pt"))
    assert "stopped_early" not in json.dumps(finished["stats"])  # budget off: no time_budget entry
    # and a later resume may extend the run as before
    assert main.main(["train", "--out", str(run), "--resume", "--epochs", "4", "--no-progress"]) == 0
    assert read_checkpoint(run / "checkpoints" / "latest.pt")["epoch"] == 4


def test_cpu_budget_counts_process_cpu_time_and_resumes(data_dir, tmp_path, caplog):
    """train.max_cpu_minutes: the CPU seconds are logged, counted over the resume, and stop the run."""
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="core.training.trainer"):
        result = train(_config(3, "train.max_cpu_minutes=1e-9"), data_dir, run, progress=False)
    assert result.stopped_by_time and result.epochs_done == 1
    stats = json.loads((run / "stats.json").read_text())
    budget = stats["time_budget"]
    assert budget["max_cpu_minutes"] == 1e-9 and budget["stopped_early"] and budget["cpu_seconds"] > 0
    assert stats["train_cpu_seconds"] == pytest.approx(budget["cpu_seconds"])
    with (run / "log.csv").open(newline="") as handle:
        first = [float(r["cpu_seconds"]) for r in csv.DictReader(handle)]
    again = train(_config(3, "train.max_cpu_minutes=1e-9"), data_dir, run, resume=True, progress=False)
    assert again.stopped_by_time and again.epochs_done == 2
    with (run / "log.csv").open(newline="") as handle:
        both = [float(r["cpu_seconds"]) for r in csv.DictReader(handle)]
    assert both[0] == first[0] and both[1] > both[0]  # counted over the whole run, resumes included


def test_a_budget_that_is_not_spent_changes_nothing(data_dir, tmp_path):
    a = train(_config(2), data_dir, tmp_path / "a", progress=False)
    b = train(_config(2, "train.max_minutes=600"), data_dir, tmp_path / "b", progress=False)
    assert not b.stopped_by_time and b.epochs_done == 2
    assert _same_state(read_checkpoint(a.checkpoint), read_checkpoint(b.checkpoint))
    assert json.loads((tmp_path / "b" / "stats.json").read_text())["time_budget"]["stopped_early"] is False


# -- distributed -------------------------------------------------------------------------------

_DIST_SCRIPT = """
import json, sys
import torch.distributed as dist
from core.training import build_run_config, train
spec = json.loads(sys.argv[1])
result = train(build_run_config("tiny", overrides=spec["overrides"]), spec["data"], spec["run"], progress=False)
print(f"rank {dist.get_rank()} epochs {result.epochs_done}", flush=True)
dist.barrier()
dist.destroy_process_group()
"""


def test_recipe_switches_under_two_processes_match_one(data_dir, tmp_path):
    """Curriculum and surface terms are normalised by the global counts: a 2-process gloo run equals one process."""
    overrides = [
        *BASE,
        "train.epochs=3",
        "train.shapes_per_batch=4",
        "model.dropout=0",
        "train.curriculum=true",
        "train.surface_weight=1",
        "train.normal_weight=0.5",
        "train.lr_schedule=onecycle",
        "train.max_minutes=600",
    ]
    script = tmp_path / "dist_train.py"
    script.write_text(_DIST_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = {"overrides": overrides, "data": str(data_dir), "run": str(tmp_path / "ddp")}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            str(script),
            json.dumps(spec),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "rank 0 epochs 3" in proc.stdout and "rank 1 epochs 3" in proc.stdout
    single = train(build_run_config("tiny", overrides=overrides), data_dir, tmp_path / "single", progress=False)
    a, b = read_checkpoint(single.checkpoint), read_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    for key, value in a["model_state"].items():
        torch.testing.assert_close(b["model_state"][key], value, atol=1e-5, rtol=0, msg=key)
    keys = ("loss", "sdf", "surface", "normal", "eps", "lambda", "lr_decoder")
    ddp_last = {k: float(v) for k, v in _csv_rows(tmp_path / "ddp")[-1].items() if k in keys}
    assert ddp_last == pytest.approx({k: single.history[-1][k] for k in keys}, rel=1e-4, abs=1e-7)


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "log.csv", newline="") as handle:
        return list(csv.DictReader(handle))


# -- warm start and a curriculum that starts late ------------------------------------------------


def test_curriculum_first_stage_spreads_the_remaining_stages_over_the_run():
    late = _config(5, "train.curriculum=true", "train.curriculum_first_stage=3")
    last = [curriculum_stage(late, e) for e in range(5)]
    assert last == [(0.0, 0.5)] * 5
    two = [curriculum_stage(_config(6, "train.curriculum=true", "train.curriculum_first_stage=2"), e) for e in range(6)]
    assert two == [(0.0025, 0.2)] * 3 + [(0.0, 0.5)] * 3
    with pytest.raises(ConfigError, match="curriculum_first_stage: 4 must be a stage from 0 to 3"):
        _config(5, "train.curriculum_first_stage=4")


def test_init_from_starts_from_the_checkpoint_weights_and_codes(data_dir, tmp_path):
    """With both learning rates 0 and no code regulariser a warm-started run must end where its
    source ended; a cold start with the same settings does not."""
    source = train(_config(3), data_dir, tmp_path / "source", progress=False).checkpoint
    frozen = ("train.lr_decoder=0", "train.lr_codes=0", "train.code_reg=0")
    warm = train(_config(2, *frozen, f"train.init_from={source}"), data_dir, tmp_path / "warm", progress=False)
    cold = train(_config(2, *frozen), data_dir, tmp_path / "cold", progress=False)
    src, got, new = (read_checkpoint(p)["model_state"] for p in (source, warm.checkpoint, cold.checkpoint))
    assert all(torch.equal(got[k], v) for k, v in src.items())
    assert not torch.equal(new["shape_codes.weight"], src["shape_codes.weight"])
    stats = json.loads((tmp_path / "warm" / "stats.json").read_text())
    assert stats["recipe"]["init_from"] == str(source)
    assert warm.history[0]["sdf"] < cold.history[0]["sdf"]  # it starts from the trained model's loss


def test_init_from_refuses_other_shapes_or_another_architecture(data_dir, tmp_path):
    source = train(_config(1), data_dir, tmp_path / "source", progress=False).checkpoint
    with pytest.raises(ConfigError, match=r"other model settings \(model.code_size"):
        train(_config(1, f"train.init_from={source}", "model.code_size=7"), data_dir, tmp_path / "a", progress=False)
    classes = sorted({r["class_name"] for r in json.loads((data_dir / "manifest.json").read_text())["shapes"]})
    with pytest.raises(CheckpointError, match="trained on other shapes"):
        train(
            _config(1, f"train.init_from={source}", f'train.classes=["{classes[0]}"]'),
            data_dir,
            tmp_path / "b",
            progress=False,
        )
    with pytest.raises(CheckpointError, match="no such file"):
        train(_config(1, f"train.init_from={tmp_path / 'missing.pt'}"), data_dir, tmp_path / "c", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    # dropout holds no weights: a second stage may add it
    second = train(
        _config(1, f"train.init_from={source}", "model.dropout=0.1"), data_dir, tmp_path / "d", progress=False
    )
    assert read_checkpoint(second.checkpoint)["config"]["model"]["dropout"] == 0.1
