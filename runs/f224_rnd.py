"""Scratch run rnd: f224's third stage where 20% of the draws take an unrelated reference (a random candidate of
another train photo) instead of the sampler's, so that copying a reference is sometimes wrong for certain; from the
committed state at step 2,400, the flip average on. A measurement only: the sampler is patched here, not in sa_lib.
The state is in git history only: git show 4b6143d:runs/demo-transfer-f224-2400/last.state.pt > runs/f224-rnd/last.state.pt"""
import random
from sa_lib.data import references as refs
from sa_lib.train.config import profile_config
from sa_lib.train.loop import train

P_RANDOM = 0.2
original = refs.ReferenceSampler.sample


def sample(self, image_id, rng=None):
    r = rng or self.rng
    if r.random() < P_RANDOM:
        others = [c for c in self.references.candidates if c.image_id != image_id]  # every candidate is a train photo
        return others[int(r.random() * len(others)) % len(others)]
    return original(self, image_id, rng)


refs.ReferenceSampler.sample = sample
config = profile_config("demo", "transfer", out="runs/f224-rnd", progress=False, checkpoint_every=50)
print(config.image_size, config.max_steps, config.later_stages, config.model.flip_average, flush=True)
train(config, resume=True)
