"""The network: the colorizer, its attention blocks, colour encoders, losses, checkpoints, the authors' preset
and the one inference step (predict_ab).

`from sa_lib.model import build_model` is the public factory (sa_lib.model.colorizer.build_model).
"""

from .colorizer import Colorizer, ColorizerConfig, build_model

__all__ = ["Colorizer", "ColorizerConfig", "build_model"]
