import urllib.error
import warnings

import pytest
import torch

from sa_lib.core import hub
from sa_lib.core.color import rgb_to_lab
from sa_lib.model.losses import (ColorizationLoss, EncoderFeatureDistance, build_perceptual,
                                 chroma_distribution_distance)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No cached backbone weights and no network."""
    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(hub.urllib.request, "urlopen", refuse)


def test_smooth_l1_has_the_papers_threshold_of_one_lab_unit():
    loss = ColorizationLoss(perceptual=None, lambda_l1=1.0)
    l_star, target = torch.full((1, 1, 2, 2), 50.0), torch.zeros(1, 2, 2, 2)
    small = loss(torch.full((1, 2, 2, 2), 0.5), l_star, target)["total"]  # |d| = 0.5 < 1: quadratic
    large = loss(torch.full((1, 2, 2, 2), 20.0), l_star, target)["total"]  # |d| = 20 > 1: linear
    assert small.item() == pytest.approx(0.5 * 0.5 ** 2 / 110)
    assert large.item() == pytest.approx((20 - 0.5) / 110)


def test_smooth_l1_in_lab_units_is_eq_4_as_written():
    """The paper reading "lab-loss": eq. 4 on raw Lab a*b*, 110 times this project's term, the same threshold."""
    l_star, target = torch.full((1, 1, 2, 2), 50.0), torch.zeros(1, 2, 2, 2)
    lab = ColorizationLoss(perceptual=None, lambda_l1=1.0, smooth_l1_units="lab")
    network = ColorizationLoss(perceptual=None, lambda_l1=1.0)
    for d, expected in ((0.5, 0.5 * 0.5 ** 2), (20.0, 20 - 0.5)):  # quadratic below 1 Lab unit, linear above
        pred = torch.full((1, 2, 2, 2), d)
        assert lab(pred, l_star, target)["total"].item() == pytest.approx(expected)
        assert lab(pred, l_star, target)["total"].item() == pytest.approx(
            110 * network(pred, l_star, target)["total"].item())
    with pytest.raises(ValueError, match="unknown smooth_l1_units 'raw'; choose one of network, lab"):
        ColorizationLoss(perceptual=None, smooth_l1_units="raw")


def test_total_is_weighted_sum_and_zero_for_perfect_prediction():
    rgb = torch.rand(2, 3, 32, 32)
    lab = rgb_to_lab(rgb)
    loss = ColorizationLoss(EncoderFeatureDistance(pretrained=True))
    perfect = loss(lab[:, 1:], lab[:, :1], lab[:, 1:])
    assert perfect["total"].item() == pytest.approx(0.0, abs=1e-6)
    wrong = loss(torch.zeros_like(lab[:, 1:]), lab[:, :1], lab[:, 1:])
    assert wrong["perceptual"] > 0 and wrong["smooth_l1"] > 0
    assert wrong["total"].item() == pytest.approx(10 * wrong["smooth_l1"].item() + 0.1 * wrong["perceptual"].item(),
                                                  rel=1e-5)


def test_chroma_distribution_distance_ignores_where_the_colour_goes_and_penalises_muting():
    truth = torch.randn(2, 2, 16, 16) * 30
    shuffled = truth.flatten(2)[:, :, torch.randperm(256)].reshape(2, 2, 16, 16)  # the same colours elsewhere
    assert chroma_distribution_distance(shuffled, truth).item() == pytest.approx(0.0, abs=1e-6)
    hue_turned = torch.stack([-truth[:, 1], truth[:, 0]], 1)  # a*b* rotated 90 degrees: the same chroma
    assert chroma_distribution_distance(hue_turned, truth).item() == pytest.approx(0.0, abs=1e-6)
    muted = (truth * 0.5).requires_grad_(True)
    distance = chroma_distribution_distance(muted, truth)
    expected = (torch.linalg.vector_norm(truth, dim=1) * 0.5 / 110).mean()  # half the chroma is missing
    assert distance.item() == pytest.approx(expected.item(), rel=1e-3)
    distance.backward()
    assert (muted.grad * muted).sum() < 0  # the gradient step scales the colours up


