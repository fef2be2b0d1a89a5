import urllib.error

import pytest
import torch

from sa_lib.core import hub
from sa_lib.core.color import rgb_to_lab
from sa_lib.model.losses import ColorizationLoss, EncoderFeatureDistance, build_perceptual


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
