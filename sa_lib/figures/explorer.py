"""An ipywidgets explorer of super-attention: pick a target superpixel, see where in the reference it looks.

Controls: a pair, a level (0 full, 1 half, 2 quarter resolution) and the target superpixel, picked with the
slider, by clicking the target image, or by typing a pixel position "x, y" in the box. The views: the
gray target with the picked superpixel outlined, the reference lit by its attention row, the attention
matrix with that row marked, and two swatches: the reference colour the row points at and the colour the
model gave the superpixel.

Below, the same pair as coloured by the other methods (`compare`; for a profile: the paper's super model
and the training-free [17], from `sa_lib.figures.explain.other_methods`), so the explored model is seen beside them.

The state logic lives in plain methods (`select_pair`, `select_level`, `select_superpixel`,
`select_point`) that the widget callbacks call, so it is tested without a browser or a kernel. The model
runs once per pair (cached); moving the slider only redraws.

Clicking: ipywidgets has no clickable image, and the packages that add one (ipyevents, ipycanvas, ipympl)
are not dependencies. So the target is drawn in an `HTML` widget whose <img> has a small inline onclick
handler: it converts the click to image pixels and writes "x, y" into the text box, exactly as if it had
been typed. Where a front end strips inline handlers, the box and the slider still work.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np
from PIL import Image

from ..data.pairs import PairsError
from ..model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError
from .explain import other_methods

from .attention_maps import (
    LEVEL_NAMES,
    LEVELS,
    Pair,
    PairAttention,
    attention_row,
    compute_pair_attention,
    default_point,
    matrix_view,
    profile_settings,
    reference_view,
    selection_html,
    superpixel_at,
    superpixel_center,
    superpixel_mask,
    target_view,
)

# What a control's change can fail with and the explorer shows in its info box, its state left as it was: a pair
# whose image cannot be read (ImageInputError is a ValueError), a pairs file, a checkpoint.
SHOWN_ERRORS = (ValueError, PairsError, CheckpointError)
VIEW_WIDTH = 320  # px on screen of the target and reference views
MATRIX_SIDE = 300  # the attention matrix is drawn at least this many px on its longer side
# The target <img>'s onclick: click position -> image pixels -> "x, y" into this explorer's point box.
CLICK_JS = ("var b=this.closest('.sa-explorer').querySelector('.sa-point input');"
            "b.value=Math.floor(event.offsetX*this.naturalWidth/this.clientWidth)+', '+"
            "Math.floor(event.offsetY*this.naturalHeight/this.clientHeight);"
            "b.dispatchEvent(new Event('change',{bubbles:true}));")


def png_bytes(image: np.ndarray) -> bytes:
    """(h, w, 3) floats in [0, 1] -> PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def parse_point(text: str) -> tuple[int, int]:
    """'x, y' (or 'x y') -> (x, y) integers; ValueError otherwise (also for inf and nan)."""
    parts = text.replace(",", " ").split()
    if len(parts) != 2:
        raise ValueError(f"type a pixel position as 'x, y', got {text!r}")
    try:
        return int(float(parts[0])), int(float(parts[1]))
    except (ValueError, OverflowError):
        raise ValueError(f"type a pixel position as two numbers 'x, y', got {text!r}") from None


