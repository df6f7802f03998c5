"""A study's figures and tables for one metric (what Compare shows), and the study report as one HTML file.

:func:`metric_view` is the one place a metric's tables are computed from a :class:`sessions.analysis.StudyAnalysis`
(the Compare page shows them, the report prints them, ``benchmarks/bench_sessions.py`` times them).
:func:`render_report` writes a self-contained HTML file: plotly.js inlined once in the head, each chart a
``<div>`` drawn by it (toolbar: PNG; the buttons under it: PNG and SVG, ``Plotly.downloadImage`` in the
reader's browser), the tables, the exclusion list, the method notes and the model's figures from its card
metadata. Every piece of user text (study, participant codes, tags, marker labels) is HTML-escaped.
:func:`build_report` reads a study from the store and renders it (CLI ``python -m sessions report``).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from sqlalchemy import select
from sqlalchemy.orm import Session

from fer_core.emotions import EMOTIONS
from sessions import figures, segments, stats
from sessions.analysis import CORRECTED_METRICS, AnalysisSettings, StudyAnalysis, analyse, load_inputs, load_settings
from sessions.models import Study
from sessions.repository import list_sessions

#: Metrics of a report when none are asked for.
DEFAULT_REPORT_METRICS: tuple[str, ...] = ("happy", "valence", "engagement")


@dataclass(frozen=True)
class MetricView:
    """One metric of a study analysis, as Compare shows it (:func:`metric_view`)."""

    metric: str
    #: :func:`sessions.stats.group_curves` rows of the metric.
    curves: pd.DataFrame
    #: Time range of the means and tests (aligned s).
    start_s: float
    end_s: float
    #: :func:`sessions.stats.session_means` within the range.
    means: pd.DataFrame
    #: :func:`sessions.stats.group_means` of every metric within the range.
    overall: pd.DataFrame
    #: :func:`sessions.stats.group_differences` of the metric (no rows for one group).
    differences: pd.DataFrame
    #: :func:`sessions.segments.session_segments`, :func:`segment_table` and :func:`segment_differences`.
    segment_sessions: pd.DataFrame
    segments: pd.DataFrame
    segment_differences: pd.DataFrame
    #: What share expressing means for the metric (None: not defined).
    share_definition: str | None


def time_span(analysis: StudyAnalysis) -> tuple[float, float]:
    """The aligned time range the analysis covers: first bin start to last bin end, s."""
    times = analysis.bins["time_s"]
    return float(times.min()), float(times.max()) + 1.0


def study_segments(analysis: StudyAnalysis, markers: Mapping[str, Mapping[int, float]] | None,
                   start_s: float, end_s: float):  # fmt: skip
    """The segments the settings ask for: between markers (each session's own), else between cut points.

    Returns a list of :class:`sessions.segments.Segment` (the same for every session; the whole range when no
    cut point is set) or a mapping of session id to its own segments.
    """
    labels = analysis.settings.segment_markers
    if labels:
        return segments.marker_segments(labels, markers or {}, analysis.align)
    return segments.cut_point_segments(analysis.settings.cut_points, start_s, end_s)


def metric_view(analysis: StudyAnalysis, metric: str, *, start_s: float | None = None, end_s: float | None = None,
                markers: Mapping[str, Mapping[int, float]] | None = None) -> MetricView:  # fmt: skip
    """Every table Compare shows for ``metric``: curves, means and tests in a time range, segments.

    Parameters
    ----------
    analysis : StudyAnalysis
        :func:`sessions.analysis.analyse` with at least one session kept.
    metric : str
        One of ``COMPARE_METRICS``.
    start_s, end_s : float, optional
        Time range (aligned s) of the means and group differences; default the whole span.
    markers : mapping, optional
        :func:`sessions.analysis.marker_times` for marker segments.

    Raises
    ------
    ValueError
        An unknown metric, or no session kept.
    """
    stats._check_metric(metric)
    if not analysis.kept:
        raise ValueError("analysis has to keep at least one session; every session is left out")
    first, last = time_span(analysis)
    start_s = first if start_s is None else float(start_s)
    end_s = last if end_s is None else float(end_s)
    means = analysis.session_means(start_s, end_s)
    overall = stats.group_means(means, analysis.groups,
                                value_ranges={m: analysis.value_range(m) for m in stats.COMPARE_METRICS})
    differences = stats.group_differences(means, analysis.groups, metric)
    threshold = analysis.settings.express_threshold
    windows = study_segments(analysis, markers, first, last)
    per_session = segments.session_segments(analysis.values, windows, metric, threshold=threshold, raw=analysis.bins)
    return MetricView(metric=metric, curves=analysis.curves_for([metric]), start_s=start_s,
                      end_s=end_s, means=means, overall=overall, differences=differences,
                      segment_sessions=per_session, segments=segments.segment_table(per_session, analysis.groups),
                      segment_differences=segments.segment_differences(per_session, analysis.groups, metric),
                      share_definition=stats.share_definition(metric, threshold))  # fmt: skip


def comparison_table(analysis: StudyAnalysis) -> pd.DataFrame:
    """The Compare CSV: every metric's curves (:meth:`StudyAnalysis.curves_for`) with a ``baseline`` column (the
    correction in words), for :func:`sessions.exports.export_comparison`."""
    return analysis.curves_for().assign(baseline=analysis.baseline_note())


def view_figures(analysis: StudyAnalysis, view: MetricView) -> dict[str, go.Figure]:
    """The charts of a metric view: curves, share expressing (where defined), emotion means, segments."""
    metric = view.metric
    label = f"{metric} (change from baseline)" if analysis.corrected and metric in CORRECTED_METRICS else metric
    out = {"curves": figures.compare_curves(view.curves, metric, value_range=analysis.value_range(metric),
                                            title=f"Mean {label} over sessions (95% band)")}  # fmt: skip
    if view.share_definition is not None and not view.curves.empty:
        out["share"] = figures.share_expressing(view.curves, metric, definition=view.share_definition)
    out["means"] = figures.emotion_means(view.overall[view.overall["metric"].isin(EMOTIONS)])
    if analysis.corrected:
        out["means"].update_yaxes(range=[-1, 1], tickformat=".0%").update_layout(
            title="Mean change from baseline per emotion (each session once)")  # fmt: skip
    if not view.segments.empty:
        out["segments"] = figures.segment_bars(view.segments, label, value_range=analysis.value_range(metric))
    return out


# ---- formatting ---------------------------------------------------------------------------------------------


def _percent(value) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.1%}"


def _value(metric: str, value, *, corrected: bool = False) -> str:
    """Probabilities as percentages with one decimal (points when corrected), valence signed with 3 decimals."""
    if value is None or pd.isna(value):
        return ""
    if metric == "valence":
        return f"{value:+.3f}"
    return f"{value * 100:+.1f} points" if corrected and metric in CORRECTED_METRICS else f"{value:.1%}"


def _p(value) -> str:
    return "" if value is None or pd.isna(value) else "< 0.001" if value < 0.001 else f"{value:.3f}"


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """``"1 session"``, ``"2 sessions"``."""
    return f"{n} {singular if n == 1 else plural_form or singular + 's'}"


def segment_rows(table: pd.DataFrame, metric: str, *, corrected: bool = False) -> pd.DataFrame:
    """:func:`sessions.segments.segment_table` as shown: formatted values, words for headers."""
    return pd.DataFrame({
        "segment": table["segment"].astype(str), "group": table["group"].astype(str),
        "sessions": table["n_sessions"].astype(int),
        "mean": [_value(metric, v, corrected=corrected) for v in table["mean"]],
        "peak": [_value(metric, v, corrected=corrected) for v in table["peak"]],
        "time to peak (s, median)": table["time_to_peak_s"].map(lambda v: "" if pd.isna(v) else f"{v:.0f}"),
        "share expressing": table["share_expressing"].map(_percent),
    })  # fmt: skip


def group_mean_rows(table: pd.DataFrame, *, corrected: bool = False) -> pd.DataFrame:
    """:func:`sessions.stats.group_means` rows as shown: ``group, metric, mean, 95% band, sessions``."""
    table = table.reset_index(drop=True)
    metric = table["metric"]
    band = [f"{_value(m, lo, corrected=corrected)} to {_value(m, hi, corrected=corrected)}" if pd.notna(lo) and pd.notna(hi)
            else "none (under 3 sessions)" for m, lo, hi in zip(metric, table["ci_low"], table["ci_high"], strict=True)]  # fmt: skip
    return pd.DataFrame({
        "group": table["group"].astype(str), "metric": metric,
        "mean": [_value(m, v, corrected=corrected) for m, v in zip(metric, table["mean"], strict=True)],
        "95% band": band, "sessions": table["n_sessions"].astype(int),
    })  # fmt: skip


def difference_rows(table: pd.DataFrame, *, corrected: bool = False) -> pd.DataFrame:
    """:func:`sessions.stats.group_differences` (optionally with a ``segment`` column) as shown."""
    metric = table["metric"] if len(table) else pd.Series(dtype=object)
    out = pd.DataFrame({
        "group A": table["group_a"].astype(str), "group B": table["group_b"].astype(str),
        "n A": table["n_a"].astype(int), "n B": table["n_b"].astype(int),
        "mean A": [_value(m, v, corrected=corrected) for m, v in zip(metric, table["mean_a"], strict=True)],
        "mean B": [_value(m, v, corrected=corrected) for m, v in zip(metric, table["mean_b"], strict=True)],
        "difference (A - B)": ["" if pd.isna(v) else f"{v:+.3f}" if m == "valence" else f"{v * 100:+.1f} points"
                               for m, v in zip(metric, table["difference"], strict=True)],
        "Welch p": table["welch_p"].map(_p), "permutation p": table["permutation_p"].map(_p),
        "Hedges' g": table["hedges_g"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"), "note": table["note"],
    })  # fmt: skip
    if "segment" in table:
        out.insert(0, "segment", table["segment"].astype(str).to_numpy())
    return out


SEGMENT_NOTE = ("Per segment, each session counts once: mean = mean over sessions of each session's mean over its "
                "seconds in the segment; peak = mean over sessions of each session's highest second; time to peak = "
                "median over sessions of the seconds from the segment's start to that peak; share expressing = share "
                "of sessions whose highest raw second is above the threshold (valence: above 0).")  # fmt: skip
TEST_NOTE = ("On session means (each session once): Welch's t test (unequal variances), a two-sided permutation "
             "test of the difference of means (9,999 permutations, fixed seed; exact for small groups) and Hedges' g "
             "(standardised difference, small-sample corrected). Differences of probabilities are in percentage "
             "points.")  # fmt: skip


def method_notes(analysis: StudyAnalysis, view: MetricView) -> list[str]:
    """The method notes printed under the charts and in the report, in words."""
    settings = analysis.settings
    sizes = Counter(analysis.groups.values())
    notes = [
        f"{plural(len(analysis.kept), 'session')} in {plural(len(sizes), 'group')} "
        f"({', '.join(f'{g}: {n}' for g, n in sorted(sizes.items()))}); each session counts once.",
        stats.describe_bands(view.curves) if not view.curves.empty else "No curve.",
        *([analysis.timeline_note()] if analysis.timeline_note() else []),
        *([analysis.alignment_note()] if analysis.alignment_note() else []),
        analysis.baseline_note(),
        f"Seconds with fewer than {settings.min_frames_per_s:g} analysed frames are left out "
        f"({plural(int(analysis.bins['low_frames'].sum()), 'second')} of the kept sessions).",
        f"Sessions left out by the study's rules: {settings.rules_note()}"
        + (f"; kept against the rules: {', '.join(f'#{i}' for i in settings.keep)}" if settings.keep else "") + ".",
    ]  # fmt: skip
    if view.share_definition is not None:
        notes.append(f"Share expressing: {view.share_definition}.")
    notes += [f"Means and group tests from {view.start_s:g} to {view.end_s:g} s. {TEST_NOTE}", SEGMENT_NOTE]
    return notes


# ---- HTML ---------------------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.7rem}h2{font-size:1.3rem;margin-top:2.2rem;border-bottom:1px solid #ddd}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.88rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}.note{color:#555;font-size:.9rem}.chart{margin:1rem 0}
.buttons button{margin-right:.4rem;font-size:.8rem}
"""
_DOWNLOAD_JS = """
function ferDownload(id, format) {
  var div = document.getElementById(id);
  Plotly.downloadImage(div, {format: format, filename: id, width: div.offsetWidth, height: div.offsetHeight});
}
"""


