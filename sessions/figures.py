"""Plotly figures of a study's analysis (Compare page and study report): pure functions of tables, no Streamlit.

The dashboard re-exports them from :mod:`dashboard.charts`; the study report (:mod:`sessions.report`) draws the
same figures into its HTML file. Every figure's toolbar (modebar) saves it as an image in the browser
(:data:`CHART_CONFIG`: PNG at twice the size); the SVG form comes from :func:`image_config` with
``"svg"`` (the Compare page's image-format choice) and from the report's "SVG" buttons (plotly.js
``Plotly.downloadImage``), so no server-side image export is needed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fer_core.emotions import EMOTIONS

#: One colour per emotion, used by every chart so an emotion always looks the same.
EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#2ca02c",
    "sad": "#1f77b4",
    "surprise": "#ff7f0e",
    "neutral": "#7f7f7f",
}
#: Colours cycled over the groups of a comparison.
GROUP_COLORS: tuple[str, ...] = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")




def escape_chart_text(text: object) -> str:
    """Return ``text`` so that plotly shows it literally in an annotation, a legend entry or a title.

    Plotly turns ``<a href=...>``, ``<b>``, ``<br>`` and the like into links and formatting; with ``<``, ``>``
    and ``&`` written as HTML entities (:func:`html.escape`) it draws the characters themselves.

    Parameters
    ----------
    text : object
        User text; anything else is converted with ``str`` first.

    Returns
    -------
    str
        The escaped text.
    """
    return html.escape(str(text), quote=False)


def image_config(fmt: str = "png", filename: str = "chart") -> dict:
    """A plotly config whose toolbar camera button saves the chart as ``fmt`` (``"png"`` or ``"svg"``).

    Parameters
    ----------
    fmt : {"png", "svg"}
        Image format of the download; PNG at twice the displayed size (``scale=2``), SVG as vectors.
    filename : str
        File name without suffix.

    Raises
    ------
    ValueError
        Another format.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt has to be 'png' or 'svg'; got {fmt!r}")
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2 if fmt == "png" else 1}}


#: Config of every chart: the toolbar's camera button saves a PNG.
CHART_CONFIG: dict = image_config("png")


def _require_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} has to have columns {list(columns)}; missing {missing}")


def _layout(fig: go.Figure, *, title: str, yaxis: str, xaxis: str = "time (s)", height: int = 360) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=xaxis,
        yaxis_title=yaxis,
        height=height,
        margin=dict(l=40, r=20, t=50, b=40),
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _groups(comparison: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(comparison["group"].astype(str)))


def _segments(mask: np.ndarray) -> list[np.ndarray]:
    """Index runs where ``mask`` is True (one band polygon each, so a missing band leaves a gap)."""
    runs, current = [], []
    for i, on in enumerate(mask):
        if on:
            current.append(i)
        elif current:
            runs.append(np.array(current))
            current = []
    if current:
        runs.append(np.array(current))
    return runs


