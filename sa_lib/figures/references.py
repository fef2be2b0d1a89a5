"""Showing the reference selection of section 4: the ranking a profile uses, its candidate crops, and Fig. 4.

Fig. 4 of the paper: "The first column shows example target images, and the next four columns show the
closest references in the dataset, in decreasing order of similarity." Here each reference is drawn on its
whole source photo, the object crop that was ranked outlined and the rest dimmed, so that the figure shows
both what the encoder compared (the crop, resized to 224 x 224) and where it comes from.

Which ranking (`profile_ranking`):
- smoke: the committed data/demo/references.json (no computation);
- demo: recomputed from the demo photos with `sa_lib.data.references.build_references` (EfficientNet-Lite0,
  unit-norm features, as `sa-references --profile demo`): one to two minutes on a 2-core CPU;
- paper: the COCO ranking written by `sa-references --profile paper` (VGG19 relu5_4 over train2017); ranking
  118k images is a GPU job of its own, so it is read, not recomputed, and a missing COCO or ranking file is
  a one-line error naming the command that makes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.patches as patches
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from ..core.devices import resolve_device
from ..core.files import atomic_write
from ..data.datasets import CocoLikeDataset
from ..data.image_io import load_photo_rgb
from ..data.demo_data import DEMO_DIR, load_split
from ..data.references import IMAGE_SIZE, Box, References, build_references, load_references
from ..profiles import get_profile

DIM = 0.35  # brightness kept outside a ranked crop's box
BOX_COLOR = "yellow"


@dataclass
class Ranking:
    """A ranking and where to find its images: target names in `target_dirs`, candidates in `candidate_dir`."""

    references: References
    candidate_dir: Path
    target_dirs: tuple[Path, ...]
    source: str  # how it was obtained, in words (for the notebook's prose)
    shown_targets: tuple[str, ...] = ()  # the file names Fig. 4 picks its rows from (val targets)

    def target_path(self, image_id: int) -> Path:
        """The file of target `image_id` (the first of `target_dirs` that holds it)."""
        name = self.references.images[image_id]
        for folder in self.target_dirs:
            if (folder / name).is_file():
                return folder / name
        raise FileNotFoundError(f"target {name} is in none of {', '.join(map(str, self.target_dirs))}")


def committed_ranking() -> Ranking:
    """The demo ranking committed in data/demo/references.json (made by `make references`)."""
    folder = DEMO_DIR / "images"
    return Ranking(load_references(DEMO_DIR / "references.json"), folder, (folder,),
                   f"read from the committed {DEMO_DIR.name}/references.json",
                   tuple(p.name for p in load_split("val")))


def demo_ranking(device: str = "auto", progress: bool = False) -> Ranking:
    """The demo ranking recomputed as `sa-references --profile demo` does (PhotoSource.ranking_sets: train photos
    and their objects as the pool, every train and val photo a target; the profile's encoder, EfficientNet-Lite0
    block 15, with unit-norm features, at its ranking size)."""
    device = str(resolve_device(device))
    profile = get_profile("demo")
    pool, targets = profile.photos.ranking_sets()
    references = build_references(pool, targets, encoder=profile.ranking_encoder, normalize=profile.ranking_normalize,
                                  image_size=profile.ranking_size, device=device,
                                  batch_size=32 if device.startswith("cuda") else 4, progress=progress)
    folder = DEMO_DIR / "images"
    return Ranking(references, folder, (folder,), f"recomputed from the demo photos on {device}",
                   tuple(p.name for p in load_split("val")))


def subset_ranking(pool_names: Sequence[str], target_names: Sequence[str], device: str = "auto") -> Ranking:
    """The same pipeline on a few demo photos (seconds): candidates of `pool_names`, ranked for `target_names`."""
    device = str(resolve_device(device))

    folder = DEMO_DIR / "images"
    pool = CocoLikeDataset(DEMO_DIR / "annotations.json", folder, file_names=set(pool_names))
    targets = CocoLikeDataset(DEMO_DIR / "annotations.json", folder, file_names=set(target_names))
    references = build_references([pool], [targets], encoder="effnet_lite0", normalize=True, device=device,
                                  batch_size=4, progress=False)
    return Ranking(references, folder, (folder,), f"recomputed on {len(pool_names)} demo photos",
                   tuple(target_names))


def coco_ranking(profile: str = "paper") -> Ranking:
    """The COCO ranking of the paper profile, or of paper-smoke (its miniature COCO): targets from val2017 and
    train2017, candidates from train2017, as sa-references wrote them."""
    photos = get_profile(profile).photos
    photos.dataset("val")  # a one-line FileNotFoundError naming `make data-coco` when COCO is missing
    root = photos.root()
    path = photos.references_file()
    if not path.is_file():
        raise FileNotFoundError(f"no COCO ranking at {path}: run `make references PROFILE={profile}`"
                                f"{' (a GPU job)' if get_profile(profile).gpu_sized else ''} first")
    val_names = tuple(sorted(p.name for p in (root / "val2017").glob("*.jpg")))
    return Ranking(load_references(path), root / "train2017", (root / "val2017", root / "train2017"),
                   f"read from {path}", val_names)


def profile_ranking(profile: str, device: str = "auto") -> Ranking:
    """The ranking notebook 01 shows for `profile`, as its `ranking_shown` says (sa_lib.profiles): the committed
    demo file (smoke), the demo's recomputed now (demo), or the one sa-references wrote (paper, paper-smoke)."""
    shown = get_profile(profile).ranking_shown
    if shown == "committed":
        return committed_ranking()
    if shown == "recomputed":
        return demo_ranking(device)
    return coco_ranking(profile)


