"""What the Model page shows, taken apart from a model file's metadata and the files beside it."""

from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import NamedTuple

from fer_core.emotions import EMOTIONS

#: Per-class entries that are counts, not scores (left out of the per-class chart).
COUNT_KEYS: frozenset[str] = frozenset({"support", "n"})


class MetricParts(NamedTuple):
    """A model's ``metrics`` metadata sorted by how it is drawn.

    Attributes
    ----------
    scalars : dict of str to float
        Single figures (accuracy, macro F1...), flattened with ``/`` from nested sections.
    per_class : dict of str to dict of str to float
        ``{class: {figure: value}}`` for the seven classes.
    confusion : list of list of float or None
        7x7 confusion matrix (rows: true class).
    history : dict of str to list of float
        Per-epoch training curves.
    """

    scalars: dict[str, float]
    per_class: dict[str, dict[str, float]]
    confusion: list[list[float]] | None
    history: dict[str, list[float]]


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def split_metrics(metrics: dict, prefix: str = "") -> MetricParts:
    """Sort a metadata ``metrics`` mapping into scalars, per-class figures, confusion matrix and curves.

    Any nesting is accepted: a key naming the confusion matrix (``confusion*``) holding a 7x7 list,
    a mapping whose keys are the seven classes (per-class figures), a mapping of equal-length number
    lists (training history), numbers anywhere else (scalars, named by their path).
    """
    scalars: dict[str, float] = {}
    per_class: dict[str, dict[str, float]] = {}
    confusion = None
    history: dict[str, list[float]] = {}
    for key, value in (metrics or {}).items():
        name = f"{prefix}{key}"
        if _is_number(value):
            scalars[name] = float(value)
        elif "confusion" in str(key).lower() and isinstance(value, list) and len(value) == len(EMOTIONS):
            confusion = value
        elif isinstance(value, dict) and value and set(value) <= set(EMOTIONS) and all(isinstance(v, dict) for v in value.values()):
            per_class.update({c: {k: float(v) for k, v in figs.items() if _is_number(v) and k not in COUNT_KEYS} for c, figs in value.items()})
        elif isinstance(value, dict) and value and set(value) <= set(EMOTIONS) and all(_is_number(v) for v in value.values()):
            for c, v in value.items():
                per_class.setdefault(c, {})[str(key)] = float(v)
        elif isinstance(value, dict) and value and all(isinstance(v, list) and all(_is_number(x) for x in v) for v in value.values()):
            history.update({f"{name}/{k}" if prefix else k: [float(x) for x in v] for k, v in value.items()})
        elif isinstance(value, dict):
            inner = split_metrics(value, prefix=f"{name}/")
            scalars.update(inner.scalars)
            for c, figs in inner.per_class.items():
                per_class.setdefault(c, {}).update(figs)
            confusion = confusion if inner.confusion is None else inner.confusion
            history.update(inner.history)
    return MetricParts(scalars, per_class, confusion, history)


def card_files(folder: Path) -> tuple[Path | None, list[Path]]:
    """The model card (first ``*.md`` in ``folder``) and the plots (``*.png``, sorted) beside the model."""
    if not folder.is_dir():
        return None, []
    cards = sorted(folder.glob("*.md"))
    return (cards[0] if cards else None), sorted(folder.glob("*.png"))