def test_the_chroma_term_is_off_by_default_and_added_with_its_weight():
    lab = rgb_to_lab(torch.rand(2, 3, 16, 16))
    pred = lab[:, 1:] * 0.3
    paper = ColorizationLoss(perceptual=None)(pred, lab[:, :1], lab[:, 1:])
    assert paper["chroma"].item() == 0.0 and paper["total"].item() == pytest.approx(10 * paper["smooth_l1"].item())
    with_chroma = ColorizationLoss(perceptual=None, lambda_chroma=5.0)(pred, lab[:, :1], lab[:, 1:])
    distance = chroma_distribution_distance(pred, lab[:, 1:]).item()
    assert with_chroma["chroma"].item() == pytest.approx(distance) and distance > 0
    assert with_chroma["total"].item() == pytest.approx(paper["total"].item() + 5.0 * distance, rel=1e-5)


def test_perceptual_gradient_reaches_prediction():
    lab = rgb_to_lab(torch.rand(1, 3, 32, 32))
    pred = torch.zeros(1, 2, 32, 32, requires_grad=True)
    ColorizationLoss(EncoderFeatureDistance(), lambda_l1=0.0)(pred, lab[:, :1], lab[:, 1:])["total"].backward()
    assert pred.grad.abs().sum() > 0


def test_lpips_vgg_offline_falls_back_to_a_named_substitute(offline):
    with pytest.raises(hub.AssetUnavailable, match="vgg16-397923af.pth"):
        build_perceptual("lpips_vgg")
    with pytest.warns(UserWarning, match="effnet_feature_distance"):
        substitute = build_perceptual("auto")
    assert substitute.name == "effnet_feature_distance" and "lpips" not in substitute.name
    assert build_perceptual("none") is None
    with pytest.raises(ValueError):
        build_perceptual("lpips_alex")


@pytest.fixture(scope="module")
def lpips_vgg(with_random_lpips):
    """build_perceptual("auto") on LPIPS-VGG with random backbone weights (offline), built once: it must take
    LPIPS-VGG without the fallback's warning."""
    def build():
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            return build_perceptual("auto")

    perceptual, built = with_random_lpips(build)
    assert [kwargs["net"] for kwargs in built] == ["vgg"]
    return perceptual


def test_lpips_vgg_loss_wiring_with_a_random_backbone(lpips_vgg):
    """The paper's perceptual term as build_perceptual makes it: frozen, [0, 1] inputs scaled to LPIPS's
    [-1, 1], a scalar, 0 for identical images, a gradient to the prediction."""
    assert lpips_vgg.name == "lpips_vgg"
    assert not any(p.requires_grad for p in lpips_vgg.parameters()) and not lpips_vgg.net.training
    a, b = torch.rand(2, 3, 24, 32), torch.rand(2, 3, 24, 32)
    same, different = lpips_vgg(a, a), lpips_vgg(a, b)
    assert same.shape == () and same.item() == pytest.approx(0.0, abs=1e-6) and different.item() > 0
    assert different.item() == pytest.approx(lpips_vgg.net(a * 2 - 1, b * 2 - 1).mean().item(), rel=1e-6)
    prediction = a.clone().requires_grad_(True)
    lpips_vgg(prediction, b).backward()
    assert prediction.grad.shape == a.shape and torch.isfinite(prediction.grad).all()
    assert prediction.grad.abs().sum() > 0


def test_colorization_loss_with_lpips_vgg_is_zero_when_perfect_and_reaches_the_prediction(lpips_vgg):
    lab = rgb_to_lab(torch.rand(1, 3, 24, 24))
    loss = ColorizationLoss(lpips_vgg)
    perfect = loss(lab[:, 1:], lab[:, :1], lab[:, 1:])
    assert perfect["total"].item() == pytest.approx(0.0, abs=1e-6)
    pred = torch.zeros(1, 2, 24, 24, requires_grad=True)
    wrong = loss(pred, lab[:, :1], lab[:, 1:])
    assert wrong["perceptual"] > 0
    assert wrong["total"].item() == pytest.approx(10 * wrong["smooth_l1"].item() + 0.1 * wrong["perceptual"].item(),
                                                  rel=1e-5)
    ColorizationLoss(lpips_vgg, lambda_l1=0.0)(pred, lab[:, :1], lab[:, 1:])["total"].backward()
    assert pred.grad.abs().sum() > 0
