"""Live-path benchmark: 1, 2 and 4 participants streaming at once, each into their own session, figures from the store.

Starts the dashboard (temporary SQLite store, sign-in off on 127.0.0.1) and, for each stream count, creates that
many sessions with participant links, as real remote sessions run. Each participant has their own browser context
(headless Chromium, fake camera playing ``single_face.mp4`` as a 640x480, 15 fps ``.y4m``): they open their link,
consent and press START. After a warm-up, every figure is read from the session store, ``--seconds`` apart, never
from a page (two pages can show the same stream):

- frames stored per second per session (distinct frame indices);
- dropped frames (skipped because analysis was busy, plus refused by the recorder's queue), as a count and a
  share of the frames the camera sent;
- capture-to-result latency p50/p90 (ms), which each stream stores on its session when it ends (its last 300
  frames; capture time = the frame's timestamp mapped onto the server clock by the least delayed frame, so the
  network's constant delay is left out);
- the dashboard server process's CPU (user + system, from ``/proc``) per stream over the window, in cores, and its
  resident memory at the end of the window (before any stream is measured: ``idle``).

Browsers run on this machine too, so on a 2-core machine they compete with the server for the CPU. It prints the
CPU model beside the figures.

    python benchmarks/bench_live.py [--streams 1 2 4] [--seconds 20] [--model PATH] [--detect-every 1]

Needs Debian chromium and ffmpeg (``scripts/install-system-deps.sh``) and the real clip in ../shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import VIDEO_DIR  # noqa: E402
from tests.dashboard import browser  # noqa: E402

CAMERA_FPS = 15
CONSENT = "I have read this and I agree to take part."


def cpu_model() -> str:
    """The CPU model name and its widest vector extensions from ``/proc/cpuinfo`` (else the platform's string)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "CPU")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    vector = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in flags]
    return f"{name} ({', '.join(vector) or 'no AVX2'})"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (Linux ``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux ``/proc/PID/status`` VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def store_counts(engine, session_id: int) -> tuple[int, int]:
    """(distinct stored frames, stored dropped frames) of a session."""
    from sqlalchemy import func, select

    from sessions.db import session_scope
    from sessions.models import Observation, StudySession

    with session_scope(engine) as db:
        frames = db.scalar(select(func.count(func.distinct(Observation.frame))).where(Observation.session_id == session_id))
        session = db.get(StudySession, session_id)
        return int(frames or 0), int(session.dropped_frames)


def run(n_streams: int, url: str, clip: Path, engine, pid: int, *, warmup_s: float, seconds: float) -> dict:
    """Start ``n_streams`` participants on their own links, measure from the store, stop them."""
    from playwright.sync_api import sync_playwright

    from sessions.db import session_scope
    from sessions.repository import create_join_token, create_session, get_or_create_study, get_session

    with session_scope(engine) as db:
        study = get_or_create_study(db, "bench").id
        links = []
        for i in range(n_streams):
            sid = create_session(db, study_id=study, participant_code=f"BENCH-{n_streams}-{i}").id
            links.append((sid, create_join_token(db, sid)))
    with sync_playwright() as pw:
        chromium = browser.launch_chromium(pw, clip)
        pages = []
        for _, token in links:
            page = chromium.new_context().new_page()
            page.goto(f"{url}/?join={token}")
            page.get_by_text(CONSENT).first.click(timeout=120_000)
            frame = browser.webrtc_frame(page)
            frame.get_by_role("button", name="START").click(timeout=120_000)
            frame.get_by_role("button", name="STOP").wait_for(timeout=120_000)
            pages.append(page)
        deadline = time.monotonic() + 180
        while any(store_counts(engine, sid)[0] < 3 for sid, _ in links):
            if time.monotonic() > deadline:
                raise TimeoutError("a stream stored no frame within 180 s")
            time.sleep(0.5)
        time.sleep(warmup_s)
        t0, cpu0 = time.monotonic(), cpu_seconds(pid)
        before = [store_counts(engine, sid) for sid, _ in links]
        time.sleep(seconds)
        after = [store_counts(engine, sid) for sid, _ in links]
        elapsed, cpu = time.monotonic() - t0, cpu_seconds(pid) - cpu0
        memory = rss_mb(pid)
        for page in pages:
            browser.webrtc_frame(page).get_by_role("button", name="STOP").click()
        time.sleep(3)
        chromium.close()
    streams = []
    with session_scope(engine) as db:
        for (sid, _), (f0, d0), (f1, d1) in zip(links, before, after, strict=True):
            session = get_session(db, sid)
            frames, dropped = f1 - f0, d1 - d0
            streams.append({
                "session": sid, "status": session.status, "fps": frames / elapsed, "dropped": dropped,
                "dropped_share": dropped / max(frames + dropped, 1),
                "p50": session.latency_p50_ms or float("nan"), "p90": session.latency_p90_ms or float("nan"),
            })  # fmt: skip
    return {"streams": streams, "cores_per_stream": cpu / elapsed / n_streams, "rss_mb": memory}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4], help="stream counts to measure")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per run (s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds between the first frames and the window")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--detect-every", type=int, default=1, help="FER_DETECT_EVERY for the dashboard")
    args = parser.parse_args(argv)
    reason = browser.missing_tools()
    if reason:
        parser.error(reason)
    source = VIDEO_DIR / "single_face.mp4"
    if not source.is_file():
        parser.error(f"{source} is missing (../shared beside the checkout)")
    from sessions.db import get_engine

    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        folder = Path(folder)
        clip = browser.make_y4m(source, folder / "clip.y4m", width=640, height=480, fps=CAMERA_FPS)
        db_url = f"sqlite:///{folder / 'sessions.db'}"
        env = {"FER_DB_URL": db_url, "FER_DETECT_EVERY": str(args.detect_every)}
        if args.model:
            env["FER_MODEL_PATH"] = str(args.model.resolve())
        print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores; browsers on the same machine)")
        print(f"camera: 640x480 at {CAMERA_FPS} fps; window {args.seconds:.0f} s after {args.warmup:.0f} s warm-up; "
              f"detect_every={args.detect_every}; each stream its own session, figures from the store")  # fmt: skip
        process, url = browser.start_dashboard(env, log=folder / "streamlit.log")
        engine = get_engine(db_url)
        try:
            print(f"server resident memory, no stream yet: {rss_mb(process.pid):.0f} MB")
            print(f"{'streams':>7} {'session':>7} {'fps':>6} {'dropped':>8} {'drop %':>7} {'p50 ms':>7} {'p90 ms':>7} "
                  f"{'server cores/stream':>20} {'server MB':>10}")  # fmt: skip
            for n in args.streams:
                result = run(n, url, clip, engine, process.pid, warmup_s=args.warmup, seconds=args.seconds)
                for r in result["streams"]:
                    print(f"{n:>7} {r['session']:>7} {r['fps']:>6.1f} {r['dropped']:>8.0f} {r['dropped_share']:>7.1%} "
                          f"{r['p50']:>7.0f} {r['p90']:>7.0f} {result['cores_per_stream']:>20.2f} {result['rss_mb']:>10.0f}")  # fmt: skip
        finally:
            engine.dispose()
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
