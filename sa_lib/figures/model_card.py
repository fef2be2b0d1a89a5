"""Write checkpoints/MODEL_CARD.md: what the shipped demo checkpoints are, and how they use the reference.

    python -m sa_lib.cli.model_card        # (make model-card) evaluates checkpoints/demo-{none,standard,super,transfer}
                                           # and the paper-reading ablations demo-super-paper-* (make train-ablations)

Every number is measured by this command: on the committed demo evaluation pairs (data/demo/eval_pairs.csv,
each val photo with its top-1 ranked reference) and again with each target's own ground truth as reference,
at the training size; and on the matched pairs (data/demo/matched_pairs.csv, a different photo of the same
kind of subject as reference) at the evaluation size, with the targets of the transfer model checked.
"""

from __future__ import annotations

import hashlib
import math
import platform
from datetime import date
from pathlib import Path

import torch

from ..core.files import CHECKPOINT_DIR, atomic_write
from ..data.demo_data import DEMO_DIR
from ..eval.evaluate import baseline_colorizers, prepare, run_method, variant_result
from ..eval.metrics import colorfulness
from ..eval.pair_images import TOP1
from ..profiles import EVAL_SIZE
from ..model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint, read_sidecar
from ..model.colorizer import NAMED_MODELS, TRANSFER_OPTIONS
from ..model.paper_readings import PAPER_READINGS, paper_reading_suffix
from ..train.batches import open_data
from ..train.config import profile_config
from ..train.validation import validate, validation_pairs

COLUMNS = [("psnr_ab", "PSNR(ab) ↑", "{:.2f}"), ("ciede2000", "CIEDE2000 ↓", "{:.2f}"),
           ("delta_his", "dHIS ↓", "{:.3f}")]


def card_models() -> dict[str, str]:
    """The card's rows -> the model each holds: the named models, then `super` with each paper reading
    ("super-paper-qk": checkpoints/demo-super-paper-qk, make train-ablations)."""
    return {**{model: model for model in NAMED_MODELS},
            **{"super" + paper_reading_suffix([reading]): "super" for reading in PAPER_READINGS}}


