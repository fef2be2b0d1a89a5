"""The one inference step: predict a target's ab from a reference, then rebuild sRGB from the target's own L*.

Every consumer colorizes through these two functions: the API and `sa-colorize` (sa_lib.inference.colorize),
the evaluator's model colorizer (sa_lib.eval.scoring.model_colorizer), training validation
(sa_lib.train.validation) and the methods shown beside a result (sa_lib.figures.explain.other_methods).
Neither changes the model's train/eval mode: callers put it in eval mode.
"""

from __future__ import annotations

import torch

from ..core.color import combine_l_ab
from .colorizer import Colorizer, check_chroma_gain


def predict_ab(model: Colorizer, target_l: torch.Tensor, reference: torch.Tensor | None,
               slic_backend: str = "auto", flip_average: bool | None = None,
               chroma_gain: float | None = None) -> tuple[torch.Tensor, dict]:
    """(ab, intermediates): the model's a*b* (B, 2, h, w) in Lab units, float32, for the target's L* (B, 1, h, w)
    in [0, 100] and the reference sRGB (B, 3, h', w') in [0, 1], without gradients; intermediates as
    Colorizer.forward returns them (attention maps, superpixels).

    `flip_average` (None: the model's ColorizerConfig.flip_average) averages the a*b* of a second pass on the
    target and the reference both mirrored left to right, mirrored back; the intermediates stay the first pass's.
    `chroma_gain` (None: the model's ColorizerConfig.chroma_gain) multiplies the a*b* last.
    """
    flip = model.config.flip_average if flip_average is None else flip_average
    gain = model.config.chroma_gain if chroma_gain is None else check_chroma_gain(chroma_gain)
    with torch.inference_mode():
        ab, intermediates = model(target_l, reference, slic_backend=slic_backend)
        ab = ab.float()
        if flip:
            mirrored_reference = None if reference is None else reference.flip(-1)  # (B, 3, h', w')
            mirrored_ab, _ = model(target_l.flip(-1), mirrored_reference, slic_backend=slic_backend)
            ab = (ab + mirrored_ab.float().flip(-1)) / 2  # (B, 2, h, w): the mirrored pass mirrored back
    return ab * gain, intermediates


def predict_rgb(model: Colorizer, target_l: torch.Tensor, reference: torch.Tensor | None,
                full_l: torch.Tensor | None = None, slic_backend: str = "auto",
                flip_average: bool | None = None, chroma_gain: float | None = None) -> tuple[torch.Tensor, dict]:
    """(rgb, intermediates): predict_ab, recombined with the target's own L* (B, 1, H, W) into sRGB (B, 3, H, W)
    in [0, 1]. `full_l` is the full-resolution L* when the network ran at a working size (ab is upsampled onto
    it); by default the L* the network saw. `flip_average`, `chroma_gain`: as predict_ab."""
    ab, intermediates = predict_ab(model, target_l, reference, slic_backend, flip_average, chroma_gain)
    with torch.inference_mode():
        rgb = combine_l_ab(target_l if full_l is None else full_l, ab)
    return rgb, intermediates
