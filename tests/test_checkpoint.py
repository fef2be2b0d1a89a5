import json

import pytest
import torch

from sa_lib.model.checkpoint import (CheckpointError, config_hash, load_checkpoint, read_config, resolve,
                               save_checkpoint, trainable_state)
from sa_lib.model.colorizer import ColorizerConfig, build_model


def test_round_trip_needs_nothing_but_the_file(tmp_path):
    model = build_model("standard", pretrained=False)
    save_checkpoint(tmp_path / "m.safetensors", model, step=7, metrics={"val_psnr_ab": 20.5})
    loaded = load_checkpoint(tmp_path / "m.safetensors", pretrained_encoder=False)
    assert loaded.config == model.config
    for key, value in trainable_state(model).items():
        assert torch.equal(value, trainable_state(loaded)[key]), key
    sidecar = json.loads((tmp_path / "m.json").read_text())
    assert sidecar["step"] == 7 and sidecar["metrics"] == {"val_psnr_ab": 20.5}
    assert sidecar["config_hash"] == config_hash(model.config)
    assert not any(k.startswith("color_encoder.") for k in trainable_state(model))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temp file left


def test_half_storage_is_close(tmp_path):
    model = build_model("super", pretrained=False)
    save_checkpoint(tmp_path / "h.safetensors", model, half=True)
    loaded = load_checkpoint(tmp_path / "h.safetensors", pretrained_encoder=False)
    weight, restored = model.head.weight, loaded.head.weight
    assert restored.dtype == torch.float32 and torch.allclose(weight, restored, atol=1e-3)


def test_wrong_variant_corrupt_foreign_and_unknown_are_refused(tmp_path):
    save_checkpoint(tmp_path / "none.safetensors", build_model("none", pretrained=False))
    with pytest.raises(CheckpointError, match="holds variant 'none', expected 'super'"):
        load_checkpoint(tmp_path / "none.safetensors", expect_variant="super")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(tmp_path / "corrupt.safetensors")
    truncated = (tmp_path / "none.safetensors").read_bytes()[:-100]
    (tmp_path / "truncated.safetensors").write_bytes(truncated)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "truncated.safetensors", pretrained_encoder=False)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a superattn colorizer checkpoint"):
        read_config(tmp_path / "foreign.safetensors")
    with pytest.raises(CheckpointError, match="unknown checkpoint 'demo-nope'"):
        resolve("demo-nope")
    with pytest.raises(CheckpointError, match="not found"):
        resolve(tmp_path / "missing.safetensors")


def test_config_hash_ignores_provenance_only():
    a = ColorizerConfig()
    assert config_hash(a) == config_hash(ColorizerConfig(extra={"profile": "demo"}))
    assert config_hash(a) != config_hash(ColorizerConfig(widths=(8, 16, 32, 64)))


def test_a_missing_official_checkpoint_names_the_command_that_makes_it(tmp_path):
    """By name (sa-colorize --checkpoint official) or by path (sa-evaluate --checkpoint official=FILE)."""
    for given in ("official", tmp_path / "official.safetensors"):
        with pytest.raises(CheckpointError, match="make official"):
            resolve(given)
    with pytest.raises(CheckpointError) as info:
        resolve(tmp_path / "mine.safetensors")
    assert "make official" not in str(info.value)
