"""Superpixels: the SLIC grids of the attention levels (pyramid), the batched torch SLIC, segmentation quality."""
