"""Colorizing images: the Python API behind sa-colorize (any size, fast or highres mode)."""
