"""Reference augmentation for transfer training (the `transfer` variant; a departure from the paper).

With the target itself as reference, a network can copy colours by position and learns nothing about
matching; with a different photo as reference, SmoothL1 against the target's truth teaches it to distrust
the reference and return muted colours (docs/transfer.md). The transfer variant trains on self references
that are

- warped (`warp`): flipped, cropped and zoomed (35-100% of the area), rotated (up to 20 degrees) and bent by
  a smooth random displacement field (a coarse 4 x 4 grid of offsets, upsampled bicubically: a thin-plate-
  like warp), so that copying by position no longer works and the attention has to match content;
- sometimes recoloured (`recolor`) together with the target: both get the same random rotation of the a*b*
  plane and chroma scale, so the colours to predict can only come from the reference.

Every draw comes from the `random.Random` passed in, so a training sample is the same in any process.
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from ..core.color import lab_to_rgb, rgb_to_lab

MIN_AREA = 0.35  # smallest crop, as a fraction of the image area
MAX_ROTATION_DEG = 20.0
WARP_GRID = 4  # the displacement field is drawn on a 4 x 4 grid...
WARP_STRENGTH = 0.06  # ...with offsets up to 6% of the half-width (normalised coordinates)
CHROMA_RANGE = (0.8, 1.25)


def warp(rgb: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> the same size, flipped / cropped / rotated / bent (reflection at the borders)."""
    _, h, w = rgb.shape
    zoom = 1.0 / math.sqrt(rng.uniform(MIN_AREA, 1.0))
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    zoom_x, zoom_y = max(1.0, zoom * math.sqrt(aspect)), max(1.0, zoom / math.sqrt(aspect))
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    shift_x, shift_y = rng.uniform(-1, 1) * (1 - 1 / zoom_x), rng.uniform(-1, 1) * (1 - 1 / zoom_y)
    cos, sin = math.cos(angle), math.sin(angle)
    # Output pixel (x, y) in [-1, 1]^2 samples the input at R(angle) diag(flip / zoom_x, 1 / zoom_y) (x, y) + shift.
    theta = torch.tensor([[cos * flip / zoom_x, -sin / zoom_y, shift_x],
                          [sin * flip / zoom_x, cos / zoom_y, shift_y]], dtype=rgb.dtype)[None]  # (1, 2, 3)
    grid = F.affine_grid(theta, [1, 3, h, w], align_corners=False)  # (1, H, W, 2) sampling positions
    generator = torch.Generator().manual_seed(rng.randrange(2 ** 31))
    offsets = (torch.rand(1, 2, WARP_GRID, WARP_GRID, generator=generator) * 2 - 1) * WARP_STRENGTH  # (1, 2, 4, 4)
    field = F.interpolate(offsets, size=(h, w), mode="bicubic", align_corners=True)  # (1, 2, H, W)
    grid = grid + field.permute(0, 2, 3, 1).to(rgb.dtype)  # (1, H, W, 2)
    out = F.grid_sample(rgb[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out[0].clamp(0.0, 1.0)  # (3, H, W)


def recolor(rgb: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """(3, H, W) in [0, 1] -> the same image with its a*b* plane rotated by a random angle and its chroma
    scaled (L* kept, then gamut-clipped back to sRGB)."""
    angle = rng.uniform(0.0, 2 * math.pi)
    chroma = rng.uniform(*CHROMA_RANGE)
    lab = rgb_to_lab(rgb[None])  # (1, 3, H, W)
    a, b = lab[:, 1], lab[:, 2]
    cos, sin = math.cos(angle) * chroma, math.sin(angle) * chroma
    rotated = torch.stack([lab[:, 0], cos * a - sin * b, sin * a + cos * b], dim=1)  # (1, 3, H, W)
    return lab_to_rgb(rotated)[0]


def transfer_pair(target: torch.Tensor, rng: random.Random, p_recolor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A self-reference training pair: (target, reference), both (3, H, W). With probability `p_recolor` the
    target is recoloured first (its truth changes with it); the reference is always a warp of the target."""
    if rng.random() < p_recolor:
        target = recolor(target, rng)
    return target, warp(target, rng)
