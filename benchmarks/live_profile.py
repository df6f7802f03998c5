"""Where the dashboard server's CPU goes on the live path: a py-spy sample of the running process, by stage.

``bench_live.py`` runs :func:`sample_process` on the dashboard server while the participants stream, then
:func:`breakdown` sorts every sampled stack into one stage of :data:`STAGES` by the first rule that matches a
frame of it (most specific first: the preprocessing inside the classifier's ``predict`` counts as preprocessing).
py-spy samples Python threads only: a thread in a C call that released the GIL (OpenCV, LiteRT, libvpx, PyAV)
counts with the Python frame that called it. The figures are CPU, not samples: each thread's CPU over the sample
window (``/proc/PID/task``) is split over the stages of that thread's samples, because py-spy also counts a thread
waiting to take the GIL back as active. Native threads of their own (LiteRT's or libvpx's worker pools) have
no Python frame: their CPU is printed apart.

Needs py-spy (``pip install py-spy``) and the right to trace the process (the same user with
``kernel.yama.ptrace_scope`` 0, or root).
"""

from __future__ import annotations

import os
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
    ("preview encode", r"Encoder\.encode|Encoder\._encode|_preview \(dashboard/live\.py|draw_results"),
    ("decode (VP8/H.264)", r"Decoder\.decode|decoder_worker"),
    ("crop + preprocessing", r"crop_face|preprocess_faces|fer_core/preprocessing\.py"),
    ("classification", r"fer_core/classifier\.py"),
    ("detection", r"fer_core/detection\.py"),
    ("tracking, head pose, results", r"fer_core/tracking\.py|fer_core/attention\.py|fer_core/analyzer\.py"),
    ("colour conversion + resize", r"_analysis_image \(dashboard/live\.py|fit_width"),
    ("live session + recorder", r"sessions/recorder\.py|sessions/live\.py|sqlalchemy"),
    ("page reruns", r"streamlit/runtime/scriptrunner|streamlit/runtime/fragment"),
    ("other (WebRTC transport, event loops)", r"."),
)
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in STAGES)


#: Leaf frames of a thread that waits (py-spy counts some waits as active: a thread taking the GIL back after one).
IDLE_LEAF = re.compile(r"^(Condition\.wait|Event\.wait|EpollSelector\.select|select|_worker|Queue\.get|"
                       r"PollingPathWatcher\._schedule\.<locals>\.task|LiveRegistry\._watch) \(")
#: Where the CPU of threads that py-spy never saw in Python code goes (LiteRT's and libvpx's own worker threads).
NATIVE = "native threads (not sampled)"
_THREAD = re.compile(r"^thread \((\d+)\): [^;]*;?")


def stage_of(stack: str) -> str:
    """The stage of one sampled stack (py-spy's collapsed form: frames joined by ``;``, root first)."""
    for name, pattern in _COMPILED:
        if pattern.search(stack):
            return name
    return STAGES[-1][0]


def thread_samples(collapsed: str) -> dict[int, Counter]:
    """Samples per stage of each thread in py-spy's ``--format raw --threads`` output (``thread (TID): name;...
    count`` lines); stacks that end in a wait (:data:`IDLE_LEAF`) and lines that are not stacks are left out."""
    threads: dict[int, Counter] = {}
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        match = _THREAD.match(stack)
        if not (match and count.isdigit()):
            continue
        frames = stack[match.end():]
        counts = threads.setdefault(int(match.group(1)), Counter())  # a thread seen only waiting: empty
        if frames and not IDLE_LEAF.match(frames.rsplit(";", 1)[-1]):
            counts[stage_of(frames)] += int(count)
    return threads


def breakdown(collapsed: str, thread_cpu_s: dict[int, float] | None = None) -> Counter:
    """The process's CPU by stage: each thread's CPU split over its stages in proportion to its samples.

    Parameters
    ----------
    collapsed : str
        py-spy's ``--format raw --threads`` output.
    thread_cpu_s : dict of int to float, optional
        CPU seconds each thread (native id) used while it was sampled (:func:`thread_cpu`); a thread with CPU
        but no sample goes to :data:`NATIVE`, one seen only waiting to the last stage (event loops). None: the
        samples themselves (a sample counts one unit).

    Returns
    -------
    collections.Counter
        Stage name (:data:`STAGES`, and :data:`NATIVE`) to CPU seconds (or samples when ``thread_cpu_s`` is None).
    """
    threads = thread_samples(collapsed)
    total: Counter = Counter()
    if thread_cpu_s is None:
        for counts in threads.values():
            total.update(counts)
        return total
    for tid, cpu in thread_cpu_s.items():
        counts = threads.get(tid)
        if counts is None or not counts:
            total[NATIVE if counts is None else STAGES[-1][0]] += cpu
            continue
        samples = sum(counts.values())
        for stage, n in counts.items():
            total[stage] += cpu * n / samples
    return total


def thread_cpu(pid: int) -> dict[int, float]:
    """User plus system CPU seconds of every thread of process ``pid`` so far (Linux ``/proc/PID/task``)."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        cpu[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return cpu


def sample_process(pid: int, seconds: float, *, rate_hz: int = 100, keep: Path | None = None) -> tuple[Counter | None, str]:
    """Sample process ``pid`` with py-spy for ``seconds`` at ``rate_hz`` (without pausing it); its CPU by stage.

    Each thread's CPU over the sample (``/proc``, exact) is split over the stages of its own samples, so a
    sample that py-spy took while the thread waited for the GIL moves CPU between that thread's stages only.
    ``keep``: a file to copy py-spy's collapsed stacks to (for a flame graph or a closer look).

    Returns
    -------
    (collections.Counter or None, str)
        CPU seconds per stage (:func:`breakdown`) and an empty string; or None and why there is no profile
        (py-spy missing, or it could not trace the process), for the benchmark to print.
    """
    spy = Path(sys.executable).with_name("py-spy")
    spy = str(spy) if spy.is_file() else shutil.which("py-spy")
    if spy is None:
        return None, "py-spy is not installed (pip install py-spy)"
    with tempfile.TemporaryDirectory(prefix="live-profile-") as folder:
        out = Path(folder) / "stacks.txt"
        command = [spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate",
                   str(rate_hz), "--format", "raw", "--threads", "--nonblocking", "--output", str(out)]  # fmt: skip
        before = thread_cpu(pid)
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        after = thread_cpu(pid)
        if done.returncode != 0 or not out.is_file():
            return None, f"py-spy failed ({(done.stderr or done.stdout).strip().splitlines()[-1:]})"
        if keep is not None:
            shutil.copyfile(out, keep)
        used = {tid: cpu - before.get(tid, 0.0) for tid, cpu in after.items()}
        return breakdown(out.read_text(), {tid: cpu for tid, cpu in used.items() if cpu > 0}), ""