def same_top(a: References, b: References) -> float:
    """Fraction of the targets of `a` whose ranked (image, box) lists are the same in `b` (order included)."""
    def key(refs: References, image_id: int) -> list[tuple[str, Box | None]]:
        return [(c.file_name, c.box) for c, _ in refs.top(image_id)]

    common = [i for i in a.targets if i in b.targets]
    if not common:
        return 0.0
    return sum(key(a, i) == key(b, i) for i in common) / len(common)


def pick_targets(ranking: Ranking, n: int = 6) -> list[int]:
    """`n` target ids spread evenly over the shown targets (val photos) sorted by name: no cherry-picking."""
    by_name = {ranking.references.images[i]: i for i in ranking.references.targets}
    names = sorted(name for name in ranking.shown_targets if name in by_name) or sorted(by_name)
    if n >= len(names):
        return [by_name[name] for name in names]
    positions = np.linspace(0, len(names) - 1, n).round().astype(int)
    return [by_name[names[p]] for p in positions]


def candidate_pool(profile: str) -> CocoLikeDataset:
    """The photos whose objects become candidates: the demo train photos, or COCO train2017 (paper)."""
    return get_profile(profile).photos.dataset("train")  # COCO: a one-line FileNotFoundError naming `make data-coco`


def pick_photos_with_objects(dataset: CocoLikeDataset, n: int = 3, min_objects: int = 2, scan: int = 300
                             ) -> list[int]:
    """`n` image ids spread evenly over the photos that have at least `min_objects` large objects, among the
    first `scan` photos by id (COCO has 118k: reading every mask would take minutes)."""
    ids = [i for i in dataset.image_ids[:scan] if len(set(map(tuple, dataset.object_boxes(i)))) >= min_objects]
    if n >= len(ids):
        return ids
    return [ids[p] for p in np.linspace(0, len(ids) - 1, n).round().astype(int)]


def highlight_box(rgb: np.ndarray, box: Box | None) -> np.ndarray:
    """(H, W, 3) uint8 with everything outside `box` (x, y, w, h) dimmed; unchanged for a whole image."""
    if box is None:
        return rgb
    x, y, w, h = box
    out = (rgb.astype(np.float32) * DIM).astype(np.uint8)
    out[y:y + h, x:x + w] = rgb[y:y + h, x:x + w]
    return out


def crop_resized(rgb: np.ndarray, box: Box | None, size: int = IMAGE_SIZE) -> np.ndarray:
    """What the encoder sees of a candidate: its box cropped, resized to size x size (aspect not kept)."""
    if box is not None:
        x, y, w, h = box
        rgb = rgb[y:y + h, x:x + w]
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))


