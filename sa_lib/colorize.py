"""`from sa_lib.colorize import colorize`: the public Python API, kept at its first address.

The code lives in sa_lib.inference.colorize; the command `sa-colorize` in sa_lib.cli.colorize.
"""

from .inference.colorize import Colorization, colorize, colorize_detailed

__all__ = ["Colorization", "colorize", "colorize_detailed"]
