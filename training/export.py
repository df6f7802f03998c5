"""Export a training run as a shipped model: the best checkpoint, its metadata, plots and a model card.

``python -m training export --run RUNDIR --out fer_core/models/fer2013_cnn.keras [--tflite] [--card PATH]``
reads ``RUNDIR/config.json``, ``best.keras`` and ``history.csv``, evaluates the best model on the
validation split (with and without the images that also appear in the training split, with and
without test-time augmentation), and writes the model with its metadata (classes, preprocessing,
data hash, metrics, training command and duration), the plots and a Markdown model card.

``--ensemble-with MODEL`` (repeatable) ships the mean ensemble of the run's best network and other
exported model files of the same preprocessing and training data (:func:`training.models.average_ensemble`):
one ``.keras`` file that the core serves like a single network.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import fields
from pathlib import Path

from fer_core.classifier import convert_litert, embed_litert
from fer_core.model_file import ModelFileError, check_metadata, read_metadata, write_metadata
from training.card import write_model_card

#: Test-time augmentation used for the reported "TTA" metrics (see :func:`training.evaluate.tta_views`).
TTA_DESCRIPTION = "mean of 6 views: image, horizontal mirror, 4 copies shifted by 8% of the side towards the corners"
#: What ``export --mirror-tta`` builds into the shipped network (:func:`training.models.mirror_average`).
MIRROR_DESCRIPTION = ("the network's output is the mean of its probabilities for the face and for its horizontal "
                      "mirror, computed inside the model file (flip test-time augmentation; twice the cost per face)")


def load_run_config(run_dir: Path):
    """Read ``run_dir/config.json`` into a :class:`training.train.TrainConfig` (unknown keys are an error).

    Raises
    ------
    FileNotFoundError
        If the run folder has no ``config.json``.
    ValueError
        If the config holds keys this code does not know.
    """
    from training.train import TrainConfig

    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a training run (no config.json)")
    saved = json.loads(path.read_text())
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise ValueError(f"{path}: unknown config keys {unknown}")
    return TrainConfig.from_saved(saved)


def reconstruct_command(config) -> str:
    """Return a ``python -m training train`` command line that reproduces ``config`` (non-default flags only)."""
    from training.train import TrainConfig

    default = TrainConfig()
    parts = ["python", "-m", "training", "train"]
    for f in fields(TrainConfig):
        value = getattr(config, f.name)
        if value == getattr(default, f.name) or f.name == "verbose":
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
        elif isinstance(value, list):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def training_provenance(run_dir: Path, config) -> dict:
    """Return the run's training command and duration (seconds), from the best source available.

    Sources in order: ``run.json`` (written by :func:`training.train.train`, durations summed over
    resumed invocations), the metadata of ``model.keras`` written at the end of training, and
    finally a command rebuilt from ``config.json`` with no duration.
    """
    runs_file = run_dir / "run.json"
    if runs_file.is_file():
        runs = json.loads(runs_file.read_text())
        return {"command": runs[0]["command"], "duration_s": round(sum(r["duration_s"] for r in runs), 1),
                "invocations": len(runs), "source": "run.json"}
    model_file = run_dir / "model.keras"
    if model_file.is_file():
        training = read_metadata(model_file).get("training", {})
        if "command" in training:
            return {"command": training["command"], "duration_s": training.get("duration_s"),
                    "invocations": 1, "source": "model.keras metadata"}
    return {"command": reconstruct_command(config), "duration_s": estimated_duration(run_dir), "invocations": None,
            "source": "command rebuilt from config.json; duration from TensorBoard event file names to history.csv"}


def estimated_duration(run_dir: Path) -> float | None:
    """Estimate a run's wall time in seconds: first TensorBoard event file's start time to ``history.csv``'s mtime.

    TensorBoard names its files ``events.out.tfevents.<unix seconds>.<host>...``; a resumed run adds
    the time it was stopped. Returns None when either is missing.
    """
    starts = []
    for path in (run_dir / "tensorboard").rglob("events.out.tfevents.*"):
        field = path.name.split(".")[3]
        if field.isdigit():
            starts.append(int(field))
    history = run_dir / "history.csv"
    if not starts or not history.is_file():
        return None
    return round(history.stat().st_mtime - min(starts), 1)


def _summary(metrics: dict) -> dict:
    """Accuracy, macro F1, n, ECE and NLL of :func:`training.evaluate.classification_metrics`, rounded for metadata."""
    return {"n": metrics["n"], **{key: round(metrics[key], 4) for key in ("accuracy", "macro_f1", "ece", "nll")}}


def evaluate_run_model(model, config, *, tta: bool = True, members: list | None = None, single_view=None) -> dict:
    """Evaluate a model on the run's validation split, with and without the images also in the training split.

    Parameters
    ----------
    model : keras.Model
        Takes (N, S, S, C) float32 pixel values 0-255, returns (N, 7) probabilities.
    config : TrainConfig
        The run's configuration: data path, FER+ options, preprocessing, ``train_split`` and ``val_split``.
    tta : bool, default True
        Also evaluate with test-time augmentation (:func:`training.evaluate.tta_views`).
    members : list of keras.Model, optional
        When ``model`` is an ensemble, its members, each scored on its own (no TTA) for comparison.
    single_view : keras.Model, optional
        When ``model`` is wrapped by :func:`training.models.mirror_average`, the unwrapped network,
        scored on all images and without the overlap (no TTA).

    Returns
    -------
    dict
        ``{"all": metrics, "no_overlap": metrics, "all_tta": ..., "no_overlap_tta": ..., "n_overlap": int,
        "split": name}`` with :func:`training.evaluate.classification_metrics` results; with ``members``
        also ``"members"``: one ``{"accuracy", "macro_f1", "n"}`` summary per member, on all images; with
        ``single_view`` also ``"single_view"``: ``{"all": metrics, "no_overlap": metrics}``.

    Raises
    ------
    FileNotFoundError, training.data.DatasetError
        If ``config.data`` is missing or malformed (:func:`training.data.load_dataset`).
    KeyError
        If the data has no ``val_split`` or ``train_split`` (:meth:`training.data.FerDataset.split`).
    """
    from training.cleaning import overlap_mask
    from training.data import load_dataset
    from training.evaluate import classification_metrics, predict_probabilities

    ferplus = config.ferplus if config.ferplus_mode != "none" else None
    data = load_dataset(config.data, spec=config.spec(), ferplus=ferplus, ferplus_mode=config.ferplus_mode,
                        contempt=config.ferplus_contempt, skip_malformed=config.skip_malformed,
                        skip_unknown=config.skip_unknown)
    val = data.split(config.val_split)
    overlap = overlap_mask(val, data.split(config.train_split))
    results = {"split": config.val_split, "n_overlap": int(overlap.sum())}
    for suffix, use_tta in (("", False), ("_tta", True)) if tta else (("", False),):
        probs = predict_probabilities(model, val.images, tta=use_tta)
        results["all" + suffix] = classification_metrics(val.labels, probs)
        results["no_overlap" + suffix] = classification_metrics(val.labels[~overlap], probs[~overlap])
    if members:
        results["members"] = [_summary(classification_metrics(val.labels, predict_probabilities(m, val.images)))
                              for m in members]
    if single_view is not None:
        probs = predict_probabilities(single_view, val.images)
        results["single_view"] = {"all": classification_metrics(val.labels, probs),
                                  "no_overlap": classification_metrics(val.labels[~overlap], probs[~overlap])}
    return results


def weights_sha256(model) -> str:
    """SHA-256 (hex) over a network's weight arrays in order: identifies the weights, whatever file holds them.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    str
        64 hex digits; equal for two models exactly when their weights are equal (shapes, dtypes, values).
    """
    import hashlib

    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def load_ensemble_members(paths, config) -> tuple[list, list[dict]]:
    """Load model files that join a run's network in a shipped ensemble, and check them.

    Parameters
    ----------
    paths : sequence of str or Path
        Model files with metadata, written by ``python -m training train`` (a run's ``model.keras``)
        or ``export``.
    config : TrainConfig
        The run's configuration; every member must share its preprocessing, training data and splits.

    Returns
    -------
    (models, records)
        The Keras models, and per member a metadata record (``file``, ``weights_sha256`` (:func:`weights_sha256` of the network
        without a built-in mirror, :func:`training.models.unwrap_mirror`),
        ``architecture``, ``parameters``, ``command``, ``duration_s``, ``seed``, ``metrics``) stored in
        the ensemble's metadata.

    Raises
    ------
    ModelFileError
        If a file is missing, unreadable or has no valid metadata, is itself an ensemble, or its
        preprocessing, training data hash (``training.data_sha256``), training split or validation
        split differs from the run's (a member trained on the run's validation split would inflate
        the reported accuracy).
    """
    import keras

    from training.data import dataset_sha256
    from training.models import unwrap_mirror

    data_hash = dataset_sha256(config.data)
    models, records = [], []
    for path in map(Path, paths):
        metadata = read_metadata(path)
        spec = check_metadata(metadata, source=str(path))
        if spec != config.spec():
            raise ModelFileError(f"{path}: preprocessing {spec.to_dict()} differs from the run's "
                                 f"{config.spec().to_dict()}; ensemble members must share one")
        if "ensemble" in metadata:
            raise ModelFileError(f"{path}: is itself an ensemble; pass its members' model files instead")
        training = metadata.get("training", {})
        if training.get("data_sha256") != data_hash:
            raise ModelFileError(f"{path}: trained on data with SHA-256 {training.get('data_sha256')}, "
                                 f"not the run's {config.data} ({data_hash}); ensemble members must share it")
        splits = (training.get("train_split"), training.get("val_split"))
        if splits != (config.train_split, config.val_split):
            raise ModelFileError(f"{path}: trained on {splits[0]!r} and selected on {splits[1]!r}, the run on "
                                 f"{config.train_split!r} and {config.val_split!r}; ensemble members must share them")
        try:
            models.append(keras.models.load_model(path, compile=False))
        except Exception as exc:  # Keras raises many types for a damaged archive
            raise ModelFileError(f"{path}: cannot load the Keras model ({type(exc).__name__}: {exc})") from exc
        records.append({
            "file": str(path),
            # the network's weights without a built-in mirror, so one network mirrored or not is one member
            "weights_sha256": weights_sha256(unwrap_mirror(models[-1])),
            "architecture": metadata.get("architecture"),
            "parameters": metadata.get("parameters"),
            "command": training.get("command"),
            "duration_s": training.get("duration_s"),
            "seed": training.get("config", {}).get("seed"),
            "metrics": {k: v for k, v in metadata.get("metrics", {}).items() if not isinstance(v, (dict, list))},
        })
    return models, records


def export_run(
    run_dir: str | Path,
    out: str | Path,
    *,
    card: str | Path | None = None,
    tflite: bool = False,
    tta: bool = True,
    command: str | None = None,
    duration_s: float | None = None,
    ensemble_with=(),
    mirror_tta: bool = False,
    notes: str | Path | None = None,
) -> dict:
    """Export a run's best model with metadata, plots and model card (what ``python -m training export`` runs).

    Parameters
    ----------
    run_dir : str or Path
        Training run folder with ``config.json``, ``best.keras`` and ``history.csv``.
    out : str or Path
        Model file to write (``.keras``).
    card : str or Path, optional
        Markdown model card; default ``out`` with suffix ``.md``. Plots are written beside it.
    tflite : bool
        Also write a LiteRT copy (``out`` with suffix ``.tflite``).
    tta : bool
        Also report metrics with test-time augmentation.
    command, duration_s : optional
        Override the training command and duration found by :func:`training_provenance`. For an
        ensemble they default to the members' commands joined by ``&&`` (the run's last) and their
        summed durations (None if one is unknown).
    ensemble_with : sequence of str or Path, optional
        Exported model files to average with the run's best network (:func:`load_ensemble_members`);
        the file written is then their mean ensemble (:func:`training.models.average_ensemble`) and
        its metadata lists the members under ``ensemble``. ``out`` may be one of them (e.g. the shipped
        model): members are loaded first and ``out`` is replaced only once the new file is complete.
    mirror_tta : bool
        Ship the network (or ensemble) wrapped by :func:`training.models.mirror_average` (ensemble
        members that have the mirror built in join it unwrapped, :func:`training.models.unwrap_mirror`,
        so no member is mirrored twice; their record says ``mirror_unwrapped``): its output is
        the mean over the face and its horizontal mirror (flip test-time augmentation inside the model
        file, at twice the cost per face). The metadata then also records the unwrapped network's
        figures under ``metrics.single_view``.
    notes : str or Path, optional
        UTF-8 Markdown file whose text goes into the card after its opening paragraph: what the
        generated sections cannot know (the model's status, the stages of a chained run, what was
        tried and not shipped). Without it the card has no such text, so a card is regenerated from
        its run folder and its notes file, never edited by hand.

    Returns
    -------
    dict
        The metadata written into ``out``.

    Raises
    ------
    FileNotFoundError
        If the run has no ``config.json`` or ``best.keras``, or ``notes`` does not exist.
    ValueError
        If ``notes`` is not UTF-8 text.
    ModelFileError
        If the metadata does not pass :func:`fer_core.model_file.check_metadata`, an
        ``ensemble_with`` file does not fit (:func:`load_ensemble_members`), or two members have the
        same weights.
    """
    import keras

    from training.models import multiply_adds
    from training.plots import plot_confusion_matrix, plot_history, plot_per_class_recall
    from training.train import model_metadata

    started = time.time()
    run_dir, out = Path(run_dir), Path(out)
    card = Path(card) if card else out.with_suffix(".md")
    note_text = None
    if notes is not None:
        if not Path(notes).is_file():
            raise FileNotFoundError(f"notes: {notes} does not exist")
        try:
            note_text = Path(notes).read_text(encoding="utf-8").strip()
        except UnicodeDecodeError as exc:
            raise ValueError(f"notes: {notes} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    config = load_run_config(run_dir)
    best_path = run_dir / "best.keras"
    if not best_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no best.keras checkpoint (has the run finished an epoch?)")
    model = keras.models.load_model(best_path, compile=False)
    if config.precision != "float32":  # an unfinished mixed-precision run's checkpoint
        from training.train import float32_copy

        model = float32_copy(model, config)
    provenance = training_provenance(run_dir, config)
    members, ensemble = [], None
    if ensemble_with:
        from training.models import average_ensemble

        others, records = load_ensemble_members(ensemble_with, config)
        records.insert(0, {"file": str(best_path), "weights_sha256": weights_sha256(model),
                           "architecture": config.arch, "parameters": int(model.count_params()),
                           "command": provenance["command"], "duration_s": provenance["duration_s"],
                           "seed": config.seed})
        seen = {}
        for record in records:
            if record["weights_sha256"] in seen:
                raise ModelFileError(f"{record['file']}: same weights as {seen[record['weights_sha256']]}; "
                                     "an ensemble member may appear only once")
            seen[record["weights_sha256"]] = record["file"]
        if mirror_tta:  # the whole ensemble gets the mirror: a member that has it built in is not mirrored twice
            from training.models import unwrap_mirror

            for record, other in zip(records[1:], others, strict=True):
                record["mirror_unwrapped"] = unwrap_mirror(other) is not other
            others = [unwrap_mirror(other) for other in others]
        members = [model, *others]
        model = average_ensemble(members)
        ensemble = {"combination": "mean of the members' softmax probabilities", "members": records}
        # by default the training record covers every member: their commands in order, their summed durations
        provenance.update(command=" && ".join(str(r["command"]) for r in records[1:] + records[:1]),
                          duration_s=(sum(r["duration_s"] for r in records)
                                      if all(r["duration_s"] is not None for r in records) else None),
                          source="the ensemble members' records")
    single_view = None
    if mirror_tta:
        from training.models import mirror_average

        single_view, model = model, mirror_average(model)
    evaluation = evaluate_run_model(model, config, tta=tta, members=members or None, single_view=single_view)
    if ensemble:
        for record, summary in zip(ensemble["members"], evaluation["members"], strict=True):
            record[f"{evaluation['split']}_accuracy"] = summary["accuracy"]
    if command:
        provenance.update(command=command, source="given to export")
    if duration_s is not None:
        provenance.update(duration_s=float(duration_s))

    data_report = run_dir / "data_report.json"
    cleaning = json.loads(data_report.read_text())["report"].get("cleaning", {}) if data_report.is_file() else {}
    # what weight averaging did in this run (training.train._finish_swa), for the card; absent without SWA
    run_model = run_dir / "model.keras"
    swa = read_metadata(run_model).get("metrics", {}).get("swa") if config.swa_start and run_model.is_file() else None
    # temperature scaling fitted by the run (training.calibration.calibrate_model); absent without a hold-out
    calibration = (read_metadata(run_model).get("metrics", {}).get("calibration")
                   if getattr(config, "calibration_fraction", 0) and run_model.is_file() else None)

    out.parent.mkdir(parents=True, exist_ok=True)
    # written under a temporary name and moved into place once complete, so a failure never leaves a
    # half-written model at ``out`` (which may also have been one of the ensemble's members)
    final_out, out = out, out.with_name(f".{out.stem}.partial.keras")
    try:
        model.save(out)
        split = evaluation["split"]
        metrics = {f"{split}_accuracy": round(evaluation["all"]["accuracy"], 4)}
        for key in ("all", "no_overlap", "all_tta", "no_overlap_tta"):
            if key in evaluation:
                metrics[key] = _summary(evaluation[key])
        metrics["n_overlap_with_" + config.train_split] = evaluation["n_overlap"]
        if "single_view" in evaluation:
            metrics["single_view"] = {key: _summary(value) for key, value in evaluation["single_view"].items()}
        if calibration:
            metrics["calibration"] = calibration
        metrics["per_class"] = evaluation["all"]["per_class"]
        metrics["confusion_matrix"] = evaluation["all"]["confusion_matrix"]
        metadata = model_metadata(
            config,
            model,
            command=provenance["command"],
            duration_s=provenance["duration_s"],
            metrics=metrics,
            val_split=split,
            training_extra={"cleaning": cleaning, "provenance": provenance["source"], **({"swa": swa} if swa else {})},
            extra={"tta": TTA_DESCRIPTION, "card": card.name, "exported_from": str(run_dir),
                   "multiply_adds_per_face": multiply_adds(model),
                   **({"ensemble": ensemble} if ensemble else {}),
                   **({"mirror_tta": MIRROR_DESCRIPTION} if mirror_tta else {})},
        )
        write_metadata(out, metadata)
        # The core's default LiteRT runner then loads without TensorFlow (fer_core.classifier.embed_litert).
        embed_litert(out)
        out = out.replace(final_out)
    except BaseException:
        out.unlink(missing_ok=True)
        raise

    card.parent.mkdir(parents=True, exist_ok=True)
    stem = out.stem
    plots = {}
    if (run_dir / "history.csv").is_file():
        plots["history"] = plot_history(run_dir / "history.csv", card.parent / f"{stem}_history.png")
    plots["confusion"] = plot_confusion_matrix(evaluation["all"]["confusion_matrix"],
                                               card.parent / f"{stem}_confusion.png",
                                               title=f"confusion matrix ({split}, n={evaluation['all']['n']})")
    plots["recall"] = plot_per_class_recall(evaluation["all"]["per_class"], card.parent / f"{stem}_recall.png",
                                            title=f"recall per class ({split})")
    if tflite:
        out.with_suffix(".tflite").write_bytes(convert_litert(out, ("litert",))["litert"])
    write_model_card(card, metadata=metadata, evaluation=evaluation, plots=plots, model_file=out,
                     tflite=out.with_suffix(".tflite") if tflite else None, notes=note_text)
    print(f"exported {out} ({split} accuracy {evaluation['all']['accuracy']:.4f}) and {card} "
          f"in {time.time() - started:.0f} s", flush=True)
    return metadata
