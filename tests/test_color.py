import torch

from sa_lib.core.color import (AB_SCALE, combine_l_ab, denormalize_ab, lab_to_rgb, normalize_ab, rgb_to_gray_l,
                          rgb_to_lab)


def test_lab_round_trip_error_below_1e_3():
    rgb = torch.rand(2, 3, 17, 23)
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-3


def test_known_lab_values():
    white, red = torch.ones(1, 3, 1, 1), torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert torch.allclose(rgb_to_lab(white).flatten(), torch.tensor([100.0, 0.0, 0.0]), atol=1e-2)
    # sRGB red in CIE Lab (D65): (53.24, 80.09, 67.20)
    assert torch.allclose(rgb_to_lab(red).flatten(), torch.tensor([53.24, 80.09, 67.20]), atol=0.05)


def test_ab_scaling_round_trip():
    ab = torch.randn(1, 2, 4, 4) * 40
    assert torch.allclose(denormalize_ab(normalize_ab(ab)), ab)
    assert AB_SCALE == 110.0


def test_combine_rebuilds_the_image_from_its_own_l_and_ab():
    rgb = torch.rand(1, 3, 32, 48)
    lab = rgb_to_lab(rgb)
    assert (combine_l_ab(lab[:, :1], lab[:, 1:]) - rgb).abs().max() < 1e-3


def test_combine_upsamples_ab_but_keeps_original_full_resolution_l_star():
    l_star = rgb_to_lab(torch.rand(1, 3, 32, 48))[:, :1]
    out = combine_l_ab(l_star, torch.zeros(1, 2, 8, 12))  # a neutral ab predicted at a quarter of the size
    assert out.shape == (1, 3, 32, 48)
    assert (rgb_to_gray_l(out) - l_star).abs().max() < 1e-2  # L* untouched: no Y, no min-max stretch
