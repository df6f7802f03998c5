"""Where the dashboard server's CPU goes on the live path: a py-spy sample of the running process, by stage.

``bench_live.py`` runs :func:`sample_process` on the dashboard server while the participants stream, then
:func:`breakdown` sorts every sampled stack into one stage of :data:`STAGES` by the first rule that matches a
frame of it (most specific first: the preprocessing inside the classifier's ``predict`` counts as preprocessing).
py-spy samples Python threads only: a thread in a C call that released the GIL (OpenCV, LiteRT, libvpx, PyAV)
counts with the Python frame that called it, but native threads of their own (LiteRT's or libvpx's worker pools)
are not seen, which the benchmark prints as the part of the process's CPU the sample does not cover.

Needs py-spy (``pip install py-spy``) and the right to trace the process (the same user with
``kernel.yama.ptrace_scope`` 0, or root).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

#: Stages of the live path, in the order they are printed, each with the pattern of the frames that belong to it.
#: A stack goes to the first stage whose pattern matches any of its frames, so the order is most specific first.
STAGES: tuple[tuple[str, str], ...] = (
    ("preview encode", r"Encoder\.encode|Encoder\._encode|_preview \(dashboard/live\.py|from_ndarray|draw_results"),
    ("decode (VP8/H.264)", r"Decoder\.decode|decoder_worker"),
    ("crop + preprocessing", r"crop_face|preprocess_faces|fer_core/preprocessing\.py"),
    ("classification", r"fer_core/classifier\.py"),
    ("detection", r"fer_core/detection\.py"),
    ("tracking + head pose", r"fer_core/tracking\.py|fer_core/attention\.py"),
    ("colour conversion + resize", r"to_ndarray|fit_width"),
    ("live session + recorder", r"sessions/recorder\.py|sessions/live\.py|sqlalchemy"),
    ("page reruns", r"streamlit/runtime/scriptrunner|streamlit/runtime/fragment"),
    ("other (WebRTC transport, event loops)", r"."),
)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in STAGES)


def stage_of(stack: str) -> str:
    """The stage of one sampled stack (py-spy's collapsed form: frames joined by ``;``, root first)."""
    for name, pattern in _COMPILED:
        if pattern.search(stack):
            return name
    return STAGES[-1][0]


def breakdown(collapsed: str) -> Counter:
    """Samples per stage of py-spy's ``--format raw`` output (one ``stack count`` line per distinct stack).

    Returns
    -------
    collections.Counter
        Stage name (from :data:`STAGES`) to number of samples; lines that are not ``stack count`` are ignored.
    """
    counts: Counter = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            counts[stage_of(stack)] += int(count)
    return counts


def sample_process(pid: int, seconds: float, *, rate_hz: int = 100) -> tuple[Counter | None, str]:
    """Sample process ``pid`` with py-spy for ``seconds`` at ``rate_hz`` (without pausing it); samples per stage.

    Returns
    -------
    (collections.Counter or None, str)
        :func:`breakdown` of the samples and an empty string; or None and why there is no profile (py-spy
        missing, or it could not trace the process), for the benchmark to print.
    """
    spy = Path(sys.executable).with_name("py-spy")
    spy = str(spy) if spy.is_file() else shutil.which("py-spy")
    if spy is None:
        return None, "py-spy is not installed (pip install py-spy)"
    with tempfile.TemporaryDirectory(prefix="live-profile-") as folder:
        out = Path(folder) / "stacks.txt"
        command = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate",
                   str(rate_hz), "--format", "raw", "--nonblocking", "--output", str(out)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0 or not out.is_file():
            return None, f"py-spy failed ({(done.stderr or done.stdout).strip().splitlines()[-1:]})"
        return breakdown(out.read_text()), ""
