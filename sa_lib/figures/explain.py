"""Why a region got its colour: the super-attention rows of a few target superpixels, drawn as a figure.

For each chosen target superpixel (finest level) the figure shows the gray target with that superpixel
outlined, the reference lit in proportion to the attention the superpixel pays to each reference
superpixel (the row of the attention map, as in the paper's Fig. 3), and the colorized result. A last row
sets the whole result beside other methods on the same images (`other_methods`: the paper's super model and
the training-free [17]; sa-colorize --explain and the explorer show them).
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..core.devices import resolve_device  # noqa: E402
from ..core.errors import UsageError  # noqa: E402
from ..core.files import atomic_write  # noqa: E402
from ..eval.baselines import SuperpixelFeatureTransfer  # noqa: E402
from ..inference.colorize import load_model  # noqa: E402
from ..model.checkpoint import DEFAULT_CHECKPOINT, PAPER_MODEL_CHECKPOINT  # noqa: E402
from ..model.predict import predict_rgb  # noqa: E402
from .attention_maps import lit_reference, outlined  # noqa: E402


def pick_superpixels(labels: np.ndarray, count: int = 4) -> list[int]:
    """Superpixels under `count` points spread over the image (quadrant centres), distinct."""
    h, w = labels.shape
    points = [(h // 4, w // 4), (h // 4, 3 * w // 4), (3 * h // 4, w // 4), (3 * h // 4, 3 * w // 4),
              (h // 2, w // 2)]
    chosen: list[int] = []
    for y, x in points:
        label = int(labels[y, x])
        if label not in chosen:
            chosen.append(label)
    return chosen[:count]


def explain_figure(result, path: str | Path, level: int = 0, comparisons: dict[str, np.ndarray] | None = None,
                   checkpoint: str = "this checkpoint") -> None:
    """Write the figure for a `Colorization` (see sa_lib.inference.colorize.colorize_detailed) to `path`; `comparisons`
    (title -> (h, w, 3) image at the network's size) adds a last row: the result beside them."""
    attention = result.intermediates.get("attention", {})
    if level not in attention or "target_superpixels" not in result.intermediates:
        raise UsageError("--explain needs a super-attention checkpoint (variant 'super')")
    attn = attention[level][0].float().cpu().numpy()  # (S_T, S_R)
    t_labels = result.intermediates["target_superpixels"].labels[level][0].cpu().numpy()
    r_labels = result.intermediates["reference_superpixels"].labels[level][0].cpu().numpy()
    gray = np.repeat(result.target_l[0, 0].numpy()[..., None] / 100.0, 3, axis=2)  # (h, w, 3)
    reference = result.reference[0].permute(1, 2, 0).numpy()  # (h', w', 3)
    colour = np.asarray(result.image.resize(gray.shape[1::-1]), dtype=np.float32) / 255.0

    rows = pick_superpixels(t_labels)
    compared = list((comparisons or {}).items())[:2]
    n_rows = len(rows) + (1 if compared else 0)
    row_height = 10 / 3 * max(gray.shape[0] / gray.shape[1], reference.shape[0] / reference.shape[1]) + 0.5
    fig, axes = plt.subplots(n_rows, 3, figsize=(10, row_height * n_rows + 0.6), squeeze=False)
    if compared:
        panels = [(f"result: {Path(checkpoint).stem}", colour), *compared]
        for ax in axes[-1]:
            ax.axis("off")
        for ax, (title, image) in zip(axes[-1], panels):
            ax.imshow(np.clip(image, 0, 1))
            ax.set_title(title, fontsize=9)
    for ax_row, label in zip(axes, rows):
        mask = t_labels == label
        target_view, result_view = outlined(gray, mask), outlined(colour, mask)
        reference_view = lit_reference(reference, attn[label], r_labels)
        top = attn[label].max()
        panels = [(target_view, f"target superpixel {label}"),
                  (reference_view, f"reference lit by its attention (max weight {top:.2f})"),
                  (result_view, "colour it received")]
        for ax, (image, title) in zip(ax_row, panels):
            ax.imshow(np.clip(image, 0, 1))
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.suptitle(f"Where the colours came from: super-attention rows at level {level}", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format=path.suffix.lstrip(".") or "png"))
    plt.close(fig)


def other_methods(target_l: np.ndarray, reference: np.ndarray, checkpoint: str = DEFAULT_CHECKPOINT,
                  device: str = "auto", slic: str = "auto") -> dict[str, np.ndarray]:
    """The same pair coloured by the methods a result is shown beside (--explain, the explorer): the paper's
    super-attention model (unless `checkpoint` is it) and the training-free [17] baseline.

    target_l: (h, w) L* in [0, 100] and reference (h', w', 3) sRGB in [0, 1], at the size the network ran.
    Returns title -> (h, w, 3) sRGB in [0, 1].
    """
    shown: dict[str, np.ndarray] = {}
    if Path(str(checkpoint)).stem != PAPER_MODEL_CHECKPOINT:
        model = load_model(PAPER_MODEL_CHECKPOINT, device)
        dev = next(model.parameters()).device
        l_star = torch.from_numpy(np.ascontiguousarray(target_l, dtype=np.float32))[None, None].to(dev)  # (1, 1, h, w)
        # (1, 3, h', w')
        ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).permute(2, 0, 1)[None].to(dev)
        rgb = predict_rgb(model, l_star, ref, slic_backend=slic)[0][0]  # (3, h, w)
        shown[f"paper's super-attention ({PAPER_MODEL_CHECKPOINT})"] = rgb.permute(1, 2, 0).cpu().numpy()  # (h, w, 3)
    shown["Carrillo 2022 [17] (training-free)"] = carrillo_baseline(str(resolve_device(device)))(
        np.asarray(target_l, dtype=np.float64), np.asarray(reference, dtype=np.float64))
    return shown


@functools.lru_cache(maxsize=2)
def carrillo_baseline(device: str = "cpu") -> SuperpixelFeatureTransfer:
    """The [17] baseline, built once per device (its encoder's weights are read from disk once)."""
    return SuperpixelFeatureTransfer(device=device)
