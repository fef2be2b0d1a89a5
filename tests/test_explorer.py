"""sa_lib.figures.explorer: the widget callbacks, driven in plain Python (no browser, no kernel)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_attention_maps import synthetic_pair

from sa_lib.figures import attention_maps as am
from sa_lib.data.image_io import ImageInputError
from sa_lib.figures.explorer import AttentionExplorer, parse_point
from sa_lib.model.checkpoint import DEFAULT_CHECKPOINT

PAIRS = [am.Pair("a.jpg", "b.jpg", None, Path("a.jpg"), Path("b.jpg")),
         am.Pair("c.jpg", "d.jpg", (0, 0, 4, 4), Path("c.jpg"), Path("d.jpg"))]


@pytest.fixture
def explorer():
    calls = []

    def compute(pair):
        calls.append(pair)
        pa = synthetic_pair(seed=len(calls))
        if pair is PAIRS[1]:  # the second pair has more superpixels at level 0
            pa.target_labels[0] = np.arange(16 * 24).reshape(16, 24) // 4  # 96 superpixels of 4 pixels
            pa.attention[0] = np.full((96, pa.attention[0].shape[1]), 1 / pa.attention[0].shape[1])
        return pa

    e = AttentionExplorer(PAIRS, compute=compute)
    e.calls = calls
    return e


def test_starts_on_the_superpixel_at_the_target_centre(explorer):
    assert explorer.point == (8, 12) and explorer.label == am.superpixel_at(explorer.current, 0, 8, 12)
    assert explorer.superpixel_slider.value == explorer.label
    assert explorer.reference_image.value and explorer.matrix_image.value and "<img" in explorer.target_html.value


def test_picking_a_superpixel_updates_the_highlight_and_the_attention_row(explorer):
    before_mask, before_row = explorer.highlight_mask.copy(), explorer.shown_row.copy()
    before = (explorer.target_html.value, explorer.reference_image.value, explorer.matrix_image.value)
    explorer.superpixel_slider.value = 0  # as a person moving the slider: the observer runs select_superpixel
    assert explorer.label == 0
    np.testing.assert_array_equal(explorer.highlight_mask, am.superpixel_mask(explorer.current, 0, 0))
    assert not np.array_equal(explorer.highlight_mask, before_mask)
    np.testing.assert_array_equal(explorer.shown_row, explorer.current.attention[0][0])
    assert not np.array_equal(explorer.shown_row, before_row)
    after = (explorer.target_html.value, explorer.reference_image.value, explorer.matrix_image.value)
    assert all(a != b for a, b in zip(before, after))  # every view was redrawn
    y, x = explorer.point
    assert explorer.highlight_mask[y, x] and explorer.point_box.value == f"{x}, {y}"
    assert "superpixel <b>0</b>" in explorer.info.value and "sa-swatch" in explorer.info.value


def test_the_reference_view_shows_the_row(explorer):
    explorer.select_superpixel(5)
    shown = np.asarray(Image.open(io.BytesIO(explorer.reference_image.value)), dtype=np.float32) / 255
    expected = am.reference_view(explorer.current, 0, 5)
    np.testing.assert_allclose(shown, expected, atol=1 / 255 + 1e-6)


def test_a_click_or_typed_point_picks_the_superpixel_under_it(explorer):
    explorer.point_box.value = "23, 15"  # what the target image's onclick writes: x, y
    assert explorer.point == (15, 23)
    assert explorer.label == explorer.current.superpixel_count(0) - 1 == explorer.superpixel_slider.value
    explorer.select_point(0, 0)
    assert explorer.label == 0
    explorer.point_box.value = "not a point"
    assert explorer.label == 0 and "x, y" in explorer.info.value


def test_changing_level_keeps_the_point_and_updates_the_slider_range(explorer):
    explorer.select_point(23, 15)
    explorer.level_buttons.value = 2
    assert explorer.level == 2 and explorer.point == (15, 23)
    assert explorer.label == 1 and explorer.superpixel_slider.max == 1
    explorer.level_buttons.value = 1
    assert explorer.superpixel_slider.max == 3 and explorer.label == 3
    np.testing.assert_array_equal(explorer.shown_row, explorer.current.attention[1][3])


def test_changing_pair_computes_once_and_updates_the_slider_range(explorer):
    assert len(explorer.calls) == 1 and explorer.superpixel_slider.max == 5
    explorer.pair_dropdown.value = 1
    assert explorer.pair_index == 1 and explorer.superpixel_slider.max == 95
    assert explorer.label == am.superpixel_at(explorer.current, 0, 8, 12)
    explorer.pair_dropdown.value = 0
    explorer.pair_dropdown.value = 1
    assert len(explorer.calls) == 2  # one model run per pair: moving between them hits the cache


def test_rejects_out_of_range_picks(explorer):
    with pytest.raises(ValueError):
        explorer.select_superpixel(6)
    with pytest.raises(ValueError):
        explorer.select_pair(2)
    with pytest.raises(ValueError):
        explorer.select_level(3)


def test_parse_point():
    assert parse_point(" 12, 7 ") == (12, 7) and parse_point("3 4") == (3, 4)
    for text in ("12", "inf, 3", "1e999, 3", "nan, 3", "a, b"):
        with pytest.raises(ValueError):
            parse_point(text)


def test_a_pair_that_cannot_be_read_is_named_in_the_info_box_and_the_explorer_stays_put(explorer):
    def compute(pair):
        if pair is PAIRS[1]:
            raise ImageInputError("reference not found: d.jpg")
        return synthetic_pair(seed=1)

    e = AttentionExplorer(PAIRS, compute=compute)
    e.select_superpixel(2)
    shown = (e.target_html.value, e.reference_image.value)
    e.pair_dropdown.value = 1  # as a person picking the broken pair: the observer runs select_pair
    assert "reference not found: d.jpg" in e.info.value
    assert e.pair_index == 0 and e.pair_dropdown.value == 0 and e.label == 2  # the menu is back on the pair shown
    assert (e.target_html.value, e.reference_image.value) == shown
    e.superpixel_slider.value = 3  # every control still works
    assert e.label == 3 and "not found" not in e.info.value
    with pytest.raises(ImageInputError):  # called as a method, it raises, and changes nothing
        e.select_pair(1)
    assert e.pair_index == 0


def test_a_typed_position_that_is_not_one_is_named_and_clearing_the_box_drops_the_message(explorer):
    label, point = explorer.label, explorer.point
    for text in ("inf, 3", "1e999, 3", "nan, 3", "a,b"):
        explorer.point_box.value = text
        assert "type a pixel position" in explorer.info.value, text
        assert (explorer.label, explorer.point) == (label, point)
    explorer.point_box.value = ""
    assert "type a pixel position" not in explorer.info.value
    assert explorer.point_box.value == f"{point[1]}, {point[0]}"


def test_the_demo_profile_shows_each_pair_once():
    pairs = am.profile_settings("demo").pairs
    assert len({(p.target, p.reference, p.box) for p in pairs}) == len(pairs)
    assert len({p.name for p in pairs}) == len(pairs)  # the menu's labels tell them apart


def test_explorer_for_the_smoke_profile_with_the_real_model():
    e = AttentionExplorer.for_profile("smoke", device="cpu")
    counts = [e.current.superpixel_count(level) for level in am.LEVELS]
    assert e.superpixel_slider.max == counts[0] - 1 and counts[0] > counts[1] > counts[2]
    before = e.reference_image.value
    e.superpixel_slider.value = (e.label + 1) % counts[0]
    assert e.reference_image.value != before


def test_the_pair_is_shown_beside_the_other_methods_once_per_pair():
    seen = []

    def compare(pa):
        seen.append(pa)
        return {"paper's super": np.zeros_like(pa.colour), "[17]": np.ones_like(pa.colour)}

    e = AttentionExplorer(PAIRS, compute=lambda pair: synthetic_pair(seed=1), compare=compare)
    assert list(e.comparison) == [f"this model ({DEFAULT_CHECKPOINT})", "paper's super", "[17]"]
    assert e.compare_html.value.count("<img") == 3 and "[17]" in e.compare_html.value
    e.select_superpixel(1)
    e.select_level(1)
    assert len(seen) == 1  # moving around the pair never recomputes the other methods
    e.select_pair(1)
    assert len(seen) == 2
    assert AttentionExplorer(PAIRS, compute=lambda pair: synthetic_pair(seed=1)).compare_html.value == ""
