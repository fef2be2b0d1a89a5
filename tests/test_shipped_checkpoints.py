"""The demo checkpoints committed in checkpoints/ load, are what MODEL_CARD.md says, and use the reference."""

import hashlib
import json

import pytest
import torch

from sa_lib.model.checkpoint import CHECKPOINT_DIR, load_checkpoint, resolve
from sa_lib.core.color import rgb_to_lab
from sa_lib.model.colorizer import NAMED_MODELS
from sa_lib.model.paper_readings import PAPER_READINGS


@pytest.mark.parametrize("variant", NAMED_MODELS)
def test_checkpoint_loads_small_and_described_by_the_model_card(variant):
    """Every shipped checkpoint must be there: a missing one fails (make train-demo writes them)."""
    path = CHECKPOINT_DIR / f"demo-{variant}.safetensors"
    assert path.is_file(), f"{path} is missing: run make train-demo"
    assert path.stat().st_size < 25e6
    model = load_checkpoint(f"demo-{variant}")
    assert model.config.name == variant
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["step"] > 0 and "val_gtref_psnr_ab" in sidecar["metrics"]
    card = (CHECKPOINT_DIR / "MODEL_CARD.md").read_text()
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] in card  # the card describes these very files


@pytest.mark.parametrize("reading", PAPER_READINGS)
def test_each_paper_reading_ablation_is_shipped_as_super_with_that_reading(reading):
    """checkpoints/demo-super-paper-NAME (make train-ablations): demo-super's network with the reading's fields,
    described by the model card."""
    from dataclasses import replace

    name = f"demo-super-paper-{reading}"
    path = CHECKPOINT_DIR / f"{name}.safetensors"
    assert path.is_file(), f"{path} is missing: run make train-ablations"
    model = load_checkpoint(name)
    expected = replace(load_checkpoint("demo-super").config, **PAPER_READINGS[reading].model)
    assert replace(model.config, extra={}) == replace(expected, extra={})
    training = json.loads(path.with_suffix(".json").read_text())["training"]
    for field, value in PAPER_READINGS[reading].training.items():
        assert training[field] == value
    card = (CHECKPOINT_DIR / "MODEL_CARD.md").read_text()
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] in card


def test_super_checkpoint_output_depends_on_the_reference(demo_pair):
    model = load_checkpoint("demo-super")
    target, reference = demo_pair
    target_l = rgb_to_lab(target)[:, :1]
    with torch.no_grad():
        with_truth, _ = model(target_l, target)
        with_other, _ = model(target_l, reference)
    assert torch.isfinite(with_truth).all()
    assert (with_truth - with_other).abs().mean() > 0.5  # a* b* units: the reference changes the colours


def _hue_share(rgb: torch.Tensor, mask: torch.Tensor, hue: float, min_chroma: float = 20.0) -> float:
    """Share of the masked pixels of (1, 3, H, W) sRGB whose colour has at least `min_chroma` and a hue
    within 30 degrees of `hue` (radians, in the a*b* plane)."""
    lab = rgb_to_lab(rgb)[0]
    chroma, angle = lab[1:].norm(dim=0), torch.atan2(lab[2], lab[1])
    near = torch.remainder(angle - hue + torch.pi, 2 * torch.pi) - torch.pi
    hit = (chroma >= min_chroma) & (near.abs() <= torch.pi / 6)
    return float(hit[mask].float().mean())


def test_default_checkpoint_takes_the_colour_of_a_different_photo():
    """A fixed matched pair (a gray marigold, a photo of another orange-red flower as reference): the
    reference's hue must appear on the flower with the default checkpoint, and not with demo-none."""
    from sa_lib.model.checkpoint import DEFAULT_CHECKPOINT
    from sa_lib.core.color import combine_l_ab
    from sa_lib.data.demo_data import DEMO_DIR
    from sa_lib.eval.pair_images import load_pair_images
    from sa_lib.data.pairs import read_pairs
    from sa_lib.model.predict import predict_ab

    images = DEMO_DIR / "images"
    pair = next(p for p in read_pairs(DEMO_DIR / "matched_pairs.csv", images, images)
                if p.target == "mate-Garden.jpg" and p.reference == "mate-FreshFlower.jpg")
    item = load_pair_images(pair, 224)
    truth = torch.from_numpy(item.truth).permute(2, 0, 1)[None].float()  # (1, 3, 224, 224)
    reference = torch.from_numpy(item.reference).permute(2, 0, 1)[None].float()
    ref_lab = rgb_to_lab(reference)[0]
    vivid = ref_lab[1:].norm(dim=0) > 30
    hue = float(torch.atan2(ref_lab[2][vivid].mean(), ref_lab[1][vivid].mean()))  # the reference's hue
    region = rgb_to_lab(truth)[0, 1] > 35  # the flower's red petals in the ground truth
    assert region.float().mean() > 0.05
    target_l = rgb_to_lab(truth)[:, :1]
    shares = {}
    for name in (DEFAULT_CHECKPOINT, "demo-none"):
        model = load_checkpoint(name).eval()
        ab, _ = predict_ab(model, target_l, reference)  # as sa-colorize runs it: flip average, chroma gain
        shares[name] = _hue_share(combine_l_ab(target_l, ab), region, hue)
    assert shares[DEFAULT_CHECKPOINT] >= 0.6, shares
    assert shares["demo-none"] <= 0.2, shares


def test_the_default_checkpoint_carries_the_chroma_gain_its_calibration_fitted():
    """demo-transfer's chroma gain is the one sa-calibrate-chroma fitted on the demo training photos for 85% of
    their truths' colourfulness (make train-demo runs it), recorded in its sidecar; the paper's models have none."""
    from sa_lib.eval.chroma_calibration import DEFAULT_SHARE
    from sa_lib.model.checkpoint import DEFAULT_CHECKPOINT, read_config, read_sidecar
    from sa_lib.profiles import get_profile

    calibration = read_sidecar(resolve(DEFAULT_CHECKPOINT))["chroma_calibration"]
    assert calibration["share"] == DEFAULT_SHARE and calibration["profile"] == "demo"
    assert calibration["pairs"] == len(get_profile("demo").photos.dataset("train").image_ids)
    assert read_config(DEFAULT_CHECKPOINT).chroma_gain == round(calibration["gain"], 4) > 1.0
    assert calibration["share_as_trained"] < DEFAULT_SHARE
    for variant in ("none", "standard", "super"):
        assert read_config(f"demo-{variant}").chroma_gain == 1.0
