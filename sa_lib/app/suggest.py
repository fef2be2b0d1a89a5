"""Reference suggestions for a folder of your own photos: the paper's section 4 ranking, applied to any folder.

`sa-references` ranks the candidates of a dataset; this module ranks the photos of a folder for one target,
with the same code (sa_lib.data.references): the same encoder level (`FEATURE_LEVEL`: EfficientNet-Lite0 block 15
for the demo profile, VGG19 relu5_4 for the paper profile), the same 224x224 crop-and-resize
(`sa_lib.data.pairs.crop_resized`), the same batched encoding (`encode_crops`), the same unit-norm rule of the
profile (`ranking_space`) and the same L2 top-k (`rank_references`). Whole photos only: a folder has no object
masks. A photo with the target's own content (same bytes) is never suggested, as `sa-references` never
suggests a target's own image.

The target is ranked as given. A gray photo finds references close to those of its colour original: on the
38 demo val targets, ranked gray against the 214 colour train photos, its top-1 is the colour original's in
63% of cases and its top-4 shares 74% (benchmarks/suggest_gray_targets.py; gray against gray copies of the
photos agrees less, 50% and 66%).

Cache. The features of a folder are kept in one file per folder and encoder,
`<cache>/<hash of the folder's absolute path>/<encoder>-level4-224px.npz` (default cache:
$SUPERATTN_DATA/features, i.e. ~/.cache/superattn/features), where each row is keyed by the SHA-256 of the
photo file's content. A renamed or copied photo is not encoded again; an edited one is. Hashing is skipped
for a file whose name, size and modification time (ns) match the cache's record of it, so a second query
reads no photo at all: it stats the folder, loads the cache and ranks (BENCHMARKS.md: 1,000 photos). The
cache is written atomically and holds only the folder's current photos; a stale or foreign cache file is
ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..core.files import atomic_write  # noqa: E402
from ..core.devices import resolve_device  # noqa: E402
from ..core.errors import UsageError  # noqa: E402
from ..core.hub import data_dir  # noqa: E402
from ..data.image_io import IMAGE_SUFFIXES, ImageInputError, read_image  # noqa: E402
from ..data.pairs import crop_resized  # noqa: E402
from ..profiles import PROFILES, ranking_profiles  # noqa: E402
from ..data.references import (  # noqa: E402
    DEFAULT_K,
    FEATURE_LEVEL,
    IMAGE_SIZE,
    FeatureFn,
    default_batch_size,
    encode_crops,
    rank_references,
    ranking_feature_fn,
    ranking_space,
)

CACHE_FORMAT = "superattn-folder-features/1"
HASH_CHUNK = 1 << 20


class SuggestError(UsageError):
    """A folder that cannot be ranked (missing, not a folder, no readable photo): one line, names the folder."""


@dataclass(frozen=True)
class Suggestion:
    """One suggested reference: the photo and its distance to the target (the ranking's L2)."""

    path: Path
    distance: float


@dataclass
class FolderFeatures:
    """The photos of a folder that could be read, their content hashes and their ranking features."""

    folder: Path
    paths: list[Path]  # sorted by name
    hashes: list[str]  # SHA-256 of each file's content
    features: torch.Tensor  # (N, D) raw features at FEATURE_LEVEL, row i for paths[i]
    skipped: list[str] = field(default_factory=list)  # one line per file that could not be used
    computed: int = 0  # features computed by this scan (0: everything came from the cache)
    seconds: float = 0.0  # wall time of the scan (listing, hashing, cache, encoding)
    cache_error: str = ""  # why the cache could not be written ("" when it was, or did not need to be)


def file_hash(path: Path | str) -> str:
    """SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def as_uint8(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] (what sa_lib.data.image_io reads) or uint8 -> uint8, as the ranking's crops are."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return rgb
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _crop_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(1, 3, S, S) uint8: a whole photo resized as the ranking resizes its candidates."""
    return torch.from_numpy(crop_resized(as_uint8(rgb), None, IMAGE_SIZE)).permute(2, 0, 1)[None]


def list_photos(folder: Path | str) -> list[Path]:
    """The photos of `folder` (not its subfolders), by extension, sorted by name; SuggestError if none."""
    folder = Path(folder)
    if not folder.exists():
        raise SuggestError(f"folder of photos does not exist: {folder}")
    if not folder.is_dir():
        raise SuggestError(f"not a folder: {folder}")
    try:
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError as err:
        raise SuggestError(f"folder {folder} cannot be read: {err.strerror or err}") from err
    if not photos:
        raise SuggestError(f"no photos ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return photos


class ReferenceSuggester:
    """Ranks the photos of folders for targets; holds its encoder, so build it once and query many times.

    profile: "demo" (effnet_lite0, unit-norm features) or "paper" (vgg19, raw L2), as `sa-references`;
    `encoder` overrides the profile's. `cache_dir` None uses $SUPERATTN_DATA/features; `cache=False` computes
    every feature and writes nothing. `feature_fn` replaces the encoder (tests), as in `build_references`.
    """

    def __init__(self, profile: str = "demo", encoder: str | None = None, device: str = "auto",
                 cache_dir: Path | str | None = None, cache: bool = True, batch_size: int | None = None,
                 feature_fn: FeatureFn | None = None):
        if profile not in ranking_profiles():
            raise SuggestError(f"unknown profile {profile!r}; choose {', '.join(ranking_profiles())}")
        self.profile = profile
        self.encoder = encoder or PROFILES[profile].ranking_encoder
        self.normalize = PROFILES[profile].ranking_normalize
        self.device = resolve_device(device)
        self.pretrained = PROFILES[profile].pretrained  # paper-smoke: random weights (its features mean nothing)
        # may raise ValueError, or AssetUnavailable for VGG offline
        self.feature_fn = feature_fn or ranking_feature_fn(self.encoder, self.device, pretrained=self.pretrained)
        self.batch_size = batch_size or default_batch_size(self.device)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else data_dir() / "features"
        self.cache = cache

    # ------------------------------------------------------------------------------------------- cache

    @property
    def cache_name(self) -> str:
        """What the cached features depend on besides the photo: encoder, level and crop size."""
        return f"{self.encoder}{'' if self.pretrained else '-random'}-level{FEATURE_LEVEL}-{IMAGE_SIZE}px"

    def cache_path(self, folder: Path | str) -> Path:
        """The cache file of `folder` for this encoder."""
        key = hashlib.sha256(os.fsencode(os.path.abspath(folder))).hexdigest()[:16]
        return self.cache_dir / key / f"{self.cache_name}.npz"

    def _load_cache(self, path: Path) -> tuple[dict[str, tuple[int, int, str]], dict[str, np.ndarray]]:
        """(name -> (size, mtime_ns, hash), hash -> feature row) from a cache file; empty if absent or foreign."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != CACHE_FORMAT or str(data["encoder"]) != self.cache_name:
                    return {}, {}
                names, sizes, mtimes = data["names"].tolist(), data["sizes"].tolist(), data["mtimes"].tolist()
                hashes, features = data["hashes"].tolist(), data["features"]
        except (OSError, ValueError, KeyError, EOFError):
            return {}, {}
        index = {n: (int(s), int(m), h) for n, s, m, h in zip(names, sizes, mtimes, hashes)}
        return index, {h: features[row] for row, h in enumerate(hashes)}

    def _save_cache(self, path: Path, names: list[str], stats: list[tuple[int, int]], hashes: list[str],
                    features: torch.Tensor) -> str:
        """Write the cache file; returns "" or, when it cannot be written, why (the answer is the same, the next
        query on the folder only slower)."""
        arrays = {"format": np.array(CACHE_FORMAT), "encoder": np.array(self.cache_name),
                  "names": np.array(names, dtype=str), "sizes": np.array([s for s, _ in stats], dtype=np.int64),
                  "mtimes": np.array([m for _, m in stats], dtype=np.int64), "hashes": np.array(hashes, dtype=str),
                  "features": features.numpy()}
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        try:
            atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
        except OSError as err:  # a cache that cannot be written costs time next query, never the answer
            return f"the feature cache could not be written to {path.parent} ({err.strerror or err})"
        return ""

    # ---------------------------------------------------------------------------------------- features

    def image_features(self, rgb: np.ndarray) -> torch.Tensor:
        """(1, D) raw ranking features of one image, (H, W, 3) float in [0, 1] or uint8."""
        return encode_crops([(_crop_tensor(rgb), torch.tensor([0]))], 1, self.feature_fn, self.batch_size,
                            progress=False)

    def scan(self, folder: Path | str, progress: bool = False) -> FolderFeatures:
        """The features of every readable photo of `folder`, from the cache where it has them."""
        start = time.perf_counter()
        folder = Path(folder)
        photos = list_photos(folder)
        cache_path = self.cache_path(folder)
        index, cached = self._load_cache(cache_path) if self.cache else ({}, {})
        stats, hashes, skipped = [], [], []
        kept: list[Path] = []
        for path in photos:
            try:
                info = path.stat()
                stat = (info.st_size, info.st_mtime_ns)
                known = index.get(path.name)
                digest = known[2] if known is not None and known[:2] == stat else file_hash(path)
            except OSError as err:
                skipped.append(f"photo '{path}' cannot be read: {err.strerror or err}")
                continue
            kept.append(path)
            stats.append(stat)
            hashes.append(digest)
        missing = list(dict.fromkeys(h for h in hashes if h not in cached))  # unique, in folder order
        first_path = {h: p for p, h in reversed(list(zip(kept, hashes)))}
        computed: dict[str, torch.Tensor] = {}
        if missing:
            bad: set[str] = set()

            def crops():
                for row, digest in enumerate(missing):
                    try:
                        rgb = read_image(first_path[digest], role="candidate")
                    except ImageInputError as err:
                        skipped.append(str(err))
                        bad.add(digest)
                        continue
                    yield _crop_tensor(rgb), torch.tensor([row])

            try:
                new = encode_crops(crops(), len(missing), self.feature_fn, self.batch_size, progress=progress,
                                   desc="photo features")
            except ValueError:  # not one readable photo among the new ones
                new = None
            computed = {h: new[row] for row, h in enumerate(missing) if h not in bad} if new is not None else {}
        rows = [(p, s, h) for p, s, h in zip(kept, stats, hashes) if h in cached or h in computed]
        if not rows:
            raise SuggestError(f"no readable photo in {folder} ({len(skipped)} could not be read)")
        features = torch.stack([computed[h] if h in computed else torch.from_numpy(cached[h]) for _, _, h in rows])
        names = [p.name for p, _, _ in rows]
        cache_error = ""
        if self.cache and (computed or set(index) != set(names)
                           or any(index[n][:2] != s for n, (_, s, _) in zip(names, rows))):
            cache_error = self._save_cache(cache_path, names, [s for _, s, _ in rows], [h for _, _, h in rows],
                                           features)
        return FolderFeatures(folder, [p for p, _, _ in rows], [h for _, _, h in rows], features, skipped,
                              len(computed), time.perf_counter() - start, cache_error)

    # ---------------------------------------------------------------------------------------- ranking

    def rank(self, target: np.ndarray | torch.Tensor, scan: FolderFeatures, k: int = DEFAULT_K,
             target_hash: str | None = None) -> list[Suggestion]:
        """The k photos of `scan` nearest to `target` (an image, or its (1, D) features), nearest first.

        Photos whose content hash is `target_hash` (the target's own file) are left out."""
        if k < 1:
            raise SuggestError(f"k must be >= 1, got {k}")
        query = target if isinstance(target, torch.Tensor) else self.image_features(target)  # (1, D)
        ids = {h: i for i, h in enumerate(dict.fromkeys(scan.hashes))}  # one id per content
        idx, dist = rank_references(ranking_space(scan.features, self.normalize), ranking_space(query, self.normalize),
                                    [ids[h] for h in scan.hashes], [ids.get(target_hash, -1)], k)
        return [Suggestion(scan.paths[i], float(d)) for i, d in zip(idx[0].tolist(), dist[0].tolist()) if i >= 0]

    def suggest(self, target: Path | str | np.ndarray, folder: Path | str, k: int = DEFAULT_K,
                progress: bool = False) -> tuple[list[Suggestion], FolderFeatures]:
        """The top-k references of `target` (a path, read as sa-colorize reads it, or an image) in `folder`."""
        target_hash = None
        if isinstance(target, (str, Path)):
            rgb = read_image(target, role="target")
            target_hash = file_hash(target)
        else:
            rgb = target
        scan = self.scan(folder, progress=progress)
        return self.rank(rgb, scan, k, target_hash), scan


def thumbnail(rgb: np.ndarray, side: int = 256) -> Image.Image:
    """A PIL thumbnail (long side `side`, aspect kept) of an (H, W, 3) float [0, 1] or uint8 image."""
    image = Image.fromarray(as_uint8(rgb))
    image.thumbnail((side, side), Image.BICUBIC)
    return image


def contact_sheet(target: np.ndarray, suggestions: list[Suggestion], path: Path | str, thumb: int = 256) -> Path:
    """A strip (PNG, JPEG, PDF or SVG by extension): the target, then each suggestion with its rank, file name
    and distance; written atomically."""
    path = Path(path)
    panels = [(thumbnail(target, thumb), "target")] + [
        (thumbnail(read_image(s.path, role="candidate"), thumb), f"{rank}. {s.path.name}\ndistance {s.distance:.3f}")
        for rank, s in enumerate(suggestions, start=1)]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (image, title) in zip(axes[0], panels):
        ax.imshow(image)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".").lower() or "png"))
    plt.close(fig)
    return path
