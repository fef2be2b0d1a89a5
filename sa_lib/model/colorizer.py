"""The exemplar-based colorization network of Fig. 1: a U-Net guided by (super-)attention to a reference.

Variants (the ablation of Table 1):
- "none":     the U-Net alone, no reference.
- "standard": dense attention at the bottleneck (stride 8) between target and reference.
- "super":    super-attention at the first three levels (strides 1, 2, 4), the paper's model.

Data flow for a target L* (B, 1, H, W) and a reference sRGB (B, 3, H', W'):
the siamese U-Net encoder f encodes the target L and the reference L (the target's luminance first
remapped to the reference's mean and std, as in the authors' code); the frozen colour encoder phi encodes
the reference RGB; at each attention level the block matches f_T against f_R and carries phi_R to the
target; the decoder concatenates [upsampled, attention hints, skip] at each level; a tanh head predicts
ab. forward() returns (ab in Lab units, intermediates), with every attention map and superpixel grid.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.color import AB_SCALE, gray_from_lstar, normalize_l, rgb_to_lab
from ..superpixels.pyramid import (SLIC_BACKENDS, SLIC_COMPACTNESS, SUPERPIXEL_SCHEMES, ResizedMaps, SuperpixelPyramid,
                                   level_sizes)
from .attention import (DEFAULT_TAU, QK_NORMALISATIONS, STANDARD_SIMILARITIES, StandardAttention, SuperAttention,
                        check_key_initialisation)
from .encoders import ENCODERS, build_color_encoder

VARIANTS = ("none", "standard", "super")
# Names build_model knows: the paper's three variants, and "transfer" (super + ColorizerConfig.transfer()'s
# options, a departure from the paper for colour transfer from a different photo: docs/transfer.md).
NAMED_MODELS = (*VARIANTS, "transfer")
TRANSFER_OPTIONS = {"match_frozen": True, "match_deep": True, "carry_ab": True, "ab_residual": True,
                    "flip_average": True}
TRANSFER_OFF = {name: False for name in TRANSFER_OPTIONS}  # the paper's model
# Change how the network is run or its output is used, never its weights or its training.
# blend_partner adds a second, already trained network beside this one: it changes neither this network's weights nor
# its training, so a run and its blended checkpoint have the same network_hash.
INFERENCE_ONLY_OPTIONS = ("flip_average", "chroma_gain", "blend_partner")
BLEND_PARTNER_VARIANTS = ("standard", "super")  # a partner colours from the reference, as the network it joins
CHROMA_GAIN_RANGE = (0.25, 4.0)  # chroma_gain's accepted values: outside them a typo, not a calibration
# match_deep: the frozen encoder's deeper, more semantic levels (strides 16 and 32; the reference ranking's) as a
# second matching group beside levels 0-2 (docs/transfer.md, run v5).
DEEP_MATCH_LEVELS = (3, 4)
SUPER_LEVELS = (0, 1, 2)  # super-attention at the first three levels (strides 1, 2, 4)
BOTTLENECK = 3  # standard attention at the bottleneck (stride 8)
# Inference on large images runs the full-resolution decoder stage in strips of this many rows (plus a halo of
# one row per 3x3 conv), so its 3w-channel concatenation and conv temporaries never exist at full size.
STRIP_MIN_PIXELS = 512 * 512
STRIP_ROWS = 256


@dataclass
class ColorizerConfig:
    """Everything needed to rebuild the network; stored (as JSON) inside every checkpoint.

    The defaults are the cheap demo profile (CPU-sized widths, EfficientNet-Lite0 colour encoder);
    `ColorizerConfig.paper()` gives the authors' sizes with VGG19.
    """

    variant: str = "super"
    encoder: str = "effnet_lite0"
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)  # U-Net channels at strides 1, 2, 4, 8
    encoder_convs: tuple[int, int, int, int] = (2, 2, 2, 2)  # 3x3 conv+BN+ReLU per encoder level
    decoder_convs: int = 2  # 3x3 convs after the 1x1 fusion of each decoder level
    tau: float = DEFAULT_TAU
    slic_compactness: float = SLIC_COMPACTNESS
    match_luminance: bool = True
    extra: dict = field(default_factory=dict)  # free-form provenance (profile name...), never read by the net
    # Departures from the paper for colour transfer from a different photo (`ColorizerConfig.transfer()`,
    # the `demo-transfer` checkpoint; docs/transfer.md). All off is the paper's model.
    match_frozen: bool = False  # super-attention also matches on the frozen colour encoder's features (levels
    #                             0-2, all at each level's size) of the two gray images, beside the learned
    #                             U-Net features; query/key start as the identity (the [17] baseline's cosine)
    carry_ab: bool = False  # super-attention also carries the reference's own mean a*b* per superpixel and
    #                         the match confidence (each row's largest weight) to the decoder
    ab_residual: bool = False  # the head predicts a correction of the carried a*b* of level 0 (in tanh's
    #                            logit space), so a*b* start as the reference's and training decides where not to
    match_deep: bool = False  # match_frozen also matches on the frozen encoder's levels 3-4 (DEEP_MATCH_LEVELS),
    #                           centred and normalised as a group of their own
    flip_average: bool = False  # inference only (sa_lib.model.predict): the a*b* are the mean of two passes, the
    #                             images as they are and both mirrored left to right (the second pass's output
    #                             mirrored back); two superpixel draws whose errors partly cancel. The weights
    #                             and training are unchanged (INFERENCE_ONLY_OPTIONS: a run resumes under either
    #                             setting); the intermediates are the first pass's
    chroma_gain: float = 1.0  # inference only (sa_lib.model.predict): the predicted a*b* are multiplied by it, a
    #                           global chroma gain set per checkpoint after training by sa-calibrate-chroma
    #                           (sa_lib.eval.chroma_calibration): the gain that makes its outputs on the training
    #                           photos, each with a different photo as reference, as colourful as a share of their
    #                           truths'. 1 is the network as trained (docs/transfer.md, run "gain")
    frozen_prior: bool = False  # the decoder's bottleneck also gets match_deep's frozen features of the gray target
    #                             (levels 3-4, a 1x1 projection that starts at 0, added): ImageNet semantics for a
    #                             plausible colour where the reference does not match (docs/transfer.md, run p1)
    # Switches that make this network the authors' released one (the preset ColorizerConfig.official(),
    # docs/official.md). Their defaults are this project's own choices; at their defaults they are left out of
    # to_json (LATER_FIELDS), so every earlier config keeps its JSON and its config_hash.
    luminance_input: str = "lstar"  # "lstar": L*/100, float32; "rgb2gray": AUTHORS_PREPROCESSING
    superpixel_scheme: str = "contiguous"  # sa_lib.superpixels.pyramid.SUPERPIXEL_SCHEMES; "authors": AUTHORS_SUPERPIXELS
    qk_normalisation: str = "both"  # sa_lib.model.attention.QK_NORMALISATIONS; "before": the authors'
    upsample_relu: tuple[int, ...] = ()  # decoder levels whose upsampled map passes a ReLU (authors: 0 and 1)
    ab_scale: float = AB_SCALE  # ab = ab_scale * tanh(head) (authors: 127)
    # The standard variant's similarity (sa_lib.model.attention.STANDARD_SIMILARITIES): "correlation", eq. 3 over
    # the bottleneck's positions as super-attention computes it over superpixels. A standard config stored before
    # this field existed means "scaled_dot" (from_dict), so an old checkpoint keeps its own maths and hash.
    standard_similarity: str = "correlation"
    # The SLIC backend the model was trained with (sa_lib.superpixels.pyramid.SLIC_BACKENDS): validation and
    # sa-evaluate use it unless told otherwise; configs stored before the field existed were trained with
    # scikit-image.
    slic_backend: str = "skimage"
    # How each attention block's key projection starts (sa_lib.model.attention.KEY_INITIALISATIONS): "query", this
    # project's choice, a copy of the query projection, so a superpixel matches its twin from the first step;
    # "independent", PyTorch's own random draw, as the paper (which says nothing of it) would have it. A departure
    # with its own ablation row (sa_lib.model.paper_readings, docs/faithfulness.md).
    key_initialisation: str = "query"
    # Inference only (sa_lib.model.predict): the ColorizerConfig fields of a second, separately trained network of the
    # same profile (a paper variant that uses the reference), stored with its weights in the same checkpoint
    # (prefix "blend_partner."); the a*b* are the mean of the two networks' (each with the flip average when it is
    # on), and chroma_gain multiplies that mean. Two networks trained apart make partly different wrong matches,
    # and the paper's attention models copy less from a reference whose colours are wrong for the target: the mean
    # keeps the transfer network's colours where both agree. {}: no partner. Written into a checkpoint by
    # `sa-calibrate-chroma --blend PARTNER` (docs/transfer.md, run "blend").
    blend_partner: dict = field(default_factory=dict)

    def __post_init__(self):
        self.widths, self.encoder_convs = tuple(self.widths), tuple(self.encoder_convs)
        self.upsample_relu = tuple(self.upsample_relu)
        check_authors_switches(self)
        check_key_initialisation(self.key_initialisation)
        if self.standard_similarity not in STANDARD_SIMILARITIES:
            raise ValueError(f"unknown standard_similarity {self.standard_similarity!r}; "
                             f"choose one of {', '.join(STANDARD_SIMILARITIES)}")
        if self.standard_similarity != "correlation" and self.variant != "standard":
            raise ValueError("standard_similarity is an option of the standard variant")
        if self.slic_backend not in SLIC_BACKENDS:
            raise ValueError(f"unknown slic_backend {self.slic_backend!r}; choose one of {', '.join(SLIC_BACKENDS)}")
        check_chroma_gain(self.chroma_gain)
        if self.blend_partner:
            self.blend_partner = json.loads(self.partner_config.to_json())  # normalised; ValueError if invalid
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose one of {', '.join(ENCODERS)}")
        if len(self.widths) != 4 or len(self.encoder_convs) != 4 or min(self.widths) < 1:
            raise ValueError("widths and encoder_convs need 4 positive entries (strides 1, 2, 4, 8)")
        if (self.match_frozen or self.carry_ab or self.ab_residual) and self.variant != "super":
            raise ValueError("match_frozen, carry_ab and ab_residual are options of the super variant")
        if self.match_deep and not self.match_frozen:
            raise ValueError("match_deep adds levels to the frozen matching features: it needs match_frozen")
        if self.frozen_prior and not self.match_deep:
            raise ValueError("frozen_prior reuses match_deep's frozen features of the target: it needs match_deep")
        if self.ab_residual and not self.carry_ab:
            raise ValueError("ab_residual corrects the carried a*b*: it needs carry_ab")
        if (self.match_frozen or self.carry_ab) and self.superpixel_scheme != "contiguous":
            raise ValueError("the transfer options work on contiguous superpixels, not the authors' scheme")

    @classmethod
    def paper(cls, variant: str = "super", encoder: str = "vgg19") -> "ColorizerConfig":
        """The authors' sizes: widths 64/128/256/512, 2/2/3/3 encoder convs, 3 decoder convs, VGG19."""
        return cls(variant=variant, encoder=encoder, widths=(64, 128, 256, 512), encoder_convs=(2, 2, 3, 3),
                   decoder_convs=3)

    @classmethod
    def transfer(cls, **overrides) -> "ColorizerConfig":
        """The demo's transfer model: the paper's `super` with TRANSFER_OPTIONS on (docs/transfer.md)."""
        return cls(**{"variant": "super", **TRANSFER_OPTIONS, **overrides})

    @property
    def name(self) -> str:
        """Table rows and figures: the variant, or "transfer" for super with the transfer options."""
        return "transfer" if self.match_frozen or self.carry_ab or self.ab_residual else self.variant

    @property
    def partner_config(self) -> "ColorizerConfig | None":
        """blend_partner as a config (its own inference-only options at their defaults), or None; ValueError for a
        partner that cannot be blended."""
        if not self.blend_partner:
            return None
        try:
            partner = ColorizerConfig.from_dict(self.blend_partner)
        except TypeError as err:
            raise ValueError(f"blend_partner holds an invalid config ({err})") from None
        if partner.variant not in BLEND_PARTNER_VARIANTS:
            raise ValueError(f"blend_partner must use the reference (variant {' or '.join(BLEND_PARTNER_VARIANTS)}), "
                             f"not {partner.variant!r}")
        if partner.blend_partner:
            raise ValueError("blend_partner has a partner of its own: blend two networks, not more")
        if self.variant == "none":
            raise ValueError("blend_partner is an option of a network that uses the reference, not of variant 'none'")
        return replace(partner, flip_average=False, chroma_gain=1.0)

    @property
    def match_groups(self) -> tuple[tuple[int, ...], ...]:
        """The frozen encoder's levels that match_frozen matches on, one tuple per separately normalised group."""
        if not self.match_frozen:
            return ()
        return (SUPER_LEVELS, DEEP_MATCH_LEVELS) if self.match_deep else (SUPER_LEVELS,)

    @classmethod
    def official(cls) -> "ColorizerConfig":
        """The authors' released network (their gen_color_stride_vgg16 with percep_vgg19_bn), as
        `sa-convert-official` loads their checkpoint into it: the paper's sizes with vgg19_bn and every switch
        of AUTHORS_SWITCHES set their way. docs/official.md lists each difference."""
        return replace(cls.paper("super", "vgg19_bn"), **OFFICIAL_SWITCHES, extra={"preset": "official"})

    def to_json(self) -> str:
        fields = asdict(self)
        for name, default in LATER_FIELDS.items():  # at their defaults: absent, as before they existed
            if fields[name] == default:
                del fields[name]
        if self.variant != "standard":  # an option of the standard variant only: absent elsewhere
            fields.pop("standard_similarity", None)
        return json.dumps(fields, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ColorizerConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, fields: dict) -> "ColorizerConfig":
        """A config from its stored fields (to_json's, or a run's TrainConfig.to_dict()["model"]). A standard
        config without standard_similarity was stored before the field existed: it reads as "scaled_dot"."""
        fields = dict(fields)
        if fields.get("variant") == "standard":  # absent: stored before the field existed (LATER_FIELDS)
            fields.setdefault("standard_similarity", LATER_FIELDS["standard_similarity"])
        return cls(**fields)


