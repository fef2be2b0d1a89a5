"""Trainer: kill-and-resume equals uninterrupted, DDP with 2 gloo processes, bad configurations."""

import os
import subprocess
import sys

import pytest
import torch

from sa_lib.model.checkpoint import load_checkpoint, trainable_state
from sa_lib.model.colorizer import VARIANTS, build_model
from sa_lib.train.batches import ResumableBatches
from cli_run import run_main
from sa_lib.train.config import ConfigError, TrainConfig, profile_config
from sa_lib.train.loop import KILL_AT_STEP, train


def smoke(tmp_path, name, variant="super", **overrides):
    return profile_config("smoke", variant, out=str(tmp_path / name), progress=False, **overrides)


def weights(path):
    return trainable_state(load_checkpoint(path, pretrained_encoder=True))


@pytest.mark.slow  # measured above 4 s of CPU time
def test_resume_equals_uninterrupted(tmp_path):
    straight = smoke(tmp_path, "straight", max_steps=4)
    train(straight)
    first_half = smoke(tmp_path, "resumed", max_steps=2)
    train(first_half)  # "killed" after step 2: only its checkpoint and state survive
    train(smoke(tmp_path, "resumed", max_steps=4), resume=True)
    a, b = weights(tmp_path / "straight" / "last.safetensors"), weights(tmp_path / "resumed" / "last.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    log = (tmp_path / "resumed" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["1", "2", "3", "4"]  # appended, not restarted


@pytest.mark.slow  # four short training runs
def test_a_second_stage_equals_a_resume_with_its_settings(tmp_path):
    """TrainConfig.later_stages (the transfer variant's second stage): one two-stage run gives the weights of a run
    stopped at the stage boundary and resumed with the second stage's settings (a lower rate, other draws)."""
    stage2 = {"lr": 3e-5, "p_self": 1.0, "p_recolor": 0.0}
    two_stage = smoke(tmp_path, "two", "transfer", max_steps=4, later_stages=[(2, stage2)])
    assert [(stage.lr, stage.p_self, end) for stage, end in two_stage.stages(4)] == [(3e-4, 0.75, 2), (3e-5, 1.0, 4)]
    train(two_stage)
    train(smoke(tmp_path, "split", "transfer", max_steps=2))
    train(smoke(tmp_path, "split", "transfer", max_steps=4, lr=3e-5, p_self=1.0, p_recolor=0.0), resume=True)
    train(smoke(tmp_path, "one", "transfer", max_steps=4))
    a, b = weights(tmp_path / "two" / "last.safetensors"), weights(tmp_path / "split" / "last.safetensors")
    one = weights(tmp_path / "one" / "last.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    assert any(not torch.allclose(a[key], one[key], atol=1e-6) for key in a)  # the second stage changed something


def test_later_stages_apply_in_order_each_on_top_of_the_one_before():
    config = profile_config("smoke", "transfer", max_steps=10,
                            later_stages=[[3, {"lr": 1e-4, "p_self": 0.5}], [6, {"lambda_chroma": 2.0}]])
    assert config.later_stages == [(3, {"lr": 1e-4, "p_self": 0.5}), (6, {"lambda_chroma": 2.0})]  # JSON's lists read
    assert [(stage.lr, stage.p_self, stage.lambda_chroma, end) for stage, end in config.stages(10)] == [
        (3e-4, 0.75, 0.0, 3), (1e-4, 0.5, 0.0, 6), (1e-4, 0.5, 2.0, 10)]
    assert [end for _, end in config.stages(4)] == [3, 4, 4]  # a run cut at step 4 never reaches the third stage
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_a_later_stage_adds_the_chroma_term_to_the_loss_once_its_steps_are_reached(tmp_path):
    train(smoke(tmp_path, "run", "transfer", max_steps=4, later_stages=[(2, {"lambda_chroma": 5.0})]))
    chroma = [float(row.split(",")[-1]) for row in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    assert chroma[:2] == [0.0, 0.0] and all(value > 0 for value in chroma[2:]), chroma  # after 2 steps: the term


def test_a_config_written_with_one_anneal_stage_reads_as_that_later_stage():
    old = {**profile_config("demo", "transfer").to_dict(), "anneal_from_step": 1500,
           "anneal": {"lr": 1e-4, "p_self": 0.4, "p_recolor": 0.25}}
    del old["later_stages"]
    assert TrainConfig.from_dict(old) == profile_config(
        "demo", "transfer", later_stages=[(1500, {"lr": 1e-4, "p_self": 0.4, "p_recolor": 0.25})])
    paper = {**profile_config("demo", "super").to_dict(), "anneal_from_step": None, "anneal": {}}
    del paper["later_stages"]
    assert TrainConfig.from_dict(paper).later_stages == []


def test_the_demo_transfer_run_has_three_stages():
    config = profile_config("demo", "transfer")
    assert [(stage.lr, stage.p_self, stage.p_recolor, stage.lambda_chroma, end)
            for stage, end in config.stages(config.max_steps)] == [
        (3e-4, 0.75, 0.5, 0.0, 1500), (1e-4, 0.4, 0.25, 0.0, 2400), (1e-4, 0.4, 0.25, 10.0, 2700)]
    paper_runs = [profile_config(profile, variant) for profile in ("demo", "paper") for variant in VARIANTS]
    assert all(run.lambda_chroma == 0.0 and not run.later_stages for run in paper_runs)  # eq. 6, one stage
    assert profile_config("demo", "super").stages(1500) == [(profile_config("demo", "super"), 1500)]


def test_batches_resume_mid_epoch_and_shard_across_ranks():
    full = list(ResumableBatches(10, 4, seed=3, start_step=0, total_steps=6))
    assert list(ResumableBatches(10, 4, seed=3, start_step=4, total_steps=6)) == full[4:]
    assert len({i for _, i in full[0] + full[1]}) == 8  # one epoch = 2 batches of distinct images
    shards = [list(ResumableBatches(10, 4, 3, 0, 6, rank=r, world=2)) for r in (0, 1)]
    for step in range(6):
        assert sorted(shards[0][step] + shards[1][step]) == sorted(full[step])


def test_training_loss_is_logged_and_validation_runs(tmp_path):
    config = smoke(tmp_path, "run", variant="none", max_steps=2)
    metrics = train(config)
    assert metrics["step"] == 2 and "val_psnr_ab" in metrics and "val_gtref_psnr_ab" in metrics
    header = (tmp_path / "run" / "log.csv").read_text().splitlines()[0]
    assert header.startswith("step,epoch,loss")


@pytest.mark.parametrize("overrides, message", [
    ({"variant": "supper"}, "unknown variant"),
    ({"batch_size": 0}, "batch size must be at least 1"),
    ({"data": "imagenet"}, "unknown data"),
    ({"later_stages": [(2, {"batch_size": 4})]},
     "a later stage can change lr, p_self, p_recolor, lambda_chroma, not batch_size"),
    ({"lambda_chroma": -1.0}, "lambda_chroma must be at least 0"),
    ({"later_stages": [(2, {"lambda_chroma": -0.5})]}, "lambda_chroma must be at least 0"),
    ({"later_stages": [(2, {"p_self": 1.5})]}, "p_self must be in"),
    ({"later_stages": [(0, {"lr": 1e-4})]}, "starts must be positive and increasing"),
    ({"later_stages": [(5, {"lr": 1e-4}), (3, {"lr": 1e-5})]}, "starts must be positive and increasing"),
    ({"max_steps": -5}, r"number of steps \(max_steps, --steps\) must be at least 1, got -5"),
    ({"epochs": 0}, "epochs must be at least 1, got 0"),
])
def test_bad_configuration_fails_at_once(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        variant = overrides.pop("variant", "super")
        profile_config("smoke", variant, out=str(tmp_path), **overrides)


@pytest.mark.slow  # measured above 4 s of CPU time
def test_resume_refuses_a_checkpoint_of_another_variant(tmp_path):
    train(smoke(tmp_path, "run", variant="none", max_steps=2))
    with pytest.raises(ConfigError, match="is a 'none' run"):
        train(smoke(tmp_path, "run", variant="super"), resume=True)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(smoke(tmp_path, "empty"), resume=True)


@pytest.mark.slow  # two short training runs
def test_resume_accepts_another_inference_only_option_and_refuses_another_network(tmp_path):
    """A state saved before the flip average (ColorizerConfig.flip_average, INFERENCE_ONLY_OPTIONS) resumes under a
    config with it, and the run's checkpoint carries the new setting; another network field is refused."""
    from dataclasses import replace

    first = smoke(tmp_path, "run", max_steps=2)
    train(replace(first, model=replace(first.model, flip_average=False)))
    train(replace(first, model=replace(first.model, flip_average=True), max_steps=3), resume=True)
    assert load_checkpoint(tmp_path / "run" / "last.safetensors").config.flip_average
    with pytest.raises(ConfigError, match="another model config"):
        train(replace(first, model=replace(first.model, tau=0.02), max_steps=4), resume=True)


@pytest.mark.slow
def test_cli_bad_configuration_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sa_lib.cli.train", "--profile", "smoke", "--variant", "supper",
                             "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown variant" in result.stderr


@pytest.mark.parametrize("argv, message", [
    (["--steps", "-5"], "--steps: must be >= 1, got -5"),
    (["--export", "{tmp}/weights.txt"], "must end in .safetensors"),
    (["--export", "{tmp}/missing/weights.safetensors"], "does not exist"),
])
def test_cli_bad_steps_and_export_are_refused_before_training(tmp_path, capsys, argv, message):
    from sa_lib.cli.train import main

    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, err = run_main(main, ["--profile", "smoke", "--out", str(tmp_path / "run"), *argv], capsys)
    assert code == 2 and message in err.strip().splitlines()[-1], err
    assert not (tmp_path / "run").exists()  # nothing trained


def test_a_refused_run_leaves_the_run_folder_as_it_was(tmp_path, capsys):
    """A batch larger than the dataset is refused before the run log rewrites config.json and log.csv."""
    from sa_lib.cli.train import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}\n")
    (run / "log.csv").write_text("step,loss\n1,0.5\n")
    code, _, err = run_main(main, ["--profile", "smoke", "--out", str(run), "--batch-size", "100000", "--overwrite"],
                            capsys)
    assert code == 2 and "fewer than one batch of 100000" in err, err
    assert (run / "config.json").read_text() == "{}\n" and (run / "log.csv").read_text() == "step,loss\n1,0.5\n"


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"not a torch file at all"])
def test_a_damaged_resume_state_is_named_in_one_line(tmp_path, content):
    from sa_lib.train.state import restore_state

    config = profile_config("smoke", "super")
    model = build_model("super")
    optimizer = torch.optim.Adam(model.parameters())
    (tmp_path / "last.state.pt").write_bytes(content)
    with pytest.raises(ConfigError, match="is not a readable resume state") as info:
        restore_state(config, model, optimizer, tmp_path)
    assert "\n" not in str(info.value)
    torch.save({"step": 3}, tmp_path / "last.state.pt")  # a torch file, not a state
    with pytest.raises(ConfigError, match="is not a readable resume state"):
        restore_state(config, model, optimizer, tmp_path)


def test_ctrl_c_suggests_resume_only_when_a_state_was_saved(tmp_path):
    import argparse
    import time

    from sa_lib.cli.train import interrupt_hint

    args = argparse.Namespace(out=str(tmp_path), profile="smoke", variant="super", resume=False)
    started = time.time()
    assert "nothing of it to resume" in interrupt_hint(args, started)  # no state at all
    state = tmp_path / "last.state.pt"
    state.write_bytes(b"x")
    os.utime(state, (started - 60, started - 60))  # an earlier run's state, not this run's
    assert "nothing of it to resume" in interrupt_hint(args, started)
    assert "--resume" in interrupt_hint(argparse.Namespace(**{**vars(args), "resume": True}), started)
    os.utime(state, (started + 1, started + 1))  # saved by this run
    assert "continue from the last saved state with --resume" in interrupt_hint(args, started)


def torchrun_two_smoke_steps(out, variant: str, port: int) -> None:
    """sa-train --profile smoke --steps 2 under torchrun: two CPU processes with gloo, writing to `out`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-port", str(port), "-m", "sa_lib.cli.train", "--profile", "smoke",
                             "--variant", variant, "--steps", "2", "--no-progress", "--out", str(out)],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.timeout(900)  # its torchrun child may take up to 600 s
@pytest.mark.slow
def test_ddp_two_gloo_processes(tmp_path):
    """torchrun, 2 CPU processes with gloo, each taking half of every batch; rank 0 logs and checkpoints.

    (Weights are not compared with a single process: BatchNorm statistics are per process under DDP.)
    """
    torchrun_two_smoke_steps(tmp_path / "ddp", "standard", 29533)
    log = (tmp_path / "ddp" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log[1:]] == ["1", "2"]  # one writer: rank 0
    torch.manual_seed(0)
    initial = trainable_state(build_model("standard"))
    trained = weights(tmp_path / "ddp" / "last.safetensors")
    assert all(torch.isfinite(v).all() for v in trained.values() if v.is_floating_point())
    assert not torch.equal(initial["head.weight"], trained["head.weight"])


@pytest.mark.timeout(900)  # a training, a killed one and its resumption
@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """A run killed with SIGKILL mid-training (right after the checkpoint of step 6, through the loop's test
    hook SUPERATTN_KILL_AT_STEP) resumes from that checkpoint to the uninterrupted result."""
    import json
    import signal

    args = ["--profile", "smoke", "--variant", "none", "--steps", "16", "--no-progress"]
    train(smoke(tmp_path, "straight", variant="none", max_steps=16))
    killed = tmp_path / "killed"
    env = {**os.environ, KILL_AT_STEP: "6"}
    process = subprocess.run([sys.executable, "-m", "sa_lib.cli.train", *args, "--out", str(killed)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, timeout=600)
    assert process.returncode == -signal.SIGKILL
    assert json.loads((killed / "last.json").read_text())["step"] == 6
    assert [line.split(",")[0] for line in (killed / "log.csv").read_text().splitlines()[1:]][-1] == "6"
    result = subprocess.run([sys.executable, "-m", "sa_lib.cli.train", *args, "--out", str(killed), "--resume"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    steps = [line.split(",")[0] for line in (killed / "log.csv").read_text().splitlines()[1:]]
    assert steps == [str(s) for s in range(1, 17)]  # rows after the checkpoint were redone, not duplicated
    a, b = weights(tmp_path / "straight" / "last.safetensors"), weights(killed / "last.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key


@pytest.mark.slow
def test_cli_missing_data_dir_is_one_line_exit_1(tmp_path):
    env = {**os.environ, "SUPERATTN_DEMO_DIR": str(tmp_path / "nowhere")}
    result = subprocess.run([sys.executable, "-m", "sa_lib.cli.train", "--profile", "smoke", "--out", str(tmp_path / "r"),
                             "--no-progress"], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "nowhere" in result.stderr


def test_sidecar_records_the_full_training_config(tmp_path):
    """Each checkpoint's .json sidecar holds the run's whole TrainConfig, readable back; old sidecars read as None."""
    from sa_lib.core.files import CHECKPOINT_DIR
    from sa_lib.model.checkpoint import read_sidecar
    from sa_lib.train.config import TrainConfig

    config = smoke(tmp_path, "run", variant="none", max_steps=2)
    train(config)
    sidecar = read_sidecar(tmp_path / "run" / "last.safetensors")
    assert sidecar["training"] == config.to_dict()
    assert TrainConfig.from_dict(sidecar["training"]) == config
    shipped = read_sidecar(CHECKPOINT_DIR / "demo-none.safetensors")  # written before the field existed
    assert shipped["training"] is None and "config_hash" in shipped



# ------------------------------------------------------------------ precision, SLIC backend, DDP validation (issue 13)


@pytest.mark.timeout(900)  # its torchrun child may take up to 600 s
@pytest.mark.slow
def test_ddp_super_every_rank_validates_a_shard_and_the_means_are_of_all_pairs(tmp_path):
    """Two gloo processes, the super variant: each rank scores half of the validation pairs and the gathered
    means equal one process validating the saved model on all of them (rank 0 alone would score half)."""
    import json

    from sa_lib.train.validation import validate, validation_pairs

    torchrun_two_smoke_steps(tmp_path / "ddp", "super", 29534)
    logged = json.loads((tmp_path / "ddp" / "last.json").read_text())["metrics"]
    config = smoke(tmp_path, "ddp", variant="super")
    pairs = validation_pairs(config.data, config.val_pairs)
    assert config.val_pairs == 2 and len(pairs) == 2
    alone = validate(load_checkpoint(tmp_path / "ddp" / "last.safetensors"), pairs, config.image_size, "cpu")
    for key in ("val_psnr_ab", "val_ciede2000", "val_gtref_psnr_ab", "val_delta_his"):
        assert logged[key] == pytest.approx(alone[key], rel=1e-4, abs=1e-6), key
    half = validate(load_checkpoint(tmp_path / "ddp" / "last.safetensors"), pairs[:1], config.image_size, "cpu")
    assert half["val_psnr_ab"] != pytest.approx(alone["val_psnr_ab"], rel=1e-4)  # the check can fail


def test_precision_is_fp32_by_default_and_recorded(tmp_path):
    import json

    config = smoke(tmp_path, "run", variant="none", max_steps=1, val_every=100)
    assert config.precision == "fp32" and profile_config("paper", "super").precision == "fp32"
    train(config)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["precision"] == "fp32"


@pytest.mark.slow  # a super-attention step under CPU bf16 autocast
def test_bf16_runs_on_the_cpu_and_fp16_needs_cuda(tmp_path):
    import json

    config = smoke(tmp_path, "bf16", variant="super", max_steps=1, val_every=100, precision="bf16")
    metrics = train(config)
    assert metrics["step"] == 1
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["precision"] == "bf16"
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "bf16" / "last.safetensors").values()
               if v.is_floating_point())
    with pytest.raises(ConfigError, match="unknown precision"):
        smoke(tmp_path, "x", precision="fp8")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
            train(smoke(tmp_path, "fp16", precision="fp16"))


def test_configs_written_before_precision_and_standard_similarity_still_load():
    """A run's config or sidecar from before issue 13 has `amp` (read as fp32: amp was CUDA-only, and every run
    recorded with it trained on the CPU) and, for a standard model, no standard_similarity (read as the earlier
    "scaled_dot")."""
    from sa_lib.train.config import TrainConfig

    new = profile_config("demo", "standard").to_dict()
    old = {k: v for k, v in new.items() if k != "precision"}
    old["model"] = {k: v for k, v in new["model"].items() if k not in ("standard_similarity", "slic_backend")}
    for amp, precision in ((True, "fp32"), (False, "fp32")):
        config = TrainConfig.from_dict({**old, "amp": amp})
        assert config.precision == precision
        assert config.model.standard_similarity == "scaled_dot" and config.model.slic_backend == "skimage"
    assert TrainConfig.from_dict(new).model.standard_similarity == "correlation"


def test_slic_backend_is_recorded_in_the_checkpoint_and_used_by_validation(tmp_path, monkeypatch):
    """--slic opencv: the workers label with OpenCV, the checkpoint's config says so, validation uses it."""
    from sa_lib.cli.train import main
    from sa_lib.model.checkpoint import read_config
    from sa_lib.superpixels import pyramid

    if not pyramid.opencv_available():
        pytest.skip("cv2.ximgproc is missing")
    called = []
    original = pyramid.image_pyramid_labels

    def spy(gray, levels=3, compactness=0.1, backend="auto"):
        called.append(backend)
        return original(gray, levels, compactness, backend)

    monkeypatch.setattr(pyramid, "image_pyramid_labels", spy)
    monkeypatch.setattr("sa_lib.train.batches.image_pyramid_labels", spy)
    main(["--profile", "smoke", "--variant", "super", "--steps", "2", "--no-progress", "--slic", "opencv",
          "--out", str(tmp_path / "run")])
    assert read_config(tmp_path / "run" / "last.safetensors").slic_backend == "opencv"
    assert called and set(called) == {"opencv"}  # training's workers and the validation's forward passes


