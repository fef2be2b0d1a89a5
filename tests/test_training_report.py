"""sa_lib.figures.training_report: when notebook 02 retrains, reading logs, the curves figure."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from sa_lib.figures.model_card import later_stages_text
from sa_lib.model.checkpoint import CHECKPOINT_DIR
from sa_lib.train.config import profile_config
from sa_lib.figures import training_report
from sa_lib.figures.training_report import (calibrate_transfer, final_metrics, load_log, plan_training, plan_variant,
                                            plot_training_curves, profile_variants, smoothed)
from sa_lib.eval.chroma_calibration import calibration_pairs
from sa_lib.model.checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from sa_lib.model.colorizer import build_model
from sa_lib.profiles import get_profile


@pytest.fixture
def shipped(tmp_path):
    """A copy of the shipped demo-super sidecar and log (the weights file only needs to exist)."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for suffix in (".json", ".log.csv"):
        shutil.copy(CHECKPOINT_DIR / f"demo-super{suffix}", folder / f"demo-super{suffix}")
    (folder / "demo-super.safetensors").write_bytes(b"")
    return folder


def test_shipped_demo_checkpoints_match_the_demo_profile_so_nothing_retrains():
    plans = plan_training("demo")
    assert [p.variant for p in plans] == ["none", "standard", "super", "transfer"]
    for plan in plans:
        assert not plan.retrain, plan.reason
        assert plan.log == CHECKPOINT_DIR / f"demo-{plan.variant}.log.csv"


def test_retrain_when_asked_or_hash_differs_or_files_missing(shipped, tmp_path):
    runs = tmp_path / "runs"
    assert not plan_variant("demo", "super", runs_dir=runs, checkpoint_dir=shipped).retrain
    asked = plan_variant("demo", "super", retrain=True, runs_dir=runs, checkpoint_dir=shipped)
    assert asked.retrain and asked.log == runs / "demo-super" / "log.csv"
    assert asked.config.out == str(runs / "demo-super")
    sidecar = json.loads((shipped / "demo-super.json").read_text())
    sidecar["config"]["chroma_gain"] = 1.3  # an inference-only option (sa-calibrate-chroma): the same network
    (shipped / "demo-super.json").write_text(json.dumps(sidecar))
    assert not plan_variant("demo", "super", runs_dir=runs, checkpoint_dir=shipped).retrain
    sidecar["config"]["widths"] = [8, 16, 32, 64]  # another network
    (shipped / "demo-super.json").write_text(json.dumps(sidecar))
    changed = plan_variant("demo", "super", runs_dir=runs, checkpoint_dir=shipped)
    assert changed.retrain and "has network hash" in changed.reason
    assert plan_variant("demo", "none", runs_dir=runs, checkpoint_dir=shipped).retrain  # not shipped here
    assert plan_variant("paper", "super", checkpoint_dir=shipped).retrain  # no paper checkpoint ships


def test_smoke_always_trains_super_only():
    assert profile_variants("smoke") == ("super",)
    [plan] = plan_training("smoke")
    assert plan.retrain and plan.config.max_steps == 4


def test_load_log_reads_blank_validation_cells_as_nan():
    log = load_log(CHECKPOINT_DIR / "demo-super.log.csv")
    assert log["step"][0] == 10 and log["step"][-1] == 1500
    assert np.isnan(log["val_psnr_ab"][0]) and np.isfinite(log["val_psnr_ab"][-1])
    assert np.isfinite(log["loss"]).all()


