"""CIE Lab colour handling: conversions, network scaling, and recombination with the original L*.

The network sees L* scaled to [0, 1] and predicts ab scaled to [-1, 1]. The final image is always
rebuilt from the target's OWN full-resolution L* and the predicted ab (upsampled if predicted at a
working size), never from Y and never with a min-max stretch: those bias every metric.
"""

from __future__ import annotations

import kornia.color
import torch
import torch.nn.functional as F

L_SCALE = 100.0  # L* in [0, 100]  -> network input in [0, 1]
AB_SCALE = 110.0  # a*, b* in about [-110, 110] for sRGB -> network output in [-1, 1] (same 110 as HIS)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] -> (B, 3, H, W) CIE Lab (D65): L* in [0, 100], a*, b* in Lab units."""
    return kornia.color.rgb_to_lab(rgb.clamp(0.0, 1.0))


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) CIE Lab -> sRGB clipped to [0, 1]. Differentiable (used by the perceptual loss)."""
    return kornia.color.lab_to_rgb(lab, clip=True)


def rgb_to_gray_l(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) sRGB -> (B, 1, H, W) L* in [0, 100]: what a grayscale target looks like to the model."""
    return rgb_to_lab(rgb)[:, :1]


def normalize_l(l_star: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] -> network scale [0, 1]."""
    return l_star / L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a*, b* in Lab units -> network scale, about [-1, 1]."""
    return ab / AB_SCALE


def denormalize_ab(ab_net: torch.Tensor) -> torch.Tensor:
    """Network-scale ab -> a*, b* in Lab units."""
    return ab_net * AB_SCALE


def combine_l_ab(l_star: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Rebuild sRGB from the ORIGINAL L* (B, 1, H, W) and ab in Lab units (B, 2, h, w).

    ab predicted at a working size is upsampled bilinearly to the size of L*; L* itself is never resampled
    or stretched, so the output keeps the target's exact luminance and detail.
    """
    if ab.shape[-2:] != l_star.shape[-2:]:
        ab = F.interpolate(ab, size=l_star.shape[-2:], mode="bilinear", align_corners=False)
    return lab_to_rgb(torch.cat([l_star, ab], dim=1))


# CIE L* <-> Y and sRGB's transfer curve, with kornia's constants (so they invert its rgb_to_lab exactly).
_LAB_EPSILON = 0.008856  # Y above which L* = 116 Y^(1/3) - 16
_LAB_KAPPA = 7.787  # f(Y) = 7.787 Y + 4/29 below it
_SRGB_LINEAR_MAX = 0.0031308  # linear values up to here are encoded as 12.92 x


def gray_from_lstar(l_star: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] (any shape) -> the gamma-encoded sRGB value g in [0, 1] of the gray pixel with that L*.

    For a gray pixel (R = G = B = g), scikit-image's `rgb2gray` (0.2125 R + 0.7154 G + 0.0721 B, weights summing
    to 1) is g itself, and its CIE Y is the linearised g. So inverting L* -> Y, then the sRGB curve, recovers
    exactly what `rgb2gray` gives for a gray target: the luminance the authors' code feeds its network. Compute
    in float64 for a bit-faithful recovery.
    """
    fy = (l_star + 16.0) / 116.0
    y = torch.where(fy ** 3 > _LAB_EPSILON, fy ** 3, (fy - 4.0 / 29.0) / _LAB_KAPPA).clamp(0.0, 1.0)  # CIE Y
    encoded = 1.055 * y.clamp(min=_SRGB_LINEAR_MAX) ** (1.0 / 2.4) - 0.055
    return torch.where(y > _SRGB_LINEAR_MAX, encoded, 12.92 * y)
