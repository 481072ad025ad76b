"""Experiment directories of the original DeepSDF code open as this project's models.

The experiments are written by ``tests/deepsdf_experiment.py`` in the original layout and key
names (a re-typed original ``Decoder`` saved through ``DataParallel``); the imported model must
compute what that decoder computes on the same weights.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

import main
from core.model import load_trained_model
from core.model.deepsdf_format import (
    DeepSDFExperimentError,
    is_deepsdf_experiment,
    list_checkpoints,
    load_deepsdf_experiment,
    save_imported_checkpoint,
)
from core.utils.errors import CheckpointError
from tests.deepsdf_experiment import SPLIT, SPLIT_REL, sdf_samples_npz, write_experiment

# Float32 sums in another order (the latent's columns are folded into the bias): equal to rounding.
ATOL = 4e-6

VARIANTS = {
    "paper": {},  # examples/chairs/specs.json narrowed: weight norm everywhere, latent_in [2], dropout
    "layernorm_xyz_in_all_tanh": {"weight_norm": False, "norm_layers": [0, 2, 4], "xyz_in_all": True, "use_tanh": True},
    "partial_weight_norm": {"norm_layers": [1, 3, 4], "latent_in": [], "dropout": None},
    "two_skips_xyz_in_all": {"latent_in": [1, 3], "xyz_in_all": True, "norm_layers": [0, 1, 2]},
}


def _assert_same_outputs(model, decoder, codes, n=400):
    xyz = torch.rand(n, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1
    for k in range(len(codes)):
        with torch.no_grad():
            ref = decoder(torch.cat([codes[k].expand(n, -1), xyz], dim=1))[:, 0]
            ours, rgb = model.decode(xyz, model.shape_codes[k])
        assert rgb is None
        torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_outputs_equal_the_original_decoder(tmp_path, variant):
    exp, saved = write_experiment(tmp_path, network_overrides=VARIANTS[variant])
    model = load_trained_model(exp, device="cpu")  # the experiment directory goes through the usual loader
    decoder, codes = saved["latest"]
    assert model.decoder.training is False
    torch.testing.assert_close(model.shape_codes, codes)
    _assert_same_outputs(model, decoder, codes)


def test_weight_norm_kept_as_g_and_v(tmp_path):
    exp, saved = write_experiment(tmp_path)
    model = load_deepsdf_experiment(exp, device="cpu")
    layer = model.decoder.layers[0]
    torch.testing.assert_close(layer.parametrizations.weight.original0, saved["latest"][0].lin0.weight_g)
    torch.testing.assert_close(layer.parametrizations.weight.original1, saved["latest"][0].lin0.weight_v)


@pytest.mark.parametrize("latent_format", ["embedding", "tensor"])
def test_both_latent_code_formats(tmp_path, latent_format):
    exp, saved = write_experiment(tmp_path, latent_format=latent_format)
    stored = torch.load(exp / "LatentCodes" / "latest.pth", weights_only=True)["latent_codes"]
    assert isinstance(stored, dict) == (latent_format == "embedding")
    model = load_deepsdf_experiment(exp, device="cpu")
    torch.testing.assert_close(model.shape_codes, saved["latest"][1])


def test_names_classes_and_metadata_from_the_split(tmp_path):
    exp, _ = write_experiment(tmp_path)
    model = load_deepsdf_experiment(exp, device="cpu")
    instances = [i for classes in SPLIT.values() for ids in classes.values() for i in ids]
    assert model.shape_ids == instances  # code k = k-th instance in file order, as DeepSDF's loader
    assert model.class_names == ["chair", "table", "12345678"]  # known synsets by name, others by folder
    assert model.shape_classes == ["chair"] * 3 + ["table"] * 2 + ["12345678"]
    assert model.stats["synsets"]["chair"] == "03001627"
    assert model.stats["split"].endswith(SPLIT_REL)
    assert model.config.conditioning == "none" and not model.has_colour
    assert model.condition("chair") is None
    mean, std = model.code_statistics("table")
    torch.testing.assert_close(mean, model.shape_codes[3:5].mean(dim=0))
    assert is_deepsdf_experiment(exp) and is_deepsdf_experiment(exp / "ModelParameters" / "5.pth")
    assert load_trained_model(exp / "LatentCodes", device="cpu").shape_ids == model.shape_ids  # a sub-folder
    assert not is_deepsdf_experiment(tmp_path)


def test_epoch_choice_and_the_pth_file_itself(tmp_path):
    exp, saved = write_experiment(tmp_path, checkpoints=("latest", "5", "10"))
    assert list_checkpoints(exp) == ["5", "10", "latest"]
    for epoch in (5, "10"):
        model = load_deepsdf_experiment(exp, epoch=epoch, device="cpu")
        torch.testing.assert_close(model.shape_codes, saved[str(epoch)][1])
    model = load_trained_model(exp / "ModelParameters" / "10.pth", device="cpu")
    torch.testing.assert_close(model.shape_codes, saved["10"][1])
    with pytest.raises(DeepSDFExperimentError, match=r"epoch '7' not found.*5, 10, latest"):
        load_deepsdf_experiment(exp, epoch=7)


def test_without_latest_the_highest_epoch_is_used(tmp_path):
    exp, saved = write_experiment(tmp_path, checkpoints=("5", "10"))
    model = load_deepsdf_experiment(exp, device="cpu")
    torch.testing.assert_close(model.shape_codes, saved["10"][1])
    assert any("10" in w for w in model.stats["warnings"])
    with pytest.raises(DeepSDFExperimentError, match="latest"):  # asked for by name: no silent substitute
        load_deepsdf_experiment(exp, epoch="latest")


def test_missing_split_gives_unnamed_codes_and_a_warning_and_split_flag_names_them(tmp_path):
    exp, _ = write_experiment(tmp_path, write_split=False)
    model = load_deepsdf_experiment(exp, device="cpu")
    assert model.shape_ids[0] == "shape_0000" and model.class_names == ["unknown"]
    assert "not found" in model.stats["warnings"][0]
    split = tmp_path / "my_split.json"
    split.write_text(json.dumps(SPLIT))
    named = load_deepsdf_experiment(exp, split=split, device="cpu")
    assert named.class_names == ["chair", "table", "12345678"]


# -- bad experiments ---------------------------------------------------------------------------
def test_missing_specs_json(tmp_path):
    exp, _ = write_experiment(tmp_path)
    (exp / "specs.json").unlink()
    with pytest.raises(CheckpointError, match="no specs.json"):
        load_trained_model(exp)  # ModelParameters/ makes it an experiment; the message says what is missing


def test_code_length_that_does_not_match_the_codes(tmp_path):
    exp, _ = write_experiment(tmp_path)
    specs = json.loads((exp / "specs.json").read_text())
    specs["CodeLength"] = 16
    (exp / "specs.json").write_text(json.dumps(specs))
    with pytest.raises(DeepSDFExperimentError, match=r"latent codes of length 8 but specs.json's CodeLength is 16"):
        load_deepsdf_experiment(exp)


def test_dims_that_do_not_match_the_weights(tmp_path):
    exp, _ = write_experiment(tmp_path)
    specs = json.loads((exp / "specs.json").read_text())
    specs["NetworkSpecs"]["dims"] = [32, 32, 48, 32]
    (exp / "specs.json").write_text(json.dumps(specs))
    pattern = r"lin2\.(bias|weight_g|weight_v) has shape \(32.*dims \[32, 32, 48, 32\].* needs \(48"
    with pytest.raises(DeepSDFExperimentError, match=pattern):
        load_deepsdf_experiment(exp)


def test_weight_norm_switched_off_after_training(tmp_path):
    exp, _ = write_experiment(tmp_path)
    specs = json.loads((exp / "specs.json").read_text())
    specs["NetworkSpecs"]["weight_norm"] = False
    (exp / "specs.json").write_text(json.dumps(specs))
    with pytest.raises(DeepSDFExperimentError, match="lacks weights that specs.json's NetworkSpecs need"):
        load_deepsdf_experiment(exp)


def test_split_with_another_number_of_shapes(tmp_path):
    exp, _ = write_experiment(tmp_path)
    (exp.parents[1] / SPLIT_REL).write_text(json.dumps({"ShapeNetV2": {"03001627": ["a", "b"]}}))
    with pytest.raises(DeepSDFExperimentError, match="lists 2 shapes but the experiment has 6 latent codes"):
        load_deepsdf_experiment(exp)


def test_another_network_architecture(tmp_path):
    exp, _ = write_experiment(tmp_path, specs_overrides={"NetworkArch": "my_decoder"})
    with pytest.raises(DeepSDFExperimentError, match="NetworkArch is 'my_decoder'"):
        load_deepsdf_experiment(exp)


class _RunsCode:
    """A pickle that would create a folder when unpickled without weights_only."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_a_pickle_carrying_code_is_refused_and_never_run(tmp_path):
    exp, _ = write_experiment(tmp_path)
    marker = tmp_path / "code_ran"
    torch.save(
        {"epoch": 5, "model_state_dict": {"module.lin0.bias": _RunsCode(marker)}},
        exp / "ModelParameters" / "latest.pth",
    )
    with pytest.raises(DeepSDFExperimentError, match="refused: the file holds pickled Python objects") as info:
        load_deepsdf_experiment(exp)
    assert "makedirs" in str(info.value)
    assert not marker.exists()


