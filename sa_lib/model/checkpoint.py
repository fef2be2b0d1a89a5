"""Checkpoints: safetensors weights with the model config inside, a JSON sidecar, atomic writes.

A checkpoint is `NAME.safetensors` (the trainable weights; the frozen colour encoder is rebuilt from its
own source, unless the file embeds it, as `sa-convert-official` writes them) whose metadata holds the
`ColorizerConfig` as JSON, so loading needs nothing else, plus
`NAME.json` beside it (config, config hash, step, metrics) for people and tools, both written atomically
(sa_lib.core.files). Loading never unpickles:
safetensors only. Resumable training state (optimizer, RNG) is a separate local file, see sa_lib.train.loop.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, fields, replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..core.files import CHECKPOINT_DIR, atomic_write
from .colorizer import INFERENCE_ONLY_OPTIONS, Colorizer, ColorizerConfig

DEFAULT_CHECKPOINT = "demo-transfer"  # what sa-colorize, the API and the explorer use without --checkpoint
PAPER_MODEL_CHECKPOINT = "demo-super"  # the paper's model (super-attention) in the demo profile
FORMAT = "superattn-colorizer-1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, not ours, or of another variant."""


def config_hash(config: ColorizerConfig) -> str:
    """Short stable hash of the network's config (the provenance field `extra` excluded; fields added later are
    absent from to_json at their defaults, so a config written before them keeps its hash)."""
    fields = json.loads(config.to_json())
    fields.pop("extra", None)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


def network_hash(config: ColorizerConfig) -> str:
    """config_hash with the inference-only options (INFERENCE_ONLY_OPTIONS) at their defaults: equal for two
    configs whose weights are interchangeable (a training run and its checkpoint after sa-calibrate-chroma; a
    resume state and a run with another flip average)."""
    defaults = {f.name: f.default if f.default is not MISSING else f.default_factory()
                for f in fields(ColorizerConfig) if f.name in INFERENCE_ONLY_OPTIONS}
    return config_hash(replace(config, **defaults))


FROZEN_PREFIXES = ("color_encoder.", "blend_partner.color_encoder.")  # rebuilt from their source, not stored


def trainable_state(model: Colorizer) -> dict[str, torch.Tensor]:
    """The weights a checkpoint stores: everything but the frozen colour encoders (the network's and its blend
    partner's, ColorizerConfig.blend_partner)."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(FROZEN_PREFIXES)}


def save_checkpoint(path: Path | str, model: Colorizer, step: int = 0, metrics: dict | None = None,
                    half: bool = False, embed_color_encoder: bool = False, training: dict | None = None,
                    calibration: dict | None = None) -> None:
    """Write path (.safetensors) and its .json sidecar atomically. half=True stores floats as fp16.
    embed_color_encoder=True also stores the colour encoder's weights (a self-contained file). `training` (the
    run's full TrainConfig as a dict, sa_lib.train.config.TrainConfig.to_dict) goes into the sidecar as
    "training"; sidecars written before it have no such key (read_sidecar gives None). `calibration` (how the
    config's chroma_gain was fitted, sa_lib.eval.chroma_calibration) goes into it as "chroma_calibration"."""
    path = Path(path)
    config = model.config
    state = model.state_dict() if embed_color_encoder else trainable_state(model)
    tensors = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in state.items()}
    meta = {"format": FORMAT, "config": config.to_json(), "config_hash": config_hash(config), "step": str(step)}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    sidecar = {"config": json.loads(config.to_json()), "config_hash": config_hash(config), "step": step,
               "metrics": metrics or {}, "dtype": "float16" if half else "float32"}
    if training is not None:
        sidecar["training"] = training
    if calibration is not None:
        sidecar["chroma_calibration"] = calibration
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(sidecar, indent=2) + "\n"))


def read_sidecar(path: Path | str) -> dict:
    """The .json sidecar of a checkpoint, with "training" set to None where it was written without the run's
    TrainConfig (every sidecar before it was recorded)."""
    file = Path(path).with_suffix(".json")
    try:
        sidecar = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint sidecar {file} is not valid JSON ({err}); restore it or delete it") from None
    if not isinstance(sidecar, dict):
        raise CheckpointError(f"checkpoint sidecar {file} holds a {type(sidecar).__name__}, not a JSON object; "
                              "restore it or delete it")
    sidecar.setdefault("training", None)
    return sidecar


OFFICIAL_HINT = "; `make official` downloads and converts the authors' model to checkpoints/official.safetensors"


