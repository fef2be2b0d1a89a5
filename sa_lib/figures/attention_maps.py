"""Where a target superpixel looks in the reference: one row of a super-attention map, as pictures.

At each of its three levels the super model computes an attention map A of shape (S_T, S_R) between the
target's and the reference's superpixels (eq. 2). Row i of A is how much target superpixel i draws from
each reference superpixel: its colour features are the A[i]-weighted mix of theirs. This module runs the
model once on a pair (`compute_pair_attention`), keeps everything as plain numpy (`PairAttention`), and
turns a row into pictures: the target with superpixel i outlined, the reference lit by A[i] (per pixel,
through the reference's superpixel labels), the matrix with row i marked, and the colour i received. The
paper's Fig. 3 (`fig3_attention`) and the notebook explorer (sa_lib.figures.explorer) are drawn from these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from ..core.files import atomic_write, output_dir  # noqa: E402
from ..data.pairs import Pair, load_full_pair, read_pairs  # noqa: E402
from ..inference.colorize import colorize_detailed  # noqa: E402
from ..model.checkpoint import DEFAULT_CHECKPOINT  # noqa: E402
from ..profiles import get_profile  # noqa: E402

LEVELS = (0, 1, 2)
LEVEL_NAMES = {0: "full resolution", 1: "1/2 resolution", 2: "1/4 resolution"}
OUTLINE = (1.0, 0.1, 0.1)  # red, as the marked row of the paper's Fig. 3
DIM = 0.15  # brightness of a reference superpixel with zero attention (so the scene stays readable)


# ------------------------------------------------------------------------------------------------ pairs


@dataclass(frozen=True)
class AttentionSettings:
    """What a profile uses: which checkpoint, at which working size, on which pairs."""

    checkpoint: str
    working_size: int  # long side (px) at which the network, and so the attention, runs
    pairs: tuple[Pair, ...]
    figure_pair: int  # index into `pairs` of the pair drawn as Fig. 3
    compare: bool = True  # the explorer also shows the pair coloured by the paper's super model and [17]


def profile_settings(profile: str) -> AttentionSettings:
    """What a profile of sa_lib.profiles shows (its `attention_*` fields). smoke: 2 demo pairs at 128 px (seconds);
    demo: the matched pairs (a different photo of the same kind of subject as reference) then the 38 ranked pairs,
    at 256 px, with the default checkpoint (demo-transfer); paper: the COCO pairs with checkpoints/paper-super
    (what notebook 02 publishes in the paper profile)."""
    settings = get_profile(profile)
    photos = settings.photos
    pairs = [pair for name in settings.attention_pair_files
             for pair in read_pairs(photos.root() / name, photos.target_dir(), photos.reference_dir())]
    unique: dict[tuple, Pair] = {}  # a pair in both files (same target, reference and crop) is shown once, first
    for pair in pairs:
        unique.setdefault((pair.target, pair.reference, pair.box), pair)
    pairs = list(unique.values())
    if settings.attention_targets:
        pairs = [next(p for p in pairs if p.target == target) for target in settings.attention_targets]
    figure = next((i for i, p in enumerate(pairs) if p.target == settings.attention_figure_target), 0)
    return AttentionSettings(settings.attention_checkpoint, settings.attention_working_size, tuple(pairs), figure,
                             compare=settings.attention_compare)


# --------------------------------------------------------------------------------------- model outputs


@dataclass
class PairAttention:
    """One pair's super-attention, on the CPU: the images at the size the network ran and, per level, the
    attention map and both superpixel label grids (at that level's feature-map size)."""

    gray: np.ndarray  # (h, w) target L* / 100, in [0, 1]
    reference: np.ndarray  # (h', w', 3) sRGB in [0, 1]
    colour: np.ndarray  # (h, w, 3) the colorized target, in [0, 1]
    attention: dict[int, np.ndarray]  # level -> (S_T, S_R), rows sum to 1
    target_labels: dict[int, np.ndarray]  # level -> (h_l, w_l) ints in [0, S_T)
    reference_labels: dict[int, np.ndarray]  # level -> (h'_l, w'_l) ints in [0, S_R)
    name: str = ""
    model: str = ""  # the checkpoint that computed it (its name, or its file's name), for titles
    _pixel_labels: dict = field(default_factory=dict, repr=False)  # cache of labels upsampled to pixels

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(sorted(self.attention))

    def superpixel_count(self, level: int) -> int:
        return self.attention[level].shape[0]

    def pixel_labels(self, level: int, side: str = "target") -> np.ndarray:
        """A level's labels at the image's pixel size (nearest neighbour): (h, w) or (h', w')."""
        key = (level, side)
        if key not in self._pixel_labels:
            labels = self.target_labels[level] if side == "target" else self.reference_labels[level]
            shape = self.gray.shape if side == "target" else self.reference.shape[:2]
            self._pixel_labels[key] = upsample_labels(labels, shape)
        return self._pixel_labels[key]


def upsample_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h_l, w_l) label grid -> (H, W), nearest neighbour, so every pixel gets its superpixel's label."""
    h, w = labels.shape
    rows = np.minimum(np.arange(shape[0]) * h // shape[0], h - 1)
    cols = np.minimum(np.arange(shape[1]) * w // shape[1], w - 1)
    return labels[np.ix_(rows, cols)]


def from_colorization(result, name: str = "") -> PairAttention:
    """A `sa_lib.inference.colorize.Colorization` (from a super-attention checkpoint) -> `PairAttention`."""
    inter = result.intermediates
    if "target_superpixels" not in inter:
        raise ValueError("attention maps need a super-attention checkpoint (variant 'super')")
    gray = result.target_l[0, 0].float().numpy() / 100.0  # (h, w)
    colour = np.asarray(result.image.resize(gray.shape[::-1], Image.BICUBIC), dtype=np.float32) / 255.0
    attention, t_labels, r_labels = {}, {}, {}
    for level, attn in inter["attention"].items():
        n_t, n_r = int(inter["target_counts"][level][0]), int(inter["reference_counts"][level][0])
        attention[level] = attn[0, :n_t, :n_r].float().cpu().numpy()  # (S_T, S_R) of the one image
        t_labels[level] = inter["target_superpixels"].labels[level][0].cpu().numpy()
        r_labels[level] = inter["reference_superpixels"].labels[level][0].cpu().numpy()
    return PairAttention(gray, result.reference[0].permute(1, 2, 0).float().numpy(), colour, attention,
                         t_labels, r_labels, name)


def compute_pair_attention(pair: Pair, checkpoint: str = DEFAULT_CHECKPOINT, device: str = "auto",
                           working_size: int = 256) -> PairAttention:
    """Colorize one pair with a super-attention checkpoint and keep its attention maps and superpixels."""
    target, reference = load_full_pair(pair)
    result = colorize_detailed(target, reference, checkpoint, device, "fast", working_size)
    pa = from_colorization(result, pair.name)
    pa.model = Path(checkpoint).name if str(checkpoint).endswith(".safetensors") else str(checkpoint)
    return pa


# ------------------------------------------------------------------------------------ one attention row


def superpixel_at(pa: PairAttention, level: int, y: int, x: int) -> int:
    """The target superpixel (at `level`) under pixel (y, x) of the target."""
    labels = pa.pixel_labels(level)
    y, x = min(max(int(y), 0), labels.shape[0] - 1), min(max(int(x), 0), labels.shape[1] - 1)
    return int(labels[y, x])


def superpixel_mask(pa: PairAttention, level: int, label: int) -> np.ndarray:
    """(h, w) bool: the target pixels of superpixel `label` at `level` (the highlighted region)."""
    return pa.pixel_labels(level) == label


def superpixel_center(pa: PairAttention, level: int, label: int) -> tuple[int, int]:
    """(y, x) of the superpixel's pixel nearest its centroid: inside it even when it is not convex."""
    ys, xs = np.nonzero(superpixel_mask(pa, level, label))
    nearest = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)
    return int(ys[nearest]), int(xs[nearest])


def attention_row(pa: PairAttention, level: int, label: int) -> np.ndarray:
    """(S_R,): how much target superpixel `label` draws from each reference superpixel (sums to 1)."""
    return pa.attention[level][label]


def attention_on_reference(attention_row: np.ndarray, reference_labels: np.ndarray) -> np.ndarray:
    """(S_R,) attention weights -> (h, w) map over the reference pixels, scaled so its maximum is 1."""
    weights = attention_row[reference_labels]
    return weights / max(float(weights.max()), 1e-12)


def lit_reference(reference: np.ndarray, attention_row: np.ndarray, reference_labels: np.ndarray) -> np.ndarray:
    """The reference (h, w, 3) with each superpixel's brightness scaled by its attention weight (Fig. 3)."""
    lit = attention_on_reference(attention_row, reference_labels)
    return reference * (DIM + (1.0 - DIM) * lit[..., None])


def outlined(image: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float] = OUTLINE) -> np.ndarray:
    """A copy of `image` (h, w) or (h, w, 3) as RGB with the border of `mask` drawn in `colour`."""
    view = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image.copy()
    view[find_boundaries(mask, mode="outer")] = colour
    return view