def _table_html(table: pd.DataFrame) -> str:
    if table.empty:
        return '<p class="note">None.</p>'
    return table.to_html(index=False, escape=True, border=0, na_rep="")


def _figure_html(fig: go.Figure, div_id: str) -> str:
    div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=figures.CHART_CONFIG)
    buttons = "".join(f'<button type="button" onclick="{html.escape(f"ferDownload({json.dumps(div_id)}, {json.dumps(fmt)})")}">'
                      f"{fmt.upper()}</button>" for fmt in ("png", "svg"))  # fmt: skip
    return f'<div class="chart">{div}<div class="buttons">Download: {buttons}</div></div>'


def model_section(metadata: Mapping | None, model_names: Sequence[str] = ()) -> str:
    """The model that analysed the sessions and its figures from its card metadata (``fer_metadata.json``)."""
    parts = ["<h2>Model</h2>"]
    if model_names:
        parts.append("<p>Sessions analysed by: " + ", ".join(html.escape(str(n)) for n in model_names) + ".</p>")
    if not metadata:
        parts.append('<p class="note">No model metadata available.</p>')
        return "".join(parts)
    metrics = metadata.get("metrics") or {}
    rows = []
    for key, words in (("all", "PublicTest, all images"), ("no_overlap", "PublicTest without the images also in Training")):
        figs = metrics.get(key)
        if isinstance(figs, Mapping):
            rows.append({"evaluation": words, "images": figs.get("n", ""), "accuracy": _percent(figs.get("accuracy")),
                         "macro F1": "" if figs.get("macro_f1") is None else f"{figs['macro_f1']:.3f}"})  # fmt: skip
    if rows:
        parts.append(_table_html(pd.DataFrame(rows)))
    per_class = metrics.get("per_class")
    if isinstance(per_class, Mapping):
        from fer_core.model_file import figure_name

        order = ("precision", "recall", "f1", "support")  # known figures first, in this order, then any other
        table = pd.DataFrame([{"class": c, **{figure_name(k): (f"{figs[k]:.3f}" if k != "support" else int(figs[k]))
                                              for k in sorted(figs, key=lambda k: (order.index(k) if k in order
                                                                                   else len(order), k))}}
                              for c, figs in per_class.items() if isinstance(figs, Mapping)])  # fmt: skip
        parts.append("<h3>Per class</h3>" + _table_html(table))
    parts.append('<p class="note">FER reads facial expressions, not felt emotion; report "share of participants '
                 'showing an expression". Figures from the model file\'s card metadata.</p>')  # fmt: skip
    return "".join(parts)


