"""Known-answer tests for sa_lib.eval.metrics."""

from __future__ import annotations

import math
import urllib.error

import numpy as np
import pytest
from skimage.color import lab2rgb

from sa_lib.eval import metrics
from sa_lib.eval.metrics import (
    LPIPSMetric,
    MetricUnavailable,
    ab_histogram,
    ciede2000,
    colorfulness,
    delta_his,
    his,
    lpips_available,
    lpips_distance,
    psnr_ab,
    ssim,
)


def rand_img(seed: int, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3))


def solid(rgb, h: int = 8, w: int = 8) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, dtype=np.float64), (h, w, 3)).copy()


def solid_lab(lab, h: int = 8, w: int = 8) -> np.ndarray:
    """Uniform RGB image of a given (in-gamut) Lab colour."""
    rgb = lab2rgb(np.asarray(lab, dtype=np.float64).reshape(1, 1, 3))
    return solid(rgb.ravel(), h, w)


RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


# --------------------------------------------------------------------- HIS


def test_his_identical_is_one():
    a = rand_img(0)
    assert his(a, a) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("other", [GREEN, BLUE])
def test_his_disjoint_ab_is_zero(other):
    assert his(solid(RED), solid(other)) == pytest.approx(0.0, abs=1e-9)


def test_his_symmetric_and_bounded():
    a, b = rand_img(1), rand_img(2, 10, 13)  # sizes may differ
    v = his(a, b)
    assert 0.0 <= v <= 1.0
    assert v == pytest.approx(his(b, a), abs=1e-15)


def test_histogram_one_hot_on_bin_centre():
    # Lab (50, 22, -33): a/110 = 0.2 -> bin 12, b/110 = -0.3 -> bin 7.
    hist = ab_histogram(solid_lab((50.0, 22.0, -33.0)))
    assert hist.shape == (21, 21)
    assert hist.sum() == pytest.approx(1.0)
    expected = np.zeros((21, 21))
    expected[12, 7] = 1.0
    np.testing.assert_allclose(hist, expected, atol=1e-6)
    # Gray has a = b = 0 (to ~0.005 in skimage's D65 conversion): the centre bin.
    assert ab_histogram(solid((0.5, 0.5, 0.5)))[10, 10] == pytest.approx(1.0, abs=1e-3)


def test_histogram_soft_binning_splits_halfway():
    # a/110 = 0.05 lies halfway between the centres 0.0 and 0.1: weight 0.5 each.
    hist = ab_histogram(solid_lab((50.0, 5.5, 0.0)))
    assert hist[10, 10] == pytest.approx(0.5, abs=1e-6)
    assert hist[11, 10] == pytest.approx(0.5, abs=1e-6)


def test_his_hand_computed_half_overlap():
    # A: all one colour (one-hot at [12, 7]); B: half that colour, half gray ([10, 10]).
    colour = solid_lab((50.0, 22.0, -33.0))
    mixed = colour.copy()
    mixed[:, :4] = 0.5
    # sum(min) = min(1, 0.5) + min(0, 0.5) = 0.5
    assert his(colour, mixed) == pytest.approx(0.5, abs=1e-5)


def test_delta_his_values():
    assert delta_his([0.5, 0.7], [0.6, 0.8]) == pytest.approx(0.1)
    assert delta_his([0.6, 0.8], [0.5, 0.7]) == pytest.approx(0.1)


def test_delta_his_on_image_pairs():
    refs = [rand_img(3), solid(RED)]
    gts = [rand_img(4), solid_lab((50.0, 22.0, -33.0))]
    his_gt = [his(g, r) for g, r in zip(gts, refs)]
    # Predictions equal to the ground truth: no gap to HIS_ref.
    assert delta_his([his(g, r) for g, r in zip(gts, refs)], his_gt) == 0.0
    # Predictions equal to the references: HIS = 1 on each pair.
    expected = abs(1.0 - np.mean(his_gt))
    assert delta_his([his(r, r) for r in refs], his_gt) == pytest.approx(expected)


