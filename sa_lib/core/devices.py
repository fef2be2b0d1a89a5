"""Which torch device a command runs on: one rule for every entry point ("auto", "cpu", "cuda", "cuda:N")."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """An unknown device name, or a GPU asked for where there is none (a usage error: exit code 2)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> the GPU when CUDA is available, else the CPU; named devices are checked to exist."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise DeviceError(f"unknown device {device!r}; choose auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for, but no CUDA GPU is available")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise DeviceError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return torch.device(device)