def test_damaged_and_mismatched_files(tmp_path):
    exp, _ = write_experiment(tmp_path, checkpoints=("latest", "5", "10"))
    (exp / "LatentCodes" / "5.pth").write_bytes(b"not a torch file")
    with pytest.raises(DeepSDFExperimentError, match=r"5\.pth: not a readable PyTorch file"):
        load_deepsdf_experiment(exp, epoch=5)
    data = torch.load(exp / "LatentCodes" / "10.pth", weights_only=True)
    torch.save({**data, "epoch": 9}, exp / "LatentCodes" / "10.pth")
    with pytest.raises(DeepSDFExperimentError, match="latent codes of epoch 9 but the decoder .* epoch 10"):
        load_deepsdf_experiment(exp, epoch=10)


# -- the commands ------------------------------------------------------------------------------
def test_import_command_writes_a_checkpoint_with_the_same_outputs(tmp_path, capsys):
    exp, saved = write_experiment(tmp_path, network_overrides=VARIANTS["layernorm_xyz_in_all_tanh"])
    out = tmp_path / "imported" / "chairs.pt"
    assert main.main(["import-deepsdf", str(exp), "--out", str(out)]) == 0
    assert "6 codes of length 8 in 3 classes: chair (3), table (2), 12345678 (1)" in capsys.readouterr().out
    model = load_trained_model(out, device="cpu")
    assert model.class_names == ["chair", "table", "12345678"] and model.config.xyz_in_all
    assert model.full_config["deepsdf"]["specs"]["CodeLength"] == 8
    _assert_same_outputs(model, *saved["latest"])


