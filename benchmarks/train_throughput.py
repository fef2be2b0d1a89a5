"""Training throughput (images/s) of a profile's model, loss and optimizer step, on this machine.

    python benchmarks/train_throughput.py --profile paper --variant super --steps 10
    python benchmarks/train_throughput.py --profile paper --variant super --precision bf16

Measures the training step alone (sa_lib.train.step.train_step: forward, loss, backward, Adam) on real demo photos at the profile's size
and batch, with SLIC grids precomputed as the DataLoader workers do. The colour encoder's weights do not
change the cost, so where they cannot be had (VGG19 offline) it runs with random weights and says so.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date

import torch

from sa_lib.core.color import rgb_to_lab
from sa_lib.data.datasets import demo_dataset
from sa_lib.core.hub import AssetUnavailable
from sa_lib.model.losses import ColorizationLoss, EncoderFeatureDistance, build_perceptual
from sa_lib.model.colorizer import build_model
from sa_lib.superpixels.pyramid import SuperpixelPyramid
from sa_lib.train.batches import load_resized, to_tensor
from sa_lib.train.config import profile_config
from sa_lib.train.config import PRECISIONS
from sa_lib.train.step import grad_scaler, precision_autocast, train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", choices=["demo", "paper"])
    parser.add_argument("--variant", default="super")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", default="fp32", choices=tuple(PRECISIONS))
    args = parser.parse_args()
    config = profile_config(args.profile, args.variant, precision=args.precision)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    note = ""
    try:
        model = build_model(args.variant, encoder=config.model.encoder, config=config.model)
    except AssetUnavailable:
        model, note = build_model(args.variant, encoder=config.model.encoder, config=config.model,
                                  pretrained=False), f" ({config.model.encoder} with random weights: offline)"
    model = model.to(device).train()
    try:
        perceptual = build_perceptual(config.perceptual)
    except AssetUnavailable:
        perceptual, note = EncoderFeatureDistance(), note + " (effnet_feature_distance instead of LPIPS-VGG: offline)"
    loss_fn = ColorizationLoss(perceptual).to(device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)

    photos = demo_dataset("train")
    ids = photos.image_ids[: 2 * config.batch_size]
    images = torch.stack([to_tensor(load_resized(photos, i, config.image_size)) for i in ids])
    target, reference = images[: config.batch_size].to(device), images[config.batch_size:].to(device)
    lab = rgb_to_lab(target)
    sp = {}
    if args.variant == "super":
        sp = {"target_superpixels": SuperpixelPyramid.from_gray(lab[:, :1] / 100),
              "reference_superpixels": SuperpixelPyramid.from_gray(rgb_to_lab(reference)[:, :1] / 100)}
    autocast = precision_autocast(device, config.precision)  # fp32 unless --precision says otherwise
    scaler = grad_scaler(device, enabled=config.precision == "fp16")
    times = []
    for step in range(args.steps + 2):  # two warm-up steps
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_step(model, loss_fn, optimizer, lab, reference, sp, autocast, scaler)  # the training loop's own step
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    step_time = sorted(times[2:])[len(times[2:]) // 2]
    machine = torch.cuda.get_device_name() if device == "cuda" else \
        f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(f"{date.today()} | {machine} | profile {args.profile} | {args.variant} | batch {config.batch_size} | "
          f"{config.image_size}x{config.image_size} | {config.precision} | median step {step_time * 1000:.0f} ms | "
          f"{config.batch_size / step_time:.1f} images/s{note}")


if __name__ == "__main__":
    main()