# ------------------------------------------------------------------- the authors' network as config switches
# The switches' defaults (this project's network) and the values of the preset ColorizerConfig.official().
AUTHORS_SWITCHES = {"luminance_input": "lstar", "superpixel_scheme": "contiguous", "qk_normalisation": "both",
                    "upsample_relu": (), "ab_scale": AB_SCALE}
OFFICIAL_SWITCHES = {"luminance_input": "rgb2gray", "superpixel_scheme": "authors", "qk_normalisation": "before",
                     "upsample_relu": (0, 1), "ab_scale": 127.0}
LUMINANCE_INPUTS = ("lstar", "rgb2gray")
# luminance_input "rgb2gray": the target's luminance is scikit-image's rgb2gray of its gamma-encoded RGB,
# recovered exactly from L* (sa_lib.core.color.gray_from_lstar); remapped to the reference's L*/100 with whole-image
# population statistics and no epsilon, std(R) / std(T) (T - mean(T)) + mean(R); all of it, and the SLIC
# (which sees the unremapped gray), in float64; cast to float32 only before the networks.
AUTHORS_PREPROCESSING = "rgb2gray"
# superpixel_scheme "authors": sa_lib.superpixels.pyramid.authors_pyramid_labels (scikit-image resize and SLIC in
# float64), pooling over interior pixels only (a 1-pixel frame dropped), and the empty slot-0 superpixel of
# their labels kept as a null token in every softmax (SuperAttention).
AUTHORS_SUPERPIXELS = "authors"
AUTHORS_POOL_BORDER = 1
# Fields added after checkpoints shipped: to_json leaves them out at these values, so every earlier config keeps
# its JSON and its config_hash.
# standard_similarity's default changed when the field came ("correlation"): from_dict reads an absent one as the
# earlier maths, "scaled_dot", and to_json leaves "scaled_dot" out so those checkpoints keep their hash.
LATER_FIELDS = {**TRANSFER_OFF, **AUTHORS_SWITCHES, "standard_similarity": "scaled_dot",
                "slic_backend": "skimage", "frozen_prior": False, "key_initialisation": "query",
                "chroma_gain": 1.0, "blend_partner": {}}  # flip_average: in TRANSFER_OFF


