"""The blend partner (ColorizerConfig.blend_partner): a second network whose a*b* are averaged in at inference."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from cli_run import run_main
from sa_lib.cli import calibrate_chroma
from sa_lib.cli import colorize as colorize_cli
from sa_lib.core.color import rgb_to_lab
from sa_lib.core.errors import UsageError
from sa_lib.data.demo_data import load_split
from sa_lib.eval.chroma_calibration import calibration_pairs
from sa_lib.inference.colorize import colorize
from sa_lib.model import predict
from sa_lib.model.checkpoint import (CheckpointError, config_hash, load_checkpoint, network_hash, read_config,
                                     save_checkpoint, with_partner)
from sa_lib.model.colorizer import ColorizerConfig, build_model
from sa_lib.model.predict import predict_ab
from sa_lib.profiles import get_profile

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def networks():
    """(transfer, standard): two small networks with random weights (the colour encoder pretrained)."""
    torch.manual_seed(0)
    return build_model("transfer").eval(), build_model("standard").eval()


@pytest.fixture(scope="module")
def pair(demo_pair):
    """(target L* (1, 1, 48, 56), reference sRGB (1, 3, 40, 36)) of two real photos."""
    target, reference = demo_pair
    return rgb_to_lab(target)[:, :1], reference  # (1, 1, 48, 56) L* in [0, 100], (1, 3, 40, 36)


def standard_fields() -> dict:
    return json.loads(ColorizerConfig(variant="standard").to_json())


def test_a_partner_is_a_config_field_that_earlier_configs_do_not_hold():
    """Without a partner the JSON (and so every shipped hash) is unchanged; with one it round-trips, its own
    inference-only options reset; the trained network's hash does not see it."""
    alone = ColorizerConfig.transfer()
    assert "blend_partner" not in json.loads(alone.to_json())
    blended = replace(alone, blend_partner={**standard_fields(), "flip_average": True, "chroma_gain": 2.0})
    again = ColorizerConfig.from_json(blended.to_json())
    assert again == blended and again.partner_config == ColorizerConfig(variant="standard")
    assert config_hash(blended) != config_hash(alone) and network_hash(blended) == network_hash(alone)


@pytest.mark.parametrize("network, partner, words", [
    ("transfer", {"variant": "none"}, "must use the reference"),
    ("transfer", {"variant": "standard", "blend_partner": {"variant": "standard"}}, "partner of its own"),
    ("transfer", {"variant": "standard", "no_such_field": 1}, "invalid config"),
    ("transfer", {"variant": "unknown"}, "unknown variant"),
    ("none", {"variant": "standard"}, "not of variant 'none'"),
])
def test_a_partner_that_cannot_be_blended_is_refused(network, partner, words):
    base = ColorizerConfig.transfer() if network == "transfer" else ColorizerConfig(variant="none")
    with pytest.raises(ValueError, match=words):
        replace(base, blend_partner=partner)


@pytest.mark.slow  # two networks, the flip average, several runs
def test_the_blend_is_the_mean_of_the_two_networks_then_the_gain(networks, pair):
    """Each network with the flip average when it is on; the chroma gain multiplies the mean; blend=False and a
    checkpoint without a partner give the network alone; the intermediates are the first network's."""
    transfer, standard = networks
    target_l, reference = pair
    blended = with_partner(transfer, standard)
    blended.config = replace(blended.config, flip_average=True, chroma_gain=1.5)
    own, own_intermediates = predict_ab(transfer, target_l, reference, "skimage", flip_average=True, chroma_gain=1.0)
    partner, _ = predict_ab(standard, target_l, reference, "skimage", flip_average=True, chroma_gain=1.0)
    ab, intermediates = predict_ab(blended, target_l, reference, "skimage")
    assert torch.allclose(ab, 1.5 * (own + partner) / 2, atol=1e-5)
    assert not torch.allclose(own, partner, atol=1e-2)  # the test would not see a missing partner otherwise
    assert intermediates["attention"].keys() == own_intermediates["attention"].keys() == {0, 1, 2}  # super's levels
    assert all(torch.equal(intermediates["attention"][level], own_intermediates["attention"][level])
               for level in (0, 1, 2))
    alone, _ = predict_ab(blended, target_l, reference, "skimage", blend=False)
    assert torch.allclose(alone, 1.5 * own, atol=1e-5)
    with pytest.raises(ValueError, match="no blend partner"):
        predict_ab(transfer, target_l, reference, "skimage", blend=True)


@pytest.mark.parametrize("target_size, partner_sizes", [
    ((48, 56), ((34, 40), (40, 36))),  # the long side 40, the aspect ratio kept; the small reference as it is
    ((32, 100), ((32, 40), (40, 36))),  # a long thin target: the short side stays at 32 px, what the network needs
])
def test_the_partner_runs_at_most_partner_max_side(networks, pair, monkeypatch, target_size, partner_sizes):
    """A standard partner's attention is quadratic in the positions: it sees the images shrunk to the cap (here
    40 px), and its a*b* come back at the target's size."""
    transfer, standard = networks
    target_l = torch.nn.functional.interpolate(pair[0], size=target_size, mode="bilinear")  # (1, 1, h, w)
    monkeypatch.setattr(predict, "PARTNER_MAX_SIDE", 40)
    blended = with_partner(transfer, standard)
    seen = []
    blended.blend_partner.register_forward_pre_hook(lambda module, args: seen.append(
        (tuple(args[0].shape[-2:]), tuple(args[1].shape[-2:]))))
    ab, _ = predict_ab(blended, target_l, pair[1], "skimage", flip_average=False, chroma_gain=1.0)
    assert ab.shape == (1, 2, *target_size) and torch.isfinite(ab).all()
    assert seen == [partner_sizes]


