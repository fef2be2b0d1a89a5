"""The training-free baselines of Table 2 on synthetic cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from sa_lib.eval import baselines
from sa_lib.eval.baselines import SuperpixelFeatureTransfer, jittered_samples, reinhard, reinhard_ab, welsh, welsh_ab


def lab_image(lab: np.ndarray) -> np.ndarray:
    """(H, W, 3) Lab -> sRGB in [0, 1] (the test colours are in gamut)."""
    return np.clip(lab2rgb(lab), 0.0, 1.0)


def two_regions(h: int = 48, w: int = 48, vertical: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An sRGB image of two flat regions: dark orange (L 35) and light blue (L 75); returns (rgb, mask, lab)."""
    mask = np.zeros((h, w), dtype=bool)
    if vertical:
        mask[:, w // 2:] = True
    else:
        mask[h // 2:, :] = True
    lab = np.zeros((h, w, 3))
    lab[~mask] = (35.0, 25.0, 30.0)
    lab[mask] = (75.0, -10.0, -25.0)
    rgb = lab_image(lab)
    return rgb, mask, rgb2lab(rgb)


def textured(seed: int = 0, h: int = 40, w: int = 56) -> np.ndarray:
    """A smooth, mildly coloured sRGB image whose colours depend on its luminance and position."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    lab = np.stack([40 + 30 * x + 5 * rng.random((h, w)), 15 * np.sin(6 * y) + 5, 20 * x - 10], axis=-1)
    return lab_image(lab)


# --------------------------------------------------------------------------------------------- Reinhard


def test_reinhard_with_ground_truth_reference_has_its_ab_mean_and_std():
    truth = textured(1)
    lab = rgb2lab(truth)
    ab = reinhard_ab(lab[..., 0], truth)
    np.testing.assert_allclose(ab.reshape(-1, 2).mean(0), lab[..., 1:].reshape(-1, 2).mean(0), atol=1e-9)
    np.testing.assert_allclose(ab.reshape(-1, 2).std(0), lab[..., 1:].reshape(-1, 2).std(0), atol=1e-9)
    # The RGB output (recombined, gamut-clipped) keeps them to within a fraction of a Lab unit here.
    out = rgb2lab(reinhard(lab[..., 0], truth))
    np.testing.assert_allclose(out[..., 1:].reshape(-1, 2).mean(0), lab[..., 1:].reshape(-1, 2).mean(0), atol=0.5)
    np.testing.assert_allclose(out[..., 1:].reshape(-1, 2).std(0), lab[..., 1:].reshape(-1, 2).std(0), atol=0.5)


def test_reinhard_follows_the_reference_luminance_colour_correlation():
    # Reference: dark orange, light blue. The target's bright half must come out blue (b* < 0).
    reference, _, _ = two_regions()
    _, mask, lab = two_regions(vertical=False)
    ab = reinhard_ab(lab[..., 0], reference)
    assert ab[mask, 1].mean() < -20 and ab[~mask, 1].mean() > 20
    flat = reinhard_ab(np.full((8, 8), 50.0), reference)  # a flat target gets the mean a*b* everywhere
    np.testing.assert_allclose(flat, np.broadcast_to(rgb2lab(reference)[..., 1:].mean((0, 1)), flat.shape))


def test_reinhard_keeps_the_target_luminance():
    truth = textured(2)
    l_star = rgb2lab(truth)[..., 0]
    np.testing.assert_allclose(rgb2lab(reinhard(l_star, textured(3)))[..., 0], l_star, atol=0.5)


# ------------------------------------------------------------------------------------------------ Welsh


def test_jittered_samples_one_per_cell():
    points = jittered_samples(40, 60, 24, np.random.default_rng(0))
    assert 20 <= len(points) <= 30
    assert points[:, 0].min() >= 0 and points[:, 0].max() < 40 and points[:, 1].max() < 60
    assert len({tuple(p) for p in points}) == len(points)


def test_welsh_assigns_each_region_its_colour():
    # Reference: the two regions side by side; target: the same two luminances, stacked (another layout).
    reference, _, ref_lab = two_regions(vertical=True)
    _, mask, target_lab = two_regions(vertical=False)
    ab = welsh_ab(target_lab[..., 0], reference)
    interior = np.zeros_like(mask)
    interior[4:20, 4:-4] = True  # away from the boundary, where the 5x5 std is 0 as in the flat regions
    dark, light = interior & ~mask, np.roll(interior, 24, axis=0) & mask
    np.testing.assert_allclose(ab[dark].mean(0), ref_lab[0, 0, 1:], atol=0.5)
    np.testing.assert_allclose(ab[light].mean(0), ref_lab[0, -1, 1:], atol=0.5)
    out = rgb2lab(welsh(target_lab[..., 0], reference))
    np.testing.assert_allclose(out[dark][:, 1:].mean(0), ref_lab[0, 0, 1:], atol=1.0)


def test_welsh_remaps_the_reference_luminance_to_the_target():
    # Target L* 20 / 50 (mean 35, std 15); reference L* 35 (orange) / 75 (blue) (mean 55, std 20). Remapped,
    # the reference's L* become (35 - 55) * 15/20 + 35 = 20 and 50: the dark target region matches orange and
    # the light one blue. Without the remapping both target regions are nearest to L* 35 and turn orange.
    reference, _, ref_lab = two_regions(vertical=True)
    mask = np.zeros((48, 48), dtype=bool)
    mask[24:, :] = True
    target_l = np.where(mask, 50.0, 20.0)
    ab = welsh_ab(target_l, reference)
    interior = np.zeros_like(mask)
    interior[4:20, 4:-4] = True
    dark, light = interior, np.roll(interior, 24, axis=0)
    np.testing.assert_allclose(ab[dark].mean(0), ref_lab[0, 0, 1:], atol=0.5)
    np.testing.assert_allclose(ab[light].mean(0), ref_lab[0, -1, 1:], atol=0.5)


def test_welsh_is_deterministic_for_a_seed():
    l_star = rgb2lab(textured(4))[..., 0]
    ref = textured(5)
    np.testing.assert_array_equal(welsh_ab(l_star, ref, seed=3), welsh_ab(l_star, ref, seed=3))


# ------------------------------------------------------------------------------------ Carrillo et al. [17]


@pytest.fixture(scope="module")
def transfer() -> SuperpixelFeatureTransfer:
    return SuperpixelFeatureTransfer()


def test_superpixel_transfer_with_ground_truth_reference_recovers_regions(transfer):
    truth, mask, lab = two_regions(64, 64)
    out = rgb2lab(transfer(lab[..., 0], truth))
    inner = np.zeros_like(mask)
    inner[8:-8, 8:24] = True
    np.testing.assert_allclose(out[inner][:, 1:].mean(0), lab[0, 0, 1:], atol=1.0)
    np.testing.assert_allclose(out[np.fliplr(inner)][:, 1:].mean(0), lab[0, -1, 1:], atol=1.0)


def test_superpixel_transfer_matches_each_superpixel_to_itself(transfer):
    truth = textured(6, 64, 64)
    labels_t, labels_r, best = transfer.match(rgb2lab(truth)[..., 0], truth)
    np.testing.assert_array_equal(labels_t, labels_r)
    assert (best == np.arange(len(best))).mean() > 0.9


def test_baselines_share_the_colorizer_interface(transfer):
    l_star, ref = rgb2lab(textured(7))[..., 0], textured(8, 30, 20)  # reference of another size
    for colorizer in (reinhard, welsh, transfer):
        out = colorizer(l_star, ref)
        assert out.shape == (*l_star.shape, 3) and out.min() >= 0.0 and out.max() <= 1.0
    with pytest.raises(ValueError):
        reinhard(np.zeros((8, 8, 3)), ref)
    assert baselines.compose(l_star, np.zeros((*l_star.shape, 2))).shape == (*l_star.shape, 3)
