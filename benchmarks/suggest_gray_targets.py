"""Does a gray target find the references its colour original would? (sa-suggest ranks the target as given.)

The demo profile's ranking (effnet_lite0 level 4, unit-norm features, L2) of the 38 demo val photos against the
214 train photos (whole photos, as sa-suggest ranks a folder), three ways, each compared with the colour
target against the colour photos (what sa-references does): a gray target against the colour photos (what
sa-suggest does with an old photo), a gray target against gray copies of the photos, and a colour target
against gray copies. Prints how often the top-1 is the same and the mean share of the top-4.

    python benchmarks/suggest_gray_targets.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sa_lib.data import references as R  # noqa: E402
from sa_lib.data.demo_data import load_split  # noqa: E402
from sa_lib.app.suggest import _crop_tensor  # noqa: E402


def features(paths: list[Path], gray: bool, fn) -> torch.Tensor:
    def crops():
        for row, path in enumerate(paths):
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("L" if gray else "RGB").convert("RGB"))
            yield _crop_tensor(rgb), torch.tensor([row])

    return R.ranking_space(R.encode_crops(crops(), len(paths), fn, batch_size=4, progress=False), True)


def main() -> None:
    fn = R.ranking_feature_fn("effnet_lite0", "cpu")
    train, val = load_split("train"), load_split("val")
    pool = {gray: features(train, gray, fn) for gray in (False, True)}
    targets = {gray: features(val, gray, fn) for gray in (False, True)}
    ids = list(range(len(train)))

    def top(pool_gray: bool, target_gray: bool) -> torch.Tensor:
        return R.rank_references(pool[pool_gray], targets[target_gray], ids, [-1] * len(val), 4)[0]

    reference = top(False, False)
    print(f"{len(val)} val targets, {len(train)} train photos; agreement with colour target / colour photos:")
    print("| target | photos | same top-1 | top-4 shared |\n|---|---|---|---|")
    for target_gray, pool_gray in ((True, False), (True, True), (False, True)):
        ranked = top(pool_gray, target_gray)
        same = (ranked[:, 0] == reference[:, 0]).float().mean().item()
        shared = np.mean([len(set(a.tolist()) & set(b.tolist())) / 4 for a, b in zip(ranked, reference)])
        print(f"| {'gray' if target_gray else 'colour'} | {'gray copies' if pool_gray else 'colour'} | "
              f"{same:.0%} | {shared:.0%} |")


if __name__ == "__main__":
    main()