def render_report(title: str, analysis: StudyAnalysis, views: Sequence[MetricView], *,
                  model_metadata: Mapping | None = None, generated_at: datetime | None = None) -> str:  # fmt: skip
    """The study report as one self-contained HTML document (plotly.js inlined once, no external request).

    Parameters
    ----------
    title : str
        Study name (escaped here).
    analysis : StudyAnalysis
    views : sequence of MetricView
        One section per metric (:func:`metric_view`).
    model_metadata : mapping, optional
        The model file's metadata (``fer_core.model_file.read_metadata``).
    generated_at : datetime, optional
        Shown in the header; default now (UTC).

    Returns
    -------
    str
        The HTML text (UTF-8).
    """
    when = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"<h1>Study report: {html.escape(title)}</h1>",
            f'<p class="note">Generated {when} by the FER platform. Each session counts once; expressions, not '
            "felt emotions.</p>"]  # fmt: skip
    body.append("<h2>Sessions left out</h2>")
    excluded = analysis.excluded.assign(face_present_rate=analysis.excluded["face_present_rate"].map(_percent))
    body.append(_table_html(excluded.rename(columns={"session_id": "session", "participant_code": "participant",
                                                     "face_present_rate": "face present"})))  # fmt: skip
    for k, view in enumerate(views):
        corrected = analysis.corrected
        body.append(f"<h2>{html.escape(view.metric)}</h2>")
        for name, fig in view_figures(analysis, view).items():
            body.append(_figure_html(fig, f"chart-{k}-{name}"))
        overall = view.overall[view.overall["metric"] == view.metric]
        body.append("<h3>Group means</h3>" + _table_html(group_mean_rows(overall, corrected=corrected)))
        body.append("<h3>Segments</h3>" + _table_html(segment_rows(view.segments, view.metric, corrected=corrected)))
        if len(view.differences):
            body.append("<h3>Group differences</h3>" + _table_html(difference_rows(view.differences, corrected=corrected)))
            body.append("<h3>Group differences per segment</h3>"
                        + _table_html(difference_rows(view.segment_differences, corrected=corrected)))  # fmt: skip
        body.append("<h3>Method</h3><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in method_notes(analysis, view))
                    + "</ul>")  # fmt: skip
    names = sorted({str(m) for m in analysis.quality.get("model", pd.Series(dtype=object)).dropna()}) if "model" in analysis.quality else []
    body.append(model_section(model_metadata, names))
    plotly_js = get_plotlyjs()
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Study report: {html.escape(title)}</title><style>{_STYLE}</style>"
            f"<script>{plotly_js}</script><script>{_DOWNLOAD_JS}</script></head><body>"
            + "\n".join(body) + "</body></html>\n")  # fmt: skip


