"""Accuracy at equal colourfulness: each checkpoint's PSNR(ab) and CIEDE2000 once its outputs are made as
colourful as another's.

    python benchmarks/colourfulness_tradeoff.py [--checkpoints demo-none,demo-standard,demo-super,demo-transfer]
                                                [--shares demo-super,0.85] [--flip-average auto|on|off]
                                                [--chroma-gain auto|K] [--blend auto|off]

PSNR(ab) and CIEDE2000 against the ground truth reward a muted colour wherever a model is unsure of the
hue, so a muted model and a colourful one are not compared on the same footing. This script puts them on
it. Every checkpoint colorizes the matched pairs (data/demo/matched_pairs.csv) and the ranked pairs
(data/demo/eval_pairs.csv) at the evaluation size, 224 px, with the evaluator's own functions
(`sa_lib.eval.evaluate`). Then, for each share s in `--shares`, one global chroma gain k per checkpoint is
fitted by bisection so that its outputs' mean colourfulness on the matched pairs is s times the truths':
its a* and b* are multiplied by k and the image is rebuilt with the same L*. Both sets are scored with that
k. A share may be a checkpoint's name, meaning that checkpoint's own share without a gain. k = 1 is always in
the table: "as shipped" (the outputs as `sa-colorize` gives them, with the checkpoint's own flip average and chroma
gain), or "k = 1" when `--flip-average` or `--chroma-gain` forces an option.

Writes benchmarks/results/colourfulness_tradeoff.md and .json. A checkpoint is a shipped name or a
.safetensors path, optionally labelled: `r224=runs/demo-transfer-r224/last.safetensors`. `--flip-average off`
scores every checkpoint without its test-time flip average (ColorizerConfig.flip_average; auto keeps each one's),
`--chroma-gain 1` without its calibrated chroma gain (ColorizerConfig.chroma_gain): the fitted k then multiplies
the network's own a*b*. `--blend off` runs every checkpoint without its blend partner (ColorizerConfig.blend_partner):
the network alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from sa_lib.core.color import lab_to_rgb, rgb_to_lab
from sa_lib.core.errors import UsageError
from sa_lib.core.files import atomic_write
from sa_lib.data.demo_data import DEMO_DIR
from sa_lib.data.pairs import read_pairs
from sa_lib.eval.chroma_calibration import fit_gain, mean_colourfulness
from sa_lib.eval.pair_images import load_pair_images
from sa_lib.eval.scoring import model_colorizer, score
from sa_lib.inference.colorize import BLEND_CHOICES, FLIP_AVERAGE_CHOICES, parse_chroma_gain
from sa_lib.profiles import EVAL_SIZE

RESULTS = Path(__file__).resolve().parent / "results"
PAIR_SETS = {"matched": DEMO_DIR / "matched_pairs.csv", "ranked": DEMO_DIR / "eval_pairs.csv"}


def parse_checkpoints(text: str) -> dict[str, str]:
    """'a,label=path,...' -> {label: checkpoint}."""
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        label, _, path = item.rpartition("=")
        out[label or Path(path).stem] = path
    if not out:
        raise UsageError("--checkpoints is empty")
    return out


def with_gain(lab: torch.Tensor, gain: float) -> np.ndarray:
    """(N, 3, H, W) Lab -> (N, H, W, 3) sRGB in [0, 1] with a* and b* multiplied by `gain`."""
    scaled = torch.cat([lab[:, :1], lab[:, 1:] * gain], dim=1)  # (N, 3, H, W)
    return lab_to_rgb(scaled).permute(0, 2, 3, 1).numpy()


def fit_lab_gain(lab: torch.Tensor, wanted: float) -> float:
    """The k for which the mean colourfulness of `with_gain(lab, k)` is `wanted` (it grows with k), bisected
    within the chroma gains a checkpoint accepts (CHROMA_GAIN_RANGE)."""
    return fit_gain(lambda k: mean_colourfulness(with_gain(lab, k)), wanted)


def scores(rgb: np.ndarray, data, truth_colour: float) -> dict[str, float]:
    """Means of the evaluator's per-pair metrics (no LPIPS) over one pair set; colourfulness as a share of
    the truths' mean (`truth_colour`)."""
    rows = [score(pred, item.truth, item.reference, None, item.reference_histogram) for pred, item in zip(rgb, data)]
    mean = {key: float(np.mean([r[key] for r in rows])) for key in ("psnr_ab", "ciede2000", "his_pred_ref",
                                                                     "his_gt_ref", "colorfulness")}
    mean["colourfulness_share"] = mean.pop("colorfulness") / truth_colour
    return mean


