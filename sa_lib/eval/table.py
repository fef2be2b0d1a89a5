"""A results table (Tables 1 and 2): rows of formatted cells, measured and published in separate columns,
rendered as markdown with its notes and as CSV, each file written atomically.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from . import metrics
from ..core.files import atomic_write
from .scoring import MethodResult

# Tables 1 and 2 of the paper: SSIM, LPIPS, dHIS on its 5000 COCO val pairs (never released); None = "-".
PUBLISHED: dict[str, tuple[float, float, float | None]] = {
    "none": (0.920, 0.164, None),
    "standard": (0.921, 0.172, 0.081),
    "super": (0.925, 0.160, 0.054),
    "xcnet": (0.867, 0.270, 0.139),
    "deep_exemplar": (0.894, 0.241, 0.127),
    "just_attention": (0.896, 0.239, 0.125),
}
MEASURED = (("pairs", "pairs", "{:d}"), ("ssim", "SSIM ↑", "{:.3f}"), ("lpips", "LPIPS(alex) ↓", "{:.3f}"),
            ("lpips_vgg", "LPIPS(vgg) ↓", "{:.3f}"),
            ("delta_his", "ΔHIS ↓", "{:.3f}"), ("his_pred_ref", "HIS(pred, ref)", "{:.3f}"),
            ("his_ref", "HIS_ref", "{:.3f}"), ("psnr_ab", "PSNR(ab) ↑", "{:.2f}"),
            ("ciede2000", "CIEDE2000 ↓", "{:.2f}"), ("colorfulness", "colourfulness", "{:.1f}"))
PUBLISHED_COLUMNS = (("published_ssim", "published (paper, COCO) SSIM ↑"),
                     ("published_lpips", "published (paper, COCO) LPIPS ↓"),
                     ("published_delta_his", "published (paper, COCO) ΔHIS ↓"))
LPIPS_OFFLINE = "unavailable offline"
NOT_RUN = "not run"


@dataclass
class Table:
    """A results table: rows of cells (strings), rendered as markdown (with notes) and as CSV."""

    title: str
    intro: list[str]
    rows: list[dict[str, str]]  # keys: "method", "reference", MEASURED keys, PUBLISHED_COLUMNS keys
    notes: list[str]

    def markdown(self) -> str:
        keys = ["method", "reference", *(k for k, _, _ in MEASURED), *(k for k, _ in PUBLISHED_COLUMNS)]
        names = ["method", "reference", *(n for _, n, _ in MEASURED), *(n for _, n in PUBLISHED_COLUMNS)]
        lines = [f"# {self.title}", "", *self.intro, "", "| " + " | ".join(names) + " |",
                 "|" + "---|" * len(names)]
        lines += ["| " + " | ".join(row.get(k, "") for k in keys) + " |" for row in self.rows]
        return "\n".join([*lines, "", *self.notes, ""])

    def csv(self) -> str:
        keys = ["method", "reference", *(k for k, _, _ in MEASURED), *(k for k, _ in PUBLISHED_COLUMNS)]
        header = ["method", "reference", *(k for k, _, _ in MEASURED),
                  *(k.replace("published_", "published_paper_coco_") for k, _ in PUBLISHED_COLUMNS)]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[row.get(k, "").replace("`", "") for k in keys] for row in self.rows])
        return buffer.getvalue()

    def write(self, folder: Path | str, stem: str) -> tuple[Path, Path]:
        folder = Path(folder)
        md, table_csv = folder / f"{stem}.md", folder / f"{stem}.csv"
        atomic_write(md, lambda tmp: tmp.write_text(self.markdown(), encoding="utf-8"))
        atomic_write(table_csv, lambda tmp: tmp.write_text(self.csv(), encoding="utf-8"))
        return md, table_csv


def _lpips_cell(lpips: metrics.LPIPSMetric | None) -> str:
    return LPIPS_OFFLINE if lpips is None or lpips.missing_weights else "unavailable"


def measured_cells(result: MethodResult | None, lpips: metrics.LPIPSMetric | None,
                   lpips_vgg: metrics.LPIPSMetric | None = None) -> dict[str, str]:
    """Formatted measured cells of a row; `not run` everywhere for a method without result."""
    if result is None:
        return {key: NOT_RUN for key, _, _ in MEASURED}
    summary = result.summary()
    cells = {}
    for key, _, fmt in MEASURED:
        value = summary.get(key)
        if key == "pairs":
            cells[key] = f"{value}" if value == result.n_total else f"{value}/{result.n_total}"
        elif value is None or (isinstance(value, float) and math.isnan(value)):
            cells[key] = {"lpips": _lpips_cell(lpips), "lpips_vgg": _lpips_cell(lpips_vgg)}.get(key, "-")
        else:
            cells[key] = fmt.format(value)
    return cells


def published_cells(method: str | None) -> dict[str, str]:
    values = PUBLISHED.get(method or "")
    if values is None:
        return {key: "" for key, _ in PUBLISHED_COLUMNS}
    return {key: "-" if v is None else f"{v:.3f}" for (key, _), v in zip(PUBLISHED_COLUMNS, values)}
