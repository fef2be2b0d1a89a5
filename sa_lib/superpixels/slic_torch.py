"""Batched SLIC in pure torch, for labelling whole batches on a GPU (it also runs, slowly, on the CPU).

Same objective as scikit-image's SLIC on a gray image (the authors' settings): each image is rescaled to
[0, 1] by its own min and max, as scikit-image does, and a pixel joins the centre minimising
(colour difference / compactness)^2 + (spatial distance / grid step)^2.

1. Grid init: scikit-image's own grid of K = ny x nx centres (skimage.util.regular_grid), shared by the
   batch, with colour 0 as scikit-image starts (so the first assignment is purely spatial).
2. `iterations` rounds of: assign each pixel to the best of the 3 x 3 grid centres around its nearest
   initial centre (one vectorised (B, H*W, 9) distance, no loop over pixels or superpixels; scikit-image
   searches a window of +-2 grid steps around each centre instead, and 5 x 5 candidates, search_radius=2,
   measured only slightly closer to it at 2.5x the cost), then move each centre to the mean position and
   colour of its pixels (scatter_add on integers, so the result is bit-for-bit deterministic on the GPU
   too; an empty centre stays where it was).
3. Connectivity clean-up, in torch on the same device, after scikit-image's enforce_label_connectivity:
   4-connected components of equal labels are found by run-wise minimum propagation with pointer jumping;
   each component smaller than min_size_factor x (H*W / K) pixels joins, whole, the component above its
   first pixel (chains followed by pointer jumping). Every final superpixel is 4-connected. It differs from
   scikit-image in details (which neighbour a small piece joins; no max_size cap), not in kind.
4. Labels are made contiguous per image (0 .. S-1, every label used, numbered in raster order of their
   first pixel) and returned with the count S of each image.

Each image's result depends on that image only: labelling a batch equals labelling its images one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from skimage.util import regular_grid

DEFAULT_ITERATIONS = 10  # scikit-image's max_num_iter (it stops early when nothing moves; a fixed count
# gives the same labels, since a round that changes nothing leaves the centres where they are)
SEARCH_RADIUS = 1  # candidates: the (2r + 1)^2 grid centres around a pixel's nearest one (1: 3 x 3)
MIN_SIZE_FACTOR = 0.5  # scikit-image's min_size_factor
COLOUR_FIXED_POINT = 1 << 16  # colours summed as integers in units of 1/65536 (deterministic scatter_add)


@dataclass(frozen=True)
class Grid:
    """Initial centres: rows start_y, start_y + stride_y, ... (ny of them); columns likewise."""

    start_y: int
    stride_y: int
    ny: int
    start_x: int
    stride_x: int
    nx: int

    @property
    def step(self) -> int:
        """scikit-image's spatial normaliser: its largest grid stride (the z axis of a 2-D image counts 1)."""
        return max(1, self.stride_y, self.stride_x)


def grid_for(height: int, width: int, n_segments: int) -> Grid:
    """scikit-image's own initial grid (skimage.util.regular_grid on the (1, H, W) volume, as its slic uses)."""
    _, rows, cols = regular_grid((1, height, width), max(1, n_segments))
    start_y, stride_y = rows.start or 0, rows.step or 1
    start_x, stride_x = cols.start or 0, cols.step or 1
    return Grid(start_y, stride_y, len(range(start_y, height, stride_y)),
                start_x, stride_x, len(range(start_x, width, stride_x)))


