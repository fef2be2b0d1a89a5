"""Shared fixtures: small real demo crops, made once per session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sa_lib.data.demo_data import load_split


def load_rgb(path, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, H, W) sRGB in [0, 1] of a demo photo resized to size = (H, W)."""
    image = Image.open(path).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255.0


@pytest.fixture(scope="session")
def demo_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two different real photos (target, reference) of different sizes."""
    paths = load_split("val")
    return load_rgb(paths[0], (48, 56)), load_rgb(paths[1], (40, 36))


@pytest.fixture(scope="session")
def benchmark_script():
    """load(name) -> benchmarks/<name>.py imported as a module (the benchmarks are scripts, not a package)."""
    folder = Path(__file__).resolve().parent.parent / "benchmarks"

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def with_random_lpips(tmp_path_factory):
    """Runs a function with the `lpips` package's own network made offline: its backbone (VGG16 / AlexNet) gets
    random weights (`lpips.LPIPS(pnet_rand=True)`), its linear heads come from the lpips wheel, hub.fetch is a
    no-op and the network is refused. Returns (what the function returned, the keyword arguments of every
    lpips.LPIPS built). The patches last only for the call: a network built inside stays usable after it.
    Such a network checks the wiring of the LPIPS loss and metric (inputs, shapes, gradients, zero for identical
    images), never the published LPIPS numbers."""
    import urllib.error

    import lpips

    from sa_lib.core import hub

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("offline")

    def run(function):
        real, built = lpips.LPIPS, []

        def random_backbone(*args, **kwargs):
            built.append(dict(kwargs))
            return real(*args, **{**kwargs, "pnet_rand": True})

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch.hub, "get_dir", lambda: str(tmp_path_factory.mktemp("torch_hub")))
            patch.setattr(hub.urllib.request, "urlopen", refuse)
            patch.setattr(hub, "fetch", lambda name, *args, **kwargs: None)
            patch.setattr(lpips, "LPIPS", random_backbone)
            return function(), built

    return run

