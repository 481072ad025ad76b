"""The one codes.json format (core/model/codes_file.py): round trip, version check, NaN, decoder beside it."""

from __future__ import annotations

import json

import pytest
import torch

from core.model.codes_file import CODES_FORMAT, CodesFileError, SavedCodes, read_codes, write_codes


def _codes(model, **changes) -> SavedCodes:
    values = dict(
        shape_code=model.shape_codes[1].clone(),
        colour_code=model.colour_codes[1].clone(),
        class_name=model.shape_classes[1],
        condition=model.condition(model.shape_classes[1]).clone(),
        label="test",
        checkpoint=str(model.path),
    )
    values.update(changes)
    return SavedCodes(**values)


def test_round_trip_with_a_finetuned_decoder(toy_trained, tmp_path):
    model = toy_trained["model"]
    tuned = {k: v + 0.01 for k, v in model.decoder.state_dict().items()}
    path = write_codes(
        tmp_path / "mine.json",
        _codes(model, decoder_state=tuned, config={"iterations": 3}, info={"note": float("nan")}),
    )
    data = json.loads(path.read_text())
    assert data["format"] == CODES_FORMAT and data["version"] == 2 and data["decoder"] == "mine.decoder.pt"
    assert data["info"]["note"] is None  # notes may hold NaN; the file stays valid JSON
    back = read_codes(path, model)
    assert torch.equal(back.shape_code, model.shape_codes[1]) and torch.equal(back.colour_code, model.colour_codes[1])
    assert back.class_name == model.shape_classes[1] and back.config == {"iterations": 3}
    assert all(torch.equal(back.decoder_state[k], tuned[k]) for k in tuned)
    assert torch.equal(back.condition_for(model), model.condition(model.shape_classes[1]))


def test_nan_codes_are_refused_and_nothing_is_written(toy_trained, tmp_path):
    model = toy_trained["model"]
    bad = model.shape_codes[0].clone()
    bad[0] = float("nan")
    with pytest.raises(CodesFileError, match="NaN or infinite"):
        write_codes(tmp_path / "codes.json", _codes(model, shape_code=bad))
    assert list(tmp_path.iterdir()) == []


def test_other_formats_versions_and_sizes_are_refused_with_the_reason(toy_trained, tmp_path):
    model = toy_trained["model"]
    path = write_codes(tmp_path / "codes.json", _codes(model))
    data = json.loads(path.read_text())
    (tmp_path / "v9.json").write_text(json.dumps({**data, "version": 9}))
    with pytest.raises(CodesFileError, match="version 9; this program reads versions 1, 2"):
        read_codes(tmp_path / "v9.json")
    (tmp_path / "other.json").write_text(json.dumps({**data, "format": "something-else"}))
    with pytest.raises(CodesFileError, match="not a codes file"):
        read_codes(tmp_path / "other.json")
    (tmp_path / "short.json").write_text(json.dumps({**data, "shape_code": [0.0, 1.0]}))
    with pytest.raises(CodesFileError, match="this model needs"):
        read_codes(tmp_path / "short.json", model)
    (tmp_path / "nan.json").write_text(json.dumps({**data, "shape_code": [1.0] * 3}).replace("1.0", "NaN", 1))
    with pytest.raises(CodesFileError, match="NaN or infinite"):
        read_codes(tmp_path / "nan.json")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(CodesFileError, match="not a readable JSON file"):
        read_codes(tmp_path / "junk.json")


def test_earlier_files_still_read(toy_trained, tmp_path):
    """The viewer's version 1 and reconstruct's format-less codes.json with decoder_finetuned.pt beside it."""
    model = toy_trained["model"]
    code = model.shape_codes[0].tolist()
    (tmp_path / "v1.json").write_text(
        json.dumps(
            {
                "format": CODES_FORMAT,
                "version": 1,
                "label": "old",
                "class_name": "ball",
                "shape_code": code,
                "colour_code": None,
                "condition": None,
            }
        )
    )
    assert read_codes(tmp_path / "v1.json", model).label == "old"
    old = tmp_path / "old"
    old.mkdir()
    tuned = {k: v * 1.01 for k, v in model.decoder.state_dict().items()}
    torch.save(tuned, old / "decoder_finetuned.pt")
    (old / "codes.json").write_text(json.dumps({"shape_code": code, "class_name": "ball", "finetuned_decoder": True}))
    back = read_codes(old / "codes.json", model)
    assert back.decoder_state is not None and all(torch.equal(back.decoder_state[k], tuned[k]) for k in tuned)


def test_a_fine_tuned_decoder_with_nan_weights_is_refused(toy_trained, tmp_path):
    model = toy_trained["model"]
    state = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    write_codes(tmp_path / "codes.json", SavedCodes(model.shape_codes[0].clone(), decoder_state=state))
    decoder_file = next(p for p in tmp_path.iterdir() if p.suffix == ".pt")
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first][...] = float("nan")
    torch.save(state, decoder_file)
    with pytest.raises(CodesFileError, match="NaN or infinite"):
        read_codes(tmp_path / "codes.json", model)
