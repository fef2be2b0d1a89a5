"""The training log: OUT/config.json, OUT/log.csv (appended row by row) and TensorBoard when installed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..core.files import atomic_write
from .config import TrainConfig


class RunLog:
    """CSV log (always) and TensorBoard (when installed), written by rank 0 only."""

    FIELDS = ["step", "epoch", "loss", "smooth_l1", "perceptual", "images_per_s", "val_psnr_ab", "val_ciede2000",
              "val_delta_his", "val_gtref_psnr_ab", "val_gtref_ciede2000", "val_gtref_delta_his", "chroma"]

    def __init__(self, out: Path, config: TrainConfig, active: bool, resume_step: int | None):
        self.active, self.tensorboard = active, None
        if not active:
            return
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "config.json", lambda tmp: tmp.write_text(json.dumps(config.to_dict(), indent=2) + "\n"))
        path = out / "log.csv"
        if resume_step is not None and path.exists():
            # Rows logged after the checkpoint we resume from are redone: drop them so the log equals an
            # uninterrupted run's.
            with open(path, newline="") as f:
                kept = [row for row in csv.DictReader(f) if int(row["step"]) <= resume_step]
            atomic_write(path, lambda tmp: self._write_rows(tmp, kept))
        self.file = open(path, "a" if resume_step is not None and path.exists() else "w", newline="")
        self.writer = csv.DictWriter(self.file, self.FIELDS, extrasaction="ignore")
        if self.file.tell() == 0:
            self.writer.writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter  # deferred: optional (tensorboard may be absent)

            self.tensorboard = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            pass

    def _write_rows(self, path: Path, rows: list[dict]) -> None:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, self.FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

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
