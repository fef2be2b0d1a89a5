"""Why a region got its colour: the super-attention rows of a few target superpixels, drawn as a figure.

For each chosen target superpixel (finest level) the figure shows the gray target with that superpixel
outlined, the reference lit in proportion to the attention the superpixel pays to each reference
superpixel (the row of the attention map, as in the paper's Fig. 3), and the colorized result. A last row
sets the whole result beside other methods on the same images (sa-colorize passes the paper's super model
and the training-free [17]).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .attention_maps import lit_reference, outlined  # noqa: E402
from .checkpoint import atomic_write  # noqa: E402


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
    """Write the figure for a `Colorization` (see sa_lib.colorize.colorize_detailed) to `path`; `comparisons`
    (title -> (h, w, 3) image at the network's size) adds a last row: the result beside them."""
    from .colorize import UsageError

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
