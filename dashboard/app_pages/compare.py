"""Compare: sessions, a whole study or groups by tag; each session counts once (``sessions.stats``).

Equal-weighted mean curves with 95% bands over sessions (clipped, only where 3 or more sessions have a value),
share of sessions expressing, per-emotion means, group differences; aborted and low-quality sessions left out
unless kept, bins with too few analysed frames left out and marked.
"""

from __future__ import annotations

from collections import Counter

import streamlit as st

from dashboard import charts
from dashboard.downloads import export_bytes
from dashboard.store import page_session
from dashboard.tables import count_noun, difference_table, excluded_table, group_means_table, session_label
from dashboard.text import escape_markdown
from fer_core.emotions import EMOTIONS
from sessions import stats
from sessions.aggregate import COMPARE_METRICS
from sessions.exports import export_comparison
from sessions.repository import list_sessions, list_studies, load_markers, load_observations, marker_offsets

#: Fewest analysed frames per second of a bin that keeps the bin (``sessions.stats.session_bins``).
MIN_FRAMES_PER_S = 5.0

st.title("Compare")
with page_session() as db:
    studies = {s.id: s.name for s in list_studies(db)}
    sessions = list_sessions(db)
if sessions.empty:
    st.info("No session recorded yet.")
    st.stop()

mode = st.radio("Compare", ["Sessions", "A whole study", "Groups by tag"], horizontal=True, key="compare_mode")
labels = {int(r.session_id): session_label(r) for r in sessions.itertuples()}
if mode == "Sessions":
    ids = st.multiselect("Sessions", list(labels), default=list(labels)[:2], format_func=labels.get, key="compare_ids")
    groups = {i: labels[i] for i in ids}
else:
    study = st.selectbox("Study", list(studies), format_func=studies.get, key="compare_study")
    chosen = sessions[sessions["study"] == studies[study]]
    ids = [int(i) for i in chosen["session_id"]]
    groups = {i: "all" for i in ids}
    if mode == "Groups by tag":
        keys = sorted({key for tags in chosen["tags"] for key in tags})
        if not keys:
            st.warning("The sessions of this study have no tags to group by.")
            st.stop()
        key = st.selectbox("Tag", keys, key="compare_tag")
        groups = {int(r.session_id): f"{key}={r.tags.get(key, '(none)')}" for r in chosen.itertuples()}
if not ids:
    st.info("Pick at least one session.")
    st.stop()

with page_session() as db:
    observations = {i: load_observations(db, i) for i in ids}
    marker_labels = sorted({label for i in ids for label in load_markers(db, i)["label"]})
    align_on = st.selectbox("Align on", ["session start", *marker_labels], key="compare_align")
    align = None if align_on == "session start" else marker_offsets(db, ids, align_on)
observations = {i: obs for i, obs in observations.items() if not obs.empty}
if align is not None:
    missing = [i for i in observations if i not in align]
    if missing:
        st.warning(f"Left out (no '{escape_markdown(align_on)}' marker): sessions {', '.join(f'#{i}' for i in missing)}.")
    observations = {i: obs for i, obs in observations.items() if i in align}
if not observations:
    st.info("None of these sessions has observations to compare.")
    st.stop()

# quality gate: aborted and low-face sessions out by default, each can be kept with its box
bins = stats.session_bins(observations, align={i: align[i] for i in observations} if align else None,
                          min_frames_per_s=MIN_FRAMES_PER_S)  # fmt: skip
quality = stats.quality_table(sessions[sessions["session_id"].isin(list(observations))], bins)
candidates = stats.apply_exclusions(quality).excluded
keep = set()
if not candidates.empty:
    st.subheader("Left out")
    st.caption("Aborted sessions and sessions with a face in under 70% of their frames are left out; tick one to keep it.")
    st.dataframe(excluded_table(candidates), hide_index=True, key="compare_excluded")
    for row in candidates.itertuples():
        label = f"Keep #{row.session_id} {escape_markdown(row.participant_code)} ({escape_markdown(row.reason)})"
        if st.checkbox(label, key=f"compare_keep_{row.session_id}"):
            keep.add(int(row.session_id))
