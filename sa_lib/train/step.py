"""The one training step: forward, the loss of eq. 6, backward and the optimizer's step.

Used by the training loop (sa_lib.train.loop), the throughput benchmark (benchmarks/train_throughput.py) and
the tiny-overfit test, so the three measure and train the same thing.
"""

from __future__ import annotations

import contextlib

import torch

from .config import PRECISIONS


def precision_autocast(device: torch.device | str, precision: str):
    """The forward's autocast for a precision of PRECISIONS on `device`: off for fp32, bf16 / fp16 otherwise
    (the attention blocks keep their correlation and softmax in fp32 inside it)."""
    dtype = PRECISIONS[precision]
    return torch.autocast(torch.device(device).type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def grad_scaler(device: torch.device | str, enabled: bool):
    """fp16's gradient scaler (a pass-through when not enabled)."""
    device_type = torch.device(device).type
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(device_type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # torch < 2.3


def train_step(model, loss_fn, optimizer, target_lab: torch.Tensor, reference: torch.Tensor,
               superpixels: dict | None = None, autocast=None, scaler=None,
               slic_backend: str | None = None) -> dict[str, torch.Tensor]:
    """One optimisation step on a batch; returns the loss terms (as sa_lib.model.losses.ColorizationLoss).

    target_lab: (B, 3, H, W) the targets in CIE Lab (L* the input, a*b* the truth); reference: (B, 3, H', W')
    sRGB; superpixels: precomputed pyramids ({"target_superpixels", "reference_superpixels"}) or None;
    autocast: a torch.autocast context for the forward (precision_autocast), or None; scaler: fp16's gradient
    scaler (grad_scaler), or None; slic_backend: the SLIC backend of superpixels not given (the model's own,
    ColorizerConfig.slic_backend), or None for the forward's default.
    """
    backend = {} if slic_backend is None else {"slic_backend": slic_backend}
    with autocast if autocast is not None else contextlib.nullcontext():
        ab, _ = model(target_lab[:, :1], reference, **(superpixels or {}), **backend)
    losses = loss_fn(ab.float(), target_lab[:, :1], target_lab[:, 1:])
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        losses["total"].backward()
        optimizer.step()
    else:
        scaler.scale(losses["total"]).backward()  # without fp16 the scaler is a pass-through
        scaler.step(optimizer)
        scaler.update()
    return losses
