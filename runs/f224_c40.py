"""Run c40: f224's third stage with lambda_chroma = 40 (the profile's: 10), from the committed state at step 2,400
(runs/demo-transfer-f224-2400, copied to runs/f224-c40), the same batches; the flip average on (inference only).
The state is in git history only: git show 4b6143d:runs/demo-transfer-f224-2400/last.state.pt > runs/f224-c40/last.state.pt"""
from sa_lib.train.config import profile_config
from sa_lib.train.loop import train
config = profile_config("demo", "transfer", out="runs/f224-c40", progress=False, checkpoint_every=50,
    later_stages=[(1500, {"lr": 1e-4, "p_self": 0.4, "p_recolor": 0.25}), (2400, {"lambda_chroma": 40.0})])
print(config.image_size, config.max_steps, config.later_stages, config.model.flip_average, flush=True)
train(config, resume=True)
