"""The authors' released model as a project checkpoint: key mapping, checks and conversion (`sa-convert-official`).

The authors of the paper published one trained checkpoint (a Google Drive file, `checkpoint.pt`, linked from
the README of hernan0930/Super-attention-for-exemplar-based-image-colorization): a dict whose 'state_dict' is
their `gen_color_stride_vgg16(dim=2)`. Their frozen colour encoder is torchvision's ImageNet `vgg19_bn`, not in
that file. This module turns both into one self-contained project checkpoint whose network is the preset
`ColorizerConfig.official()`: this project's `Colorizer`, with the config switches that make it compute what
their network computes (docs/official.md). Nothing of their code is used or needed.

The mapping, key by key (their name -> ours):

| theirs | ours |
|---|---|
| gen1..gen4 (3x3 conv + BN + ReLU; 2, 2, 3, 3 convs) | encoder.0..3 |
| gen5_conv, gen6_conv, gen7_conv (1x1 fusion) | fusion.2, fusion.1, fusion.0 |
| gen5, gen6, gen7 (3 convs each) | decoder.2, decoder.1, decoder.0 |
| gen4_up, gen5_up.0, gen6_up.0 (4x4 stride-2 transposed convs) | upsample.2, upsample.1, upsample.0 |
| out.0 (1x1 conv before tanh) | head |
| attention_1..3.{query,key,value}_conv | attention.0..2.{query,key,value} |
| attention_4.* (built, never used by their forward) | dropped |

Two exact rewrites make their weights fit this project's layers:
- their 3x3 convs have a bias and are followed by BatchNorm; ours have none. BN(conv(x) + b) with running mean
  mu equals BN'(conv(x)) with running mean mu - b (in training mode BN removes b as well), so the bias is
  folded into the BN's running mean;
- their first conv reads the gray input repeated to 3 channels; ours reads it once. Summing the kernel over its
  3 input channels gives the same output.

Files are read with torch.load(weights_only=True) only: a file that needs more than tensors and plain
containers is refused in one line, and nothing in it runs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from ..core import hub
from .checkpoint import save_checkpoint
from .colorizer import Colorizer, ColorizerConfig
from .encoders import torchvision_vgg_keys

# The authors' Google Drive file (their README, "Pretrained Model").
DRIVE_ID = "1g9_NWvEEd5VewIlNc-HHKWcRUmGrLSav"
DRIVE_URL = f"https://drive.google.com/file/d/{DRIVE_ID}/view"
CHECKPOINT_FILENAME = "super-attention-checkpoint.pt"  # its name in the download cache
# SHA-256 of that file once it is known (printed by `make official`); None: not checked.
AUTHORS_CHECKPOINT_SHA256: str | None = None
SOURCE = "hernan0930/Super-attention-for-exemplar-based-image-colorization checkpoint.pt"

BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
ENCODER_BLOCKS = {"gen1": "encoder.0", "gen2": "encoder.1", "gen3": "encoder.2", "gen4": "encoder.3"}
DECODER_BLOCKS = {"gen5": "decoder.2", "gen6": "decoder.1", "gen7": "decoder.0"}
PLAIN_LAYERS = {"gen5_conv": "fusion.2", "gen6_conv": "fusion.1", "gen7_conv": "fusion.0", "gen4_up": "upsample.2",
                "gen5_up.0": "upsample.1", "gen6_up.0": "upsample.0", "out.0": "head"}
ATTENTION_LAYERS = {f"attention_{level + 1}.{theirs}_conv": f"attention.{level}.{ours}"
                    for level in range(3) for theirs, ours in (("query", "query"), ("key", "key"),
                                                               ("value", "value"))}
UNUSED = {f"attention_4.{name}_conv.{p}": (512, 512, 1) if p == "weight" else (512,)
          for name in ("query", "key", "value") for p in ("weight", "bias")}
FIRST_CONV = "gen1.0.weight"  # reads 3 repeated gray channels: summed to one


class ConversionError(RuntimeError):
    """An input the conversion cannot use; its message is one line that says what to do."""


def official_model(pretrained: bool = False) -> Colorizer:
    """An (untrained) network of the preset ColorizerConfig.official(); its VGG random unless pretrained."""
    return Colorizer(ColorizerConfig.official(), pretrained=pretrained)


def _conv_bn_pairs(model: Colorizer) -> dict[str, tuple[str, str]]:
    """Their '<block>.<conv index>' -> (our conv key prefix, our BN key prefix), for every 3x3 conv + BN."""
    pairs = {}
    for theirs, ours in {**ENCODER_BLOCKS, **DECODER_BLOCKS}.items():
        block = model.get_submodule(ours)
        for index in range(0, len(block), 3):  # conv, BN, ReLU
            pairs[f"{theirs}.{index}"] = (f"{ours}.{index}", f"{ours}.{index + 1}")
    return pairs


def authors_keys(model: Colorizer | None = None) -> dict[str, tuple[int, ...]]:
    """Every key of the authors' state_dict with its shape (as their gen_color_stride_vgg16(dim=2) has it)."""
    model = model or official_model()
    ours = model.state_dict()
    keys: dict[str, tuple[int, ...]] = {}
    for theirs, (conv, bn) in _conv_bn_pairs(model).items():
        weight = tuple(ours[f"{conv}.weight"].shape)
        keys[f"{theirs}.weight"] = (weight[0], 3, *weight[2:]) if f"{theirs}.weight" == FIRST_CONV else weight
        keys[f"{theirs}.bias"] = (weight[0],)
        block, index = theirs.rsplit(".", 1)
        for field in BN_FIELDS:
            keys[f"{block}.{int(index) + 1}.{field}"] = tuple(ours[f"{bn}.{field}"].shape)
    for theirs, ours_prefix in {**PLAIN_LAYERS, **ATTENTION_LAYERS}.items():
        for p in ("weight", "bias"):
            keys[f"{theirs}.{p}"] = tuple(ours[f"{ours_prefix}.{p}"].shape)
    keys.update(UNUSED)
    return keys


