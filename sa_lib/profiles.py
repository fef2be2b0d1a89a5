"""The one registry of profiles: everything that differs between `smoke`, `demo` and `paper`, in one place.

A profile is a frozen `Profile`: where its photos are (`PhotoSource`: the offline demo photos or COCO 2017, with
their references file, evaluation pairs and image folders), the network (`model`, a ColorizerConfig whose variant
each run sets), the ranking encoder of sa-references / sa-suggest, the checkpoints it evaluates, the evaluation
size, the perceptual loss and the training defaults (`training`: TrainConfig fields), and what the attention
figures show. Every command and notebook reads its profile here (`get_profile`); a new profile is one more
entry of PROFILES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .core.errors import UsageError
from .data import demo_data
from .data.coco import coco_dataset, coco_root
from .data.coco_mini import mini_coco_dataset, mini_coco_root
from .data.datasets import CocoLikeDataset, demo_dataset
from .model.checkpoint import DEFAULT_CHECKPOINT
from .model.colorizer import NAMED_MODELS, VARIANTS, ColorizerConfig
from .model.paper_readings import PAPER_READINGS, paper_reading_suffix

EVAL_SIZE = 224  # section 5 evaluates the 224 x 224 images the network was trained on
PAPER_CHECKPOINT = "paper-super"  # checkpoints/paper-super.safetensors, published by notebook 02 (make paper PROFILE=paper)


@dataclass(frozen=True)
class PhotoSource:
    """Where a profile's photos are: the datasets, the references file, the evaluation pairs and their folders.

    File and folder names are relative to `root()`, read when asked (the COCO root follows $SUPERATTN_DATA)."""

    name: str  # "demo", "coco" or "coco-mini": TrainConfig.data
    root: Callable[[], Path]
    dataset: Callable[[str], CocoLikeDataset]  # "train" or "val" -> the photos and their object masks
    references_name: str  # the ranked references of every train target (sa-references)
    pairs_name: str  # the evaluation pairs: each val target with its top-1 reference (sa-references)
    targets_name: str  # the folder of the evaluation targets
    pool_name: str  # the folder of the references (the train photos)
    matched_pairs_name: str | None = None  # pairs of a val target and a train photo of the same kind, chosen by eye

    def references_file(self) -> Path:
        return self.root() / self.references_name

    def pairs_file(self) -> Path:
        return self.root() / self.pairs_name

    def target_dir(self) -> Path:
        return self.root() / self.targets_name

    def reference_dir(self) -> Path:
        return self.root() / self.pool_name

    def matched_pairs_file(self) -> Path | None:
        return None if self.matched_pairs_name is None else self.root() / self.matched_pairs_name

    def ranking_sets(self) -> tuple[list[CocoLikeDataset], list[CocoLikeDataset]]:
        """(pool, targets) of the reference ranking (sa-references): the pool is the train photos and their
        objects, so no val photo's colours are ever shown in training; every photo, train and val, is a target,
        and the val ones draw train references (the evaluation pairs)."""
        train, val = self.dataset("train"), self.dataset("val")
        return [train], [train, val]


DEMO_PHOTOS = PhotoSource("demo", lambda: demo_data.DEMO_DIR, demo_dataset, "references.json", "eval_pairs.csv",
                          "images", "images", "matched_pairs.csv")
COCO_PHOTOS = PhotoSource("coco", coco_root, coco_dataset, "references-train.json", "eval_pairs.csv", "val2017",
                          "train2017")
# The same layout and reader as COCO_PHOTOS (coco_dataset through pycocotools), on a miniature of COCO made from a
# few demo photos in <data cache>/paper-smoke/coco (sa_lib.data.coco_mini), written on first use.
COCO_MINI_PHOTOS = replace(COCO_PHOTOS, name="coco-mini", root=mini_coco_root, dataset=mini_coco_dataset)
PHOTO_SOURCES = {source.name: source for source in (DEMO_PHOTOS, COCO_PHOTOS, COCO_MINI_PHOTOS)}


RANKINGS_SHOWN = ("committed", "recomputed", "sa-references")


@dataclass(frozen=True)
class Profile:
    """Everything a profile sets; see the module docstring."""

    name: str
    photos: PhotoSource
    model: ColorizerConfig  # sizes and colour encoder; each run sets the variant
    perceptual: str  # the perceptual loss of training (sa_lib.model.losses.build_perceptual)
    training: dict[str, Any]  # the other TrainConfig fields this profile sets
    ranking_encoder: str  # sa-references / sa-suggest features (sa_lib.data.references)
    ranking_normalize: bool  # unit-norm features (demo) or the paper's raw L2
    own_references: bool  # sa-references --profile NAME writes this profile's files (smoke reuses demo's)
    checkpoint_prefix: str  # its checkpoints are checkpoints/<prefix>-<model>
    eval_models: tuple[str, ...]  # the models of Table 1 (checkpoints <prefix>-<model>)
    report_variants: tuple[str, ...]  # the variants notebook 02 trains or reuses and plots
    eval_size: int  # sa-evaluate's square size
    eval_limit: int | None  # evaluate only the first `eval_limit` pairs
    baseline_encoder: str  # deep features of the [17] baseline
    attention_checkpoint: str  # the model of Fig. 3 and the explorer
    attention_working_size: int  # long side (px) at which it runs there, and in the quickstart notebook
    attention_pair_files: tuple[str, ...]  # pairs files (in photos.root()) shown, in this order
    attention_targets: tuple[str, ...] = ()  # only the pairs of these targets, in this order (none: all)
    attention_figure_target: str | None = None  # the target of Fig. 3's pair (its first pair; None: the first)
    attention_compare: bool = True  # the explorer also shows the paper's super model and [17]
    notebooks: bool = True  # `make paper PROFILE=NAME` runs the notebooks with it
    # ImageNet weights for every backbone: the colour encoder phi, the ranking encoder, LPIPS-VGG's VGG16 (its
    # linear heads always come with the lpips wheel) and [17]'s encoder. False: the same networks with random
    # weights, seeded (paper-smoke: the paper's code path with nothing downloaded).
    pretrained: bool = True
    ranking_size: int = 224  # sa-references' square crop size (section 4: 224)
    eval_workers: int = 0  # sa-evaluate's processes that decode the pairs (PairStream; 0: in the process)
    ranking_engine: str = "faiss"  # sa-references' engine: "faiss" (float16 feature shards on disk, exact search in
    #                                bounded memory: COCO scale) or "torch" (features in memory, brute force)
    # What the notebooks and `make paper` do with it (each of these was once a test of the profile's name):
    ranking_shown: str = "sa-references"  # notebook 01's ranking (RANKINGS_SHOWN): the committed file, one recomputed
    #                                       now, or the file sa-references wrote
    candidate_photos_shown: int = 3  # notebook 01: photos in the candidates figure
    reuses_checkpoints: bool = True  # notebook 02 reuses a shipped checkpoint whose config hash matches; False:
    #                                  it always trains (a few steps) and publishes nothing
    writes_model_card: bool = False  # retraining its shipped checkpoints rewrites checkpoints/MODEL_CARD.md
    ships_checkpoints: bool = False  # its checkpoints are in the repository (make train-demo); else users train them
    progress_bars: bool = True  # notebook 02's training shows progress bars
    complexity_live: bool = False  # notebook 06 measures the attention block live at two tiny sizes (seconds)
    gpu_sized: bool = False  # sized for a GPU: notebook 06 runs the full benchmark when CUDA is there; hints say so
    variant_training: dict[str, dict[str, Any]] = field(default_factory=dict)  # TrainConfig fields of one
    #                                  variant's run in this profile (demo: the transfer model's three stages)
    paper_readings: tuple[str, ...] = ()  # Table 1 also scores `super` with each of these departures undone
    #                                       (sa_lib.model.paper_readings; checkpoints <prefix>-super-paper-NAME)
    transfer_blend: str | None = None  # the paper variant whose network the transfer checkpoint holds as its blend
    #                                    partner (ColorizerConfig.blend_partner), stored with its chroma gain by
    #                                    `sa-calibrate-chroma --blend` (make train-demo; notebook 02 after a retrain)

    def __post_init__(self):
        if self.ranking_shown not in RANKINGS_SHOWN:
            raise ValueError(f"ranking_shown must be one of {', '.join(RANKINGS_SHOWN)}, got {self.ranking_shown!r}")

    def checkpoint(self, model: str) -> str:
        """The shipped name of this profile's checkpoint of `model` (a named model of sa_lib.model.colorizer)."""
        return f"{self.checkpoint_prefix}-{model}"

    def reading_checkpoint(self, reading: str) -> str:
        """The name of its `super` checkpoint trained with one of the paper's readings (`sa-train --paper-reading`)."""
        return self.checkpoint("super") + paper_reading_suffix([reading])


