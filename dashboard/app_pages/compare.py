"""Compare: sessions, a whole study or groups by tag; each session counts once (``sessions.analysis``).

Reads only the sessions' stored per-second rows (``sessions.second_aggregates``), never a study's observations,
and caches the analysis on the sessions' versions (``aggregate_versions``), so a widget change on a study of 20
one-hour sessions does not read the store again. A study's analysis settings (threshold, baseline, segments,
sessions kept against the exclusion rules) are stored with the study and restored when it is chosen again.
"""

from __future__ import annotations

import json

import streamlit as st

from dashboard import charts
from dashboard.downloads import export_bytes
from dashboard.resources import get_settings
from dashboard.stimulus_review import STIMULUS_ALIGN, aligned_stimulus, stimulus_compare
from dashboard.store import page_session
from dashboard.tables import count_noun, difference_table, excluded_table, group_means_table, session_label
from dashboard.text import escape_markdown
from fer_core.emotions import EMOTIONS
from sessions import report, stats
from sessions.aggregate import COMPARE_METRICS
from sessions.analysis import (
    AnalysisSettings,
    Baseline,
    analyse,
    load_inputs,
    load_settings,
    save_settings,
    session_marker_labels,
)
from sessions.exports import export_comparison
from sessions.playback import played_stimuli
from sessions.repository import list_sessions, list_studies
from sessions.second_aggregates import aggregate_versions

BASELINE_CHOICES = ("none", "first seconds", "between markers")


@st.cache_data(max_entries=8, show_spinner="Reading the sessions' per-second rows...")
def cached_analysis(db_url: str, versions: str, ids: tuple[int, ...], groups: tuple[tuple[int, str], ...],
                    align_on: str | None, settings_json: str):  # fmt: skip
    """The study analysis and its inputs' markers, cached on the sessions' versions (``versions``) and choices."""
    settings = AnalysisSettings.from_json(json.loads(settings_json))
    stimulus = aligned_stimulus(align_on)
    with page_session() as db:  # on a stimulus: each session's seconds on its own timeline (they align exactly)
        inputs = load_inputs(db, list(ids), settings=settings, align_on=None if stimulus else align_on,
                             stimulus=stimulus)  # fmt: skip
    analysis = analyse(inputs.sessions, inputs.per_second, groups=dict(groups), settings=settings,
                       align=inputs.align, markers=inputs.markers, stimulus=stimulus)  # fmt: skip
    return analysis, inputs.markers, inputs.align


@st.cache_data(max_entries=16, show_spinner=False)
def cached_view(key: tuple, metric: str, start_s: float, end_s: float) -> report.MetricView:
    """A metric's tables (``sessions.report.metric_view``: small, no per-second rows), cached on the analysis's
    key (the arguments of :func:`cached_analysis`) and the page's choices; a widget change recomputes nothing."""
    analysis, markers, _ = cached_analysis(*key)
    return report.metric_view(analysis, metric, start_s=start_s, end_s=end_s, markers=markers)


def restore_settings(owner: object, settings: AnalysisSettings, ids: list[int], labels: list[str]) -> None:
    """Put a study's stored settings into the page's widgets when the study (``owner``) changes, or when the
    widgets were dropped (the page was left)."""
    state = st.session_state
    if state.get("compare_settings_of") == owner and "compare_threshold" in state:
        return
    state["compare_settings_of"] = owner
    state["compare_threshold"] = settings.express_threshold
    base = settings.baseline
    state["compare_baseline"] = "none" if base is None else "between markers" if base.start_marker else "first seconds"
    state["compare_baseline_s"] = min(600.0, max(1.0, float(base.seconds))) if base is not None and base.seconds else 10.0
    if base is not None and base.start_marker in labels and base.end_marker in labels:
        state["compare_baseline_from"], state["compare_baseline_to"] = base.start_marker, base.end_marker
    state["compare_cuts"] = ", ".join(f"{c:g}" for c in settings.cut_points)
    state["compare_segment_markers"] = [label for label in settings.segment_markers if label in labels]
    for sid in ids:
        state[f"compare_keep_{sid}"] = sid in settings.keep
    state["compare_exclude_aborted"] = settings.exclude_aborted
    state["compare_min_face"] = float(settings.min_face_present)
    state["compare_min_seen"] = float(settings.min_share_seen)
    state["compare_min_fps"] = float(settings.min_frames_per_s)


