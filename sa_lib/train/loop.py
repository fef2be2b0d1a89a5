"""Training: a generic loop, the paper's settings as the `paper` profile, a CPU-sized `demo` profile.

    sa-train --profile demo --variant super            # offline, CPU, the shipped demo weights
    sa-train --profile paper --variant super           # COCO + VGG19, the paper's section 3.4 settings
    torchrun --nproc-per-node 4 -m sa_lib.train ...    # several GPUs / nodes (DDP)

Each step: a batch of targets, each with a reference drawn by the ReferenceSampler (itself, or one of its
top-4), resized to the training size; SLIC grids are computed in the DataLoader workers, not in the step.
Logs go to OUT/log.csv (and TensorBoard when installed). Every `checkpoint_every` steps OUT/last.state.pt
(weights, optimizer, RNG and step: all that resuming needs, in one file) and then OUT/last.safetensors
(+ .json, for users) are written atomically; `--resume` continues from the state file so that the result
equals an uninterrupted run, even after a kill at any moment.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from .checkpoint import CheckpointError, atomic_write, config_hash, save_checkpoint, trainable_state
from .color import combine_l_ab, rgb_to_lab
from .losses import ColorizationLoss, build_perceptual
from .augment import transfer_pair
from .model import NAMED_MODELS, TRANSFER_OPTIONS, ColorizerConfig, build_model
from .superpixels import SuperpixelPyramid, image_pyramid_labels


REFERENCE_AUGMENTS = ("none", "warp_recolor")


class ConfigError(ValueError):
    """A training configuration that cannot run (reported as one line by the CLI)."""


@dataclass
class TrainConfig:
    """Every setting of a training run; saved into the run folder."""

    profile: str = "demo"
    variant: str = "super"
    data: str = "demo"  # "demo" (offline photos) or "coco"
    model: ColorizerConfig = field(default_factory=ColorizerConfig)
    image_size: int = 128
    batch_size: int = 8
    epochs: int = 20
    max_steps: int | None = None  # stop earlier than `epochs` (the demo profile is step-bounded)
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.99)
    lambda_l1: float = 10.0
    lambda_perceptual: float = 0.1
    perceptual: str = "effnet_feature_distance"  # reproducible offline; the paper profile uses "lpips_vgg"
    p_self: float = 0.25
    reference_augment: str = "none"  # "warp_recolor": self references warped, and recoloured with p_recolor
    p_recolor: float = 0.5
    seed: int = 0
    num_workers: int = 1
    log_every: int = 10
    val_every: int = 250
    val_pairs: int = 38
    checkpoint_every: int = 250
    amp: bool = True  # bf16 autocast, CUDA only
    out: str = "runs/demo-super"
    references: str | None = None  # references.json; default: the dataset's own
    progress: bool = True

    def validate(self) -> None:
        if self.variant not in NAMED_MODELS:
            raise ConfigError(f"unknown variant {self.variant!r}; choose one of {', '.join(NAMED_MODELS)}")
        if self.reference_augment not in REFERENCE_AUGMENTS:
            raise ConfigError(f"unknown reference_augment {self.reference_augment!r}; "
                              f"choose one of {', '.join(REFERENCE_AUGMENTS)}")
        if not 0.0 <= self.p_recolor <= 1.0:
            raise ConfigError(f"p_recolor must be in [0, 1], got {self.p_recolor}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if self.image_size < 32:
            raise ConfigError(f"image size must be at least 32, got {self.image_size}")
        if self.epochs < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ConfigError("epochs and max_steps must be positive")
        if not 0.0 <= self.p_self <= 1.0:
            raise ConfigError(f"p_self must be in [0, 1], got {self.p_self}")
        if self.data not in ("demo", "coco"):
            raise ConfigError(f"unknown data {self.data!r}; choose demo or coco")


def model_variant(variant: str) -> str:
    """The network variant a training variant builds ("transfer" is "super" with the transfer options)."""
    return "super" if variant == "transfer" else variant


def profile_config(profile: str, variant: str = "super", **overrides) -> TrainConfig:
    """`paper`: section 3.4 (Adam 1e-5, betas (0.9, 0.99), batch 8, 20 epochs, 224, LPIPS-VGG, COCO, VGG19).
    `demo`: sized for a 2-core CPU in ~20 min: demo widths, EfficientNet-Lite0, 128 px, 1500 steps and a
    higher learning rate (3e-4) because 1500 steps at 1e-5 would barely move the weights.
    `smoke`: a few steps on tiny images, for tests and notebooks."""
    if variant not in NAMED_MODELS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(NAMED_MODELS)}")
    net = model_variant(variant)
    if profile == "paper":
        config = TrainConfig(profile="paper", variant=variant, data="coco", model=ColorizerConfig.paper(net),
                             image_size=224, batch_size=8, epochs=20, lr=1e-5, perceptual="lpips_vgg",
                             num_workers=8, val_every=2000, val_pairs=500, checkpoint_every=2000,
                             out=f"runs/paper-{variant}")
    elif profile == "demo":
        config = TrainConfig(profile="demo", variant=variant, model=ColorizerConfig(variant=net),
                             image_size=128, max_steps=1500, epochs=1000, out=f"runs/demo-{variant}")
    elif profile == "smoke":
        config = TrainConfig(profile="smoke", variant=variant, model=ColorizerConfig(variant=net),
                             image_size=48, batch_size=2, max_steps=4, epochs=1000, num_workers=0, log_every=1,
                             val_every=4, val_pairs=2, checkpoint_every=2, out=f"runs/smoke-{variant}")
    else:
        raise ConfigError(f"unknown profile {profile!r}; choose demo, paper or smoke")
    if variant == "transfer":  # the transfer options, and the training that makes them work (docs/transfer.md)
        config = replace(config, model=replace(config.model, **TRANSFER_OPTIONS), p_self=0.75,
                         reference_augment="warp_recolor")
    config = replace(config, **overrides)
    config.model = replace(config.model, variant=model_variant(config.variant))
    config.validate()
    return config


# ----------------------------------------------------------------------------------------------- data


def load_resized(dataset, image_id: int, size: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """(size, size, 3) uint8: the image (or its box crop) resized to the square training size, as the paper."""
    from .pairs import crop_resized

    return crop_resized(dataset.load_rgb(image_id), box, size)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float in [0, 1]."""
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


