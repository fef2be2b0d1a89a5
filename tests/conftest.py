"""Shared fixtures: small real demo crops, made once per session."""

from __future__ import annotations

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


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