def parse_cuts(text: str) -> tuple[float, ...]:
    """Cut points typed as ``"30, 60"`` (seconds); ValueError naming the bad entry."""
    cuts = []
    for part in (text or "").replace(";", ",").split(","):
        if part.strip():
            try:
                cuts.append(float(part))
            except ValueError:
                raise ValueError(f"cut points have to be seconds separated by commas, e.g. 30, 60; got {part.strip()!r}") from None
    return tuple(cuts)


st.title("Compare")
with page_session() as db:
    studies = {s.id: s.name for s in list_studies(db)}
    sessions = list_sessions(db)
if sessions.empty:
    st.info("No session recorded yet.")
    st.stop()

mode = st.radio("Compare", ["Sessions", "A whole study", "Groups by tag"], horizontal=True, key="compare_mode")
labels = {int(r.session_id): session_label(r) for r in sessions.itertuples()}
study_id = None
if mode == "Sessions":
    ids = st.multiselect("Sessions", list(labels), default=list(labels)[:2], format_func=labels.get, key="compare_ids")
    groups = {i: labels[i] for i in ids}
else:
    study_id = st.selectbox("Study", list(studies), format_func=studies.get, key="compare_study")
    chosen = sessions[sessions["study"] == studies[study_id]]
    ids = [int(i) for i in chosen["session_id"]]
    groups = report.group_labels(chosen, None)
    if mode == "Groups by tag":
        keys = sorted({key for tags in chosen["tags"] for key in tags})
        if not keys:
            st.warning("The sessions of this study have no tags to group by.")
            st.stop()
        key = st.selectbox("Tag", keys, key="compare_tag")
        groups = report.group_labels(chosen, key)
if not ids:
    st.info("Pick at least one session.")
    st.stop()

db_url = get_settings().db_url or ""
with page_session() as db:
    versions = aggregate_versions(db, ids)
    try:
        stored = load_settings(db, study_id) if study_id is not None else AnalysisSettings()
    except ValueError as exc:  # written around save_settings: say so, use the defaults, keep the stored text
        st.warning(f"This study's stored analysis settings are invalid ({escape_markdown(exc)}); the defaults apply.")
        stored = AnalysisSettings()
    marker_labels = list(session_marker_labels(db, ids))
    stimulus_choices = [f"{STIMULUS_ALIGN}{name}" for name in played_stimuli(db, ids)]
restore_settings(study_id if study_id is not None else "sessions", stored, ids, marker_labels)
align_on = st.selectbox("Align on", ["session start", *stimulus_choices, *marker_labels], key="compare_align",
                        index=1 if stimulus_choices else 0,
                        help="A stimulus: every session on that stimulus's own seconds (exact, pauses included).")  # fmt: skip
align_on = None if align_on == "session start" else align_on

with st.expander("Analysis settings" + (" of this study (stored with it)" if study_id is not None else
                                        " (not stored: sessions from any study)"), expanded=False):  # fmt: skip
    threshold = st.slider("Expressing threshold", 0.05, 0.95, step=0.05, key="compare_threshold",
                          help="A session counts as expressing an emotion in a second when its mean probability "
                               "is above this.")  # fmt: skip
    baseline_kind = st.radio("Baseline correction", BASELINE_CHOICES, horizontal=True, key="compare_baseline",
                             help="Subtract each participant's mean over a baseline (FaceReader/iMotions style); the "
                                  "stored observations are never changed.")  # fmt: skip
    baseline = None
    if baseline_kind == "first seconds":
        seconds = st.number_input("Baseline: first seconds of each session", 1.0, 600.0, step=1.0, key="compare_baseline_s")
        baseline = Baseline(seconds=seconds)
    elif baseline_kind == "between markers":
        if not marker_labels:
            st.info("These sessions have no markers; add them on Review, or use the first seconds.")
        else:
            left, right = st.columns(2)
            start = left.selectbox("Baseline from marker", marker_labels, key="compare_baseline_from")
            end = right.selectbox("to marker", marker_labels, index=min(1, len(marker_labels) - 1), key="compare_baseline_to")
            if start == end:
                st.warning("The baseline needs two different markers.")
            else:
                baseline = Baseline(seconds=None, start_marker=start, end_marker=end)
    segment_markers = st.multiselect("Segments between markers (in time order)", marker_labels,
                                     key="compare_segment_markers")  # fmt: skip
    cuts_text = st.text_input("Segments between cut points (seconds, e.g. 30, 60)", key="compare_cuts",
                              disabled=bool(segment_markers),
                              help="Seconds of the time axis: of the stimulus when aligned on one (whenever each "
                                   "session started it), else from the session start or the alignment marker. "
                                   "Markers are moved to the same axis.")  # fmt: skip
    try:
        cuts = parse_cuts(cuts_text)
    except ValueError as exc:
        st.error(escape_markdown(exc))
        cuts = ()