def _draw_box(ax, box: Box | None, color: str = BOX_COLOR, linewidth: float = 1.5) -> None:
    if box is not None:
        x, y, w, h = box
        ax.add_patch(patches.Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=color, linewidth=linewidth))


def fig4(ranking: Ranking, target_ids: Sequence[int], out: Path, k: int = 4) -> Path:
    """Fig. 4: one row per target (first column), then its top-k references, nearest first, saved to `out`.

    An object crop is outlined on its photo (rest dimmed); each title gives the rank and the L2 distance.
    """
    refs = ranking.references
    fig, axes = plt.subplots(len(target_ids), k + 1, figsize=(2.3 * (k + 1), 2.0 * len(target_ids)), squeeze=False)
    for row, image_id in enumerate(target_ids):
        ax = axes[row, 0]
        ax.imshow(load_photo_rgb(ranking.target_path(image_id)))
        ax.set_title(f"target: {_short(refs.images[image_id])}", fontsize=7)
        top = refs.top(image_id)
        for col in range(k):
            ax = axes[row, col + 1]
            if col < len(top):
                candidate, distance = top[col]
                ax.imshow(highlight_box(load_photo_rgb(ranking.candidate_dir / candidate.file_name), candidate.box))
                _draw_box(ax, candidate.box)
                kind = "object" if candidate.box is not None else "image"
                ax.set_title(f"top {col + 1} ({kind}), d={distance:.3g}\n{_short(candidate.file_name)}", fontsize=7)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("auto")
    normalized = "unit-norm " if refs.normalized else ""
    fig.suptitle(f"Reference selection (Fig. 4): targets and their top-{k} references by L2 distance between "
                 f"{normalized}{refs.encoder} deepest features ({ranking.source})", fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


def candidates_figure(dataset: CocoLikeDataset, image_ids: Sequence[int], out: Path, max_objects: int = 4,
                      min_area_fraction: float = 0.10) -> Path:
    """Each row a photo with its objects larger than `min_area_fraction` outlined, then what the encoder
    sees: the whole photo and each object crop, resized to 224 x 224. Saved to `out`."""
    rows = []
    for image_id in image_ids:
        rgb = dataset.load_rgb(image_id)
        height, width = rgb.shape[:2]
        boxes = [b for b in dataset.object_boxes(image_id, min_area_fraction) if tuple(b) != (0, 0, width, height)]
        rows.append((image_id, rgb, list(dict.fromkeys(map(tuple, boxes)))[:max_objects]))
    cols = 2 + max(len(boxes) for _, _, boxes in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.2 * cols, 2.1 * len(rows)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, (image_id, rgb, boxes) in enumerate(rows):
        axes[row, 0].imshow(rgb)
        for i, box in enumerate(boxes):
            _draw_box(axes[row, 0], box, colors[i % len(colors)], 2)
        axes[row, 0].set_title(f"{_short(dataset.record(image_id).path.name, 22)}\n{len(boxes)} objects > "
                               f"{min_area_fraction:.0%} of the image", fontsize=7)
        axes[row, 1].imshow(crop_resized(rgb, None))
        axes[row, 1].set_title("whole image, 224x224", fontsize=7)
        for i, box in enumerate(boxes):
            ax = axes[row, 2 + i]
            ax.imshow(crop_resized(rgb, box))
            for spine in ax.spines.values():
                spine.set_edgecolor(colors[i % len(colors)])
                spine.set_linewidth(3)
            ax.set_title(f"object {i + 1}: {box[2]}x{box[3]} px", fontsize=7)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in axes[row, 2 + len(boxes):]:
            ax.axis("off")
    fig.suptitle("Candidate references: every whole image plus its objects larger than 10% of the image, "
                 "each resized to 224x224 for the encoder", fontsize=9)
    fig.tight_layout()
    return _save(fig, out)


def _short(name: str, limit: int = 28) -> str:
    stem = Path(name).stem
    return stem if len(stem) <= limit else stem[:limit - 1] + "…"


def _save(fig, out: Path) -> Path:
    out = Path(out)
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return out

