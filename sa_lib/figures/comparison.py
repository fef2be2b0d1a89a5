"""Figures 5 and 6 of the paper, regenerated from an evaluation setup (`sa_lib.eval.evaluate.prepare`).

* Fig. 5 (ablation): the paper's three variants and the transfer model side by side, on pairs whose reference is a different photo
  (its top-1 ranked reference) and on pairs whose reference is the target's own ground truth.
* Fig. 6 (comparison): the training-free baselines of `sa_lib.eval.baselines` beside our super-attention model.
  (The paper's Fig. 6 shows Deep Exemplar, Just Attention and XCNET, which cannot run here.)
* The matched-pairs gallery (`matched_gallery`, README): targets with a different photo of the same kind of
  subject as reference (data/demo/matched_pairs.csv), coloured by [17], the paper's super and the transfer
  model.

Where the profile has the transfer model (demo, smoke) it gets its own column in every figure, beside the
paper's variants, so a reader sees what the departure adds.

Each image is exactly what the evaluator scores: the pair at the evaluation size, the output rebuilt from
the target's L*. The shown pairs are fixed by name (chosen for variety among the demo pairs); other pair
files (smoke, paper) show their first pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage.color import lab2rgb  # noqa: E402

from ..core.files import atomic_write  # noqa: E402
from ..eval.evaluate import Setup, baseline_colorizers  # noqa: E402
from ..eval.pair_images import GTREF, TOP1, PairImages  # noqa: E402
from ..eval.scoring import model_colorizer  # noqa: E402

FIG5_DIFFERENT = ("gcompris-cheetah.jpg", "gcompris-panda.jpg")
FIG5_SAME = ("scratch-football-field.jpg", "tuxpaint-lighthouse.jpg")
FIG6_TARGETS = ("gcompris-cheetah.jpg", "gcompris-butterfly.jpg", "lomiri-Bridge_by_Sander_Klootwijk.jpg",
                "scratch-village.jpg", "gcompris-duck.jpg")
GALLERY_TARGETS = ("gcompris-cheetah.jpg", "gcompris-hawaMahal.jpg", "mate-Garden.jpg", "gcompris-sea5.jpg",
                   "scratch-football-field.jpg", "gcompris-meidumPyramid.jpg")  # rows of matched_pairs.csv
SHORT_NAMES = {"none": "without reference", "standard": "standard attention", "super": "super-attention (paper)",
               "transfer": "transfer (default)"}


def pick_pairs(setup: Setup, targets: Sequence[str], skip: int = 0) -> list[PairImages]:
    """The pairs of `setup` whose target is named in `targets`, in that order; if any is absent (another
    pair file), the pairs from index `skip` on instead, as many as were asked for."""
    by_name: dict[str, PairImages] = {}
    for item in setup.data:  # a target with several references: its first row
        by_name.setdefault(item.pair.target, item)
    if all(name in by_name for name in targets):
        return [by_name[name] for name in targets]
    chosen = setup.data[skip:skip + len(targets)]
    return chosen if len(chosen) == len(targets) else setup.data[:len(targets)]


def gray_rgb(target_l: np.ndarray) -> np.ndarray:
    """(H, W) L* in [0, 100] -> (H, W, 3) sRGB in [0, 1]: the exact gray of that lightness (Lab [L*, 0, 0]),
    i.e. the target as the colorizers see it (L*/100 taken as sRGB values would be a different, darker gray)."""
    l_star = np.clip(np.asarray(target_l, dtype=np.float64), 0.0, 100.0)
    lab = np.stack([l_star, np.zeros_like(l_star), np.zeros_like(l_star)], axis=-1)
    return np.clip(lab2rgb(lab), 0.0, 1.0)


def image_grid(rows: list[list[np.ndarray]], columns: Sequence[str], row_labels: Sequence[str], out: Path,
               title: str) -> Path:
    """Save a grid of images (rows x columns) with column titles and row labels."""
    n_rows, n_cols = len(rows), len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.95 * n_rows + 0.5), squeeze=False)
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r][c]
            ax.imshow(np.clip(image, 0.0, 1.0), interpolation="lanczos")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
        axes[r][0].set_ylabel(row_labels[r], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out = Path(out)
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
    return out


def _label(item: PairImages, reference: str) -> str:
    name = Path(item.pair.target).stem.replace("gcompris-", "")[:22]
    return f"{name}\n({'own ground truth' if reference == GTREF else 'top-1 reference'})"


def fig5_ablation(setup: Setup, out: Path | str) -> Path:
    """Fig. 5: target, reference, the profile's models (the paper's three variants, and the transfer model where
    the profile has it) and the ground truth; first rows with a different reference, last rows with the ground
    truth as reference."""
    names = [v for v in setup.profile.eval_models if v not in setup.missing]
    models = {SHORT_NAMES[v]: model_colorizer(setup.checkpoint(v), setup.device) for v in names}
    models.update({name: model_colorizer(path, setup.device) for name, path in setup.checkpoints.items()})
    different = pick_pairs(setup, FIG5_DIFFERENT)
    same = pick_pairs(setup, FIG5_SAME, skip=len(FIG5_DIFFERENT))
    rows, labels = [], []
    for reference, items in ((TOP1, different), (GTREF, same)):
        for item in items:
            ref = item.reference if reference == TOP1 else item.truth
            rows.append([gray_rgb(item.target_l), ref, *(fn(item.target_l, ref) for fn in models.values()),
                         item.truth])
            labels.append(_label(item, reference))
    columns = ["target (L*)", "reference", *models, "ground truth"]
    return image_grid(rows, columns, labels, Path(out),
                      f"Fig. 5 (profile {setup.profile.name}): variants with a different reference (top rows) "
                      "and with the target's own colours as reference (bottom rows)")


def fig6_comparison(setup: Setup, out: Path | str) -> Path:
    """Fig. 6: target, reference, the baselines, our super-attention model and the ground truth."""
    baselines = {key: (name, factory()) for key, (name, factory) in baseline_colorizers(setup).items()}
    ours = {f"ours: {SHORT_NAMES[m]}": model_colorizer(setup.checkpoint(m), setup.device)
            for m in ("super", "transfer") if m in setup.profile.eval_models and m not in setup.missing}
    ours.update({name: model_colorizer(path, setup.device) for name, path in setup.checkpoints.items()})
    rows, labels = [], []
    for item in pick_pairs(setup, FIG6_TARGETS):
        outputs = [fn(item.target_l, item.reference) for _, fn in baselines.values()]
        rows.append([gray_rgb(item.target_l), item.reference, *outputs,
                     *(fn(item.target_l, item.reference) for fn in ours.values()), item.truth])
        labels.append(_label(item, TOP1))
    short = {"reinhard": "Reinhard-style (L*-driven)", "welsh": "Welsh 2002 [10]",
             "carrillo2022": "Carrillo 2022 [17]"}
    columns = ["target (L*)", "reference", *(short.get(k, k) for k in baselines), *ours, "ground truth"]
    return image_grid(rows, columns, labels, Path(out),
                      f"Fig. 6 (profile {setup.profile.name}): training-free exemplar methods and ours, "
                      "top-1 references")


def matched_gallery(setup: Setup, out: Path | str) -> Path:
    """The README gallery: matched pairs (a different photo of the same kind of subject as reference) coloured
    by [17], the paper's super-attention and the transfer model (the default), beside the ground truth."""
    carrillo = baseline_colorizers(setup)["carrillo2022"][1]()
    models = {m: model_colorizer(setup.checkpoint(m), setup.device)
              for m in ("super", "transfer") if m in setup.profile.eval_models and m not in setup.missing}
    rows, labels = [], []
    for item in pick_pairs(setup, GALLERY_TARGETS):
        rows.append([gray_rgb(item.target_l), item.reference, carrillo(item.target_l, item.reference),
                     *(fn(item.target_l, item.reference) for fn in models.values()), item.truth])
        labels.append(f"{Path(item.pair.target).stem.replace('gcompris-', '')[:22]}\n"
                      f"<- {Path(item.pair.reference).stem.replace('gcompris-', '')[:22]}")
    columns = ["target (L*)", "reference (another photo)", "Carrillo 2022 [17]",
               *(SHORT_NAMES[m] for m in models), "ground truth"]
    return image_grid(rows, columns, labels, Path(out),
                      f"Colour from a different photo (profile {setup.profile.name}, "
                      f"{setup.pairs_file.name})")
