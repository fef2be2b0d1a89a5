"""A checkpoint's chroma gain (ColorizerConfig.chroma_gain), calibrated on its profile's training photos.

A network trained with a regression loss (eq. 6's SmoothL1) predicts a muted a*b* wherever it is unsure of the
hue: its outputs are less colourful than photos. The chroma gain k multiplies the predicted a*b* at inference
(sa_lib.model.predict.predict_ab). It is fitted here by bisection so that the outputs' mean colourfulness (Hasler
and Suesstrunk, sa_lib.eval.metrics.colorfulness) on the profile's TRAINING photos, each colorized from its top-1
ranked reference (another photo: the ranking excludes a target's own image), is `share` times their truths'.
Only training photos are used, so the figures of sa-evaluate on the val photos stay held out. The default share,
0.85, is issue 11's bar for "no muted output" (docs/transfer.md, run "gain").

`sa-calibrate-chroma` (sa_lib.cli.calibrate_chroma) writes the gain into a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import metrics
from ..core.color import combine_l_ab
from ..data.pairs import Pair
from ..data.references import load_references, top1_references
from ..model.checkpoint import CheckpointError, embeds_color_encoder, load_checkpoint, rewrite_config, with_partner
from ..model.colorizer import CHROMA_GAIN_RANGE, Colorizer
from ..model.predict import predict_ab
from ..profiles import EVAL_SIZE, Profile
from .pair_images import load_pair_images

DEFAULT_SHARE = 0.85  # of the truths' mean colourfulness: issue 11's "no muted output" bar
BISECTION_STEPS = 16  # k to about 6e-5 of CHROMA_GAIN_RANGE
MAX_SHARE = 2.0  # a share asked for is in (0, MAX_SHARE]: more than twice the photos' colour is a typo


def check_share(share: float) -> float:
    """`share`, or a one-line ValueError if it is not a share of the truths' colourfulness in (0, MAX_SHARE]."""
    if not 0.0 < share <= MAX_SHARE:  # NaN fails too
        raise ValueError(f"share {share:g} is not a share of the truths' colourfulness in (0, {MAX_SHARE:g}]")
    return share


def mean_colourfulness(rgb: np.ndarray | Sequence[np.ndarray]) -> float:
    """The mean colourfulness of (H, W, 3) sRGB images in [0, 1]."""
    return float(np.mean([metrics.colorfulness(image) for image in rgb]))


def fit_gain(colourfulness_at: Callable[[float], float], wanted: float,
             bounds: tuple[float, float] = CHROMA_GAIN_RANGE) -> float:
    """The gain k in `bounds` for which `colourfulness_at(k)`, which grows with k, is `wanted` (bisection; a bound
    when `wanted` is out of reach)."""
    low, high = bounds
    for _ in range(BISECTION_STEPS):
        mid = (low + high) / 2
        low, high = (mid, high) if colourfulness_at(mid) < wanted else (low, mid)
    return (low + high) / 2


def calibration_pairs(profile: Profile) -> list[Pair]:
    """Every training photo of `profile` with its top-1 ranked reference, another training photo or a crop of one;
    only the first `profile.eval_limit` for a profile that evaluates only that many (smoke: a test's few)."""
    photos = profile.photos
    folder = photos.reference_dir()  # the train photos: targets and references alike
    pairs = [Pair(target, candidate.file_name, candidate.box, folder / target, folder / candidate.file_name)
             for target, candidate, _ in top1_references(load_references(photos.references_file()),
                                                         photos.dataset("train"))]
    return pairs[:profile.eval_limit]


@dataclass(frozen=True)
class Calibration:
    """What `calibrate` found; sa-calibrate-chroma stores it in the checkpoint's sidecar."""

    gain: float  # the fitted chroma gain
    share: float  # the share of the truths' colourfulness it was fitted to
    share_as_trained: float  # the outputs' share with gain 1
    pairs: int
    truth_colourfulness: float


def calibrate(model: Colorizer, pairs: Sequence[Pair], share: float = DEFAULT_SHARE, size: int = EVAL_SIZE,
              progress: Callable[[int, int], None] | None = None) -> Calibration:
    """Fit the chroma gain of `model` (as it runs: its flip average, its SLIC backend; its own chroma gain left
    out) on `pairs` at `size` px. ValueError if `share` is not in (0, MAX_SHARE]."""
    check_share(share)
    device = next(model.parameters()).device
    l_stars, predicted, truths = [], [], []
    for number, pair in enumerate(pairs, start=1):
        images = load_pair_images(pair, size)
        l_star = torch.from_numpy(images.target_l)[None, None].to(device)  # (1, 1, S, S) L* in [0, 100]
        reference = torch.from_numpy(images.reference).permute(2, 0, 1)[None].to(device)  # (1, 3, S, S) sRGB
        ab, _ = predict_ab(model, l_star, reference, model.config.slic_backend, chroma_gain=1.0)  # (1, 2, S, S)
        l_stars.append(l_star.cpu())
        predicted.append(ab.cpu())
        truths.append(images.truth)
        if progress:
            progress(number, len(pairs))
    l_star, ab = torch.cat(l_stars), torch.cat(predicted)  # (N, 1, S, S), (N, 2, S, S)

    def colourfulness_at(gain: float) -> float:
        return mean_colourfulness(combine_l_ab(l_star, ab * gain).permute(0, 2, 3, 1).numpy())  # (N, S, S, 3)

    truth = mean_colourfulness(truths)
    return Calibration(fit_gain(colourfulness_at, share * truth), share, colourfulness_at(1.0) / truth, len(pairs),
                       truth)


def load_for_calibration(source: str | Path, partner: str | Path | None = None,
                         device: str | torch.device = "cpu") -> Colorizer:
    """The checkpoint `source` as its gain is fitted: loaded, with the checkpoint `partner`, when given, stored as its
    blend partner (ColorizerConfig.blend_partner). CheckpointError for a partner that cannot be one, or whose colour
    encoder's weights the written file could not hold."""
    model = load_checkpoint(source, device=device)
    if partner is None:
        return model
    if embeds_color_encoder(partner) and not embeds_color_encoder(source):
        raise CheckpointError(f"cannot blend: {partner} stores its colour encoder's weights and {Path(source).name} "
                              "does not, so the written file could not hold them")
    return with_partner(model, load_checkpoint(partner, device=device))


def write_calibration(source: str | Path, out: str | Path, model: Colorizer, result: Calibration,
                      profile: str) -> None:
    """Write `out`: `model` (the checkpoint `source`'s weights, and its partner's) with the fitted gain in its config
    and how it was fitted in its sidecar ("chroma_calibration"), the rest of `source`'s checkpoint kept."""
    model.config = replace(model.config, chroma_gain=round(result.gain, 4))
    rewrite_config(source, out, model, calibration={**asdict(result), "profile": profile})
