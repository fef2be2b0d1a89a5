"""Reference candidates and their ranking: the target/reference pairs of the paper's section 4.

Section 4 builds the training pairs once, offline, in three steps, all done here:

1. Candidates. Every whole image of the pool, plus every object whose mask covers more than 10% of its
   image, cropped by the object's box: objects give more variety within a category than whole scenes.
   A box equal to the whole image, or to a box already taken from the same image, is skipped (the same
   pixels twice would fill two of the four slots with one reference).
2. Features. Each candidate is resized to 224x224, the paper's training size (aspect ratio not kept, as in
   training), and encoded by the deepest level of a frozen ImageNet encoder: relu5_4 of VGG19, the paper's
   "fifth level" (profile `paper`, 512x14x14), or block 15 of EfficientNet-Lite0 (profile `demo`,
   320x7x7, real weights that install offline). The feature map is flattened: candidates are compared by
   the L2 distance between whole feature maps, as in the paper, which keeps the scene's layout as well as
   its content.
3. Ranking. For each target (a whole image) its k = 4 nearest candidates, leaving out every candidate
   taken from the target's own image: its own crops would leak its colours. Using the target itself as
   its reference is the sampler's job, with a known probability (`ReferenceSampler`).

Outputs: a JSON file (`write_references` / `load_references`), the `ReferenceSampler` of training, and the
evaluation pairs (`write_eval_pairs`): each val target with its top-1 reference, the pairs on which the
paper computes HIS_ref.

    sa-references --profile demo    # offline: data/demo/references.json + eval_pairs.csv (sa_lib.cli.references)
    sa-references --profile paper   # COCO 2017 with VGG19 (weights downloaded once)

Each profile's encoder and unit-norm rule are in sa_lib.profiles (`ranking_encoder`, `ranking_normalize`).

Image names in the outputs are relative to their dataset's image folder (COCO's `file_name`): candidates
are in the pool's folder (demo: `data/demo/images`; paper: `train2017`), targets in theirs.

Raw L2 (the paper's, the default) lets candidates with small feature maps (smooth regions, such as wide
strips of sky or grass stretched to 224x224) sit close to everything: on the demo one such crop is in 110
of the 252 top-4 lists. `normalize=True` (`--normalize`) ranks by the L2 distance between unit-norm feature
maps (cosine order) instead, which removes these hubs; it is a departure from the paper, hence off by default.

Cost (`--engine torch`): the features take N x D floats in memory (D = 15,680 for effnet_lite0, 100,352 for
VGG19), and the ranking is brute force, targets x candidates x D. The demo (252 targets, 713 candidates) takes about 20 s on
a 2-core CPU. With VGG19 a candidate's features take 400 KB in float32, 200 KB with `--half`: COCO train2017
(118k images plus their large objects) needs tens of GB of memory for them and a GPU for the distances.
`--engine faiss` (the paper profiles' default; sa_lib.data.reference_index) writes the features to disk in float16
shards and searches them exactly with faiss in bounded memory, resumable shard by shard, with the same result.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..core.devices import resolve_device
from ..core.files import atomic_write
from ..model.encoders import build_color_encoder
from .datasets import OBJECT_MIN_AREA_FRACTION, CocoLikeDataset
from .pairs import crop_resized

IMAGE_SIZE = 224  # section 4: "we resize the images to the size of 224x224 pixels"
DEFAULT_K = 4  # section 4: "ranks four images semantically related to each target image"
P_SELF = 0.25  # section 4: "a uniform distribution with a weight of 0.25", see ReferenceSampler
FEATURE_LEVEL = 4  # sa_lib.model.encoders level 4: relu5_4 of VGG19 (the paper's "fifth level"), block 15 of effnet
EVAL_PAIRS_HEADER = ("target", "reference", "ref_x", "ref_y", "ref_w", "ref_h", "distance")
FORMAT = "superattn-references/1"

Box = tuple[int, int, int, int]  # (x, y, w, h) in pixels of the image as annotated
FeatureFn = Callable[[torch.Tensor], torch.Tensor]  # (B, 3, S, S) sRGB in [0, 1] -> (B, D)
Datasets = CocoLikeDataset | Sequence[CocoLikeDataset]


@dataclass(frozen=True)
class Candidate:
    """One candidate reference: a whole image (`box` None) or an object of it cropped by `box`.

    `index` is its position in `References.candidates`; `file_name` is the image's path relative to the
    image folder (or to the common parent of several folders).
    """

    index: int
    image_id: int
    box: Box | None = None
    file_name: str = ""


@dataclass
class References:
    """The ranked references of every target, as written to and read from the JSON file."""

    encoder: str
    image_size: int
    k: int
    candidates: list[Candidate]
    targets: dict[int, list[tuple[int, float]]]  # target image id -> [(candidate index, L2 distance)], nearest first
    images: dict[int, str] = field(default_factory=dict)  # image id -> file name, every target and candidate image
    min_area_fraction: float = OBJECT_MIN_AREA_FRACTION
    normalized: bool = False  # distances between unit-norm feature maps (True) or raw ones (False, the paper's)

    def top(self, image_id: int) -> list[tuple[Candidate, float]]:
        """The ranked references of target `image_id`, nearest first."""
        return [(self.candidates[i], d) for i, d in self.targets[image_id]]


# ----------------------------------------------------------------------------------------------- candidates

def _as_list(datasets: Datasets) -> list[CocoLikeDataset]:
    return [datasets] if isinstance(datasets, CocoLikeDataset) else list(datasets)


def _catalog(datasets: Sequence[CocoLikeDataset]) -> tuple[dict[int, CocoLikeDataset], dict[int, str]]:
    """image id -> the dataset that holds it, and image id -> its name in its image folder; sorted by id.

    Image ids identify images across datasets (true of COCO 2017's train and val); an id that names two
    different files is an error.
    """
    owner: dict[int, CocoLikeDataset] = {}
    names: dict[int, str] = {}
    paths: dict[int, str] = {}
    for ds in datasets:
        for image_id in ds.image_ids:
            path = Path(ds.record(image_id).path)
            if paths.setdefault(image_id, os.path.abspath(path)) != os.path.abspath(path):
                raise ValueError(f"image id {image_id} names two files: {paths[image_id]} and {path}")
            names.setdefault(image_id, path.relative_to(ds.image_dir).as_posix())
            owner.setdefault(image_id, ds)
    order = sorted(owner)
    return {i: owner[i] for i in order}, {i: names[i] for i in order}


def build_candidates(datasets: Datasets, min_area_fraction: float = OBJECT_MIN_AREA_FRACTION,
                     progress: bool = False) -> list[Candidate]:
    """Every whole image, then its objects larger than `min_area_fraction`, by image id: the candidate pool.

    Within an image, objects keep the annotation file's order; duplicate boxes and boxes equal to the
    whole image are dropped.
    """
    datasets = _as_list(datasets)
    owner, names = _catalog(datasets)
    candidates: list[Candidate] = []
    for image_id, ds in tqdm(owner.items(), desc="candidates", unit="img", disable=not progress):
        record = ds.record(image_id)
        candidates.append(Candidate(len(candidates), image_id, None, names[image_id]))
        seen = {(0, 0, record.width, record.height)}
        for box in ds.object_boxes(image_id, min_area_fraction):
            if box not in seen:
                seen.add(box)
                candidates.append(Candidate(len(candidates), image_id, tuple(box), names[image_id]))
    return candidates


# ------------------------------------------------------------------------------------------------ features

class _CropsByImage(Dataset):
    """Item i: the candidates of one image, each resized to size x size, so every image is decoded once."""

    def __init__(self, owner: Mapping[int, CocoLikeDataset], items: Sequence[Candidate], size: int):
        groups: dict[int, list[tuple[int, Box | None]]] = {}
        for position, c in enumerate(items):
            groups.setdefault(c.image_id, []).append((position, c.box))
        self.groups = sorted(groups.items())
        self.owner, self.size = owner, size

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_id, members = self.groups[i]
        rgb = self.owner[image_id].load_rgb(image_id)  # (H, W, 3) uint8
        crops = np.stack([crop_resized(rgb, box, self.size) for _, box in members])  # (n, S, S, 3)
        return torch.from_numpy(crops).permute(0, 3, 1, 2), torch.tensor([p for p, _ in members])  # (n, 3, S, S)


def encoder_feature_fn(encoder: torch.nn.Module, device: torch.device | str | None = None) -> FeatureFn:
    """The flattened deepest feature map of a `ColorEncoder` built with max_level=4: (B, 3, S, S) -> (B, C*h*w)."""
    encoder = encoder.to(device).eval()

    def features(rgb: torch.Tensor) -> torch.Tensor:
        return encoder(rgb.to(device), {FEATURE_LEVEL: None})[FEATURE_LEVEL].flatten(1)  # (B, C, h, w) -> (B, C*h*w)

    return features


RANDOM_ENCODER_SEED = 0  # pretrained=False: every process builds the same random encoder


def ranking_feature_fn(encoder: str, device: torch.device | str | None = None, pretrained: bool = True) -> FeatureFn:
    """The ranking's feature function for encoder `encoder`: its level FEATURE_LEVEL, pretrained (may raise
    `sa_lib.core.hub.AssetUnavailable` for VGG offline, ValueError for an unknown name), or with random weights
    drawn from RANDOM_ENCODER_SEED (profile paper-smoke: the paper's ranking code, nothing downloaded)."""
    return encoder_feature_fn(build_color_encoder(encoder, pretrained=pretrained, max_level=FEATURE_LEVEL,
                                                  seed=RANDOM_ENCODER_SEED), device)


def default_batch_size(device: torch.device | str) -> int:
    """Crops per encoder batch: 32 on a GPU, 4 on a CPU, where small batches measured faster (18 ms/crop at 4
    against 37 at 32 with effnet_lite0 on 2 cores)."""
    return 32 if str(device).startswith("cuda") else 4


def encode_crops(crops: Iterable[tuple[torch.Tensor, torch.Tensor]], count: int, feature_fn: FeatureFn,
                 batch_size: int = 32, dtype: torch.dtype = torch.float32, progress: bool = True,
                 desc: str = "features") -> torch.Tensor:
    """(count, D) features on the CPU from `crops`, which yields ((n, 3, S, S) uint8 crops, (n,) their rows).

    Crops are regrouped into batches of `batch_size` and encoded under inference mode; a row that `crops`
    never names is left undefined (callers that skip unreadable files slice it away). Both the reference
    ranking (`compute_features`) and `sa_lib.app.suggest` encode through here.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    out: torch.Tensor | None = None
    pending_x: list[torch.Tensor] = []  # (n, 3, S, S) uint8 each
    pending_p: list[torch.Tensor] = []  # (n,) row of each

    def run(x: torch.Tensor, rows: torch.Tensor) -> None:
        nonlocal out
        feats = feature_fn(x.float() / 255.0)  # (B, D)
        if out is None:
            out = torch.empty(count, feats.shape[1], dtype=dtype)
        out[rows] = feats.to("cpu", dtype)

    with torch.inference_mode(), tqdm(total=count, desc=desc, unit="crop", disable=not progress) as bar:
        for x, rows in crops:
            pending_x.append(x)
            pending_p.append(rows)
            while sum(len(r) for r in pending_p) >= batch_size:
                xs, ps = torch.cat(pending_x), torch.cat(pending_p)
                run(xs[:batch_size], ps[:batch_size])
                bar.update(batch_size)
                pending_x, pending_p = [xs[batch_size:]], [ps[batch_size:]]
        if pending_p and sum(len(r) for r in pending_p):
            ps = torch.cat(pending_p)
            run(torch.cat(pending_x), ps)
            bar.update(len(ps))
    if out is None:
        raise ValueError("no images to compute features for")
    return out


def compute_features(owner: Mapping[int, CocoLikeDataset], items: Sequence[Candidate], feature_fn: FeatureFn,
                     image_size: int = IMAGE_SIZE, batch_size: int = 32, num_workers: int = 0,
                     dtype: torch.dtype = torch.float32, progress: bool = True) -> torch.Tensor:
    """(len(items), D) features on the CPU, row i for items[i], computed in batches under inference mode.

    `owner` maps each image id to its dataset; `num_workers` > 0 decodes images in parallel processes.
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    loader = DataLoader(_CropsByImage(owner, items, image_size), batch_size=None, num_workers=num_workers)
    return encode_crops(loader, len(items), feature_fn, batch_size, dtype, progress)


def ranking_space(features: torch.Tensor, normalize: bool) -> torch.Tensor:
    """The features the L2 ranking compares: unit-norm rows if `normalize` (the demo profile's), else as is."""
    if not normalize:
        return features
    return torch.nn.functional.normalize(features.float(), dim=1).to(features.dtype)


# ------------------------------------------------------------------------------------------------- ranking

def rank_references(candidate_features: torch.Tensor, target_features: torch.Tensor,
                    candidate_images: Sequence[int] | torch.Tensor, target_images: Sequence[int] | torch.Tensor,
                    k: int = DEFAULT_K, target_chunk: int = 256, candidate_chunk: int = 4096,
                    device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest candidates (L2) of every target, never one from the target's own image.

    candidate_features (N, D), target_features (T, D); candidate_images (N,), target_images (T,) are image
    ids: a candidate is excluded for a target with the same id. Returns indices (T, k) long and distances
    (T, k) float32, nearest first. Ties go to the lower candidate index, whatever the chunk sizes.
    Slots left empty (fewer than k allowed candidates) hold index -1 and distance inf.
    Distances come from torch.cdist on (target_chunk, candidate_chunk) blocks in float32, keeping a
    running top-k per target, so memory stays bounded by the chunk sizes.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    device = torch.device(device) if device is not None else candidate_features.device
    n, t = len(candidate_features), len(target_features)
    cand_img = torch.as_tensor(candidate_images, dtype=torch.long).to(device)  # (N,)
    targ_img = torch.as_tensor(target_images, dtype=torch.long).to(device)  # (T,)
    if cand_img.shape != (n,) or targ_img.shape != (t,):
        raise ValueError("one image id per candidate and per target is needed")
    all_idx, all_dist = [], []
    with torch.inference_mode():
        for t0 in range(0, t, target_chunk):
            query = target_features[t0:t0 + target_chunk].to(device, torch.float32)  # (tc, D)
            own = targ_img[t0:t0 + target_chunk, None]  # (tc, 1)
            best_d = torch.empty(len(query), 0, device=device)  # (tc, <=k), sorted by (distance, index)
            best_i = torch.empty(len(query), 0, dtype=torch.long, device=device)
            for c0 in range(0, n, candidate_chunk):
                block = candidate_features[c0:c0 + candidate_chunk].to(device, torch.float32)  # (cc, D)
                d = torch.cdist(query, block)  # (tc, cc)
                d = d.masked_fill(own == cand_img[None, c0:c0 + len(block)], math.inf)
                idx = torch.arange(c0, c0 + len(block), device=device).expand(len(query), -1)  # (tc, cc)
                # The kept entries all have lower indices than this block and come first: a stable sort by
                # distance therefore orders by (distance, index).
                d, idx = torch.cat([best_d, d], 1), torch.cat([best_i, idx], 1)
                order = torch.sort(d, dim=1, stable=True).indices[:, :k]
                best_d, best_i = d.gather(1, order), idx.gather(1, order)
            if best_d.shape[1] < k:  # fewer candidates than k in the whole pool
                pad = k - best_d.shape[1]
                best_d = torch.cat([best_d, torch.full((len(query), pad), math.inf, device=device)], 1)
                best_i = torch.cat([best_i, torch.full((len(query), pad), -1, device=device)], 1)
            best_i = best_i.masked_fill(torch.isinf(best_d), -1)
            all_idx.append(best_i.cpu())
            all_dist.append(best_d.cpu())
    if not all_idx:
        return torch.empty(0, k, dtype=torch.long), torch.empty(0, k)
    return torch.cat(all_idx), torch.cat(all_dist)


def build_references(pool: Datasets, targets: Datasets | None = None, *, encoder: str = "effnet_lite0",
                     feature_fn: FeatureFn | None = None, k: int = DEFAULT_K, image_size: int = IMAGE_SIZE,
                     batch_size: int = 32, num_workers: int = 0, feature_dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None, normalize: bool = False,
                     min_area_fraction: float = OBJECT_MIN_AREA_FRACTION, progress: bool = True) -> References:
    """Candidates of `pool`, their features, and the top-k of every whole image of `targets` (default: pool).

    `feature_fn` replaces the encoder (tests inject simple features); otherwise `encoder` is built with
    pretrained weights (may raise `sa_lib.core.hub.AssetUnavailable` for VGG offline). A target that is also a
    pool image reuses its whole-image features. `normalize` scales every feature map to unit L2 norm first.
    """
    pool_list = _as_list(pool)
    target_list = pool_list if targets is None else _as_list(targets)
    device = resolve_device(device or "auto")
    if feature_fn is None:
        feature_fn = ranking_feature_fn(encoder, device)
    _, names = _catalog(pool_list + target_list)  # raises if one id names two files
    pool_owner, _ = _catalog(pool_list)
    target_owner, target_names = _catalog(target_list)
    candidates = build_candidates(pool_list, min_area_fraction, progress=progress)
    if not candidates:
        raise ValueError("the candidate pool is empty")
    features = compute_features(pool_owner, candidates, feature_fn, image_size, batch_size, num_workers,
                                feature_dtype, progress)  # (N, D)

    target_ids = list(target_owner)
    whole = {c.image_id: c.index for c in candidates if c.box is None}
    missing = [Candidate(-1, i, None, target_names[i]) for i in target_ids if i not in whole]
    extra = (compute_features(target_owner, missing, feature_fn, image_size, batch_size, num_workers,
                              feature_dtype, progress) if missing else features[:0])  # (M, D)
    extra_row = {c.image_id: row for row, c in enumerate(missing)}
    target_features = torch.stack([features[whole[i]] if i in whole else extra[extra_row[i]]
                                   for i in target_ids]) if target_ids else features[:0]  # (T, D)
    features, target_features = ranking_space(features, normalize), ranking_space(target_features, normalize)

    idx, dist = rank_references(features, target_features, [c.image_id for c in candidates], target_ids, k,
                                device=device)
    ranked = {image_id: [(int(i), float(d)) for i, d in zip(idx[row].tolist(), dist[row].tolist()) if i >= 0]
              for row, image_id in enumerate(target_ids)}
    return References(encoder=encoder, image_size=image_size, k=k, candidates=candidates, targets=ranked,
                      images=names,
                      min_area_fraction=min_area_fraction, normalized=normalize)


# ---------------------------------------------------------------------------------------------------- files

def _distance(d: float) -> float:
    return float(f"{d:.5g}")  # 5 significant digits: float noise (batch size, BLAS) stays out of the file


def write_references(path: Path | str, references: References) -> None:
    """Write `references` as JSON, one line per image, candidate and target, atomically."""
    r = references
    head = {
        "format": FORMAT,
        # the committed references.json's words (the command's first name): kept, so it regenerates as is
        "description": ("Ranked reference candidates (paper section 4), written by `sa-references` (sa_lib.cli.references). "
                        "candidates: whole images (box null) and object crops (box [x, y, w, h] in pixels); "
                        "targets: image id -> [[candidate index, L2 distance between the flattened deepest "
                        "feature maps (unit-norm ones if normalized)], ...], nearest first, candidates of the "
                        "target's own image excluded; "
                        "images: image id -> file name."),
        "encoder": r.encoder,
        "feature_level": FEATURE_LEVEL,
        "image_size": r.image_size,
        "k": r.k,
        "min_area_fraction": r.min_area_fraction,
        "normalized": r.normalized,
    }
    lines = ["{"] + [f"  {json.dumps(key)}: {json.dumps(value)}," for key, value in head.items()]

    def block(name: str, entries: list[str], last: bool = False) -> None:
        lines.append(f"  {json.dumps(name)}: " + ("{" if name != "candidates" else "["))
        lines.extend(f"    {e}{',' if i < len(entries) - 1 else ''}" for i, e in enumerate(entries))
        lines.append("  " + ("}" if name != "candidates" else "]") + ("" if last else ","))

    block("images", [f'"{i}": {json.dumps(name)}' for i, name in sorted(r.images.items())])
    block("candidates", [json.dumps({"index": c.index, "image_id": c.image_id,
                                     "box": list(c.box) if c.box is not None else None}) for c in r.candidates])
    block("targets", [f'"{i}": {json.dumps([[ci, _distance(d)] for ci, d in ranked])}'
                      for i, ranked in sorted(r.targets.items())], last=True)
    lines.append("}")
    atomic_write(Path(path), lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline=""))


def load_references(path: Path | str) -> References:
    """Read a file written by `write_references` (ValueError if it is not one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"references file not found: {path} (make it with `sa-references`)")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file")
    images = {int(i): name for i, name in data["images"].items()}
    candidates = []
    for position, c in enumerate(data["candidates"]):
        if c["index"] != position:
            raise ValueError(f"{path}: candidate {position} has index {c['index']}")
        box = tuple(int(v) for v in c["box"]) if c["box"] is not None else None
        candidates.append(Candidate(position, int(c["image_id"]), box, images[int(c["image_id"])]))
    targets = {int(i): [(int(ci), float(d)) for ci, d in ranked] for i, ranked in data["targets"].items()}
    return References(encoder=data["encoder"], image_size=int(data["image_size"]), k=int(data["k"]),
                      candidates=candidates, targets=targets, images=images,
                      min_area_fraction=float(data["min_area_fraction"]), normalized=bool(data["normalized"]))


def top1_references(references: References, dataset: CocoLikeDataset) -> list[tuple[str, Candidate, float]]:
    """(target file name, its top-1 candidate, distance) for every target of `dataset`, sorted by file name; the
    candidate is never a crop of the target's own image (the ranking excludes it). ValueError for an unranked one."""
    rows = []
    for image_id in dataset.image_ids:
        if not references.targets.get(image_id):
            raise ValueError(f"image {image_id} ({dataset.record(image_id).path.name}) has no ranked reference")
        candidate, distance = references.top(image_id)[0]
        rows.append((references.images[image_id], candidate, distance))
    return sorted(rows, key=lambda row: row[0])


def write_eval_pairs(path: Path | str, references: References, dataset: CocoLikeDataset) -> int:
    """CSV of the evaluation pairs: every target of `dataset` with its top-1 reference; returns the row count.

    The paper computes HIS_ref "by picking the top 1 reference for each groundtruth". Columns: target and
    reference file names, the reference's box (empty for a whole image) and the L2 distance; rows sorted
    by target file name.
    """
    rows = []
    for target, candidate, distance in top1_references(references, dataset):
        box = [str(v) for v in candidate.box] if candidate.box is not None else [""] * 4
        rows.append([target, candidate.file_name, *box, f"{_distance(distance):g}"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EVAL_PAIRS_HEADER)
    writer.writerows(rows)
    atomic_write(Path(path), lambda tmp: tmp.write_text(buffer.getvalue(), encoding="utf-8", newline=""))
    return len(rows)


# ---------------------------------------------------------------------------------------------------- sampler

class _Uniform(Protocol):
    def random(self) -> float: ...


class ReferenceSampler:
    """Draws the reference of a training target: the target itself, or one of its ranked references.

    The paper samples pairs "using a uniform distribution with a weight of 0.25 by randomly choosing either
    itself (i.e. the groundtruth target image is used as the reference) or the other top-4 semantically
    closest references". Five options cannot all be uniform and weigh 0.25 each, so we read it as: the
    target itself with probability `p_self` = 0.25, otherwise one of its top-4 uniformly, (1 - 0.25) / 4 =
    0.1875 each. A target with fewer ranked references shares 1 - p_self among those it has; one with none
    always gets itself.
    """

    def __init__(self, references: References, p_self: float = P_SELF, seed: int = 0):
        if not 0.0 <= p_self <= 1.0:
            raise ValueError(f"p_self must be in [0, 1], got {p_self}")
        self.references, self.p_self = references, p_self
        self.rng = random.Random(seed)

    def sample(self, image_id: int, rng: _Uniform | None = None) -> Candidate | Literal["self"]:
        """One draw for target `image_id` (KeyError if it was not ranked); `rng` (random.Random or a numpy
        Generator: anything with .random()) defaults to the sampler's own, seeded generator."""
        ranked = self.references.targets[image_id]
        u = (rng or self.rng).random()  # one uniform draw in [0, 1) decides both questions
        if not ranked or u < self.p_self:
            return "self"
        slot = min(int((u - self.p_self) / (1.0 - self.p_self) * len(ranked)), len(ranked) - 1)
        return self.references.candidates[ranked[slot][0]]
