"""Baseline correction, segments and segment group tests on synthetic per-second tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from fer_core.emotions import EMOTIONS
from sessions import segments as seg
from sessions import stats
from sessions.aggregate import BIN_COLUMNS
from sessions.analysis import AnalysisSettings, Baseline, analyse, apply_baseline, baseline_windows, metric_range


def seconds(happy, *, frames=15) -> pd.DataFrame:
    """A per-second table (``BIN_COLUMNS``) whose happy probability per second is ``happy``, neutral the rest."""
    happy = np.asarray(happy, dtype=np.float64)
    table = pd.DataFrame({"time_s": np.arange(len(happy), dtype=np.float64)})
    for emotion in EMOTIONS:
        table[emotion] = 0.0
        table[f"dominant_{emotion}"] = 0.0
    table["happy"], table["neutral"] = happy, 1.0 - happy
    table["dominant_happy"] = (happy > 0.5).astype(float)
    table["dominant_neutral"] = 1.0 - table["dominant_happy"]
    table["face_present_rate"] = 1.0
    table["valence"] = happy
    table["engagement"] = happy
    table["n_frames"] = frames
    for column in BIN_COLUMNS:  # any other per-second column (e.g. attention) unknown here
        if column not in table:
            table[column] = np.nan
    return table[list(BIN_COLUMNS)]


def session_list(ids, status="complete") -> pd.DataFrame:
    return pd.DataFrame({"session_id": ids, "participant_code": [f"P{i}" for i in ids], "status": status,
                         "duration_s": 20.0, "face_present_rate": 1.0, "dropped_frames": 0})  # fmt: skip


def test_cut_points_give_named_segments_inside_the_range():
    found = seg.cut_point_segments([30, -5, 10, 10, 99], 0.0, 60.0)
    assert found == [seg.Segment("0-10 s", 0.0, 10.0), seg.Segment("10-30 s", 10.0, 30.0),
                     seg.Segment("30-60 s", 30.0, 60.0)]  # fmt: skip
    assert seg.cut_point_segments([], 0.0, 5.0) == [seg.Segment("0-5 s", 0.0, 5.0)]
    with pytest.raises(ValueError, match="start_s has to be below end_s"):
        seg.cut_point_segments([1], 5.0, 5.0)


def test_segment_mean_peak_time_to_peak_and_expressing_per_session():
    a = [0.1] * 10 + [0.2, 0.3, 0.9, 0.4, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
    b = [0.3] * 10 + [0.4] * 10
    bins = stats.session_bins({1: seconds(a), 2: seconds(b)})
    rows = seg.session_segments(bins, seg.cut_point_segments([10], 0, 20), "happy", threshold=0.5)
    first = rows[rows["segment"] == "10-20 s"].set_index("session_id")
    assert first.loc[1, "mean"] == pytest.approx(np.mean(a[10:]))
    assert first.loc[1, "peak"] == pytest.approx(0.9)
    assert first.loc[1, "time_to_peak_s"] == pytest.approx(2.0)  # the bin at 12 s, 2 s into the segment
    assert first.loc[1, "expressing"] == 1.0 and first.loc[2, "expressing"] == 0.0
    assert first.loc[2, "time_to_peak_s"] == 0.0  # ties: the first bin
    table = seg.segment_table(rows, {1: "A", 2: "A"})
    row = table[table["segment"] == "10-20 s"].iloc[0]
    assert row["n_sessions"] == 2 and row["share_expressing"] == 0.5
    assert row["mean"] == pytest.approx((np.mean(a[10:]) + 0.4) / 2)  # each session once
    assert row["peak"] == pytest.approx((0.9 + 0.4) / 2) and row["time_to_peak_s"] == pytest.approx(1.0)


def test_low_frame_bins_do_not_count_and_face_present_has_no_expressing():
    table = seconds([0.9, 0.1, 0.1])
    table.loc[0, "n_frames"] = 2  # left out: fewer than 5 frames
    bins = stats.session_bins({1: table})
    rows = seg.session_segments(bins, [seg.Segment("all", 0, 3)], "happy")
    assert rows.loc[0, "n_bins"] == 2 and rows.loc[0, "peak"] == pytest.approx(0.1) and rows.loc[0, "expressing"] == 0
    rate = seg.session_segments(bins, [seg.Segment("all", 0, 3)], "face_present_rate")
    assert math.isnan(rate.loc[0, "expressing"])


def test_marker_segments_follow_each_sessions_own_markers_and_skip_missing_ones():
    markers = {"ad": {1: 2.0, 2: 5.0}, "end": {1: 8.0}}
    found = seg.marker_segments(["ad", "end"], markers, align={1: 1.0, 2: 0.0})
    assert found[1] == [seg.Segment("ad to end", 1.0, 7.0), seg.Segment("after end", 7.0, math.inf)]
    assert found[2] == []  # no "end" marker: nothing guessed (and "after end" needs it too)
    bins = stats.session_bins({1: seconds([0.2] * 3 + [0.6] * 3 + [0.1] * 6)}, align={1: 1.0})
    rows = seg.session_segments(bins, found, "happy")
    ad = rows[rows["segment"] == "ad to end"].iloc[0]
    # aligned bins -1..10; the segment [1, 7) holds the session seconds 2..7: 0.6 at 3..5, then 0.1
    assert ad["n_bins"] == 6 and ad["peak"] == pytest.approx(0.6) and ad["time_to_peak_s"] == pytest.approx(1.0)


def test_segment_differences_match_scipy_welch_and_hedges_g():
    rng = np.random.default_rng(3)
    tables, groups = {}, {}
    for sid in range(1, 13):
        level = 0.6 if sid <= 6 else 0.3
        tables[sid] = seconds(np.clip(level + rng.normal(0, 0.05, 20), 0, 1))
        groups[sid] = "A" if sid <= 6 else "B"
    bins = stats.session_bins(tables)
    rows = seg.session_segments(bins, seg.cut_point_segments([10], 0, 20), "happy")
    found = seg.segment_differences(rows, groups, "happy")
    assert list(found["segment"]) == ["0-10 s", "10-20 s"]
    second = rows[rows["segment"] == "10-20 s"]
    a = second[second["session_id"] <= 6]["mean"].to_numpy()
    b = second[second["session_id"] > 6]["mean"].to_numpy()
    row = found.iloc[1]
    assert row["welch_p"] == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
    import statistics

    pooled = math.sqrt((5 * statistics.variance(a) + 5 * statistics.variance(b)) / 10)  # 6 sessions a group
    assert row["hedges_g"] == pytest.approx((statistics.mean(a) - statistics.mean(b)) / pooled * (1 - 3 / 39))
    assert row["hedges_g"] > 3
    # a value worked by hand: means 2.5 and 3.5, both SDs sqrt(5/3), J = 1 - 3/23
    assert stats.hedges_g(np.array([1.0, 2, 3, 4]), np.array([2.0, 3, 4, 5])) == pytest.approx(-0.673562, abs=1e-6)
    assert row["n_a"] == row["n_b"] == 6 and row["note"] == ""
    few = seg.segment_differences(rows[rows["session_id"].isin([1, 2, 7, 8])], groups, "happy")
    assert (few["note"] == stats.TOO_FEW).all()


def test_baseline_first_seconds_is_subtracted_per_session_and_raw_bins_stay():
    bins = stats.session_bins({1: seconds([0.2] * 10 + [0.5] * 10), 2: seconds([0.4] * 10 + [0.4] * 10)})
    corrected, base = apply_baseline(bins, baseline_windows(Baseline(seconds=10), [1, 2], {}))
    one = corrected[corrected["session_id"] == 1]
    assert np.allclose(one["happy"].to_numpy(), [0.0] * 10 + [0.3] * 10)
    assert np.allclose(corrected[corrected["session_id"] == 2]["happy"], 0.0)
    assert base.set_index("session_id").loc[1, "happy"] == pytest.approx(0.2) and (base["n_bins"] == 10).all()
    assert np.allclose(bins[bins["session_id"] == 1]["happy"].iloc[-1], 0.5)  # input untouched
    assert (corrected["face_present_rate"] == 1.0).all()  # never corrected


def test_baseline_between_markers_in_session_time_with_an_alignment():
    markers = {"b0": {1: 2.0}, "b1": {1: 5.0}}
    windows = baseline_windows(Baseline(seconds=None, start_marker="b0", end_marker="b1"), [1], markers)
    assert windows == {1: (2.0, 5.0)}
    table = seconds([0.9, 0.9, 0.1, 0.2, 0.3, 0.9, 0.9])
    bins = stats.session_bins({1: table}, align={1: 4.0})
    corrected, base = apply_baseline(bins, windows, align={1: 4.0})
    assert base.loc[0, "happy"] == pytest.approx(0.2) and base.loc[0, "n_bins"] == 3
    assert corrected["happy"].max() == pytest.approx(0.7)
    assert metric_range("happy", corrected=True) == (-1.0, 1.0) and metric_range("valence", corrected=True) == (-2.0, 2.0)


def test_analyse_leaves_out_sessions_without_a_baseline_and_keeps_share_on_raw_values():
    tables = {1: seconds([0.6] * 20), 2: seconds([0.6] * 20), 3: seconds([0.7] * 20)}
    settings = AnalysisSettings(baseline=Baseline(seconds=None, start_marker="calm", end_marker="go"))
    markers = {"calm": {1: 0.0, 2: 0.0}, "go": {1: 5.0, 2: 5.0}}
    result = analyse(session_list([1, 2, 3]), tables, groups=dict.fromkeys([1, 2, 3], "all"), settings=settings,
                     markers=markers)  # fmt: skip
    assert result.kept == (1, 2)
    assert result.excluded["session_id"].tolist() == [3] and "no baseline" in result.excluded["reason"].iloc[0]
    happy = result.curves_for(["happy"])
    assert np.allclose(happy["mean"], 0.0)  # corrected
    assert np.allclose(happy["share_expressing"], 1.0)  # raw 0.6 is above 0.5
    assert "baseline-corrected" in result.baseline_note() and result.value_range("happy") == (-1.0, 1.0)


def test_analyse_applies_the_studys_exclusion_rules_and_overrides():
    tables = {1: seconds([0.6] * 5), 2: seconds([0.2] * 5), 3: seconds([0.3] * 5)}
    sessions = session_list([1, 2, 3])
    sessions.loc[1, "status"] = "aborted"
    result = analyse(sessions, tables, groups=dict.fromkeys([1, 2, 3], "all"))
    assert result.kept == (1, 3) and result.excluded["session_id"].tolist() == [2]
    kept = analyse(sessions, tables, groups=dict.fromkeys([1, 2, 3], "all"), settings=AnalysisSettings(keep=(2,)))
    assert kept.kept == (1, 2, 3) and kept.excluded.empty and kept.candidates["session_id"].tolist() == [2]
    loose = analyse(sessions, tables, groups=dict.fromkeys([1, 2, 3], "all"),
                    settings=AnalysisSettings(exclude_aborted=False))  # fmt: skip
    assert loose.kept == (1, 2, 3)


def test_settings_round_trip_and_name_the_bad_value():
    settings = AnalysisSettings(express_threshold=0.3, keep=(4, 2), baseline=Baseline(seconds=5),
                                cut_points=(30, 10), segment_markers=("ad",))  # fmt: skip
    assert AnalysisSettings.from_json(settings.to_json()) == settings
    assert settings.keep == (2, 4) and settings.cut_points == (10.0, 30.0)
    assert AnalysisSettings.from_json(None) == AnalysisSettings()
    with pytest.raises(ValueError, match="express_threshold has to be a finite number in"):
        AnalysisSettings(express_threshold=1.5)
    with pytest.raises(ValueError, match="unknown keys"):
        AnalysisSettings.from_json({"threshold": 0.4})
    with pytest.raises(ValueError, match="baseline seconds has to be > 0"):
        Baseline(seconds=0)


def test_corrected_bands_may_go_below_zero_and_are_clipped_to_the_difference_range():
    rng = np.random.default_rng(1)
    tables = {i: seconds(np.r_[np.full(5, 0.6), np.clip(0.2 + rng.normal(0, 0.05, 5), 0, 1)]) for i in range(1, 5)}
    result = analyse(session_list(list(tables)), tables, groups=dict.fromkeys(tables, "all"),
                     settings=AnalysisSettings(baseline=Baseline(seconds=5)))  # fmt: skip
    late = result.curves_for(["happy"]).query("time_s >= 5")
    assert (late["mean"] < -0.3).all() and (late["ci_low"] < late["mean"]).all() and (late["ci_low"] >= -1).all()
    raw = analyse(session_list(list(tables)), tables, groups=dict.fromkeys(tables, "all")).curves_for(["happy"])
    assert (raw["ci_low"] >= 0).all() and set(raw["metric"]) == {"happy"}


def test_corrected_group_means_have_bands_around_a_negative_mean():
    from sessions.report import metric_view

    rng = np.random.default_rng(5)
    tables = {i: seconds(np.r_[np.full(5, 0.5), np.clip(0.41 + rng.normal(0, 0.02, 5), 0, 1)]) for i in range(1, 6)}
    result = analyse(session_list(list(tables)), tables, groups=dict.fromkeys(tables, "all"),
                     settings=AnalysisSettings(baseline=Baseline(seconds=5)))  # fmt: skip
    view = metric_view(result, "happy", start_s=5.0)
    happy = view.overall.set_index("metric").loc["happy"]
    late = [np.mean(t["happy"].to_numpy()[5:]) - 0.5 for t in tables.values()]
    assert happy["mean"] == pytest.approx(np.mean(late)) and happy["mean"] < -0.05
    assert happy["ci_low"] < happy["mean"] < happy["ci_high"] and happy["ci_low"] >= -1.0
    assert happy["ci_low"] >= min(late) - 1e-9 and happy["ci_high"] <= max(late) + 1e-9  # bootstrap of 5 means
    means = stats.session_means(result.values, start_s=5.0)
    clipped = stats.group_means(means).set_index("metric").loc["happy"]  # default: the raw range [0, 1]
    assert clipped["ci_low"] == clipped["ci_high"] == 0.0


def test_baseline_first_seconds_uses_session_seconds_when_aligned_on_a_fractional_marker():
    tables = {i: seconds([0.1, 0.2, 0.8, 0.9, 0.9, 0.5, 0.5, 0.5, 0.5, 0.5]) for i in (1, 2)}
    result = analyse(session_list([1, 2]), tables, groups={1: "all", 2: "all"}, align={1: 2.5, 2: 2.5},
                     settings=AnalysisSettings(baseline=Baseline(seconds=2)))  # fmt: skip
    base = result.baseline.set_index("session_id")
    assert base.loc[1, "happy"] == pytest.approx(0.15) and base.loc[1, "n_bins"] == 2  # session seconds 0 and 1
    first = result.values[result.values["session_id"] == 1].set_index("time_s")["happy"]
    assert first.loc[0.0] == pytest.approx(0.8 - 0.15)  # session second 2 (aligned [-0.5, 0.5)) is the nearest
    from sessions.report import method_notes, metric_view

    assert "up to 0.5 s" in result.alignment_note()
    assert result.alignment_note() in method_notes(result, metric_view(result, "happy"))
    whole = analyse(session_list([1, 2]), tables, groups={1: "all", 2: "all"}, align={1: 2.0, 2: 0.0})
    assert whole.alignment_note() == ""  # whole seconds: stored seconds land exactly


def test_segment_attending_uses_the_curves_attending_share_not_the_expressing_threshold():
    tables = {1: seconds([0.2] * 4), 2: seconds([0.2] * 4)}
    tables[1]["attention_rate"], tables[2]["attention_rate"] = 0.4, 0.6
    bins = stats.session_bins(tables)
    for threshold in (0.3, 0.7):  # neither moves the attending cut (stats.ATTENDING_SHARE = 0.5 of frames)
        rows = seg.session_segments(bins, [seg.Segment("all", 0, 4)], "attention_rate", threshold=threshold)
        assert rows.set_index("session_id")["expressing"].to_dict() == {1: 0.0, 2: 1.0}
        curves = stats.group_curves(bins, express_threshold=threshold, metrics=["attention_rate"])
        assert np.allclose(curves["share_expressing"], 0.5)  # the same sessions attend in the curves
