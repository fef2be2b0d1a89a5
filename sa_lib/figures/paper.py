"""`make paper`: regenerate every figure and table of the paper for a profile by running the notebooks.

The notebooks in notebooks/ run in order with papermill; each gets the profile's parameters injected into
its tagged `parameters` cell (see notebooks/README.md) and its executed copy is written to build/notebooks/.
They write fig3..fig6, complexity.png, training_curves.png and the two tables into figures/. Two more
outputs come from here: figures/superpixel_levels.png (the SLIC grids of the three attention levels) and
figures/model_summary.md (parameters and measured forward time of every variant).

    python -m sa_lib.cli.paper --profile demo              # offline, CPU, shipped demo checkpoints (minutes)
    python -m sa_lib.cli.paper --profile demo --retrain    # ... and retrain the demo checkpoints first
    python -m sa_lib.cli.paper --profile paper             # the authors' protocol: COCO + VGG19 on a GPU
"""

from __future__ import annotations

import platform
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

from ..core.color import rgb_to_lab  # noqa: E402
from ..core.devices import resolve_device  # noqa: E402
from ..core.files import BUILD_DIR, REPO_ROOT, atomic_write  # noqa: E402
from ..data.demo_data import load_split
from ..data.image_io import load_square_photo  # noqa: E402
from ..model.colorizer import VARIANTS, ColorizerConfig, build_model  # noqa: E402
from ..profiles import get_profile  # noqa: E402
from ..superpixels.pyramid import SuperpixelPyramid, n_segments_for  # noqa: E402



def load_photo(path: Path, size: int) -> torch.Tensor:
    """(1, 3, size, size) sRGB in [0, 1], upright: the square training resolution of the paper."""
    return torch.from_numpy(load_square_photo(path, size)).permute(2, 0, 1).float()[None] / 255.0


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
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png"))
    plt.close(fig)


def model_summary(config: ColorizerConfig, photos: list[Path], out: Path, size: int = 224,
                  repeats: int = 3, device: str = "auto", pretrained: bool = True,
                  variants: tuple[str, ...] = VARIANTS) -> None:
    """Markdown table: parameters and forward time (batch 1, inference) of each of `variants` (build_model's
    names: the paper's three, and "transfer" where the profile's Table 1 has it), measured here
    (`pretrained=False`: random colour encoder weights, nothing downloaded; the same parameters and time)."""
    device = resolve_device(device).type
    target, reference = load_photo(photos[0], size).to(device), load_photo(photos[1], size).to(device)
    target_l = rgb_to_lab(target)[:, :1]
    rows = []
    for variant in variants:
        model = build_model(variant, encoder=config.encoder, config=config, pretrained=pretrained).to(device).eval()
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
    atomic_write(out, lambda tmp: tmp.write_text("\n".join([
        f"# Model summary ({config.encoder} colour encoder, widths {config.widths})", "",
        f"Measured {date.today()} on {machine} by `python -m sa_lib.cli.paper --profile ...`: one {size}x{size} "
        f"target and reference (demo photos), inference mode, best of {repeats} runs, SLIC included"
        + ("; transfer: one pass of the network alone, where `sa-colorize` runs two with its test-time flip average "
           "and two more of the shipped checkpoint's blend partner at most 256 px." if "transfer" in variants
           else "."), "",
        "| variant | trainable | frozen (phi) | forward | attention maps (S_T, S_R) |",
        "|---|---|---|---|---|", *rows, ""])))


NOTEBOOKS = REPO_ROOT / "notebooks"
BUILD_NOTEBOOKS = BUILD_DIR / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook raised: the message names it, the failing exception and where the executed copy is."""


def notebook_parameters(notebook: Path, profile: str, figures_dir: Path, device: str, retrain: bool) -> dict:
    """What papermill injects into a notebook's `parameters` cell (the contract of notebooks/README.md)."""
    parameters = {"profile": profile, "figures_dir": str(figures_dir), "device": device}
    if notebook.stem.startswith("02_"):
        parameters["retrain"] = retrain
    return parameters


