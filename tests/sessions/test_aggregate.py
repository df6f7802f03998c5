"""Per-bin aggregation, session summary and cross-session comparison, against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fer_core.emotions import EMOTIONS, OBSERVATION_COLUMNS
from sessions.aggregate import BIN_COLUMNS, COMPARE_COLUMNS, COMPARE_METRICS, compare, per_bin, session_summary


def _rows(frames) -> pd.DataFrame:
    """frames: list of (time_s, [ (face_id, w, {emotion: p}) ... ]); missing mass goes to neutral."""
    rows = []
    for index, (time_s, faces) in enumerate(frames):
        if not faces:
            rows.append({"time_s": time_s, "frame": index, "face_id": -1, "dominant": "none"})
        for face_id, size, probs in faces:
            vector = {e: probs.get(e, 0.0) for e in EMOTIONS}
            vector["neutral"] = 1.0 - sum(v for e, v in vector.items() if e != "neutral")
            rows.append({"time_s": time_s, "frame": index, "face_id": face_id, "x": 0, "y": 0, "w": size,
                         "h": size, **vector, "dominant": max(vector, key=vector.get)})  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=list(OBSERVATION_COLUMNS))


def _session(values_per_second: list[dict], fps: int = 10) -> pd.DataFrame:
    frames = [(second + i / fps, [(1, 100, probs)]) for second, probs in enumerate(values_per_second) for i in range(fps)]
    return _rows(frames)


def test_per_bin_means_dominant_shares_face_rate_valence_engagement():
    obs = _rows([
        (0.0, [(1, 100, {"happy": 0.8})]),
        (0.25, [(1, 100, {"happy": 0.4, "sad": 0.5})]),
        (0.5, []),
        (0.75, [(1, 100, {"happy": 0.6})]),
        (1.0, [(1, 100, {"angry": 0.9})]),
        (1.5, []),
    ])  # fmt: skip
    bins = per_bin(obs)
    assert list(bins.columns) == list(BIN_COLUMNS)
    assert bins["time_s"].tolist() == [0.0, 1.0]
    assert bins["n_frames"].tolist() == [4, 2]
    assert bins["face_present_rate"].tolist() == pytest.approx([0.75, 0.5])
    assert bins.loc[0, "happy"] == pytest.approx((0.8 + 0.4 + 0.6) / 3)
    assert bins.loc[0, "sad"] == pytest.approx(0.5 / 3)
    assert bins.loc[0, "dominant_happy"] == pytest.approx(2 / 3)
    assert bins.loc[0, "dominant_sad"] == pytest.approx(1 / 3)
    assert bins.loc[0, "valence"] == pytest.approx(0.6 - 0.5 / 3)
    assert bins.loc[0, "engagement"] == pytest.approx(1 - bins.loc[0, "neutral"])
    assert bins.loc[1, "valence"] == pytest.approx(-0.9)
    assert bins.loc[1, "dominant_angry"] == 1.0


def test_per_bin_uses_the_largest_face_of_a_frame_and_counts_frames_not_faces():
    obs = _rows([(0.0, [(1, 50, {"sad": 0.9}), (2, 200, {"happy": 0.9})]), (0.5, [(2, 200, {"happy": 0.7})])])
    bins = per_bin(obs)
    assert bins["n_frames"].tolist() == [2]
    assert bins.loc[0, "happy"] == pytest.approx(0.8)
    assert bins.loc[0, "sad"] == 0.0


def test_per_bin_width_and_a_bin_without_faces():
    obs = _rows([(0.0, []), (0.1, []), (0.6, [(1, 10, {"fear": 0.7})])])
    bins = per_bin(obs, bin_s=0.5)
    assert bins["time_s"].tolist() == [0.0, 0.5]
    assert np.isnan(bins.loc[0, "fear"]) and np.isnan(bins.loc[0, "valence"])
    assert bins.loc[0, "face_present_rate"] == 0.0
    assert bins.loc[1, "fear"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="bin_s"):
        per_bin(obs, bin_s=0)
    with pytest.raises(ValueError, match="missing"):
        per_bin(obs.drop(columns=["frame"]))
    empty = per_bin(obs.iloc[:0])
    assert empty.empty and list(empty.columns) == list(BIN_COLUMNS)


def test_session_summary_means_peaks_and_markers_are_json_ready():
    obs = _session([{"happy": 0.2}, {"happy": 0.9}, {"happy": 0.4}])
    markers = pd.DataFrame({"time_s": [1.0], "label": ["stimulus start"], "note": [""]})
    summary = session_summary(obs, markers)
    json.dumps(summary, allow_nan=False)
    assert summary["n_frames"] == 30 and summary["face_present_rate"] == 1.0
    assert summary["duration_s"] == pytest.approx(2.9)
    assert summary["emotions"]["happy"] == {"mean": pytest.approx(1.5 / 3), "peak": pytest.approx(0.9),
                                            "peak_time_s": 1.0}  # fmt: skip
    assert summary["dominant_distribution"]["happy"] == pytest.approx(1 / 3)
    assert summary["dominant_distribution"]["neutral"] == pytest.approx(2 / 3)
    assert summary["markers"] == [{"time_s": 1.0, "label": "stimulus start", "note": ""}]
    no_face = session_summary(_rows([(0.0, []), (0.5, [])]), None)
    json.dumps(no_face, allow_nan=False)
    assert no_face["face_present_rate"] == 0.0 and no_face["emotions"]["happy"]["mean"] is None


def test_compare_mean_t_interval_and_share_expressing():
    happy = [0.9, 0.7, 0.2, 0.6]
    per_session = {sid: _session([{"happy": h}, {"happy": h / 2}]) for sid, h in enumerate(happy, start=1)}
    table = compare(per_session)
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert set(table["metric"]) == set(COMPARE_METRICS) - {"attention_rate"}  # these rows have no head pose
    row = table[(table["metric"] == "happy") & (table["time_s"] == 0.0)].iloc[0]
    values = np.array(happy)
    half = stats.t.ppf(0.975, 3) * values.std(ddof=1) / np.sqrt(4)
    assert row["group"] == "all" and row["n_sessions"] == 4
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((values.mean() - half, values.mean() + half))
    assert row["share_expressing"] == pytest.approx(3 / 4)  # 0.9, 0.7, 0.6 exceed 0.5
    later = table[(table["metric"] == "happy") & (table["time_s"] == 1.0)].iloc[0]
    assert later["share_expressing"] == 0.0
    valence = table[table["metric"] == "valence"]
    assert valence["share_expressing"].isna().all()
    stricter = compare(per_session, express_threshold=0.8)
    assert stricter.query("metric == 'happy' and time_s == 0")["share_expressing"].item() == pytest.approx(1 / 4)


def test_compare_groups_side_by_side_and_single_session_has_no_interval():
    per_session = {1: _session([{"happy": 0.8}]), 2: _session([{"happy": 0.6}]), 3: _session([{"sad": 0.7}])}
    table = compare(per_session, groups={1: "A", 2: "A", 3: "B"})
    happy = table[table["metric"] == "happy"].set_index("group")
    assert happy.loc["A", "mean"] == pytest.approx(0.7) and happy.loc["A", "n_sessions"] == 2
    assert happy.loc["B", "mean"] == 0.0 and happy.loc["B", "n_sessions"] == 1
    assert np.isnan(happy.loc["B", "ci_low"]) and np.isnan(happy.loc["B", "ci_high"])
    with pytest.raises(ValueError, match="missing"):
        compare(per_session, groups={1: "A"})
    with pytest.raises(ValueError, match="at least one"):
        compare({})


def test_compare_aligns_sessions_on_a_marker_time():
    # session 1's stimulus starts at 2 s, session 2's at 0 s: aligned, both peak at time 0
    first = _session([{}, {}, {"happy": 0.9}, {}])
    second = _session([{"happy": 0.9}, {}, {}, {}])
    table = compare({1: first, 2: second}, align={1: 2.0, 2: 0.0})
    happy = table[table["metric"] == "happy"].set_index("time_s")
    assert happy.loc[0.0, "mean"] == pytest.approx(0.9) and happy.loc[0.0, "n_sessions"] == 2
    assert happy.loc[-2.0, "n_sessions"] == 1
    unaligned = compare({1: first, 2: second}).query("metric == 'happy'").set_index("time_s")
    assert unaligned.loc[0.0, "mean"] == pytest.approx(0.45)
    # per-bin tables give the same result as observations
    binned = compare({1: per_bin(first), 2: per_bin(second)}, align={1: 2.0, 2: 0.0})
    pd.testing.assert_frame_equal(binned, table)
    with pytest.raises(ValueError, match="align"):
        compare({1: first, 2: second}, align={1: 2.0})
