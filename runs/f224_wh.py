"""Scratch run wh ("wrong hue"): f224's third stage where 20% of the draws get a reference whose a*b* plane is
rotated by 60-300 degrees while the target's truth is not, so that the reference shows the right regions in
colours that are wrong for them; the network can only score on those draws by falling back on its own guess
where the reference's colour does not fit what the gray target shows (the ranked pairs' losses in
docs/transfer.md: turquoise water for a deep-blue cave, brown wood for a steel shelf). From the committed state
at step 2,400, the same seed, the flip average on. A measurement only: the dataset is patched here, not in
sa_lib. The state is in git history only:
git show 4b6143d:runs/demo-transfer-f224-2400/last.state.pt > runs/f224-wh/last.state.pt"""
import math
import random

from sa_lib.core.color import lab_to_rgb, rgb_to_lab
from sa_lib.train import batches
from sa_lib.train.config import profile_config
from sa_lib.train.loop import train

P_WRONG = 0.2
original = batches.PairDataset.__getitem__


def wrong_hue(rgb, rng):
    angle = math.radians(rng.uniform(60.0, 300.0))
    lab = rgb_to_lab(rgb[None])  # (1, 3, H, W)
    a, b = lab[:, 1], lab[:, 2]
    rotated = lab.clone()
    rotated[:, 1], rotated[:, 2] = math.cos(angle) * a - math.sin(angle) * b, math.sin(angle) * a + math.cos(angle) * b
    return lab_to_rgb(rotated)[0].clamp(0.0, 1.0)  # (3, H, W)


def getitem(self, key):
    epoch, index = key
    rng = random.Random(f"wrong-hue/{self.seed}/{epoch}/{index}")  # its own stream: the other draws are unchanged
    if rng.random() >= P_WRONG:
        return original(self, key)
    item = original(self, key)
    item["reference"] = wrong_hue(item["reference"], rng)  # same L*: the superpixel labels stay valid
    return item


batches.PairDataset.__getitem__ = getitem
config = profile_config("demo", "transfer", out="runs/f224-wh", progress=False, checkpoint_every=50)
print(config.image_size, config.max_steps, config.later_stages, config.model.flip_average, flush=True)
train(config, resume=True)
