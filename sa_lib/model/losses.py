"""Training losses of section 3.3: L_total = lambda1 * SmoothL1(ab) + lambda2 * perceptual (eq. 4-6).

Not in the paper, off by default (`lambda_chroma = 0`): a third term, lambda3 * the chroma distribution distance
(`chroma_distribution_distance`), the 1-D Wasserstein distance between the per-image distributions of the
predicted and the true chroma. It asks for the truth's amount of colour without saying where it goes, against the
muted mean that SmoothL1 pulls towards when the colour is unsure (docs/transfer.md).

SmoothL1 (eq. 4) keeps the paper's threshold of 1 in Lab units: it is computed on ab scaled to the
network range (divided by 110) with beta = 1/110. That scale is what lets lambda1 = 10 and lambda2 = 0.1
balance the two terms as the paper says they do (in raw Lab units the perceptual term would be ~1000x
smaller than the reconstruction term). `smooth_l1_units="lab"` computes eq. 4 as written, on raw Lab units
(110 times larger): the paper's reading, with its own ablation row (docs/faithfulness.md).

The perceptual term is LPIPS-VGG (the `lpips` package, eq. 5) where its VGG16 backbone weights can be had.
`LPIPSVGG(pretrained_backbone=False)` (profile `paper-smoke`) runs the same LPIPS with a random VGG16
(`lpips.LPIPS(net="vgg", pnet_rand=True)`) and the wheel's real linear heads: the paper's code path with nothing
downloaded, not a meaningful perceptual distance.
Offline they cannot, and the substitute is named for what it is: `EncoderFeatureDistance`, eq. 5's
unit-normalised feature distance on the frozen EfficientNet-Lite0 with uniform weights (no learned
LPIPS heads). Nothing that is not LPIPS is ever called LPIPS.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core import hub
from ..core.color import AB_SCALE, lab_to_rgb
from .encoders import build_color_encoder

PERCEPTUAL_KINDS = ("auto", "lpips_vgg", "effnet_feature_distance", "none")


class LPIPSVGG(nn.Module):
    """LPIPS with the VGG16 backbone (v0.1), the paper's perceptual loss. Inputs sRGB in [0, 1]."""

    name = "lpips_vgg"

    def __init__(self, pretrained_backbone: bool = True):
        """`pretrained_backbone=False`: a random VGG16 (torch's global RNG), nothing downloaded; the linear heads
        are the lpips wheel's own file either way."""
        super().__init__()
        if pretrained_backbone:
            hub.fetch("vgg16")  # verified into torch hub's cache, where lpips/torchvision look for it
        import lpips  # deferred: lpips builds torchvision's networks; only the paper's LPIPS-VGG loss needs it

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.net = lpips.LPIPS(net="vgg", version="0.1", verbose=False, pnet_rand=not pretrained_backbone)
        self.net.requires_grad_(False).eval()

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(prediction * 2 - 1, target * 2 - 1).mean()  # LPIPS expects [-1, 1]


class EncoderFeatureDistance(nn.Module):
    """Offline substitute for LPIPS: eq. 5 with uniform weights on the frozen EfficientNet-Lite0 features.

    sum over 4 levels of mean over pixels of ||f_hat - f||^2, features unit-normalised over channels.
    """

    name = "effnet_feature_distance"

    def __init__(self, pretrained: bool = True):
        super().__init__()
        self.encoder = build_color_encoder("effnet_lite0", pretrained)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        h, w = prediction.shape[-2:]
        sizes = {level: (max(1, h >> (level + 1)), max(1, w >> (level + 1))) for level in range(4)}  # native
        pred, ref = self.encoder(prediction, sizes), self.encoder(target, sizes)
        return sum(((F.normalize(pred[l], dim=1) - F.normalize(ref[l], dim=1)) ** 2).sum(1).mean()
                   for l in sizes)


