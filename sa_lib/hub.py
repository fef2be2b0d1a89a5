"""The one registry of downloadable assets (url + checksum) and the one place they are cached.

Pretrained backbones go where torchvision and lpips also look for them, `torch.hub.get_dir()/checkpoints`
($TORCH_HOME, default ~/.cache/torch/hub/checkpoints), so a file placed there by hand or by another tool is
reused. Every file is verified before use. Offline, a missing file gives a one-line error that names the
file and where to put it. torchvision publishes only the first hex digits of each weight file's SHA-256
(in the file name); those are what we check, exactly as torchvision does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch


class AssetUnavailable(RuntimeError):
    """A registered asset is neither cached nor downloadable (offline, or a checksum mismatch)."""


@dataclass(frozen=True)
class Asset:
    url: str
    sha256_prefix: str  # leading hex digits of the file's SHA-256

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


REGISTRY: dict[str, Asset] = {
    "vgg19": Asset("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d"),
    "vgg19_bn": Asset("https://download.pytorch.org/models/vgg19_bn-c79401a0.pth", "c79401a0"),
    "vgg16": Asset("https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),  # LPIPS-VGG backbone
    "alexnet": Asset("https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", "7be5be79"),  # LPIPS-alex
}


def checkpoints_dir() -> Path:
    """Where backbone weights are cached: torch hub's checkpoints folder, shared with torchvision and lpips."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, download: bool = True) -> Path:
    """Path of the verified file of asset `name`, downloading it first if needed and allowed."""
    if name not in REGISTRY:
        raise KeyError(f"unknown asset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    asset = REGISTRY[name]
    target = checkpoints_dir() / asset.filename
    if target.is_file():
        if _sha256(target).startswith(asset.sha256_prefix):
            return target
        raise AssetUnavailable(f"{target} is corrupt (SHA-256 does not start with {asset.sha256_prefix}); "
                               f"delete it and run again with internet")
    hint = f"download {asset.url} and place it at {target}"
    if not download:
        raise AssetUnavailable(f"{name} weights are not cached: {hint}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(asset.url, timeout=30) as response:
            shutil.copyfileobj(response, out)
        if not _sha256(Path(tmp)).startswith(asset.sha256_prefix):
            raise AssetUnavailable(f"downloaded {asset.url} fails its checksum; try again later")
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as err:
        raise AssetUnavailable(f"{name} weights could not be downloaded ({type(err).__name__}); {hint}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target
