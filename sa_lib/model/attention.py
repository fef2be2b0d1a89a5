"""Attention between target and reference features: super-attention (the paper) and standard attention.

SuperAttention (section 3.2, eq. 2 and 3) works on superpixels: features are max-pooled inside each
superpixel into super-features F (C x N), so the attention map is N_T x N_R (a few hundred per side)
instead of HW x HW. StandardAttention is the dense block used at the bottleneck in the ablation, with the same
eq. 3 correlation over feature positions instead of superpixels (STANDARD_SIMILARITIES), so that the ablation
changes one thing. Both return their attention maps so they can be inspected without hooks.

Precision: both blocks compute their query/key path, correlation, softmax and hints in float32 with autocast
switched off inside them (`_float32`), whatever the caller's autocast: with tau = 0.01 a bf16 correlation moves
the logits in steps of about 0.4 and flips argmaxes.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..superpixels.pyramid import (ResizedMaps, interior_counts, superpixel_mean, superpixel_pool, superpixel_unpool,
                                   valid_mask)

DEFAULT_TAU = 0.01  # softmax temperature of eq. 2, fixed as in the authors' code
AB_HINT_CHANNELS = 3  # carry_ab: the attended reference a*b* (2) and the match confidence (1)
# How query and key are normalised (ColorizerConfig.qk_normalisation): "both" (this project): unit norm before and
# after the 1x1 projections; "before" (the authors' code): x / (||x|| + 1e-5) before them only.
QK_NORMALISATIONS = ("both", "before")
# How the key projection starts (ColorizerConfig.key_initialisation): "query" (this project): a copy of the query
# projection (share_initialisation); "independent" (PyTorch's default, the paper's silence): its own random draw.
KEY_INITIALISATIONS = ("query", "independent")
AUTHORS_NORM_EPS = 1e-5
# StandardAttention's similarity (ColorizerConfig.standard_similarity): "correlation" is eq. 3 over feature
# positions (centred, unit-norm learned projections, softmax(M / tau)), the same maths as SuperAttention;
# "scaled_dot" is the plain softmax(q.k / sqrt(C_k)) of demo-standard checkpoints trained before it existed.
STANDARD_SIMILARITIES = ("correlation", "scaled_dot")


def _float32(*tensors):
    """(autocast switched off on the tensors' device, the tensors as float32): the attention's numerics. An
    argument may also be None, or ResizedMaps (the matching features, resized as they are pooled)."""
    device_type = tensors[0].device.type
    guard = (torch.autocast(device_type, enabled=False) if device_type in ("cpu", "cuda", "mps", "xpu")
             else contextlib.nullcontext())

    def as_float32(t):
        if isinstance(t, ResizedMaps):
            return ResizedMaps(tuple(m.float() for m in t.maps), t.size)
        return t.float() if t is not None and t.is_floating_point() else t
    return guard, [as_float32(t) for t in tensors]


def centre_and_normalise(super_features: torch.Tensor, additive_eps: float | None = None) -> torch.Tensor:
    """Eq. 3's (F(i) - mu) / ||F(i) - mu||: centre each super-feature over its channels, then unit L2 norm.

    (B, C, S) -> (B, C, S). additive_eps: divide by ||.|| + additive_eps instead (the authors' code, 1e-5).
    """
    centred = super_features - super_features.mean(dim=1, keepdim=True)
    if additive_eps is not None:
        return centred / (centred.norm(dim=1, keepdim=True) + additive_eps)
    return F.normalize(centred, dim=1, eps=1e-6)


def identity_initialisation(query: nn.Module, key: nn.Module) -> None:
    """Start both projections as the identity (square 1x1 convs): the similarity then starts as the cosine of
    the concatenated, separately normalised parts, i.e. the mean of each part's own eq. 3 correlation."""
    with torch.no_grad():
        for conv in (query, key):
            if conv.weight.shape[0] != conv.weight.shape[1]:
                raise ValueError("identity initialisation needs as many key channels as input channels")
            conv.weight.copy_(torch.eye(conv.weight.shape[0])[:, :, None])
            conv.bias.zero_()


def check_key_initialisation(name: str) -> str:
    """`name`, or a one-line ValueError naming KEY_INITIALISATIONS."""
    if name not in KEY_INITIALISATIONS:
        raise ValueError(f"unknown key_initialisation {name!r}; choose one of {', '.join(KEY_INITIALISATIONS)}")
    return name


def share_initialisation(query: nn.Module, key: nn.Module) -> None:
    """Start the key projection as a copy of the query projection (they then train independently).

    At initialisation the learned similarity is then eq. 3's plain correlation in a random projection:
    a superpixel matches its identical twin (M = 1), so with the ground truth as reference (a quarter of
    the training pairs) the attention is right from the first step and the decoder learns to use the
    colour hints. With independent random projections and tau = 0.01 the softmax starts saturated on
    arbitrary superpixels and the hints are noise the decoder learns to ignore.
    """
    with torch.no_grad():
        key.weight.copy_(query.weight)
        key.bias.copy_(query.bias)


class SuperAttention(nn.Module):
    """Super-attention block: learned correlation between target and reference super-features.

    M(i, j) is the cosine between learned 1x1 projections of the centred, normalised super-features of
    target superpixel i and reference superpixel j (eq. 3 with the learned projections the paper adds);
    A = softmax(M / tau) row-wise over the reference superpixels (eq. 2). The output of target superpixel i
    is sum_j A(i, j) V(j), with V a 1x1 projection of the colour encoder's super-features phi_R, unpooled to
    the target's pixels. We re-normalise after the projections so that M stays a correlation in [-1, 1] and
    tau = 0.01 keeps the meaning eq. 2 gives it (the authors' code projects normalised features and does not
    re-normalise).
    """

    def __init__(self, feature_channels: int, color_channels: int, key_channels: int, value_channels: int,
                 tau: float = DEFAULT_TAU, match_channels: int = 0, carry_ab: bool = False,
                 qk_normalisation: str = "both", border: int = 0, null_token: bool = False,
                 match_groups: tuple[int, ...] = (), key_initialisation: str = "query"):
        super().__init__()
        check_key_initialisation(key_initialisation)
        if match_groups and sum(match_groups) != match_channels:
            raise ValueError(f"match_groups {match_groups} must add up to match_channels {match_channels}")
        self.match_groups = tuple(match_groups) or ((match_channels,) if match_channels else ())
        self.tau = tau
        self.carry_ab = carry_ab
        self.query = nn.Conv1d(feature_channels + match_channels, key_channels, kernel_size=1)
        self.key = nn.Conv1d(feature_channels + match_channels, key_channels, kernel_size=1)
        self.value = nn.Conv1d(color_channels, value_channels, kernel_size=1)
        if key_initialisation == "query":
            share_initialisation(self.query, self.key)
        if match_channels and key_channels == feature_channels + match_channels:
            identity_initialisation(self.query, self.key)  # the frozen features' matching from the first step
        if qk_normalisation not in QK_NORMALISATIONS:
            raise ValueError(f"unknown qk_normalisation {qk_normalisation!r}; choose {', '.join(QK_NORMALISATIONS)}")
        # The authors' network (ColorizerConfig.official): see _project, superpixel_pool's border, _null_token.
        self.qk_normalisation, self.border, self.null_token = qk_normalisation, border, null_token

    @property
    def hint_channels(self) -> int:
        """Channels of the hints it returns: the values, plus a*b* and confidence with carry_ab."""
        return self.value.out_channels + (AB_HINT_CHANNELS if self.carry_ab else 0)

    def forward(self, target_features: torch.Tensor, reference_features: torch.Tensor,
                reference_colors: torch.Tensor, target_labels: torch.Tensor, reference_labels: torch.Tensor,
                target_counts: torch.Tensor, reference_counts: torch.Tensor,
                target_match: torch.Tensor | ResizedMaps | None = None,
                reference_match: torch.Tensor | ResizedMaps | None = None,
                reference_ab: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, C, H_T, W_T) / (B, C, H_R, W_R), colours (B, C_phi, H_R, W_R), labels (B, H, W),
        counts (B,). Returns the colour hints (B, hint_channels, H_T, W_T) and the attention (B, S_T, S_R),
        whose padding rows and columns are 0. With null_token the attention has one more, last, column: the
        empty superpixel's weight.

        Options beyond the paper (see ColorizerConfig): `target_match` / `reference_match` (B, C_m, H, W), or
        ResizedMaps that read as such (superpixel_pool), are extra matching features (the frozen encoder's, of
        the gray images), pooled, centred and normalised on their own and concatenated to the learned
        super-features before the query/key projections;
        `reference_ab` (B, 2, H_R, W_R) network-scale a*b* of the reference, averaged per superpixel and
        carried by the same attention, followed by the match confidence (each row's largest weight).
        Runs in float32 with autocast off (module docstring); returns float32.
        """
        guard, (target_features, reference_features, reference_colors, target_match, reference_match,
                reference_ab) = _float32(target_features, reference_features, reference_colors, target_match,
                                         reference_match, reference_ab)
        with guard:
            return self._attend(target_features, reference_features, reference_colors, target_labels,
                                reference_labels, target_counts, reference_counts, target_match, reference_match,
                                reference_ab)

    def _attend(self, target_features, reference_features, reference_colors, target_labels, reference_labels,
                target_counts, reference_counts, target_match, reference_match, reference_ab):
        s_t, s_r = int(target_counts.max()), int(reference_counts.max())
        if self.border:  # superpixels numbered past the last one with an interior pixel drop out (authors)
            target_counts = torch.minimum(target_counts, interior_counts(target_labels, self.border))
            reference_counts = torch.minimum(reference_counts, interior_counts(reference_labels, self.border))
        f_t = superpixel_pool(target_features, target_labels, s_t, self.border)  # (B, C, S_T) target super-features
        f_r = superpixel_pool(reference_features, reference_labels, s_r, self.border)  # (B, C, S_R) reference's
        colors = superpixel_pool(reference_colors, reference_labels, s_r, self.border)  # (B, C_phi, S_R)
        project = self._project
        if target_match is not None:  # match_frozen: each part centred and normalised apart, then projected
            f_t = self._with_match(f_t, superpixel_pool(target_match, target_labels, s_t, self.border))  # (B, C + C_m, S_T)
            f_r = self._with_match(f_r, superpixel_pool(reference_match, reference_labels, s_r, self.border))  # (B, C + C_m, S_R)
            project = self._project_normalised
        ref_valid = valid_mask(reference_counts, s_r)  # (B, S_R)
        if self.null_token:
            f_r, colors, ref_valid = self._null_token(f_r, colors, ref_valid)  # S_R + 1 slots, the last one empty
        values = self.value(colors)  # (B, C_v, S_R)

        q = project(self.query, f_t)  # (B, C_k, S_T)
        k = project(self.key, f_r)  # (B, C_k, S_R)
        correlation = torch.bmm(q.transpose(1, 2), k)  # (B, S_T, S_R), entries in [-1, 1] ("both")

        ref_valid = ref_valid[:, None, :]  # (B, 1, S_R)
        attention = torch.softmax((correlation / self.tau).masked_fill(~ref_valid, float("-inf")), dim=-1)
        attention = attention * valid_mask(target_counts, s_t)[:, :, None]  # (B, S_T, S_R), padding rows 0

        hints = torch.bmm(values, attention.transpose(1, 2))  # (B, C_v, S_T) colour hint per target superpixel
        if self.carry_ab:
            if reference_ab is None:
                raise ValueError("this attention block carries a*b* (carry_ab): pass reference_ab")
            ab = torch.bmm(superpixel_mean(reference_ab, reference_labels, s_r), attention.transpose(1, 2))  # (B, 2, S_T)
            confidence = attention.amax(dim=2)[:, None, :]  # (B, 1, S_T) weight of each row's best match
            hints = torch.cat([hints, ab, confidence], dim=1)  # (B, C_v + 3, S_T)
        return superpixel_unpool(hints, target_labels), attention

    def _with_match(self, learned: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
        """[learned, group 1, group 2...] super-features (B, C + C_m, S), each part centred and normalised."""
        groups = torch.split(match, self.match_groups, dim=1)  # each (B, C_g, S)
        return torch.cat([centre_and_normalise(part) for part in (learned, *groups)], dim=1)

    @staticmethod
    def _project_normalised(conv: nn.Conv1d, normalised: torch.Tensor) -> torch.Tensor:
        """Query or key (B, C_k, S) of super-features already centred and normalised part by part."""
        return F.normalize(conv(normalised), dim=1, eps=1e-6)

    def _project(self, conv: nn.Conv1d, super_features: torch.Tensor) -> torch.Tensor:
        """Query or key (B, C_k, S) of centred super-features (B, C, S), normalised as qk_normalisation says."""
        if self.qk_normalisation == "before":  # the authors' code: no re-normalisation after the projection
            return conv(centre_and_normalise(super_features, AUTHORS_NORM_EPS))
        return F.normalize(conv(centre_and_normalise(super_features)), dim=1, eps=1e-6)

    @staticmethod
    def _null_token(f_r: torch.Tensor, colors: torch.Tensor, valid: torch.Tensor):
        """Append the authors' empty slot-0 superpixel as a last reference slot: zero features, always attended.

        Its key is then key_conv's bias and its value value_conv's bias, as in their code, where SLIC numbers
        superpixels from 1 and slot 0 of scatter_max stays 0. (B, C, S) -> (B, C, S + 1); valid (B, S) -> (B, S + 1).
        """
        def zero_slot(x):
            return torch.cat([x, x.new_zeros(x.shape[0], x.shape[1], 1)], dim=2)

        return zero_slot(f_r), zero_slot(colors), torch.cat([valid, valid.new_ones(valid.shape[0], 1)], dim=1)


class StandardAttention(nn.Module):
    """Dense (non-local) attention over every position of the feature maps: the ablation's bottleneck block.

    Its map is (H_T W_T) x (H_R W_R): quadratic in pixels, which is why it only fits at the bottleneck.
    similarity "correlation" (default): eq. 3 and 2 with every feature position in place of a superpixel, as
    SuperAttention computes them (qk_normalisation "both"): M(i, j) is the cosine between the learned 1x1
    projections of the centred, normalised feature vectors at target position i and reference position j, and
    A = softmax(M / tau). "scaled_dot": softmax(q.k / sqrt(C_k)) on raw projections (checkpoints made before).
    """

    def __init__(self, feature_channels: int, color_channels: int, key_channels: int, value_channels: int,
                 tau: float = DEFAULT_TAU, similarity: str = "correlation", key_initialisation: str = "query"):
        super().__init__()
        check_key_initialisation(key_initialisation)
        if similarity not in STANDARD_SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; choose {', '.join(STANDARD_SIMILARITIES)}")
        self.similarity, self.tau = similarity, tau
        self.scale = key_channels ** -0.5
        self.query = nn.Conv2d(feature_channels, key_channels, kernel_size=1)
        self.key = nn.Conv2d(feature_channels, key_channels, kernel_size=1)
        self.value = nn.Conv2d(color_channels, value_channels, kernel_size=1)
        if key_initialisation == "query":  # same start as SuperAttention, for a fair ablation
            share_initialisation(self.query, self.key)

    def forward(self, target_features: torch.Tensor, reference_features: torch.Tensor,
                reference_colors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the colour hints (B, value_channels, H_T, W_T) and the attention (B, H_T W_T, H_R W_R),
        computed in float32 with autocast off (module docstring)."""
        guard, (target_features, reference_features, reference_colors) = _float32(
            target_features, reference_features, reference_colors)
        with guard:
            b, _, h, w = target_features.shape
            q = self._project(self.query, target_features)  # (B, C_k, N_T) one token per target position
            k = self._project(self.key, reference_features)  # (B, C_k, N_R)
            v = self.value(reference_colors).flatten(2)  # (B, C_v, N_R)
            similarity = torch.bmm(q.transpose(1, 2), k)  # (B, N_T, N_R)
            if self.similarity == "correlation":
                attention = torch.softmax(similarity / self.tau, dim=-1)  # M in [-1, 1], eq. 2
            else:
                attention = torch.softmax(similarity * self.scale, dim=-1)
            hints = torch.bmm(v, attention.transpose(1, 2))  # (B, C_v, N_T)
            return hints.reshape(b, -1, h, w), attention  # (B, C_v, H, W) hints, (B, N_T, N_R) attention

    def _project(self, conv: nn.Conv2d, features: torch.Tensor) -> torch.Tensor:
        """Query or key tokens (B, C_k, N) of features (B, C, H, W): eq. 3's vectors (centred over the channels
        at each position, unit norm) projected and normalised again ("correlation"), or the raw projection."""
        if self.similarity == "scaled_dot":
            return conv(features).flatten(2)  # (B, C_k, H W)
        return F.normalize(conv(centre_and_normalise(features)).flatten(2), dim=1, eps=1e-6)  # (B, C_k, H W)
