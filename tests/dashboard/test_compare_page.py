"""AppTest of the Compare page's statistics: quality gate, wording, the share chart per metric, group differences."""

from __future__ import annotations

import re

import pandas as pd

from tests.dashboard.seed import seed_session
from tests.dashboard.test_pages import _texts


def _table(at, column: str) -> pd.DataFrame:
    """The page's table that has ``column`` (AppTest does not find st.dataframe by key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_an_aborted_session_is_left_out_listed_and_kept_after_ticking_its_box(app, engine):
    seed_session(engine, study="ads", participant="P1")
    seed_session(engine, study="ads", participant="P2")
    aborted = seed_session(engine, study="ads", participant="P*3*", status="aborted")
    at = app("compare")
    at.radio(key="compare_mode").set_value("A whole study").run()
    assert not at.exception
    assert "2 sessions, 1 group;" in _texts(at)
    listed = _table(at, "reason")
    assert list(listed["session"]) == [aborted] and list(listed["reason"]) == ["aborted"]
    box = at.checkbox(key=f"compare_keep_{aborted}")
    assert box.label == f"Keep #{aborted} P\\*3\\* (aborted)"  # participant code escaped
    box.check().run()
    assert not at.exception
    assert "3 sessions, 1 group;" in _texts(at)
    means = _table(at, "95% band")
    assert means.loc[0, "sessions"] == 3 and means.loc[0, "mean"].endswith("%")


def test_one_session_wording_and_the_share_chart_follows_the_metric(app, engine):
    seed_session(engine, participant="P1")
    at = app("compare")
    at.multiselect(key="compare_ids").set_value([int(at.multiselect(key="compare_ids").value[0])]).run()
    assert not at.exception
    text = _texts(at)
    assert "1 session, 1 group;" in text and "1 sessions" not in text
    assert "no band where fewer than 3 sessions have a value" in text
    at.selectbox(key="compare_metric").select("valence").run()
    assert not at.exception
    assert "positive valence" in _texts(at)
    assert "happy" not in at.get("plotly_chart")[1].proto.spec.split('"title"')[-1][:200]
    at.selectbox(key="compare_metric").select("face_present_rate").run()
    assert not at.exception
    assert "Share expressing is not defined for face_present_rate" in _texts(at)
    charts = [c.key for c in at.get("plotly_chart")]
    assert charts == ["compare_curves", "compare_means", "compare_segments"]  # no share chart


def test_group_differences_and_the_csv_carry_n_and_method(app, engine):
    from dashboard.downloads import export_bytes
    from sessions.analysis import analyse, load_inputs
    from sessions.db import session_scope
    from sessions.exports import export_comparison
    from sessions.report import comparison_table, group_labels

    for i, variant in enumerate("AAABBB"):
        happy = 1.0 + i if variant == "A" else 0.5
        seed_session(engine, study="ads", participant=f"P{i}", tags={"variant": variant},
                     timeline=(("neutral", 2.0), ("happy", happy)))  # fmt: skip
    at = app("compare")
    at.radio(key="compare_mode").set_value("Groups by tag").run()
    assert not at.exception
    assert "6 sessions, 2 groups;" in _texts(at)
    assert "bootstrap percentile 95% interval over sessions, 2000 resamples" in _texts(at)
    table = _table(at, "Welch p")
    assert list(table[["group A", "group B", "n A", "n B"]].iloc[0]) == ["variant=A", "variant=B", 3, 3]
    assert table.loc[0, "note"] == "few sessions: read with caution (fewer than 5 in a group)"
    assert table.loc[0, "permutation p"] != ""
    import io

    # the page's "Comparison CSV" button (made on click): every metric's curves through the same functions
    with session_scope(engine) as db:
        inputs = load_inputs(db, inputs_ids(db))
    analysis = analyse(inputs.sessions, inputs.per_second, groups=group_labels(inputs.sessions, "variant"))
    csv = pd.read_csv(io.BytesIO(export_bytes(export_comparison, comparison_table(analysis), ".csv")))
    assert set(csv["baseline"]) == {"No baseline correction (raw probabilities)."}
    assert {"n_sessions", "n_low_frames", "method"} <= set(csv.columns)
    few = csv["n_sessions"] < 3  # group A's sessions run longer than the others
    assert set(csv.loc[~few, "method"]) == {"bootstrap percentile 95% interval over sessions, 2000 resamples"}
    assert set(csv.loc[few, "method"]) == {"no band (fewer than 3 sessions)"} and csv.loc[few, "ci_low"].isna().all()


def test_baseline_and_segments_are_stored_with_the_study_and_nothing_reads_observations(app, engine, monkeypatch):
    import sessions.second_aggregates
    from sessions.analysis import load_settings
    from sessions.db import session_scope

    for i in range(3):
        seed_session(engine, study="ads", participant=f"P{i}", timeline=(("neutral", 2.0), ("happy", 4.0)))

    def no_observations(*args, **kwargs):
        raise AssertionError("Compare read a finished session's observations")

    monkeypatch.setattr(sessions.second_aggregates, "load_observations", no_observations)
    at = app("compare")
    at.radio(key="compare_mode").set_value("A whole study").run()
    at.radio(key="compare_baseline").set_value("first seconds").run()
    at.number_input(key="compare_baseline_s").set_value(2.0).run()
    at.text_input(key="compare_cuts").set_value("3").run()
    assert not at.exception
    text = re.sub(r"\\(.)", r"\1", _texts(at))  # as the reader sees it (Markdown escapes removed)
    assert "baseline-corrected: each session's mean over the first 2 s of the session subtracted" in text
    segments = _table(at, "time to peak (s, median)")
    assert list(segments["segment"]) == ["0-3 s", "3-6 s"] and list(segments["sessions"]) == [3, 3]
    # raw happy: 1/30 for 2 s, then 0.8; corrected by the first 2 s: the peak is 0.8 - 1/30
    assert segments.loc[1, "peak"] == "+76.7 points" and segments.loc[1, "share expressing"] == "100.0%"
    assert segments.loc[0, "time to peak (s, median)"] == "2"
    study_id = int(at.selectbox(key="compare_study").value)
    with session_scope(engine) as db:
        stored = load_settings(db, study_id)
    assert stored.baseline is not None and stored.baseline.seconds == 2.0 and stored.cut_points == (3.0,)
    again = app("compare")
    again.radio(key="compare_mode").set_value("A whole study").run()
    assert not again.exception
    assert again.radio(key="compare_baseline").value == "first seconds"
    assert again.text_input(key="compare_cuts").value == "3"
    assert [b.label for b in again.get("download_button")] == ["Comparison CSV", "Study report (HTML)"]


def test_bad_cut_points_are_named_and_the_page_still_renders(app, engine):
    seed_session(engine, study="ads", participant="P1")
    at = app("compare")
    at.radio(key="compare_mode").set_value("A whole study").run()
    at.text_input(key="compare_cuts").set_value("10, soon").run()
    assert not at.exception
    assert "got 'soon'" in re.sub(r"\\(.)", r"\1", " ".join(e.value for e in at.error))
    assert list(_table(at, "time to peak (s, median)")["segment"]) == ["0-6 s"]


def inputs_ids(db) -> list[int]:
    from sessions.repository import list_sessions

    return [int(i) for i in list_sessions(db)["session_id"]]


def test_quality_rules_change_the_left_out_sessions_and_are_stored_with_the_study(app, engine):
    from sessions.analysis import load_settings
    from sessions.db import session_scope

    for i in range(2):
        seed_session(engine, study="ads", participant=f"P{i}")
    aborted = seed_session(engine, study="ads", participant="P2", status="aborted")
    at = app("compare")
    at.radio(key="compare_mode").set_value("A whole study").run()
    assert not at.exception
    assert at.checkbox(key="compare_exclude_aborted").value is True  # the defaults, shown
    assert at.slider(key="compare_min_face").value == 0.7 and at.slider(key="compare_min_seen").value == 0.0
    assert list(_table(at, "reason")["session"]) == [aborted] and "2 sessions, 1 group;" in _texts(at)
    shown = re.sub(r"\\(.)", r"\1", _texts(at))  # as the reader sees it (Markdown escapes removed)
    assert "Left out by the quality rules: aborted sessions, sessions with a face in under 70% of their" in shown
    at.checkbox(key="compare_exclude_aborted").uncheck().run()
    assert not at.exception
    assert "3 sessions, 1 group;" in _texts(at) and not any("reason" in d.value.columns for d in at.dataframe)
    at.number_input(key="compare_min_fps").set_value(20.0).run()  # 10 fps sessions: every second too thin
    at.slider(key="compare_min_seen").set_value(0.8).run()
    assert not at.exception
    assert "with fewer than 20 analysed frames left out" in _texts(at)
    study_id = int(at.selectbox(key="compare_study").value)
    with session_scope(engine) as db:
        stored = load_settings(db, study_id)
    assert (stored.exclude_aborted, stored.min_frames_per_s, stored.min_share_seen) == (False, 20.0, 0.8)
    again = app("compare")  # a new visit restores the study's rules into the controls
    again.radio(key="compare_mode").set_value("A whole study").run()
    assert not again.exception
    assert again.checkbox(key="compare_exclude_aborted").value is False
    assert again.number_input(key="compare_min_fps").value == 20.0 and again.slider(key="compare_min_seen").value == 0.8
    again.checkbox(key="compare_exclude_aborted").check().run()
    assert list(_table(again, "reason")["session"]) == [aborted]