def evaluate_checkpoints(folder: Path = CHECKPOINT_DIR) -> dict[str, dict]:
    """name -> {"metrics", "sidecar", "sha256", "size_mb"} for every demo-NAME checkpoint in `folder`."""
    config = profile_config("demo")
    pairs = validation_pairs(config.data, None)
    results = {}
    for variant, expected in card_models().items():
        path = folder / f"demo-{variant}.safetensors"
        if not path.is_file():
            continue
        model = load_checkpoint(path)
        if model.config.name != expected:
            raise CheckpointError(f"{path} holds a {model.config.name!r} model, expected {expected!r}")
        torch.manual_seed(0)
        results[variant] = {
            "metrics": validate(model, pairs, config.image_size, "cpu"),
            "sidecar": read_sidecar(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size_mb": path.stat().st_size / 1e6,
        }
    return results


MATCHED = DEMO_DIR / "matched_pairs.csv"
MATCHED_COLUMNS = [("psnr_ab", "PSNR(ab) ↑", "{:.2f}"), ("ciede2000", "CIEDE2000 ↓", "{:.2f}"),
                   ("his_pred_ref", "HIS(pred, ref)", "{:.3f}"), ("colorfulness", "colourfulness", "{:.1f}")]


def evaluate_matched(models: list[str]) -> dict[str, dict[str, float]]:
    """row name -> means on the matched pairs at the evaluation size: each demo model and each baseline, and
    "ground truth" (its HIS with the reference and its colourfulness)."""
    setup = prepare("demo", pairs=MATCHED, device="cpu", log=lambda line: None)
    rows = {f"demo-{m}": variant_result(setup, m).summary() for m in models}
    for key, (_, factory) in baseline_colorizers(setup).items():
        rows[key] = run_method(setup, key, factory, TOP1, lazy=True).summary()
    any_row = next(iter(rows.values()))
    rows["ground truth"] = {"his_pred_ref": any_row["his_ref"], "pairs": any_row["pairs"],
                            "colorfulness": float(sum(colorfulness(d.truth) for d in setup.data) / len(setup.data))}
    return rows


TARGET_MODELS = ("demo-none", "demo-super")  # the models the transfer model's targets name (with the baselines)


def transfer_targets(rows: dict[str, dict[str, float]], model: str = DEFAULT_CHECKPOINT) -> list[str]:
    """The targets of the transfer model on the matched pairs, each line saying met or MISSED with figures."""
    if model not in rows:
        return []
    m, truth = rows[model], rows["ground truth"]
    others = [name for name in rows if name not in (model, "ground truth")]
    # The target (issue 11) names demo-none, demo-super and every baseline; other models are reported beside it
    rivals = [name for name in others if name in TARGET_MODELS or not name.startswith("demo-")]
    lines = []
    for key, better, label in (("psnr_ab", max, "PSNR(ab)"), ("ciede2000", min, "CIEDE2000")):
        def beats(other: str) -> bool:
            return m[key] > rows[other][key] if better is max else m[key] < rows[other][key]

        best = better(rivals, key=lambda name: rows[name][key])
        beyond = [f"{o} {rows[o][key]:.2f}" for o in others if o not in rivals and not beats(o)]
        lines.append(f"- {label}: {m[key]:.2f} against the best of demo-none, demo-super and the baselines, {best} "
                     f"{rows[best][key]:.2f}: {'met' if all(map(beats, rivals)) else 'MISSED'} (the target: better "
                     f"than each of them)." + (f" Better still: {', '.join(beyond)}." if beyond else ""))
    floor = truth["his_pred_ref"] - 0.05
    lines.append(f"- HIS(pred, ref) {m['his_pred_ref']:.3f} against HIS(ground truth, ref) - 0.05 = {floor:.3f}: "
                 f"{'met' if m['his_pred_ref'] >= floor else 'MISSED'}.")
    ratio = m["colorfulness"] / truth["colorfulness"]
    lines.append(f"- colourfulness {m['colorfulness']:.1f} = {ratio:.0%} of the ground truths' {truth['colorfulness']:.1f} "
                 f"(target 85%): {'met' if ratio >= 0.85 else 'MISSED'}.")
    return lines


def later_stages_text(config) -> str:
    """The later stages of a TrainConfig in words: "then later stages, each changing these fields: from step 1500
    to 2400, lr = 0.0001, ...; from step 2400 to 2700, lambda_chroma = 10.0", or "one stage". A stage that the run
    ends before is left out; a run without max_steps (it ends with its epochs) runs its last stage "to the end"."""
    ends = [end for _, end in config.stages(config.max_steps or math.inf)[1:]]  # where each later stage ends
    parts = [f"from step {first} to {'the end' if end == math.inf else end}, "
             + ", ".join(f"{key} = {value}" for key, value in changes.items())
             for (first, changes), end in zip(config.later_stages, ends) if end > first]  # stages with steps
    return f"then later stages, each changing these fields: {'; '.join(parts)}" if parts else "one stage"


def _row(variant: str, metrics: dict, prefix: str) -> str:
    cells = [fmt.format(metrics[f"val_{prefix}{key}"]) for key, _, fmt in COLUMNS]
    return f"| {variant} | " + " | ".join(cells) + " |"


def render(results: dict[str, dict], n_train: int, n_pairs: int,
           matched: dict[str, dict[str, float]] | None = None) -> str:
    config = profile_config("demo")
    transfer = profile_config("demo", "transfer")
    transfer_sidecar = results.get("transfer", {}).get("sidecar", {})
    calibration = transfer_sidecar.get("chroma_calibration")  # sa-calibrate-chroma's record
    gain = transfer_sidecar.get("config", {}).get("chroma_gain", 1.0)
    partner = transfer_sidecar.get("config", {}).get("blend_partner")  # ColorizerConfig.blend_partner's fields
    header = "| variant | " + " | ".join(name for _, name, _ in COLUMNS) + " |"
    rule = "|---" * (len(COLUMNS) + 1) + "|"
    lines = [
        "# Model card: the shipped demo checkpoints", "",
        "Three variants of the paper's colorizer (Table 1's ablation), four runs of `super` that each undo one of "
        "this project's departures from the paper (`demo-super-paper-*`, `make train-ablations`) and the transfer "
        "model, the default of "
        f"`sa-colorize` (`{DEFAULT_CHECKPOINT}`: the paper's `super` with five named options, another training "
        "of its references"
        + (f", blended with the paper's `{partner['variant']}` network" if partner else "")
        + " and a calibrated chroma gain, `docs/transfer.md`), trained with the `demo` profile on "
        "this project's offline demo photos. They exist so that everything runs offline on a CPU; they are NOT the "
        "paper's COCO model and their numbers are not comparable with the paper's.", "",
        "## Training", "",
        f"- Data: the {n_train} train photos of `data/demo` (see `data/demo/README.md`), targets resized to "
        f"{config.image_size}x{config.image_size}; references drawn by the paper's sampler (the target itself "
        f"with p = {config.p_self}, else one of its top-4 from `data/demo/references.json`, ranked by "
        "`sa-references --profile demo`).",
        f"- Settings (`sa-train --profile demo`): batch {config.batch_size}, {config.max_steps} steps, Adam lr "
        f"{config.lr}, betas {tuple(config.betas)}, loss {config.lambda_l1} x SmoothL1(ab) + "
        f"{config.lambda_perceptual} x effnet_feature_distance (LPIPS-VGG's weights cannot be had offline), "
        "colour encoder EfficientNet-Lite0 (ImageNet, frozen), U-Net widths "
        f"{'/'.join(map(str, config.model.widths))}.",
        "- The transfer model (`sa-train --profile demo --variant transfer`): the same settings"
        + ("" if transfer.image_size == config.image_size else
           f" at {transfer.image_size}x{transfer.image_size} (the size the matched pairs are scored at)")
        + f", {transfer.max_steps} steps, with "
        f"ColorizerConfig options {', '.join(TRANSFER_OPTIONS)}, the target itself as reference with p = "
        f"{transfer.p_self}, and every such self reference warped (flip, crop, rotation, a smooth random warp); "
        f"with p = {transfer.p_recolor} the target and its reference are first recoloured together (a random "
        f"rotation of the a*b* plane), so the colours can only come from the reference; "
        f"{later_stages_text(transfer)} (docs/transfer.md"
        + ("; lambda_chroma weighs a loss term that is not in the paper, the distance between the predicted and "
           "the true chroma distributions)." if any("lambda_chroma" in changes for _, changes in transfer.later_stages)
           else ")."),
        *(["- flip_average changes no weight: at inference the transfer model's a*b* are the mean of two passes, "
           "the images as they are and both mirrored left to right (every figure below is measured with it; "
           "`sa-colorize --flip-average off` runs one pass)."] if TRANSFER_OPTIONS.get("flip_average") else []),
        *([f"- chroma_gain {gain:g} changes no weight either: after training, `sa-calibrate-chroma` (run by `make "
           "train-demo`) fitted this global gain on the predicted a*b* so that the model's outputs on the "
           f"{calibration['pairs']} train photos, each with its top-1 ranked reference, have "
           f"{calibration['share']:.0%} of their truths' colourfulness ({calibration['share_as_trained']:.1%} "
           "without it); every figure below is measured with it, and `sa-colorize --chroma-gain 1` leaves it out."]
          if calibration and gain != 1.0 else []),
        *([f"- blend_partner: `{DEFAULT_CHECKPOINT}.safetensors` also holds a copy of the "
           f"`demo-{partner['variant']}` network's weights (`sa-calibrate-chroma --blend`, run by `make train-demo`); "
           f"at inference its a*b* are averaged with the transfer network's, each with the flip average, before the "
           "chroma gain, which was fitted on that mean (docs/transfer.md, run \"blend\"). Its steps and wall time "
           f"are `demo-{partner['variant']}`'s row; `sa-colorize --blend off` runs the transfer network alone."]
          if partner else []),
        *(["- The paper-reading ablations (`make train-ablations`, rows `super-paper-NAME`): `super`'s run, the "
           "same settings and seed, with one of this project's departures from the paper undone "
           "(`sa-train --paper-reading NAME`, docs/faithfulness.md): "
           + "; ".join(f"`{name}`, {PAPER_READINGS[name].differs}" for name in PAPER_READINGS
                       if "super" + paper_reading_suffix([name]) in results) + "."]
          if any(v.startswith("super-paper-") for v in results) else []),
        "- Machine: the project's 2-core CPU (no GPU); reproduce with `make train-demo` (deterministic on the "
        "CPU: a re-run gives the same weights up to floating-point noise).", "",
        "Wall time is that of the run that wrote the file (from its `.json` sidecar), on a machine that other "
        "work may have shared.", "",
        "| variant | steps | wall time | file | size | sha256 |", "|---|---|---|---|---|---|",
    ]
    for variant, r in results.items():
        minutes = r["sidecar"]["metrics"].get("wall_time_s", float("nan")) / 60
        lines.append(f"| {variant} | {r['sidecar']['step']} | {minutes:.0f} min | `demo-{variant}.safetensors` | "
                     f"{r['size_mb']:.1f} MB | `{r['sha256'][:16]}` |")
    lines += ["", "## Does the model use the reference?", "",
              f"Measured on the {n_pairs} demo evaluation pairs (`data/demo/eval_pairs.csv`: each val photo with "
              f"its top-1 ranked reference, never a val photo) at {config.image_size}x{config.image_size}. "
              "dHIS = |mean HIS(prediction, reference) - mean HIS(ground truth, reference)| over the pairs "
              "(`sa_lib.eval.metrics`). With the ground truth as reference, a model that uses the reference can copy "
              "the right colours; one that ignores it cannot.", "",
              "**With the ranked (different) reference**", "", header, rule,
              *[_row(v, r["metrics"], "") for v, r in results.items()], "",
              "**With the target's own ground truth as reference**", "", header, rule,
              *[_row(v, r["metrics"], "gtref_") for v, r in results.items()], ""]
    if "super" in results and "none" in results:
        s, n = results["super"]["metrics"], results["none"]["metrics"]
        lines += [
            "Differences, `super` minus `none` (measured above, not hand-written):", "",
            f"- ground-truth reference: PSNR(ab) {s['val_gtref_psnr_ab'] - n['val_gtref_psnr_ab']:+.2f} dB, "
            f"CIEDE2000 {s['val_gtref_ciede2000'] - n['val_gtref_ciede2000']:+.2f}, "
            f"dHIS {s['val_gtref_delta_his'] - n['val_gtref_delta_his']:+.3f};",
            f"- ranked reference: PSNR(ab) {s['val_psnr_ab'] - n['val_psnr_ab']:+.2f} dB, "
            f"CIEDE2000 {s['val_ciede2000'] - n['val_ciede2000']:+.2f}, "
            f"dHIS {s['val_delta_his'] - n['val_delta_his']:+.3f}.", "",
            "Reading dHIS: it compares how close the prediction's colour histogram is to the reference's with "
            "how close the ground truth's is. A model that ignores the reference (`none`) can score well on it "
            "by chance; a model that transfers the reference's colours moves HIS(prediction, reference) "
            f"{'above' if s['val_his_pred_ref'] > s['val_his_gt_ref'] else 'below'} the ground truth's "
            f"({s['val_his_pred_ref']:.3f} against {s['val_his_gt_ref']:.3f} for `super` with the ranked "
            "reference), which dHIS counts as an error in either direction.", ""]
    if matched:
        names = [n for n in matched if n != "ground truth"]
        cells = lambda row: " | ".join(fmt.format(row[key]) for key, _, fmt in MATCHED_COLUMNS)  # noqa: E731
        truth = matched["ground truth"]
        lines += ["## Colour from a different photo (matched pairs)", "",
                  f"Measured on the {truth['pairs']} matched pairs (`data/demo/matched_pairs.csv`: each val photo "
                  "with a train photo of the same kind of subject or scene, chosen by eye, the reason in a column) "
                  f"at {EVAL_SIZE}x{EVAL_SIZE}, as `sa-evaluate --profile demo --pairs data/demo/matched_pairs.csv` "
                  "measures them (its tables: `figures/matched_pairs/`).", "",
                  "| method | " + " | ".join(name for _, name, _ in MATCHED_COLUMNS) + " |",
                  "|---" * (len(MATCHED_COLUMNS) + 1) + "|",
                  *[f"| {name} | {cells(matched[name])} |" for name in names],
                  f"| ground truth | - | - | {truth['his_pred_ref']:.3f} | {truth['colorfulness']:.1f} |", "",
                  "A few of these pairs, by [17], the paper's `demo-super` and the default (written by `make paper`, "
                  "notebook 04):", "", "![matched pairs](../docs/figures/gallery_matched.jpg)", "",
                  f"Targets of the default model (`{DEFAULT_CHECKPOINT}`):", "",
                  *transfer_targets(matched), ""]
    lines += [f"Generated {date.today()} by `python -m sa_lib.cli.model_card` on {platform.machine()} "
              f"({torch.get_num_threads()} threads).", ""]
    return "\n".join(lines)


def write_model_card(out: Path = CHECKPOINT_DIR / "MODEL_CARD.md") -> Path:
    """Measure the shipped demo checkpoints and write the card to `out`; CheckpointError without any."""
    results = evaluate_checkpoints()
    if not results:
        raise CheckpointError(f"no demo checkpoints in {CHECKPOINT_DIR}; run `make train-demo` first")
    config = profile_config("demo")
    n_train, n_pairs = len(open_data(config).targets), len(validation_pairs(config.data, None))
    matched = evaluate_matched(list(results)) if MATCHED.is_file() else None
    text = render(results, n_train, n_pairs, matched)
    atomic_write(out, lambda tmp: tmp.write_text(text))
    return out
