"""The authors' released network in this project against the authors' own code: time, peak memory, output.

    python benchmarks/official.py [--sizes 448,896] [--repeats 3] [--authors-code DIR]

Same weights on both sides: a random-weight checkpoint with the authors' key names (their checkpoint cannot be
downloaded here) and random vgg19_bn weights, converted by sa_lib.model.official to the preset
ColorizerConfig.official(). One gray target and one colour reference (demo photos, squashed to S x S, as the
authors' code squashes to 224 x 224) go through, end to end from the 8-bit images to ab:

- ours: sa_lib's L* of the target, then `model(target_l, reference)` (SLIC, VGG, the network), in
  torch.inference_mode;
- theirs: their test path (data/data_true.MyData_test's preprocessing with its hard-coded 224 made S, their
  utils.img_segments_only SLIC, models.model_perceptual.percep_vgg19_bn, models.super_skip_unet's
  gen_color_stride_vgg16 forward) in torch.no_grad. DIR is a copy of their public repository
  (hernan0930/Super-attention-for-exemplar-based-image-colorization, MIT), kept OUTSIDE this repository, with
  torch_scatter importable (their compiled extension, or any module giving torch_scatter.scatter_max). Without
  DIR the authors' side is reported as not run.

Each side runs in a fresh process: a warm-up pass whose peak memory is measured (Linux VmHWM, reset after the
model is loaded; "peak RSS" is the process's whole high-water mark, "forward" the part above the loaded
state), then `repeats` timed passes (median). The two outputs are compared (max / mean |ab difference|).
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from skimage import color
from skimage.color import rgb2gray
from skimage.transform import resize

from sa_lib.model.checkpoint import load_checkpoint
from sa_lib.core.color import rgb_to_lab
from sa_lib.inference.colorize import exact_8bit
from sa_lib.data.demo_data import load_split
from sa_lib.model.encoders import torchvision_vgg_keys
from sa_lib.model.official import authors_keys, convert, official_model

ROOT = Path(__file__).resolve().parent.parent


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def prepare(workdir: Path, seed: int = 0) -> None:
    """Random weights with the authors' key names, random vgg19_bn features, the converted checkpoint, a pair."""
    g = torch.Generator().manual_seed(seed)
    model = official_model()
    state = {}
    for key, shape in authors_keys(model).items():  # He-initialised convs, BN statistics near a trained net's
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif len(shape) == 1:  # biases, BN weights (around 1) and running means
            base = 1.0 if key.endswith(".weight") else 0.0
            state[key] = base + torch.randn(shape, generator=g) * 0.1
        else:
            state[key] = torch.randn(shape, generator=g) * (2.0 / int(np.prod(shape[1:]))) ** 0.5
    torch.save({"state_dict": state}, workdir / "checkpoint.pt")
    vgg = {}
    for key, theirs in torchvision_vgg_keys(model.color_encoder).items():
        value = model.color_encoder.state_dict()[key]
        vgg[theirs] = (torch.rand(value.shape, generator=g) + 0.5 if "running_var" in key else value
                       if not value.is_floating_point() else torch.randn(value.shape, generator=g) * 0.05)
    torch.save(vgg, workdir / "vgg19_bn.pth")
    convert(workdir / "checkpoint.pt", workdir / "official.safetensors", workdir / "vgg19_bn.pth")
    photos = load_split("val")
    Image.open(photos[0]).convert("L").convert("RGB").save(workdir / "target.png")
    Image.open(photos[1]).convert("RGB").save(workdir / "reference.png")


