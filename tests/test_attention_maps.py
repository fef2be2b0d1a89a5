"""sa_lib.figures.attention_maps: one attention row as pictures, and the paper's Fig. 3."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sa_lib.figures import attention_maps as am


def grid_labels(shape: tuple[int, int], rows: int, cols: int) -> np.ndarray:
    """(h, w) labels of a rows x cols grid of blocks, numbered in raster order."""
    h, w = shape
    return (np.arange(h)[:, None] * rows // h) * cols + np.arange(w)[None, :] * cols // w


def synthetic_pair(seed: int = 0) -> am.PairAttention:
    """A 16 x 24 target and a 12 x 12 reference with block superpixels and random attention rows."""
    rng = np.random.default_rng(seed)
    grids_t, grids_r = {0: (2, 3), 1: (2, 2), 2: (1, 2)}, {0: (3, 3), 1: (2, 2), 2: (2, 1)}
    t_labels = {l: grid_labels((16 >> l, 24 >> l), *grids_t[l]) for l in am.LEVELS}
    r_labels = {l: grid_labels((12 >> l, 12 >> l), *grids_r[l]) for l in am.LEVELS}
    attention = {}
    for l in am.LEVELS:
        a = rng.random((int(t_labels[l].max()) + 1, int(r_labels[l].max()) + 1)) ** 8  # peaked rows
        attention[l] = a / a.sum(axis=1, keepdims=True)
    reference = rng.random((12, 12, 3)).astype(np.float32)
    colour = rng.random((16, 24, 3)).astype(np.float32)
    return am.PairAttention(rng.random((16, 24)), reference, colour, attention, t_labels, r_labels, "synthetic")


def test_upsample_labels_is_nearest_and_covers_every_pixel():
    labels = np.array([[0, 1], [2, 3]])
    up = am.upsample_labels(labels, (4, 6))
    assert up.shape == (4, 6)
    assert (up[:2, :3] == 0).all() and (up[:2, 3:] == 1).all() and (up[2:, :3] == 2).all() and (up[2:, 3:] == 3).all()


def test_superpixel_under_a_point_its_mask_and_centre_agree():
    pa = synthetic_pair()
    for level in am.LEVELS:
        label = am.superpixel_at(pa, level, 15, 23)  # bottom-right pixel
        assert label == pa.superpixel_count(level) - 1
        mask = am.superpixel_mask(pa, level, label)
        assert mask.shape == pa.gray.shape and mask[15, 23]
        y, x = am.superpixel_center(pa, level, label)
        assert mask[y, x]
    assert am.superpixel_at(pa, 0, -5, 999) == am.superpixel_at(pa, 0, 0, 23)  # clamped to the image


def test_reference_is_lit_by_the_row():
    pa = synthetic_pair()
    row = am.attention_row(pa, 0, 2)
    np.testing.assert_allclose(row.sum(), 1.0)
    r_pixels = pa.pixel_labels(0, "reference")
    lit = am.reference_view(pa, 0, 2)
    brightest = int(row.argmax())
    # The most attended reference superpixel keeps its colours; the others are dimmed by their weight.
    np.testing.assert_allclose(lit[r_pixels == brightest], pa.reference[r_pixels == brightest], rtol=1e-6)
    darkest = int(row.argmin())
    expected = am.DIM + (1 - am.DIM) * row[darkest] / row.max()
    np.testing.assert_allclose(lit[r_pixels == darkest], pa.reference[r_pixels == darkest] * expected, rtol=1e-6)


def test_target_view_outlines_only_around_the_superpixel():
    pa = synthetic_pair()
    view = am.target_view(pa, 0, 0)  # the top-left block: rows 0..7, cols 0..7
    red = np.all(view == am.OUTLINE, axis=2)
    assert red.any() and not red[:8, :8].any()  # "outer" boundary: drawn just outside the region
    assert not red[12:, 16:].any()


def test_colours_received_and_attended():
    pa = synthetic_pair()
    mask = am.superpixel_mask(pa, 1, 3)
    np.testing.assert_allclose(am.received_colour(pa, 1, 3), pa.colour[mask].mean(axis=0), rtol=1e-5)
    r_pixels = pa.pixel_labels(1, "reference")
    means = np.stack([pa.reference[r_pixels == j].mean(axis=0) for j in range(pa.attention[1].shape[1])])
    np.testing.assert_allclose(am.attended_colour(pa, 1, 3), pa.attention[1][3] @ means, rtol=1e-5)


def test_matrix_view_marks_the_row():
    pa = synthetic_pair()
    plain, marked = am.matrix_view(pa, 0), am.matrix_view(pa, 0, label=4)
    assert plain.shape == (*pa.attention[0].shape, 3)
    changed = np.any(plain != marked, axis=2)
    assert changed[4].all() and changed.sum() == changed.shape[1]


def test_fig3_writes_three_panels_per_level(tmp_path):
    path = am.fig3_attention(synthetic_pair(), tmp_path / "figs", point=(3, 3))
    assert path == tmp_path / "figs" / "fig3_attention.png"
    with Image.open(path) as image:
        assert image.width > 800 and image.height > 600


def test_profile_settings():
    smoke, demo = am.profile_settings("smoke"), am.profile_settings("demo")
    assert len(smoke.pairs) == 2 and smoke.working_size < demo.working_size
    # the 65 matched pairs, then the 38 ranked ones less the 9 that are matched pairs as well
    assert len(demo.pairs) == 65 + 38 - 9 and all(p.target_path.is_file() and p.reference_path.is_file()
                                                  for p in demo.pairs)
    shown = demo.pairs[demo.figure_pair]  # Fig. 3: the cheetah with a jaguar, a matched pair
    assert (shown.target, shown.reference) == ("gcompris-cheetah.jpg", "gcompris-jaguar.jpg")
    assert demo.checkpoint == smoke.checkpoint == "demo-transfer" and demo.compare and not smoke.compare
    with pytest.raises(ValueError, match="unknown profile"):
        am.profile_settings("huge")


def test_crop_box_cuts_the_reference():
    pair = next(p for p in am.profile_settings("demo").pairs if p.box is not None)
    target, reference = am.load_full_pair(pair)
    assert reference.shape[:2] == (pair.box[3], pair.box[2]) and target.ndim == 3


def test_real_model_on_the_smoke_pair(tmp_path):
    settings = am.profile_settings("smoke")
    pa = am.compute_pair_attention(settings.pairs[0], settings.checkpoint, "cpu", settings.working_size)
    assert pa.levels == am.LEVELS and max(pa.gray.shape) == settings.working_size
    for level in pa.levels:
        s_t, s_r = pa.attention[level].shape
        assert pa.target_labels[level].max() + 1 == s_t and pa.reference_labels[level].max() + 1 == s_r
        np.testing.assert_allclose(pa.attention[level].sum(axis=1), 1.0, rtol=1e-4)
    assert pa.pixel_labels(0).shape == pa.gray.shape and pa.colour.shape == (*pa.gray.shape, 3)
    assert pa.model == settings.checkpoint  # the figure's title and the explorer's caption name it
    assert am.fig3_attention(pa, tmp_path).is_file()