def test_load_log_refuses_other_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_log(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a training log"):
        load_log(tmp_path / "other.csv")


def test_smoothed_is_a_trailing_mean():
    assert smoothed(np.array([1.0, 2, 3, 4, 5]), 2) == pytest.approx([1, 1.5, 2.5, 3.5, 4.5])
    assert smoothed(np.array([4.0, 2.0]), 10) == pytest.approx([4, 3])
    assert len(smoothed(np.array([]), 3)) == 0


def test_curves_and_table_of_the_three_variants(tmp_path):
    logs = {v: load_log(CHECKPOINT_DIR / f"demo-{v}.log.csv") for v in ("none", "standard", "super")}
    table = final_metrics(logs)
    assert "| super | 1500 |" in table and table.count("\n") == 5
    png = plot_training_curves(logs, tmp_path / "curves.png", "demo")
    assert Image.open(png).size[0] > 1000


def test_execute_trains_nothing_when_every_checkpoint_is_reused_and_refuses_a_missing_gpu():
    import torch

    from sa_lib.core.devices import DeviceError
    from sa_lib.figures.training_report import execute

    assert execute(plan_training("demo"), "cpu") == {}
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            execute(plan_training("smoke"), "cuda")


@pytest.mark.slow  # measured above 4 s of CPU time
def test_a_retrained_variant_is_published_where_the_later_notebooks_load_it(tmp_path, monkeypatch):
    """RETRAIN=1 must change what Tables 1/2 and Fig. 3 use: the run is exported to checkpoints/PROFILE-VARIANT."""
    from dataclasses import replace

    from sa_lib.model.checkpoint import load_checkpoint
    from sa_lib.figures.training_report import TrainingPlan, execute
    from sa_lib.train.config import profile_config

    cards = []
    monkeypatch.setattr("sa_lib.figures.training_report.CHECKPOINT_DIR", tmp_path / "ckpt")  # stands for checkpoints/
    monkeypatch.setattr("sa_lib.figures.training_report.write_model_card", lambda: cards.append("card"))
    config = replace(profile_config("smoke", "super", out=str(tmp_path / "run")), profile="demo")
    plan = TrainingPlan("super", True, "test", config, tmp_path / "run" / "log.csv")
    metrics = execute([plan], "cpu", progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert cards == ["card"]  # the model card (hashes, metrics of the shipped files) is re-measured
    published = tmp_path / "ckpt" / "demo-super.safetensors"
    assert load_checkpoint(published).config.variant == "super"
    assert json.loads(published.with_suffix(".json").read_text())["step"] == metrics["super"]["step"]
    assert published.with_suffix(".log.csv").read_text() == plan.log.read_text()
    from sa_lib.train.state import export_run

    plan.log.unlink()  # a run without a log must not ship the previous run's curves
    export_run(config, metrics["super"], published)
    assert not published.with_suffix(".log.csv").exists()


def test_model_card_judges_the_transfer_targets_against_the_models_they_name():
    """demo-none, demo-super and the baselines decide met / MISSED; another model that does better is named."""
    from sa_lib.figures.model_card import transfer_targets

    rows = {"demo-none": {"psnr_ab": 17.0, "ciede2000": 13.0}, "demo-standard": {"psnr_ab": 18.0, "ciede2000": 11.0},
            "demo-super": {"psnr_ab": 18.5, "ciede2000": 11.5}, "reinhard": {"psnr_ab": 16.0, "ciede2000": 15.0},
            "demo-transfer": {"psnr_ab": 18.4, "ciede2000": 11.4, "his_pred_ref": 0.6, "colorfulness": 40.0},
            "ground truth": {"his_pred_ref": 0.42, "colorfulness": 50.0}}
    psnr, ciede, his, colour = transfer_targets(rows)
    assert "demo-super 18.50: MISSED" in psnr and "Better still" not in psnr
    assert "demo-super 11.50: met" in ciede and "Better still: demo-standard 11.00." in ciede
    assert his.endswith("met.") and "80%" in colour and colour.endswith("MISSED.")


def test_model_card_describes_each_later_stage_with_the_steps_it_runs():
    """later_stages_text: each later stage from its start to where the next starts (or the run ends), with the
    fields it changes; a stage the run ends before is left out, a run without max_steps runs its last stage to the
    end, and a run without later stages is "one stage"."""
    transfer = profile_config("demo", "transfer")
    assert later_stages_text(transfer) == (
        "then later stages, each changing these fields: from step 1500 to 2400, lr = 0.0001, p_self = 0.4, "
        "p_recolor = 0.25; from step 2400 to 2700, lambda_chroma = 10.0")
    assert later_stages_text(replace(transfer, max_steps=2000)) == (  # the run ends before the last stage starts
        "then later stages, each changing these fields: from step 1500 to 2000, lr = 0.0001, p_self = 0.4, "
        "p_recolor = 0.25")
    assert later_stages_text(replace(transfer, max_steps=None)) == (  # it ends with its epochs
        "then later stages, each changing these fields: from step 1500 to 2400, lr = 0.0001, p_self = 0.4, "
        "p_recolor = 0.25; from step 2400 to the end, lambda_chroma = 10.0")
    assert later_stages_text(profile_config("demo", "super")) == "one stage"


@pytest.mark.timeout(60)
def test_only_a_retrain_of_the_transfer_model_or_its_partner_blends_it_again(tmp_path):
    """Nothing to do after a retrain of another variant, or in a profile without a blend partner; a missing file is a
    warning, not a failure of the notebook."""
    demo = get_profile("demo")
    assert demo.transfer_blend == "standard" and get_profile("paper").transfer_blend is None
    assert not calibrate_transfer(demo, {"none", "super"}, tmp_path)
    assert not calibrate_transfer(get_profile("paper"), {"transfer", "standard"}, tmp_path)
    with pytest.warns(UserWarning, match="not blended"):
        assert not calibrate_transfer(demo, {"standard"}, tmp_path)


@pytest.mark.slow  # two networks on two training photos at 224 px
@pytest.mark.timeout(300)
def test_a_retrained_partner_is_stored_in_the_transfer_checkpoint_with_a_new_gain(tmp_path, monkeypatch):
    """As `make train-demo` does (sa-calibrate-chroma --blend): the transfer checkpoint gets the partner's network as
    it now is, and a gain fitted on the mean."""
    monkeypatch.setattr(training_report, "calibration_pairs", lambda profile: calibration_pairs(profile)[:2])
    save_checkpoint(tmp_path / "demo-transfer.safetensors", build_model("transfer"), step=4)
    standard = build_model("standard")
    save_checkpoint(tmp_path / "demo-standard.safetensors", standard, step=6)
    assert calibrate_transfer(get_profile("demo"), {"standard"}, tmp_path)
    blended = load_checkpoint(tmp_path / "demo-transfer.safetensors")
    assert blended.config.partner_config.variant == "standard" and blended.config.chroma_gain != 1.0
    sidecar = read_sidecar(tmp_path / "demo-transfer.safetensors")
    assert sidecar["step"] == 4 and sidecar["chroma_calibration"]["profile"] == "demo"
    stored = load_checkpoint(tmp_path / "demo-standard.safetensors").state_dict()
    assert all(torch.equal(value, stored[key]) for key, value in blended.blend_partner.state_dict().items())