with st.expander("Quality rules" + (" of this study (stored with it)" if study_id is not None else
                                    " (not stored: sessions from any study)"), expanded=False):  # fmt: skip
    exclude_aborted = st.checkbox("Leave out aborted sessions", key="compare_exclude_aborted")
    min_face = st.slider("Minimum face-present share", 0.0, 1.0, step=0.05, key="compare_min_face",
                         help="Sessions with a face in fewer than this share of their analysed frames are left out.")
    min_seen = st.slider("Minimum share of the stimulus seen", 0.0, 1.0, step=0.05, key="compare_min_seen",
                         help="Sessions that showed less of their stimulus are left out (0: off); sessions without "
                              "a stimulus are never left out by it.")  # fmt: skip
    min_fps = st.number_input("Minimum analysed frames per second", 0.0, 1000.0, step=1.0, key="compare_min_fps",
                              help="Seconds with fewer analysed frames are left out of curves and segments "
                                   "(marked x).")  # fmt: skip
keep = tuple(i for i in ids if st.session_state.get(f"compare_keep_{i}"))
settings = AnalysisSettings(express_threshold=threshold, exclude_aborted=exclude_aborted,
                            min_face_present=min_face, min_frames_per_s=min_fps, min_share_seen=min_seen,
                            keep=keep, baseline=baseline, cut_points=cuts, segment_markers=tuple(segment_markers))  # fmt: skip
if study_id is not None and settings != stored:
    with page_session() as db:
        save_settings(db, study_id, settings)

analysis_key = (db_url, versions, tuple(ids), tuple(sorted(groups.items())), align_on,
                json.dumps(settings.to_json(), sort_keys=True))
analysis, markers, align = cached_analysis(*analysis_key)
if align_on is not None:
    missing = [i for i in ids if i not in (align or {})]
    if missing:
        why = "the stimulus never played" if aligned_stimulus(align_on) else f"no '{escape_markdown(align_on)}' marker"
        st.warning(f"Left out ({why}): sessions {', '.join(f'#{i}' for i in missing)}.")
if analysis is None:
    st.info("None of these sessions has observations to compare.")
    st.stop()

if not analysis.candidates.empty or not analysis.excluded.empty:
    st.subheader("Left out")
    st.caption(f"Left out by the quality rules: {escape_markdown(settings.rules_note())}; tick one to keep it"
               + (" (stored with the study)." if study_id is not None else "."))  # fmt: skip
    st.dataframe(excluded_table(analysis.excluded), hide_index=True, key="compare_excluded")
    for row in analysis.candidates.itertuples():
        label = f"Keep #{row.session_id} {escape_markdown(row.participant_code)} ({escape_markdown(row.reason)})"
        st.checkbox(label, key=f"compare_keep_{row.session_id}")
if not analysis.kept:
    st.info("Every session is left out; tick a session above to keep it.")
    st.stop()

per_group = {g: list(analysis.groups.values()).count(g) for g in sorted(set(analysis.groups.values()))}
left_out_bins = int(analysis.bins["low_frames"].sum())
image_format = st.radio("Chart images", ["PNG", "SVG"], horizontal=True, key="compare_image_format",
                        help="What each chart's camera icon saves.")  # fmt: skip
config = charts.image_config(image_format.lower())
st.caption(
    f"{count_noun(len(analysis.kept), 'session')}, {count_noun(len(per_group), 'group')}; each session counts once. "
    + (f"{count_noun(left_out_bins, 'second')} with fewer than {settings.min_frames_per_s:.0f} analysed frames left "
       "out (marked x at the bottom of the curves). " if left_out_bins else "")
    + escape_markdown(analysis.baseline_note())
    + f" Use a chart's camera icon to download it as {image_format}."
)  # fmt: skip
sizes = ", ".join(f"{escape_markdown(g)}: {n}" for g, n in per_group.items())

