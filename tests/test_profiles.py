"""sa_lib.profiles: one registry that every command reads; the runs it gives are the ones shipped before it."""

import json
from dataclasses import replace

import pytest

from sa_lib.core.errors import UsageError
from sa_lib.data.demo_data import DEMO_DIR
from sa_lib.model.checkpoint import config_hash, network_hash, read_config, resolve
from sa_lib.model.colorizer import ColorizerConfig
from sa_lib.profiles import PROFILES, get_profile
from sa_lib.train.config import TrainConfig, profile_config


def test_training_runs_of_each_profile():
    paper = profile_config("paper", "standard")
    assert (paper.data, paper.image_size, paper.batch_size, paper.epochs, paper.lr, paper.perceptual, paper.num_workers,
            paper.val_every, paper.val_pairs, paper.checkpoint_every, paper.out) == (
        "coco", 224, 8, 20, 1e-5, "lpips_vgg", 8, 2000, 500, 2000, "runs/paper-standard")
    assert paper.model == ColorizerConfig.paper("standard")
    demo = profile_config("demo", "super")
    assert (demo.data, demo.image_size, demo.max_steps, demo.lr, demo.perceptual) == (
        "demo", 128, 1500, 3e-4, "effnet_feature_distance")
    smoke = profile_config("smoke", "none")
    assert (smoke.image_size, smoke.batch_size, smoke.max_steps, smoke.num_workers, smoke.checkpoint_every) == (
        48, 2, 4, 0, 2)


@pytest.mark.parametrize("variant", ["none", "standard", "super", "transfer"])
def test_the_demo_profile_gives_the_shipped_config_hashes(variant):
    """The profile trains the shipped networks: the same config, up to the inference-only options, which only
    sa-calibrate-chroma changes (make train-demo runs it on the transfer model: the chroma gain, and demo-standard's
    network as its blend partner)."""
    shipped, trained = read_config(f"demo-{variant}"), profile_config("demo", variant).model
    assert network_hash(trained) == network_hash(shipped)
    assert config_hash(replace(trained, chroma_gain=shipped.chroma_gain,
                               blend_partner=shipped.blend_partner)) == config_hash(shipped)
    assert (shipped.chroma_gain != 1.0) == bool(shipped.blend_partner) == (variant == "transfer")


# what `make train-demo` may change without changing the weights: where the run is written and how often it
# reports, validates and saves (the validation draws no training randomness)
BOOKKEEPING = {"out", "progress", "log_every", "val_every", "checkpoint_every"}


def test_make_train_demo_trains_the_shipped_transfer_run():
    """Every training field that decides the weights of checkpoints/demo-transfer is the demo profile's."""
    shipped = json.loads(resolve("demo-transfer").with_suffix(".json").read_text())["training"]
    profile = profile_config("demo", "transfer").to_dict()
    # the model configs as configs: a field added after the run (LATER_FIELDS, e.g. frozen_prior) is absent from
    # its sidecar, and absent means its default
    assert ColorizerConfig.from_dict(shipped.pop("model")) == ColorizerConfig.from_dict(profile.pop("model"))
    for key in set(profile) - set(shipped):  # a field added after the run (smooth_l1_units): at its default
        assert profile[key] == TrainConfig.__dataclass_fields__[key].default, key
        del profile[key]
    assert set(shipped) == set(profile)
    assert {key: shipped[key] for key in set(shipped) - BOOKKEEPING} == {
        key: profile[key] for key in set(profile) - BOOKKEEPING}


@pytest.mark.parametrize("reading", ["qk", "key-init", "lab-loss", "no-remap"])
def test_make_train_ablations_trains_the_shipped_ablation_runs(reading):
    """Every training field that decides the weights of checkpoints/demo-super-paper-NAME is the demo profile's
    super run with that paper reading (make train-ablations)."""
    shipped = json.loads(resolve(f"demo-super-paper-{reading}").with_suffix(".json").read_text())["training"]
    profile = profile_config("demo", "super", [reading]).to_dict()
    assert ColorizerConfig.from_dict(shipped.pop("model")) == ColorizerConfig.from_dict(profile.pop("model"))
    assert {key: shipped[key] for key in set(shipped) - BOOKKEEPING} == {
        key: profile[key] for key in set(profile) - BOOKKEEPING}


def test_paths_and_unknown_profiles():
    demo = get_profile("demo")
    assert demo.photos.pairs_file() == DEMO_DIR / "eval_pairs.csv" and demo.checkpoint("super") == "demo-super"
    with pytest.raises(UsageError, match="choose smoke, demo, paper"):
        get_profile("huge")


def test_a_new_profile_is_one_more_entry(monkeypatch):
    monkeypatch.setitem(PROFILES, "tiny", replace(PROFILES["smoke"], name="tiny", training={"image_size": 32}))
    assert profile_config("tiny", "super").image_size == 32
