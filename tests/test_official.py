"""The authors' released model: the preset's building blocks against hand-computed values, the key mapping, the
checks and one-line errors of `sa-convert-official`, a trapped pickle, and a synthetic checkpoint with the
authors' key names converted and run at odd sizes.

The equality with the authors' own code (their network, run from a scratch copy with random weights) is
measured outside the repository: docs/official.md gives the procedure and the figures.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error

import numpy as np
import pytest
import torch
import torch.nn as nn
from skimage.color import rgb2gray, rgb2lab

from sa_lib.cli import evaluate as evaluate_cli
from sa_lib.eval import evaluate
from sa_lib.profiles import PROFILES
from sa_lib.core import hub
from sa_lib.model import official
from sa_lib.figures.attention_maps import from_colorization
from sa_lib.model.attention import SuperAttention
from sa_lib.model.checkpoint import CHECKPOINT_DIR, config_hash, load_checkpoint, read_config
from sa_lib.core.color import gray_from_lstar, rgb_to_lab
from sa_lib.inference.colorize import colorize_detailed
from sa_lib.cli.convert_official import main as convert_main
from sa_lib.model.encoders import torchvision_vgg_keys
from sa_lib.figures.explain import explain_figure
from sa_lib.model.colorizer import AUTHORS_SWITCHES, ColorizerConfig
from sa_lib.superpixels.pyramid import authors_pyramid_labels, interior_counts, superpixel_pool


# ------------------------------------------------------------------------------------------ building blocks


def test_gray_from_lstar_hand_values():
    l_star = torch.tensor([0.0, 116 * (7.787 * 0.001 + 4 / 29) - 16, 42.0, 100.0], dtype=torch.float64)
    expected = [0.0,
                12.92 * 0.001,  # Y = 0.001: the linear branches of L* and of the sRGB curve
                1.055 * 2 ** -1.25 - 0.055,  # L* = 42: f(Y) = 0.5, Y = 1/8, g = 1.055 (1/8)^(1/2.4) - 0.055
                1.0]
    assert gray_from_lstar(l_star).tolist() == pytest.approx(expected, abs=1e-12)


def test_gray_from_lstar_recovers_rgb2gray_of_every_gray_level():
    g = np.arange(256) / 255.0
    rgb = np.repeat(g[None, :, None], 3, axis=2)  # (1, 256, 3) gray pixels
    recovered = gray_from_lstar(torch.from_numpy(rgb2lab(rgb)[..., 0])).numpy()
    assert np.abs(recovered - rgb2gray(rgb)).max() < 1e-12  # what the authors' network reads
    kornia_l = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[:, 0]  # (1, 1, 256) float64
    assert np.abs(gray_from_lstar(kornia_l).numpy() - rgb2gray(rgb)).max() < 1e-12


def test_interior_pooling_hand_values():
    labels = torch.tensor([[0, 0, 0, 0],
                           [1, 1, 2, 2],
                           [1, 1, 2, 2],
                           [3, 3, 3, 3]])[None]  # (1, 4, 4)
    features = torch.arange(16.0).reshape(1, 1, 4, 4)  # value = 4 * row + column
    # interior = rows 1-2, columns 1-2: labels [[1, 2], [1, 2]], values [[5, 6], [9, 10]]
    assert superpixel_pool(features, labels, 4, border=1)[0, 0].tolist() == [0.0, 9.0, 10.0, 0.0]
    assert superpixel_pool(features, labels, 4)[0, 0].tolist() == [3.0, 9.0, 11.0, 15.0]  # every pixel
    # slot 0 has no interior pixel but comes before the last interior label: it stays (zero features);
    # slot 3 comes after it: out of the attention, as the authors' scatter_max ends at label 2
    assert interior_counts(labels, 1).tolist() == [3]
    assert interior_counts(torch.zeros(1, 2, 2, dtype=torch.long), 1).tolist() == [0]  # no interior at all


def _hand_block(null_token: bool) -> SuperAttention:
    block = SuperAttention(2, 2, 2, 2, tau=1.0, qk_normalisation="before", null_token=null_token)
    with torch.no_grad():
        for conv in (block.query, block.key, block.value):
            conv.weight.copy_(torch.eye(2)[:, :, None])
        block.query.bias.zero_()
        block.key.bias.copy_(torch.tensor([0.5, -0.5]))
        block.value.bias.copy_(torch.tensor([10.0, 20.0]))
    return block


def test_slot0_null_token_hand_values():
    # one target superpixel with features (3, 1), one reference superpixel with (1, 3) and colours (2, 4)
    f_t = torch.tensor([3.0, 1.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    f_r = torch.tensor([1.0, 3.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    phi = torch.tensor([2.0, 4.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    labels, counts = torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, dtype=torch.long)
    # q = (1, -1)/sqrt2; key of the reference = (-1, 1)/sqrt2 + (0.5, -0.5); key of the empty slot = key bias
    # (0.5, -0.5): its logit is larger by exactly -q.(-1, 1)/sqrt2 = 1, so it takes sigmoid(1) of the weight.
    # Values: reference (2, 4) + (10, 20) = (12, 24); empty slot = value bias (10, 20).
    w_null = 1 / (1 + math.exp(-1))
    hints, attention = _hand_block(True)(f_t, f_r, phi, labels, labels, counts, counts)
    expected = w_null * torch.tensor([10.0, 20.0]) + (1 - w_null) * torch.tensor([12.0, 24.0])
    assert attention.shape == (1, 1, 2)  # the null token is the last column
    assert attention[0, 0].tolist() == pytest.approx([1 - w_null, w_null], abs=1e-4)
    assert hints[0, :, 0, 0].tolist() == pytest.approx(expected.tolist(), abs=1e-3)
    hints, attention = _hand_block(False)(f_t, f_r, phi, labels, labels, counts, counts)
    assert attention.shape == (1, 1, 1) and hints[0, :, 0, 0].tolist() == pytest.approx([12.0, 24.0])


def test_authors_superpixels_are_float64_skimage_labels_from_zero():
    rng = np.random.default_rng(0)
    gray = rng.random((37, 50))
    levels = authors_pyramid_labels(gray, 3)
    assert [lv.shape for lv in levels] == [(37, 50), (18, 25), (9, 12)]
    for lv in levels:
        assert lv.min() == 0 and np.array_equal(np.unique(lv), np.arange(lv.max() + 1))


# -------------------------------------------------------------------------------------- the key mapping


@pytest.fixture(scope="module")
def model():
    return official.official_model()


def _authors_state(model, seed: int = 0) -> dict[str, torch.Tensor]:
    """A synthetic state_dict with the authors' key names and shapes, random values."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official.authors_keys(model).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state


