"""The demo checkpoints committed in checkpoints/ load, are what MODEL_CARD.md says, and use the reference."""

import hashlib
import json

import pytest
import torch

from sa_lib.checkpoint import CHECKPOINT_DIR, load_checkpoint
from sa_lib.color import rgb_to_lab
from sa_lib.model import NAMED_MODELS


@pytest.mark.parametrize("variant", NAMED_MODELS)
def test_checkpoint_loads_small_and_described_by_the_model_card(variant):
    """Every shipped checkpoint must be there: a missing one fails (make train-demo writes them)."""
    path = CHECKPOINT_DIR / f"demo-{variant}.safetensors"
    assert path.is_file(), f"{path} is missing: run make train-demo"
    assert path.stat().st_size < 25e6
    model = load_checkpoint(f"demo-{variant}")
    assert model.config.name == variant
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["step"] > 0 and "val_gtref_psnr_ab" in sidecar["metrics"]
    card = (CHECKPOINT_DIR / "MODEL_CARD.md").read_text()
    assert hashlib.sha256(path.read_bytes()).hexdigest()[:16] in card  # the card describes these very files


def test_super_checkpoint_output_depends_on_the_reference(demo_pair):
    model = load_checkpoint("demo-super")
    target, reference = demo_pair
    target_l = rgb_to_lab(target)[:, :1]
    with torch.no_grad():
        with_truth, _ = model(target_l, target)
        with_other, _ = model(target_l, reference)
    assert torch.isfinite(with_truth).all()
    assert (with_truth - with_other).abs().mean() > 0.5  # a* b* units: the reference changes the colours