def check_chroma_gain(gain: float) -> float:
    """`gain`, or a one-line ValueError if it is outside CHROMA_GAIN_RANGE (or NaN)."""
    low, high = CHROMA_GAIN_RANGE
    if not low <= gain <= high:  # NaN fails too
        raise ValueError(f"chroma_gain {gain} is outside [{low:g}, {high:g}]")
    return gain


def check_authors_switches(config: "ColorizerConfig") -> None:
    """One-line ValueError for a switch of AUTHORS_SWITCHES with an unknown value."""
    choices = {"luminance_input": LUMINANCE_INPUTS, "superpixel_scheme": SUPERPIXEL_SCHEMES,
               "qk_normalisation": QK_NORMALISATIONS}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ValueError(f"unknown {name} {getattr(config, name)!r}; choose one of {', '.join(allowed)}")
    if any(level not in (0, 1, 2) for level in config.upsample_relu):
        raise ValueError(f"upsample_relu takes decoder levels 0, 1 and 2, got {config.upsample_relu}")


def super_attention_switches(config: "ColorizerConfig") -> dict:
    """SuperAttention's keyword arguments for the config's switches and its key initialisation."""
    authors = config.superpixel_scheme == AUTHORS_SUPERPIXELS
    return {"qk_normalisation": config.qk_normalisation, "border": AUTHORS_POOL_BORDER if authors else 0,
            "null_token": authors, "key_initialisation": config.key_initialisation}