def _pair(workdir: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair as 8-bit arrays squashed to size x size (as their code squashes to 224)."""
    def load(name):
        return np.asarray(Image.open(workdir / name).convert("RGB").resize((size, size), Image.BICUBIC))
    return load("target.png"), load("reference.png")


def ours(workdir: Path, size: int):
    model = load_checkpoint(workdir / "official.safetensors")
    target, reference = _pair(workdir, size)

    def run() -> np.ndarray:
        t = exact_8bit(torch.from_numpy(target).permute(2, 0, 1)[None].float() / 255.0)  # (1, 3, S, S)
        r = exact_8bit(torch.from_numpy(reference).permute(2, 0, 1)[None].float() / 255.0)
        with torch.inference_mode():
            ab, _ = model(rgb_to_lab(t)[:, :1], r)
        return ab[0].numpy()

    return run


def theirs(workdir: Path, size: int, authors_code: Path):
    """Their test path at size x size, calling their own functions (from authors_code, outside this repo)."""
    sys.path.insert(0, str(authors_code))
    import models.model_perceptual as perceptual  # noqa: E402  (their code)
    from models.super_skip_unet import gen_color_stride_vgg16  # noqa: E402
    from utils import imagenet_norm, img_segments_only  # noqa: E402

    net = gen_color_stride_vgg16(dim=2)
    net.load_state_dict(torch.load(workdir / "checkpoint.pt", weights_only=True)["state_dict"])
    net.eval()
    vgg = torchvision.models.vgg19_bn(weights=None)
    vgg.load_state_dict(torch.load(workdir / "vgg19_bn.pth", weights_only=True), strict=False)
    perceptual.vgg19_bn = lambda pretrained=True: vgg  # their class asks torchvision for ImageNet weights
    percep = perceptual.percep_vgg19_bn().eval()
    target, reference = _pair(workdir, size)

    def tensor(a):  # their ToTensor: (H, W, C) -> (1, C, H, W), kept float64 until testing_color's .float()
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]

    def run() -> np.ndarray:
        # data_true.MyData_test.__getitem__, with its (224, 224) made (size, size)
        x_real = rgb2gray(target)
        x = rgb2gray(resize(target, (size, size)))
        ref = resize(reference, (size, size))
        ref_l = color.rgb2lab(ref)[:, :, 0] / 100.0
        x_map = (np.std(ref_l) / np.std(x)) * (x - np.mean(x)) + np.mean(ref_l)
        t_slic = [tensor(img_segments_only(x, 2 ** i, int(size / 2 ** i))[:, :, None]) for i in range(3)]
        r_slic = [tensor(img_segments_only(ref_l, 2 ** i, int(size / 2 ** i))[:, :, None]) for i in range(3)]
        gray_real = tensor(np.repeat(x_real[:, :, None], 3, axis=2)).float()
        x_map3 = tensor(np.repeat(x_map[:, :, None], 3, axis=2)).float()
        ref_gray = tensor(np.repeat(ref_l[:, :, None], 3, axis=2)).float()
        # testing.testing_color
        with torch.no_grad():
            f1, f2, f3, _, _ = percep(imagenet_norm(tensor(ref).float(), "cpu"))
            out_reg, _, _ = net(ref_gray, gray_real, t_slic, r_slic, x_map3, gray_real, f1, f2, f3, "cpu")
        return (out_reg * 127.0)[0].numpy()

    return run


def worker(side: str, size: int, workdir: Path, repeats: int, authors_code: Path | None) -> None:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    run = ours(workdir, size) if side == "ours" else theirs(workdir, size, authors_code)
    before = _rss_kb("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    ab = run()
    first = time.perf_counter() - started
    peak = _rss_kb("VmHWM")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    np.save(workdir / f"ab-{side}-{size}.npy", ab)
    print(json.dumps({"first_s": first, "times_s": times, "rss_before_mb": before / 1024,
                      "peak_rss_mb": peak / 1024, "forward_mb": (peak - before) / 1024}))


def spawn(side: str, size: int, workdir: Path, repeats: int, authors_code: Path | None) -> dict:
    argv = [sys.executable, __file__, "--worker", side, "--size", str(size), "--workdir", str(workdir),
            "--repeats", str(repeats)] + (["--authors-code", str(authors_code)] if authors_code else [])
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"official.py: the {side} worker at {size} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="448,896")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--authors-code", type=Path, default=None,
                        help="a copy of the authors' repository, outside this one (torch_scatter importable)")
    parser.add_argument("--worker", choices=("ours", "theirs"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.size, args.workdir, args.repeats, args.authors_code)
        return
    if args.authors_code is not None and not (args.authors_code / "models" / "super_skip_unet.py").is_file():
        raise SystemExit(f"official.py: {args.authors_code} is not a copy of the authors' repository")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs), torch {torch.__version__}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prepare(workdir)
        for size in sizes:
            results = {"ours": spawn("ours", size, workdir, args.repeats, None)}
            if args.authors_code is not None:
                results["theirs"] = spawn("theirs", size, workdir, args.repeats, args.authors_code)
            for side, r in results.items():
                r["median_s"] = statistics.median(r["times_s"]) if r["times_s"] else r["first_s"]
            if "theirs" in results:
                diff = np.abs(np.load(workdir / f"ab-ours-{size}.npy") - np.load(workdir / f"ab-theirs-{size}.npy"))
                same = f"max {diff.max():.2g}, mean {diff.mean():.2g}"
            else:
                same = "authors' side not run (no --authors-code)"
            rows.append((size, results, same))
            print(json.dumps({"size": size, **results, "ab_difference": same}))
    print("\n| size | side | time per pair (median of {}) | peak RSS | forward's peak above the loaded model | "
          "ab against theirs |".format(args.repeats))
    print("|---|---|---|---|---|---|")
    for size, results, same in rows:
        for side, r in results.items():
            name = "ours (`ColorizerConfig.official()`)" if side == "ours" else "theirs (authors' code)"
            print(f"| {size}x{size} | {name} | {r['median_s']:.2f} s | {r['peak_rss_mb'] / 1024:.2f} GB | "
                  f"{r['forward_mb'] / 1024:.2f} GB | {same if side == 'ours' else ''} |")
        if "theirs" in results:
            t, o = results["theirs"], results["ours"]
            print(f"| {size}x{size} | ratio | {t['median_s'] / o['median_s']:.1f}x faster | "
                  f"{o['peak_rss_mb'] / t['peak_rss_mb']:.2f} of theirs | "
                  f"{o['forward_mb'] / max(t['forward_mb'], 1):.2f} of theirs | |")


if __name__ == "__main__":
    main()