def run_notebooks(profile: str, figures_dir: Path, device: str = "auto", retrain: bool = False,
                  notebooks_dir: Path = NOTEBOOKS, executed_dir: Path = BUILD_NOTEBOOKS,
                  only: list[str] | None = None) -> list[tuple[str, float]]:
    """Execute every notebook (sorted by name) with papermill; returns (name, seconds) per notebook."""
    try:  # deferred: the optional 'notebooks' extra (papermill, jupyter), seconds to import
        import papermill
        from jupyter_client.kernelspec import NoSuchKernel
        from nbclient.exceptions import DeadKernelError
        from papermill.exceptions import PapermillExecutionError
    except ImportError as err:
        raise NotebookFailed(f"{err.name} is not installed: run `make setup` (pip install -e '.[notebooks,dev]')") \
            from None

    notebooks = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if only:
        notebooks = [nb for nb in notebooks if any(nb.stem.startswith(prefix) for prefix in only)]
    if not notebooks:
        raise NotebookFailed(f"no notebook to run in {notebooks_dir}" + (f" matching {only}" if only else ""))
    executed_dir.mkdir(parents=True, exist_ok=True)
    timings = []
    for number, notebook in enumerate(notebooks, 1):
        executed = executed_dir / notebook.name
        print(f"[paper] {number}/{len(notebooks)} {notebook.stem} (profile {profile})", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(notebook), str(executed), kernel_name="python3", progress_bar=True, cwd=str(notebooks_dir),
                parameters=notebook_parameters(notebook, profile, figures_dir, device, retrain))
        except PapermillExecutionError as err:
            raise NotebookFailed(f"{notebook.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue} "
                                 f"(executed copy: {executed})") from None
        except DeadKernelError:
            raise NotebookFailed(f"{notebook.name}: its kernel died (out of memory or a crash in a native library; "
                                 f"executed copy so far: {executed})") from None
        except NoSuchKernel:
            raise NotebookFailed("no 'python3' Jupyter kernel: run `make setup` (it installs the venv's kernel)") \
                from None
        timings.append((notebook.stem, time.perf_counter() - start))
        print(f"[paper]     {notebook.stem}: {timings[-1][1]:.0f} s", flush=True)
    return timings


SNAPSHOT_FIGURES = ("gallery_matched", "fig3_attention", "fig4_references", "fig5_ablation", "fig6_comparison",
                    "complexity", "training_curves")
# Copied as they are: the README's tables are tested against these copies (tests/test_readme_numbers.py).
SNAPSHOT_TABLES = ("table1_ablation.md", "table2_comparison.md")


def save_snapshots(figures: Path, out: Path, max_width: int = 1400) -> list[Path]:
    """Downscaled JPEG copies of the paper's figures and exact copies of its tables, for the README (figures/
    itself is a build output)."""
    sources = [figures / f"{name}.png" for name in SNAPSHOT_FIGURES] + [figures / name for name in SNAPSHOT_TABLES]
    missing = [str(source) for source in sources if not source.is_file()]
    if missing:  # checked first: never a half-updated set of snapshots
        raise FileNotFoundError(f"{', '.join(missing)} is missing: run make paper first")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        if source.suffix == ".md":
            written.append(out / source.name)
            atomic_write(written[-1], lambda tmp, s=source: tmp.write_bytes(s.read_bytes()))
            continue
        with Image.open(source) as opened:
            image = opened.convert("RGB")
        if image.width > max_width:
            image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
        written.append(out / f"{source.stem}.jpg")
        atomic_write(written[-1], lambda tmp: image.save(tmp, format="JPEG", quality=85, optimize=True))
    return written


def write_extras(profile: str, out: Path, device: str = "auto") -> None:
    """figures/superpixel_levels.png and figures/model_summary.md (the profile's network) into `out`."""
    photos = load_split("val")[:3]
    print("[paper] superpixel figure and model summary", flush=True)
    superpixel_figure(photos, out / "superpixel_levels.png")
    settings = get_profile(profile)
    model_summary(settings.model, photos, out / "model_summary.md", size=settings.eval_size, device=device,
                  pretrained=settings.pretrained, variants=settings.eval_models)


def write_timings(profile: str, timings: list[tuple[str, float]], total: float, executed_dir: Path) -> Path:
    """build/notebooks/timings.md: each notebook's time in a `make paper` run."""
    lines = [f"| {name} | {seconds:.0f} s |" for name, seconds in timings]
    path = executed_dir / "timings.md"
    atomic_write(path, lambda tmp: tmp.write_text("\n".join([
        f"# make paper, profile {profile}: {total / 60:.1f} min on {date.today()}", "",
        "| notebook | time |", "|---|---|", *lines, ""])))
    return path
