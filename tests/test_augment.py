"""Reference augmentation of the transfer training (sa_lib.data.augment)."""

import math
import random

import torch

from sa_lib.data.augment import recolor, transfer_pair, warp
from sa_lib.core.color import rgb_to_lab
from sa_lib.eval.metrics import his


def test_warp_is_seeded_sized_and_moves_pixels(demo_pair):
    image = demo_pair[0][0]  # (3, 48, 56)
    a, b = warp(image, random.Random(1)), warp(image, random.Random(1))
    assert torch.equal(a, b) and a.shape == image.shape
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert (a - image).abs().mean() > 0.02  # not the identity
    assert not torch.equal(warp(image, random.Random(2)), a)


def test_recolor_keeps_lightness_and_rotates_hue(demo_pair):
    image = demo_pair[0][0]
    out = recolor(image, random.Random(3))
    lab_in, lab_out = rgb_to_lab(image[None]), rgb_to_lab(out[None])
    assert (lab_in[:, 0] - lab_out[:, 0]).abs().mean() < 2.0  # L* kept (up to gamut clipping)
    hue_in = torch.atan2(lab_in[:, 2], lab_in[:, 1])
    hue_out = torch.atan2(lab_out[:, 2], lab_out[:, 1])
    chroma = lab_in[:, 1:].norm(dim=1)
    shift = torch.remainder(hue_out - hue_in, 2 * math.pi)[chroma > 10]
    assert shift.std() < 0.5 and (lab_out[:, 1:] - lab_in[:, 1:]).abs().mean() > 3  # one global rotation


def test_transfer_pair_recolours_target_and_reference_together(demo_pair):
    image = demo_pair[0][0]
    recoloured = [transfer_pair(image, random.Random(seed), p_recolor=1.0) for seed in range(3)]
    for target, reference in recoloured:
        assert not torch.allclose(target, image, atol=0.02)
        # same colours on both sides: the reference's a*b* histogram is the recoloured target's, not the original's
        t, r, o = (x.permute(1, 2, 0).numpy() for x in (target, reference, image))
        assert his(t, r) > his(o, r) + 0.1
    kept, _ = transfer_pair(image, random.Random(0), p_recolor=0.0)
    assert torch.equal(kept, image)
