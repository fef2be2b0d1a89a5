"""`python -m sa_lib.cli.demo_annotations` (make demo-annotations): regenerate data/demo/annotations.json, the
automatic object masks of the demo photos (sa_lib.data.demo_annotations)."""

from __future__ import annotations

from pathlib import Path

from ..data.datasets import OBJECT_MIN_AREA_FRACTION
from ..data.demo_annotations import build_annotations, write_annotations
from ..data.demo_data import DEMO_DIR
from .command import CommandParser, run_command, summary

PROG = "python -m sa_lib.cli.demo_annotations"


def annotate(images: Path, out: Path) -> None:
    if not images.is_dir():
        raise FileNotFoundError(f"image folder not found: {images}")
    data = build_annotations(images)
    write_annotations(data, out)
    threshold = OBJECT_MIN_AREA_FRACTION
    with_objects = sum(
        any(a["area"] > threshold * im["width"] * im["height"] for a in data["annotations"]
            if a["image_id"] == im["id"]) for im in data["images"])
    print(f"wrote {out}: {len(data['images'])} images, {len(data['annotations'])} masks, "
          f"{with_objects} images with an object > {threshold:.0%}")


def main(argv: list[str] | None = None) -> None:
    parser = CommandParser(prog=PROG, description=summary(__doc__))
    parser.add_argument("--images", type=Path, default=DEMO_DIR / "images", help="folder of photos")
    parser.add_argument("--out", type=Path, default=DEMO_DIR / "annotations.json", help="COCO file to write")
    args = parser.parse_args(argv)
    run_command(PROG, lambda: annotate(args.images, args.out), failures=(FileNotFoundError,))


if __name__ == "__main__":
    main()