def test_the_partner_gets_float32_images_from_a_float64_caller(networks, pair):
    """A main network with the authors' float64 preprocessing (ColorizerConfig.official) is given float64 images;
    a partner without it runs on float32."""
    _, standard = networks
    ab = predict._partner_ab(standard, pair[0].double(), pair[1].double(), "skimage", flip=False)
    assert ab.dtype == torch.float32 and ab.shape == (1, 2, 48, 56)
    with pytest.raises(ValueError, match="blend must be"):
        predict_ab(standard, pair[0], pair[1], "skimage", blend="off")


@pytest.mark.slow  # two networks, the flip average, several runs
def test_a_blended_checkpoint_holds_both_networks_and_loads_them_back(networks, pair, tmp_path):
    """Both networks' trainable weights in one file (not their frozen colour encoders), rebuilt from it alone;
    a file whose partner weights are missing is refused."""
    transfer, standard = networks
    target_l, reference = pair
    blended = with_partner(transfer, standard)
    path = tmp_path / "blended.safetensors"
    save_checkpoint(path, blended, step=3)
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    assert any(k.startswith("blend_partner.attention.") for k in keys)
    assert not any(k.startswith(("color_encoder.", "blend_partner.color_encoder.")) for k in keys)
    loaded = load_checkpoint(path)
    assert read_config(path).partner_config.variant == "standard"
    expected, _ = predict_ab(blended, target_l, reference, "skimage")
    got, _ = predict_ab(loaded, target_l, reference, "skimage")
    assert torch.allclose(expected, got, atol=1e-6)
    alone = tmp_path / "alone.safetensors"
    save_checkpoint(alone, transfer)  # the weights of the network alone ...
    with safe_open(str(alone), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    save_file(state, str(tmp_path / "broken.safetensors"), metadata=meta)  # ... under the blended config
    with pytest.raises(CheckpointError, match="does not match its own config"):
        load_checkpoint(tmp_path / "broken.safetensors")


def test_blending_with_a_partner_that_cannot_be_one_is_a_checkpoint_error(networks):
    transfer, _ = networks
    with pytest.raises(CheckpointError, match="cannot blend: blend_partner must use the reference"):
        with_partner(transfer, build_model("none", pretrained=False))


@pytest.mark.slow  # two networks, the flip average, several runs
def test_the_command_stores_the_partner_and_fits_the_gain_on_the_blend(networks, tmp_path, capsys, monkeypatch):
    """sa-calibrate-chroma --blend: the written checkpoint holds the partner and a gain fitted on the mean; a
    partner that cannot be one is one line and a non-zero exit, with nothing written."""
    transfer, standard = networks
    network, partner = tmp_path / "transfer.safetensors", tmp_path / "standard.safetensors"
    save_checkpoint(network, transfer, step=5)
    save_checkpoint(partner, standard, step=9)
    few = calibration_pairs(get_profile("smoke"))[:2]
    monkeypatch.setattr(calibrate_chroma, "calibration_pairs", lambda profile: few)
    out = tmp_path / "blended.safetensors"
    code, stdout, err = run_main(calibrate_chroma.main, [network, "--blend", partner, "--profile", "smoke", "-o", out],
                                 capsys)
    assert code == 0 and "blended with a standard network" in stdout, err
    config = read_config(out)
    assert config.partner_config.variant == "standard" and config.chroma_gain != 1.0
    assert load_checkpoint(out).blend_partner is not None

    embedded = tmp_path / "embedded.safetensors"  # a self-contained partner: its encoder could not be stored
    save_checkpoint(embedded, standard, embed_color_encoder=True)
    code, stdout, err = run_main(calibrate_chroma.main,
                                 [network, "--blend", embedded, "-o", tmp_path / "e.safetensors"], capsys)
    assert code == 1 and "stores its colour encoder's weights" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "e.safetensors").exists()

    none = tmp_path / "none.safetensors"
    save_checkpoint(none, build_model("none", pretrained=False))
    refused = tmp_path / "refused.safetensors"
    code, stdout, err = run_main(calibrate_chroma.main, [network, "--blend", none, "-o", refused], capsys)
    assert code == 1 and "cannot blend" in err and len(err.strip().splitlines()) == 1, err
    assert not refused.exists()


@pytest.mark.slow  # two networks, the flip average, several runs
def test_the_api_and_sa_colorize_run_the_network_alone_on_request(tmp_path, capsys):
    """The shipped default has a partner: --blend off (the API's blend=False) leaves it out and changes the colours;
    blend=True on a checkpoint without one is a usage error."""
    target, reference = load_split("val")[:2]
    partner, standard = load_checkpoint("demo-transfer").blend_partner, load_checkpoint("demo-standard")
    assert partner is not None and partner.config == standard.config  # the shipped demo-standard network, as it is
    assert all(torch.equal(value, standard.state_dict()[key]) for key, value in partner.state_dict().items())
    outputs = {}
    for blend in ("auto", "off"):
        outputs[blend] = tmp_path / f"{blend}.png"
        code, out, err = run_main(colorize_cli.main, [target, reference, "-o", outputs[blend], "--blend", blend,
                                                      "--working-size", "64"], capsys)
        assert code == 0, err
    assert not np.array_equal(np.asarray(Image.open(outputs["auto"])), np.asarray(Image.open(outputs["off"])))
    with pytest.raises(UsageError, match="no blend partner"):
        colorize(target, reference, checkpoint="demo-super", blend=True, working_size=64)
