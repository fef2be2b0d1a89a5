"""`make gpu-check`: the paper path's GPU numbers, measured on a CUDA machine and written to BENCHMARKS.md.

    python benchmarks/gpu_check.py              # measure, print, rewrite BENCHMARKS.md's "GPU check" section
    python benchmarks/gpu_check.py --no-write   # measure and print only

Without a CUDA GPU it prints one line saying so and exits 0 (CI and this project's CPU machine: nothing to
measure, nothing written). On a GPU it measures, in about 3-6 minutes (every part has its own time limit):

1. torch SLIC (sa_lib.superpixels.slic_torch) on 64 gray 224 x 224 images in one call: the median time (goal < 20 ms),
   and the three-level pyramid of such a batch as SuperpixelPyramid.from_gray builds it.
2. Paper-profile training throughput at 224 x 224: ColorizerConfig.paper("super") (VGG19 with random weights:
   the same cost as pretrained ones, and no download), the LPIPS-VGG loss with a random backbone
   (build_perceptual("lpips_vgg", pretrained=False): the same cost), Adam, superpixels by the torch SLIC in the
   step (`sa-train --slic torch`), through the training loop's own step (sa_lib.train.step.train_step), in fp32
   and under bf16 autocast; images/s over the timed steps (goal >= 500).
3. Attention agreement fp32 vs bf16: the paper model's three super-attention maps on demo photos at 224,
   (a) the attention blocks given the same inputs under bf16 autocast (the fp32 island: goal <= 1e-3), and
   (b) the whole model under bf16 autocast against fp32 (its encoder runs in bf16, so the features differ):
   largest absolute difference, mean L1 per row and the share of rows whose argmax agrees.
4. One DDP training step with NCCL: `torchrun --nproc-per-node <GPUs> -m sa_lib.cli.train --profile smoke
   --variant super --slic torch --steps 2`, which validates on every rank (one shard each).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # bench_timing, also when this file is loaded by path (tests)
from bench_timing import synchronized_times  # noqa: E402 (after the path it is found on)
BENCHMARKS = ROOT / "BENCHMARKS.md"
START, END = "<!-- gpu-check:start -->", "<!-- gpu-check:end -->"
NO_GPU = "gpu-check: no CUDA GPU here (torch.cuda.is_available() is False): nothing measured, BENCHMARKS.md unchanged"


def _median(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[len(ordered) // 2]


def demo_batch(n: int, size: int = 224):
    """(n, 3, size, size) demo photos in [0, 1] (repeated if there are fewer)."""
    import torch

    from sa_lib.data.datasets import demo_dataset
    from sa_lib.train.batches import load_resized, to_tensor

    photos = demo_dataset("all")
    ids = [photos.image_ids[i % len(photos.image_ids)] for i in range(n)]
    return torch.stack([to_tensor(load_resized(photos, i, size)) for i in ids])


def measure_slic(device, batch: int = 64, size: int = 224, repeats: int = 20) -> dict:
    import torch

    from sa_lib.core.color import rgb_to_lab
    from sa_lib.superpixels.pyramid import SuperpixelPyramid, n_segments_for
    from sa_lib.superpixels.slic_torch import slic_torch

    gray = (rgb_to_lab(demo_batch(batch, size))[:, :1] / 100).to(device)  # (B, 1, S, S)
    with torch.inference_mode():
        synchronized_times(lambda: slic_torch(gray, n_segments_for(size, size)), 3, device)  # warm-up
        level = synchronized_times(lambda: slic_torch(gray, n_segments_for(size, size)), repeats, device)
        pyramid = synchronized_times(lambda: SuperpixelPyramid.from_gray(gray, 3, backend="torch"), max(3, repeats // 4), device)
    return {"batch": batch, "size": size, "level0_ms": round(_median(level) * 1000, 2),
            "pyramid_ms": round(_median(pyramid) * 1000, 2)}


def paper_model(device, pretrained: bool = False, config=None):
    from sa_lib.model.colorizer import ColorizerConfig, build_model

    config = config or ColorizerConfig.paper("super")
    return build_model("super", encoder=config.encoder, config=config, pretrained=pretrained).to(device)


def lpips_vgg_random(device):
    """The paper's LPIPS-VGG loss with a random VGG16 backbone and the wheel's real linear heads (same cost)."""
    from sa_lib.model.losses import build_perceptual

    return build_perceptual("lpips_vgg", pretrained=False).to(device)


def measure_training(device, precision: str, batch: int = 8, size: int = 224, steps: int = 10,
                     config=None, loss=None) -> dict:
    """Images/s of the paper-profile step (forward with the torch SLIC, loss, backward, Adam)."""
    import torch

    from sa_lib.core.color import rgb_to_lab
    from sa_lib.model.losses import ColorizationLoss
    from sa_lib.train.step import grad_scaler, precision_autocast, train_step

    torch.manual_seed(0)
    model = paper_model(device, config=config).train()
    loss_fn = ColorizationLoss(loss if loss is not None else lpips_vgg_random(device)).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    images = demo_batch(2 * batch, size).to(device)
    target, reference = images[:batch], images[batch:]
    lab = rgb_to_lab(target)
    scaler = grad_scaler(device, enabled=precision == "fp16")

    def step():  # the training loop's own step, superpixels by the torch SLIC inside the forward
        train_step(model, loss_fn, optimizer, lab, reference, None, precision_autocast(device, precision), scaler,
                   slic_backend="torch")

    synchronized_times(step, 2, device)  # warm-up (cuDNN autotuning, allocator)
    times = synchronized_times(step, steps, device)
    seconds = sum(times)
    return {"precision": precision, "batch": batch, "size": size, "steps": steps,
            "median_step_ms": round(_median(times) * 1000, 1), "images_per_s": round(batch * steps / seconds, 1)}


def _row_stats(a, b) -> dict:
    """Largest |difference|, mean L1 per row, share of rows with the same argmax, over real rows of (B, S, S')."""
    rows = a.sum(-1) > 0  # padding rows of the super-attention are 0
    diff = (a - b).abs()
    return {"max_abs": float(diff.max()), "row_l1": float(diff.sum(-1)[rows].mean()),
            "argmax_agree": float((a.argmax(-1) == b.argmax(-1))[rows].float().mean())}


def measure_agreement(device, batch: int = 4, size: int = 224, config=None) -> dict:
    """fp32 against bf16 autocast: (a) each attention block on the same inputs, (b) the whole model."""
    import torch

    from sa_lib.core.color import rgb_to_lab

    torch.manual_seed(0)
    model = paper_model(device, config=config).eval()
    images = demo_batch(2 * batch, size).to(device)
    target_l, reference = rgb_to_lab(images[:batch])[:, :1], images[batch:]
    captured: dict = {}

    def keep(level):
        def hook(module, args, kwargs, output):
            captured[level] = (args, kwargs, output[1].detach())
        return hook

    handles = [model.attention[str(l)].register_forward_hook(keep(l), with_kwargs=True) for l in (0, 1, 2)]
    with torch.inference_mode():
        _, fp32 = model(target_l, reference, slic_backend="torch")
        for handle in handles:
            handle.remove()
        blocks = {}
        for level, (args, kwargs, attention) in sorted(captured.items()):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                _, amp = model.attention[str(level)](*args, **kwargs)
            blocks[level] = _row_stats(attention.float(), amp.float())
        with torch.autocast(device.type, dtype=torch.bfloat16):
            _, bf16 = model(target_l, reference, slic_backend="torch",
                            target_superpixels=fp32["target_superpixels"],
                            reference_superpixels=fp32["reference_superpixels"])
    whole = {level: _row_stats(fp32["attention"][level].float(), bf16["attention"][level].float()) for level in (0, 1, 2)}
    return {"batch": batch, "size": size, "blocks": blocks, "model": whole}


def measure_ddp(timeout: int = 240) -> dict:
    import torch

    gpus = torch.cuda.device_count()
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(gpus), "--master-port",
                   "29561", "-m", "sa_lib.cli.train", "--profile", "smoke", "--variant", "super", "--slic", "torch",
                   "--steps", "2", "--no-progress", "--out", str(Path(tmp) / "ddp")]
        started = time.perf_counter()
        try:
            result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"gpus": gpus, "ok": False, "detail": f"timed out after {timeout} s"}
        seconds = time.perf_counter() - started
        ok = result.returncode == 0 and (Path(tmp) / "ddp" / "last.safetensors").is_file()
        detail = "" if ok else " ".join(result.stderr.split())[-300:]
    return {"gpus": gpus, "backend": "nccl", "ok": ok, "seconds": round(seconds, 1), "detail": detail}


