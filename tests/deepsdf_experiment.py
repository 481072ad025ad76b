"""Small experiment directories of the original DeepSDF code, written in its exact layout and key names.

``OriginalDecoder`` is facebookresearch/DeepSDF's ``networks/deep_sdf_decoder.py`` ``Decoder``
re-typed here (same attribute names ``lin<i>`` / ``bn<i>``, ``nn.utils.weight_norm`` giving
``weight_g`` / ``weight_v``, the input concatenated again at ``latent_in``, ``xyz_in_all``, the
``use_tanh`` tanh and the final ``th`` tanh). ``write_experiment`` saves it through
``torch.nn.DataParallel`` (keys ``module.lin0.weight_g`` ...) as ``train_deep_sdf.py`` does.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SPLIT_REL = "examples/splits/sv2_mixed_train.json"

# dataset -> synset -> instances: chairs and tables (known ShapeNet synsets) and one unknown synset.
SPLIT = {
    "ShapeNetV2": {
        "03001627": ["1007e20d5e811b308351982a6e40cf41", "1013f70851210a618f2e765c4a8ed3d", "1015e71a0d21b127de03ab2a"],
        "04379243": ["1011e1c9812b84d2a9ed7bb5b55809f8", "10139657dfa9afe0c3bd24f986301745"],
        "12345678": ["ffff0000"],
    }
}

NETWORK_SPECS = {  # examples/chairs/specs.json, narrowed: 4 x 32 instead of 8 x 512
    "dims": [32, 32, 32, 32],
    "dropout": [0, 1, 2, 3],
    "dropout_prob": 0.2,
    "norm_layers": [0, 1, 2, 3],
    "latent_in": [2],
    "xyz_in_all": False,
    "use_tanh": False,
    "latent_dropout": False,
    "weight_norm": True,
}


class OriginalDecoder(nn.Module):
    """DeepSDF's Decoder, line for line in behaviour."""

    def __init__(
        self,
        latent_size,
        dims,
        dropout=None,
        dropout_prob=0.0,
        norm_layers=(),
        latent_in=(),
        weight_norm=False,
        xyz_in_all=None,
        use_tanh=False,
        latent_dropout=False,
    ):
        super().__init__()
        dims = [latent_size + 3] + dims + [1]
        self.num_layers = len(dims)
        self.norm_layers = norm_layers
        self.latent_in = latent_in
        self.latent_dropout = latent_dropout
        self.xyz_in_all = xyz_in_all
        self.weight_norm = weight_norm
        for layer in range(0, self.num_layers - 1):
            if layer + 1 in latent_in:
                out_dim = dims[layer + 1] - dims[0]
            else:
                out_dim = dims[layer + 1]
                if self.xyz_in_all and layer != self.num_layers - 2:
                    out_dim -= 3
            if weight_norm and layer in self.norm_layers:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # torch deprecates the API DeepSDF uses
                    setattr(self, "lin" + str(layer), nn.utils.weight_norm(nn.Linear(dims[layer], out_dim)))
            else:
                setattr(self, "lin" + str(layer), nn.Linear(dims[layer], out_dim))
            if (not weight_norm) and self.norm_layers is not None and layer in self.norm_layers:
                setattr(self, "bn" + str(layer), nn.LayerNorm(out_dim))
        self.use_tanh = use_tanh
        if use_tanh:
            self.tanh = nn.Tanh()
        self.relu = nn.ReLU()
        self.dropout_prob = dropout_prob
        self.dropout = dropout
        self.th = nn.Tanh()

    def forward(self, input):
        xyz = input[:, -3:]
        if input.shape[1] > 3 and self.latent_dropout:
            latent_vecs = F.dropout(input[:, :-3], p=0.2, training=self.training)
            x = torch.cat([latent_vecs, xyz], 1)
        else:
            x = input
        for layer in range(0, self.num_layers - 1):
            lin = getattr(self, "lin" + str(layer))
            if layer in self.latent_in:
                x = torch.cat([x, input], 1)
            elif layer != 0 and self.xyz_in_all:
                x = torch.cat([x, xyz], 1)
            x = lin(x)
            if layer == self.num_layers - 2 and self.use_tanh:
                x = self.tanh(x)
            if layer < self.num_layers - 2:
                if self.norm_layers is not None and layer in self.norm_layers and not self.weight_norm:
                    x = getattr(self, "bn" + str(layer))(x)
                x = self.relu(x)
                if self.dropout is not None and layer in self.dropout:
                    x = F.dropout(x, p=self.dropout_prob, training=self.training)
        if hasattr(self, "th"):
            x = self.th(x)
        return x


