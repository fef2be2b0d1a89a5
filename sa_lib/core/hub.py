"""The one registry of downloadable assets (url + checksum) and the places they are cached.

Two kinds of assets live here:

* weights: pretrained backbones go where torchvision and lpips also look for them,
  `torch.hub.get_dir()/checkpoints` ($TORCH_HOME, default ~/.cache/torch/hub/checkpoints), so a file placed
  there by hand or by another tool is reused. torchvision publishes only the first hex digits of each weight
  file's SHA-256 (in the file name); those are what we check, exactly as torchvision does.
* data: the COCO 2017 archives, checked against their published MD5, cached under
  `data_dir()/downloads`. `data_dir()` is $SUPERATTN_DATA, default ~/.cache/superattn.

Every file is verified before use. Downloads go to `<file>.part` first and are resumed from there with an
HTTP Range request when a previous attempt was cut off; the file is renamed into place only once verified,
and a file that fails its checksum is deleted. Offline, a missing file gives a one-line error that names
the URL and the path to place the file at. With $SUPERATTN_OFFLINE set (to anything but "" or "0") nothing
is ever downloaded: a missing file gives that error at once (tests/test_paper_smoke.py proves with it that the
paper-smoke profile needs no download).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

CHUNK = 1 << 20
TIMEOUT_S = 30


class AssetUnavailable(RuntimeError):
    """A registered asset is neither cached nor downloadable (offline, or a checksum mismatch)."""


@dataclass(frozen=True)
class Asset:
    url: str
    sha256_prefix: str = ""  # leading hex digits of the file's SHA-256 (weights)
    md5: str = ""  # full MD5 hex digest (data archives, as published)
    kind: str = "weights"  # "weights": cached in checkpoints_dir(); "data": cached in data_dir()/downloads
    size: int = 0  # approximate size in bytes, for messages (0: unknown)

    def __post_init__(self):
        if not (self.sha256_prefix or self.md5):
            raise ValueError(f"asset {self.url} needs a checksum (sha256_prefix or md5)")
        if self.kind not in ("weights", "data"):
            raise ValueError(f"asset kind must be 'weights' or 'data', not {self.kind!r}")

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def noun(self) -> str:
        return "weights" if self.kind == "weights" else "archive"


_COCO = "http://images.cocodataset.org"
REGISTRY: dict[str, Asset] = {
    "vgg19": Asset("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d"),
    "vgg19_bn": Asset("https://download.pytorch.org/models/vgg19_bn-c79401a0.pth", "c79401a0"),
    "vgg16": Asset("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),  # LPIPS-VGG backbone
    "alexnet": Asset("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"),  # LPIPS-alex
    # COCO 2017 (https://cocodataset.org/#download), MD5 as published for the archives.
    "coco_train2017": Asset(f"{_COCO}/zips/train2017.zip", md5="cced6f7f71b7629ddf16f17bbcfab6b2",
                            kind="data", size=18_000_000_000),
    "coco_val2017": Asset(f"{_COCO}/zips/val2017.zip", md5="442b8da7639aecaf257c1dceb8ba8c80",
                          kind="data", size=780_000_000),
    "coco_annotations_trainval2017": Asset(f"{_COCO}/annotations/annotations_trainval2017.zip",
                                           md5="f4bbac642086de4f52a3fdda2de5fa2c", kind="data",
                                           size=250_000_000),
}


def checkpoints_dir() -> Path:
    """Where backbone weights are cached: torch hub's checkpoints folder, shared with torchvision and lpips."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def data_dir() -> Path:
    """Root of the data cache: $SUPERATTN_DATA, default ~/.cache/superattn."""
    return Path(os.environ.get("SUPERATTN_DATA") or Path.home() / ".cache" / "superattn").expanduser()


def asset_path(name: str, directory: Path | str | None = None) -> Path:
    """Where the file of asset `name` is cached (in `directory` if given)."""
    asset = _asset(name)
    if directory is None:
        directory = checkpoints_dir() if asset.kind == "weights" else data_dir() / "downloads"
    return Path(directory) / asset.filename