def reference_view(pa: PairAttention, level: int, label: int) -> np.ndarray:
    """(h', w', 3): the reference lit by target superpixel `label`'s attention row at `level`."""
    return lit_reference(pa.reference, attention_row(pa, level, label), pa.pixel_labels(level, "reference"))


def target_view(pa: PairAttention, level: int, label: int, colour: bool = False) -> np.ndarray:
    """(h, w, 3): the gray target (or the colorized one) with superpixel `label` outlined in red."""
    return outlined(pa.colour if colour else pa.gray, superpixel_mask(pa, level, label))


def received_colour(pa: PairAttention, level: int, label: int) -> np.ndarray:
    """(3,) sRGB: the mean colour the model gave the pixels of target superpixel `label`."""
    return pa.colour[superpixel_mask(pa, level, label)].mean(axis=0)


def attended_colour(pa: PairAttention, level: int, label: int) -> np.ndarray:
    """(3,) sRGB: the reference colour the attention row points at, sum_j A[i, j] * mean colour of j.

    The attention carries colour *features* (phi), not colours; this mix is what those features describe,
    a readable proxy to set beside the colour the decoder finally produced."""
    r_labels = pa.pixel_labels(level, "reference").ravel()  # (h' w',)
    n_r = pa.attention[level].shape[1]
    counts = np.bincount(r_labels, minlength=n_r)  # (S_R,)
    sums = np.stack([np.bincount(r_labels, pa.reference[..., c].ravel(), n_r) for c in range(3)], 1)  # (S_R, 3)
    means = sums / np.maximum(counts, 1)[:, None]
    row = attention_row(pa, level, label) * (counts > 0)  # a superpixel lost to the upsampling weighs nothing
    return row @ means / max(float(row.sum()), 1e-12)