def check_authors_state(state: dict, where: str, model: Colorizer | None = None) -> None:
    """One-line ConversionError unless `state` has exactly the authors' keys, each a tensor of its shape."""
    expected = authors_keys(model)
    missing = [k for k in expected if k not in state]
    unexpected = sorted(k for k in state if k not in expected)
    if missing:
        raise ConversionError(f"{where}: the state_dict lacks {len(missing)} of the authors' {len(expected)} keys "
                              f"(first: {missing[0]}); it is not their gen_color_stride_vgg16 checkpoint")
    if unexpected:
        raise ConversionError(f"{where}: the state_dict has {len(unexpected)} keys the authors' network does not "
                              f"have (first: {unexpected[0]}); it is not their gen_color_stride_vgg16 checkpoint")
    for key, shape in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{where}: {key} is a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != shape:
            raise ConversionError(f"{where}: {key} has shape {tuple(value.shape)}, the authors' network needs "
                                  f"{shape}")


def convert_state_dict(state: dict[str, torch.Tensor], model: Colorizer) -> dict[str, torch.Tensor]:
    """The authors' state_dict -> the trainable state of `model` (an official_model()), exactly equivalent.

    Checks every key and shape first (check_authors_state); attention_4 is dropped; conv biases are folded into
    the following BN's running mean, and the first conv's kernel is summed over its 3 input channels.
    """
    check_authors_state(state, "state_dict", model)
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for theirs, (conv, bn) in _conv_bn_pairs(model).items():
        weight = state[f"{theirs}.weight"]
        if f"{theirs}.weight" == FIRST_CONV:
            weight = weight.sum(dim=1, keepdim=True)  # (64, 3, 3, 3) -> (64, 1, 3, 3): one gray channel
        out[f"{conv}.weight"] = weight
        block, index = theirs.rsplit(".", 1)
        for field in BN_FIELDS:
            out[f"{bn}.{field}"] = state[f"{block}.{int(index) + 1}.{field}"]
        # BN(conv(x) + b) = BN'(conv(x)) with BN' running_mean = running_mean - b
        out[f"{bn}.running_mean"] = out[f"{bn}.running_mean"] - state[f"{theirs}.bias"]
    for theirs, ours_prefix in {**PLAIN_LAYERS, **ATTENTION_LAYERS}.items():
        for p in ("weight", "bias"):
            out[f"{ours_prefix}.{p}"] = state[f"{theirs}.{p}"]
    trainable = {k for k in ours if not k.startswith("color_encoder.")}
    if set(out) != trainable:  # a bug in the table above, never a user's mistake
        raise AssertionError(f"mapping incomplete: {sorted(trainable ^ set(out))[:3]}")
    return {k: v.detach().to(ours[k].dtype).contiguous() for k, v in out.items()}