@pytest.mark.parametrize("p, g", [([0.5], [0.5, 0.6]), ([], []), ([1.5], [0.5])])
def test_delta_his_rejects_bad_input(p, g):
    with pytest.raises(ValueError):
        delta_his(p, g)


# ------------------------------------------------------- full-reference


def test_ssim_identical_is_one_and_decreases_with_noise():
    a = rand_img(5, 32, 32) * 0.5 + 0.25
    noise = np.random.default_rng(6).standard_normal(a.shape)
    light = np.clip(a + 0.05 * noise, 0, 1)
    heavy = np.clip(a + 0.2 * noise, 0, 1)
    assert ssim(a, a) == pytest.approx(1.0)
    assert 1.0 > ssim(a, light) > ssim(a, heavy)


def test_ssim_rejects_mismatch_and_tiny_images():
    with pytest.raises(ValueError, match="same shape"):
        ssim(rand_img(0, 16, 16), rand_img(0, 16, 17))
    with pytest.raises(ValueError):
        ssim(rand_img(0, 8, 8), rand_img(1, 8, 8))


def test_ciede2000_identical_is_zero():
    a = rand_img(7)
    assert ciede2000(a, a) == 0.0


def test_ciede2000_sharma_pair():
    # Sharma, Wu & Dalal 2005 test data, pair 25 (in the sRGB gamut): dE00 = 1.2644.
    a = solid_lab((60.2574, -34.0099, 36.2677), 1, 1)
    b = solid_lab((60.4626, -34.1751, 39.4387), 1, 1)
    assert ciede2000(a, b) == pytest.approx(1.2644, abs=1e-2)


def test_psnr_ab_identical_is_inf():
    a = rand_img(8)
    assert psnr_ab(a, a) == math.inf


def test_psnr_ab_known_offset():
    # ab offset (3, 4) at every pixel: MSE over both channels = (9 + 16) / 2.
    a = solid_lab((50.0, 10.0, 10.0))
    b = solid_lab((50.0, 13.0, 14.0))
    assert psnr_ab(a, b) == pytest.approx(10 * math.log10(110.0**2 / 12.5), abs=1e-6)


# -------------------------------------------------------------- no-reference


def test_colorfulness_gray_is_zero():
    ramp = np.repeat(np.linspace(0, 1, 16)[None, :, None], 3, axis=2).repeat(4, axis=0)
    assert colorfulness(ramp) == pytest.approx(0.0, abs=1e-12)
    assert colorfulness(solid((0.3, 0.3, 0.3))) == pytest.approx(0.0, abs=1e-12)


def test_colorfulness_two_colour_image():
    # Half red (255, 0, 0), half blue (0, 0, 255):
    # rg in {255, 0}: mean 127.5, std 127.5; yb in {127.5, -255}: mean -63.75, std 191.25.
    img = solid(RED, 4, 4)
    img[:, 2:] = BLUE
    expected = math.sqrt(127.5**2 + 191.25**2) + 0.3 * math.sqrt(127.5**2 + 63.75**2)
    assert colorfulness(img) == pytest.approx(expected, rel=1e-12)
    assert colorfulness((img * 255).astype(np.uint8)) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------ inputs


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((8, 8)),
        np.zeros((8, 8, 4)),
        np.zeros((0, 8, 3)),
        np.full((8, 8, 3), 1.5),
        np.full((8, 8, 3), np.nan),
        np.zeros((8, 8, 3), dtype=np.int64),
    ],
)
def test_bad_input_raises_value_error(bad):
    for fn in (his, psnr_ab, ciede2000):
        with pytest.raises(ValueError):
            fn(bad, np.zeros((8, 8, 3)))
    with pytest.raises(ValueError):
        colorfulness(bad)


