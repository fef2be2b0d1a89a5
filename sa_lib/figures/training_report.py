"""Notebook 02's training step: decide whether to retrain, train when needed, and plot the curves.

The demo profile ships its three trained variants (checkpoints/demo-{none,standard,super}) with their training
logs (`.log.csv`). Retraining them takes about 30 min per variant on a 2-core CPU, so a shipped checkpoint is
reused, and its log plotted, when its network config is the one the profile would train (same
`sa_lib.model.checkpoint.network_hash`: the config hash without the inference-only options, which
sa-calibrate-chroma sets after training) and no retraining was asked for. Otherwise the variant is trained with
`sa_lib.train.loop.train` (on the GPU whenever one is present) into runs/PROFILE-VARIANT, its new log plotted, and
its weights and log published as checkpoints/PROFILE-VARIANT.{safetensors,json,log.csv}, which is what the
later notebooks (Tables 1 and 2, Fig. 3, 5, 6) load. The `smoke` profile always trains, a few steps of the
`super` variant: it exists to run the training code, and never touches checkpoints/.

The curves: the training loss (eq. 6: lambda1 SmoothL1 + lambda2 perceptual) and the validation metrics
logged every `val_every` steps on the evaluation pairs, PSNR(ab), CIEDE2000 and dHIS, with each pair's
ranked top-1 reference (solid) and with the target's own ground truth as reference (dashed), the easy case
that a model which uses its reference must exploit.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D

from ..core.devices import resolve_device
from ..core.files import CHECKPOINT_DIR, REPO_ROOT, atomic_write
from ..eval.chroma_calibration import calibrate, calibration_pairs, load_for_calibration, write_calibration
from ..model.checkpoint import CheckpointError, network_hash
from ..model.colorizer import ColorizerConfig
from ..profiles import Profile, get_profile
from ..train.config import TrainConfig, profile_config
from ..train.loop import train
from ..train.state import export_run
from .model_card import write_model_card

RUNS_DIR = REPO_ROOT / "runs"
# (column, title, better) of the validation panels; "gtref_" columns are the same with the ground truth as reference.
VAL_METRICS = (("val_psnr_ab", "PSNR(ab), dB", "higher"), ("val_ciede2000", "CIEDE2000", "lower"),
               ("val_delta_his", "dHIS", "lower"))
COLORS = {"none": "tab:gray", "standard": "tab:red", "super": "tab:blue", "transfer": "tab:green"}


@dataclass(frozen=True)
class TrainingPlan:
    """What to do for one variant: train it (`retrain`) or reuse `checkpoint`; `log` is where its curves are."""

    variant: str
    retrain: bool
    reason: str
    config: TrainConfig
    log: Path
    checkpoint: Path | None = None  # the shipped .safetensors reused (None when retraining)


def profile_variants(profile: str) -> tuple[str, ...]:
    """The variants notebook 02 shows (sa_lib.profiles: `report_variants`): the three of the ablation (and the
    demo's transfer model), or only `super` for the smoke profile."""
    return get_profile(profile).report_variants


def shipped_hash(sidecar: Path) -> str | None:
    """The network_hash of the config in a checkpoint's JSON sidecar (its config_hash without the inference-only
    options, which sa-calibrate-chroma may have set); None when the file is missing or unreadable."""
    try:
        return network_hash(ColorizerConfig.from_dict(json.loads(Path(sidecar).read_text())["config"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def plan_variant(profile: str, variant: str, retrain: bool = False, runs_dir: Path = RUNS_DIR,
                 checkpoint_dir: Path = CHECKPOINT_DIR) -> TrainingPlan:
    """Reuse checkpoints/PROFILE-VARIANT when its config hash matches the profile's and `retrain` is False."""
    config = profile_config(profile, variant, out=str(Path(runs_dir) / f"{profile}-{variant}"))
    run_log = Path(config.out) / "log.csv"
    if not get_profile(profile).reuses_checkpoints:
        return TrainingPlan(variant, True, f"the {profile} profile always trains (a few steps)", config, run_log)
    if retrain:
        return TrainingPlan(variant, True, "retraining was asked for", config, run_log)
    stem = Path(checkpoint_dir) / f"{profile}-{variant}"
    weights, sidecar, log = stem.with_suffix(".safetensors"), stem.with_suffix(".json"), stem.with_suffix(".log.csv")
    wanted, found = network_hash(config.model), shipped_hash(sidecar)
    if not weights.is_file() or found is None:
        return TrainingPlan(variant, True, f"no shipped checkpoint {weights.name}", config, run_log)
    if found != wanted:
        return TrainingPlan(variant, True, f"{sidecar.name} has network hash {found}, the {profile} profile "
                                           f"needs {wanted}", config, run_log)
    if not log.is_file():
        return TrainingPlan(variant, True, f"{weights.name} matches but its training log {log.name} is missing",
                            config, run_log)
    return TrainingPlan(variant, False, f"shipped {weights.name} matches the {profile} network (hash {wanted})",
                        config, log, weights)


def plan_training(profile: str, retrain: bool = False, variants: Sequence[str] | None = None,
                  runs_dir: Path = RUNS_DIR, checkpoint_dir: Path = CHECKPOINT_DIR) -> list[TrainingPlan]:
    """One `plan_variant` per variant shown for `profile` (or per variant of `variants`)."""
    return [plan_variant(profile, v, retrain, runs_dir, checkpoint_dir) for v in variants or profile_variants(profile)]


def publish(plan: TrainingPlan, metrics: dict, profile: str, checkpoint_dir: Path = CHECKPOINT_DIR) -> Path:
    """Export a finished run as checkpoints/PROFILE-VARIANT (fp16 weights, JSON sidecar, training log)."""
    return export_run(plan.config, metrics, Path(checkpoint_dir) / f"{profile}-{plan.variant}.safetensors")


def calibrate_transfer(profile: Profile, retrained: set[str], checkpoint_dir: Path = CHECKPOINT_DIR,
                       device: str = "cpu") -> bool:
    """After a retrain of the transfer model or of its blend partner (Profile.transfer_blend): store the partner's
    network in checkpoints/PROFILE-transfer and fit its chroma gain, as `make train-demo` does with
    `sa-calibrate-chroma --blend`. True when it did; False when nothing asked for it or a file is missing."""
    partner = profile.transfer_blend
    if partner is None or not retrained & {"transfer", partner}:
        return False
    source = Path(checkpoint_dir) / f"{profile.name}-transfer.safetensors"
    partner_file = Path(checkpoint_dir) / f"{profile.name}-{partner}.safetensors"
    if not (source.is_file() and partner_file.is_file()):
        warnings.warn(f"{source.name} not blended with {partner_file.name} (one is missing): run sa-calibrate-chroma "
                      f"{source} --blend {partner_file}", stacklevel=2)
        return False
    model = load_for_calibration(source, partner_file, device)
    result = calibrate(model, calibration_pairs(profile), size=profile.eval_size)
    write_calibration(source, source, model, result, profile.name)
    return True


def execute(plans: Sequence[TrainingPlan], device: str = "auto", progress: bool = True,
            checkpoint_dir: Path = CHECKPOINT_DIR) -> dict[str, dict]:
    """Train every planned variant that needs it (fresh runs, not resumed); returns their final metrics.

    Outside the smoke profile each trained variant is published to checkpoint_dir (see `publish`), and a retrain of
    the transfer model or of its blend partner is followed by `calibrate_transfer`.

    `sa_lib.train.loop.train` uses the GPU whenever CUDA is available: `device="cpu"` cannot hide it and only
    warns; `device="cuda"` without a GPU is an error.
    """
    resolved = resolve_device(device)  # raises for an unknown device or a missing GPU
    if resolved.type == "cpu" and torch.cuda.is_available():
        warnings.warn("sa_lib.train.loop trains on the GPU whenever one is present; device='cpu' is not honoured",
                      stacklevel=2)
    results = {}
    for plan in (p for p in plans if p.retrain):
        results[plan.variant] = train(replace(plan.config, progress=progress))
        if get_profile(plan.config.profile).reuses_checkpoints:
            publish(plan, results[plan.variant], plan.config.profile, checkpoint_dir)
    for name in {p.config.profile for p in plans if p.retrain}:  # the transfer model's partner and gain, as shipped
        profile = get_profile(name)
        if profile.reuses_checkpoints:
            calibrate_transfer(profile, {p.variant for p in plans if p.retrain and p.config.profile == name},
                               checkpoint_dir, resolved.type)
    card = any(get_profile(p.config.profile).writes_model_card for p in plans if p.retrain)
    if card and Path(checkpoint_dir) == CHECKPOINT_DIR:
        try:  # the card states the shipped files' hashes and metrics: re-measure them
            write_model_card()
        except (CheckpointError, FileNotFoundError) as err:  # the weights are published; say what is left to do
            warnings.warn(f"checkpoints/MODEL_CARD.md not rewritten ({err}): run `make model-card`", stacklevel=2)
    return results


def load_log(path: Path | str) -> dict[str, np.ndarray]:
    """A training log.csv as columns of floats (empty cells, the steps without validation, are NaN)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training log not found: {path}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "step" not in rows[0] or "loss" not in rows[0]:
        raise ValueError(f"{path} is not a training log (no step/loss rows)")
    return {key: np.array([float(r[key]) if r.get(key) not in (None, "") else math.nan for r in rows])
            for key in rows[0]}


def smoothed(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing running mean over `window` entries (fewer at the start), to read a noisy loss."""
    window = max(1, window)
    sums = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))  # sums[i] = sum(values[:i])
    end = np.arange(1, len(values) + 1)
    start = np.maximum(end - window, 0)
    return (sums[end] - sums[start]) / (end - start)


def final_metrics(logs: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """Markdown table: each variant's last logged step, loss and validation metrics."""
    columns = [("loss", "loss")] + [(c, t) for c, t, _ in VAL_METRICS] + [(f"val_gtref_{c[4:]}", f"{t}, GT ref")
                                                                        for c, t, _ in VAL_METRICS]
    lines = ["| variant | step | " + " | ".join(t for _, t in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for variant, log in logs.items():
        cells = []
        for column, _ in columns:
            values = log.get(column, np.array([]))
            valid = values[~np.isnan(values)] if len(values) else values
            cells.append(f"{valid[-1]:.3f}" if len(valid) else "-")
        lines.append(f"| {variant} | {int(log['step'][-1])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_training_curves(logs: Mapping[str, Mapping[str, np.ndarray]], out: Path, title: str = "") -> Path:
    """2 x 2 panels: training loss (raw and smoothed), then val PSNR(ab), CIEDE2000 and dHIS per variant
    (solid: ranked top-1 reference; dashed: ground truth as reference). Saved to `out`."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    ax_loss = axes[0, 0]
    for variant, log in logs.items():
        color = COLORS.get(variant)
        steps, loss = log["step"], log["loss"]
        ax_loss.plot(steps, loss, color=color, alpha=0.25, linewidth=0.8)
        ax_loss.plot(steps, smoothed(loss, 10), color=color, marker="o" if len(steps) < 10 else None)
    ax_loss.set_title("training loss (eq. 6; faint: raw, bold: mean of 10 logs)", fontsize=9)
    ax_loss.set_ylabel("loss")
    for ax, (column, name, better) in zip(axes.flat[1:], VAL_METRICS):
        for variant, log in logs.items():
            for prefix, style in (("val_", "-"), ("val_gtref_", "--")):
                key = prefix + column[4:]
                if key not in log:
                    continue
                valid = ~np.isnan(log[key])
                if valid.any():
                    ax.plot(log["step"][valid], log[key][valid], style, color=COLORS.get(variant), marker="o",
                            markersize=3)
        ax.set_title(f"validation {name} ({better} is better)", fontsize=9)
        ax.set_ylabel(name)
    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    # One legend for all panels, below them: colour = variant, line style = which reference.
    handles = [Line2D([], [], color=COLORS.get(v), label=v) for v in logs]
    handles += [Line2D([], [], color="black", linestyle="-", marker="o", markersize=3,
                       label="validation with the ranked top-1 reference"),
                Line2D([], [], color="black", linestyle="--", marker="o", markersize=3,
                       label="validation with the ground truth as reference")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title or "Training curves", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out = Path(out)
    atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=110, format=out.suffix.lstrip(".") or "png"))
    plt.close(fig)
    return out
