"""PNG plots of a training run and an evaluation, drawn with matplotlib's object API (no pyplot state).

- :func:`plot_history`: training and validation loss and accuracy per epoch from Keras' ``history.csv``
  (the seed projects' "graph depicting the model's performance");
- :func:`plot_confusion_matrix`: row-normalised confusion matrix with counts;
- :func:`plot_per_class_recall`: recall per class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fer_core.emotions import EMOTIONS


def plot_history(history_csv: str | Path, out_png: str | Path) -> Path:
    """Plot loss and accuracy per epoch, training and validation, from a ``CSVLogger`` file.

    A resumed run can log an epoch twice; the last row of each epoch is kept.

    Raises
    ------
    ValueError
        If the file lacks an ``epoch``, ``loss`` or ``accuracy`` column.
    """
    history = pd.read_csv(history_csv)
    missing = {"epoch", "loss", "accuracy"} - set(history.columns)
    if missing:
        raise ValueError(f"{history_csv}: missing column(s) {sorted(missing)}; columns are {list(history.columns)}")
    history = history.drop_duplicates("epoch", keep="last").sort_values("epoch")
    epochs = history["epoch"].to_numpy() + 1
    fig = Figure(figsize=(10, 4), dpi=100)
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(epochs, history[metric], marker="o", ms=3, label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png)
    return Path(out_png)


def plot_confusion_matrix(matrix, out_png: str | Path, *, title: str = "confusion matrix") -> Path:
    """Plot a 7x7 confusion matrix (rows true class, columns predicted), shaded by row-normalised recall.

    Parameters
    ----------
    matrix : array-like of shape (7, 7), int
        Counts in FER2013 order.
    out_png : str or Path
        Where the PNG is written.

    Returns
    -------
    Path
        ``out_png``.

    Raises
    ------
    ValueError
        If ``matrix`` is not 7x7.
    """
    counts = np.asarray(matrix, dtype=float)
    if counts.shape != (len(EMOTIONS), len(EMOTIONS)):
        raise ValueError(f"matrix has to be {len(EMOTIONS)}x{len(EMOTIONS)}; got shape {counts.shape}")
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    fig = Figure(figsize=(6.5, 5.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(out_png)
    return Path(out_png)


def plot_per_class_recall(per_class: dict, out_png: str | Path, *, title: str = "recall per class") -> Path:
    """Plot recall per class as bars, with the support in each label.

    Parameters
    ----------
    per_class : dict
        Class name -> {"recall": float, "support": int, ...} (``classification_metrics()["per_class"]``).
    """
    names = [n for n in EMOTIONS if n in per_class]
    recalls = [per_class[n]["recall"] for n in names]
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar([f"{n}\n(n={per_class[n]['support']})" for n in names], recalls, color="tab:blue")
    for i, r in enumerate(recalls):
        ax.text(i, r + 0.01, f"{r:.2f}", ha="center", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("recall")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png)
    return Path(out_png)