metric = st.selectbox("Metric", list(COMPARE_METRICS), index=list(COMPARE_METRICS).index("happy"), key="compare_metric")
first, last = report.time_span(analysis)
start_s, end_s = first, last
if last - first > 1.0:
    start_s, end_s = st.slider("Time range of the means and group differences (s)", first, last, (first, last),
                               step=1.0, key="compare_range")  # fmt: skip
view = cached_view(analysis_key, metric, start_s, end_s)
figures = report.view_figures(analysis, view)
st.plotly_chart(figures["curves"], key="compare_curves", config=config)
st.caption(f"{stats.describe_bands(view.curves)} Sessions per group: {sizes}. {analysis.alignment_note()}")

if view.share_definition is None:
    st.info(stats.share_not_defined(metric))
elif "share" in figures:
    st.plotly_chart(figures["share"], key="compare_share", config=config)
    share_name = "Share attending" if metric == "attention_rate" else "Share expressing"
    st.caption(f"{share_name}: {view.share_definition}; each session once. Sessions per group: {sizes}.")
if aligned_stimulus(align_on):  # thumbnails and key moments of the stimulus all sessions are aligned on
    stimulus_compare(analysis, aligned_stimulus(align_on), threshold=threshold)

st.plotly_chart(figures["means"], key="compare_means", config=config)
emotion_rows = view.overall[view.overall["metric"].isin(EMOTIONS)]
st.caption(f"Mean over sessions of each session's mean from {start_s:.0f} to {end_s:.0f} s. "
           f"{stats.describe_bands(emotion_rows)}")  # fmt: skip
st.dataframe(group_means_table(view.overall[view.overall["metric"] == metric], corrected=analysis.corrected),
             hide_index=True, key="compare_means_table")  # fmt: skip

st.subheader(f"Segments: {metric}")
if "segments" in figures:
    st.plotly_chart(figures["segments"], key="compare_segments", config=config)
st.dataframe(report.segment_rows(view.segments, metric, corrected=analysis.corrected), hide_index=True,
             key="compare_segments_table")  # fmt: skip
st.caption(escape_markdown(report.SEGMENT_NOTE) + (" Set cut points or markers under Analysis settings." if not
                                                   (settings.cut_points or settings.segment_markers) else ""))  # fmt: skip

if len(per_group) >= 2:
    st.subheader(f"Group differences: {metric}")
    if max(per_group.values()) < 2:
        st.info("Each group holds one session: there is nothing to test. Compare groups by tag or a whole study.")
    else:
        st.dataframe(difference_table(view.differences, corrected=analysis.corrected), hide_index=True,
                     key="compare_differences")  # fmt: skip
        if len(view.segment_differences):
            st.dataframe(difference_table(view.segment_differences, corrected=analysis.corrected),
                         hide_index=True, key="compare_segment_differences")  # fmt: skip
        st.caption(escape_markdown(report.TEST_NOTE))



def comparison_csv() -> bytes:
    """Every metric's curves with bands, n and method (made when the button is clicked)."""
    return export_bytes(export_comparison, report.comparison_table(analysis), ".csv")


st.download_button("Comparison CSV", comparison_csv, "comparison.csv", "text/csv", key="compare_dl", on_click="ignore")


def study_report() -> bytes:
    """The study report (HTML) for the page's choices, made when the button is clicked."""
    from dashboard.model_card import analysing_model
    from fer_core.model_file import ModelFileError, read_metadata

    settings = get_settings()
    ids = analysis.quality["model"].dropna() if "model" in analysis.quality else []
    path = analysing_model([settings.resolved_model_path, settings.resolved_live_model_path], ids)
    try:  # the figures of the model that analysed these sessions (live streams can use another than uploads)
        metadata = read_metadata(path) if path is not None else None
    except (ModelFileError, OSError):
        metadata = None
    metrics = list(dict.fromkeys([metric, *report.DEFAULT_REPORT_METRICS]))
    views = [report.metric_view(analysis, m, start_s=start_s, end_s=end_s, markers=markers) for m in metrics]
    title = studies[study_id] if study_id is not None else "selected sessions"
    return report.render_report(title, analysis, views, model_metadata=metadata).encode("utf-8")


st.download_button("Study report (HTML)", study_report, "study-report.html", "text/html", key="compare_report",
                   on_click="ignore", help="One self-contained HTML file: the charts (PNG and SVG buttons), tables, "
                   "left-out sessions, method notes and the model's figures.")  # fmt: skip