def group_labels(sessions: pd.DataFrame, tag: str | None) -> dict[int, str]:
    """Session id to its group: ``"tag=value"`` (``(none)`` without the tag), or ``"all"`` without a tag."""
    if not tag:
        return {int(i): "all" for i in sessions["session_id"]}
    return {int(r.session_id): f"{tag}={(r.tags or {}).get(tag, '(none)')}" for r in sessions.itertuples()}


def build_report(db: Session, study_name: str, *, metrics: Sequence[str] = DEFAULT_REPORT_METRICS,
                 group_tag: str | None = None, align_on: str | None = None, stimulus: str | None = None,
                 model_metadata: Mapping | None = None, progress: Callable[[int, int], None] | None = None) -> str:  # fmt: skip
    """Read a study from the store and render its report (the study's stored analysis settings apply).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
    study_name : str
        Exact study name.
    metrics : sequence of str
        Metrics with a section each (``COMPARE_METRICS``).
    group_tag : str, optional
        Tag key whose values are the groups; default one group.
    align_on : str, optional
        Marker label that becomes time 0; default the session start.
    stimulus : str, optional
        Stimulus name: every session on its own seconds (:func:`sessions.analysis.load_inputs`; cut points and
        markers in stimulus seconds); ``align_on`` is then ignored.
    model_metadata : mapping, optional
        Metadata of the model to describe.
    progress : callable, optional
        ``progress(done, total)`` while per-second rows are computed for sessions of an older database.

    Raises
    ------
    LookupError
        No study has this name.
    ValueError
        An unknown metric, a study without analysable sessions, or every session left out.
    """
    for metric in metrics:
        stats._check_metric(metric)
    study = db.scalar(select(Study).where(Study.name == study_name))
    if study is None:
        raise LookupError(f"no study is named {study_name!r}")
    settings: AnalysisSettings = load_settings(db, study.id)
    ids = [int(i) for i in list_sessions(db, study_id=study.id)["session_id"]]
    inputs = load_inputs(db, ids, settings=settings, align_on=align_on, stimulus=stimulus, progress=progress)
    analysis = analyse(inputs.sessions, inputs.per_second, groups=group_labels(inputs.sessions, group_tag),
                       settings=settings, align=inputs.align, markers=inputs.markers, stimulus=stimulus)  # fmt: skip
    if analysis is None:
        needs = (f" in which stimulus {stimulus!r} played" if stimulus is not None
                 else f" and a {align_on!r} marker" if align_on else "")  # fmt: skip
        raise ValueError(f"study {study_name!r} has no session with analysed seconds{needs}")
    if not analysis.kept:
        raise ValueError(f"every session of study {study_name!r} is left out by its exclusion rules")
    views = [metric_view(analysis, m, markers=inputs.markers) for m in metrics]
    return render_report(study.name, analysis, views, model_metadata=model_metadata)


def write_report(text: str, path: str | Path) -> Path:
    """Write report text to ``path`` (UTF-8) and return it; OSError when it cannot be written."""
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path