def _load_tensors(path: Path, what: str) -> object:
    """torch.load(weights_only=True) with one-line errors; the file's code never runs."""
    if not path.is_file():
        raise ConversionError(f"{what} not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch's zip format, or a legacy pickle
        raise ConversionError(f"{path} is not a torch file (neither torch.save's zip format nor a pickle)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError (refused), RuntimeError / EOFError (not a torch file)...
        reason = " ".join(str(err).split())
        if "weights_only" in reason or "Unsupported global" in reason or "Unsupported operand" in reason:
            first = reason.split(". ")[0].removeprefix("Weights only load failed")[:160].strip(" :.")
            raise ConversionError(f"{path}: refused, it needs more than tensors to load{f' ({first})' if first else ''};"
                                  " the authors' "
                                  "file holds tensors only, so this one is another file or was tampered with; "
                                  "nothing in it was run") from None
        raise ConversionError(f"{path} is not a readable torch file ({type(err).__name__}: {reason[:160]})") from None


def read_authors_checkpoint(path: Path | str) -> dict[str, torch.Tensor]:
    """The 'state_dict' of the authors' checkpoint.pt, loaded with weights_only=True (one-line errors)."""
    path = Path(path)
    data = _load_tensors(path, "the authors' checkpoint")
    if not isinstance(data, dict) or "state_dict" not in data:
        kind = f"a dict with keys {', '.join(map(str, list(data)[:4]))}" if isinstance(data, dict) else \
            f"a {type(data).__name__}"
        raise ConversionError(f"{path} holds {kind}, not the authors' checkpoint (a dict with 'state_dict')")
    if not isinstance(data["state_dict"], dict):
        raise ConversionError(f"{path}: 'state_dict' is a {type(data['state_dict']).__name__}, not a dict")
    return data["state_dict"]


def read_vgg19_bn(path: Path | str, model: Colorizer) -> dict[str, torch.Tensor]:
    """A torchvision-format vgg19_bn state_dict file -> the state of `model.color_encoder` (one-line errors)."""
    path = Path(path)
    data = _load_tensors(path, "vgg19_bn weights")
    if not isinstance(data, dict):
        raise ConversionError(f"{path} holds a {type(data).__name__}, not a torchvision vgg19_bn state_dict")
    encoder = model.color_encoder
    ours = encoder.state_dict()
    state = {}
    for key, theirs in torchvision_vgg_keys(encoder).items():
        value = data.get(theirs)
        if not isinstance(value, torch.Tensor):
            raise ConversionError(f"{path} lacks {theirs}: it is not a torchvision vgg19_bn state_dict "
                                  f"(vgg19_bn-c79401a0.pth)")
        if value.shape != ours[key].shape:
            raise ConversionError(f"{path}: {theirs} has shape {tuple(value.shape)}, vgg19_bn needs "
                                  f"{tuple(ours[key].shape)}; it is not a torchvision vgg19_bn state_dict")
        state[key] = value.detach().to(ours[key].dtype).contiguous()
    return state


def vgg19_bn_file(path: Path | str | None = None) -> Path:
    """The vgg19_bn weights: `path` if given, else torchvision's file through the download registry (sha256
    checked, cached). Offline, the one-line error says which file to put where."""
    if path is not None:
        return Path(path)
    try:
        return hub.fetch("vgg19_bn")
    except hub.AssetUnavailable as err:
        raise ConversionError(f"{err}; or give the file with --vgg19-bn FILE") from None


def sha256_of(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 23), b""):
            digest.update(block)
    return digest.hexdigest()


def convert(checkpoint: Path | str, output: Path | str, vgg19_bn: Path | str | None = None) -> Colorizer:
    """The authors' checkpoint.pt (+ vgg19_bn) -> a self-contained project checkpoint at `output` (safetensors,
    config and colour-encoder weights inside, .json sidecar beside it). Returns the loaded, eval-mode model."""
    checkpoint, output = Path(checkpoint), Path(output)
    if output.suffix != ".safetensors":
        raise ConversionError(f"output {output} must end in .safetensors")
    if not output.parent.is_dir():
        raise ConversionError(f"output folder does not exist: {output.parent}")
    model = official_model(pretrained=False)
    state = convert_state_dict(read_authors_checkpoint(checkpoint), model)
    vgg_path = vgg19_bn_file(vgg19_bn)
    color = read_vgg19_bn(vgg_path, model)
    model.load_state_dict(state, strict=False)
    model.color_encoder.load_state_dict(color, strict=True)
    model.config.extra.update(source=SOURCE, source_sha256=sha256_of(checkpoint),
                              vgg19_bn_sha256=sha256_of(vgg_path))
    save_checkpoint(output, model.eval(), embed_color_encoder=True)
    return model


def download_authors_checkpoint(directory: Path | str | None = None, progress: bool = True) -> Path:
    """The authors' checkpoint.pt in the download cache (data_dir()/downloads), fetched from Google Drive with
    the `gdown` client when missing. If gdown is not installed or Drive refuses, the one-line error gives the
    manual step: the link to open and the path to save the file at."""
    folder = Path(directory) if directory is not None else hub.data_dir() / "downloads"
    target = folder / CHECKPOINT_FILENAME
    manual = f"open {DRIVE_URL} in a browser, download checkpoint.pt and save it as {target}"
    if target.is_file():
        return _checked_download(target)
    try:
        import gdown  # deferred: gdown is the optional 'official' extra
    except ImportError:
        raise ConversionError(f"the Google Drive client gdown is not installed (pip install gdown); or {manual}") \
            from None
    folder.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        fetched = gdown.download(id=DRIVE_ID, output=str(part), quiet=not progress)
    except Exception as err:  # gdown raises its own and requests' errors; all mean the same to a user
        fetched, reason = None, f"{type(err).__name__}: {' '.join(str(err).split())[:100]}..."
    else:
        reason = "no file came back"
    if not fetched or not part.is_file() or part.stat().st_size == 0:
        part.unlink(missing_ok=True)
        raise ConversionError(f"Google Drive refused the download ({reason}); {manual}")
    os.replace(part, target)
    return _checked_download(target)


def _checked_download(path: Path) -> Path:
    if AUTHORS_CHECKPOINT_SHA256 is not None and sha256_of(path) != AUTHORS_CHECKPOINT_SHA256:
        raise ConversionError(f"{path} is not the authors' file (SHA-256 differs from {AUTHORS_CHECKPOINT_SHA256}); "
                              f"delete it and run again")
    return path

