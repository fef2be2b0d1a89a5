"""The configuration of a training run: TrainConfig and the profiles' runs (profile_config).

The defaults of each profile (its photos, model, perceptual loss, sizes and schedule) come from the one registry,
sa_lib.profiles; a run's full TrainConfig is written to its folder (config.json) and to every checkpoint sidecar.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..core.errors import UsageError
from ..model.checkpoint import network_hash
from ..model.colorizer import NAMED_MODELS, TRANSFER_OPTIONS, ColorizerConfig
from ..model.losses import SMOOTH_L1_UNITS
from ..model.paper_readings import PAPER_READINGS, paper_reading_names, paper_reading_suffix
from ..profiles import PHOTO_SOURCES, PROFILES


REFERENCE_AUGMENTS = ("none", "warp_recolor")
# what a later stage (TrainConfig.later_stages) may change
STAGE_FIELDS = ("lr", "p_self", "p_recolor", "lambda_chroma")
# --precision: fp32 is the paper's (it trained in fp32 on a 2080 Ti); bf16 / fp16 run the network under autocast
# (fp16 with a gradient scaler, CUDA only). The attention's correlation and softmax stay fp32 in every case.
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class ConfigError(UsageError):
    """A training configuration that cannot run (reported as one line by the CLI)."""


MAX_IMAGE_SIZE = 2048  # training crops larger than this would not fit a batch in memory (the paper trains at 224)


@dataclass
class TrainConfig:
    """Every setting of a training run; saved into the run folder."""

    profile: str = "demo"
    variant: str = "super"
    data: str = "demo"  # "demo" (offline photos) or "coco"
    model: ColorizerConfig = field(default_factory=ColorizerConfig)
    image_size: int = 128
    batch_size: int = 8
    epochs: int = 20
    max_steps: int | None = None  # stop earlier than `epochs` (the demo profile is step-bounded)
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.99)
    lambda_l1: float = 10.0
    lambda_perceptual: float = 0.1
    lambda_chroma: float = 0.0  # not in the paper: the chroma distribution term (model/losses.py); 0 = eq. 6
    smooth_l1_units: str = "network"  # SMOOTH_L1_UNITS: SmoothL1 on ab/110 (this project) or raw Lab ("lab", eq. 4)
    perceptual: str = "effnet_feature_distance"  # reproducible offline; the paper profile uses "lpips_vgg"
    p_self: float = 0.25
    reference_augment: str = "none"  # "warp_recolor": self references warped, and recoloured with p_recolor
    p_recolor: float = 0.5
    seed: int = 0
    num_workers: int = 1
    log_every: int = 10
    val_every: int = 250
    val_pairs: int = 38
    checkpoint_every: int = 250
    precision: str = "fp32"  # PRECISIONS: fp32 (the paper's), or bf16 / fp16 autocast (--precision)
    pretrained: bool = True  # ImageNet backbones (phi, LPIPS's VGG16); False: random, seeded (profile paper-smoke)
    out: str = "runs/demo-super"
    references: str | None = None  # references.json; default: the dataset's own
    progress: bool = True
    # Later stages: [(start, {field: value})], in order of their starts; once `start` steps are done, a stage's
    # fields (STAGE_FIELDS) replace those of the stage before it (the demo's (1500, ...): steps 1501 on). The transfer variant uses them (docs/transfer.md);
    # the paper's runs have one stage.
    later_stages: list = field(default_factory=list)

    def __post_init__(self):
        # one form, whether given as JSON's lists or as tuples: [(start, {field: value})]
        self.later_stages = [(int(first), dict(changes)) for first, changes in self.later_stages]

    def to_dict(self) -> dict:
        """Every field as JSON-ready values (the model config as a dict): config.json and checkpoint sidecars."""
        return json.loads(json.dumps(asdict(self), default=list))

    @classmethod
    def from_dict(cls, fields: dict) -> "TrainConfig":
        """The inverse of to_dict (the model config rebuilt as a ColorizerConfig, betas as a tuple).

        Configs written before `precision` existed have `amp` instead (default True), which asked for bf16
        autocast on CUDA only. Every run recorded with it trained on the CPU (the shipped demo checkpoints; no
        paper run existed), so ran in fp32, and `amp` reads as precision "fp32" either way: what they did, and
        the paper's precision for a resumed GPU run.

        Configs written before `later_stages` existed have one optional second stage as `anneal_from_step` and
        `anneal`: it reads as the one later stage it was."""
        fields = dict(fields)
        if "amp" in fields:
            fields.pop("amp")
            fields.setdefault("precision", "fp32")
        if "anneal_from_step" in fields:
            first, changes = fields.pop("anneal_from_step"), fields.pop("anneal", {})
            fields.setdefault("later_stages", [] if first is None else [(first, changes)])
        fields["model"] = ColorizerConfig.from_dict(fields["model"])
        fields["betas"] = tuple(fields["betas"])
        return cls(**fields)

    def stages(self, total: int) -> list[tuple["TrainConfig", int]]:
        """[(the settings of a stage, the step it ends at)]: the first stage, then one per later stage, each with
        the fields of the stages before it and its own on top (a stage that would end at or before the step its
        predecessor ends at has no steps: the loop skips it)."""
        settings, ends = [self], [first for first, _ in self.later_stages] + [total]
        for _, changes in self.later_stages:
            settings.append(replace(settings[-1], **changes))
        return [(stage, min(end, total)) for stage, end in zip(settings, ends)]

    def validate(self) -> None:
        starts = [start for start, _ in self.later_stages]
        if any(start < 1 for start in starts) or starts != sorted(set(starts)):
            raise ConfigError(f"the later stages' starts must be positive and increasing, got {starts}")
        for _, changes in self.later_stages:
            unknown = set(changes) - set(STAGE_FIELDS)
            if unknown:
                raise ConfigError(f"a later stage can change {', '.join(STAGE_FIELDS)}, not "
                                  f"{', '.join(sorted(unknown))}")
        for stage, _ in self.stages(max(starts, default=0) + 1)[1:]:
            replace(stage, later_stages=[]).validate()
        if self.lambda_chroma < 0:
            raise ConfigError(f"lambda_chroma must be at least 0, got {self.lambda_chroma}")
        if self.lr <= 0:
            raise ConfigError(f"the learning rate must be positive, got {self.lr}")
        if self.variant not in NAMED_MODELS:
            raise ConfigError(f"unknown variant {self.variant!r}; choose one of {', '.join(NAMED_MODELS)}")
        if self.smooth_l1_units not in SMOOTH_L1_UNITS:
            raise ConfigError(f"unknown smooth_l1_units {self.smooth_l1_units!r}; "
                              f"choose one of {', '.join(SMOOTH_L1_UNITS)}")
        if self.reference_augment not in REFERENCE_AUGMENTS:
            raise ConfigError(f"unknown reference_augment {self.reference_augment!r}; "
                              f"choose one of {', '.join(REFERENCE_AUGMENTS)}")
        if not 0.0 <= self.p_recolor <= 1.0:
            raise ConfigError(f"p_recolor must be in [0, 1], got {self.p_recolor}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {self.batch_size}")
        if not 32 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"image size must be from 32 to {MAX_IMAGE_SIZE} px, got {self.image_size}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be from 0 to 2**32 - 1, got {self.seed}")
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"the number of steps (max_steps, --steps) must be at least 1, got {self.max_steps}")
        if not 0.0 <= self.p_self <= 1.0:
            raise ConfigError(f"p_self must be in [0, 1], got {self.p_self}")
        if self.data not in PHOTO_SOURCES:
            raise ConfigError(f"unknown data {self.data!r}; choose {' or '.join(PHOTO_SOURCES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")


def model_variant(variant: str) -> str:
    """The network variant a training variant builds ("transfer" is "super" with the transfer options)."""
    return "super" if variant == "transfer" else variant


def profile_config(profile: str, variant: str = "super", paper_readings=(), **overrides) -> TrainConfig:
    """The training run of a profile of sa_lib.profiles (its photos, model, perceptual loss and `training`
    defaults) for `variant`, with `overrides` (TrainConfig fields) on top.
    `paper`: section 3.4 (Adam 1e-5, betas (0.9, 0.99), batch 8, 20 epochs, 224, LPIPS-VGG, COCO, VGG19).
    `demo`: sized for a 2-core CPU in ~20 min: demo widths, EfficientNet-Lite0, 128 px, 1500 steps and a
    higher learning rate (3e-4) because 1500 steps at 1e-5 would barely move the weights.
    `smoke`: a few steps on tiny images, for tests and notebooks.
    `paper-smoke`: `paper` with random backbones on a miniature COCO, a few steps at 64 px (sa_lib.profiles).
    `paper_readings`: names of PAPER_READINGS, each of this project's departures undone (an ablation row)."""
    if variant not in NAMED_MODELS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of {', '.join(NAMED_MODELS)}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose {', '.join(PROFILES)}")
    try:
        names = paper_reading_names(paper_readings)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    settings = PROFILES[profile]
    config = TrainConfig(profile=profile, variant=variant, data=settings.photos.name,
                         model=replace(settings.model, variant=model_variant(variant), extra=dict(settings.model.extra)),
                         perceptual=settings.perceptual, pretrained=settings.pretrained,
                         out=f"runs/{profile}-{variant}{paper_reading_suffix(names)}", **settings.training)
    if variant == "transfer":  # the transfer options, and the training that makes them work (docs/transfer.md):
        # warped and recoloured self references; the profile may add later stages (variant_training)
        config = replace(config, model=replace(config.model, **TRANSFER_OPTIONS), p_self=0.75,
                         reference_augment="warp_recolor")
    variant_fields = json.loads(json.dumps(settings.variant_training.get(variant, {})))  # a copy, nested dicts too
    config = replace(config, **variant_fields)  # e.g. the demo's transfer stages
    if names and variant == "transfer":
        raise ConfigError("--paper-reading undoes a departure of the paper's variants (none, standard, super); "
                          "the transfer model departs on purpose")
    for name in names:
        reading = PAPER_READINGS[name]
        if variant not in reading.variants:
            raise ConfigError(f"paper reading {name!r} changes nothing in variant {variant} (it applies to "
                              f"{' and '.join(reading.variants)})")
        config = replace(config, model=replace(config.model, **reading.model), **reading.training)
    config = replace(config, **overrides)
    config.model = replace(config.model, variant=model_variant(config.variant))
    config.validate()
    return config


