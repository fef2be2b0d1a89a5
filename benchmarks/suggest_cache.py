"""sa-suggest on a folder of many photos: the first query (every feature computed) against the next ones (cached).

Makes COUNT photos by cropping and resizing the demo photos (random crops of 55-100% of each side, long side
320-640 px, JPEG quality 90, seeded) into PHOTOS unless they are there, then in one process:

1. builds the ranking encoder (demo profile: effnet_lite0, level 4);
2. query 1 on an empty cache: scan the folder (hash every file, encode every photo), encode the target, rank;
3. query 2 with a new suggester on the same cache: what a second `sa-suggest` does after its start-up;
4. query 3 after replacing 10 photos by new ones: only those are encoded again;

and, between queries 2 and 3, runs `sa-suggest TARGET PHOTOS` in a fresh process, whose time includes
Python's start, imports and building the encoder. "Feature work" is scan + target features + ranking. Times
are CPU seconds of the process (all threads), with wall time beside them: on a shared machine the CPU time
is the steadier measure.

    python benchmarks/suggest_cache.py --count 1000 --photos /tmp/sa-suggest-1000 [--cache DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sa_lib.data.demo_data import load_split  # noqa: E402
from sa_lib.data.image_io import read_image  # noqa: E402
from sa_lib.app.suggest import ReferenceSuggester  # noqa: E402


def make_photos(folder: Path, count: int, seed: int = 0) -> None:
    """COUNT varied photos from the demo train photos (crops and sizes differ, so every file is new content)."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) >= count:
        return
    rng = random.Random(seed)
    sources = load_split("train")
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as image:
            image = image.convert("RGB")
            w, h = image.size
            cw, ch = int(w * rng.uniform(0.55, 1.0)), int(h * rng.uniform(0.55, 1.0))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            crop = image.crop((x, y, x + cw, y + ch))
            crop.thumbnail((rng.randint(320, 640),) * 2)
            crop.save(folder / f"photo-{i:04d}.jpg", quality=90)


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds: the CPU time of this process (all threads) is what a shared machine cannot inflate."""
    return time.perf_counter(), time.process_time()


def query(suggester: ReferenceSuggester, target, folder: Path, k: int = 4) -> dict:
    t0 = clock()
    scan = suggester.scan(folder)
    t1 = clock()
    features = suggester.image_features(target)
    t2 = clock()
    top = suggester.rank(features, scan, k)
    t3 = clock()
    spans = {"scan": (t0, t1), "target": (t1, t2), "rank": (t2, t3), "total": (t0, t3)}
    return {**{name: (b[0] - a[0], b[1] - a[1]) for name, (a, b) in spans.items()}, "computed": scan.computed,
            "photos": len(scan.paths), "top": [s.path.name for s in top]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--photos", type=Path, default=Path(tempfile.gettempdir()) / "sa-suggest-1000")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "suggest_cache.md")
    parser.add_argument("--cache", type=Path,
                        help="feature cache to use and keep (default: a new temporary one, removed at the end); "
                             "a second run with the same --cache starts warm")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    make_photos(args.photos, args.count)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="sa-suggest-cache-"))
    cache.mkdir(parents=True, exist_ok=True)
    gray = Image.open(load_split("val")[0]).convert("L")
    target_path = cache / "target.png"
    gray.save(target_path)
    target = read_image(target_path)
    try:
        t0 = time.perf_counter()
        suggester = ReferenceSuggester("demo", device="cpu", cache_dir=cache)
        build = time.perf_counter() - t0
        first = query(suggester, target, args.photos)
        second = query(ReferenceSuggester("demo", device="cpu", cache_dir=cache), target, args.photos)
        assert second["computed"] == 0 and second["top"] == first["top"]
        started = time.perf_counter()
        cli = subprocess.run(["/usr/bin/time", "-f", "%U %S", str(Path(sys.executable).parent / "sa-suggest"),
                              str(target_path), str(args.photos), "--device", "cpu", "--cache-dir", str(cache)],
                             capture_output=True, text=True)
        cli_wall = time.perf_counter() - started
        if cli.returncode != 0:
            raise SystemExit(f"sa-suggest failed: {cli.stderr.strip()}")
        cli_cpu = sum(float(v) for v in cli.stderr.strip().splitlines()[-1].split())
        edited = sorted(args.photos.glob("*.jpg"))[:10]
        backup = cache / "backup"
        backup.mkdir(exist_ok=True)
        for path in edited:
            shutil.copy2(path, backup / path.name)
            with Image.open(path) as image:
                image.convert("RGB").rotate(180).save(path, quality=90)
        third = query(suggester, target, args.photos)
        for path in edited:
            shutil.copy2(backup / path.name, path)
        suggester.scan(args.photos)  # the cache holds the folder as it is again
    finally:
        shutil.rmtree(cache / "backup", ignore_errors=True)
        if args.cache is None:
            shutil.rmtree(cache, ignore_errors=True)

    rows = [(f"1: first ({'empty' if first['computed'] else 'warm'} cache)", first), ("2: cached (new suggester)", second), ("3: 10 photos replaced", third)]

    def cell(span: tuple[float, float]) -> str:
        return f"{span[1]:.3f} s ({span[0]:.3f} s)"

    lines = [f"`python benchmarks/suggest_cache.py --count {args.count}` ({first['photos']} photos, demo profile, "
             f"{torch.get_num_threads()} threads; encoder built in {build:.2f} s wall). Each cell: CPU time of the "
             f"process (wall time in brackets).", "",
             "| query | features computed | scan | target features | ranking | feature work in all |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {r['computed']} | {cell(r['scan'])} | {cell(r['target'])} | {cell(r['rank'])} | "
              f"{cell(r['total'])} |" for name, r in rows]
    summary = cli.stderr.strip().splitlines()[-2]  # the last line is /usr/bin/time's
    lines += ["", f"`sa-suggest` in a fresh process on the cached folder, start-up (Python, torch, building the "
                  f"encoder) included: {cli_cpu:.1f} s CPU, {cli_wall:.1f} s wall (its own summary: `{summary}`)."]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
