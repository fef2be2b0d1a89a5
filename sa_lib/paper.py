"""`make paper`: regenerate the project's figures and tables for a profile.

What it makes so far (Table 1/2 and the notebooks come with later work):
- figures/superpixel_levels.png: the SLIC grids of the three attention levels on demo photos;
- figures/model_summary.md: parameters and measured forward time of every variant.

    python -m sa_lib.paper --profile demo    # offline, CPU, EfficientNet-Lite0 colour encoder
    python -m sa_lib.paper --profile paper   # the authors' sizes with VGG19 (weights downloaded once)
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.segmentation import mark_boundaries  # noqa: E402

from .color import rgb_to_lab  # noqa: E402
from .demo_data import load_split  # noqa: E402
from .hub import AssetUnavailable  # noqa: E402
from .model import VARIANTS, ColorizerConfig, build_model  # noqa: E402
from .superpixels import SuperpixelPyramid, n_segments_for  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
FIGURES = REPO_ROOT / "figures"
NOTEBOOK_PROFILES = ("smoke", "demo", "paper")


def output_dir(figures_dir: str | Path) -> Path:
    """The folder a notebook writes its figures and tables to: relative paths are taken from the repository
    root (not the notebook's folder, which differs between nbval, papermill and JupyterLab); created."""
    path = Path(figures_dir)
    path = path if path.is_absolute() else REPO_ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path
PROFILES = {"demo": ColorizerConfig(), "paper": ColorizerConfig.paper()}


def load_photo(path: Path, size: int) -> torch.Tensor:
    """(1, 3, size, size) sRGB in [0, 1]: the square training resolution of the paper."""
    image = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None] / 255.0


def superpixel_figure(photos: list[Path], out: Path, size: int = 224) -> None:
    """Each row a photo, each column an attention level with its SLIC boundaries and superpixel count."""
    fig, axes = plt.subplots(len(photos), 3, figsize=(9, 3.1 * len(photos)), squeeze=False)
    for row, path in enumerate(photos):
        rgb = load_photo(path, size)
        pyramid = SuperpixelPyramid.from_gray(rgb_to_lab(rgb)[:, :1] / 100)
        for level, ax in enumerate(axes[row]):
            labels = pyramid.labels[level][0].numpy()
            h, w = labels.shape
            # Draw the level's grid on the full-size photo (labels upsampled, nearest) so lines stay thin.
            rows, cols = np.arange(size) * h // size, np.arange(size) * w // size
            ax.imshow(mark_boundaries(rgb[0].permute(1, 2, 0).numpy(), labels[np.ix_(rows, cols)],
                                      color=(1, 1, 0)), interpolation="nearest")
            ax.set_title(f"level {level}: {w}x{h}, asked {n_segments_for(h, w)}, got {labels.max() + 1}",
                         fontsize=8)
            ax.axis("off")
    fig.suptitle("SLIC superpixels at the three super-attention levels (compactness 0.1)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def model_summary(config: ColorizerConfig, photos: list[Path], out: Path, size: int = 224,
                  repeats: int = 3) -> None:
    """Markdown table: parameters and forward time (batch 1, inference) of each variant, measured here."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    target, reference = load_photo(photos[0], size).to(device), load_photo(photos[1], size).to(device)
    target_l = rgb_to_lab(target)[:, :1]
    rows = []
    for variant in VARIANTS:
        try:
            model = build_model(variant, encoder=config.encoder, config=config).to(device).eval()
        except AssetUnavailable as err:
            sys.exit(f"error: {err}")
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        times = []
        with torch.inference_mode():
            for _ in range(repeats + 2):  # the first two runs warm up
                start = time.perf_counter()
                _, intermediates = model(target_l, reference)
                if device == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        maps = ", ".join(f"L{l}: {tuple(a.shape[1:])}" for l, a in intermediates["attention"].items()) or "-"
        rows.append(f"| {variant} | {trainable / 1e6:.2f} M | {frozen / 1e6:.2f} M | "
                    f"{1000 * min(times[2:]):.0f} ms | {maps} |")
    machine = torch.cuda.get_device_name() if device == "cuda" else f"{platform.processor() or 'CPU'}, " \
        f"{torch.get_num_threads()} threads"
    out.write_text("\n".join([
        f"# Model summary ({config.encoder} colour encoder, widths {config.widths})", "",
        f"Measured {date.today()} on {machine} by `python -m sa_lib.paper --profile ...`: one {size}x{size} "
        f"target and reference (demo photos), inference mode, best of {repeats} runs, SLIC included.", "",
        "| variant | trainable | frozen (phi) | forward | attention maps (S_T, S_R) |",
        "|---|---|---|---|---|", *rows, ""]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="demo")
    parser.add_argument("--out", type=Path, default=FIGURES, help="folder for figures and tables")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    photos = load_split("val")[:3]
    print(f"[paper] profile {args.profile}: superpixel figure", flush=True)
    superpixel_figure(photos, out / "superpixel_levels.png")
    print("[paper] model summary (measuring every variant)", flush=True)
    model_summary(PROFILES[args.profile], photos, out / "model_summary.md")
    print(f"[paper] wrote {out / 'superpixel_levels.png'} and {out / 'model_summary.md'}")


if __name__ == "__main__":
    main()
