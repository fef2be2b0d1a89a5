"""Peak memory of the faiss reference ranking (sa_lib.data.reference_index) at 20k candidates, and its extrapolation.

    python benchmarks/reference_memory.py                       # 20,000 candidates of VGG19's 100,352 features
    python benchmarks/reference_memory.py --candidates 2000     # a quicker check

Synthetic candidates: random float16 feature maps of VGG19 relu5_4's size (512 x 14 x 14 = 100,352 values),
written shard by shard into a FeatureStore (what `extract_features` writes; encoding 20k crops with VGG19 on
a CPU would take hours and does not change the search's memory), in groups of 1 to 3 candidates per image
as COCO's images and objects. Then --targets targets (default 256: a full block of the budget, `block_rows`,
is thousands of targets, hours of CPU here) are ranked against all of them with `rank_from_store`. Each phase runs in its own process, which
reports its peak resident memory (ru_maxrss); the search's memory does not depend on the number of
candidates (one shard at a time), only on the budget, so the peak extrapolates to COCO as printed.
Results go to stdout as a markdown table (BENCHMARKS.md keeps them).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VGG_DIM = 512 * 14 * 14  # relu5_4 of VGG19 at 224 x 224, flattened
COCO_CANDIDATES = 118_287 + 100_000  # train2017 images + about 100k objects over 10% of their image (issue 13)
COCO_TARGETS = 118_287 + 5_000  # train2017 and val2017 whole images


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def _image_ids(n: int, seed: int = 0) -> np.ndarray:
    """1 to 3 candidates per image, in image order (as build_candidates lists them)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 4, size=n)
    return np.repeat(np.arange(n), counts)[:n]


def write_phase(args) -> dict:
    from sa_lib.data.reference_index import FeatureStore

    started = time.perf_counter()
    store = FeatureStore.open_or_create(Path(args.dir), args.candidates, f"synthetic-{args.candidates}-{args.dim}",
                                        "float16", args.shard_rows)
    for shard in store.missing_shards():
        a, b = store.shard_range(shard)
        rng = np.random.default_rng(shard)
        store.write_shard(shard, rng.standard_normal((b - a, args.dim), dtype=np.float32).astype(np.float16))
    return {"phase": "write", "seconds": round(time.perf_counter() - started, 1), "peak_gb": round(_peak_gb(), 2),
            "disk_gb": round(args.candidates * args.dim * 2 / 2 ** 30, 2)}


def search_phase(args) -> dict:
    from sa_lib.data.reference_index import FeatureStore, block_rows, rank_from_store

    store = FeatureStore(Path(args.dir))
    block = block_rows(store.dim, args.memory_gb, store.shard_rows)
    targets = min(args.targets or block, store.rows)
    images = _image_ids(store.rows)
    rows = np.linspace(0, store.rows - 1, targets).astype(int)
    before = _peak_gb()
    started = time.perf_counter()
    idx, dist = rank_from_store(store, images, [(store, int(r)) for r in rows], images[rows], k=4,
                                memory_gb=args.memory_gb, progress=False)
    seconds = time.perf_counter() - started
    assert (idx >= 0).all()
    return {"phase": "search", "targets": targets, "block_rows": block, "seconds": round(seconds, 1),
            "peak_gb": round(_peak_gb(), 2), "peak_before_search_gb": round(before, 2),
            "target_candidate_pairs_per_s": round(targets * store.rows / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=VGG_DIM)
    parser.add_argument("--targets", type=int, default=256)
    parser.add_argument("--memory-gb", type=float, default=2.0)
    parser.add_argument("--shard-rows", type=int, default=4096)
    parser.add_argument("--dir", default=str(ROOT / "build" / "bench-reference-memory"))
    parser.add_argument("--phase", choices=("write", "search"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(write_phase(args) if args.phase == "write" else search_phase(args)))
        return
    results = []
    for phase in ("write", "search"):
        command = [sys.executable, __file__, "--phase", phase] + sys.argv[1:]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    write, search = results
    # What the budget pays for is one target block and one shard in float32; everything else (interpreter, torch,
    # faiss's tiles, the re-ranking chunk, the index arrays) is the rest of the measured peak.
    arrays = (search["targets"] + args.shard_rows) * args.dim * 4 / 2 ** 30
    fixed = search["peak_gb"] - arrays
    print("| candidates | D | memory budget | targets (one block) | write: s / peak GB / disk GB | "
          "search: s / peak GB |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.candidates:,} | {args.dim:,} | {args.memory_gb:g} GB | {search['targets']:,} | "
          f"{write['seconds']} / {write['peak_gb']} / {write['disk_gb']} | {search['seconds']} / {search['peak_gb']} |")
    pairs_per_s = search["target_candidate_pairs_per_s"]
    coco_pairs = COCO_TARGETS * COCO_CANDIDATES
    print()
    print(f"Extrapolation to COCO ({COCO_CANDIDATES:,} candidates, {COCO_TARGETS:,} targets): the search holds one "
          f"target block and one shard whatever the number of candidates, so its peak is the budget (a full "
          f"block and a shard, float32) plus the rest measured here, {fixed:.2f} GB (peak {search['peak_gb']} GB "
          f"minus this run's {arrays:.2f} GB of block and shard): 8 GB budget (the default) -> ~{8 + fixed:.1f} GB, "
          f"12 GB -> ~{12 + fixed:.1f} GB. Features on disk: "
          f"{COCO_CANDIDATES * args.dim * 2 / 2 ** 30:.0f} GB (float16). At this CPU's measured rate "
          f"({pairs_per_s:,.0f} target-candidate pairs/s) COCO would take "
          f"{coco_pairs / pairs_per_s / 86400:.1f} days: a GPU's job.")
    print(json.dumps({"write": write, "search": search, "args": vars(args)}))


if __name__ == "__main__":
    main()
