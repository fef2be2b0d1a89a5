"""The one inference step: predict a target's ab from a reference, then rebuild sRGB from the target's own L*.

Every consumer colorizes through these two functions: the API and `sa-colorize` (sa_lib.inference.colorize),
the evaluator's model colorizer (sa_lib.eval.scoring.model_colorizer), training validation
(sa_lib.train.validation) and the methods shown beside a result (sa_lib.figures.explain.other_methods).
Neither changes the model's train/eval mode: callers put it in eval mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.color import combine_l_ab
from .colorizer import AUTHORS_PREPROCESSING, Colorizer, check_chroma_gain

# The blend partner (ColorizerConfig.blend_partner) runs with the long side of each image at most this many pixels
# (sa-colorize's default working size), its a*b* upsampled: a standard partner's attention at the bottleneck is
# global, quadratic in the positions (BENCHMARKS.md), and at 256 px it holds at most 32 x 32 of them.
PARTNER_MAX_SIDE = 256
PARTNER_MIN_SIDE = 32  # a side shrunk for the partner stays at least this long (sa-colorize's smallest input)


def predict_ab(model: Colorizer, target_l: torch.Tensor, reference: torch.Tensor | None,
               slic_backend: str = "auto", flip_average: bool | None = None,
               chroma_gain: float | None = None, blend: bool | None = None) -> tuple[torch.Tensor, dict]:
    """(ab, intermediates): the model's a*b* (B, 2, h, w) in Lab units, float32, for the target's L* (B, 1, h, w)
    in [0, 100] and the reference sRGB (B, 3, h', w') in [0, 1], without gradients; intermediates as
    Colorizer.forward returns them (attention maps, superpixels).

    `flip_average` (None: the model's ColorizerConfig.flip_average) averages the a*b* of a second pass on the
    target and the reference both mirrored left to right, mirrored back; the intermediates stay the first pass's.
    `blend` (None: on when the model has a ColorizerConfig.blend_partner) averages those a*b* with its blend
    partner's, run the same way at most PARTNER_MAX_SIDE px; False runs the network alone. `chroma_gain` (None: the
    model's ColorizerConfig.chroma_gain) multiplies the a*b* last.
    """
    check_blend(model, blend)
    flip = model.config.flip_average if flip_average is None else flip_average
    gain = model.config.chroma_gain if chroma_gain is None else check_chroma_gain(chroma_gain)
    partner = model.blend_partner if blend is not False and reference is not None else None
    with torch.inference_mode():
        ab, intermediates = _network_ab(model, target_l, reference, slic_backend, flip)
        if partner is not None:
            ab = (ab + _partner_ab(partner, target_l, reference, slic_backend, flip)) / 2  # (B, 2, h, w)
    return ab * gain, intermediates


def check_blend(model: Colorizer, blend: bool | None) -> None:
    """A one-line ValueError for a `blend` that is not None, True or False, or True for a model without a partner."""
    if blend not in (None, True, False):
        raise ValueError(f"blend must be None, True or False, got {blend!r}")
    if blend and model.blend_partner is None:
        raise ValueError("blend: this checkpoint has no blend partner (ColorizerConfig.blend_partner)")


def _partner_ab(partner: Colorizer, target_l: torch.Tensor, reference: torch.Tensor, slic_backend: str,
                flip: bool) -> torch.Tensor:
    """The blend partner's a*b* (B, 2, h, w), the images first shrunk to a long side of PARTNER_MAX_SIDE px when
    larger, the a*b* brought back to the target's size. The inputs are float32 unless the partner uses the authors'
    float64 preprocessing itself (a main network with it gets float64 images: sa_lib.inference.colorize)."""
    size = tuple(target_l.shape[-2:])
    if partner.config.luminance_input != AUTHORS_PREPROCESSING:
        target_l, reference = target_l.float(), reference.float()
    ab, _ = _network_ab(partner, _at_most(target_l, PARTNER_MAX_SIDE), _at_most(reference, PARTNER_MAX_SIDE),
                        slic_backend, flip)
    return ab if tuple(ab.shape[-2:]) == size else F.interpolate(ab, size=size, mode="bilinear", align_corners=False)


def _at_most(image: torch.Tensor, long_side: int) -> torch.Tensor:
    """(B, C, h, w) resized (antialiased) so that its long side is at most `long_side`, the aspect ratio kept as far
    as no side falls below PARTNER_MIN_SIDE."""
    height, width = image.shape[-2:]
    scale = long_side / max(height, width)
    if scale >= 1:
        return image
    size = tuple(max(min(side, PARTNER_MIN_SIDE), round(side * scale)) for side in (height, width))
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def _network_ab(model: Colorizer, target_l: torch.Tensor, reference: torch.Tensor | None, slic_backend: str,
                flip: bool) -> tuple[torch.Tensor, dict]:
    """One network's float32 a*b* (B, 2, h, w), with the flip average's second pass when `flip`; the intermediates
    of the first pass."""
    ab, intermediates = model(target_l, reference, slic_backend=slic_backend)
    ab = ab.float()
    if flip:
        mirrored_reference = None if reference is None else reference.flip(-1)  # (B, 3, h', w')
        mirrored_ab, _ = model(target_l.flip(-1), mirrored_reference, slic_backend=slic_backend)
        ab = (ab + mirrored_ab.float().flip(-1)) / 2  # (B, 2, h, w): the mirrored pass mirrored back
    return ab, intermediates


def predict_rgb(model: Colorizer, target_l: torch.Tensor, reference: torch.Tensor | None,
                full_l: torch.Tensor | None = None, slic_backend: str = "auto",
                flip_average: bool | None = None, chroma_gain: float | None = None,
                blend: bool | None = None) -> tuple[torch.Tensor, dict]:
    """(rgb, intermediates): predict_ab, recombined with the target's own L* (B, 1, H, W) into sRGB (B, 3, H, W)
    in [0, 1]. `full_l` is the full-resolution L* when the network ran at a working size (ab is upsampled onto
    it); by default the L* the network saw. `flip_average`, `chroma_gain`, `blend`: as predict_ab."""
    ab, intermediates = predict_ab(model, target_l, reference, slic_backend, flip_average, chroma_gain, blend)
    with torch.inference_mode():
        rgb = combine_l_ab(target_l if full_l is None else full_l, ab)
    return rgb, intermediates