def _neighbour_candidates(height: int, width: int, grid: Grid, radius: int, device: torch.device
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre ids (H*W, C) of the C = (2r + 1)^2 grid centres around each pixel's nearest initial centre,
    and a mask (H*W, C) of the ids that fall outside the grid."""
    def nearest(size: int, start: int, stride: int, count: int) -> torch.Tensor:
        index = torch.div(torch.arange(size, device=device) - start + stride // 2, stride, rounding_mode="floor")
        return index.clamp(0, count - 1)

    offsets = torch.arange(-radius, radius + 1, device=device)  # (2r + 1,)
    cy = nearest(height, grid.start_y, grid.stride_y, grid.ny)[:, None] + offsets  # (H, 2r + 1)
    cx = nearest(width, grid.start_x, grid.stride_x, grid.nx)[:, None] + offsets  # (W, 2r + 1)
    outside = ((cy < 0) | (cy >= grid.ny))[:, None, :, None] | ((cx < 0) | (cx >= grid.nx))[None, :, None, :]
    ids = cy.clamp(0, grid.ny - 1)[:, None, :, None] * grid.nx + cx.clamp(0, grid.nx - 1)[None, :, None, :]
    n = (2 * radius + 1) ** 2
    return ids.reshape(height * width, n), outside.reshape(height * width, n)  # from (H, W, 2r+1, 2r+1)


def _assign(colour: torch.Tensor, centres: torch.Tensor, pos_y: torch.Tensor, pos_x: torch.Tensor,
            candidates: torch.Tensor, outside: torch.Tensor, colour_weight: float, spatial_weight: float
            ) -> torch.Tensor:
    """Best candidate centre of each pixel: colour (B, HW), centres (B, 3, K) as (y, x, colour) -> (B, HW)."""
    cand = centres[:, :, candidates]  # (B, 3, HW, C): y, x, colour of every pixel's C candidate centres
    distance = (cand[:, 2] - colour[..., None]).square_().mul_(colour_weight)  # (B, HW, C)
    distance += ((cand[:, 0] - pos_y).square_() + (cand[:, 1] - pos_x).square_()).mul_(spatial_weight)
    distance.masked_fill_(outside, float("inf"))
    best = distance.argmin(dim=2, keepdim=True)  # (B, HW, 1)
    return candidates.expand(colour.shape[0], -1, -1).gather(2, best)[..., 0]  # (B, HW) centre id


def _update(labels: torch.Tensor, colour_fixed: torch.Tensor, pos_y: torch.Tensor, pos_x: torch.Tensor,
            centres: torch.Tensor) -> torch.Tensor:
    """Centres (B, 3, K) moved to the mean (y, x, colour) of their pixels; empty centres stay."""
    b, _, k = centres.shape
    sums = torch.zeros(b, 4, k, dtype=torch.int64, device=labels.device)  # (B, [y, x, colour, count], K)
    for row, values in enumerate((pos_y.expand_as(labels), pos_x.expand_as(labels), colour_fixed,
                                  torch.ones_like(labels))):
        sums[:, row].scatter_add_(1, labels, values)
    count = sums[:, 3:]  # (B, 1, K)
    mean = sums[:, :3].to(centres.dtype) / count.clamp(min=1).to(centres.dtype)
    mean[:, 2] /= COLOUR_FIXED_POINT
    return torch.where(count > 0, mean, centres)


def _run_ids(labels: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, H*W) id of each pixel's horizontal run of equal labels (unique within its image)."""
    b, h, w = labels.shape
    starts = torch.ones_like(labels, dtype=torch.int64)
    starts[:, :, 1:] = (labels[:, :, 1:] != labels[:, :, :-1]).long()  # a run starts at x = 0 or a change
    return starts.reshape(b, h * w).cumsum(1) - 1  # (B, H W) run ids


def connected_components(labels: torch.Tensor) -> torch.Tensor:
    """(B, H, W) labels -> (B, H, W) id of each pixel's 4-connected component of equal labels.

    The id is the flat index (y * W + x) of the component's first pixel in raster order. Each round gives
    every horizontal run, then every vertical run, the smallest id found in it (scatter_reduce "amin"), then
    follows the ids once (pointer jumping: an id's own id lies in the same component and is no larger), until
    nothing changes; a superpixel needs a few rounds, not one per pixel of its diameter.
    """
    b, h, w = labels.shape
    rows = _run_ids(labels)  # (B, HW) in raster order
    cols = _run_ids(labels.transpose(1, 2)).reshape(b, w, h).transpose(1, 2).reshape(b, h * w)  # (B, HW)
    comp = torch.arange(h * w, device=labels.device).expand(b, -1).contiguous()  # (B, HW)
    while True:
        new = comp
        for runs in (rows, cols):
            run_min = torch.full_like(new, h * w).scatter_reduce_(1, runs, new, reduce="amin")  # (B, HW)
            new = run_min.gather(1, runs)
        new = new.gather(1, new)
        if torch.equal(new, comp):
            return comp.reshape(b, h, w)  # (B, H, W)
        comp = new


def merge_small_components(comp: torch.Tensor, min_size: int) -> torch.Tensor:
    """Merge every 4-connected component smaller than `min_size` pixels, whole, into a neighbour.

    comp: (B, H, W) component ids as made by connected_components (the flat index of each component's first
    pixel in raster order). Like scikit-image's enforce_label_connectivity, a small component joins the
    component of the pixel above its first pixel (left of it on the first row), which comes earlier in raster
    order (joining the left one instead measured the same); chains of small components are followed to a kept
    one by pointer jumping. The component holding pixel 0 is kept. The result stays 4-connected: a merged
    component touches the one it joins.
    """
    b, h, w = comp.shape
    flat = comp.reshape(b, h * w)  # (B, HW)
    sizes = torch.zeros_like(flat).scatter_add_(1, flat, torch.ones_like(flat))  # (B, HW) size by component id
    first = torch.arange(h * w, device=comp.device)  # (HW,) flat index = id of a component starting there
    neighbour = torch.where(first >= w, first - w, first - 1).clamp(min=0)  # (HW,) above; pixel 0: itself
    parent = flat[:, neighbour]  # (B, HW): for an id p, the component of the pixel before p's first pixel
    parent = torch.where(sizes < min_size, parent, first.expand(b, -1))  # kept components are their own parent
    while True:
        jumped = parent.gather(1, parent)  # parents come earlier in raster order: chains end at a kept id
        if torch.equal(jumped, parent):
            return parent.gather(1, flat).reshape(b, h, w)  # (B, H, W)
        parent = jumped


def make_contiguous(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, H, W) non-negative labels -> labels 0 .. S-1 per image (order kept) and the counts S (B,)."""
    b, h, w = labels.shape
    flat = labels.reshape(b, h * w)  # (B, HW)
    size = int(flat.max()) + 1
    used = torch.zeros(b, size, dtype=torch.int64, device=labels.device).scatter_(1, flat, 1)  # (B, size)
    new_id = used.cumsum(1) - 1
    return new_id.gather(1, flat).reshape(b, h, w), used.sum(1)  # (B, H, W) labels, (B,) counts


def slic_torch(gray: torch.Tensor, n_segments: int, compactness: float = 0.1,
               iterations: int = DEFAULT_ITERATIONS, search_radius: int = SEARCH_RADIUS,
               min_size_factor: float = MIN_SIZE_FACTOR) -> tuple[torch.Tensor, torch.Tensor]:
    """SLIC of a batch of gray images (B, H, W) or (B, 1, H, W), any range, on their own device.

    Returns labels (B, H, W) int64, contiguous per image (0 .. S-1, all used, every superpixel
    4-connected), and counts (B,) int64.
    """
    if gray.dim() == 4 and gray.shape[1] == 1:
        gray = gray[:, 0]
    if gray.dim() != 3:
        raise ValueError(f"slic_torch expects (B, H, W) or (B, 1, H, W) gray images, got {tuple(gray.shape)}")
    if compactness <= 0:
        raise ValueError(f"compactness must be positive, got {compactness}")
    b, h, w = gray.shape
    device = gray.device
    flat = gray.detach().float().reshape(b, h * w)  # (B, HW)
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    colour = torch.where(high > low, (flat - low) / (high - low).clamp(min=1e-12), torch.zeros_like(flat))
    colour_fixed = torch.round(colour * COLOUR_FIXED_POINT).long()  # (B, HW) for the centre sums
    colour = colour_fixed.float() / COLOUR_FIXED_POINT  # the same quantised values in both places

    grid = grid_for(h, w, n_segments)
    candidates, outside = _neighbour_candidates(h, w, grid, search_radius, device)
    pos_y = torch.arange(h, device=device).repeat_interleave(w)[None]  # (1, HW) row of each pixel
    pos_x = torch.arange(w, device=device).repeat(h)[None]  # (1, HW) column of each pixel
    pos_yf, pos_xf = pos_y.float()[..., None], pos_x.float()[..., None]  # (1, HW, 1) for the distances

    grid_y, grid_x = torch.meshgrid(
        torch.arange(grid.ny, device=device, dtype=torch.float32) * grid.stride_y + grid.start_y,
        torch.arange(grid.nx, device=device, dtype=torch.float32) * grid.stride_x + grid.start_x,
        indexing="ij")  # (ny, nx) each
    # colour 0 everywhere, as scikit-image starts: the first assignment is purely spatial
    # grid_*: (n_y, n_x) -> (n_y n_x,)
    centres = torch.stack([grid_y.reshape(-1), grid_x.reshape(-1), torch.zeros_like(grid_x).reshape(-1)]
                          )[None].expand(b, -1, -1).contiguous()  # (B, 3, K): y, x, colour

    colour_weight, spatial_weight = 1.0 / compactness ** 2, 1.0 / grid.step ** 2
    labels = _assign(colour, centres, pos_yf, pos_xf, candidates, outside, colour_weight, spatial_weight)
    for _ in range(iterations - 1):
        centres = _update(labels, colour_fixed, pos_y, pos_x, centres)
        labels = _assign(colour, centres, pos_yf, pos_xf, candidates, outside, colour_weight, spatial_weight)

    comp = connected_components(labels.reshape(b, h, w))  # (B, H, W)
    merged = merge_small_components(comp, int(min_size_factor * h * w / (grid.ny * grid.nx)))
    return make_contiguous(merged)