def test_uint8_input_matches_float():
    a8 = (rand_img(9) * 255).astype(np.uint8)
    b8 = (rand_img(10) * 255).astype(np.uint8)
    a, b = a8 / 255.0, b8 / 255.0
    assert his(a8, b8) == his(a, b)
    assert ssim(a8, b8) == ssim(a, b)
    assert psnr_ab(a8, b8) == psnr_ab(a, b)


# ------------------------------------------------------------------- LPIPS


def test_lpips_offline_raises_metric_unavailable(monkeypatch, tmp_path):
    """Offline (no cached AlexNet, no network): a one-line MetricUnavailable naming the file, one attempt."""
    import torch

    from sa_lib.core import hub

    attempts = []

    def offline(url, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(hub.urllib.request, "urlopen", offline)
    monkeypatch.setattr(metrics, "_DEFAULT_LPIPS", LPIPSMetric())
    assert lpips_available() is False
    a = rand_img(11)
    with pytest.raises(MetricUnavailable, match="alexnet-owt-7be5be79.pth") as info:
        lpips_distance(a, a)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "checkpoints") in message
    assert isinstance(info.value, RuntimeError)
    assert attempts == [hub.REGISTRY["alexnet"].url]  # the failure is remembered: one attempt only


def test_lpips_metric_wiring_with_a_random_backbone(monkeypatch, with_random_lpips):
    """LPIPS(alex, v0.1) as the evaluator calls it, offline on AlexNet with random weights (`pnet_rand=True`):
    HWC images in, one float out, 0 for identical images, symmetric. It checks the wiring, not published
    numbers (which need the real AlexNet weights)."""
    monkeypatch.setattr(metrics, "_DEFAULT_LPIPS", LPIPSMetric())
    available, built = with_random_lpips(lpips_available)
    assert available is True and metrics._DEFAULT_LPIPS.reason is None
    assert [(kwargs["net"], kwargs["version"]) for kwargs in built] == [("alex", "0.1")]
    a, b = rand_img(12, 32, 40), rand_img(13, 32, 40)
    assert lpips_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    distance = lpips_distance(a, b)
    assert isinstance(distance, float) and distance > 0.0
    assert lpips_distance(b, a) == pytest.approx(distance, rel=1e-5)
    eight_bit = lpips_distance((a * 255).round().astype(np.uint8), (b * 255).round().astype(np.uint8))
    assert eight_bit == pytest.approx(distance, rel=0.05)
    assert len(built) == 1  # built once, then reused


def test_his_of_an_image_with_itself_never_exceeds_one():
    """Float round-off must not push HIS above 1 (delta_his rejects values outside [0, 1])."""
    for seed in range(20):
        img = rand_img(100 + seed, 37, 53).astype(np.float32)
        assert his(img, img) <= 1.0
        assert delta_his([his(img, img)], [his(img, img)]) == 0.0


# ------------------------------------------------------ known answers added with the evaluator (issue 5)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    # Flat images have no variance: SSIM reduces to (2 a b + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 1)^2.
    a, b = 0.2, 0.6
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(solid((a, a, a), 16, 16), solid((b, b, b), 16, 16)) == pytest.approx(expected, abs=1e-9)


def test_ssim_uses_data_range_one_not_255():
    # With data_range=255 on [0, 1] data, C1 would be 255^2 times larger and this pair would score ~1.
    assert ssim(solid((0.2,) * 3, 16, 16), solid((0.6,) * 3, 16, 16)) < 0.61


