"""Run p1-full: make train-demo's transfer run (f224's recipe, 224 px) with frozen_prior, from step 0.
Resumable: run it again and it continues from runs/p1-full/last.state.pt. That state (step 1,250, 30 MB) is not in
the tree: it is a run artifact, kept in git history only; restore it first with
    git show d963988:runs/p1-full/last.state.pt > runs/p1-full/last.state.pt
or pass --from-scratch to start again at step 0 (3 h 10 min on the 2-core CPU)."""
import sys
from dataclasses import replace
from pathlib import Path
from sa_lib.train.config import profile_config
from sa_lib.train.loop import train
config = profile_config("demo", "transfer", out="runs/p1-full", progress=False, checkpoint_every=50)
# flip_average off: the run began before the option existed, and its validation stays comparable with f224's log
config = replace(config, model=replace(config.model, frozen_prior=True, flip_average=False))
config.validate()
print(config.image_size, config.max_steps, config.later_stages, config.model.frozen_prior, flush=True)
resume = Path("runs/p1-full/last.state.pt").is_file()
if not resume and "--from-scratch" not in sys.argv[1:]:
    sys.exit("runs/p1-full/last.state.pt is missing: restore it from git history (see this script's docstring) "
             "or pass --from-scratch")
train(config, resume=resume)
