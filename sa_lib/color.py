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
