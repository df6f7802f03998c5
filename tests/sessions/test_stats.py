"""Statistics across participants, on synthetic tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from sessions import stats
from sessions.aggregate import per_bin
from tests.sessions.test_aggregate import _rows, _session


def _curve(table: pd.DataFrame, metric: str, group: str = "all") -> pd.DataFrame:
    return table[(table["metric"] == metric) & (table["group"] == group)].set_index("time_s")


def test_each_session_counts_once_whatever_its_length():
    long_one = _session([{"happy": 0.9}] * 123, fps=15)
    short_one = _session([{"happy": 0.2}] * 20, fps=15)
    bins = stats.session_bins({1: long_one, 2: short_one})
    means = stats.session_means(bins)
    happy = means[means["metric"] == "happy"].set_index("session_id")
    assert happy.loc[1, "mean"] == pytest.approx(0.9) and happy.loc[1, "n_bins"] == 123
    group = stats.group_means(means).set_index("metric")
    assert group.loc["happy", "mean"] == pytest.approx((0.9 + 0.2) / 2)  # not (103 * 0.9 + 20 * 0.55) / 123
    assert group.loc["happy", "n_sessions"] == 2
    curve = _curve(stats.group_curves(bins), "happy")
    assert curve.loc[0.0, "mean"] == pytest.approx(0.55) and curve.loc[0.0, "n_sessions"] == 2
    assert curve.loc[50.0, "mean"] == pytest.approx(0.9) and curve.loc[50.0, "n_sessions"] == 1


def test_no_band_below_three_sessions():
    bins = stats.session_bins({1: _session([{"happy": 0.9}]), 2: _session([{"happy": 0.1}])})
    row = _curve(stats.group_curves(bins), "happy").loc[0.0]
    assert row["n_sessions"] == 2 and math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
    assert row["method"] == stats.NO_BAND
    means = stats.group_means(stats.session_means(bins)).set_index("metric")
    assert math.isnan(means.loc["valence", "ci_low"])


def test_bands_are_clipped_to_the_metric_range():
    # 10 sessions, 9 fully happy and one not: the t interval 0.9 +- 0.226 reaches above 1
    values = np.array([[1.0]] * 9 + [[0.0]])
    band = stats.interval_bands(values, value_range=(0.0, 1.0))
    assert band["ci_high"][0] == 1.0 and band["ci_low"][0] == pytest.approx(
        0.9 - 2.262157 * values.std(ddof=1) / math.sqrt(10)
    )
    # valence of 10 sessions near -1: the band stays within [-1, 1]
    valence = np.array([[-1.0]] * 9 + [[0.5]])
    low = stats.interval_bands(valence, value_range=stats.METRIC_RANGES["valence"])["ci_low"][0]
    assert low == -1.0
    per_session = {i: _session([{"sad": 1.0 if i else 0.0}]) for i in range(10)}
    curve = _curve(stats.group_curves(stats.session_bins(per_session)), "valence")
    assert curve["ci_low"].min() >= -1.0 and curve["ci_high"].max() <= 1.0
    assert curve.loc[0.0, "ci_low"] == -1.0


def test_t_interval_from_ten_sessions():
    rng = np.random.default_rng(1)
    values = rng.uniform(0.2, 0.6, size=(12, 3))
    band = stats.interval_bands(values, value_range=(0.0, 1.0))
    for k in range(3):
        expected = scipy_stats.t.interval(0.95, 11, loc=values[:, k].mean(), scale=scipy_stats.sem(values[:, k]))
        assert (band["ci_low"][k], band["ci_high"][k]) == pytest.approx(expected)
    assert set(band["method"]) == {"Student-t 95% interval over sessions"}
    assert list(band["n"]) == [12, 12, 12]


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    # 200 simulated groups of 8 sessions (one per column) from a normal distribution of mean 0.4
    values = np.random.default_rng(7).normal(0.4, 0.1, size=(8, 200))
    band = stats.interval_bands(values, value_range=(0.0, 1.0))
    assert set(band["method"]) == {"bootstrap percentile 95% interval over sessions, 2000 resamples"}
    coverage = np.mean((band["ci_low"] <= 0.4) & (0.4 <= band["ci_high"]))  # about 0.89-0.91: percentile bootstrap at n = 8
    assert 0.88 <= coverage <= 0.99
    # reproducible: the same values give the same band
    again = stats.interval_bands(values[:, :5], value_range=(0.0, 1.0))
    assert np.array_equal(again["ci_low"], band["ci_low"][:5])


def test_bootstrap_skips_missing_sessions_per_bin():
    values = np.array([[0.1, np.nan], [0.2, 0.3], [0.3, 0.4], [0.4, 0.5]])
    band = stats.interval_bands(values, value_range=(0.0, 1.0))
    assert list(band["n"]) == [4, 3]
    assert band["mean"] == pytest.approx([0.25, 0.4])
    assert 0.1 <= band["ci_low"][0] < 0.25 < band["ci_high"][0] <= 0.4
    assert 0.3 <= band["ci_low"][1] < 0.4 < band["ci_high"][1] <= 0.5


def test_bins_with_few_frames_are_left_out_and_counted():
    # second 0: 2 frames; seconds 1 and 2: 15 frames each
    frames = [(0.1 * i, [(1, 100, {"happy": 0.1})]) for i in range(2)]
    frames += [(1 + k / 15, [(1, 100, {"happy": 0.7})]) for k in range(30)]
    obs = _rows(frames)
    bins = stats.session_bins({1: obs, 2: _session([{"happy": 0.5}] * 3, fps=15)})
    first = bins[bins["session_id"] == 1].set_index("time_s")
    assert bool(first.loc[0.0, "low_frames"]) and math.isnan(first.loc[0.0, "happy"])
    assert first.loc[0.0, "n_frames"] == 2 and not first.loc[1.0, "low_frames"]
    curve = _curve(stats.group_curves(bins), "happy")
    assert curve.loc[0.0, "n_low_frames"] == 1 and curve.loc[0.0, "n_sessions"] == 1
    assert curve.loc[0.0, "mean"] == pytest.approx(0.5)
    # the minimum scales with the bin width: 2 s bins need 10 frames
    wide = stats.session_bins({1: obs}, bin_s=2.0).set_index("time_s")
    assert not wide.loc[0.0, "low_frames"] and wide.loc[0.0, "n_frames"] == 17
    assert stats.session_bins({1: obs}, min_frames_per_s=0)["low_frames"].sum() == 0
    # per-bin tables keep their frame counts when moved onto the aligned grid
    aligned = stats.session_bins({1: per_bin(obs)}, align={1: 0.5})
    assert aligned["n_frames"].sum() == 32


def test_share_expressing_threshold_valence_and_undefined_metrics():
    per_session = {
        i: _session([{"happy": h, "sad": s}])
        for i, (h, s) in enumerate([(0.9, 0.0), (0.6, 0.3), (0.2, 0.5), (0.4, 0.1)])
    }
    bins = stats.session_bins(per_session)
    table = stats.group_curves(bins)
    assert _curve(table, "happy").loc[0.0, "share_expressing"] == pytest.approx(2 / 4)
    stricter = stats.group_curves(bins, express_threshold=0.8)
    assert _curve(stricter, "happy").loc[0.0, "share_expressing"] == pytest.approx(1 / 4)
    # valence 0.9, 0.3, -0.3, 0.3: share with positive valence, whatever the threshold
    assert _curve(stricter, "valence").loc[0.0, "share_expressing"] == pytest.approx(3 / 4)
    assert "positive valence" in stats.share_definition("valence")
    assert stats.share_definition("face_present_rate") is None
    assert _curve(table, "face_present_rate")["share_expressing"].isna().all()
    with pytest.raises(ValueError, match="express_threshold"):
        stats.group_curves(bins, express_threshold=1.5)


def _quality_input():
    sessions = pd.DataFrame({
        "session_id": [1, 2, 3, 4], "participant_code": ["P1", "P2", "P3", "P4"],
        "status": ["complete", "aborted", "complete", "complete"], "duration_s": [10.0, 10.0, 10.0, 0.0],
        "face_present_rate": [0.95, 0.9, 0.5, np.nan], "dropped_frames": [50, 0, 0, 0],
    })  # fmt: skip
    bins = pd.DataFrame(
        {"session_id": [1, 1, 2, 3], "n_frames": [100, 50, 150, 100], "low_frames": [False, True, False, False]}
    )
    return sessions, bins


def test_quality_table_rates_and_dropped_share():
    quality = stats.quality_table(*_quality_input()).set_index("session_id")
    assert list(quality.columns) == list(stats.QUALITY_COLUMNS[1:])
    assert quality.loc[1, "analysed_frames"] == 150 and quality.loc[1, "frames_per_s"] == pytest.approx(15.0)
    assert quality.loc[1, "dropped_share"] == pytest.approx(50 / 200)
    assert quality.loc[1, "low_frame_bins"] == 1
    assert quality.loc[4, "analysed_frames"] == 0 and math.isnan(quality.loc[4, "frames_per_s"])
    assert math.isnan(quality.loc[4, "dropped_share"])


def test_exclusion_defaults_and_override():
    quality = stats.quality_table(*_quality_input())
    default = stats.apply_exclusions(quality)
    assert default.kept == (1,)
    reasons = default.excluded.set_index("session_id")["reason"]
    assert reasons[2] == "aborted"
    assert reasons[3] == "face present in 50.0% of frames (under 70%)"
    assert reasons[4] == "no analysed frames"
    kept = stats.apply_exclusions(quality, stats.ExclusionRules(keep={2}))
    assert kept.kept == (1, 2) and 2 not in set(kept.excluded["session_id"])
    lenient = stats.apply_exclusions(quality, stats.ExclusionRules(exclude_aborted=False, min_face_present=0.4))
    assert lenient.kept == (1, 2, 3)
    with pytest.raises(ValueError, match="min_face_present"):
        stats.ExclusionRules(min_face_present=70)
    with pytest.raises(AttributeError):
        stats.ExclusionRules().min_face_present = 0.5  # frozen


def _means(a, b, metric="happy"):
    ids = list(range(len(a) + len(b)))
    frame = pd.DataFrame({"session_id": ids, "metric": metric, "mean": [*a, *b], "n_bins": 10})
    return frame, {i: ("A" if i < len(a) else "B") for i in ids}


def test_two_groups_welch_permutation_and_hedges_g_by_hand():
    means, groups = _means([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0])
    result = stats.compare_two(means, groups, "happy", "A", "B")
    assert (result.n_a, result.n_b) == (3, 4)
    assert result.difference == pytest.approx(-3.5)
    # Welch: se = sqrt(1/3 + (5/3)/4) = sqrt(0.75); df = 0.75^2 / ((1/3)^2/2 + (5/12)^2/3)
    se, df = math.sqrt(0.75), 0.75**2 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3)
    assert result.welch_t == pytest.approx(-3.5 / se)
    assert result.welch_p == pytest.approx(2 * scipy_stats.t.sf(3.5 / se, df))
    # exact permutation test: of the 35 splits, only the observed one and its mirror are as extreme
    assert result.permutation_p == pytest.approx(2 / 35)
    # Hedges' g: pooled SD sqrt((2 * 1 + 3 * 5/3) / 5) = sqrt(1.4); J = 1 - 3 / 19
    assert result.hedges_g == pytest.approx(-3.5 / math.sqrt(1.4) * (1 - 3 / 19))
    assert result.note == stats.FEW


def test_small_groups_get_a_note_and_no_test():
    means, groups = _means([0.2], [0.4, 0.6])
    result = stats.compare_two(means, groups, "happy", "A", "B")
    assert result.note == "too few sessions to say anything (fewer than 3 in a group)"
    assert math.isnan(result.welch_p) and math.isnan(result.permutation_p) and math.isnan(result.hedges_g)
    assert result.difference == pytest.approx(-0.3)
    assert stats.small_sample_note(5, 7) == "" and stats.small_sample_note(4, 9) == stats.FEW
    table = stats.group_differences(*_means([0.1, 0.2, 0.3], [0.3, 0.4, 0.5]), "happy")
    assert list(table.columns) == list(stats.DIFFERENCE_COLUMNS) and len(table) == 1
    assert table.loc[0, "group_a"] == "A" and table.loc[0, "difference"] == pytest.approx(-0.2)


def test_session_means_time_range():
    bins = stats.session_bins({1: _session([{"happy": 0.2}, {"happy": 0.4}, {"happy": 0.9}])})
    within = stats.session_means(bins, start_s=1.0, end_s=3.0).set_index("metric")
    assert within.loc["happy", "mean"] == pytest.approx(0.65) and within.loc["happy", "n_bins"] == 2
    with pytest.raises(ValueError, match="start_s"):
        stats.session_means(bins, start_s=2.0, end_s=1.0)


def test_describe_bands_names_the_methods_and_counts():
    per_session = {i: _session([{"happy": 0.1 * i}]) for i in range(4)}
    table = stats.group_curves(stats.session_bins(per_session))
    text = stats.describe_bands(table)
    assert "bootstrap percentile 95% interval over sessions, 2000 resamples" in text
    assert "Sessions per value: 4." in text


def test_stored_seconds_aligned_on_a_fractional_marker_are_within_half_a_second_of_the_observations():
    slope = 0.02  # happy rises 0.02 a second, so a bin t seconds off differs by 0.02 * t
    frames = [(i / 10, [(1, 100, {"happy": slope * i / 10})]) for i in range(300)]
    observations = _rows(frames)
    for marker in (2.2, 2.5, 2.8):
        exact = stats.session_bins({1: observations}, align={1: marker}).set_index("time_s")["happy"]
        stored = stats.session_bins({1: per_bin(observations, 1.0)}, align={1: marker}).set_index("time_s")["happy"]
        both = exact.index.intersection(stored.index)
        inner = both[(both >= 0) & (both <= 25)]
        assert len(inner) == 26
        error = (stored[inner] - exact[inner]).abs()
        assert (error <= slope * 0.5 + 1e-9).all(), (marker, error.max())