def test_every_key_mapped_with_its_shape(model):
    keys = official.authors_keys(model)
    assert len(keys) == 171  # their gen_color_stride_vgg16(dim=2).state_dict(), counted from their code
    assert keys["gen1.0.weight"] == (64, 3, 3, 3) and keys["gen1.0.bias"] == (64,)
    assert keys["gen5_conv.weight"] == (256, 768, 1, 1) and keys["gen4_up.weight"] == (512, 256, 4, 4)
    assert keys["attention_3.value_conv.weight"] == (256, 256, 1) and keys["out.0.weight"] == (2, 64, 1, 1)
    converted = official.convert_state_dict(_authors_state(model), model)
    trainable = {k: v for k, v in model.state_dict().items() if not k.startswith("color_encoder.")}
    assert set(converted) == set(trainable)
    assert all(converted[k].shape == trainable[k].shape for k in trainable)


def test_bias_folding_and_channel_sum_are_exact(model):
    state = _authors_state(model, seed=1)
    converted = official.convert_state_dict(state, model)
    theirs = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64)).eval()
    theirs.load_state_dict({"0.weight": state["gen1.0.weight"], "0.bias": state["gen1.0.bias"],
                            **{f"1.{f}": state[f"gen1.1.{f}"] for f in official.BN_FIELDS}})
    ours = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64)).eval()
    ours.load_state_dict({"0.weight": converted["encoder.0.0.weight"],
                          **{f"1.{f}": converted[f"encoder.0.1.{f}"] for f in official.BN_FIELDS}})
    x = torch.rand(1, 1, 9, 11)
    with torch.no_grad():
        assert torch.allclose(theirs(x.repeat(1, 3, 1, 1)), ours(x), atol=1e-5)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("gen3.4.running_var"), "lacks 1 of the authors' 171 keys (first: gen3.4.running_var)"),
    (lambda s: s.update({"module.extra": torch.zeros(1)}), "1 keys the authors' network does not have"),
    (lambda s: s.update({"gen7.0.weight": torch.zeros(64, 64, 1, 1)}), "gen7.0.weight has shape (64, 64, 1, 1)"),
    (lambda s: s.update({"out.0.bias": [0.0, 0.0]}), "out.0.bias is a list, not a tensor"),
])
def test_wrong_or_missing_keys_give_one_line(model, change, message):
    state = _authors_state(model)
    change(state)
    with pytest.raises(official.ConversionError) as err:
        official.convert_state_dict(state, model)
    assert message in str(err.value) and "\n" not in str(err.value)


# ----------------------------------------------------------------------------------- files and the command