def matrix_view(pa: PairAttention, level: int, label: int | None = None) -> np.ndarray:
    """(S_T, S_R, 3) picture of the attention map, each row scaled to its maximum (the softmax with
    tau = 0.01 is peaked, so raw values would show little), with row `label` tinted red."""
    attn = pa.attention[level]
    scaled = attn / np.maximum(attn.max(axis=1, keepdims=True), 1e-12)  # (S_T, S_R) in [0, 1]
    image = plt.get_cmap("magma")(scaled)[..., :3]  # (S_T, S_R, 3)
    if label is not None:
        image[label] = 0.35 * image[label] + 0.65 * np.array(OUTLINE)
    return image


# ------------------------------------------------------------------------- a picked superpixel, summarised


def hex_colour(rgb: np.ndarray) -> str:
    """(3,) sRGB in [0, 1] -> "#rrggbb", for the HTML swatches."""
    r, g, b = (round(float(c) * 255) for c in np.clip(rgb, 0, 1))
    return f"#{r:02x}{g:02x}{b:02x}"


def swatch_html(rgb: np.ndarray, caption: str) -> str:
    """One colour swatch with its caption and hex code (class sa-swatch)."""
    colour = hex_colour(rgb)
    return (f"<div><span class='sa-swatch' style='display:inline-block;width:48px;height:24px;"
            f"vertical-align:middle;border:1px solid #444;background:{colour}'></span> {caption} ({colour})</div>")


