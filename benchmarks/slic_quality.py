"""Quality of the SLIC backends against scikit-image's SLIC (the authors' choice), and the model's output when
only the backend changes.

    python benchmarks/slic_quality.py [--checkpoint demo-super] [--modes fast] [--limit N] [--torch-threads 1]

1. Superpixels: on each demo val photo (L*/100, as the model sees it), at its own size (longest side up to
   640 px) and resized to 224 x 224, every backend's labels are scored with sa_lib.superpixels.quality:
   boundary recall (tolerance 2 px) and undersegmentation error (Neubert & Protzel) against scikit-image's
   labels, and boundary recall against the photo's object-mask boundaries (data/demo/annotations.json,
   automatic colour-region masks: a rough ground truth). Row "skimage, flipped" is scikit-image on the
   mirrored photo, mirrored back: how far a trivial change moves scikit-image's own superpixels.
   Row "opencv, 5 iterations" is OpenCV with half the iterations (a cheaper setting, not the default).
2. Model: the demo evaluation pairs (data/demo/eval_pairs.csv, the val photos with their ranked reference)
   are colorized with `--checkpoint` by sa_lib.inference.colorize with each backend; mean PSNR(ab) and CIEDE2000
   against the true colours, and the mean difference of each backend's output from the scikit-image one.

Writes benchmarks/results/slic_quality.md and .json and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import sa_lib.superpixels.pyramid as superpixels
from sa_lib.core.color import rgb_to_lab
from sa_lib.inference.colorize import colorize
from sa_lib.data.datasets import demo_dataset
from sa_lib.data.demo_data import DEMO_DIR
from sa_lib.eval.metrics import ciede2000, psnr_ab
from sa_lib.data.pairs import load_full_pair, read_pairs
from sa_lib.superpixels.quality import boundary_recall, undersegmentation_error
from sa_lib.superpixels.pyramid import SLIC_BACKENDS, opencv_available, slic_labels

RESULTS = Path(__file__).resolve().parent / "results"


def mask_labels(dataset, image_id: int, shape: tuple[int, int]) -> np.ndarray:
    """Object masks of an image as one label map (0: no object; later masks drawn over earlier ones)."""
    record = dataset.record(image_id)
    labels = np.zeros((record.height, record.width), np.int64)
    for number, mask in enumerate(dataset.object_masks(image_id, min_area_fraction=0.0), start=1):
        labels[mask.astype(bool)] = number
    if labels.shape != shape:
        labels = np.asarray(Image.fromarray(labels.astype(np.int32)).resize(shape[::-1], Image.NEAREST))
    return labels


def variants() -> list[tuple[str, callable]]:
    """(row name, gray -> labels) of every labelling compared."""
    def opencv_5(gray):
        kept = superpixels.OPENCV_ITERATIONS
        superpixels.OPENCV_ITERATIONS = 5
        try:
            return slic_labels(gray, backend="opencv")
        finally:
            superpixels.OPENCV_ITERATIONS = kept

    rows = [(b, lambda g, b=b: slic_labels(g, backend=b)) for b in SLIC_BACKENDS if b != "opencv" or opencv_available()]
    rows.append(("skimage, flipped", lambda g: slic_labels(g[:, ::-1].copy(), backend="skimage")[:, ::-1]))
    if opencv_available():
        rows.append(("opencv, 5 iterations", opencv_5))
    return rows


def segmentation_scores(limit: int | None) -> dict:
    dataset = demo_dataset("val")
    ids = dataset.image_ids[:limit]
    scores: dict[str, dict[str, dict[str, list[float]]]] = {}
    for image_id in ids:
        rgb = torch.from_numpy(np.array(dataset.load_rgb(image_id))).permute(2, 0, 1)[None] / 255.0  # (1, 3, H, W)
        gray_full = (rgb_to_lab(rgb)[0, 0] / 100).numpy()
        gray_224 = (rgb_to_lab(torch.nn.functional.interpolate(
            rgb, size=(224, 224), mode="bilinear", align_corners=False, antialias=True))[0, 0] / 100).numpy()
        for size_name, gray in (("own size", gray_full), ("224x224", gray_224)):
            masks = mask_labels(dataset, image_id, gray.shape)
            reference = slic_labels(gray, backend="skimage")
            for name, run in variants():
                start = time.perf_counter()
                labels = run(gray)
                elapsed = time.perf_counter() - start
                s = scores.setdefault(size_name, {}).setdefault(name, {})
                for key, value in (("br_vs_skimage", boundary_recall(labels, reference)),
                                   ("ue_vs_skimage", undersegmentation_error(labels, reference)),
                                   ("br_vs_masks", boundary_recall(labels, masks)),
                                   ("ue_vs_masks", undersegmentation_error(labels, masks)),
                                   ("count_ratio", (labels.max() + 1) / (reference.max() + 1)),
                                   ("seconds", elapsed)):
                    s.setdefault(key, []).append(float(value))
    return {size: {name: {k: float(np.mean(v)) for k, v in s.items()} | {"images": len(ids)}
                   for name, s in by_name.items()} for size, by_name in scores.items()}


def model_scores(checkpoint: str, modes: list[str], limit: int | None) -> dict:
    pairs = read_pairs(DEMO_DIR / "eval_pairs.csv", DEMO_DIR / "images", DEMO_DIR / "images", limit)
    backends = [b for b in SLIC_BACKENDS if b != "opencv" or opencv_available()]
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for pair in pairs:
        truth, reference = load_full_pair(pair)  # (H, W, 3) float32 in [0, 1]; the reference cut to its box
        truth_image = Image.fromarray((truth * 255 + 0.5).astype(np.uint8))
        for mode in modes:
            outputs = {}
            for backend in backends:
                start = time.perf_counter()
                image = colorize(truth_image.convert("L"), reference, checkpoint=checkpoint, device="cpu",
                                 mode=mode, slic=backend)
                elapsed = time.perf_counter() - start
                outputs[backend] = np.asarray(image, dtype=np.float64) / 255.0
                s = out.setdefault(mode, {}).setdefault(backend, {})
                pred = outputs[backend]
                for key, value in (("psnr_ab", psnr_ab(pred, truth)), ("ciede2000", ciede2000(pred, truth)),
                                   ("ciede2000_vs_skimage_output", ciede2000(pred, outputs["skimage"])),
                                   ("mean_abs_rgb_vs_skimage_output", np.abs(pred - outputs["skimage"]).mean() * 255),
                                   ("seconds", elapsed)):
                    s.setdefault(key, []).append(float(value))
    return {mode: {b: {k: float(np.mean(v)) for k, v in s.items()} | {"pairs": len(pairs)} for b, s in by.items()}
            for mode, by in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="demo-super")
    parser.add_argument("--modes", default="fast", help="colorize modes, comma-separated (fast, highres)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos / pairs (a quick look)")
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()
    segmentation = segmentation_scores(args.limit)
    model = model_scores(args.checkpoint, args.modes.split(","), args.limit)
    command = "python benchmarks/slic_quality.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)
    meta = {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
            "torch_threads": torch.get_num_threads(), "minutes": (time.perf_counter() - started) / 60}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "slic_quality.json").write_text(
        json.dumps({"meta": meta, "segmentation": segmentation, "model": model}, indent=2) + "\n")

    lines = ["# SLIC backends: quality", "", f"- command: `{command}`", f"- date: {meta['date']}",
             f"- machine: {meta['machine']}, torch {meta['torch_threads']} thread(s); "
             f"{meta['minutes']:.1f} min in all", "",
             "## Superpixels on the demo val photos", "",
             "Boundary recall (BR, 2 px) and undersegmentation error (UE, Neubert & Protzel) against "
             "scikit-image's labels and against the object masks; count: superpixels relative to scikit-image's; "
             "time: mean per photo.", "",
             "| size | labels | photos | BR vs skimage ↑ | UE vs skimage ↓ | BR vs masks ↑ | UE vs masks ↓ "
             "| count | time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for size, by_name in segmentation.items():
        for name, s in by_name.items():
            lines.append(f"| {size} | {name} | {s['images']} | {s['br_vs_skimage']:.3f} | {s['ue_vs_skimage']:.3f} | "
                         f"{s['br_vs_masks']:.3f} | {s['ue_vs_masks']:.3f} | {s['count_ratio']:.2f} | "
                         f"{s['seconds'] * 1e3:.0f} ms |")
    lines += ["", f"## The model's output when only the backend changes ({args.checkpoint})", "",
              "Mean over the demo evaluation pairs (ranked references); difference: between this backend's "
              "output and the scikit-image one.", "",
              "| mode | backend | pairs | PSNR(ab) ↑ | CIEDE2000 ↓ | CIEDE2000 to skimage's output | "
              "mean abs RGB difference (0-255) | time per pair |", "|---|---|---|---|---|---|---|---|"]
    for mode, by_backend in model.items():
        for backend, s in by_backend.items():
            lines.append(f"| {mode} | {backend} | {s['pairs']} | {s['psnr_ab']:.2f} | {s['ciede2000']:.2f} | "
                         f"{s['ciede2000_vs_skimage_output']:.2f} | {s['mean_abs_rgb_vs_skimage_output']:.2f} | "
                         f"{s['seconds']:.2f} s |")
    (RESULTS / "slic_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