def _asset(name: str) -> Asset:
    if name not in REGISTRY:
        raise KeyError(f"unknown asset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 * CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    return _digest(path, "sha256")


def _verify(asset: Asset, path: Path) -> str | None:
    """None if `path` matches the asset's checksum, else a short description of what is wrong."""
    if asset.md5:
        found = _digest(path, "md5")
        return None if found == asset.md5 else f"MD5 {found} is not {asset.md5}"
    return None if _sha256(path).startswith(asset.sha256_prefix) else \
        f"SHA-256 does not start with {asset.sha256_prefix}"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def fetch(name: str, download: bool = True, *, directory: Path | str | None = None,
          progress: bool = True) -> Path:
    """Path of the verified file of asset `name`, downloading it first if needed and allowed.

    `directory` overrides the cache folder of the asset's kind. An interrupted download leaves
    `<file>.part`, which the next call resumes.
    """
    asset = _asset(name)
    target = asset_path(name, directory)
    if target.is_file():
        problem = _verify(asset, target)
        if problem is None:
            return target
        raise AssetUnavailable(f"{target} is corrupt ({problem}); delete it and run again with internet")
    hint = f"download {asset.url} and place it at {target}"
    if os.environ.get("SUPERATTN_OFFLINE", "") not in ("", "0"):
        raise AssetUnavailable(f"{name} {asset.noun} not cached and SUPERATTN_OFFLINE is set: {hint}")
    if not download:
        raise AssetUnavailable(f"{name} {asset.noun} not cached: {hint}")
    part = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _download(asset, part, progress)
    except AssetUnavailable:
        raise
    except (urllib.error.URLError, OSError) as err:
        if part.is_file() and part.stat().st_size == 0:
            part.unlink()
        kept = f" (partial file kept at {part}, the next run resumes it)" if part.is_file() else ""
        reason = _one_line(getattr(err, "reason", "") or getattr(err, "strerror", "") or "")
        reason = f": {reason}" if reason else ""
        raise AssetUnavailable(f"{name} {asset.noun} could not be downloaded ({type(err).__name__}{reason}); "
                               f"{hint}{kept}") from None
    problem = _verify(asset, part)
    if problem is not None:
        part.unlink()
        raise AssetUnavailable(f"downloaded {asset.url} fails its checksum ({problem}); try again later")
    os.replace(part, target)
    return target


def _download(asset: Asset, part: Path, progress: bool) -> None:
    """Fetch asset.url into `part`, continuing an existing partial file with a Range request."""
    offset = part.stat().st_size if part.is_file() else 0
    if offset:
        request = urllib.request.Request(asset.url, headers={"Range": f"bytes={offset}-"})
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as err:
            if err.code == 416:  # nothing left to send: the partial file is complete (checked by the caller)
                return
            raise
    else:
        response = urllib.request.urlopen(asset.url, timeout=TIMEOUT_S)
    with response:
        status = getattr(response, "status", None) or 200
        headers = getattr(response, "headers", None) or {}
        if offset and not (status == 206 and _range_start(headers.get("Content-Range")) in (offset, None)):
            offset = 0  # the server sent the whole file: start over
        length = headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else (asset.size or None)
        if length and length.isdigit():
            free = shutil.disk_usage(part.parent).free
            if int(length) > free:
                raise AssetUnavailable(f"not enough disk space for {asset.url}: {int(length) / 1e9:.1f} GB "
                                       f"needed in {part.parent}, {free / 1e9:.1f} GB free")
        with open(part, "ab" if offset else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=asset.filename, disable=not progress, mininterval=1.0, leave=False) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))


def _range_start(content_range: str | None) -> int | None:
    """First byte of a `Content-Range: bytes a-b/n` header (None when absent or unreadable)."""
    match = re.match(r"bytes\s+(\d+)-", content_range or "")
    return int(match.group(1)) if match else None