class AttentionExplorer:
    """The explorer; `AttentionExplorer.for_profile("demo")` builds it for a profile, `.widget` shows it."""

    def __init__(self, pairs: Sequence[Pair], compute: Callable[[Pair], PairAttention] | None = None,
                 checkpoint: str = DEFAULT_CHECKPOINT, device: str = "auto", working_size: int = 256,
                 start_pair: int = 0, compare: Callable[[PairAttention], dict[str, np.ndarray]] | None = None):
        if not pairs:
            raise ValueError("the explorer needs at least one pair")
        self.pairs = list(pairs)
        self.checkpoint = str(checkpoint)
        self._compute = compute or (lambda pair: compute_pair_attention(pair, checkpoint, device, working_size))
        self._cache: dict[int, PairAttention] = {}
        self._compare = compare
        self._compared: dict[int, dict[str, np.ndarray]] = {}  # pair index -> title -> image (cached)
        self._syncing = False  # True while the explorer itself sets widget values (no feedback loops)
        self.pair_index, self.level, self.label, self.point = start_pair, LEVELS[0], 0, (0, 0)

        self.pair_dropdown = widgets.Dropdown(options=[(p.name, i) for i, p in enumerate(self.pairs)],
                                              value=start_pair, description="pair",
                                              layout=widgets.Layout(width="520px"))
        self.level_buttons = widgets.ToggleButtons(
            options=[(f"{l}: {LEVEL_NAMES[l].split()[0]}", l) for l in LEVELS], value=self.level,
            description="level", tooltips=[LEVEL_NAMES[l] for l in LEVELS], style={"button_width": "auto"})
        self.superpixel_slider = widgets.IntSlider(min=0, max=1, value=0, description="superpixel",
                                                   continuous_update=True, layout=widgets.Layout(width="520px"))
        self.point_box = widgets.Text(description="x, y", placeholder="x, y (or click the target)",
                                      continuous_update=False, layout=widgets.Layout(width="260px"))
        self.point_box.add_class("sa-point")
        self.target_html = widgets.HTML()
        self.target_html.add_class("sa-target")
        self.reference_image = widgets.Image(format="png", width=VIEW_WIDTH)
        self.reference_image.add_class("sa-reference")
        self.matrix_image = widgets.Image(format="png", width=MATRIX_SIDE)
        self.matrix_image.add_class("sa-matrix")
        self.info = widgets.HTML()
        self.info.add_class("sa-info")
        self.compare_html = widgets.HTML()
        self.compare_html.add_class("sa-compare")

        self.pair_dropdown.observe(lambda c: self._from_widget(self.select_pair, c["new"]), names="value")
        self.level_buttons.observe(lambda c: self._from_widget(self.select_level, c["new"]), names="value")
        self.superpixel_slider.observe(lambda c: self._from_widget(self.select_superpixel, c["new"]),
                                       names="value")
        self.point_box.observe(lambda c: self._from_widget(self._typed_point, c["new"]), names="value")

        def captioned(text: str, view: widgets.Widget) -> widgets.VBox:
            return widgets.VBox([widgets.HTML(f"<b>{text}</b>"), view])

        self.widget = widgets.VBox([
            widgets.HBox([self.pair_dropdown, self.level_buttons]),
            widgets.HBox([self.superpixel_slider, self.point_box]),
            widgets.HBox([captioned("target: picked superpixel in red (click to pick)", self.target_html),
                          captioned("reference lit by its attention row", self.reference_image),
                          captioned("attention map, its row in red", self.matrix_image)]),
            self.info,
            self.compare_html,
        ])
        self.widget.add_class("sa-explorer")
        self.select_pair(start_pair)

    @classmethod
    def for_profile(cls, profile: str, device: str = "auto", checkpoint: str | None = None) -> AttentionExplorer:
        """The pairs, checkpoint and working size of a notebook profile (smoke, demo or paper); `checkpoint`
        (a name or .safetensors path, e.g. the authors' model from sa-convert-official) replaces its model."""
        s = profile_settings(profile)
        checkpoint = checkpoint or s.checkpoint

        def compare(pa: PairAttention) -> dict[str, np.ndarray]:
            return other_methods(pa.gray * 100.0, pa.reference, checkpoint, device)

        return cls(s.pairs, checkpoint=checkpoint, device=device, working_size=s.working_size,
                   start_pair=s.figure_pair, compare=compare if s.compare else None)

    # ------------------------------------------------------------------------------- state, plain Python

    def attention_of(self, index: int) -> PairAttention:
        """The attention of pair `index`, computed on first use and then cached."""
        if index not in self._cache:
            self._cache[index] = self._compute(self.pairs[index])
        return self._cache[index]

    @property
    def current(self) -> PairAttention:
        """The attention of the selected pair."""
        return self.attention_of(self.pair_index)

    @property
    def highlight_mask(self) -> np.ndarray:
        """(h, w) bool: the target pixels of the picked superpixel."""
        return superpixel_mask(self.current, self.level, self.label)

    @property
    def shown_row(self) -> np.ndarray:
        """(S_R,): the attention row the reference view shows."""
        return attention_row(self.current, self.level, self.label)

    def select_pair(self, index: int) -> None:
        """Show pair `index`, starting at the centre of its target. A pair that cannot be computed (an image
        that cannot be read...) raises before anything changes: the explorer stays on the pair it showed."""
        if not 0 <= index < len(self.pairs):
            raise ValueError(f"pair index {index} is not in 0..{len(self.pairs) - 1}")
        self.attention_of(index)
        self.pair_index = index
        self.point = default_point(self.current)
        self._pick_at_point()
        self._render_comparison()

    @property
    def comparison(self) -> dict[str, np.ndarray]:
        """title -> image of the selected pair coloured by this model and by the `compare` methods."""
        if self._compare is None:
            return {}
        if self.pair_index not in self._compared:
            self._compared[self.pair_index] = {f"this model ({self.current.model or self.checkpoint})":
                                               self.current.colour,
                                               **self._compare(self.current)}
        return self._compared[self.pair_index]

    def _render_comparison(self) -> None:
        figures = []
        for title, image in self.comparison.items():
            data = base64.b64encode(png_bytes(image)).decode("ascii")
            figures.append(f"<figure style='margin:0'><img src='data:image/png;base64,{data}' width='{VIEW_WIDTH}'>"
                           f"<figcaption>{html.escape(title)}</figcaption></figure>")
        self.compare_html.value = (f"<div style='display:flex;gap:12px'>{''.join(figures)}</div>" if figures else "")

    def select_level(self, level: int) -> None:
        """Switch level, keeping the picked point: the superpixel under it at the new level is picked."""
        if level not in self.current.attention:
            raise ValueError(f"level {level} is not one of {self.current.levels}")
        self.level = level
        self._pick_at_point()

    def select_superpixel(self, label: int) -> None:
        """Pick target superpixel `label` at the current level; the point moves inside it."""
        count = self.current.superpixel_count(self.level)
        if not 0 <= label < count:
            raise ValueError(f"superpixel {label} is not in 0..{count - 1} at level {self.level}")
        self.label = int(label)
        self.point = superpixel_center(self.current, self.level, self.label)
        self._render()

    def select_point(self, x: int, y: int) -> None:
        """Pick the target superpixel under pixel (x, y) of the target (what a click does)."""
        h, w = self.current.gray.shape
        self.point = (min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1))
        self._pick_at_point()

    def _typed_point(self, text: str) -> None:
        if not text.strip():  # the box cleared: show the picked point again (and drop an earlier error)
            self._render()
            return
        x, y = parse_point(text)  # a ValueError is shown in the info box by _from_widget
        self.select_point(x, y)

    def _pick_at_point(self) -> None:
        self.label = superpixel_at(self.current, self.level, *self.point)
        self._render()

    def _from_widget(self, method: Callable, value) -> None:
        """A widget changed: run the state method, unless the explorer itself is setting that widget. What it
        fails with (SHOWN_ERRORS) is shown in one line in the info box, every control back on the state shown:
        a widget callback's exception would only reach the browser's log."""
        if self._syncing:
            return
        try:
            method(value)
        except SHOWN_ERRORS as err:
            self._render()
            self.info.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"

    # ---------------------------------------------------------------------------------------- drawing

    def _render(self) -> None:
        """Bring every widget in line with (pair, level, label, point)."""
        pa, level, label = self.current, self.level, self.label
        self._syncing = True
        try:
            self.pair_dropdown.value = self.pair_index
            self.level_buttons.value = level
            count = pa.superpixel_count(level)
            if self.superpixel_slider.value > count - 1:
                self.superpixel_slider.value = 0
            self.superpixel_slider.max = max(count - 1, 1)  # an IntSlider needs max > min to draw
            self.superpixel_slider.value = label
            self.point_box.value = f"{self.point[1]}, {self.point[0]}"
        finally:
            self._syncing = False
        target_png = base64.b64encode(png_bytes(target_view(pa, level, label))).decode("ascii")
        self.target_html.value = (f'<img src="data:image/png;base64,{target_png}" width="{VIEW_WIDTH}" '
                                  f'style="cursor:crosshair" title="click to pick a superpixel" '
                                  f'onclick="{CLICK_JS}">')
        self.reference_image.value = png_bytes(reference_view(pa, level, label))
        self.matrix_image.value = png_bytes(self._matrix_picture())
        self.info.value = selection_html(pa, level, label, self.point)

    def _matrix_picture(self) -> np.ndarray:
        """The attention matrix scaled up (nearest) to about MATRIX_SIDE px, with a red bar at the row."""
        matrix = matrix_view(self.current, self.level, self.label)  # (S_T, S_R, 3)
        k = max(1, -(-MATRIX_SIDE // max(matrix.shape[:2])))
        big = np.repeat(np.repeat(matrix, k, axis=0), k, axis=1)  # (k S_T, k S_R, 3)
        bar = np.zeros((big.shape[0], max(6, k), 3))  # a red tick left of the marked row
        bar[self.label * k:(self.label + 1) * k] = (1.0, 0.1, 0.1)
        return np.concatenate([bar, big], axis=1)

