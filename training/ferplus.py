"""FER+ crowd-sourced votes (``fer2013new.csv``) as majority labels or soft targets for the FER2013 images.

Source: Barsoum et al. (2016), "Training Deep Networks for Facial Expression Recognition with
Crowd-Sourced Label Distribution", and Microsoft's FERPlus repository (MIT licence). Ten annotators
voted per image over ``neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
unknown, NF`` (NF = not a face). Row *i* of the votes file belongs to row *i* of the FER2013 CSV.

FER+'s column order is not FER2013's: columns are mapped to FER2013 codes by name
(:func:`fer_core.emotions.emotion_code`), never by position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.emotions import NUM_CLASSES, emotion_code
from fer_core.preprocessing import PreprocessSpec
from training.data import DatasetError, FerDataset, load_fer2013_csv

#: The eight expression columns of fer2013new.csv, in the file's order.
FERPLUS_EMOTIONS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
#: Columns that do not name an expression: the row is dropped when one of them wins the vote.
FERPLUS_REJECT: tuple[str, ...] = ("unknown", "NF")
#: Ways to read the votes.
FERPLUS_MODES: tuple[str, ...] = ("majority", "soft")


def votes_to_targets(votes: pd.DataFrame, *, mode: str = "majority", contempt: str = "exclude"):
    """Turn FER+ vote counts into FER2013 targets.

    Parameters
    ----------
    votes : DataFrame
        Columns :data:`FERPLUS_EMOTIONS` and :data:`FERPLUS_REJECT` (vote counts, 0-10), any order.
    mode : {"majority", "soft"}
        ``majority``: the class with the most votes (plurality), rows with a tie for the most votes
        dropped; ``soft``: the vote distribution over the seven classes (unknown and NF votes removed,
        renormalised), for training with soft targets as in Barsoum et al.'s "probabilistic label
        drawing"/cross-entropy schemes.
    contempt : str, default "exclude"
        ``"exclude"``: rows whose winner is contempt are dropped, and contempt votes are removed from
        soft targets; or a FER2013 class name (e.g. ``"disgust"``): contempt votes are added to it.

    Returns
    -------
    keep : ndarray of shape (N,), bool
        Rows with a usable target.
    labels : ndarray of shape (N,), int64
        FER2013 codes (meaningful where ``keep``).
    soft : ndarray of shape (N, 7), float32 or None
        Vote distributions in FER2013 order (``mode="soft"`` only).
    report : dict
        Rows dropped because unknown or NF won, because contempt won, and for ties.

    Raises
    ------
    ValueError
        If ``mode`` or ``contempt`` is invalid or a column is missing.
    """
    if mode not in FERPLUS_MODES:
        raise ValueError(f"mode has to be one of {FERPLUS_MODES}; got {mode!r}")
    fold_to = None
    if contempt != "exclude":
        try:
            fold_to = emotion_code(contempt)
        except KeyError:
            raise ValueError(f"contempt has to be 'exclude' or a FER2013 class name; got {contempt!r}") from None
    missing = [c for c in (*FERPLUS_EMOTIONS, *FERPLUS_REJECT) if c not in votes.columns]
    if missing:
        raise ValueError(f"FER+ votes lack column(s) {missing}; columns are {list(votes.columns)}")
    counts = votes[list(FERPLUS_EMOTIONS[:-1])].to_numpy(dtype=np.float32)
    fer = np.zeros((len(votes), NUM_CLASSES), np.float32)
    for j, name in enumerate(FERPLUS_EMOTIONS[:-1]):
        fer[:, emotion_code(name)] = counts[:, j]
    contempt_votes = votes["contempt"].to_numpy(dtype=np.float32)
    reject = votes[list(FERPLUS_REJECT)].to_numpy(dtype=np.float32).max(axis=1)
    if fold_to is not None:
        fer[:, fold_to] += contempt_votes
        contempt_votes = np.zeros_like(contempt_votes)
    best = fer.max(axis=1)
    top = np.maximum(best, contempt_votes)
    rejected = reject >= top  # unknown or NF has (or shares) the most votes, or no votes at all
    contempt_won = ~rejected & (contempt_votes >= best) & (contempt_votes > 0)
    tied = ~rejected & ~contempt_won & ((fer == best[:, None]).sum(axis=1) > 1)
    report = {
        "ferplus_unknown_or_nf": int(rejected.sum()),
        "ferplus_contempt": int(contempt_won.sum()),
        "ferplus_tied": 0,
    }
    if mode == "majority":
        keep = ~rejected & ~contempt_won & ~tied
        report["ferplus_tied"] = int(tied.sum())
        return keep, fer.argmax(axis=1).astype(np.int64), None, report
    keep = ~rejected & ~contempt_won & (fer.sum(axis=1) > 0)
    soft = fer / np.maximum(fer.sum(axis=1, keepdims=True), 1.0)
    return keep, soft.argmax(axis=1).astype(np.int64), soft.astype(np.float32), report


def load_ferplus(
    csv_path: str | Path,
    votes_path: str | Path,
    *,
    mode: str = "majority",
    contempt: str = "exclude",
    spec: PreprocessSpec | None = None,
    usage: str | list[str] | None = None,
    skip_malformed: bool = False,
) -> FerDataset:
    """Load FER2013 images with FER+ labels (row *i* of ``votes_path`` belongs to data row *i* of ``csv_path``).

    Parameters
    ----------
    csv_path : str or Path
        The FER2013 Kaggle CSV (images).
    votes_path : str or Path
        ``fer2013new.csv``.
    mode, contempt : str
        See :func:`votes_to_targets`.
    spec, usage, skip_malformed
        As for :func:`training.data.load_fer2013_csv`.

    Returns
    -------
    FerDataset
        ``labels`` are FER+ labels (FER2013 codes); ``soft_labels`` are set in ``soft`` mode.
        ``report`` adds the rows dropped by FER+ (``ferplus_unknown_or_nf``, ``ferplus_contempt``,
        ``ferplus_tied``) and ``ferplus_relabelled`` (kept rows whose FER+ label differs from FER2013's).

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    DatasetError
        If the two files do not have the same number of data rows, or their ``Usage`` columns disagree
        on some row (the files are not aligned).
    """
    votes_path = Path(votes_path)
    if not votes_path.is_file():
        raise FileNotFoundError(f"{votes_path}: FER+ votes file not found")
    data = load_fer2013_csv(csv_path, spec=spec, skip_malformed=skip_malformed)
    votes = pd.read_csv(votes_path)
    votes.columns = [c.strip() for c in votes.columns]
    if len(votes) != data.report["rows"]:
        raise DatasetError(
            f"{votes_path}: {len(votes)} vote rows but {csv_path} has {data.report['rows']} data rows; "
            "the FER+ file has to be aligned row by row with the FER2013 CSV"
        )
    try:
        keep, labels, soft, report = votes_to_targets(votes, mode=mode, contempt=contempt)
    except ValueError as exc:
        raise DatasetError(f"{votes_path}: {exc}") from exc
    rows = np.array([int(s.rsplit(":", 1)[1]) - 1 for s in data.source_ids], dtype=np.int64)
    if "Usage" in votes.columns and len(rows):
        usage_votes = votes["Usage"].astype(str).str.strip().to_numpy()[rows]
        bad = np.flatnonzero(usage_votes != data.splits.astype(str))
        if len(bad):
            row = rows[bad[0]] + 1
            raise DatasetError(
                f"{votes_path}: row {row} has Usage {usage_votes[bad[0]]!r} but {csv_path} row {row} has "
                f"{data.splits[bad[0]]!r}; the files are not aligned ({len(bad)} rows disagree)"
            )
    selected = keep[rows]
    if usage is not None:
        wanted = [usage] if isinstance(usage, str) else list(usage)
        selected &= np.isin(data.splits.astype(str), wanted)
    out = data.subset(selected)
    out.labels = labels[rows][selected]
    if soft is not None:
        out.soft_labels = soft[rows][selected]
    out.report.update(report)
    out.report["ferplus_relabelled"] = int((out.labels != data.labels[selected]).sum())
    out.report["ferplus_mode"] = mode
    return out

