"""COCO 2017: download, verify and extract the archives, then read them as a CocoLikeDataset.

    python -m sa_lib.cli.coco download [--splits val train] [--root DIR]     (or: make data-coco)

The archives are registered with their published MD5 in `sa_lib.core.hub` and cached in <root>/downloads;
they are extracted into <root>/coco/{train2017,val2017,annotations}. <root> defaults to the data cache,
$SUPERATTN_DATA or ~/.cache/superattn. Downloads resume where they stopped; an archive whose extraction
finished leaves a stamp (<root>/coco/.<asset>.extracted), so running again skips it.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from ..core import hub
from ..core.files import atomic_write
from .datasets import CocoLikeDataset

SPLITS = ("train", "val")
IMAGE_ARCHIVES = {"train": "coco_train2017", "val": "coco_val2017"}
ANNOTATION_ARCHIVE = "coco_annotations_trainval2017"
FOLDER = {"coco_train2017": "train2017", "coco_val2017": "val2017", ANNOTATION_ARCHIVE: "annotations"}


def data_root(root: Path | str | None = None) -> Path:
    return Path(root).expanduser() if root is not None else hub.data_dir()


def coco_root(root: Path | str | None = None) -> Path:
    """<root>/coco, where the archives are extracted (default: $SUPERATTN_DATA/coco or ~/.cache/superattn/coco)."""
    return data_root(root) / "coco"


coco_dir = coco_root


def _stamp(base: Path, name: str) -> Path:
    return base / f".{name}.extracted"


def is_extracted(name: str, root: Path | str | None = None) -> bool:
    """True when archive `name` was fully extracted from a verified download (its stamp is present)."""
    base = coco_root(root)
    stamp = _stamp(base, name)
    return (base / FOLDER[name]).is_dir() and stamp.is_file() and \
        stamp.read_text(encoding="utf-8").strip() == hub.REGISTRY[name].md5


def extract_archive(archive: Path, destination: Path, folder: str, progress: bool = True) -> None:
    """Extract `archive`, whose entries must all lie in `folder/`, into `destination` (files overwritten)."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        stray = [m.filename for m in members if not m.filename.startswith(f"{folder}/")]
        if stray or not members:
            raise ValueError(f"{archive} is not laid out as expected: entries outside {folder}/ "
                             f"({stray[0] if stray else 'archive is empty'})")
        destination.mkdir(parents=True, exist_ok=True)
        needed, free = sum(m.file_size for m in members), shutil.disk_usage(destination).free
        if needed > free:
            raise OSError(f"not enough disk space to extract {archive.name}: {needed / 1e9:.1f} GB needed in "
                          f"{destination}, {free / 1e9:.1f} GB free")
        for member in tqdm(members, desc=f"extract {archive.name}", unit="file", disable=not progress,
                           mininterval=1.0, leave=False):
            zf.extract(member, destination)  # zipfile drops absolute paths and '..' components


def download_coco(splits: tuple[str, ...] | list[str] = ("val",), root: Path | str | None = None,
                  keep_archives: bool = True, progress: bool = True) -> Path:
    """Fetch (resumable, MD5-verified) and extract the COCO 2017 images of `splits` and the annotations.

    Returns <root>/coco. Archives already extracted (stamp present) are skipped without any network access.
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ValueError(f"unknown COCO split {unknown[0]!r}; expected some of {', '.join(SPLITS)}")
    base = coco_root(root)
    downloads = data_root(root) / "downloads"  # with no root: hub's data cache, data_dir()/downloads
    for name in [ANNOTATION_ARCHIVE] + [IMAGE_ARCHIVES[s] for s in dict.fromkeys(splits)]:
        if is_extracted(name, root):
            continue
        archive = hub.fetch(name, directory=downloads, progress=progress)
        extract_archive(archive, base, FOLDER[name], progress)
        atomic_write(_stamp(base, name), lambda tmp: tmp.write_text(hub.REGISTRY[name].md5 + "\n", encoding="utf-8"))
        if not keep_archives:
            archive.unlink()
    return base


def coco_dataset(split: str = "train", root: Path | str | None = None) -> CocoLikeDataset:
    """COCO 2017 `split` ("train" or "val") with its instance masks, from <root>/coco."""
    if split not in SPLITS:
        raise ValueError(f"unknown COCO split {split!r}; expected one of {', '.join(SPLITS)}")
    base = coco_root(root)
    annotations, images = base / "annotations" / f"instances_{split}2017.json", base / f"{split}2017"
    missing = [str(p) for p in (annotations, images) if not p.exists()]
    if missing:
        raise FileNotFoundError(f"COCO {split}2017 is not in {base} (missing {', '.join(missing)}): run "
                                f"`make data-coco` or `python -m sa_lib.cli.coco download --splits {split}`")
    return CocoLikeDataset(annotations, images)