def selection_html(pa: PairAttention, level: int, label: int, point: tuple[int, int]) -> str:
    """What the explorer and the web app say about a picked superpixel: where it is, which reference superpixel
    its row weighs most, and two swatches: the colour its row points at and the colour the model gave it.
    `point` is (y, x) at the size the network ran."""
    row = attention_row(pa, level, label)
    attended, received = attended_colour(pa, level, label), received_colour(pa, level, label)
    return (
        f"<div>level {level} ({LEVEL_NAMES[level]}): target superpixel <b>{label}</b> of "
        f"{pa.superpixel_count(level)}, at x, y = {point[1]}, {point[0]}; it draws from {row.shape[0]} reference "
        f"superpixels, most from superpixel {int(row.argmax())} (weight {row.max():.2f}).</div>"
        f"<div style='display:flex;gap:24px;margin-top:6px'>{swatch_html(attended, 'reference colour its row points at')}"
        f"{swatch_html(received, 'colour it received (model output)')}</div>")


# ------------------------------------------------------------------------------------------------ Fig. 3


def default_point(pa: PairAttention) -> tuple[int, int]:
    """The target pixel Fig. 3 picks by default: the image centre."""
    return pa.gray.shape[0] // 2, pa.gray.shape[1] // 2


def fig3_attention(pa: PairAttention, figures_dir: str | Path, point: tuple[int, int] | None = None,
                   levels: tuple[int, ...] = LEVELS, filename: str = "fig3_attention.png") -> Path:
    """The paper's Fig. 3, one row per level, for the target superpixel under `point` (y, x; the image
    centre by default) at each level: the target with that superpixel outlined, the reference lit by its
    attention row, and the S_T x S_R attention matrix with that row marked. Returns the written path."""
    y, x = point or default_point(pa)
    levels = tuple(level for level in levels if level in pa.attention)
    aspect = max(pa.gray.shape[0] / pa.gray.shape[1], pa.reference.shape[0] / pa.reference.shape[1])
    fig, axes = plt.subplots(len(levels), 3, figsize=(11, len(levels) * (11 / 3 * aspect + 0.6) + 0.5),
                             squeeze=False, gridspec_kw={"width_ratios": (1, 1, 0.8)})
    for ax_row, level in zip(axes, levels):
        label = superpixel_at(pa, level, y, x)
        n_t, n_r = pa.attention[level].shape
        row = attention_row(pa, level, label)
        ax_row[0].imshow(np.clip(target_view(pa, level, label), 0, 1))
        ax_row[0].set_title(f"level {level} ({LEVEL_NAMES[level]}): target superpixel {label} of {n_t}",
                            fontsize=9)
        ax_row[1].imshow(np.clip(reference_view(pa, level, label), 0, 1))
        ax_row[1].set_title(f"reference lit by its attention row (max weight {row.max():.2f})", fontsize=9)
        ax_row[2].imshow(matrix_view(pa, level), aspect="auto", interpolation="nearest")
        ax_row[2].add_patch(Rectangle((-0.5, label - 0.5), n_r, 1, fill=False, edgecolor=OUTLINE,
                                      linewidth=1.5, clip_on=False))
        ax_row[2].annotate("", xy=(-0.5, label), xytext=(-0.08 * n_r, label), annotation_clip=False,
                           arrowprops={"arrowstyle": "->", "color": OUTLINE, "lw": 1.5})
        ax_row[2].set_title(f"attention map {n_t} x {n_r}, row {label} marked", fontsize=9)
        ax_row[2].set_xlabel("reference superpixels", fontsize=8)
        ax_row[2].set_ylabel("target superpixels", fontsize=8)
        ax_row[2].tick_params(labelsize=7)
        ax_row[2].xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_row[2].yaxis.set_major_locator(MaxNLocator(integer=True))
        for ax in ax_row[:2]:
            ax.axis("off")
    model = f" (model: {pa.model})" if pa.model else ""
    fig.suptitle(f"Super-attention guidance (paper Fig. 3): {pa.name}{model}\nthe same target point at the three "
                 "levels; matrix rows scaled to their maximum", fontsize=10)
    fig.tight_layout()
    path = output_dir(figures_dir) / filename
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