def authors_luminance(t_gray: torch.Tensor, reference_rgb: torch.Tensor, remap: bool = True
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """AUTHORS_PREPROCESSING of the target's float64 gray (B, 1, H, W) (gray_from_lstar): the reference's L*/100
    (B, 1, H', W') in float64 for SLIC, and the target gray remapped to it, in float32 for the encoder."""
    r_gray = normalize_l(rgb_to_lab(reference_rgb.double())[:, :1])  # (B, 1, H', W') L*/100, float64
    if not remap:
        return r_gray, t_gray.float()
    t_mean, r_mean = t_gray.mean(dim=(2, 3), keepdim=True), r_gray.mean(dim=(2, 3), keepdim=True)
    t_std = t_gray.std(dim=(2, 3), correction=0, keepdim=True).clamp_min(1e-12)  # np.std; no NaN on a flat target
    r_std = r_gray.std(dim=(2, 3), correction=0, keepdim=True)
    remapped = r_std / t_std * (t_gray - t_mean) + r_mean  # (B, 1, H, W)
    return r_gray, remapped.float()


def conv_block(in_channels: int, out_channels: int, n_convs: int) -> nn.Sequential:
    """n x (3x3 conv + BatchNorm + ReLU)."""
    layers = []
    for i in range(n_convs):
        layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=False),
                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def in_strips(fn, inputs: list[torch.Tensor], halo: int, rows: int) -> torch.Tensor:
    """fn(*inputs) computed in horizontal strips of `rows` rows, each read with `halo` extra rows on both
    sides and cropped back: equal to fn(*inputs) when fn's receptive field reaches at most `halo` rows
    (n stacked 3x3 convs: halo n) and it is pointwise otherwise (inference BatchNorm, ReLU, 1x1 convs)."""
    height = inputs[0].shape[-2]
    outputs = []
    for start in range(0, height, rows):
        stop = min(height, start + rows)
        top, bottom = max(0, start - halo), min(height, stop + halo)
        out = fn(*(t[..., top:bottom, :] for t in inputs))  # (B, C, bottom - top, W)
        outputs.append(out[..., start - top:stop - top, :])
    return torch.cat(outputs, dim=-2)


