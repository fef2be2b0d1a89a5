"""This project's departures from the paper's model, each with the fields that undo it: the paper's reading.

The paper's `none`, `standard` and `super` are built here with a few choices the paper does not make (or does not
state); docs/faithfulness.md gives the reasons. Each is a named field of ColorizerConfig or TrainConfig, and
`PAPER_READINGS` sets it back: `sa-train --paper-reading NAME` trains the paper's variant with that choice
undone, `make train-ablations` trains each on top of `demo-super` (checkpoints `demo-super-paper-NAME`), and the
demo profile's Table 1 gives each its own row beside `demo-super`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaperReading:
    """One departure undone: a short label (a table row), what differs, and the fields that give the paper's
    reading (or PyTorch's default, where the paper says nothing)."""

    label: str  # e.g. "query and key normalised before the projections only"
    differs: str  # the paper's (or the authors') reading against this project's, in a sentence
    model: dict = field(default_factory=dict)  # ColorizerConfig fields
    training: dict = field(default_factory=dict)  # TrainConfig fields
    variants: tuple[str, ...] = ("none", "standard", "super")  # the paper's variants it changes anything in


PAPER_READINGS = {
    "qk": PaperReading(
        "q/k normalised before the projections only",
        "query and key are unit-normalised before their 1x1 projections only, as in the authors' code; this "
        "project normalises them again after the projections, so eq. 3 stays a correlation in [-1, 1] and "
        "tau = 0.01 keeps its meaning", model={"qk_normalisation": "before"}, variants=("super",)),
    "key-init": PaperReading(
        "key projection initialised on its own",
        "each attention block's key projection starts from its own random draw (PyTorch's default; the paper "
        "says nothing of it); this project starts it as a copy of the query projection, so a superpixel matches "
        "its twin from the first step", model={"key_initialisation": "independent"},
        variants=("standard", "super")),
    "lab-loss": PaperReading(
        "SmoothL1 in raw Lab units",
        "SmoothL1 on raw Lab a*b* (eq. 4 as written, 110 times larger beside the same perceptual term); this "
        "project computes it on a*b*/110 with the threshold kept at 1 Lab unit",
        training={"smooth_l1_units": "lab"}),
    "no-remap": PaperReading(
        "no luminance remap",
        "the target's luminance goes into the encoder as it is (the paper's text says nothing of a remap); this "
        "project, like the authors' code, remaps it to the reference's mean and spread first",
        model={"match_luminance": False}, variants=("standard", "super")),
}


def paper_reading_names(names: Iterable[str]) -> tuple[str, ...]:
    """The names, each known, in PAPER_READINGS' order and once; a one-line ValueError naming the known ones."""
    names = tuple(names)
    unknown = [name for name in names if name not in PAPER_READINGS]
    if unknown:
        raise ValueError(f"unknown paper reading {unknown[0]!r}; choose from {', '.join(PAPER_READINGS)}")
    return tuple(name for name in PAPER_READINGS if name in names)


def paper_reading_suffix(names: Iterable[str]) -> str:
    """"" or "-paper-NAME[-paper-NAME...]": the suffix of a run folder and of a checkpoint with these readings."""
    return "".join(f"-paper-{name}" for name in paper_reading_names(names))