kept = stats.apply_exclusions(quality, stats.ExclusionRules(keep=keep)).kept
if not kept:
    st.info("Every session is left out; tick a session above to keep it.")
    st.stop()
bins = bins[bins["session_id"].isin(kept)]
groups = {i: groups[i] for i in kept}
per_group = Counter(groups.values())

threshold = st.slider("Expressing threshold", 0.05, 0.95, 0.5, 0.05, key="compare_threshold",
                      help="A session counts as expressing an emotion in a bin when its bin mean probability is above this.")  # fmt: skip
curves = stats.group_curves(bins, groups, express_threshold=threshold)
left_out_bins = int(bins["low_frames"].sum())
st.caption(
    f"{count_noun(len(kept), 'session')}, {count_noun(len(per_group), 'group')}; each session counts once. "
    + (f"{count_noun(left_out_bins, 'bin')} with fewer than {MIN_FRAMES_PER_S:.0f} analysed frames per second left "
       "out (marked x at the bottom of the curves). " if left_out_bins else "")
    + "Use a chart's camera icon to download it as PNG."
)  # fmt: skip
sizes = ", ".join(f"{escape_markdown(g)}: {n}" for g, n in sorted(per_group.items()))

metric = st.selectbox("Metric", list(COMPARE_METRICS), index=list(COMPARE_METRICS).index("happy"), key="compare_metric")
rows = curves[curves["metric"] == metric]
st.plotly_chart(charts.compare_curves(rows, metric, value_range=stats.METRIC_RANGES[metric]), key="compare_curves")
st.caption(f"{stats.describe_bands(rows)} Sessions per group: {sizes}.")

definition = stats.share_definition(metric, threshold)
if definition is None:
    st.info(stats.share_not_defined(metric))
else:
    st.plotly_chart(charts.share_expressing(rows, metric, definition=definition), key="compare_share")
    st.caption(f"Share expressing: {definition}; each session once. Sessions per group: {sizes}.")

times = bins["time_s"]
start_s, end_s = float(times.min()), float(times.max()) + 1.0
if end_s - start_s > 1.0:
    start_s, end_s = st.slider("Time range of the means and group differences (s)", start_s, end_s, (start_s, end_s),
                               step=1.0, key="compare_range")  # fmt: skip
means = stats.session_means(bins, start_s=start_s, end_s=end_s)
overall = stats.group_means(means, groups)
emotion_rows = overall[overall["metric"].isin(EMOTIONS)]
st.plotly_chart(charts.emotion_means(emotion_rows), key="compare_means")
st.caption(f"Mean over sessions of each session's mean from {start_s:.0f} to {end_s:.0f} s. "
           f"{stats.describe_bands(emotion_rows)}")  # fmt: skip
st.dataframe(group_means_table(overall[overall["metric"] == metric]), hide_index=True, key="compare_means_table")

if len(per_group) >= 2:
    st.subheader(f"Group differences: {metric}")
    if max(per_group.values()) < 2:
        st.info("Each group holds one session: there is nothing to test. Compare groups by tag or a whole study.")
    else:
        differences = stats.group_differences(means, groups, metric)
        st.dataframe(difference_table(differences), hide_index=True, key="compare_differences")
        st.caption("On session means (each session once): Welch's t test (unequal variances), a two-sided permutation "
                   "test of the difference of means (9,999 permutations, fixed seed; exact for small groups) and "
                   "Hedges' g (standardised difference, small-sample corrected). Differences of probabilities are "
                   "in percentage points.")  # fmt: skip
st.download_button("Comparison CSV", export_bytes(export_comparison, curves, ".csv"), "comparison.csv", "text/csv", key="compare_dl")
