"""Scratch measurement: a SLIC-jitter test-time average for demo-transfer, on top of its flip average.

The network is unchanged; only the superpixels the attention pools over change: extra passes with another SLIC
compactness (the checkpoint's is 0.1), each with the flip average and without the chroma gain, their a*b*
averaged with the 0.1 pass's. Then the colourfulness tradeoff benchmark's gain fit (to 59% and 85% of the
matched-pair truths' colourfulness) and scorer, on the matched and the ranked pairs at 224 px. A measurement
only: nothing in sa_lib changes. Writes runs/slic-jitter/result.json and prints one line per setting.

    python runs/slic_jitter.py
"""
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import colourfulness_tradeoff as tradeoff  # noqa: E402

from sa_lib.data.demo_data import DEMO_DIR  # noqa: E402
from sa_lib.data.pairs import read_pairs  # noqa: E402
from sa_lib.eval.chroma_calibration import mean_colourfulness  # noqa: E402
from sa_lib.eval.pair_images import load_pair_images  # noqa: E402
from sa_lib.model.checkpoint import load_checkpoint  # noqa: E402
from sa_lib.model.predict import predict_rgb  # noqa: E402
from sa_lib.profiles import EVAL_SIZE  # noqa: E402

COMPACTNESS = (0.1, 0.05, 0.2, 0.4)  # 0.1: the checkpoint's own (and the paper's)
OUT = ROOT / "runs" / "slic-jitter" / "result.json"


def colorizer(model, compactness: float):
    def colorize(target_l: np.ndarray, reference: np.ndarray) -> np.ndarray:
        model.config.slic_compactness = compactness
        l_star = torch.from_numpy(np.ascontiguousarray(target_l, dtype=np.float32))[None, None]  # (1, 1, H, W)
        ref = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32)).permute(2, 0, 1)[None]  # (1, 3, H, W)
        rgb = predict_rgb(model, l_star, ref, slic_backend=model.config.slic_backend, flip_average=True,
                          chroma_gain=1.0)[0][0]  # (3, H, W)
        return rgb.permute(1, 2, 0).numpy()
    return colorize


def main() -> None:
    data = {name: [load_pair_images(p, EVAL_SIZE) for p in read_pairs(path, DEMO_DIR / "images", DEMO_DIR / "images")]
            for name, path in tradeoff.PAIR_SETS.items()}
    truth = {name: mean_colourfulness(np.stack([item.truth for item in items])) for name, items in data.items()}
    model = load_checkpoint("demo-transfer", device="cpu")
    labs = {c: {name: tradeoff.predict_lab(colorizer(model, c), items) for name, items in data.items()}
            for c in COMPACTNESS}
    result = {}
    for r in range(1, len(COMPACTNESS) + 1):
        for combo in itertools.combinations(COMPACTNESS, r):
            if r > 1 and COMPACTNESS[0] not in combo:
                continue
            lab = {name: torch.cat([labs[COMPACTNESS[0]][name][:, :1],  # the target's L*, a*b* averaged
                                    torch.stack([labs[c][name][:, 1:] for c in combo]).mean(0)], dim=1)
                   for name in data}
            rows = {}
            for share in (None, 0.59, 0.85):
                gain = 1.0 if share is None else tradeoff.fit_lab_gain(lab["matched"], share * truth["matched"])
                row = {name: tradeoff.scores(tradeoff.with_gain(lab[name], gain), data[name], truth[name])
                       for name in data}
                rows["as run" if share is None else f"{share:.0%}"] = {"gain": gain, **row}
                m, k = row["matched"], row["ranked"]
                print(f"compactness {'+'.join(map(str, combo))} at {'k = 1' if share is None else f'{share:.0%}'}"
                      f" (k = {gain:.3f}): matched {m['psnr_ab']:.2f} / {m['ciede2000']:.2f} at "
                      f"{m['colourfulness_share']:.0%}, ranked {k['psnr_ab']:.2f} / {k['ciede2000']:.2f}", flush=True)
            result["+".join(map(str, combo))] = rows
    OUT.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
