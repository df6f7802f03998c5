"""The quality gate "share of the stimulus seen": per session from its playback events, in the quality table and
the study's exclusion rules (sessions without a stimulus: not applicable, never left out by it)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from sessions import stats
from sessions.analysis import AnalysisSettings, analyse, load_inputs
from sessions.db import session_scope
from sessions.playback import sessions_share_seen
from tests.sessions.test_playback import _played_session, _start, two_ad_study  # noqa: F401 - a fixture


def _session_with_frames(engine, study_id: int, code: str, *, draw_order: bool) -> int:
    """A recording session with 5 s of 15 fps frames with a face; its stimulus order drawn (never played) or not."""
    from sessions.models import Observation
    from sessions.recorder import observation_records
    from sessions.repository import create_session
    from sessions.stimuli import session_sequence
    from tests.sessions.conftest import face

    with session_scope(engine) as db:
        sid = create_session(db, study_id=study_id, participant_code=code).id
        _start(db, sid, datetime(2026, 12, 2, 1, 0, tzinfo=UTC))
        if draw_order:
            session_sequence(db, sid, rng=random.Random(0))
        for i, t in enumerate(np.arange(0.0, 5.0, 1 / 15)):
            for row in observation_records(sid, i, float(t), [face(happy=0.3)]):
                db.add(Observation(**row))
    return sid


def test_share_seen_per_session_and_stimulus(engine, two_ad_study):  # noqa: F811 - the fixture
    full, _ = _played_session(engine, two_ad_study, "full", 3.0)  # A (3 s) played to its end; B (2 s) never
    paused, _ = _played_session(engine, two_ad_study, "paused", 1.0, (1.0, 2.0))  # a pause loses no second
    unplayed = _session_with_frames(engine, two_ad_study, "unplayed", draw_order=True)
    no_stimulus = _session_with_frames(engine, two_ad_study, "camera only", draw_order=False)
    ids = [full, paused, unplayed, no_stimulus]
    with session_scope(engine) as db:
        every = sessions_share_seen(db, ids)
        on_a = sessions_share_seen(db, ids, "A")
        on_b = sessions_share_seen(db, ids, "B")
    assert every == pytest.approx({full: 3 / 5, paused: 3 / 5, unplayed: 0.0})  # no order: absent
    assert on_a == pytest.approx({full: 1.0, paused: 1.0, unplayed: 0.0})
    assert on_b == pytest.approx({full: 0.0, paused: 0.0, unplayed: 0.0})


def test_the_rule_leaves_out_sessions_that_saw_too_little_and_never_one_without_a_stimulus(engine, two_ad_study):  # noqa: F811
    full, _ = _played_session(engine, two_ad_study, "full", 3.0)
    unplayed = _session_with_frames(engine, two_ad_study, "unplayed", draw_order=True)
    no_stimulus = _session_with_frames(engine, two_ad_study, "camera only", draw_order=False)
    ids = [full, unplayed, no_stimulus]

    def run(settings: AnalysisSettings):
        with session_scope(engine) as db:
            inputs = load_inputs(db, ids, settings=settings)
        return analyse(inputs.sessions, inputs.per_second, groups=dict.fromkeys(ids, "all"), settings=settings)

    off = run(AnalysisSettings())  # default 0: off
    assert set(off.kept) == {full, unplayed, no_stimulus}
    quality = off.quality.set_index("session_id")["share_seen"]
    assert quality[full] == pytest.approx(0.6) and quality[unplayed] == 0.0 and np.isnan(quality[no_stimulus])
    strict = run(AnalysisSettings(min_share_seen=0.5))
    assert set(strict.kept) == {full, no_stimulus}  # 0.6 seen and not applicable stay
    assert strict.excluded["session_id"].tolist() == [unplayed]
    assert strict.excluded["reason"].iloc[0] == "saw 0.0% of the stimulus (under 50%)"
    stricter = run(AnalysisSettings(min_share_seen=0.9))
    assert set(stricter.kept) == {no_stimulus}
    kept = run(AnalysisSettings(min_share_seen=0.9, keep=(unplayed,)))
    assert set(kept.kept) == {unplayed, no_stimulus}  # "Keep" overrides the rule


def test_rule_in_the_quality_table_settings_and_messages():
    sessions = pd.DataFrame({"session_id": [1, 2, 3], "participant_code": ["a", "b", "c"], "status": "complete",
                             "duration_s": 10.0, "face_present_rate": 1.0, "dropped_frames": 0,
                             "share_seen": [0.95, 0.4, np.nan]})  # fmt: skip
    bins = pd.DataFrame({"session_id": [1, 2, 3], "n_frames": 150, "low_frames": False})
    quality = stats.quality_table(sessions, bins)
    assert list(quality.columns) == list(stats.QUALITY_COLUMNS) and quality.columns[-1] == "share_seen"
    out = stats.apply_exclusions(quality, stats.ExclusionRules(min_share_seen=0.8))
    assert out.kept == (1, 3) and out.excluded["reason"].tolist() == ["saw 40.0% of the stimulus (under 80%)"]
    assert np.isnan(stats.quality_table(sessions.drop(columns="share_seen"), bins)["share_seen"]).all()
    settings = AnalysisSettings(min_share_seen=0.8)
    assert AnalysisSettings.from_json(settings.to_json()) == settings and settings.rules().min_share_seen == 0.8
    with pytest.raises(ValueError, match=r"min_share_seen has to be a finite number in \[0.0, 1.0\]; got 1.5"):
        AnalysisSettings(min_share_seen=1.5)
    with pytest.raises(ValueError, match="min_share_seen has to be in"):
        stats.ExclusionRules(min_share_seen=-0.1)


def test_rules_in_words():
    assert AnalysisSettings().rules_note() == "aborted sessions, sessions with a face in under 70% of their frames"
    note = AnalysisSettings(exclude_aborted=False, min_face_present=0.5, min_share_seen=0.8).rules_note()
    assert note == ("sessions with a face in under 50% of their frames, sessions that showed under 80% of their "
                    "stimulus (sessions without a stimulus are not left out by it)")
