"""sa_lib.figures.references: the rankings notebook 01 shows, the Fig. 4 grid and the candidates figure."""

import numpy as np
import pytest
from PIL import Image

from sa_lib.data.datasets import demo_dataset
from sa_lib.data.demo_data import load_split
from sa_lib.figures.references import (candidates_figure, committed_ranking, crop_resized, fig4, highlight_box,
                                      pick_photos_with_objects, pick_targets, profile_ranking, same_top)


@pytest.fixture(scope="module")
def ranking():
    return committed_ranking()


def test_smoke_profile_reads_the_committed_ranking(ranking):
    smoke = profile_ranking("smoke")
    assert smoke.references.k == 4 and len(smoke.references.targets) == 252
    assert same_top(smoke.references, ranking.references) == 1.0
    with pytest.raises(ValueError, match="unknown profile"):
        profile_ranking("huge")


def test_targets_are_val_photos_spread_evenly(ranking):
    ids = pick_targets(ranking, 5)
    names = [ranking.references.images[i] for i in ids]
    val = sorted(p.name for p in load_split("val"))
    assert names == sorted(names) and set(names) <= set(val)
    assert names[0] == val[0] and names[-1] == val[-1]
    assert len(pick_targets(ranking, 1000)) == len(val)


def test_same_top_counts_identical_lists(ranking):
    refs = ranking.references
    changed = committed_ranking().references
    first = next(iter(changed.targets))
    changed.targets[first] = list(reversed(changed.targets[first]))
    assert same_top(refs, changed) == pytest.approx(1 - 1 / len(refs.targets))


def test_highlight_box_dims_outside_only():
    rgb = np.full((10, 20, 3), 200, np.uint8)
    out = highlight_box(rgb, (5, 2, 4, 3))
    assert (out[2:5, 5:9] == 200).all() and out[0, 0, 0] < 100
    assert highlight_box(rgb, None) is rgb
    assert crop_resized(rgb, (5, 2, 4, 3), 16).shape == (16, 16, 3)


def test_fig4_is_a_grid_of_targets_and_their_top4(ranking, tmp_path):
    png = fig4(ranking, pick_targets(ranking, 2), tmp_path / "fig4.png")
    width, height = Image.open(png).size
    assert width > 1000 and 300 < height < width  # 2 rows of 5 panels


def test_candidates_figure_shows_photos_with_large_objects(tmp_path):
    train = demo_dataset("train")
    ids = pick_photos_with_objects(train, n=2, min_objects=3, scan=40)
    assert len(ids) == 2 and all(len(set(map(tuple, train.object_boxes(i)))) >= 3 for i in ids)
    assert Image.open(candidates_figure(train, ids, tmp_path / "c.png")).size[0] > 800


def test_paper_profile_without_coco_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERATTN_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="make data-coco"):
        profile_ranking("paper")