def test_validation_uses_the_models_slic_backend(monkeypatch):
    from sa_lib.model.colorizer import ColorizerConfig
    from sa_lib.train.validation import validate, validation_pairs

    model = build_model(config=ColorizerConfig(slic_backend="torch"), pretrained=False)
    seen = []
    forward = model.forward

    def recording(*args, **kwargs):
        seen.append(kwargs.get("slic_backend"))
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", recording)
    validate(model, validation_pairs("demo", 1), 48, "cpu")
    assert seen == ["torch", "torch"]  # top-1 and ground-truth reference


def test_cli_precision_and_slic_options(tmp_path, capsys):
    from sa_lib.cli.train import parser

    args = parser().parse_args(["--precision", "bf16", "--slic", "torch"])
    assert (args.precision, args.slic_backend) == ("bf16", "torch")
    for bad in (["--precision", "fp8"], ["--slic", "fast"]):
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args(bad)
        assert exit_info.value.code == 2 and bad[0] in capsys.readouterr().err


def test_workers_get_image_files_not_the_coco_object():
    """The training dataset pickles small (no pycocotools COCO inside) and loads the same pixels."""
    import pickle

    from sa_lib.data.datasets import demo_dataset
    from sa_lib.data.lazy_data import ImageFiles

    train_set = demo_dataset("train")
    files = ImageFiles.of(train_set)
    blob = pickle.dumps(files)
    assert b"pycocotools" not in blob and len(blob) < 40_000
    image_id = train_set.image_ids[5]
    assert (files.load_rgb(image_id) == train_set.load_rgb(image_id)).all()
    assert list(files.image_ids) == list(train_set.image_ids)
    with pytest.raises(KeyError):
        files.path(-1)


