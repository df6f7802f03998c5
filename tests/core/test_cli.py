"""`python -m fer_core analyze` end to end, in a subprocess as a user would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from fer_core.emotions import ATTENTION_COLUMNS, OBSERVATION_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "fer_core", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_analyze_still_to_csv(video_dir, tiny_model_path, tmp_path):
    out = tmp_path / "faces.csv"
    done = _run("analyze", video_dir / "single_face.jpg", "--out", out, "--model", tiny_model_path)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    assert list(table.columns) == [*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS]
    assert len(table) == 1 and table.face_id[0] == 0 and table.w[0] > 100
    assert abs(table.loc[0, ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]].sum() - 1) < 1e-4


def test_bad_input_and_output_give_a_message(video_dir, tiny_model_path, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    done = _run("analyze", bad, "--out", tmp_path / "x.csv", "--model", tiny_model_path)
    assert done.returncode == 2 and "bad.png: cannot be decoded as an image" in done.stderr
    done = _run("analyze", video_dir / "single_face.jpg", "--out", tmp_path / "x.xlsx")
    assert done.returncode == 2 and "--out has to end in one of" in done.stderr
    done = _run(
        "analyze", video_dir / "single_face.jpg", "--out", tmp_path / "x.csv", "--model", tmp_path / "none.keras"
    )
    assert done.returncode == 2 and "none.keras: model file not found" in done.stderr
