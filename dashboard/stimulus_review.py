"""Review on the stimulus timeline: a session's expressions, valence and engagement against stimulus seconds, a strip
of the stimulus's thumbnails under the axis, key moments, the frame at a chosen second, and playback quality.

The figure is a pure function (:func:`stimulus_timeline`); :func:`stimulus_review` renders the section of the
Review page from :func:`sessions.playback.session_playback`.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from dashboard.charts import EMOTION_COLORS, escape_chart_text
from dashboard.resources import get_settings
from dashboard.store import page_session
from dashboard.text import escape_markdown
from fer_core.emotions import EMOTIONS
from sessions import stats
from sessions.playback import SessionPlayback, key_moments, stimulus_bins, stimulus_id_named
from sessions.stimuli import StimulusError, frame_at, get_stimulus, thumbnail_files

#: Thumbnails drawn under the axis at most (evenly spaced over the stimulus).
MAX_STRIP = 30
#: Prefix of the Compare page's "Align on" choices that put sessions on a stimulus's own timeline.
STIMULUS_ALIGN = "stimulus time: "


def aligned_stimulus(align_on: str | None) -> str | None:
    """The stimulus an "Align on" choice names (``STIMULUS_ALIGN`` + name), else None (session start, a marker)."""
    return align_on[len(STIMULUS_ALIGN):] if align_on and align_on.startswith(STIMULUS_ALIGN) else None


def _data_uri(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def stimulus_timeline(bins: pd.DataFrame, *, duration_s: float, thumbnails: list[Path] | None = None,
                      moments: pd.DataFrame | None = None, title: str = "",
                      value_title: str = "probability") -> go.Figure:  # fmt: skip
    """The expressions, valence and engagement of one stimulus per stimulus second, its thumbnails under the axis.

    Parameters
    ----------
    bins : pandas.DataFrame
        :func:`sessions.playback.stimulus_bins`: ``time_s`` (stimulus seconds), the seven mean probabilities,
        ``valence`` ([-1, 1]) and ``engagement`` ([0, 1]); ``attention_rate`` (share of frames with an attentive
        face, [0, 1]), when present and known, is drawn with them.
    duration_s : float
        The stimulus's duration (seconds): the x axis.
    thumbnails : list of Path, optional
        JPEG files, the ``k``-th showing second ``k`` (:func:`sessions.stimuli.thumbnail_files`); at most
        ``MAX_STRIP`` are drawn, evenly spaced.
    moments : pandas.DataFrame, optional
        :func:`sessions.playback.key_moments`, marked by dashed lines labelled with the expression.
    title : str
        Escaped for the chart.
    value_title : str
        What the expression values are (``"probability"``; ``"share of participants"`` on Compare).

    Returns
    -------
    plotly.graph_objects.Figure
        Three rows sharing the x axis: expressions (probability 0-1), valence, engagement and attention, thumbnails.
    """
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.5, 0.3, 0.2],
                           subplot_titles=("Expressions", "Valence, engagement and attention", ""))  # fmt: skip
    x = bins["time_s"] + 0.5  # the middle of each stimulus second
    for emotion in EMOTIONS:
        figure.add_trace(go.Scatter(x=x, y=bins[emotion], name=emotion, mode="lines",
                                    line={"color": EMOTION_COLORS.get(emotion)}), row=1, col=1)  # fmt: skip
    figure.add_trace(go.Scatter(x=x, y=bins["valence"], name="valence", mode="lines", line={"color": "#333", "width": 2}),
                     row=2, col=1)  # fmt: skip
    figure.add_trace(go.Scatter(x=x, y=bins["engagement"], name="engagement", mode="lines",
                                line={"color": "#888", "dash": "dot", "width": 2}), row=2, col=1)  # fmt: skip
    if "attention_rate" in bins and bins["attention_rate"].notna().any():  # share of frames attentive (0-1)
        figure.add_trace(go.Scatter(x=x, y=bins["attention_rate"], name="attention", mode="lines",
                                    line={"color": "#2a7", "dash": "dash", "width": 2}), row=2, col=1)  # fmt: skip
    files = list(thumbnails or [])
    step = max(1, -(-len(files) // MAX_STRIP))
    for second in range(0, len(files), step):
        figure.add_layout_image(source=_data_uri(files[second]), xref="x3", yref="y3", x=second, y=1, sizex=step,
                                sizey=1, sizing="contain", xanchor="left", yanchor="top", layer="above")  # fmt: skip
    for moment in (moments.itertuples() if moments is not None else ()):
        for row in (1, 2):
            figure.add_vline(x=moment.time_s + 0.5, line={"dash": "dash", "color": EMOTION_COLORS.get(moment.emotion, "#555")},
                             row=row, col=1)  # fmt: skip
        figure.add_annotation(x=moment.time_s + 0.5, y=1.0, xref="x", yref="y", text=f"{moment.emotion} +{moment.rise:.2f}",
                              showarrow=False, yanchor="bottom", font={"size": 11})  # fmt: skip
    figure.update_yaxes(range=[0, 1.05], title_text=value_title, row=1, col=1)
    figure.update_yaxes(range=[-1, 1], title_text="valence / engagement / attention", row=2, col=1)
    figure.update_yaxes(range=[0, 1], visible=False, row=3, col=1)
    figure.update_xaxes(range=[0, max(float(duration_s), 1.0)], row=3, col=1, title_text="stimulus time (s)")
    figure.update_layout(title=escape_chart_text(title), height=640, margin={"t": 60, "b": 40},
                         legend={"orientation": "h", "y": -0.12})  # fmt: skip
    return figure


def never_played_reason(events: pd.DataFrame, position: int) -> str:
    """Why a stimulus of the session has no timeline, in words for the researcher."""
    mine = events[events["position"] == position] if len(events) else events
    kinds = set(mine["kind"]) if len(mine) else set()
    if "blocked" in kinds:
        return "the participant's browser blocked playback and it was never started"
    if "missing" in kinds:
        return "the stimulus had been deleted when the session reached it"
    if "error" in kinds:
        return "the participant's browser could not play the file"
    if len(events) and (events["kind"] == "start").any():
        return "the session ended before this stimulus played"
    return "the participant never pressed Start (no playback was recorded)"


@st.cache_data(show_spinner=False, max_entries=64)
def _frame(stimulus_id: int, second: float, media_dir: str | None):
    with page_session() as db:
        return frame_at(get_stimulus(db, stimulus_id), second, media_dir)


def moment_pictures(moments: pd.DataFrame, thumbnails: list[Path], rise_text) -> None:
    """Up to three key moments side by side: the stimulus's thumbnail at each second and what rose there.

    ``moments`` is :func:`sessions.playback.key_moments` (``time_s`` stimulus seconds, ``emotion``, ``rise``,
    ``value``); ``thumbnails[k]`` shows second ``k``; ``rise_text(moment)`` words the rise (a probability on Review,
    a share of participants on Compare). Nothing is drawn without moments.
    """
    if not len(moments):
        return
    for col, moment in zip(st.columns(3), moments.itertuples(), strict=False):
        second = int(moment.time_s)
        if second < len(thumbnails):
            col.image(str(thumbnails[second]), width=240)
        col.caption(f"{second} s: {moment.emotion} {rise_text(moment)}")


def stimulus_review(session_id: int, playback: SessionPlayback, bin_s: float = 1.0) -> None:
    """The Review page's stimulus section of one session (nothing when its study plays no stimulus)."""
    if not playback.sequence:
        return
    st.subheader("On the stimulus timeline")
    quality = playback.quality
    st.dataframe(quality.drop(columns=["position"]), hide_index=True, key="review_playback_quality", column_config={
        "share_seen": st.column_config.NumberColumn("share seen", format="percent"),
        "share_seen_with_face": st.column_config.NumberColumn("seen with a face", format="percent"),
        "duration_s": st.column_config.NumberColumn("duration (s)", format="%.1f"),
        "stalled_s": st.column_config.NumberColumn("stalled (s)", format="%.1f"),
        "seen_s": st.column_config.NumberColumn("seen (s)", format="%.1f")})  # fmt: skip
    names = {item.position: item for item in playback.sequence}
    position = st.selectbox("Stimulus", list(names), format_func=lambda p: names[p].name, key=f"review_stimulus_{session_id}")
    item = names[position]
    row = quality[quality["position"] == position].iloc[0]
    if not row["played"]:
        st.info(f"{escape_markdown(item.name)} never played in this session: {never_played_reason(playback.events, position)}. "
                "Its rows have no stimulus time.")  # fmt: skip
        return
    media_dir = get_settings().media_dir
    thumbnails: list[Path] = []
    stimulus = None
    if item.stimulus_id is not None:
        with page_session() as db:
            try:
                stimulus = get_stimulus(db, item.stimulus_id)
                thumbnails = thumbnail_files(stimulus, media_dir)
            except StimulusError:
                stimulus = None
    if stimulus is None:
        st.caption("This stimulus was deleted: its timeline is kept, its pictures are not.")
    bins = stimulus_bins(playback.observations, item.name, bin_s)
    moments = key_moments(bins, bin_s=bin_s)
    duration = item.duration_s or float(bins["time_s"].max() + bin_s)
    st.plotly_chart(stimulus_timeline(bins, duration_s=duration, thumbnails=thumbnails, moments=moments, title=item.name),
                    key=f"review_stimulus_chart_{session_id}")  # fmt: skip
    st.caption("Key moments: the seconds where an expression's mean probability rises most from the second before "
               "(at most 3, by at least 5 points, at least 2 s apart; neutral left out)."
               + ("" if len(moments) else " None in this session."))  # fmt: skip
    moment_pictures(moments, thumbnails, lambda m: f"+{m.rise:.2f} (to {m.value:.0%})")
    if stimulus is not None and duration > 0:
        chosen = st.slider("Frame at stimulus second", 0.0, float(duration), 0.0, step=0.5, key=f"review_stimulus_second_{session_id}")
        try:
            st.image(_frame(stimulus.id, chosen, media_dir), caption=f"{escape_markdown(item.name)} at {chosen:.1f} s", width=720)
        except StimulusError as exc:
            st.warning(escape_markdown(exc))