def test_a_diverging_run_stops_in_one_line_before_saving_nan_weights(tmp_path, capsys):
    from sa_lib.cli.train import main

    code, _, err = run_main(main, ["--profile", "smoke", "--out", str(tmp_path / "run"), "--lr", "1e30",
                                   "--no-progress"], capsys)
    assert code == 1 and "the run diverged; lower --lr (it is 1e+30)" in err and "Traceback" not in err, err
    assert not (tmp_path / "run" / "last.state.pt").exists()  # smoke saves every 2 steps: none with NaN weights


@pytest.mark.parametrize("argv, message", [
    (["--image-size", "100000"], "image size must be from 32 to 2048 px, got 100000"),
    (["--seed", "99999999999999999999999"], "seed must be from 0 to 2**32 - 1"),
    (["--seed", "-1"], "seed must be from 0 to 2**32 - 1, got -1"),
])
def test_image_size_and_seed_out_of_range_are_usage_errors(tmp_path, capsys, argv, message):
    from sa_lib.cli.train import main

    code, _, err = run_main(main, ["--profile", "smoke", "--out", str(tmp_path / "run"), *argv], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ the paper's readings (docs/faithfulness.md)


@pytest.mark.parametrize("reading", ["qk", "key-init", "lab-loss", "no-remap"])
def test_a_paper_reading_changes_its_fields_and_nothing_else(reading):
    """`super` with one departure undone: its fields, its run folder; every other training field is super's."""
    from dataclasses import replace

    from sa_lib.model.paper_readings import PAPER_READINGS

    run = profile_config("demo", "super", [reading])
    plain = profile_config("demo", "super")
    undone = PAPER_READINGS[reading]
    assert run.out == f"runs/demo-super-paper-{reading}"
    assert run.model == replace(plain.model, **undone.model)
    assert replace(run, model=plain.model, out=plain.out) == replace(plain, **undone.training)
    assert run.model != plain.model or undone.training


def test_paper_readings_are_refused_where_they_mean_nothing(tmp_path, capsys):
    from sa_lib.cli.train import main

    for variant, reading, message in (("none", "key-init", "changes nothing in variant none (it applies to standard "
                                                           "and super)"),
                                      ("standard", "qk", "changes nothing in variant standard (it applies to super)"),
                                      ("none", "no-remap", "changes nothing in variant none"),
                                      ("transfer", "lab-loss", "the transfer model departs on purpose")):
        code, _, err = run_main(main, ["--profile", "smoke", "--variant", variant, "--paper-reading", reading,
                                       "--out", tmp_path / variant], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / variant).exists()
    code, _, err = run_main(main, ["--profile", "smoke", "--paper-reading", "eq3"], capsys)
    assert code == 2 and "invalid choice: 'eq3'" in err
    assert profile_config("smoke", "super", ["no-remap", "lab-loss", "no-remap"]).out == (
        "runs/smoke-super-paper-lab-loss-paper-no-remap")  # in the registry's order, each once


def test_cli_trains_with_a_paper_reading_and_records_it(tmp_path, capsys):
    from sa_lib.cli.train import main
    from sa_lib.model.checkpoint import read_sidecar

    out = tmp_path / "run"
    code, _, err = run_main(main, ["--profile", "smoke", "--paper-reading", "key-init", "--paper-reading", "lab-loss",
                                   "--steps", "2", "--out", out, "--no-progress"], capsys)
    assert code == 0, err
    model = load_checkpoint(out / "last.safetensors")
    assert model.config.key_initialisation == "independent"
    assert read_sidecar(out / "last.safetensors")["training"]["smooth_l1_units"] == "lab"


@pytest.mark.slow  # four short smoke runs
def test_resume_keeps_the_runs_settings_names_each_change_and_counts_every_session(tmp_path, capsys):
    import json

    from sa_lib.cli.train import main
    from sa_lib.model.checkpoint import read_sidecar

    out = tmp_path / "run"
    base = ["--profile", "smoke", "--out", out, "--no-progress"]
    code, first, err = run_main(main, base + ["--steps", "2"], capsys)
    assert code == 0, err
    log = (out / "log.csv").read_text()
    code, _, err = run_main(main, base + ["--steps", "2"], capsys)  # the folder holds a run: refused, untouched
    assert code == 2 and "already holds a training run (last.state.pt); continue it with --resume" in err
    assert (out / "log.csv").read_text() == log
    code, _, err = run_main(main, base + ["--resume", "--variant", "none"], capsys)
    assert code == 2 and "holds a smoke super run; resume it with --profile smoke --variant super" in err
    code, resumed, err = run_main(main, base + ["--resume", "--steps", "4", "--lr", "1e-4"], capsys)
    assert code == 0, err
    assert "--resume: --steps 4 instead of the run's 2" in err and "--resume: --lr 0.0001 instead of the run's 0.0003" in err
    saved = json.loads((out / "config.json").read_text())
    assert (saved["max_steps"], saved["lr"]) == (4, 1e-4)
    first, resumed = json.loads(first), json.loads(resumed)
    assert resumed["step"] == 4 and resumed["wall_time_s"] > first["wall_time_s"]  # both sessions
    code, exported, err = run_main(main, base + ["--resume", "--export", tmp_path / "w.safetensors"], capsys)
    assert code == 0 and "changes" not in err  # nothing left to train: it exports the finished run
    metrics = read_sidecar(tmp_path / "w.safetensors")["metrics"]
    assert metrics["val_psnr_ab"] == resumed["val_psnr_ab"] and metrics["step"] == 4
    assert metrics["wall_time_s"] >= resumed["wall_time_s"] - 0.2
    code, _, err = run_main(main, base + ["--steps", "2", "--overwrite"], capsys)
    assert code == 0, err
    assert json.loads((out / "config.json").read_text())["max_steps"] == 2



def test_resume_refuses_what_would_mix_two_runs(tmp_path, capsys, monkeypatch):
    """Each in one line: --resume with --overwrite, a paper reading or a SLIC backend that is not the run's, --steps
    below the run's step, a damaged config.json. A folder without a resume state is not a run (a new one may start
    there), and under torchrun only rank 0 looks at the folder."""
    import json

    from sa_lib.cli import train as train_cli

    out = tmp_path / "run"
    base = ["--profile", "smoke", "--out", out, "--no-progress"]
    assert run_main(train_cli.main, base + ["--steps", "2"], capsys)[0] == 0
    for extra, message in ((["--overwrite"], "give one of them"),
                           (["--paper-reading", "lab-loss"], "holds a run without the paper reading(s)"),
                           (["--slic", "torch"], "trained with SLIC backend skimage; a resume cannot change it"),
                           (["--steps", "1"], "is already at step 2, beyond the 1 steps asked for; give --steps 2")):
        code, _, err = run_main(train_cli.main, base + ["--resume", *extra], capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (extra, err)
    assert json.loads((out / "config.json").read_text())["max_steps"] == 2  # nothing was recorded
    saved = (out / "config.json").read_text()
    (out / "config.json").write_text("{")
    code, _, err = run_main(train_cli.main, base + ["--resume"], capsys)
    assert code == 2 and "config.json is not a readable run config" in err
    (out / "config.json").write_text(saved)

    calls = []
    monkeypatch.setattr(train_cli, "train", lambda config, resume, on_start: calls.append(resume) or {"step": 0})
    monkeypatch.setenv("RANK", "1")  # another rank: rank 0 alone refuses (torchrun then stops the others)
    assert run_main(train_cli.main, base + ["--steps", "2"], capsys)[0] == 0 and calls == [False]
    monkeypatch.delenv("RANK")
    (out / "last.state.pt").unlink()  # only a config and a log: nothing to resume, so not a run to protect
    assert run_main(train_cli.main, base + ["--steps", "2"], capsys)[0] == 0 and calls == [False, False]


def test_overwrite_removes_the_earlier_runs_state_at_once(tmp_path, capsys):
    """A new run in a folder that held one leaves nothing of the old one to resume or export, even when it stops
    before its first checkpoint (here: it diverges at step 1)."""
    from sa_lib.cli.train import main

    out = tmp_path / "run"
    base = ["--profile", "smoke", "--out", out, "--no-progress"]
    assert run_main(main, base + ["--steps", "2"], capsys)[0] == 0
    assert (out / "last.state.pt").is_file() and (out / "last.safetensors").is_file()
    code, _, err = run_main(main, base + ["--overwrite", "--lr", "1e30"], capsys)
    assert code == 1 and "no longer finite" in err
    assert not (out / "last.state.pt").exists() and not (out / "last.safetensors").exists()
