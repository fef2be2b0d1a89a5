"""`sa-references`: rank the top-4 references of every target of a profile and write its evaluation pairs.

    sa-references --profile demo    # offline: data/demo/references.json + eval_pairs.csv
    sa-references --profile paper   # COCO 2017 with VGG19 (weights downloaded once), faiss engine
    sa-references --profile demo --engine faiss --features-dir /tmp/demo-features   # the faiss engine on the demo

The method is section 4 of the paper (sa_lib.data.references); the profile (sa_lib.profiles) gives the photos,
the encoder, the unit-norm rule and where the files go.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from ..core.devices import resolve_device
from ..core.errors import UsageError
from ..core.hub import AssetUnavailable
from ..data.reference_index import DEFAULT_MEMORY_GB, build_references_faiss
from ..data.references import (DEFAULT_K, FEATURE_LEVEL, build_references, default_batch_size,
                               ranking_feature_fn, write_eval_pairs, write_references)
from ..profiles import get_profile, ranking_profiles
from .command import (CommandParser, check_output_file, non_negative_int, positive_float, positive_int,
                      run_command, summary)

PROG = "sa-references"
ENGINES = ("torch", "faiss")


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog=PROG, description=summary(__doc__))
    p.add_argument("--profile", choices=ranking_profiles(), default="demo",
                   help="demo: offline photos + effnet_lite0; paper: COCO 2017 + vgg19; paper-smoke: paper's ranking "
                        "with a random vgg19 on a miniature COCO made from demo photos")
    p.add_argument("--encoder", help="override the profile's encoder (effnet_lite0, vgg19, vgg19_bn)")
    p.add_argument("--out", type=Path,
                   help="references JSON (demo: data/demo/references.json; paper: <COCO root>/references-train.json)")
    p.add_argument("--eval-pairs", type=Path,
                   help="val evaluation pairs CSV (demo: data/demo/eval_pairs.csv; paper: <COCO root>/eval_pairs.csv)")
    p.add_argument("--k", type=positive_int, default=DEFAULT_K, help="references kept per target")
    p.add_argument("--batch-size", type=positive_int,
                   help="crops per encoder batch (default: 32 on a GPU, 4 on a CPU, where small batches "
                        "measured faster: 18 ms/crop at 4 against 37 at 32 with effnet_lite0 on 2 cores)")
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="image-decoding processes (0: in this process; default 0, 8 with --engine faiss)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                   help="rank by L2 between unit-norm feature maps (default for demo: on, since raw L2 on "
                        "EfficientNet features makes a few smooth strips the nearest of everything; "
                        "paper: off, the paper's raw L2)")
    p.add_argument("--half", action="store_true",
                   help="torch engine: keep features in float16 (halves their memory); the faiss engine's shards are "
                        "always float16")
    p.add_argument("--engine", choices=ENGINES, default=None,
                   help="torch: features in memory, brute force (demo default); faiss: float16 feature shards on "
                        "disk searched exactly with faiss in bounded memory, resumable (default of the COCO profiles)")
    p.add_argument("--features-dir", type=Path,
                   help="faiss engine: folder of the feature shards (default: beside --out, <out stem>-features)")
    p.add_argument("--memory-gb", type=positive_float, default=DEFAULT_MEMORY_GB,
                   help=f"faiss engine: memory for one block of targets and one candidate shard (default "
                        f"{DEFAULT_MEMORY_GB:g})")
    return p


def check_outputs(out: Path, eval_out: Path) -> None:
    """The references file and the pairs file: two different files, neither a folder (UsageError otherwise)."""
    if os.path.realpath(out) == os.path.realpath(eval_out):
        raise UsageError(f"--out and --eval-pairs are the same file ({out}); one would overwrite the other")
    check_output_file(out, "--out")
    check_output_file(eval_out, "--eval-pairs")


def rank(args: argparse.Namespace) -> None:
    profile = get_profile(args.profile)
    normalize = profile.ranking_normalize if args.normalize is None else args.normalize
    encoder_name = args.encoder or profile.ranking_encoder
    engine = args.engine or profile.ranking_engine
    workers = args.workers if args.workers is not None else (min(8, os.cpu_count() or 1) if engine == "faiss" else 0)
    device = resolve_device(args.device or "auto")
    photos = profile.photos
    out = args.out or photos.references_file()
    eval_out = args.eval_pairs or photos.pairs_file()
    check_outputs(Path(out), Path(eval_out))  # before the ranking's minutes (hours on COCO)
    # The encoder first: an unknown name or missing VGG weights fail before any data is read.
    try:
        feature_fn = ranking_feature_fn(encoder_name, device, pretrained=profile.pretrained)
    except ValueError as err:  # an unknown encoder name: a usage error, as in sa-suggest
        raise UsageError(str(err)) from None
    pool, targets = photos.ranking_sets()
    val = targets[-1]  # the val photos, whose rankings are the evaluation pairs
    start = time.perf_counter()
    print(f"[references] profile {args.profile}, encoder {encoder_name} (level {FEATURE_LEVEL}"
          f"{', normalized' if normalize else ''}), "
          f"{profile.ranking_size}x{profile.ranking_size}{'' if profile.pretrained else ', random weights'}, "
          f"k={args.k}, device {device}, engine {engine}", file=sys.stderr, flush=True)
    if engine == "faiss":
        features_dir = args.features_dir or Path(out).with_name(Path(out).stem + "-features")
        print(f"[references] faiss engine: features in {features_dir} (float16 shards; resumable)", file=sys.stderr)
        references = build_references_faiss(pool, targets, features_dir=features_dir, encoder=encoder_name,
                                            feature_fn=feature_fn, k=args.k, image_size=profile.ranking_size,
                                            batch_size=args.batch_size or default_batch_size(device),
                                            num_workers=workers, device=device, normalize=normalize,
                                            memory_gb=args.memory_gb, pretrained=profile.pretrained)
    else:
        references = build_references(pool, targets, encoder=encoder_name, feature_fn=feature_fn,
                                      k=args.k, image_size=profile.ranking_size,
                                      batch_size=args.batch_size or default_batch_size(device),
                                      num_workers=workers,
                                      feature_dtype=torch.float16 if args.half else torch.float32, device=device,
                                      normalize=normalize)
    write_references(out, references)
    n_pairs = write_eval_pairs(eval_out, references, val)
    n_objects = sum(c.box is not None for c in references.candidates)
    print(f"[references] {len(references.candidates)} candidates ({len(references.candidates) - n_objects} "
          f"images, {n_objects} objects), {len(references.targets)} targets ranked in "
          f"{time.perf_counter() - start:.1f} s; wrote {out} and {eval_out} ({n_pairs} pairs)")


def main(argv: list[str] | None = None) -> None:
    """`sa-references`: rank the references of a profile and write its files; one-line errors, exit 1."""
    args = parser().parse_args(argv)
    run_command(PROG, lambda: rank(args), failures=(OSError, ValueError, ImportError, AssetUnavailable))


if __name__ == "__main__":
    main()