def randomise(decoder: OriginalDecoder, seed: int = 0) -> OriginalDecoder:
    """Random weights everywhere, weight-norm gains and LayerNorm affine included (not their identity init)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in decoder.named_parameters():
            scale = 0.5 if name.endswith("weight_g") else 0.3
            p.copy_(torch.randn(p.shape, generator=gen) * scale + (1.0 if name.startswith("bn") else 0.0))
    return decoder


def _set_linear(lin: nn.Linear, weight: torch.Tensor, bias: torch.Tensor, gen: torch.Generator) -> None:
    """Make ``lin`` compute ``weight @ x + bias``, through (g, v) when it is weight-normalised."""
    if hasattr(lin, "weight_g"):
        v = weight.clone()
        zero = weight.norm(dim=1) == 0
        v[zero] = torch.randn(int(zero.sum()), weight.shape[1], generator=gen)  # g = 0 keeps these rows zero
        lin.weight_v.copy_(v)
        lin.weight_g.copy_(weight.norm(dim=1, keepdim=True))
    else:
        lin.weight.copy_(weight)
    lin.bias.copy_(bias)


def octahedra(decoder: OriginalDecoder, code_size: int) -> OriginalDecoder:
    """Weights whose SDF is an octahedron |x|+|y|+|z| = 0.5 + 0.2 * code[0] (a shape that meshes)."""
    assert list(decoder.latent_in) == [2] and not decoder.xyz_in_all and decoder.num_layers == 6
    gen = torch.Generator().manual_seed(1)
    d0 = code_size + 3
    with torch.no_grad():
        w0 = torch.zeros(decoder.lin0.out_features, d0)
        for k in range(3):
            w0[2 * k, code_size + k], w0[2 * k + 1, code_size + k] = 1.0, -1.0
        w0[6, 0], w0[7, 0] = 1.0, -1.0  # relu(c0), relu(-c0)
        _set_linear(decoder.lin0, w0, torch.zeros(w0.shape[0]), gen)
        w1 = torch.zeros(decoder.lin1.out_features, decoder.lin1.in_features)
        w1[0, :6], w1[1, 6], w1[2, 7] = 1.0, 1.0, 1.0  # L1 norm, c0+, c0-
        _set_linear(decoder.lin1, w1, torch.zeros(w1.shape[0]), gen)
        for lin in (decoder.lin2, decoder.lin3):
            w = torch.zeros(lin.out_features, lin.in_features)
            w[0, 0], w[1, 1], w[2, 2] = 1.0, 1.0, 1.0
            _set_linear(lin, w, torch.zeros(w.shape[0]), gen)
        w4 = torch.zeros(1, decoder.lin4.in_features)
        w4[0, 0], w4[0, 1], w4[0, 2] = 0.5, -0.1, 0.1
        _set_linear(decoder.lin4, w4, torch.tensor([-0.25]), gen)
    return decoder


def write_experiment(
    root: Path,
    *,
    specs_overrides: dict | None = None,
    network_overrides: dict | None = None,
    code_length: int = 8,
    latent_format: str = "embedding",
    checkpoints=("latest", "5"),
    weights: str = "random",
    split: dict | None = None,
    write_split: bool = True,
    seed: int = 0,
) -> tuple[Path, dict[str, tuple[OriginalDecoder, torch.Tensor]]]:
    """``root/DeepSDF/examples/mixed`` with specs.json, ModelParameters/, LatentCodes/ (and OptimizerParameters/,
    Logs.pth), the split in ``root/DeepSDF/examples/splits`` as TrainSplit names it relative to the repository
    root. Returns the experiment folder and {checkpoint: (decoder, codes (K, L))}."""
    repo = root / "DeepSDF"
    exp = repo / "examples" / "mixed"
    split = SPLIT if split is None else split
    n_codes = sum(len(v) for classes in split.values() for v in classes.values())
    net = {**NETWORK_SPECS, **(network_overrides or {})}
    specs = {
        "Description": ["A test experiment in the layout of examples/chairs."],
        "DataSource": "data",
        "TrainSplit": SPLIT_REL,
        "TestSplit": "examples/splits/sv2_mixed_test.json",
        "NetworkArch": "deep_sdf_decoder",
        "NetworkSpecs": net,
        "CodeLength": code_length,
        "NumEpochs": 5,
        "SnapshotFrequency": 5,
        "AdditionalSnapshots": [],
        "LearningRateSchedule": [],
        "SamplesPerScene": 16384,
        "ScenesPerBatch": 64,
        "ClampingDistance": 0.1,
        "CodeRegularization": True,
        "CodeRegularizationLambda": 1e-4,
        "CodeBound": 1.0,
        **(specs_overrides or {}),
    }
    for sub in ("ModelParameters", "LatentCodes", "OptimizerParameters"):
        (exp / sub).mkdir(parents=True, exist_ok=True)
    (exp / "specs.json").write_text(json.dumps(specs, indent=2))
    if write_split:
        (repo / SPLIT_REL).parent.mkdir(parents=True, exist_ok=True)
        (repo / SPLIT_REL).write_text(json.dumps(split, indent=2))
    out = {}
    for i, name in enumerate(checkpoints):
        decoder = OriginalDecoder(code_length, **net)
        if weights == "octahedra":
            octahedra(decoder, code_length)
        else:
            randomise(decoder, seed + i)
        gen = torch.Generator().manual_seed(100 + seed + i)
        codes = torch.randn(n_codes, code_length, generator=gen) * 0.3
        if weights == "octahedra":  # chairs large, tables small: code[0] sets the size
            codes[:, 0] = torch.linspace(1.0, -1.0, n_codes)
        epoch = 5 if name == "latest" else int(name)
        parallel = torch.nn.DataParallel(decoder)  # as train_deep_sdf.py: keys start with "module."
        torch.save({"epoch": epoch, "model_state_dict": parallel.state_dict()}, exp / "ModelParameters" / f"{name}.pth")
        embedding = torch.nn.Embedding(n_codes, code_length, max_norm=1.0)
        embedding.weight.data.copy_(codes)
        latent = embedding.state_dict() if latent_format == "embedding" else codes[:, None, :].clone()
        torch.save({"epoch": epoch, "latent_codes": latent}, exp / "LatentCodes" / f"{name}.pth")
        torch.save({"epoch": epoch, "optimizer_state_dict": {}}, exp / "OptimizerParameters" / f"{name}.pth")
        out[name] = (decoder.eval(), codes)
    torch.save(
        {"epoch": 5, "loss": [0.1], "learning_rate": [], "timing": [], "latent_magnitude": [], "param_magnitude": {}},
        exp / "Logs.pth",
    )
    return exp, out


def sdf_samples_npz(path, radius=0.5, seed=0):
    """A sample file as DeepSDF's preprocessing writes it: only ``pos`` and ``neg`` (x, y, z, sdf) rows."""
    rng = np.random.default_rng(seed)
    near = rng.normal(size=(3000, 3))
    near *= (radius + rng.normal(scale=0.03, size=(3000, 1))) / np.linalg.norm(near, axis=1, keepdims=True)
    points = np.concatenate([near, rng.uniform(-1, 1, size=(1000, 3))])
    sdf = np.linalg.norm(points, axis=1) - radius
    rows = np.concatenate([points, sdf[:, None]], axis=1).astype(np.float32)
    np.savez(path, pos=rows[sdf >= 0], neg=rows[sdf < 0])
    return path