def compare_curves(comparison: pd.DataFrame, metric: str, *, value_range: tuple[float, float] | None = None,
                   title: str | None = None) -> go.Figure:  # fmt: skip
    """Per-group mean curve of one metric over time, its 95% band where there is one, sessions per bin.

    Parameters
    ----------
    comparison : DataFrame
        Tidy output of ``sessions.stats.group_curves``: ``group, time_s, metric, mean, ci_low, ci_high``,
        optionally ``n_sessions`` (shown on hover) and ``n_low_frames`` (bins left out for too few frames,
        marked at the bottom of the axis).
    metric : str
        One value of the ``metric`` column (an emotion, ``valence``, ``engagement``...).
    value_range : (float, float), optional
        The metric's range (``sessions.stats.METRIC_RANGES``): the y-axis is fixed to it and bands are clipped
        to it; default: autoscaled.
    title : str, optional
        Chart title; default ``"Mean <metric> over sessions (95% band)"``.

    Raises
    ------
    ValueError
        If a column is missing or ``metric`` is not in the table.
    """
    _require_columns(comparison, ["group", "time_s", "metric", "mean", "ci_low", "ci_high"], "comparison")
    rows = comparison[comparison["metric"] == metric]
    if rows.empty:
        raise ValueError(f"metric has to be one of {sorted(comparison['metric'].unique())}; got {metric!r}")
    fig = go.Figure()
    for i, group in enumerate(_groups(rows)):
        part = rows[rows["group"].astype(str) == group].sort_values("time_s")
        color = GROUP_COLORS[i % len(GROUP_COLORS)]
        name = escape_chart_text(group)
        low, high = part["ci_low"].to_numpy(dtype=float), part["ci_high"].to_numpy(dtype=float)
        if value_range is not None:
            low, high = np.clip(low, *value_range), np.clip(high, *value_range)
        times = part["time_s"].to_numpy(dtype=float)
        for run in _segments(~(np.isnan(low) | np.isnan(high))):
            fig.add_trace(go.Scatter(
                x=np.concatenate([times[run], times[run][::-1]]), y=np.concatenate([high[run], low[run][::-1]]),
                fill="toself", fillcolor=_rgba(color, 0.2), line_color="rgba(0,0,0,0)", hoverinfo="skip",
                showlegend=False, legendgroup=name, name=f"{name} 95% band",
            ))  # fmt: skip
        n = part["n_sessions"].to_numpy() if "n_sessions" in part else np.full(len(part), -1)
        fig.add_trace(go.Scatter(
            x=times, y=part["mean"], mode="lines", name=name, line_color=color, legendgroup=name, customdata=n,
            hovertemplate=f"{name}<br>%{{x:.1f}} s: %{{y:.3f}}<br>n = %{{customdata}} sessions<extra></extra>",
        ))  # fmt: skip
        if "n_low_frames" in part and (part["n_low_frames"] > 0).any():
            flagged = part[part["n_low_frames"] > 0]
            bottom = value_range[0] if value_range is not None else float(np.nanmin(low)) if np.isfinite(low).any() else 0.0
            fig.add_trace(go.Scatter(
                x=flagged["time_s"], y=np.full(len(flagged), bottom), mode="markers", legendgroup=name,
                marker=dict(symbol="x", color=color, size=7), name=f"{name}: bins left out (few frames)",
                customdata=flagged["n_low_frames"],
                hovertemplate="%{x:.1f} s: %{customdata} session(s) with too few frames, left out<extra></extra>",
            ))  # fmt: skip
    if value_range is not None:
        fig.update_yaxes(range=list(value_range), autorange=False)
    return _layout(fig, title=title or f"Mean {metric} over sessions (95% band)", yaxis=metric)


def share_expressing(comparison: pd.DataFrame, metric: str, *, definition: str | None = None) -> go.Figure:
    """Per group, the share of sessions expressing ``metric`` in each bin (each session once).

    Parameters
    ----------
    comparison : DataFrame
        Tidy comparison with ``group, time_s, metric, share_expressing`` (0-1), optionally ``n_sessions``.
    metric : str
        One of the ``metric`` values (an emotion, ``engagement`` or ``valence``).
    definition : str, optional
        What the share means (``sessions.stats.share_definition``); the page writes it under the chart, the y
        axis says "share of sessions" (a longer axis title is cut off).

    Raises
    ------
    ValueError
        If a column is missing or ``comparison`` holds no rows for ``metric``.
    """
    _require_columns(comparison, ["group", "time_s", "metric", "share_expressing"], "comparison")
    rows = comparison[comparison["metric"] == metric]
    if rows.empty:
        raise ValueError(f"metric has to be one of {sorted(comparison['metric'].unique())}; got {metric!r}")
    fig = go.Figure()
    for i, group in enumerate(_groups(rows)):
        part = rows[rows["group"].astype(str) == group].sort_values("time_s")
        name = escape_chart_text(group)
        n = part["n_sessions"].to_numpy() if "n_sessions" in part else np.full(len(part), -1)
        fig.add_trace(go.Scatter(
            x=part["time_s"], y=part["share_expressing"], mode="lines", name=name, line_shape="hv",
            line_color=GROUP_COLORS[i % len(GROUP_COLORS)], customdata=n,
            hovertemplate=f"{name}<br>%{{x:.1f}} s: %{{y:.1%}} of %{{customdata}} sessions<extra></extra>",
        ))  # fmt: skip
    fig.update_yaxes(range=[0, 1], autorange=False, tickformat=".0%")
    titles = {"valence": "Share of sessions with positive valence", "attention_rate": "Share of sessions attending"}
    title = titles.get(metric, f"Share of sessions expressing {metric}")
    # the full definition is written under the chart (the page's caption); an axis title that long is cut off
    return _layout(fig, title=title, yaxis="share of sessions")


