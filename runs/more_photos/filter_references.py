"""Run after `sa-references --profile demo --k 30` on runs/more_photos/demo. Drop, from each target's ranked
references, every candidate that shares a background photo with it (a composite and the train photo it was pasted
on, or two composites on one photo), then keep the first 4.

    python runs/more_photos/filter_references.py    # rewrites runs/more_photos/demo/references.json
"""
import json
from pathlib import Path

DEMO = Path(__file__).resolve().parent / "demo"
K = 4
refs = json.loads((DEMO / "references.json").read_text())
background = json.loads((DEMO / "composites.json").read_text())
name = refs["images"]
scene = {i: background.get(f, f) for i, f in name.items()}  # image id -> the photo it shows
image_of = {c["index"]: str(c["image_id"]) for c in refs["candidates"]}
for target, ranked in refs["targets"].items():
    kept = [r for r in ranked if scene[image_of[r[0]]] != scene[target]]
    if len(kept) < K:
        raise SystemExit(f"target {name[target]}: fewer than {K} references left")
    refs["targets"][target] = kept[:K]
refs["k"] = K
(DEMO / "references.json").write_text(json.dumps(refs, indent=1) + "\n")
print("rewrote", DEMO / "references.json")