def report(results: dict) -> str:
    """The BENCHMARKS.md section (markdown) of a gpu-check run."""
    slic, agreement, ddp = results["slic"], results["agreement"], results["ddp"]
    lines = [START, "## GPU check (`make gpu-check`)", "",
             f"`python benchmarks/gpu_check.py` on {results['device']} (torch {results['torch']}), "
             f"{results['date']}, {results['seconds']:.0f} s in all.", "",
             "| measure | result | goal |", "|---|---|---|",
             f"| torch SLIC, {slic['batch']} x {slic['size']}² gray, one level (n = 224) | {slic['level0_ms']} ms "
             f"| < 20 ms: {'met' if slic['level0_ms'] < 20 else 'not met'} |",
             f"| torch SLIC, the same batch, three-level pyramid | {slic['pyramid_ms']} ms | |"]
    for run in results["training"]:
        lines.append(f"| paper-profile training step, super, batch {run['batch']}, {run['size']}², {run['precision']} "
                     f"(torch SLIC in the step, LPIPS-VGG) | {run['images_per_s']} images/s "
                     f"({run['median_step_ms']} ms/step) | >= 500 images/s: "
                     f"{'met' if run['images_per_s'] >= 500 else 'not met'} |")
    for level in (0, 1, 2):
        block, whole = agreement["blocks"][level], agreement["model"][level]
        lines.append(f"| attention level {level}, fp32 vs bf16 autocast: the block on the same inputs | max "
                     f"{block['max_abs']:.2e}, row L1 {block['row_l1']:.2e}, argmax {block['argmax_agree']:.1%} "
                     f"| <= 1e-3: {'met' if block['max_abs'] <= 1e-3 else 'not met'} |")
        lines.append(f"| attention level {level}, fp32 vs bf16 autocast: the whole model (bf16 encoder) | max "
                     f"{whole['max_abs']:.2e}, row L1 {whole['row_l1']:.2e}, argmax {whole['argmax_agree']:.1%} | |")
    lines.append(f"| one DDP training run (2 steps, validation on every rank), NCCL, {ddp['gpus']} GPU(s) | "
                 f"{'ok' if ddp['ok'] else 'FAILED'}{', ' + str(ddp.get('seconds')) + ' s' if ddp['ok'] else ': ' + ddp['detail']} | runs |")
    return "\n".join(lines + ["", END])