def match_luminance(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Remap each target's luminance (B, 1, H, W) to its reference's per-image mean and std."""
    t_mean, t_std = target.mean(dim=(2, 3), keepdim=True), target.std(dim=(2, 3), keepdim=True)
    r_mean, r_std = reference.mean(dim=(2, 3), keepdim=True), reference.std(dim=(2, 3), keepdim=True)
    return (target - t_mean) / (t_std + 1e-6) * r_std + r_mean


class Colorizer(nn.Module):
    """Phi(T_L | R) -> T_ab. See the module docstring for the data flow."""

    def __init__(self, config: ColorizerConfig, pretrained: bool = True):
        super().__init__()
        self.config = config
        w = config.widths
        self.encoder = nn.ModuleList([conv_block(1 if i == 0 else w[i - 1], w[i], config.encoder_convs[i])
                                      for i in range(4)])  # siamese: shared by target L and reference L
        self.attention_levels = {"none": (), "standard": (BOTTLENECK,), "super": SUPER_LEVELS}[config.variant]
        max_level = max(DEEP_MATCH_LEVELS) if config.match_deep else BOTTLENECK
        self.color_encoder = (build_color_encoder(config.encoder, pretrained, max_level)
                              if self.attention_levels else None)
        if config.variant == "super":
            groups = tuple(sum(self.color_encoder.channels[l] for l in group) for group in config.match_groups)
            match = sum(groups)
            self.attention = nn.ModuleDict({str(l): SuperAttention(
                w[l], self.color_encoder.channels[l], w[l] + match, w[l], config.tau, match_channels=match,
                carry_ab=config.carry_ab, match_groups=groups, **super_attention_switches(config))
                for l in SUPER_LEVELS})
        elif config.variant == "standard":
            self.attention = nn.ModuleDict({str(BOTTLENECK): StandardAttention(
                w[BOTTLENECK], self.color_encoder.channels[BOTTLENECK], w[BOTTLENECK], w[BOTTLENECK], config.tau,
                similarity=config.standard_similarity, key_initialisation=config.key_initialisation)})
            self.bottleneck_fusion = nn.Conv2d(2 * w[BOTTLENECK], w[BOTTLENECK], 1)
        else:
            self.attention = nn.ModuleDict()
        self.upsample = nn.ModuleList([nn.ConvTranspose2d(w[l + 1], w[l], 4, stride=2, padding=1)
                                       for l in range(3)])
        hint_channels = [self.attention[str(l)].hint_channels if l in self.attention_levels else 0
                         for l in range(3)]
        self.fusion = nn.ModuleList([nn.Conv2d(2 * w[l] + hint_channels[l], w[l], 1) for l in range(3)])
        self.decoder = nn.ModuleList([conv_block(w[l], w[l], config.decoder_convs) for l in range(3)])
        self.head = nn.Conv2d(w[0], 2, 1)
        if config.frozen_prior:  # registered last, so the other parameters keep their order (a resumed optimizer)
            deep = sum(self.color_encoder.channels[l] for l in DEEP_MATCH_LEVELS)
            self.prior_projection = nn.Conv2d(deep, w[BOTTLENECK], 1)
            nn.init.zeros_(self.prior_projection.weight)  # starts as the network without it
            nn.init.zeros_(self.prior_projection.bias)
        partner = config.partner_config
        # ColorizerConfig.blend_partner: the second network, run beside this one by sa_lib.model.predict.predict_ab
        self.blend_partner = None if partner is None else Colorizer(partner, pretrained)

    def encode(self, luminance: torch.Tensor) -> list[torch.Tensor]:
        """U-Net encoder f: (B, 1, H, W) in [0, 1] -> features at strides 1, 2, 4, 8."""
        features, x = [], luminance
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            features.append(x)
        return features

    def forward(self, target_l: torch.Tensor, reference_rgb: torch.Tensor | None = None,
                target_superpixels: SuperpixelPyramid | None = None,
                reference_superpixels: SuperpixelPyramid | None = None,
                slic_backend: str = "auto") -> tuple[torch.Tensor, dict]:
        """Predict the target's ab.

        target_l: (B, 1, H, W) L* in [0, 100]. reference_rgb: (B, 3, H', W') sRGB in [0, 1], required unless
        variant "none". Superpixel pyramids (3 levels) may be precomputed (e.g. in DataLoader workers); they
        are computed here with SLIC otherwise, with `slic_backend` (sa_lib.superpixels.pyramid.SLIC_BACKENDS or "auto").
        Returns ab (B, 2, H, W) in Lab units and intermediates:
        "attention": {level: (B, S_T, S_R) map}, "target_superpixels" / "reference_superpixels" (pyramids),
        "target_counts" / "reference_counts" (for super-attention: real superpixels per image per level).
        """
        if target_l.dim() != 4 or target_l.shape[1] != 1:
            raise ValueError(f"target_l must be (B, 1, H, W), got {tuple(target_l.shape)}")
        if min(target_l.shape[-2:]) < 8:
            raise ValueError(f"target is too small ({tuple(target_l.shape[-2:])}); need at least 8 x 8 pixels")
        intermediates: dict = {"attention": {}}
        authors = self.config.luminance_input == AUTHORS_PREPROCESSING
        t_in = gray_from_lstar(target_l.double()) if authors else normalize_l(target_l)  # (B, 1, H, W) in [0, 1]
        hints: dict[int, torch.Tensor] = {}
        if self.attention_levels:
            if reference_rgb is None:
                raise ValueError(f"variant {self.config.variant!r} needs a reference image")
            if authors:  # float64 grays for SLIC, float32 remapped target for the encoder
                r_in, t_in_encoder = authors_luminance(t_in, reference_rgb, self.config.match_luminance)
            else:
                r_in = normalize_l(rgb_to_lab(reference_rgb)[:, :1])  # (B, 1, H', W') reference L in [0, 1]
                t_in_encoder = match_luminance(t_in, r_in) if self.config.match_luminance else t_in
            f_t, f_r = self.encode(t_in_encoder), self.encode(r_in.float())
            reference_rgb = reference_rgb.float()
            phi_r = self.color_encoder(reference_rgb, {l: f_r[l].shape[-2:] for l in self.attention_levels})
            extra = self._transfer_inputs(t_in, r_in, reference_rgb)
            prior = extra.pop("target_prior", None)  # frozen_prior: the target's frozen maps of levels 3-4
            hints = self._attend(f_t, f_r, phi_r, t_in, r_in, target_superpixels, reference_superpixels,
                                 intermediates, slic_backend, extra)
            del extra
            del f_r, phi_r, r_in  # the reference acts only through the hints: free it before the decoder
        else:
            f_t = self.encode(t_in.float())
            prior = None

        x = f_t[BOTTLENECK]
        if prior is not None:  # (B, C3, h, w) and (B, C4, h/2, w/2) at strides 16, 32 -> (B, w3, H/8, W/8), added
            size = x.shape[-2:]
            deep = torch.cat([F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in prior], 1)
            x = x + self.prior_projection(deep)
            del prior, deep
        if BOTTLENECK in hints:
            x = self.bottleneck_fusion(torch.cat([x, hints[BOTTLENECK]], dim=1))
        for level in (2, 1, 0):
            skip = f_t[level]
            x = self.upsample[level](x)
            if level in self.config.upsample_relu:  # the authors' decoder (ColorizerConfig.official)
                x = F.relu(x)
            if x.shape[-2:] != skip.shape[-2:]:  # odd sizes: the max-pool floored, so resize to the skip
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            parts = [x, hints[level], skip] if level in hints else [x, skip]
            if level == 0:
                break
            x = self.decoder[level](self.fusion[level](torch.cat(parts, dim=1)))
        del f_t, hints, x, skip  # level 0's inputs live on in `parts` only
        head = self._decode_full_resolution
        lean = not self.training and not torch.is_grad_enabled() and parts[0][0, 0].numel() > STRIP_MIN_PIXELS
        ab = in_strips(head, parts, self.config.decoder_convs, STRIP_ROWS) if lean else head(*parts)
        return ab, intermediates

    def _decode_full_resolution(self, *parts: torch.Tensor) -> torch.Tensor:
        """Last decoder stage and head: [upsampled, (hints,) skip] at full resolution -> ab (B, 2, H, W)."""
        x = self.decoder[0](self.fusion[0](torch.cat(parts, dim=1)))
        logits = self.head(x)  # (B, 2, H, W)
        if self.config.ab_residual:  # carry_ab's hints end with [a*, b*, confidence]: correct the carried a*b*
            logits = logits + torch.atanh(parts[1][:, -3:-1].clamp(-0.99, 0.99))
        return torch.tanh(logits) * self.config.ab_scale  # (B, 2, H, W) a*, b* in Lab units

    def _transfer_inputs(self, t_in: torch.Tensor, r_in: torch.Tensor, reference_rgb: torch.Tensor) -> dict:
        """Inputs of the transfer options, per level: frozen matching features of the two gray images
        (match_frozen) and the reference's network-scale a*b* at each level's size (carry_ab)."""
        extra: dict = {}
        levels = len(SUPER_LEVELS)
        if self.config.match_frozen:
            frozen_levels = [l for group in self.config.match_groups for l in group]
            with torch.no_grad():  # phi is frozen: its features of the gray images only steer the matching
                for side, gray in (("target", t_in), ("reference", r_in)):
                    maps = self.color_encoder(gray.expand(-1, 3, -1, -1), {l: None for l in frozen_levels})
                    # (B, sum C, h_l, w_l) at each level, resized a few channels at a time as the attention
                    # pools them: 512 channels at full resolution are never held at once.
                    extra[f"{side}_match"] = {l: ResizedMaps(tuple(maps[m] for m in frozen_levels), size)
                                              for l, size in enumerate(level_sizes(*gray.shape[-2:], levels))}
                    if side == "target" and self.config.frozen_prior:
                        extra["target_prior"] = tuple(maps[m] for m in DEEP_MATCH_LEVELS)
        if self.config.carry_ab:
            ab = rgb_to_lab(reference_rgb)[:, 1:] / AB_SCALE  # (B, 2, H', W') network-scale a*b*
            extra["reference_ab"] = {l: ab if l == 0 else F.interpolate(ab, size=size, mode="area")
                                     for l, size in enumerate(level_sizes(*ab.shape[-2:], levels))}
        return extra

    def _attend(self, f_t, f_r, phi_r, t_in, r_in, target_sp, reference_sp, intermediates,
                slic_backend: str = "auto", extra: dict | None = None) -> dict:
        """Run the attention blocks; returns hints per level and records maps and superpixels."""
        hints = {}
        if self.config.variant == "standard":
            hints[BOTTLENECK], attn = self.attention[str(BOTTLENECK)](f_t[BOTTLENECK], f_r[BOTTLENECK],
                                                                      phi_r[BOTTLENECK])
            intermediates["attention"][BOTTLENECK] = attn  # (B, H_T W_T, H_R W_R)
            return hints
        levels = len(SUPER_LEVELS)
        scheme = self.config.superpixel_scheme
        if target_sp is None:
            target_sp = SuperpixelPyramid.from_gray(t_in, levels, self.config.slic_compactness, slic_backend, scheme)
        if reference_sp is None:
            reference_sp = SuperpixelPyramid.from_gray(r_in, levels, self.config.slic_compactness, slic_backend,
                                                       scheme)
        for level in SUPER_LEVELS:
            t_lab, r_lab = target_sp.labels[level], reference_sp.labels[level]
            if t_lab.shape[-2:] != f_t[level].shape[-2:] or r_lab.shape[-2:] != f_r[level].shape[-2:]:
                raise ValueError(f"superpixel grid of level {level} does not match the feature map size")
            options = {k: v[level] for k, v in (extra or {}).items()}
            hints[level], attn = self.attention[str(level)](
                f_t[level], f_r[level], phi_r[level], t_lab, r_lab,
                target_sp.counts[level], reference_sp.counts[level], **options)
            intermediates["attention"][level] = attn  # (B, S_T, S_R)
        intermediates.update(target_superpixels=target_sp, reference_superpixels=reference_sp,
                             target_counts=target_sp.counts, reference_counts=reference_sp.counts)
        return hints


def build_model(variant: str = "super", encoder: str = "effnet_lite0", pretrained: bool = True,
                config: ColorizerConfig | None = None, **overrides) -> Colorizer:
    """Named factory: build_model("super" | "standard" | "none" | "transfer", encoder=..., pretrained=...).

    `pretrained=False` builds the same network with a randomly initialised colour encoder (tests, offline
    VGG). `config` (e.g. ColorizerConfig.paper()) sets the sizes; variant/encoder/overrides replace fields.
    "transfer" is the super variant with TRANSFER_OPTIONS (not in the paper).
    """
    if variant == "transfer":
        variant, overrides = "super", {**TRANSFER_OPTIONS, **overrides}
    base = config or ColorizerConfig()
    return Colorizer(replace(base, variant=variant, encoder=encoder, **overrides), pretrained=pretrained)
