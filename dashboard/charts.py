"""Plotly figures of the dashboard: pure functions of tables, unit-tested, no Streamlit.

Every chart's modebar has plotly's "download plot as a png" button (``CHART_CONFIG``; ``image_config("svg")``
makes it save SVG), which is how the dashboard offers image downloads (no server-side image export). The study
figures (Compare curves, share expressing, emotion means, segments) live in :mod:`sessions.figures`, because the
study report draws them too, and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fer_core.emotions import EMOTIONS
from sessions.figures import (  # noqa: F401 - the study figures live in sessions (the report draws them too)
    CHART_CONFIG,
    EMOTION_COLORS,
    GROUP_COLORS,
    _layout,
    _require_columns,
    compare_curves,
    emotion_means,
    escape_chart_text,
    image_config,
    segment_bars,
    share_expressing,
)


def _seven_probs(probs: np.ndarray | None) -> np.ndarray:
    """(7,) float64 probabilities in ``EMOTIONS`` order (zeros for None); ValueError for another length."""
    values = np.zeros(len(EMOTIONS)) if probs is None else np.asarray(probs, dtype=float).ravel()
    if values.shape != (len(EMOTIONS),):
        raise ValueError(f"probs has to have {len(EMOTIONS)} values; got shape {values.shape}")
    return values


def emotion_bars(probs: np.ndarray | None) -> go.Figure:
    """Horizontal bars of one face's seven probabilities.

    Parameters
    ----------
    probs : ndarray of shape (7,) float or None
        Probabilities in ``EMOTIONS`` order; None draws empty bars (no face).

    Raises
    ------
    ValueError
        If ``probs`` does not have 7 values.
    """
    values = _seven_probs(probs)
    fig = go.Figure(
        go.Bar(
            x=values,
            y=list(EMOTIONS),
            orientation="h",
            marker_color=[EMOTION_COLORS[e] for e in EMOTIONS],
            text=[f"{v:.0%}" for v in values],
            textposition="auto",
        )
    )
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title="Current emotion" if probs is not None else "Current emotion (no face)", yaxis="", xaxis="probability", height=300)


def emotion_bars_html(probs: np.ndarray | None) -> str:
    """The live panel's "current emotion" bars as a small HTML block (no plotly).

    The Record page redraws these every second for every watching browser; plain HTML bars cost the
    browser almost nothing, where re-rendering a plotly figure each second slowed the camera streams
    sharing the machine (``benchmarks/bench_live.py``).

    Parameters
    ----------
    probs : ndarray of shape (7,) float or None
        Probabilities in ``EMOTIONS`` order; None shows "no face" and empty bars.

    Returns
    -------
    str
        HTML: a title, then one labelled bar per emotion (width = probability, ``EMOTION_COLORS``).

    Raises
    ------
    ValueError
        If ``probs`` does not have 7 values.
    """
    values = _seven_probs(probs)
    title = "Current emotion" if probs is not None else "Current emotion (no face)"
    rows = []
    for emotion, value in zip(EMOTIONS, np.clip(values, 0.0, 1.0), strict=True):
        rows.append(
            '<div style="display:flex;align-items:center;gap:.5em;margin:2px 0;font-size:.85em">'
            f'<span style="width:5.5em;text-align:right">{emotion}</span>'
            '<span style="flex:1;background:rgba(128,128,128,.15);height:1em;border-radius:2px">'
            f'<span style="display:block;width:{value * 100:.1f}%;height:100%;background:{EMOTION_COLORS[emotion]};'
            'border-radius:2px"></span></span>'
            f'<span style="width:3em">{value:.0%}</span></div>'
        )
    return f'<div class="fer-emotion-bars"><p style="font-weight:600;margin:0 0 .3em">{title}</p>{"".join(rows)}</div>'


def bin_means(table: pd.DataFrame, width_s: float = 0.5) -> pd.DataFrame:
    """Average per-frame rows into fixed time bins (for a live chart that stays light to redraw).

    Parameters
    ----------
    table : DataFrame
        ``time_s`` (seconds) and numeric columns, e.g. the seven emotion probabilities per frame.
    width_s : float, default 0.5
        Bin width in seconds; bin ``k`` holds ``k * width_s <= time_s < (k + 1) * width_s``.

    Returns
    -------
    DataFrame
        One row per non-empty bin, ``time_s`` = the bin's start (seconds), other columns their means.

    Raises
    ------
    ValueError
        If ``width_s`` is not positive or ``time_s`` is missing.
    """
    if not width_s > 0:
        raise ValueError(f"width_s has to be positive seconds; got {width_s}")
    _require_columns(table, ["time_s"], "table")
    if table.empty:
        return table.copy()
    starts = (table["time_s"] // width_s) * width_s
    return table.drop(columns="time_s").groupby(starts.rename("time_s")).mean().reset_index()


def emotion_lines(table: pd.DataFrame, markers: pd.DataFrame | None = None, *, title: str = "Emotions over time",
                  gaps: pd.DataFrame | None = None) -> go.Figure:  # fmt: skip
    """One line per emotion over time, markers as labelled vertical lines, gaps as shaded stretches.

    Parameters
    ----------
    table : DataFrame
        ``time_s`` (seconds) and the seven emotion columns (probabilities 0-1); per frame (live)
        or per bin (review).
    markers : DataFrame, optional
        ``time_s`` and ``label``.
    gaps : DataFrame, optional
        ``start_s`` and ``end_s`` (seconds) of stretches without camera frames (a reload or network drop the
        session survived, :func:`sessions.repository.load_gaps`).

    Raises
    ------
    ValueError
        If a column is missing.
    """
    _require_columns(table, ["time_s", *EMOTIONS], "table")
    fig = go.Figure()
    for emotion in EMOTIONS:
        fig.add_trace(
            go.Scatter(x=table["time_s"], y=table[emotion], mode="lines", name=emotion, line_color=EMOTION_COLORS[emotion])
        )
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    add_gaps(fig, gaps)
    add_markers(fig, markers)
    return _layout(fig, title=title, yaxis="probability")


def add_gaps(fig: go.Figure, gaps: pd.DataFrame | None) -> go.Figure:
    """Shade each gap (``start_s``, ``end_s`` seconds) grey, labelled "no camera"."""
    if gaps is None or gaps.empty:
        return fig
    _require_columns(gaps, ["start_s", "end_s"], "gaps")
    for start, end in zip(gaps["start_s"], gaps["end_s"], strict=True):
        fig.add_vrect(x0=float(start), x1=float(end), fillcolor="grey", opacity=0.25, line_width=0,
                      annotation_text="no camera", annotation_position="top left")  # fmt: skip
    return fig


def add_markers(fig: go.Figure, markers: pd.DataFrame | None) -> go.Figure:
    """Draw each marker (``time_s``, ``label``) as a dashed vertical line labelled at the top."""
    if markers is None or markers.empty:
        return fig
    _require_columns(markers, ["time_s", "label"], "markers")
    for time_s, label in zip(markers["time_s"], markers["label"], strict=True):
        fig.add_vline(x=float(time_s), line_dash="dash", line_color="black", annotation_text=escape_chart_text(label), annotation_position="top")
    return fig


def dominant_ribbon(bins: pd.DataFrame) -> go.Figure:
    """One coloured cell per bin showing its dominant emotion (highest mean probability).

    Parameters
    ----------
    bins : DataFrame
        Per-bin table with ``time_s`` and the seven emotion columns; bins without a face (all NaN)
        are left blank.
    """
    _require_columns(bins, ["time_s", *EMOTIONS], "bins")
    probs = bins[list(EMOTIONS)].to_numpy(dtype=float)
    has_face = ~np.isnan(probs).all(axis=1)
    codes = np.full(len(bins), np.nan)
    codes[has_face] = np.nanargmax(probs[has_face], axis=1)
    names = np.array([EMOTIONS[int(c)] if not np.isnan(c) else "no face" for c in codes])
    n = len(EMOTIONS)
    scale = []
    for i, emotion in enumerate(EMOTIONS):
        scale += [(i / n, EMOTION_COLORS[emotion]), ((i + 1) / n, EMOTION_COLORS[emotion])]
    fig = go.Figure(
        go.Heatmap(
            x=bins["time_s"],
            y=["dominant"],
            z=[codes],
            zmin=0,
            zmax=n,
            colorscale=scale,
            showscale=False,
            customdata=[names],
            hovertemplate="%{x:.0f} s: %{customdata}<extra></extra>",
        )
    )
    for emotion in EMOTIONS:  # legend entries
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color=EMOTION_COLORS[emotion], size=10, symbol="square"), name=emotion))
    fig.update_yaxes(showticklabels=False)
    _layout(fig, title="Dominant emotion", yaxis="", height=220)
    fig.update_layout(legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    return fig


def valence_engagement(bins: pd.DataFrame, markers: pd.DataFrame | None = None) -> go.Figure:
    """Valence and engagement per bin over time, markers as vertical lines.

    Parameters
    ----------
    bins : DataFrame
        ``time_s``, ``valence`` (-1 to 1) and ``engagement`` (0 to 1) per bin.
    """
    _require_columns(bins, ["time_s", "valence", "engagement"], "bins")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=bins["time_s"], y=bins["valence"], mode="lines", name="valence", line_color="#2ca02c"))
    fig.add_trace(go.Scatter(x=bins["time_s"], y=bins["engagement"], mode="lines", name="engagement", line_color="#1f77b4"))
    fig.add_hline(y=0, line_color="lightgray")
    add_markers(fig, markers)
    return _layout(fig, title="Valence and engagement", yaxis="score")


def attention_line(bins: pd.DataFrame, markers: pd.DataFrame | None = None) -> go.Figure:
    """Attention per bin: the share of the bin's analysed frames with the face turned to the screen (0-1, shown in
    percent), markers as vertical lines; gaps where the pose is unknown (a detector without keypoints).

    Parameters
    ----------
    bins : DataFrame
        ``time_s`` (s) and ``attention_rate`` (0 to 1, NaN unknown) per bin (:func:`sessions.aggregate.per_bin`).

    Raises
    ------
    ValueError
        If a column is missing.
    """
    _require_columns(bins, ["time_s", "attention_rate"], "bins")
    fig = go.Figure(go.Scatter(x=bins["time_s"], y=bins["attention_rate"], mode="lines", name="attention",
                               line_color="#9467bd", hovertemplate="%{x:.0f} s: %{y:.0%}<extra></extra>"))  # fmt: skip
    add_markers(fig, markers)
    fig = _layout(fig, title="Attention: face turned to the screen", yaxis="share of frames")
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    return fig


def confusion_matrix(matrix: Sequence[Sequence[float]], classes: Sequence[str] = EMOTIONS, *, normalize: bool = True) -> go.Figure:
    """Heatmap of a confusion matrix (rows: true class, columns: predicted class).

    Parameters
    ----------
    matrix : array-like of shape (n_classes, n_classes)
        Counts.
    normalize : bool
        Show each row as shares of its true class (recall on the diagonal).

    Raises
    ------
    ValueError
        If the matrix is not square with one row per class.
    """
    values = np.asarray(matrix, dtype=float)
    if values.shape != (len(classes), len(classes)):
        raise ValueError(f"matrix has to be {len(classes)}x{len(classes)}; got shape {values.shape}")
    if normalize:
        totals = values.sum(axis=1, keepdims=True)
        values = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    text = [[f"{v:.0%}" if normalize else f"{v:.0f}" for v in row] for row in values]
    fig = go.Figure(go.Heatmap(z=values, x=list(classes), y=list(classes), colorscale="Blues", text=text, texttemplate="%{text}"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title="Confusion matrix" + (" (row-normalised)" if normalize else ""), yaxis="true class", xaxis="predicted class", height=480)


def training_curves(history: dict[str, Sequence[float]]) -> go.Figure:
    """Training curves: one line per logged metric (``loss``, ``val_accuracy``...) over epochs.

    Parameters
    ----------
    history : dict of str to list of float
        Keras ``History.history``-style mapping, one value per epoch.

    Raises
    ------
    ValueError
        If ``history`` is empty.
    """
    if not history:
        raise ValueError("history has to hold at least one metric; got an empty mapping")
    fig = go.Figure()
    for name, values in history.items():
        values = list(values)
        fig.add_trace(go.Scatter(x=list(range(1, len(values) + 1)), y=values, mode="lines+markers", name=name))
    return _layout(fig, title="Training curves", yaxis="value", xaxis="epoch")


def per_class_bars(per_class: dict[str, dict[str, float]]) -> go.Figure:
    """Grouped bars of per-class figures (e.g. precision, recall, f1) in ``EMOTIONS`` order.

    Parameters
    ----------
    per_class : dict
        ``{class_name: {figure_name: value}}``.

    Raises
    ------
    ValueError
        If ``per_class`` is empty.
    """
    if not per_class:
        raise ValueError("per_class has to hold at least one class; got an empty mapping")
    classes = [c for c in EMOTIONS if c in per_class] or list(per_class)
    names = list(dict.fromkeys(k for c in classes for k, v in per_class[c].items() if isinstance(v, int | float)))
    fig = go.Figure()
    for name in names:
        fig.add_trace(go.Bar(x=classes, y=[per_class[c].get(name, np.nan) for c in classes], name=name))
    fig.update_layout(barmode="group")
    return _layout(fig, title="Per-class figures", yaxis="value", xaxis="class")
