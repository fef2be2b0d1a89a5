"""Validation during training: the evaluator's scoring on the first evaluation pairs, at the training size.

The pairs come from the evaluator's reader (sa_lib.data.pairs.read_pairs, the profile's pairs file), the images
through its loader (sa_lib.eval.pair_images.load_pair_images), the colorization through the one inference step
(sa_lib.model.predict) and the scores through its per-pair `score` (sa_lib.eval.scoring): a number logged here is the number
sa-evaluate would give for the same pairs at the same size. The superpixels come from the SLIC backend the model
is trained with (its config's slic_backend), as in sa-evaluate. Under DDP every rank scores its own shard of the
pairs and the per-pair scores are gathered, so no rank idles in a collective while another validates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist

from ..data.pairs import Pair, read_pairs
from ..eval import metrics
from ..eval.pair_images import GTREF, TOP1, PairImages, load_pair_images
from ..eval.scoring import score
from ..model.predict import predict_rgb
from ..profiles import PHOTO_SOURCES

VALIDATION_METRICS = ("psnr_ab", "ciede2000", "his_pred_ref", "his_gt_ref")
PREFIXES = {TOP1: "", GTREF: "gtref_"}  # the column prefix of each kind of reference


def validation_pairs(data: str, limit: int) -> list[Pair]:
    """The first `limit` evaluation pairs of a photo source (sa_lib.profiles.PHOTO_SOURCES); [] without a pairs
    file (then training runs without validation)."""
    photos = PHOTO_SOURCES[data]
    if not photos.pairs_file().is_file():
        return []
    return read_pairs(photos.pairs_file(), photos.target_dir(), photos.reference_dir(), limit)


def colorize_pair(model, item: PairImages, reference: str, device) -> np.ndarray:
    """The model's (S, S, 3) sRGB for one pair, with its ranked reference (TOP1) or its ground truth (GTREF)."""
    ref = item.scoring_context(reference)[0]
    target_l = torch.from_numpy(item.target_l)[None, None].to(device)  # (1, 1, S, S)
    ref_t = torch.from_numpy(np.ascontiguousarray(ref)).permute(2, 0, 1)[None].to(device)  # (1, 3, S, S)
    # (S, S, 3) after the permute below
    return predict_rgb(model, target_l, ref_t, slic_backend=model.config.slic_backend)[0][0].permute(
        1, 2, 0).cpu().numpy()


def validate(model, pairs: Sequence[Pair], size: int, device, rank: int = 0, world: int = 1) -> dict[str, float]:
    """Means over `pairs` at `size`: PSNR(ab), CIEDE2000 and dHIS = |mean HIS(prediction, reference) - mean
    HIS(truth, reference)|, with the pair's ranked reference and ("gtref_") with the target's own ground truth as
    reference, which a reference-using model must exploit. The model is in eval mode meanwhile.

    Under DDP (world > 1) each rank scores its own shard of the pairs, pairs[rank::world], and the per-pair scores
    are gathered, so every rank returns the same means, those of the whole set, at about 1 / world of the time.
    """
    scores: dict[str, list[float]] = {}
    if world > 1:  # every rank validates rank 0's model: its BatchNorm statistics, which the checkpoint holds
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
    model.eval()
    for pair in list(pairs)[rank::world]:
        item = load_pair_images(pair, size)
        for reference, prefix in PREFIXES.items():
            _, ref_hist, his_ref = item.scoring_context(reference)
            row = score(colorize_pair(model, item, reference, device), item.truth, item.scoring_context(reference)[0],
                        None, ref_hist, his_ref)
            for key in VALIDATION_METRICS:
                scores.setdefault(f"val_{prefix}{key}", []).append(row[key])
    model.train()
    if world > 1:  # every rank gets every rank's per-pair scores, in rank order
        shards: list = [None] * world
        dist.all_gather_object(shards, scores)
        scores = {}
        for shard in shards:
            for key, values in shard.items():
                scores.setdefault(key, []).extend(values)
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    for prefix in PREFIXES.values():
        means[f"val_{prefix}delta_his"] = metrics.delta_his(scores[f"val_{prefix}his_pred_ref"],
                                                            scores[f"val_{prefix}his_gt_ref"])
    return means