def write_section(section: str, path: Path = BENCHMARKS) -> None:
    """Replace the gpu-check section of BENCHMARKS.md (between its markers), or append it."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--batch-size", type=int, default=8, help="training batch (the paper's: 8)")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per precision")
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(NO_GPU)
        return 0
    device = torch.device("cuda", 0)
    torch.cuda.set_device(device)
    started = time.perf_counter()
    results = {"device": torch.cuda.get_device_name(device), "torch": torch.__version__,
               "date": datetime.date.today().isoformat()}
    results["slic"] = measure_slic(device)
    print(f"[gpu-check] SLIC {results['slic']}", flush=True)
    results["training"] = [measure_training(device, p, args.batch_size, steps=args.steps) for p in ("fp32", "bf16")]
    print(f"[gpu-check] training {results['training']}", flush=True)
    results["agreement"] = measure_agreement(device)
    print(f"[gpu-check] attention agreement {json.dumps(results['agreement'])}", flush=True)
    torch.cuda.empty_cache()
    results["ddp"] = measure_ddp()
    print(f"[gpu-check] DDP {results['ddp']}", flush=True)
    results["seconds"] = time.perf_counter() - started
    section = report(results)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"[gpu-check] wrote the GPU check section of {BENCHMARKS}")
    return 0 if results["ddp"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
