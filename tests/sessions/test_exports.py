"""Exports: CSV, Parquet and JSON round trips; unwritable paths fail cleanly and change nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fer_core.emotions import ATTENTION_COLUMNS, EMOTIONS, OBSERVATION_COLUMNS
from sessions.aggregate import per_bin, session_summary
from sessions.errors import ExportError
from sessions.exports import SessionIdentity, export_bins, export_columns, export_observations, export_summary
from sessions.playback import STIMULUS_TIME_COLUMNS

WHO = SessionIdentity(7, "P-007", "Ad test", {"variant": "A"})


@pytest.fixture
def observations() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(EMOTIONS)), size=20)
    frame = pd.DataFrame(probs, columns=list(EMOTIONS))
    frame.insert(0, "time_s", np.arange(20) / 10)
    frame.insert(1, "frame", np.arange(20))
    frame.insert(2, "face_id", 1)
    for column, value in zip("xywh", (5, 6, 70, 80), strict=True):
        frame.insert(3 + "xywh".index(column), column, float(value))
    frame["dominant"] = np.array(EMOTIONS)[probs.argmax(axis=1)]
    frame.loc[3, ["x", "y", "w", "h", *EMOTIONS]] = np.nan
    frame.loc[3, ["face_id", "dominant"]] = [-1, "none"]
    return frame[list(OBSERVATION_COLUMNS)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_observations_and_bins_round_trip(tmp_path, observations, suffix):
    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".json": lambda p: pd.read_json(p, orient="records")}
    path = export_observations(observations, tmp_path / f"obs{suffix}", identity=WHO)
    back = readers[suffix](path)
    assert list(back.columns) == export_columns(WHO, (*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS, *STIMULUS_TIME_COLUMNS))
    np.testing.assert_allclose(back[list(EMOTIONS)].to_numpy(float), observations[list(EMOTIONS)].to_numpy(float),
                               atol=1e-9)  # fmt: skip
    assert np.isnan(back.loc[3, "happy"]) and back.loc[3, "face_id"] == -1
    bins = per_bin(observations)
    back_bins = readers[suffix](export_bins(bins, tmp_path / f"bins{suffix}", identity=WHO))
    np.testing.assert_allclose(back_bins["valence"], bins["valence"], atol=1e-9)


def test_json_has_null_for_missing_values_and_fmt_overrides_suffix(tmp_path, observations):
    path = export_observations(observations, tmp_path / "data.txt", fmt="json", identity=WHO)
    records = json.loads(path.read_text())
    assert records[3]["happy"] is None and records[0]["dominant"] == observations.loc[0, "dominant"]
    with pytest.raises(ValueError, match="format"):
        export_observations(observations, tmp_path / "data.xlsx", identity=WHO)


def test_summary_is_strict_json(tmp_path, observations):
    summary = session_summary(observations, None)
    summary["extra"] = float("nan")
    loaded = json.loads(export_summary(summary, tmp_path / "summary.json").read_text())
    assert loaded["extra"] is None and loaded["n_frames"] == 20


def test_unwritable_paths_raise_export_error_and_leave_no_file(tmp_path, observations, monkeypatch):
    with pytest.raises(ExportError, match="does not exist"):
        export_observations(observations, tmp_path / "missing" / "obs.csv", identity=WHO)
    with pytest.raises(ExportError, match="is a folder"):
        export_observations(observations, tmp_path, fmt="csv", identity=WHO)
    # A folder the process may not write to (simulated: the tests may run as root, which ignores modes).
    locked = tmp_path / "locked"
    locked.mkdir()

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("sessions.exports.tempfile.mkstemp", denied)
    with pytest.raises(ExportError, match="cannot write export .*summary.json.*Permission denied"):
        export_summary({"a": 1}, locked / "summary.json")
    assert list(locked.iterdir()) == []


def test_failed_export_keeps_the_previous_file(tmp_path, observations, monkeypatch):
    target = tmp_path / "obs.csv"
    target.write_text("previous export")

    def broken(self, path, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(ExportError, match="No space left"):
        export_observations(observations, target, identity=WHO)
    assert target.read_text() == "previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["obs.csv"]
