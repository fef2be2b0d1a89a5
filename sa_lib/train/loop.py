"""Training: the resumable loop, alone or under torchrun (DDP).

    sa-train --profile demo --variant super            # offline, CPU, the shipped demo weights
    sa-train --profile paper --variant super           # COCO + VGG19, the paper's section 3.4 settings
    torchrun --nproc-per-node 4 -m sa_lib.cli.train ...    # several GPUs / nodes (DDP)

Each step (sa_lib.train.step.train_step): a batch of targets, each with a reference drawn by the
ReferenceSampler (sa_lib.train.batches), in the run's precision (TrainConfig.precision: fp32, the paper's, or
bf16 / fp16 autocast; the attention's correlation and softmax stay fp32) and with its SLIC backend
(ColorizerConfig.slic_backend, recorded in the checkpoint). Under DDP every rank validates a shard of the
pairs (sa_lib.train.validation). Logs go to OUT/log.csv (and TensorBoard when installed). Every
`checkpoint_every` steps OUT/last.state.pt (weights, optimizer, RNG and step: all that resuming needs, in one
file) and then OUT/last.safetensors (+ .json, for users) are written atomically; `--resume` continues from the
state file so that the result equals an uninterrupted run, even after a kill at any moment.

Test hook: with the environment variable SUPERATTN_KILL_AT_STEP=N the process SIGKILLs itself right after
the checkpoint of step N is written (a kill at a known step, for the kill-and-resume test).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
import signal
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..core.color import rgb_to_lab
from ..data.lazy_data import ImageFiles
from ..data.references import ReferenceSampler
from ..model.colorizer import build_model
from ..model.losses import ColorizationLoss, build_perceptual
from .batches import PairDataset, ResumableBatches, check_batch_fits, collate, open_data
from .config import ConfigError, TrainConfig
from .log import RunLog
from .state import Resumed, clear_run_state, restore_state, save_state
from .step import grad_scaler, precision_autocast, train_step
from .validation import validate, validation_pairs

KILL_AT_STEP = "SUPERATTN_KILL_AT_STEP"  # test hook: SIGKILL this process right after the checkpoint of that step


def kill_step() -> int | None:
    """The step of the SUPERATTN_KILL_AT_STEP test hook, or None when it is not set."""
    value = os.environ.get(KILL_AT_STEP)
    return int(value) if value else None


def train(config: TrainConfig, resume: bool = False, on_start: Callable[[], None] | None = None) -> dict:
    """Run (or resume) a training run; returns the final metrics. Works alone or under torchrun (DDP).
    `on_start` is called once every check has passed, before the run writes anything (sa-train reports there
    what a resume changes)."""
    config.validate()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL collectives (the validation's all_gather_object) use this device
    if config.precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device (bf16 and fp32 also run on the CPU)")
    if config.batch_size % world:
        raise ConfigError(f"batch size {config.batch_size} is not divisible by {world} processes")
    out = Path(config.out)
    last = out / "last.safetensors"
    kill_at = kill_step()

    torch.manual_seed(config.seed)
    model = build_model(config.model.variant, encoder=config.model.encoder, config=config.model,
                        pretrained=config.pretrained).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, betas=config.betas)
    scaler = grad_scaler(device, enabled=config.precision == "fp16")
    resumed = Resumed(0)
    if resume:
        resumed = restore_state(config, model, optimizer, out, scaler)
    start_step = resumed.step
    trained = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    data = open_data(config)
    pairs = validation_pairs(config.data, config.val_pairs)
    check_batch_fits(len(data.targets), config.batch_size)  # before the run log replaces anything in the run folder
    steps_per_epoch = len(data.targets) // config.batch_size
    total = min(config.max_steps or math.inf, config.epochs * max(1, steps_per_epoch))
    if resumed.step > total:
        raise ConfigError(f"the run in {out} is already at step {resumed.step}, beyond the {total} steps asked for; "
                          f"give --steps {resumed.step} or more")
    if not resume and rank == 0:  # a new run in a folder that held one (--overwrite): nothing of it is kept
        clear_run_state(out)
    if on_start is not None:
        on_start()
    perceptual = perceptual_loss(config)
    log = RunLog(out, config, rank == 0, resume_step=start_step if resume else None)
    autocast = precision_autocast(device, config.precision)
    slic = config.model.slic_backend  # torch: batched on the training device in the step, else in the workers

    metrics: dict[str, float] = dict(resumed.metrics)  # a finished run resumed (to re-export it) keeps its own
    started = time.perf_counter()

    def wall_time() -> float:
        """Seconds of this run over all its sessions: the ones before a resume, and this one so far."""
        return resumed.wall_time_s + time.perf_counter() - started

    progress = _progress(config, rank, start_step, total)
    tick, images = time.perf_counter(), 0
    step = start_step
    for stage, stage_end in config.stages(total):  # one stage, or more (TrainConfig.later_stages)
        if stage_end <= step:
            continue
        for group in optimizer.param_groups:  # the stage's rate, also over a resumed optimizer's saved one
            group["lr"] = stage.lr
        loss_fn = ColorizationLoss(perceptual, stage.lambda_l1, stage.lambda_perceptual, stage.lambda_chroma,
                                   stage.smooth_l1_units).to(device)  # the stage's weights (a stage may add lambda_chroma)
        for batch in _loader(stage, data, step, stage_end, rank, world, device):
            target, reference = batch["target"].to(device), batch["reference"].to(device)
            sp = {}
            if "target_sp" in batch:
                sp = {"target_superpixels": batch["target_sp"].to(device),
                      "reference_superpixels": batch["reference_sp"].to(device)}
            losses = train_step(trained, loss_fn, optimizer, rgb_to_lab(target), reference, sp, autocast, scaler,
                                slic_backend=slic)
            step += 1
            if not weights_finite(model):  # before this step is logged, validated or saved
                raise TrainingDiverged(
                    f"the weights are no longer finite after step {step} (loss {losses['total'].item():.3g}): the "
                    f"run diverged; lower --lr (it is {stage.lr:g}); the last saved state, if any, is kept")
            images += target.shape[0] * world
            if step % config.log_every == 0 or step == total:
                rate = images / (time.perf_counter() - tick)
                tick, images = time.perf_counter(), 0
                row = {"loss": losses["total"].item(), "smooth_l1": losses["smooth_l1"].item(),
                       "perceptual": losses["perceptual"].item(), "chroma": losses["chroma"].item(),
                       "images_per_s": rate}
                if step % config.val_every == 0 or step == total:
                    if pairs:  # every rank scores its shard (no rank idles in a collective while rank 0 works)
                        metrics = validate(model, pairs, config.image_size, device, rank, world)
                        row.update(metrics)
                log.write(step, step // max(1, steps_per_epoch), row)
                if progress is not None:
                    progress.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{rate:.1f}")
            if progress is not None:
                progress.update(1)
            if rank == 0 and (step % config.checkpoint_every == 0 or step == total):
                save_state(model, optimizer, config, last, step, metrics, scaler, wall_time())
                if step == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
    if progress is not None:
        progress.close()
    log.close()
    if distributed:
        dist.barrier()
    return {"step": step, "wall_time_s": round(wall_time(), 1), **metrics}


class TrainingDiverged(RuntimeError):
    """The weights became NaN or infinite (a learning rate too high): stopped before anything is saved."""


def weights_finite(model: torch.nn.Module) -> bool:
    """True while every trained parameter is finite (the frozen encoder never changes): one reduction, the same on
    every rank (gradients are all-reduced before the step; fp16's scaler skips a step whose gradients overflow)."""
    sums = torch.stack([p.detach().float().sum() for p in model.parameters() if p.requires_grad])  # (P,)
    return bool(torch.isfinite(sums).all())


def _loader(stage: TrainConfig, data, start_step: int, end_step: int, rank: int, world: int,
            device: torch.device) -> DataLoader:
    """The batches of steps [start_step, end_step), drawn with the stage's reference settings. The workers get the
    image files only (ImageFiles), never the COCO object with its annotations."""
    sampler = ReferenceSampler(data.references, p_self=stage.p_self, seed=stage.seed)
    slic = stage.model.slic_backend  # torch: batched on the training device in the step, else in the workers
    dataset = PairDataset(ImageFiles.of(data.targets), ImageFiles.of(data.pool), sampler, stage.image_size,
                          stage.seed, with_superpixels=stage.model.variant == "super" and slic != "torch",
                          compactness=stage.model.slic_compactness, reference_augment=stage.reference_augment,
                          p_recolor=stage.p_recolor, slic_backend=slic)
    batches = ResumableBatches(len(data.targets), stage.batch_size, stage.seed, start_step, end_step, rank, world)
    return DataLoader(dataset, batch_sampler=batches, num_workers=stage.num_workers, collate_fn=collate,
                      persistent_workers=False, pin_memory=device.type == "cuda")


def perceptual_loss(config: TrainConfig) -> torch.nn.Module | None:
    """The run's perceptual term. A random backbone (config.pretrained False) is drawn from config.seed alone, so
    every process of a run and every resume of it gets the same one (the global RNG is left as it was)."""
    if config.pretrained:
        return build_perceptual(config.perceptual)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return build_perceptual(config.perceptual, pretrained=False)


def _progress(config: TrainConfig, rank: int, start: int, total: int):
    if not config.progress or rank != 0:
        return None
    return tqdm(total=total, initial=start, desc=f"train {config.profile}/{config.variant}", unit="step")