DEMO_TRAINING = {"image_size": 128, "max_steps": 1500, "epochs": 1000}
# The transfer model's demo run (docs/transfer.md): at 224 px, the size the pairs are scored at and the paper's
# training size (the paper's three variants train at 128 px here, for CPU time; run f224); 1,500 steps as the paper's
# variants; then 900 at a lower rate with more ranked (different-photo) references, where copying the reference is not
# always right; then 300 more with the chroma distribution term (TrainConfig.lambda_chroma), against muted outputs.
DEMO_TRANSFER_TRAINING = {"image_size": 224, "max_steps": 2700,
                          "later_stages": [(1500, {"lr": 1e-4, "p_self": 0.4, "p_recolor": 0.25}),
                                           (2400, {"lambda_chroma": 10.0})]}
PROFILES: dict[str, Profile] = {profile.name: profile for profile in (
    Profile("smoke", DEMO_PHOTOS, ColorizerConfig(), "effnet_feature_distance",
            {"image_size": 48, "batch_size": 2, "max_steps": 4, "epochs": 1000, "num_workers": 0, "log_every": 1,
             "val_every": 4, "val_pairs": 2, "checkpoint_every": 2},
            "effnet_lite0", True, False, "demo", NAMED_MODELS, ("super",), 96, 4, "effnet_lite0",
            DEFAULT_CHECKPOINT, 128, ("eval_pairs.csv",), ("gcompris-cheetah.jpg", "gcompris-panda.jpg"),
            attention_compare=False, ranking_engine="torch", ranking_shown="committed", candidate_photos_shown=2, reuses_checkpoints=False,
            ships_checkpoints=True, progress_bars=False, complexity_live=True, paper_readings=tuple(PAPER_READINGS)),
    Profile("demo", DEMO_PHOTOS, ColorizerConfig(), "effnet_feature_distance", DEMO_TRAINING,
            "effnet_lite0", True, True, "demo", NAMED_MODELS, NAMED_MODELS, EVAL_SIZE, None, "effnet_lite0",
            DEFAULT_CHECKPOINT, 256, ("matched_pairs.csv", "eval_pairs.csv"),
            attention_figure_target="gcompris-cheetah.jpg",  # <- a jaguar in the matched pairs
            ranking_engine="torch", ranking_shown="recomputed", writes_model_card=True, ships_checkpoints=True,
            variant_training={"transfer": DEMO_TRANSFER_TRAINING}, paper_readings=tuple(PAPER_READINGS),
            transfer_blend="standard"),
    Profile("paper", COCO_PHOTOS, ColorizerConfig.paper(), "lpips_vgg",
            {"image_size": 224, "batch_size": 8, "epochs": 20, "lr": 1e-5, "num_workers": 8, "val_every": 2000,
             "val_pairs": 500, "checkpoint_every": 2000},
            "vgg19", False, True, "paper", VARIANTS, VARIANTS, EVAL_SIZE, None, "vgg19",
            PAPER_CHECKPOINT, 224, ("eval_pairs.csv",), eval_workers=4, gpu_sized=True),
)}