def resolve(name_or_path: str | Path) -> Path:
    """A shipped name ("demo-super") or a path -> the .safetensors file."""
    path = Path(name_or_path)
    if path.suffix != ".safetensors" and not path.exists():
        shipped = CHECKPOINT_DIR / f"{name_or_path}.safetensors"
        if shipped.is_file():
            return shipped
        known = sorted(p.stem for p in CHECKPOINT_DIR.glob("*.safetensors"))
        hint = OFFICIAL_HINT if name_or_path == "official" else ""
        raise CheckpointError(f"unknown checkpoint {str(name_or_path)!r}; shipped: {', '.join(known) or 'none'}{hint}")
    if not path.is_file():
        hint = OFFICIAL_HINT if path.name == "official.safetensors" else ""
        raise CheckpointError(f"checkpoint not found: {path}{hint}")
    return path


def read_config(name_or_path: str | Path) -> ColorizerConfig:
    """The config stored inside a checkpoint (reads the header only)."""
    path = resolve(name_or_path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file ({err})") from None
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{path} is not a superattn colorizer checkpoint")
    try:
        return ColorizerConfig.from_json(meta["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds an invalid config ({err})") from None


def load_checkpoint(name_or_path: str | Path, device: str | torch.device = "cpu",
                    expect_variant: str | None = None, pretrained_encoder: bool = True) -> Colorizer:
    """Rebuild the model from a checkpoint alone; refuse a corrupt file or one of another variant."""
    path = resolve(name_or_path)
    config = read_config(path)
    if expect_variant is not None and config.variant != expect_variant:
        raise CheckpointError(f"{path} holds variant {config.variant!r}, expected {expect_variant!r}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is corrupt ({err})") from None
    embedded = any(k.startswith("color_encoder.") for k in state)  # a self-contained file: no download
    model = Colorizer(config, pretrained=pretrained_encoder and not embedded)
    expected = model.state_dict() if embedded else trainable_state(model)
    if set(state) != set(expected) or any(state[k].shape != expected[k].shape for k in state):
        raise CheckpointError(f"{path} does not match its own config (weights missing or of the wrong shape)")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()}, strict=embedded)
    return model.to(device).eval()


def with_partner(model: Colorizer, partner: Colorizer) -> Colorizer:
    """`model` with `partner` as its ColorizerConfig.blend_partner: a new model holding both networks' weights (any
    earlier partner of `model` replaced). CheckpointError for a partner that cannot be blended."""
    try:
        config = replace(model.config, blend_partner=json.loads(partner.config.to_json()))
    except ValueError as err:
        raise CheckpointError(f"cannot blend: {err}") from None
    blended = Colorizer(config, pretrained=False)
    blended.load_state_dict({**{k: v for k, v in model.state_dict().items() if not k.startswith("blend_partner.")},
                             **{f"blend_partner.{k}": v for k, v in partner.state_dict().items()}})
    return blended.to(next(model.parameters()).device).eval()


def embeds_color_encoder(name_or_path: str | Path) -> bool:
    """Whether a checkpoint file stores its colour encoder's weights (a self-contained file, as sa-convert-official
    writes them) rather than rebuilding the encoder from its source."""
    return _stored_layout(resolve(name_or_path))[0]


def _stored_layout(path: Path) -> tuple[bool, bool]:
    """(embeds its colour encoder, stores floats as fp16) of a checkpoint file, read from its tensors."""
    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        floats = [f.get_slice(k).get_dtype() for k in keys]
    return any(k.startswith("color_encoder.") for k in keys), "F16" in floats


def rewrite_config(source: str | Path, out: Path | str, model: Colorizer, calibration: dict | None = None) -> None:
    """Write `out` (and its sidecar) with `model`'s weights and config, keeping the rest of `source`'s checkpoint
    as it was: its dtype, whether it embeds the colour encoder, and its sidecar's step, metrics and training record.
    For a change of an inference-only option (sa_lib.model.colorizer.INFERENCE_ONLY_OPTIONS) of weights loaded
    from `source`."""
    path = resolve(source)
    try:
        sidecar = read_sidecar(path)
    except FileNotFoundError:  # a checkpoint copied without its sidecar
        sidecar = {"training": None}
    embedded, half = _stored_layout(path)
    save_checkpoint(out, model, step=int(sidecar.get("step", 0)), metrics=sidecar.get("metrics"), half=half,
                    embed_color_encoder=embedded, training=sidecar["training"], calibration=calibration)