@pytest.fixture(scope="module")
def files(tmp_path_factory, model):
    """The authors' checkpoint.pt (synthetic, their key names) and a torchvision-format vgg19_bn file."""
    folder = tmp_path_factory.mktemp("official")
    torch.save({"state_dict": _authors_state(model), "epoch": 19}, folder / "checkpoint.pt")
    g = torch.Generator().manual_seed(2)
    vgg = {theirs: (torch.rand(v.shape, generator=g) + 0.5 if "running_var" in key else
                    torch.randn(v.shape, generator=g) * 0.05 if v.is_floating_point() else v)
           for key, theirs in torchvision_vgg_keys(model.color_encoder).items()
           for v in [model.color_encoder.state_dict()[key]]}
    torch.save(vgg, folder / "vgg19_bn.pth")
    return folder


def _run(argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        convert_main([str(a) for a in argv])
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def converted(files):
    out = files / "official.safetensors"
    convert_main([str(files / "checkpoint.pt"), "-o", str(out), "--vgg19-bn", str(files / "vgg19_bn.pth")])
    return out


@pytest.mark.slow  # measured above 4 s of CPU time
def test_synthetic_checkpoint_converts_and_runs_at_odd_sizes(files, converted):
    out = converted
    config = read_config(out)
    assert config.superpixel_scheme == "authors" and config.encoder == "vgg19_bn" and config.ab_scale == 127.0
    assert len(config.extra["source_sha256"]) == 64
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["config_hash"] == config_hash(config)
    model = load_checkpoint(out)  # self-contained: the colour encoder comes from the file, nothing is fetched
    assert not model.training
    vgg = torch.load(files / "vgg19_bn.pth", weights_only=True)
    assert torch.equal(model.color_encoder.stages[0][0].weight, vgg["features.0.weight"])
    torch.manual_seed(0)
    for target_size, reference_size in [((45, 61), (38, 29)), ((33, 33), (50, 70))]:
        target_l = rgb_to_lab(torch.rand(1, 3, *target_size))[:, :1]
        with torch.no_grad():
            ab, inter = model(target_l, torch.rand(1, 3, *reference_size))
        assert ab.shape == (1, 2, *target_size) and torch.isfinite(ab).all() and ab.abs().max() <= 127
        for level in (0, 1, 2):  # one more column than reference superpixels: the empty slot-0 token
            n_t = int(inter["target_counts"][level][0])
            n_r = int(inter["reference_counts"][level][0])
            assert inter["attention"][level].shape == (1, n_t, n_r + 1)


def test_trapped_pickle_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "trap-was-run"

    class Trap:
        def __reduce__(self):
            return os.mkdir, (str(marker),)

    torch.save({"state_dict": {"gen1.0.weight": Trap()}}, tmp_path / "checkpoint.pt")
    code, _, err = _run([tmp_path / "checkpoint.pt", "-o", tmp_path / "out.safetensors", "--vgg19-bn",
                         tmp_path / "checkpoint.pt"], capsys)
    assert code == 1 and "refused" in err and "nothing in it was run" in err and err.count("\n") == 1
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


@pytest.mark.slow  # measured above 4 s of CPU time
def test_bad_inputs_give_one_line_and_non_zero_exit(files, tmp_path, capsys):
    out = tmp_path / "out.safetensors"
    (tmp_path / "not-torch.pt").write_bytes(b"hello")
    (tmp_path / "bad-pickle.pt").write_bytes(b"\x80\x02garbage")
    torch.save({"model": {}}, tmp_path / "no-state-dict.pt")
    state = _authors_state(official.official_model())
    state.pop("gen2.0.bias")
    torch.save({"state_dict": state}, tmp_path / "missing-key.pt")
    vgg = "--vgg19-bn", files / "vgg19_bn.pth"
    cases = [
        ([tmp_path / "absent.pt", "-o", out, *vgg], 2, "checkpoint not found"),
        ([files / "checkpoint.pt", "-o", tmp_path / "out.pt", *vgg], 2, "must end in .safetensors"),
        ([files / "checkpoint.pt", "-o", tmp_path / "no" / "out.safetensors", *vgg], 2, "folder does not exist"),
        ([files / "checkpoint.pt", "-o", out, "--download", *vgg], 2, "one of them"),
        ([tmp_path / "not-torch.pt", "-o", out, *vgg], 1, "is not a torch file"),
        ([tmp_path / "bad-pickle.pt", "-o", out, *vgg], 1, "needs more than tensors to load;"),
        ([tmp_path / "no-state-dict.pt", "-o", out, *vgg], 1, "not the authors' checkpoint"),
        ([tmp_path / "missing-key.pt", "-o", out, *vgg], 1, "(first: gen2.0.bias)"),
        ([files / "checkpoint.pt", "-o", out, "--vgg19-bn", files / "checkpoint.pt"], 1,
         "lacks features.0.weight"),
    ]
    for argv, code, message in cases:
        got_code, _, err = _run(argv, capsys)
        assert (got_code, err.count("\n")) == (code, 1) and message in err, (argv, err)
    assert not out.exists()


def test_offline_vgg_error_says_which_file_to_put_where(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(hub.urllib.request, "urlopen", offline)
    code, _, err = _run([files / "checkpoint.pt", "-o", tmp_path / "out.safetensors"], capsys)
    place = tmp_path / "hub" / "checkpoints" / "vgg19_bn-c79401a0.pth"
    assert code == 1 and err.count("\n") == 1
    assert "https://download.pytorch.org/models/vgg19_bn-c79401a0.pth" in err and str(place) in err
    assert "--vgg19-bn" in err


def test_download_without_gdown_or_drive_gives_the_manual_step(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_gdown(name, *args, **kwargs):
        if name == "gdown":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gdown)
    with pytest.raises(official.ConversionError, match="pip install gdown.*drive.google.com.*save it as"):
        official.download_authors_checkpoint(tmp_path)
    (tmp_path / official.CHECKPOINT_FILENAME).write_bytes(b"cached")
    assert official.download_authors_checkpoint(tmp_path) == tmp_path / official.CHECKPOINT_FILENAME


# --------------------------------------------------------------------------------- the preset and old configs


def test_preset_switches_and_old_configs_unchanged():
    preset = ColorizerConfig.official()
    assert ColorizerConfig.from_json(preset.to_json()) == preset
    assert (preset.widths, preset.encoder_convs, preset.decoder_convs) == ((64, 128, 256, 512), (2, 2, 3, 3), 3)
    assert preset.upsample_relu == (0, 1) and preset.qk_normalisation == "before"
    for name in AUTHORS_SWITCHES:  # this project's configs keep their JSON (so their hashes) as before
        assert name not in json.loads(ColorizerConfig().to_json())
        assert name in json.loads(preset.to_json())
    shipped = read_config("demo-super")
    sidecar = json.loads((CHECKPOINT_DIR / "demo-super.json").read_text())
    assert config_hash(shipped) == sidecar["config_hash"]
    with pytest.raises(ValueError, match="unknown superpixel_scheme"):
        ColorizerConfig(superpixel_scheme="mine")


# ------------------------------------------------------------------- the converted model in the project's tools


@pytest.mark.slow  # measured above 4 s of CPU time
def test_colorize_explain_and_explorer_take_the_converted_model(converted, tmp_path):
    rng = np.random.default_rng(0)
    target, reference = rng.random((45, 61, 3)).astype(np.float32), rng.random((52, 40, 3)).astype(np.float32)
    for mode in ("fast", "highres"):
        result = colorize_detailed(target, reference, checkpoint=str(converted), device="cpu", mode=mode,
                                   working_size=40)
        assert result.image.size == (61, 45)
    explain_figure(result, tmp_path / "why.png")
    assert (tmp_path / "why.png").stat().st_size > 0
    pair = from_colorization(result)
    for level in pair.levels:  # the explorer's maps leave the empty slot-0 column out
        assert pair.attention[level].shape == (pair.superpixel_count(level), pair.reference_labels[level].max() + 1)


def test_evaluate_scores_a_converted_checkpoint_beside_the_published_numbers(converted, capsys):
    setup = evaluate.prepare("smoke", device="cpu", log=lambda _: None, checkpoints={"official": converted})
    (row,) = evaluate.checkpoint_rows(setup)
    assert row["method"].startswith("official (") and 0.0 < float(row["ssim"]) <= 1.0
    assert row["published_ssim"] == "0.925"  # the authors' model, beside the paper's own numbers
    with pytest.raises(SystemExit) as info:
        evaluate_cli.main(["--profile", "smoke", "--checkpoint", "super=" + str(converted)])
    assert info.value.code == 2 and "taken" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        evaluate_cli.main(["--profile", "smoke", "--checkpoint", "official=/nonexistent.safetensors"])
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.count("\n") == 1 and "not found" in err


def test_evaluate_allows_missing_profile_checkpoints_only_with_another_model(monkeypatch, tmp_path):
    monkeypatch.setattr(evaluate, "CHECKPOINT_DIR", tmp_path)  # no paper-* / demo-* checkpoints there
    profile = PROFILES["smoke"]
    with pytest.raises(evaluate.EvaluationError, match="not found"):
        evaluate._check_checkpoints(profile)
    assert evaluate._check_checkpoints(profile, allow_missing=True) == ("none", "standard", "super", "transfer")