def stimulus_compare(analysis, stimulus: str, *, threshold: float) -> None:
    """Compare's stimulus section: the share of participants expressing each emotion per stimulus second (each
    kept session once), mean valence and engagement, the thumbnail strip and the key moments (the seconds where a
    share rises most; :func:`sessions.playback.key_moments`).

    Parameters
    ----------
    analysis : sessions.analysis.StudyAnalysis
        Aligned on ``stimulus`` (``analysis.bins`` on its seconds).
    stimulus : str
    threshold : float
        The expressing threshold (probability).
    """
    kept = analysis.bins[analysis.bins["session_id"].isin(list(analysis.kept))]
    if kept.empty:
        return
    metrics = [*EMOTIONS, "valence", "engagement"]
    curves = stats.group_curves(kept, metrics=metrics, express_threshold=threshold)
    wide = curves.pivot_table(index="time_s", columns="metric", values="share_expressing", dropna=False)
    means = curves.pivot_table(index="time_s", columns="metric", values="mean", dropna=False)
    table = pd.DataFrame({"time_s": wide.index.to_numpy()})
    for emotion in EMOTIONS:
        table[emotion] = wide[emotion].to_numpy() if emotion in wide else float("nan")
    for column in ("valence", "engagement"):
        table[column] = means[column].to_numpy() if column in means else float("nan")
    thumbnails: list[Path] = []
    with page_session() as db:
        stimulus_id = stimulus_id_named(db, analysis.kept, stimulus)
        if stimulus_id is not None:
            try:
                found = get_stimulus(db, stimulus_id)
                thumbnails, duration = thumbnail_files(found, get_settings().media_dir), found.duration_s
            except StimulusError:
                stimulus_id = None
    if stimulus_id is None:
        duration = float(table["time_s"].max() + 1.0)
    moments = key_moments(table)
    st.subheader(f"On the stimulus timeline: {escape_markdown(stimulus)}")
    st.plotly_chart(stimulus_timeline(table, duration_s=duration or 1.0, thumbnails=thumbnails, moments=moments,
                                      title=f"Share of participants expressing, {stimulus}",
                                      value_title="share of participants"), key="compare_stimulus_chart")  # fmt: skip
    st.caption(f"Share of the {len(analysis.kept)} kept sessions whose mean probability in the stimulus second is above "
               f"{threshold:.0%} (each participant once); valence and engagement are means over sessions. Key moments: "
               "the seconds where a share rises most from the second before (at most 3, by at least 5 points, 2 s "
               "apart; neutral left out)." + ("" if len(moments) else " None here."))  # fmt: skip
    moment_pictures(moments, thumbnails, lambda m: f"+{m.rise:.0%} (to {m.value:.0%} of participants)")