def gray_levels(rgb: torch.Tensor, levels: int, compactness: float) -> list[np.ndarray]:
    """SLIC label maps of one (3, H, W) image's L*/100, at every attention level."""
    return image_pyramid_labels(rgb_to_lab(rgb[None])[0, 0].numpy() / 100.0, levels, compactness)


class PairDataset(Dataset):
    """(target, reference) training pairs; indexed by (epoch, i) so each draw is reproducible anywhere."""

    def __init__(self, targets, pool, sampler, size: int, seed: int, with_superpixels: bool,
                 compactness: float, reference_augment: str = "none", p_recolor: float = 0.0):
        self.targets, self.pool, self.sampler = targets, pool, sampler
        self.size, self.seed = size, seed
        self.with_superpixels, self.compactness = with_superpixels, compactness
        self.reference_augment, self.p_recolor = reference_augment, p_recolor

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        image_id = self.targets.image_ids[index]
        rng = random.Random(f"{self.seed}/{epoch}/{index}")
        choice = self.sampler.sample(image_id, rng)
        target = to_tensor(load_resized(self.targets, image_id, self.size))
        if choice == "self" and self.reference_augment == "warp_recolor":
            target, reference = transfer_pair(target, rng, self.p_recolor)
        elif choice == "self":
            reference = target
        else:
            reference = to_tensor(load_resized(self.pool, choice.image_id, self.size, choice.box))
        item = {"target": target, "reference": reference}
        if self.with_superpixels:
            item["target_labels"] = gray_levels(target, 3, self.compactness)
            item["reference_labels"] = gray_levels(reference, 3, self.compactness)
        return item


def collate(items: list[dict]) -> dict:
    batch = {k: torch.stack([it[k] for it in items]) for k in ("target", "reference")}
    if "target_labels" in items[0]:
        batch["target_sp"] = SuperpixelPyramid.stack([it["target_labels"] for it in items])
        batch["reference_sp"] = SuperpixelPyramid.stack([it["reference_labels"] for it in items])
    return batch


