"""`python -m fer_core analyze`: an output file that cannot be written ends with one line and status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_unwritable_output_gives_a_message_not_a_traceback(video_dir, tiny_model_path, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    out = blocker / "faces.csv"
    done = subprocess.run([sys.executable, "-m", "fer_core", "analyze", str(video_dir / "single_face.jpg"), "--out",
                           str(out), "--model", str(tiny_model_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "not-a-folder" in done.stderr
