"""What the Model page shows, taken apart from a model file's metadata and the files beside it."""

from __future__ import annotations

import glob
import re
from numbers import Real
from pathlib import Path
from typing import NamedTuple

from fer_core.emotions import EMOTIONS
from fer_core.model_file import FIGURE_WORDS, figure_name  # noqa: F401 - the words are the metadata's, re-exported

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


def card_files(model: Path) -> tuple[Path | None, list[Path]]:
    """The model card of the model file ``model`` and its plots (sorted), or ``(None, [])`` when it has none.

    ``training export`` writes the card as the model's name with ``.md`` and its plots beside it as
    ``<model name>_<kind>.png``; other models' cards and plots in the same folder are not this model's.
    """
    card = model.with_suffix(".md")
    if not card.is_file():
        return None, []
    return card, sorted(model.parent.glob(f"{glob.escape(model.stem)}_*.png"))


def analysing_model(paths: list[Path], model_ids) -> Path | None:
    """Of the configured model files ``paths`` (offline first), the one that analysed sessions recorded with ``model_ids``.

    ``model_ids`` are the sessions' stored model ids (``fer_core.classifier.model_file_id``: file name and
    digest). With no id recorded the first path is returned; with ids of none of the files, None (a report then
    shows no other model's figures). Unreadable files are passed over.
    """
    from fer_core.classifier import model_file_id

    ids = {str(i) for i in model_ids}
    if not ids:
        return paths[0] if paths else None
    for path in dict.fromkeys(paths):
        try:
            if model_file_id(path) in ids:
                return path
        except OSError:
            continue
    return None


#: Evaluation keys of ``training.export``'s metadata, in words.
EVALUATION_WORDS: dict[str, str] = {
    "all": "PublicTest, all images",
    "no_overlap": "PublicTest without the images also in Training",
    "single_view": "the network alone (one view)",
}
#: Kinds of card image (by the end of the file name) in words.
IMAGE_WORDS: dict[str, str] = {
    "history": "Training curves (accuracy and loss per epoch)",
    "confusion": "Confusion matrix on PublicTest (rows: true class)",
    "recall": "Recall per class on PublicTest",
}


def evaluation_name(path: str) -> str:
    """An evaluation key path in words: ``"no_overlap_tta"`` -> ``"PublicTest without the images also in Training,
    with 6-view test-time augmentation"``; ``"single_view/all"`` -> ``"PublicTest, all images; the network alone
    (one view)"``."""
    parts = []
    for part in reversed([p for p in path.split("/") if p]):
        tta = part.endswith("_tta")
        base = part[: -len("_tta")] if tta else part
        words = EVALUATION_WORDS.get(base, base.replace("_", " "))
        parts.append(words + (", with 6-view test-time augmentation" if tta else ""))
    return "; ".join(parts) or "all"


def format_figure(key: str, value: float) -> str:
    """Accuracies as percentages with one decimal, counts as integers, other scores with three decimals."""
    leaf = key.rsplit("/", 1)[-1]
    if leaf == "n" or leaf.startswith("n_") or (float(value).is_integer() and value > 1):
        return f"{int(value):,}"
    if "accuracy" in leaf:
        return f"{value:.1%}"
    return f"{value:.3f}"


def figure_tables(scalars: dict[str, float]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The scalars of :func:`split_metrics` as the Model page shows them.

    Returns
    -------
    headline : dict of str to str
        Top-level figures (no ``/`` in the key), name in words to formatted value.
    rows : list of dict
        One row per evaluation (``"all/accuracy"``, ``"all/macro_f1"``... grouped by ``"all"``): ``evaluation`` in
        words, then one formatted column per figure (``images``, ``accuracy``, ``macro F1``).
    """
    headline, grouped = {}, {}
    for key, value in scalars.items():
        if "/" not in key:
            headline[figure_name(key)] = format_figure(key, value)
            continue
        path, leaf = key.rsplit("/", 1)
        grouped.setdefault(path, {})[figure_name(leaf)] = format_figure(leaf, value)
    rows = [{"evaluation": evaluation_name(path), **figs} for path, figs in grouped.items()]
    return headline, rows


class CardPart(NamedTuple):
    """A piece of the model card in reading order: Markdown text, or an image file with its caption."""

    kind: str  # "markdown" or "image"
    text: str  # the Markdown, or the caption in words
    path: Path | None = None


_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def image_caption(path: Path, alt: str = "") -> str:
    """A card image's caption in words (:data:`IMAGE_WORDS` by the end of its name, else its alt text)."""
    for kind, words in IMAGE_WORDS.items():
        if path.stem.endswith(kind):
            return words
    return alt or path.stem.replace("_", " ")


def card_parts(card: Path | None, images: list[Path]) -> list[CardPart]:
    """The card's Markdown split at its image references, each image once, in place; images beside the model that
    the card does not reference come last. References to files that do not exist beside the card are dropped
    (a browser could not load them: a relative link is no URL the dashboard serves)."""
    parts: list[CardPart] = []
    shown: set[Path] = set()
    if card is not None:
        text = card.read_text(encoding="utf-8")
        position = 0
        for match in _IMAGE.finditer(text):
            parts.append(CardPart("markdown", text[position : match.start()]))
            target = (card.parent / match.group(2)).resolve()
            if target.is_file() and target not in shown and target.parent == card.parent.resolve():
                parts.append(CardPart("image", image_caption(target, match.group(1)), target))
                shown.add(target)
            position = match.end()
        parts.append(CardPart("markdown", text[position:]))
    for image in images:
        if image.resolve() not in shown:
            parts.append(CardPart("image", image_caption(image), image))
            shown.add(image.resolve())
    return [p for p in parts if p.kind == "image" or p.text.strip()]
