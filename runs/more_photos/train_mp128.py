"""Run mp128 (issue 11, lever 'more photos'): make train-demo's transfer recipe at 128 px, v6's size, on data/demo's
214 train photos plus the 215 of runs/more_photos/build_data.py (references filtered by filter_references.py).
Compare with v6 (the same recipe at 128 px on the 214; docs/transfer.md) and its two data-order draws.
Resumable: run it again and it continues from runs/more_photos/mp128/last.state.pt. It took 83 min on the
2-core CPU (start to last checkpoint, some of it beside scoring scripts).

    python runs/more_photos/build_data.py PACKAGES_DIR && \\
    SUPERATTN_DEMO_DIR=runs/more_photos/demo python -m sa_lib.cli.references --profile demo --k 30 \\
        --eval-pairs /tmp/unused.csv && python runs/more_photos/filter_references.py
    python runs/more_photos/train_mp128.py
"""
import os
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
os.environ["SUPERATTN_DEMO_DIR"] = str(HERE / "demo")  # read when sa_lib.data.demo_data is imported

from sa_lib.train.config import profile_config  # noqa: E402
from sa_lib.train.loop import train  # noqa: E402

OUT = HERE / "mp128"
config = profile_config("demo", "transfer", out=str(OUT), progress=False, image_size=128)
# flip_average off: as v6, which predates it; its validation log stays comparable with v6's
config = replace(config, model=replace(config.model, flip_average=False))
config.validate()
print(config.image_size, config.max_steps, config.later_stages, flush=True)
train(config, resume=(OUT / "last.state.pt").is_file())