def emotion_means(means: pd.DataFrame) -> go.Figure:
    """Per-emotion means, groups side by side (grouped bars), with their 95% bands as error bars.

    Parameters
    ----------
    means : DataFrame
        ``group, metric, mean`` with one row per group and metric (``sessions.stats.group_means``: the mean
        over sessions of each session's mean), optionally ``ci_low, ci_high`` (NaN: no error bar) and
        ``n_sessions`` (hover); rows whose metric is not an emotion are ignored.

    Raises
    ------
    ValueError
        If a column is missing.
    """
    _require_columns(means, ["group", "metric", "mean"], "means")
    rows = means[means["metric"].isin(EMOTIONS)]
    fig = go.Figure()
    for i, group in enumerate(_groups(rows)):
        part = rows[rows["group"].astype(str) == group].drop_duplicates("metric").set_index("metric").reindex(list(EMOTIONS))
        values = part["mean"].to_numpy(dtype=float)
        error = None
        if "ci_low" in part and "ci_high" in part:
            error = dict(type="data", symmetric=False, array=np.clip(part["ci_high"].to_numpy(dtype=float), 0, 1) - values,
                         arrayminus=values - np.clip(part["ci_low"].to_numpy(dtype=float), 0, 1))  # fmt: skip
        n = part["n_sessions"].to_numpy() if "n_sessions" in part else np.full(len(part), -1)
        name = escape_chart_text(group)
        fig.add_trace(go.Bar(
            x=list(EMOTIONS), y=values, name=name, marker_color=GROUP_COLORS[i % len(GROUP_COLORS)], error_y=error,
            customdata=n, hovertemplate=f"{name}<br>%{{x}}: %{{y:.1%}} (n = %{{customdata}} sessions)<extra></extra>",
        ))  # fmt: skip
    fig.update_layout(barmode="group")
    fig.update_yaxes(range=[0, 1], autorange=False, tickformat=".0%")
    return _layout(fig, title="Mean probability per emotion (each session once)", yaxis="mean probability", xaxis="emotion")


def segment_bars(table: pd.DataFrame, metric: str, *, value_range: tuple[float, float] | None = None) -> go.Figure:
    """Per segment, each group's mean of ``metric`` (grouped bars); peak, time to peak, share and n on hover.

    Parameters
    ----------
    table : DataFrame
        ``sessions.segments.segment_table``: ``segment, group, n_sessions, mean, peak, time_to_peak_s,
        share_expressing``.
    metric : str
        The metric the table was made for (axis title).
    value_range : (float, float), optional
        Fixed y range (the metric's, or its baseline-corrected one); default autoscaled.

    Raises
    ------
    ValueError
        If a column is missing.
    """
    _require_columns(table, ["segment", "group", "n_sessions", "mean", "peak", "time_to_peak_s", "share_expressing"],
                     "table")  # fmt: skip
    fig = go.Figure()
    segments = [escape_chart_text(s) for s in dict.fromkeys(table["segment"].astype(str))]
    for i, group in enumerate(_groups(table)):
        part = table[table["group"].astype(str) == group]
        name = escape_chart_text(group)
        extra = np.stack([part["peak"].to_numpy(dtype=float), part["time_to_peak_s"].to_numpy(dtype=float),
                          part["share_expressing"].to_numpy(dtype=float), part["n_sessions"].to_numpy(dtype=float)],
                         axis=-1)  # fmt: skip
        fig.add_trace(go.Bar(
            x=[escape_chart_text(s) for s in part["segment"].astype(str)], y=part["mean"], name=name,
            marker_color=GROUP_COLORS[i % len(GROUP_COLORS)], customdata=extra,
            hovertemplate=(f"{name}<br>%{{x}}: mean %{{y:.3f}}<br>peak %{{customdata[0]:.3f}} after "
                           "%{customdata[1]:.0f} s<br>expressing: %{customdata[2]:.1%}<br>n = %{customdata[3]} "
                           "sessions<extra></extra>"),
        ))  # fmt: skip
    fig.update_layout(barmode="group")
    fig.update_xaxes(categoryorder="array", categoryarray=segments)
    if value_range is not None:
        fig.update_yaxes(range=list(value_range), autorange=False)
    return _layout(fig, title=f"Mean {metric} per segment (each session once)", yaxis=metric, xaxis="segment")