RUN_CONFIG = "config.json"  # a run folder's full TrainConfig (sa_lib.train.log.RunLog writes it)
RESUME_STATE = "last.state.pt"  # all that --resume needs (sa_lib.train.state)


def holds_a_run(out: Path | str) -> bool:
    """Whether the folder holds a training run that could be resumed (its resume state). A run stopped before its
    first checkpoint leaves only its config and log: nothing to resume, and a new run may replace them."""
    return (Path(out) / RESUME_STATE).is_file()


def resume_config(requested: TrainConfig, changes: dict, paper_readings=()
                  ) -> tuple[TrainConfig, list[tuple[str, object, object]]]:
    """The config a resumed run continues with, and the settings it changes: [(field, the run's, the new)].

    The run's own config.json gives every setting, so a run continues as it was started even if the profile's
    defaults have changed since; `changes` (the TrainConfig fields given on the command line, `requested` built
    with them) change those settings. The profile, the variant, the network and its SLIC backend cannot change
    on a resume, and `paper_readings`, if given, must be the run's own. A folder without config.json (a run of
    an older version, or none): `requested` as it is."""
    out = Path(requested.out)
    saved_file = out / RUN_CONFIG
    if not saved_file.is_file():
        return requested, []
    try:
        saved = TrainConfig.from_dict(json.loads(saved_file.read_text()))
    except Exception as err:  # noqa: BLE001 - an edited or truncated file: JSON, a missing field, a bad value
        raise ConfigError(f"{saved_file} is not a readable run config ({type(err).__name__}); "
                          "restore it, or train again in another folder") from None
    if (saved.profile, saved.variant) != (requested.profile, requested.variant):
        raise ConfigError(f"{out} holds a {saved.profile} {saved.variant} run; resume it with --profile "
                          f"{saved.profile} --variant {saved.variant}")
    readings = [PAPER_READINGS[name] for name in paper_reading_names(paper_readings)]
    if readings and (network_hash(saved.model) != network_hash(requested.model) or any(
            getattr(saved, key) != value for reading in readings for key, value in reading.training.items())):
        raise ConfigError(f"{out} holds a run without the paper reading(s) --paper-reading asks for; a resume "
                          "continues the run as it was started (leave --paper-reading out)")
    if changes.get("slic_backend", saved.model.slic_backend) != saved.model.slic_backend:
        raise ConfigError(f"{out} holds a run trained with SLIC backend {saved.model.slic_backend}; a resume cannot "
                          "change it (leave --slic out)")
    config = replace(saved, out=requested.out,
                     **{key: value for key, value in changes.items() if key not in ("slic_backend", "out")})
    config.validate()
    before, after = saved.to_dict(), config.to_dict()
    return config, [(key, before[key], after[key]) for key in changes
                    if key not in ("slic_backend", "out") and before[key] != after[key]]
