"""The one training step: forward, the loss of eq. 6, backward and the optimizer's step.

Used by the training loop (sa_lib.train.loop), the throughput benchmark (benchmarks/train_throughput.py) and
the tiny-overfit test, so the three measure and train the same thing.
"""

from __future__ import annotations

import contextlib

import torch


def train_step(model, loss_fn, optimizer, target_lab: torch.Tensor, reference: torch.Tensor,
               superpixels: dict | None = None, autocast=None) -> dict[str, torch.Tensor]:
    """One optimisation step on a batch; returns the loss terms (as sa_lib.model.losses.ColorizationLoss).

    target_lab: (B, 3, H, W) the targets in CIE Lab (L* the input, a*b* the truth); reference: (B, 3, H', W')
    sRGB; superpixels: precomputed pyramids ({"target_superpixels", "reference_superpixels"}) or None;
    autocast: a torch.autocast context for the forward (bf16 on CUDA), or None.
    """
    with autocast if autocast is not None else contextlib.nullcontext():
        ab, _ = model(target_lab[:, :1], reference, **(superpixels or {}))
    losses = loss_fn(ab.float(), target_lab[:, :1], target_lab[:, 1:])
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    optimizer.step()
    return losses