def predict_lab(colorize, data) -> torch.Tensor:
    """(N, 3, S, S) Lab of a colorizer's outputs on a pair set (each recombined with the target's L*)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the evaluator: one small image at a time
    try:
        rgb = np.stack([colorize(item.target_l, item.reference) for item in data])  # (N, S, S, 3)
    finally:
        torch.set_num_threads(threads)
    return rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2).float())


def parse_shares(shares: list[str], labels: list[str]) -> list[str | float]:
    """Each share as a float, or as a checkpoint label (that checkpoint's own share, known once it has run)."""
    out: list[str | float] = []
    for share in shares:
        if share in labels:
            out.append(share)
            continue
        try:
            value = float(share)
        except ValueError:
            raise UsageError(f"--shares: {share!r} is neither a number nor one of the checkpoints "
                             f"({', '.join(labels)})") from None
        if not 0.0 < value < 3.0:
            raise UsageError(f"--shares: {share} is outside (0, 3): a share of the truths' colourfulness")
        out.append(value)
    return out


def run(checkpoints: dict[str, str], shares: list[str | float], flip_average: bool | None = None,
        chroma_gain: float | None = None, blend: bool | None = None) -> dict:
    colorizers = {label: model_colorizer(ckpt, "cpu", flip_average=flip_average, chroma_gain=chroma_gain, blend=blend)
                  for label, ckpt in checkpoints.items()}  # a bad one fails first
    data = {name: [load_pair_images(p, EVAL_SIZE) for p in read_pairs(path, DEMO_DIR / "images", DEMO_DIR / "images")]
            for name, path in PAIR_SETS.items()}
    truth_colours = {name: mean_colourfulness(np.stack([item.truth for item in items])) for name, items in data.items()}
    truth_colour = truth_colours["matched"]  # the shares are of the matched pairs' truths
    labs = {label: {name: predict_lab(colorize, items) for name, items in data.items()}
            for label, colorize in colorizers.items()}
    native = {label: mean_colourfulness(with_gain(lab["matched"], 1.0)) / truth_colour for label, lab in labs.items()}
    forced = (flip_average, chroma_gain, blend) != (None, None, None)  # an option forced: not the checkpoint as shipped
    as_run = "k = 1" if forced else "as shipped"
    wanted: list[tuple[str, float | None]] = [(as_run, None)]
    wanted += [(f"{share}'s ({native[share]:.0%})", native[share]) if isinstance(share, str) else
               (f"{share:.0%}", share) for share in shares]
    rows = []
    for label, lab in labs.items():
        for share_name, share in wanted:
            gain = 1.0 if share is None else fit_lab_gain(lab["matched"], share * truth_colour)
            row = {"checkpoint": label, "colourfulness": share_name, "gain": gain}
            for name, items in data.items():
                row[name] = scores(with_gain(lab[name], gain), items, truth_colours[name])
            rows.append(row)
            print(f"{label} at {share_name}: k = {gain:.3f}", file=sys.stderr, flush=True)
    return {"checkpoints": checkpoints, "size": EVAL_SIZE, "rows": rows, "flip_average": flip_average,
            "chroma_gain": chroma_gain, "blend": blend,
            "pairs": {name: len(items) for name, items in data.items()}}


def markdown(result: dict, command: str) -> str:
    lines = [f"{date.today()}: `{command}`, at {result['size']} px, on the CPU. "
             f"{result['pairs']['matched']} matched pairs, {result['pairs']['ranked']} ranked pairs. The gain k "
             "multiplies each output's a\\* and b\\* so that the matched pairs' mean colourfulness is the "
             "given share of the truths' (k = 1: the outputs as they are)."
             + {None: "", True: " Every checkpoint with the test-time flip average.",
                False: " Every checkpoint without the test-time flip average."}[result["flip_average"]]
             + ("" if result.get("chroma_gain") is None else
                f" Every checkpoint with its chroma gain set to {result['chroma_gain']:g} before k.")
             + (" Every checkpoint without its blend partner." if result.get("blend") is False else ""), "",
             "| checkpoint | colourfulness (matched) | k | matched PSNR(ab) ↑ | matched CIEDE2000 ↓ | "
             "matched HIS(pred, ref) | ranked PSNR(ab) ↑ | ranked CIEDE2000 ↓ | ranked colourfulness |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        m, r = row["matched"], row["ranked"]
        lines.append(f"| {row['checkpoint']} | {row['colourfulness']}: {m['colourfulness_share']:.0%} | "
                     f"{row['gain']:.3f} | {m['psnr_ab']:.2f} | {m['ciede2000']:.2f} | {m['his_pred_ref']:.3f} | "
                     f"{r['psnr_ab']:.2f} | {r['ciede2000']:.2f} | {r['colourfulness_share']:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="demo-none,demo-standard,demo-super,demo-transfer",
                        help="comma-separated shipped names or [label=]path.safetensors")
    parser.add_argument("--shares", default=None,
                        help="comma-separated shares of the truths' colourfulness, or checkpoint labels "
                             "(default: demo-super,0.85, or 0.85 when demo-super is not among the checkpoints)")
    parser.add_argument("--flip-average", default="auto", choices=tuple(FLIP_AVERAGE_CHOICES),
                        help="auto: each checkpoint's own test-time flip average; on/off: forced for all")
    parser.add_argument("--chroma-gain", default="auto",
                        help="auto: each checkpoint's own calibrated chroma gain; a number: set for all (1: none)")
    parser.add_argument("--blend", default="auto", choices=tuple(BLEND_CHOICES),
                        help="auto: each checkpoint's own blend partner; off: every network alone")
    parser.add_argument("--out", type=Path, default=RESULTS / "colourfulness_tradeoff",
                        help="output stem: writes STEM.md and STEM.json")
    args = parser.parse_args(argv)
    command = "python benchmarks/colourfulness_tradeoff.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    start = time.perf_counter()
    try:
        checkpoints = parse_checkpoints(args.checkpoints)
        share_text = args.shares or ("demo-super,0.85" if "demo-super" in checkpoints else "0.85")
        shares = parse_shares([s.strip() for s in share_text.split(",") if s.strip()], list(checkpoints))
        result = run(checkpoints, shares, FLIP_AVERAGE_CHOICES[args.flip_average], parse_chroma_gain(args.chroma_gain),
                     BLEND_CHOICES[args.blend])
    except (UsageError, FileNotFoundError, ValueError, RuntimeError) as error:
        sys.exit(f"error: {error}")
    result["seconds"] = time.perf_counter() - start
    text = markdown(result, command)
    atomic_write(args.out.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(result, indent=1) + "\n"))
    atomic_write(args.out.with_suffix(".md"), lambda tmp: tmp.write_text(text))
    print(text)


if __name__ == "__main__":
    main()