def test_import_command_errors_are_one_line(tmp_path, capsys):
    assert main.main(["import-deepsdf", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such folder" in err and "Traceback" not in err
    exp, _ = write_experiment(tmp_path)
    assert main.main(["import-deepsdf", str(exp), "--epoch", "3", "--out", str(tmp_path / "m.pt")]) == 2
    assert "checkpoints in ModelParameters/: 5, latest" in capsys.readouterr().err
    assert not (tmp_path / "m.pt").exists()


def test_reconstruct_takes_the_experiment_and_the_imported_checkpoint(tmp_path, capsys):
    exp, _ = write_experiment(tmp_path, weights="octahedra")
    ckpt = save_imported_checkpoint(load_deepsdf_experiment(exp, device="cpu"), tmp_path / "m.pt")
    samples = sdf_samples_npz(tmp_path / "ball.npz")
    for name, source in (("from_dir", exp), ("from_pt", ckpt)):
        out = tmp_path / name
        rc = main.main(
            [
                "reconstruct",
                "--ckpt",
                str(source),
                "--input",
                str(samples),
                "--iterations",
                "20",
                "--samples-per-step",
                "1000",
                "--resolution",
                "32",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        assert rc == 0, capsys.readouterr().err
        codes = json.loads((out / "codes.json").read_text())
        assert len(codes["shape_code"]) == 8
        assert (out / "mesh.ply").exists()


# --------------------------------------------------------------------------- issue 28, item 9


def _respec(exp, **network):
    specs = json.loads((exp / "specs.json").read_text())
    specs["NetworkSpecs"].update(network)
    (exp / "specs.json").write_text(json.dumps(specs))


@pytest.mark.parametrize(
    "network, says",
    [
        ({"dropout_prob": "high"}, "dropout_prob is 'high', not a probability in [0, 1)"),
        ({"dropout_prob": 1.5}, "not a probability"),
        ({"weight_norm": "false"}, "weight_norm is 'false', not true or false"),
        ({"dims": [200000] * 4}, "has shape"),
    ],
)
def test_bad_specs_are_one_line_in_import_and_in_every_loader(tmp_path, capsys, network, says):
    import time

    exp, _ = write_experiment(tmp_path)
    _respec(exp, **network)
    start = time.perf_counter()
    assert main.main(["import-deepsdf", str(exp), "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and "Traceback" not in err and err.count("\n") == 1
    assert time.perf_counter() - start < 10  # no 160 GB allocation before the weights are looked at
    with pytest.raises(DeepSDFExperimentError) as caught:  # what view and reconstruct open experiments with
        load_trained_model(exp, device="cpu")
    assert f"error: {caught.value}\n" == err
    assert not (tmp_path / "m.pt").exists()


def test_a_checkpoint_whose_config_claims_huge_layers_is_refused_without_allocating(tmp_path):
    import time

    exp, _ = write_experiment(tmp_path)
    ckpt = save_imported_checkpoint(load_deepsdf_experiment(exp, device="cpu"), tmp_path / "m.pt")
    data = torch.load(ckpt, weights_only=True)
    data["config"]["model"]["hidden_dims"] = [200000] * 4
    torch.save(data, tmp_path / "huge.pt")
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="do not fit the model configuration.*size mismatch"):
        load_trained_model(tmp_path / "huge.pt", device="cpu")
    assert time.perf_counter() - start < 10
