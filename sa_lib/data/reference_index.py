"""Reference ranking at COCO scale: features on disk in shards, exact nearest neighbours with faiss.

`sa_lib.data.references.build_references` keeps every candidate's flattened feature map in memory (N x D floats;
VGG19's relu5_4 is D = 100,352, so COCO train's ~218k candidates take ~87 GB in float32) and compares them by
brute force. This module does the same ranking in bounded memory:

1. Features. The candidates are encoded shard by shard (SHARD_ROWS rows each) by a multi-process DataLoader
   (image decoding and resizing in `workers` processes that get the image files only, `sa_lib.data.lazy_data`)
   and written to `<folder>/shard-NNNNN.npy` (float16 by default, read back as numpy memmaps). Each shard is
   written to a temporary file and renamed when complete, so an interrupted run resumes at the first
   missing shard (`FeatureStore`). The store's manifest records what it holds (encoder, size, dtype and a
   hash of the candidate list): a folder made for other candidates is refused, never mixed.
2. Search. Exact (flat) L2, the metric of today's ranking, on the same ranking space
   (`sa_lib.data.references.ranking_space`: raw features, or unit-norm ones with `normalize`): for a block of
   targets in memory, every candidate shard is read in turn and searched with `faiss.knn` (faiss-gpu's
   `knn_gpu` when that build is installed and sees a GPU), keeping the k + m + SHORTLIST_MARGIN nearest per
   shard (m = the most candidates one image has, so that k remain after leaving out the target's own image),
   whose distances are then recomputed from the differences (faiss's |x|^2 + |y|^2 - 2 x.y loses near twins
   to cancellation: two identical feature maps come out about 0.005 apart instead of 0), and merging them
   into a running top-k ordered by (distance, candidate index), as `rank_references` orders them.
   Each finished target block is saved (`rank-NNNNN.npz`), so the search resumes block by block too.

Memory: one target block and one candidate shard in float32 (plus faiss's distance tiles), chosen from a
budget (`memory_gb`), whatever the number of candidates. Measured peak and the extrapolation to COCO are in
BENCHMARKS.md (benchmarks/reference_memory.py).

Identity with today's brute force (tests/test_reference_index.py): same indices; distances equal to float32
rounding (torch.cdist's blocks use |x|^2 + |y|^2 - 2 x.y too, so near twins are more exact here).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..core.devices import resolve_device
from ..core.files import atomic_write
from .datasets import OBJECT_MIN_AREA_FRACTION
from .lazy_data import ImageFiles
from .references import (Candidate, References, _as_list, _catalog, _CropsByImage, build_candidates, encode_crops,
                         ranking_feature_fn, ranking_space)

SHARD_ROWS = 4096  # rows per shard file: the unit of writing and of resuming
STORE_FORMAT = "superattn-feature-store/1"
DEFAULT_MEMORY_GB = 8.0  # the search's budget for its target block and candidate shard (float32)
DTYPES = {"float16": np.float16, "float32": np.float32}
SHORTLIST_MARGIN = 8  # extra neighbours per shard kept from faiss before the exact re-ranking
SPACE_CHUNK = 1024  # rows converted at a time from the stored dtype to the float32 ranking space


class StoreMismatch(ValueError):
    """A feature folder that holds the features of other candidates (or of another encoder, size, dtype)."""


def candidates_key(items: Sequence, encoder: str, image_size: int, dtype: str) -> str:
    """Hash of what a store holds: every item's (image id, box) in order, the encoder, the size and dtype."""
    digest = hashlib.sha256(f"{encoder}|{image_size}|{dtype}|".encode())
    for c in items:
        digest.update(f"{c.image_id}:{'' if c.box is None else ','.join(map(str, c.box))};".encode())
    return digest.hexdigest()[:20]