class ResumableBatches(torch.utils.data.Sampler):
    """Batches of (epoch, index) keys: a seeded permutation per epoch, starting at any global step.

    Under DDP every rank sees the same global batch order and takes its own slice of each batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int, total_steps: int,
                 rank: int = 0, world: int = 1):
        if n < batch_size:
            raise ConfigError(f"the dataset has {n} images, fewer than one batch of {batch_size}")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start_step, self.total_steps, self.rank, self.world = start_step, total_steps, rank, world
        self.steps_per_epoch = n // batch_size

    def __len__(self) -> int:
        return self.total_steps - self.start_step

    def __iter__(self):
        for step in range(self.start_step, self.total_steps):
            epoch, within = divmod(step, self.steps_per_epoch)
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
            batch = order[within * self.batch_size:(within + 1) * self.batch_size].tolist()
            yield [(epoch, i) for i in batch[self.rank::self.world]]


def open_data(config: TrainConfig):
    """(train targets, reference pool, validation targets, references, evaluation pairs) of the profile."""
    from .references import load_references

    if config.data == "demo":
        from .datasets import demo_dataset
        from .demo_data import DEMO_DIR

        train, val = demo_dataset("train"), demo_dataset("val")
        pool = train  # references of every target come from the train photos (see sa_lib.references)
        references_file = Path(config.references or DEMO_DIR / "references.json")
        pairs_file = DEMO_DIR / "eval_pairs.csv"
    else:
        from .coco import coco_dataset, coco_root

        train, val = coco_dataset("train"), coco_dataset("val")
        pool = train
        references_file = Path(config.references or coco_root() / "references-train.json")
        pairs_file = coco_root() / "eval_pairs.csv"
    if not references_file.is_file():
        raise ConfigError(f"references file not found: {references_file} (run sa-references first)")
    pairs = list(csv.DictReader(open(pairs_file))) if pairs_file.is_file() else []
    return train, pool, val, load_references(references_file), pairs


# ----------------------------------------------------------------------------------------- training


def rng_state() -> dict[str, torch.Tensor]:
    """Torch's global RNG (CPU and CUDA). Data draws use their own per-sample seeds, so they need none."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def validate(model, val, pool, pairs: list[dict], size: int, limit: int, device) -> dict[str, float]:
    """Means over the first `limit` evaluation pairs, at the training size: PSNR(ab), CIEDE2000 and dHIS =
    |mean HIS(prediction, reference) - mean HIS(truth, reference)|, with the pair's ranked reference and
    ("gtref_") with the target's own ground truth as reference, which a reference-using model must exploit."""
    from .metrics import ciede2000, delta_his, his, psnr_ab

    by_name = {val.record(i).path.name: i for i in val.image_ids}
    pool_by_name = {pool.record(i).path.name: i for i in pool.image_ids}
    scores: dict[str, list[float]] = {}
    model.eval()
    with torch.inference_mode():
        for row in pairs[:limit]:
            target = to_tensor(load_resized(val, by_name[row["target"]], size))[None].to(device)
            box = tuple(int(row[k]) for k in ("ref_x", "ref_y", "ref_w", "ref_h")) if row["ref_w"] else None
            reference = to_tensor(load_resized(pool, pool_by_name[row["reference"]], size, box))[None].to(device)
            target_l = rgb_to_lab(target)[:, :1]
            truth = target[0].permute(1, 2, 0).cpu().numpy()
            for name, ref in (("", reference), ("gtref_", target)):
                ab, _ = model(target_l, ref)
                pred = combine_l_ab(target_l, ab.float())[0].permute(1, 2, 0).cpu().numpy()
                ref_np = ref[0].permute(1, 2, 0).cpu().numpy()
                scores.setdefault(f"val_{name}psnr_ab", []).append(psnr_ab(pred, truth))
                scores.setdefault(f"val_{name}ciede2000", []).append(ciede2000(pred, truth))
                scores.setdefault(f"val_{name}his_pred_ref", []).append(his(pred, ref_np))
                scores.setdefault(f"val_{name}his_gt_ref", []).append(his(truth, ref_np))
    model.train()
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    for name in ("", "gtref_"):
        means[f"val_{name}delta_his"] = delta_his(scores[f"val_{name}his_pred_ref"], scores[f"val_{name}his_gt_ref"])
    return means


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Run (or resume) a training run; returns the final metrics. Works alone or under torchrun (DDP)."""
    config.validate()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    distributed = world > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    if config.batch_size % world:
        raise ConfigError(f"batch size {config.batch_size} is not divisible by {world} processes")
    out = Path(config.out)
    last = out / "last.safetensors"

    torch.manual_seed(config.seed)
    model = build_model(config.model.variant, encoder=config.model.encoder, config=config.model).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, betas=config.betas)
    start_step = 0
    if resume:
        start_step = _restore(config, model, optimizer, out)
    trained = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    train_set, pool, val, references, pairs = open_data(config)
    from .references import ReferenceSampler

    sampler = ReferenceSampler(references, p_self=config.p_self, seed=config.seed)
    steps_per_epoch = len(train_set) // config.batch_size
    total = min(config.max_steps or math.inf, config.epochs * max(1, steps_per_epoch))
    dataset = PairDataset(train_set, pool, sampler, config.image_size, config.seed,
                          with_superpixels=config.model.variant == "super", compactness=config.model.slic_compactness,
                          reference_augment=config.reference_augment, p_recolor=config.p_recolor)
    loader = DataLoader(dataset, batch_sampler=ResumableBatches(len(train_set), config.batch_size, config.seed,
                                                                start_step, total, rank, world),
                        num_workers=config.num_workers, collate_fn=collate,
                        persistent_workers=False, pin_memory=device.type == "cuda")
    loss_fn = ColorizationLoss(build_perceptual(config.perceptual), config.lambda_l1,
                               config.lambda_perceptual).to(device)
    log = _Logger(out, config, rank == 0, resume_step=start_step if resume else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and config.amp)

    metrics: dict[str, float] = {}
    started = time.perf_counter()
    progress = _progress(config, rank, start_step, total)
    tick, images = time.perf_counter(), 0
    step = start_step
    for batch in loader:
        target, reference = batch["target"].to(device), batch["reference"].to(device)
        lab = rgb_to_lab(target)
        sp = {}
        if "target_sp" in batch:
            sp = {"target_superpixels": batch["target_sp"].to(device),
                  "reference_superpixels": batch["reference_sp"].to(device)}
        with autocast:
            ab, _ = trained(lab[:, :1], reference, **sp)
        losses = loss_fn(ab.float(), lab[:, :1], lab[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimizer.step()
        step += 1
        images += target.shape[0] * world
        if step % config.log_every == 0 or step == total:
            rate = images / (time.perf_counter() - tick)
            tick, images = time.perf_counter(), 0
            row = {"loss": losses["total"].item(), "smooth_l1": losses["smooth_l1"].item(),
                   "perceptual": losses["perceptual"].item(), "images_per_s": rate}
            if step % config.val_every == 0 or step == total:
                if rank == 0 and pairs:
                    metrics = validate(model, val, pool, pairs, config.image_size, config.val_pairs, device)
                    row.update(metrics)
            log.write(step, step // max(1, steps_per_epoch), row)
            if progress is not None:
                progress.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{rate:.1f}")
        if progress is not None:
            progress.update(1)
        if rank == 0 and (step % config.checkpoint_every == 0 or step == total):
            _save_state(model, optimizer, out, last, step, metrics)
    if progress is not None:
        progress.close()
    log.close()
    if distributed:
        dist.barrier()
    return {"step": step, "wall_time_s": round(time.perf_counter() - started, 1), **metrics}


def _restore(config: TrainConfig, model, optimizer, out: Path) -> int:
    """Load the training state of `out` (weights, optimizer, RNG, step); returns the step to continue from.

    Everything comes from the one file last.state.pt, written atomically, so a run killed at any moment
    resumes from a consistent step (last.safetensors, for users, may be one checkpoint newer or older).
    """
    state_file = out / "last.state.pt"
    if not state_file.is_file():
        raise ConfigError(f"nothing to resume in {out} (no last.state.pt)")
    state = torch.load(state_file, map_location="cpu", weights_only=True)  # our own file: tensors and numbers
    saved = ColorizerConfig.from_json(state["config"])
    if saved.name != config.model.name:
        raise ConfigError(f"{state_file} is a {saved.name!r} run, this run trains {config.model.name!r}")
    if config_hash(saved) != config_hash(config.model):
        raise ConfigError(f"{state_file} was trained with another model config (hash {config_hash(saved)})")
    model.load_state_dict(state["model"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["cpu"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng"]["cuda"])
    return int(state["step"])


def _save_state(model, optimizer, out: Path, last: Path, step: int, metrics: dict) -> None:
    """The resume file first (self-sufficient, atomic), then the user-facing checkpoint."""
    state = {"model": {k: v.detach().cpu() for k, v in trainable_state(model).items()},
             "optimizer": optimizer.state_dict(), "step": step, "rng": rng_state(),
             "config": model.config.to_json()}
    atomic_write(out / "last.state.pt", lambda tmp: torch.save(state, tmp))
    save_checkpoint(last, model, step=step, metrics=metrics)


def _progress(config: TrainConfig, rank: int, start: int, total: int):
    if not config.progress or rank != 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=f"train {config.profile}/{config.variant}", unit="step")


class _Logger:
    """CSV log (always) and TensorBoard (when installed), written by rank 0 only."""

    FIELDS = ["step", "epoch", "loss", "smooth_l1", "perceptual", "images_per_s", "val_psnr_ab", "val_ciede2000",
              "val_delta_his", "val_gtref_psnr_ab", "val_gtref_ciede2000", "val_gtref_delta_his"]

    def __init__(self, out: Path, config: TrainConfig, active: bool, resume_step: int | None):
        self.active, self.tensorboard = active, None
        if not active:
            return
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(asdict(config), indent=2, default=list) + "\n")
        path = out / "log.csv"
        if resume_step is not None and path.exists():
            # Rows logged after the checkpoint we resume from are redone: drop them so the log equals an
            # uninterrupted run's.
            with open(path, newline="") as f:
                kept = [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, self.FIELDS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)
        self.file = open(path, "a" if resume_step is not None and path.exists() else "w", newline="")
        self.writer = csv.DictWriter(self.file, self.FIELDS, extrasaction="ignore")
        if self.file.tell() == 0:
            self.writer.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            pass

    def write(self, step: int, epoch: int, row: dict) -> None:
        if not self.active:
            return
        self.writer.writerow({"step": step, "epoch": epoch, **{k: f"{v:.6g}" for k, v in row.items()}})
        self.file.flush()
        if self.tensorboard is not None:
            for key, value in row.items():
                self.tensorboard.add_scalar(key, value, step)

    def close(self) -> None:
        if self.active:
            self.file.close()
            if self.tensorboard is not None:
                self.tensorboard.close()


def export_run(config: TrainConfig, metrics: dict, path: Path | str) -> Path:
    """Publish a finished run: its final weights as fp16 `path` (.safetensors, with the .json sidecar) and its
    training log beside them as .log.csv, so the curves shipped with a checkpoint are always its own."""
    import shutil

    from .checkpoint import load_checkpoint

    path = Path(path)
    model = load_checkpoint(Path(config.out) / "last.safetensors")
    save_checkpoint(path, model, step=metrics["step"], metrics=metrics, half=True)
    log, shipped_log = Path(config.out) / "log.csv", path.with_suffix(".log.csv")
    if log.is_file():
        atomic_write(shipped_log, lambda tmp: shutil.copyfile(log, tmp))
    else:  # never leave an older run's curves beside these weights
        shipped_log.unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> None:
    """`sa-train`: one-line errors, exit 2 for a bad configuration, 1 for a failure."""
    parser = argparse.ArgumentParser(prog="sa-train", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=["demo", "paper", "smoke"])
    parser.add_argument("--variant", default="super", help="super | standard | none | transfer (docs/transfer.md)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.safetensors")
    parser.add_argument("--out", help="run folder (default runs/PROFILE-VARIANT)")
    parser.add_argument("--steps", type=int, dest="max_steps", help="stop after this many steps")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--workers", type=int, dest="num_workers")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--export", help="also write the final weights (fp16) to this .safetensors path")
    parser.add_argument("--no-progress", action="store_false", dest="progress", default=None)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("profile", "variant", "resume", "export")}
    try:
        config = profile_config(args.profile, args.variant, **overrides)
        metrics = train(config, resume=args.resume)
        if args.export and int(os.environ.get("RANK", "0")) == 0:
            export_run(config, metrics, args.export)
    except (ConfigError, CheckpointError) as err:
        print(f"sa-train: error: {err}", file=sys.stderr)
        sys.exit(2)
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        print(f"sa-train: error: {type(err).__name__}: {' '.join(str(err).split())[:300]}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("sa-train: interrupted; continue with --resume", file=sys.stderr)
        sys.exit(130)
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