def build_perceptual(kind: str = "auto", pretrained: bool = True) -> nn.Module | None:
    """The perceptual term: "lpips_vgg", "effnet_feature_distance", "none", or "auto" (LPIPS-VGG if its
    weights can be had, else the named substitute, with a one-line warning). `pretrained=False`: the backbone
    (VGG16 of LPIPS, or EfficientNet-Lite0) has random weights."""
    if kind not in PERCEPTUAL_KINDS:
        raise ValueError(f"unknown perceptual loss {kind!r}; choose one of {', '.join(PERCEPTUAL_KINDS)}")
    if kind == "none":
        return None
    if kind == "lpips_vgg":
        return LPIPSVGG(pretrained_backbone=pretrained)
    if kind == "auto":
        try:
            return LPIPSVGG()
        except hub.AssetUnavailable as err:
            warnings.warn(f"LPIPS-VGG unavailable ({err}); using effnet_feature_distance instead", stacklevel=2)
    return EncoderFeatureDistance(pretrained)


def chroma_distribution_distance(pred_ab: torch.Tensor, target_ab: torch.Tensor) -> torch.Tensor:
    """Mean over images of the 1-D Wasserstein distance between the predicted and the true chroma sqrt(a*^2 +
    b*^2) of its pixels (pred_ab, target_ab (B, 2, H, W) in Lab units), in the network's range (/ AB_SCALE):
    the mean absolute difference of the two sorted chroma lists. 0 when the prediction has the truth's chroma
    values anywhere in the image; it does not constrain where they go or their hue."""
    def sorted_chroma(ab: torch.Tensor) -> torch.Tensor:
        chroma = torch.sqrt((ab.flatten(2) / AB_SCALE).pow(2).sum(1) + 1e-8)  # (B, H*W)
        return chroma.sort(dim=1).values

    return (sorted_chroma(pred_ab) - sorted_chroma(target_ab)).abs().mean()


# SmoothL1's units (ColorizationLoss, TrainConfig.smooth_l1_units): "network", a*b* / 110 with beta 1/110 (this
# project: the threshold stays 1 Lab unit, the balance with the perceptual term is the one the paper describes);
# "lab", raw Lab units with beta 1 (eq. 4 as written: 110 times the first).
SMOOTH_L1_UNITS = ("network", "lab")


class ColorizationLoss(nn.Module):
    """Eq. 6: lambda1 * SmoothL1 on ab + lambda2 * perceptual distance between predicted and true RGB, and, not
    in the paper, lambda_chroma * chroma_distribution_distance (0 by default: eq. 6 exactly). SmoothL1 is on
    ab/110 (`smooth_l1_units` "network", this project) or on raw Lab units ("lab", eq. 4 as written)."""

    def __init__(self, perceptual: nn.Module | None, lambda_l1: float = 10.0, lambda_perceptual: float = 0.1,
                 lambda_chroma: float = 0.0, smooth_l1_units: str = "network"):
        super().__init__()
        if smooth_l1_units not in SMOOTH_L1_UNITS:
            raise ValueError(f"unknown smooth_l1_units {smooth_l1_units!r}; choose one of {', '.join(SMOOTH_L1_UNITS)}")
        self.perceptual = perceptual
        self.lambda_l1, self.lambda_perceptual, self.lambda_chroma = lambda_l1, lambda_perceptual, lambda_chroma
        self.ab_unit = AB_SCALE if smooth_l1_units == "network" else 1.0  # a*b* are divided by it

    def forward(self, pred_ab: torch.Tensor, target_l: torch.Tensor, target_ab: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        """pred_ab, target_ab (B, 2, H, W) and target_l (B, 1, H, W) in Lab units -> {"total", "smooth_l1",
        "perceptual", "chroma"} (scalars; "chroma" is 0 unless lambda_chroma is set)."""
        smooth_l1 = F.smooth_l1_loss(pred_ab / self.ab_unit, target_ab / self.ab_unit, beta=1.0 / self.ab_unit)
        total = self.lambda_l1 * smooth_l1
        perceptual = torch.zeros((), device=pred_ab.device)
        if self.perceptual is not None:
            pred_rgb = lab_to_rgb(torch.cat([target_l, pred_ab], dim=1))  # differentiable (kornia)
            true_rgb = lab_to_rgb(torch.cat([target_l, target_ab], dim=1))
            perceptual = self.perceptual(pred_rgb, true_rgb)
            total = total + self.lambda_perceptual * perceptual
        chroma = torch.zeros((), device=pred_ab.device)
        if self.lambda_chroma:
            chroma = chroma_distribution_distance(pred_ab, target_ab)
            total = total + self.lambda_chroma * chroma
        return {"total": total, "smooth_l1": smooth_l1.detach(), "perceptual": perceptual.detach(),
                "chroma": chroma.detach()}