class FeatureStore:
    """A folder of feature shards: manifest.json and shard-NNNNN.npy files of (rows, dim) features."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        manifest = self.folder / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"no feature store in {self.folder} (manifest.json missing)")
        meta = json.loads(manifest.read_text())
        if meta.get("format") != STORE_FORMAT:
            raise StoreMismatch(f"{manifest} is not a {STORE_FORMAT} manifest")
        self.rows, self.shard_rows, self.key = int(meta["rows"]), int(meta["shard_rows"]), meta["key"]
        self.dtype = meta["dtype"]
        self.dim = meta.get("dim")  # known once the first shard is written

    @classmethod
    def open_or_create(cls, folder: Path | str, rows: int, key: str, dtype: str = "float16",
                       shard_rows: int = SHARD_ROWS) -> "FeatureStore":
        """The store in `folder`, created if absent; StoreMismatch if it was made for something else."""
        if dtype not in DTYPES:
            raise ValueError(f"unknown feature dtype {dtype!r}; choose {', '.join(DTYPES)}")
        folder = Path(folder)
        manifest = folder / "manifest.json"
        if manifest.is_file():
            store = cls(folder)
            if (store.key, store.rows, store.dtype, store.shard_rows) != (key, rows, dtype, shard_rows):
                raise StoreMismatch(f"{folder} holds features of other candidates (or another encoder, size, dtype "
                                    "or shard size): remove it or choose another features folder")
            return store
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(manifest, {"format": STORE_FORMAT, "rows": rows, "shard_rows": shard_rows, "key": key,
                               "dtype": dtype})
        return cls(folder)

    @property
    def n_shards(self) -> int:
        return math.ceil(self.rows / self.shard_rows)

    def shard_range(self, shard: int) -> tuple[int, int]:
        start = shard * self.shard_rows
        return start, min(self.rows, start + self.shard_rows)

    def shard_path(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:05d}.npy"

    def is_complete(self, shard: int) -> bool:
        return self.shard_path(shard).is_file()  # only ever renamed into place once fully written

    def missing_shards(self) -> list[int]:
        return [s for s in range(self.n_shards) if not self.is_complete(s)]

    def write_shard(self, shard: int, features: np.ndarray) -> None:
        """Write one shard's (rows, dim) features through a memmap into a temporary file, then rename it."""
        start, stop = self.shard_range(shard)
        if features.shape[0] != stop - start:
            raise ValueError(f"shard {shard} takes {stop - start} rows, got {features.shape[0]}")
        if self.dim is None:
            self.dim = int(features.shape[1])
            meta = json.loads((self.folder / "manifest.json").read_text())
            _write_json(self.folder / "manifest.json", {**meta, "dim": self.dim})
        elif features.shape[1] != self.dim:
            raise ValueError(f"shard {shard} has {features.shape[1]} features per row, the store {self.dim}")
        def write(tmp: Path) -> None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=DTYPES[self.dtype], shape=features.shape)
            out[:] = features  # (rows, dim) in the store's dtype
            out.flush()
            del out

        atomic_write(self.shard_path(shard), write)

    def shard(self, shard: int) -> np.ndarray:
        """One shard as a read-only memmap (rows, dim)."""
        if not self.is_complete(shard):
            raise FileNotFoundError(f"shard {shard} of {self.folder} is not written yet")
        return np.load(self.shard_path(shard), mmap_mode="r")

    def gather(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows (in the given order) as float32 (len(rows), dim), read shard by shard."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim or 0), dtype=np.float32)
        shards = rows // self.shard_rows
        for s in np.unique(shards):
            where = np.flatnonzero(shards == s)
            out[where] = self.shard(int(s))[rows[where] - s * self.shard_rows]
        return out


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as handle:  # a file object: np.savez would add ".npz" to a temporary file's name
        np.savez(handle, **arrays)


# ------------------------------------------------------------------------------------------- features


class _OneOwner(Mapping):
    """image id -> the same ImageFiles for every id: what `_CropsByImage` looks images up in, without a dict
    of every image id (which each worker would copy)."""

    def __init__(self, files):
        self.files = files

    def __getitem__(self, image_id):
        return self.files

    def __iter__(self):
        return iter(self.files.image_ids)

    def __len__(self) -> int:
        return len(self.files)


def extract_features(store: FeatureStore, files, items: Sequence, feature_fn, image_size: int,
                     batch_size: int = 32, num_workers: int = 0, progress: bool = True) -> FeatureStore:
    """Encode every item (Candidate-like: image_id, box) into `store`, the missing shards only.

    `files` is a `sa_lib.data.lazy_data.ImageFiles` of every image the items name (workers get that, not a
    dataset).
    """
    owner = _OneOwner(files)
    missing = store.missing_shards()
    for number, shard in enumerate(missing):
        start, stop = store.shard_range(shard)
        crops = _CropsByImage(owner, items[start:stop], image_size)
        loader = DataLoader(crops, batch_size=None, num_workers=num_workers)
        features = encode_crops(loader, stop - start, feature_fn, batch_size, dtype=getattr(torch, store.dtype),
                                progress=progress, desc=f"features {number + 1}/{len(missing)}")
        store.write_shard(shard, features.numpy())
        del features
    return store


# --------------------------------------------------------------------------------------------- search


def faiss_backend(device: torch.device | str | None = None) -> str:
    """"faiss-gpu" when faiss has GPU support and sees a GPU (and `device` is not the CPU), else "faiss"."""
    import faiss  # deferred: faiss (and its own OpenMP runtime) loads only for the faiss engine's search

    wants_gpu = device is None or torch.device(device).type == "cuda"
    if wants_gpu and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        return "faiss-gpu"
    return "faiss"


def _knn(queries: np.ndarray, base: np.ndarray, k: int, backend: str, resources=None):
    """Exact squared-L2 k nearest rows of `base` for each query (float32 C-contiguous) -> (d2, local index)."""
    import faiss  # deferred: faiss (and its own OpenMP runtime) loads only for the faiss engine's search

    k = min(k, len(base))
    if backend == "faiss-gpu":
        return faiss.knn_gpu(resources, queries, base, k, metric=faiss.METRIC_L2)
    return faiss.knn(queries, base, k, metric=faiss.METRIC_L2)


def _exact_distances(queries: np.ndarray, base: np.ndarray, local: np.ndarray) -> np.ndarray:
    """(tb, depth) float32 L2 distances |q - x| computed from the differences (no cancellation) for faiss's
    shortlist `local` (-1: no candidate, distance inf), in chunks of about 256 MB."""
    out = np.full(local.shape, np.inf, dtype=np.float32)
    if local.size == 0:
        return out
    q, x = torch.from_numpy(queries), torch.from_numpy(base)
    rows = torch.from_numpy(np.maximum(local, 0))
    chunk = max(1, (256 << 20) // (4 * max(1, local.shape[1] * x.shape[1])))
    for c0 in range(0, len(q), chunk):
        diff = q[c0:c0 + chunk, None, :] - x[rows[c0:c0 + chunk]]  # (c, depth, D)
        out[c0:c0 + chunk] = torch.linalg.vector_norm(diff, dim=2).numpy()
    out[local < 0] = np.inf
    return out


def block_rows(dim: int, memory_gb: float, shard_rows: int) -> int:
    """Targets per block so that the block and one shard, both float32, fit in `memory_gb`."""
    budget = int(memory_gb * 2 ** 30) // (4 * dim) - shard_rows
    return max(64, budget)


def rank_from_store(store: FeatureStore, candidate_images: Sequence[int], target_store_rows: Sequence,
                    target_images: Sequence[int], k: int = 4, normalize: bool = False,
                    memory_gb: float = DEFAULT_MEMORY_GB, target_block: int | None = None,
                    device: torch.device | str | None = None, resume_dir: Path | str | None = None,
                    progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest candidates (L2) of every target, never one of the target's own image, as
    `sa_lib.data.references.rank_references` returns them: indices (T, k) long, distances (T, k) float32, nearest
    first, ties to the lower index, empty slots -1 / inf.

    target_store_rows: per target, (store, row) where its features are (a candidate row of `store`, or a row of
    another store, e.g. the val images that are not candidates). resume_dir: finished target blocks are saved
    there and skipped when the search runs again.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if store.missing_shards():
        raise ValueError(f"{store.folder} misses shards {store.missing_shards()[:5]}: extract the features first")
    cand_img = np.asarray(candidate_images, dtype=np.int64)
    targ_img = np.asarray(target_images, dtype=np.int64)
    t = len(target_store_rows)
    if cand_img.shape != (store.rows,) or targ_img.shape != (t,):
        raise ValueError("one image id per candidate and per target is needed")
    per_image = np.unique(cand_img, return_counts=True)[1].max() if len(cand_img) else 0
    # k remain after leaving out the target's own image's candidates, and SHORTLIST_MARGIN more, so that faiss's
    # rounding cannot push one of the exact top k out of the shortlist that _exact_distances re-ranks
    depth = k + int(per_image) + SHORTLIST_MARGIN
    backend = faiss_backend(device)
    resources = None
    if backend == "faiss-gpu":
        import faiss  # deferred: faiss (and its own OpenMP runtime) loads only for the faiss engine's search

        resources = faiss.StandardGpuResources()
    block = target_block or block_rows(store.dim, memory_gb, store.shard_rows)
    resume = Path(resume_dir) if resume_dir is not None else None
    if resume is not None:
        resume.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256(f"{store.key}|{k}|{normalize}|{block}|{t}".encode()
                             + targ_img.tobytes()).hexdigest()[:16]

    def space(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Stored rows -> float32 rows of today's ranking space (ranking_space in the stored dtype, then float32,
        as rank_references receives and upcasts them), converted SPACE_CHUNK rows at a time into `out` (a new
        array, or x itself) so that no second copy of a block or shard ever exists."""
        out = np.empty((len(x), x.shape[1]), dtype=np.float32) if out is None else out
        for c0 in range(0, len(x), SPACE_CHUNK):
            chunk = np.array(x[c0:c0 + SPACE_CHUNK], dtype=DTYPES[store.dtype])  # exact: stored values
            if normalize:
                chunk = ranking_space(torch.from_numpy(chunk), True).numpy()
            out[c0:c0 + SPACE_CHUNK] = chunk
        return out

    all_idx, all_dist = [], []
    n_blocks = math.ceil(t / block) if t else 0
    bar = tqdm(total=n_blocks * store.n_shards, desc="rank (faiss)", unit="shard", disable=not progress)
    for b in range(n_blocks):
        lo, hi = b * block, min(t, (b + 1) * block)
        saved = resume / f"rank-{key}-{b:05d}.npz" if resume is not None else None
        if saved is not None and saved.is_file():
            with np.load(saved) as done:
                all_idx.append(torch.from_numpy(done["idx"]))
                all_dist.append(torch.from_numpy(done["dist"]))
            bar.update(store.n_shards)
            continue
        queries = np.empty((hi - lo, store.dim), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        sources: dict[int, FeatureStore] = {}
        for position, (source, row) in enumerate(target_store_rows[lo:hi]):
            groups.setdefault(id(source), []).append(position)
            sources[id(source)] = source
        for source_id, positions in groups.items():
            rows = [target_store_rows[lo + p][1] for p in positions]
            queries[positions] = sources[source_id].gather(rows)
        queries = space(queries, out=queries)  # in place
        own = targ_img[lo:hi, None]  # (tb, 1)
        best_d = np.empty((hi - lo, 0), dtype=np.float32)
        best_i = np.empty((hi - lo, 0), dtype=np.int64)
        for shard in range(store.n_shards):
            start, stop = store.shard_range(shard)
            base = space(store.shard(shard))  # (rows, D) float32 in the ranking space
            _, local = _knn(queries, base, depth, backend, resources)
            dist = _exact_distances(queries, base, local)  # faiss's |x|^2 + |y|^2 - 2 x.y cancels on near twins
            del base
            idx = np.where(local >= 0, local + start, -1)
            dist[(local < 0) | (cand_img[np.maximum(idx, 0)] == own)] = np.inf
            d, i = np.concatenate([best_d, dist], 1), np.concatenate([best_i, idx], 1)
            order = np.lexsort((np.where(i < 0, np.iinfo(np.int64).max, i), d), axis=1)[:, :k]
            best_d, best_i = np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)
            bar.update(1)
        if best_d.shape[1] < k:
            pad = k - best_d.shape[1]
            best_d = np.concatenate([best_d, np.full((hi - lo, pad), np.inf, np.float32)], 1)
            best_i = np.concatenate([best_i, np.full((hi - lo, pad), -1, np.int64)], 1)
        best_i = np.where(np.isinf(best_d), -1, best_i)
        if saved is not None:
            atomic_write(saved, lambda tmp: _save_npz(tmp, idx=best_i, dist=best_d))
        all_idx.append(torch.from_numpy(best_i))
        all_dist.append(torch.from_numpy(best_d))
    bar.close()
    if not all_idx:
        return torch.empty(0, k, dtype=torch.long), torch.empty(0, k)
    return torch.cat(all_idx), torch.cat(all_dist)


def build_references_faiss(pool, targets=None, *, features_dir: Path | str, encoder: str = "effnet_lite0",
                           feature_fn=None, k: int = 4, image_size: int = 224, batch_size: int = 32,
                           num_workers: int = 0, feature_dtype: str = "float16",
                           device: torch.device | str | None = None, normalize: bool = False,
                           min_area_fraction: float | None = None, memory_gb: float = DEFAULT_MEMORY_GB,
                           target_block: int | None = None, shard_rows: int = SHARD_ROWS, progress: bool = True,
                           pretrained: bool = True) -> References:
    """`sa_lib.data.references.build_references` with the features on disk (`features_dir`) and the faiss search:
    the same candidates, targets and References, in bounded memory, resumable shard by shard. Without
    `feature_fn`, `encoder` is built pretrained, or with seeded random weights (`pretrained` False: the
    paper-smoke profile's ranking)."""
    min_area_fraction = OBJECT_MIN_AREA_FRACTION if min_area_fraction is None else min_area_fraction
    pool_list = _as_list(pool)
    target_list = pool_list if targets is None else _as_list(targets)
    device = resolve_device(device or "auto")
    if feature_fn is None:
        feature_fn = ranking_feature_fn(encoder, device, pretrained=pretrained)
    owner, names = _catalog(pool_list + target_list)  # raises if one id names two files
    target_owner, target_names = _catalog(target_list)
    files = ImageFiles(list(owner), [owner[i].record(i).path for i in owner])
    candidates = build_candidates(pool_list, min_area_fraction, progress=progress)
    if not candidates:
        raise ValueError("the candidate pool is empty")
    folder = Path(features_dir)
    weights = encoder if pretrained else f"{encoder}/random"  # a store of random-weight features is another store
    store = FeatureStore.open_or_create(folder / "candidates", len(candidates),
                                        candidates_key(candidates, weights, image_size, feature_dtype),
                                        feature_dtype, shard_rows)
    extract_features(store, files, candidates, feature_fn, image_size, batch_size, num_workers, progress)

    target_ids = list(target_owner)
    whole = {c.image_id: c.index for c in candidates if c.box is None}
    missing = [Candidate(-1, i, None, target_names[i]) for i in target_ids if i not in whole]
    extra = None
    if missing:
        extra = FeatureStore.open_or_create(folder / "targets", len(missing),
                                            candidates_key(missing, weights, image_size, feature_dtype),
                                            feature_dtype, shard_rows)
        extract_features(extra, files, missing, feature_fn, image_size, batch_size, num_workers, progress)
    extra_row = {c.image_id: row for row, c in enumerate(missing)}
    target_rows = [(store, whole[i]) if i in whole else (extra, extra_row[i]) for i in target_ids]
    idx, dist = rank_from_store(store, [c.image_id for c in candidates], target_rows, target_ids, k, normalize,
                                memory_gb, target_block, device, resume_dir=folder / "ranking", progress=progress)
    ranked = {image_id: [(int(i), float(d)) for i, d in zip(idx[row].tolist(), dist[row].tolist()) if i >= 0]
              for row, image_id in enumerate(target_ids)}
    return References(encoder=encoder, image_size=image_size, k=k, candidates=candidates, targets=ranked,
                      images=names, min_area_fraction=min_area_fraction, normalized=normalize)
