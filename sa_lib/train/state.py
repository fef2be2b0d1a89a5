"""A run's files: the resume state (last.state.pt), the checkpoint for users (last.safetensors + sidecar), and the
export of a finished run. Every file is written atomically (sa_lib.core.files), so a run killed at any moment
resumes from a consistent step.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core.files import atomic_write
from ..model.checkpoint import config_hash, load_checkpoint, network_hash, save_checkpoint, trainable_state
from ..model.colorizer import ColorizerConfig
from .config import RESUME_STATE, ConfigError, TrainConfig


def rng_state() -> dict[str, torch.Tensor]:
    """Torch's global RNG (CPU and CUDA). Data draws use their own per-sample seeds, so they need none."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


@dataclass(frozen=True)
class Resumed:
    """What a resumed run continues from: the step, the wall time of the sessions before (s), and the last
    validation's metrics (a state written before these were kept has 0 and none)."""

    step: int
    wall_time_s: float = 0.0
    metrics: dict = field(default_factory=dict)


def restore_state(config: TrainConfig, model, optimizer, out: Path, scaler=None) -> Resumed:
    """Load the training state of `out` (weights, optimizer, RNG, step, and fp16's gradient scaler when the file
    holds one and `scaler` is enabled); returns the step to continue from, with the run's wall time and metrics.

    Everything comes from the one file last.state.pt, written atomically, so a run killed at any moment
    resumes from a consistent step (last.safetensors, for users, may be one checkpoint newer or older).
    """
    state_file = out / RESUME_STATE
    if not state_file.is_file():
        raise ConfigError(f"nothing to resume in {out} (no last.state.pt)")
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)  # our own file: tensors and numbers
        saved = ColorizerConfig.from_json(state["config"])
        state["model"], state["optimizer"], state["rng"], state["step"]  # noqa: B018 (every part is there)
    except Exception as err:  # a truncated, empty or foreign file: unpickling can raise nearly anything
        message = " ".join(str(err).split())[:120]
        raise ConfigError(f"{state_file} is not a readable resume state ({type(err).__name__}: {message}); "
                          "restore it from a copy or train again without --resume") from None
    if saved.name != config.model.name:
        raise ConfigError(f"{state_file} is a {saved.name!r} run, this run trains {config.model.name!r}")
    if network_hash(saved) != network_hash(config.model):  # the inference-only options may differ
        raise ConfigError(f"{state_file} was trained with another model config (hash {config_hash(saved)})")
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["cpu"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng"]["cuda"])
    if scaler is not None and scaler.is_enabled() and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    return Resumed(int(state["step"]), float(state.get("wall_time_s", 0.0)), dict(state.get("metrics", {})))


def clear_run_state(out: Path) -> None:
    """Remove an earlier run's resume state and checkpoint from `out` (a new run there, --overwrite), so that
    neither can be resumed or exported as this run's if it stops before its first checkpoint."""
    for name in (RESUME_STATE, "last.safetensors", "last.json"):
        (out / name).unlink(missing_ok=True)


def save_state(model, optimizer, config: TrainConfig, last: Path, step: int, metrics: dict, scaler=None,
               wall_time_s: float = 0.0) -> None:
    """The resume file first (self-sufficient, atomic; with fp16's gradient scaler when it is enabled, the run's
    wall time so far and its last validation's metrics), then the user-facing checkpoint (its sidecar with the
    run's full TrainConfig)."""
    out = Path(config.out)
    # A random colour encoder (config.pretrained False) cannot be rebuilt from a download: it travels with the weights.
    weights = trainable_state(model) if config.pretrained else model.state_dict()
    state = {"model": {k: v.detach().cpu() for k, v in weights.items()},
             "optimizer": optimizer.state_dict(), "step": step, "rng": rng_state(),
             "config": model.config.to_json(), "wall_time_s": float(wall_time_s),
             "metrics": {key: float(value) for key, value in metrics.items()}}
    if scaler is not None and scaler.is_enabled():
        state["scaler"] = scaler.state_dict()
    atomic_write(out / RESUME_STATE, lambda tmp: torch.save(state, tmp))
    save_checkpoint(last, model, step=step, metrics={**metrics, "wall_time_s": round(wall_time_s, 1)},
                    training=config.to_dict(),
                    embed_color_encoder=not config.pretrained)


def export_run(config: TrainConfig, metrics: dict, path: Path | str) -> Path:
    """Publish a finished run: its final weights as fp16 `path` (.safetensors, with the .json sidecar) and its
    training log beside them as .log.csv, so the curves shipped with a checkpoint are always its own."""
    path = Path(path)
    model = load_checkpoint(Path(config.out) / "last.safetensors")
    save_checkpoint(path, model, step=metrics["step"], metrics=metrics, half=True, training=config.to_dict(),
                    embed_color_encoder=not config.pretrained)
    log, shipped_log = Path(config.out) / "log.csv", path.with_suffix(".log.csv")
    if log.is_file():
        atomic_write(shipped_log, lambda tmp: shutil.copyfile(log, tmp))
    else:  # never leave an older run's curves beside these weights
        shipped_log.unlink(missing_ok=True)
    return path