def test_histogram_intersection_known_values():
    h1 = np.zeros((21, 21))
    h2 = np.zeros((21, 21))
    h1[3, 4], h1[5, 5] = 0.25, 0.75
    h2[3, 4], h2[6, 6] = 0.5, 0.5
    assert metrics.histogram_intersection(h1, h2) == pytest.approx(0.25)
    assert metrics.histogram_intersection(h1, h1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.histogram_intersection(h1, np.zeros((3, 3)))


def test_his_compares_prediction_with_reference_not_ground_truth():
    # dHIS's HIS_ref is HIS(ground truth, reference); a prediction copying the reference's colours gets 1.
    ref = solid_lab((50.0, 22.0, -33.0))
    gt = solid((0.5, 0.5, 0.5))
    assert his(ref, ref) == pytest.approx(1.0, abs=1e-9)
    assert his(gt, ref) == pytest.approx(0.0, abs=1e-6)
    assert delta_his([his(ref, ref)], [his(gt, ref)]) == pytest.approx(1.0, abs=1e-6)


def test_psnr_ab_ignores_luminance():
    a = solid_lab((30.0, 10.0, 10.0))
    b = solid_lab((70.0, 13.0, 14.0))
    assert psnr_ab(a, b) == pytest.approx(10 * math.log10(110.0**2 / 12.5), abs=1e-4)


class _RecordingNet:
    """Stands in for lpips.LPIPS: records what it is given and returns the mean absolute difference."""

    def __init__(self):
        self.inputs = []

    def __call__(self, x, y):
        self.inputs.append((x, y))
        return (x - y).abs().mean().reshape(1, 1, 1, 1)


def test_lpips_feeds_nchw_inputs_scaled_to_minus_one_one():
    metric = LPIPSMetric()
    net = _RecordingNet()
    metric._model = net  # skip the AlexNet download: only the input convention is under test here
    white = np.full((16, 12, 3), 255, dtype=np.uint8)
    black = np.zeros((16, 12, 3), dtype=np.uint8)
    assert metric(white, black) == pytest.approx(2.0)
    x, y = net.inputs[0]
    assert tuple(x.shape) == (1, 3, 16, 12)
    assert float(x.min()) == 1.0 and float(y.max()) == -1.0
    assert metric(np.full((16, 12, 3), 0.5), np.full((16, 12, 3), 0.5)) == 0.0


def test_lpips_reason_says_why_it_is_unavailable(monkeypatch):
    from sa_lib.core import hub

    def offline(name, *args, **kwargs):
        raise hub.AssetUnavailable(f"{name} weights could not be downloaded (offline)")

    monkeypatch.setattr(hub, "fetch", offline)
    metric = LPIPSMetric()
    assert metric.reason is None
    assert metric.available() is False
    assert metric.missing_weights is True
    assert "alexnet" in metric.reason and "\n" not in metric.reason


def test_lpips_vgg_is_its_own_metric_with_its_own_backbone(monkeypatch):
    """LPIPS(vgg), the tables' second LPIPS column, asks for VGG16's file, and names itself when unavailable."""
    from sa_lib.core import hub

    asked = []

    def offline(name, *args, **kwargs):
        asked.append(name)
        raise hub.AssetUnavailable(f"{name} weights could not be downloaded (offline)")

    monkeypatch.setattr(hub, "fetch", offline)
    metric = LPIPSMetric(net="vgg")
    assert metric.available() is False and metric.missing_weights is True
    assert asked == ["vgg16"] and metric.reason.startswith("LPIPS(vgg) unavailable")
    with pytest.raises(ValueError, match="net"):
        LPIPSMetric(net="squeeze")


@pytest.mark.slow  # builds a random VGG16: about 10 s of CPU time
def test_lpips_vgg_metric_wiring_with_a_random_backbone(with_random_lpips):
    """LPIPS(vgg, v0.1), the second column, offline on VGG16 with random weights: 0 for identical images, a
    positive float otherwise (the wiring; published numbers need the real VGG16 weights)."""
    metric = LPIPSMetric(net="vgg")
    available, built = with_random_lpips(metric.available)
    assert available is True and metric.reason is None
    assert [(kwargs["net"], kwargs["version"]) for kwargs in built] == [("vgg", "0.1")]
    a, b = rand_img(14, 32, 40), rand_img(15, 32, 40)
    assert metric(a, a) == pytest.approx(0.0, abs=1e-6)
    assert metric(a, b) > 0.0