# paper-smoke: the paper profile's code path, and nothing but it, in miniature on a CPU (tests/test_paper_smoke.py
# runs sa-references, sa-train under torchrun/gloo, --resume, --export and sa-evaluate with it in `make test`).
# It is `paper` with exactly these fields changed (a test holds the list to the registry), each for the weights
# or the scale; the network (ColorizerConfig.paper()), the perceptual loss (LPIPS-VGG), the ranking (VGG19
# relu5_4, raw L2), the [17] baseline's VGG19, the optimiser and the schedule's other settings are the paper's.
SMOKE_SIZE = 64
PAPER_SMOKE_TRAINING = {"image_size": SMOKE_SIZE, "batch_size": 2, "max_steps": 4, "num_workers": 1,
                        "log_every": 1, "val_every": 4, "val_pairs": 2, "checkpoint_every": 2}
PAPER_SMOKE_DIFFERENCES = {
    "name": "its own name",
    "complexity_live": "notebook 06 measures the attention block live at two tiny sizes, as smoke does",
    "gpu_sized": "sized for a CPU",
    "photos": "COCO's layout and reader on a miniature made from demo photos (sa_lib.data.coco_mini), not COCO 2017",
    "pretrained": "random weights (seeded) for VGG19, LPIPS's VGG16 backbone and [17]'s VGG19: nothing downloaded",
    "training": f"{SMOKE_SIZE} px, batch 2 (one per process under torchrun), 4 steps, 1 loader worker, "
                "validation on 2 pairs and checkpoints every 2 steps",
    "ranking_size": f"references ranked at {SMOKE_SIZE} px, not 224",
    "eval_size": f"evaluated at {SMOKE_SIZE} px, not 224",
    "attention_working_size": f"{SMOKE_SIZE} px",
    "checkpoint_prefix": "checkpoints paper-smoke-*, never mistaken for the paper's",
    "attention_checkpoint": "paper-smoke-super",
    "eval_models": "only `super` is trained and scored (the paper profile's other variants run the same code)",
    "report_variants": "only `super`",
}
PROFILES["paper-smoke"] = replace(
    PROFILES["paper"], name="paper-smoke", photos=COCO_MINI_PHOTOS, pretrained=False,
    training={**PROFILES["paper"].training, **PAPER_SMOKE_TRAINING}, ranking_size=SMOKE_SIZE, eval_size=SMOKE_SIZE,
    attention_working_size=SMOKE_SIZE, checkpoint_prefix="paper-smoke", attention_checkpoint="paper-smoke-super",
    eval_models=("super",), report_variants=("super",), complexity_live=True, gpu_sized=False)


def get_profile(name: str) -> Profile:
    """The profile called `name`; UsageError naming the known ones otherwise."""
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; choose {', '.join(PROFILES)}")
    return PROFILES[name]


def ranking_profiles() -> list[str]:
    """The profiles `sa-references` writes files for and `sa-suggest` ranks with."""
    return sorted(name for name, profile in PROFILES.items() if profile.own_references)
