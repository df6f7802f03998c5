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

With ``--stimulus``, each participant also watches a stimulus in the page (a generated test pattern with a tone,
as long as the warm-up and the window plus 2 s, played by the study's player after its face check and Start
click; Chromium with ``--autoplay-policy=no-user-gesture-required``), and the timing error of the stored
``playing``/``ended`` events against the stimulus's duration (``ended - playing - duration``) is printed per
session, with its median and worst (ms).

After each window, ``--profile-seconds`` (default 10) of py-spy samples of the server process say where its CPU
goes, by stage (``benchmarks/live_profile.py``: decode, colour conversion and resize, detection, crop and
preprocessing, classification, tracking, the live session and recorder, preview encode, page reruns), in cores per
stream and ms per stored frame; the sampler runs after the window so that its own CPU does not change the figures.

Browsers run on this machine too, so on a 2-core machine they compete with the server for the CPU. It prints the
CPU model beside the figures.

    python benchmarks/bench_live.py [--streams 1 2 4] [--seconds 20] [--model PATH] [--detect-every 2] [--stimulus]
        [--analysis-fps 10] [--frame-width 640] [--profile-seconds 10] [--profile-raw PATH]

Needs Debian chromium and ffmpeg (``scripts/install-system-deps.sh``), the real clip in ../shared, and py-spy for
the profile (requirements-dev.txt; without it the profile says so).
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

from benchmarks.live_profile import NATIVE, STAGES, sample_process  # noqa: E402
from tests.conftest import VIDEO_DIR  # noqa: E402
from tests.dashboard import browser  # noqa: E402

CAMERA_FPS = 15
#: py-spy's sampling rate for the profile (samples per second per thread).
PROFILE_RATE_HZ = 100
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


def playback_error_ms(engine, session_id: int, duration_s: float) -> float:
    """``ended - playing - duration`` (ms) of the session's first stimulus, from its stored events; NaN if it did not end."""
    from sessions.db import session_scope
    from sessions.playback import load_events

    with session_scope(engine) as db:
        events = load_events(db, session_id)
    times = {kind: events.loc[events["kind"] == kind, "session_time_s"] for kind in ("playing", "ended")}
    if times["playing"].empty or times["ended"].empty:
        return float("nan")
    return (float(times["ended"].iloc[0]) - float(times["playing"].iloc[0]) - duration_s) * 1000.0


def run(n_streams: int, url: str, clip: Path, engine, pid: int, *, warmup_s: float, seconds: float,
        stimulus: Path | None = None, media_dir: Path | None = None, profile_s: float = 0.0,
        profile_raw: Path | None = None) -> dict:  # fmt: skip
    """Start ``n_streams`` participants on their own links (each playing ``stimulus`` when given), measure from the
    store, then sample the server for ``profile_s`` seconds (0: no profile), stop them."""
    from playwright.sync_api import sync_playwright

    from sessions.db import session_scope
    from sessions.repository import create_join_token, create_session, get_or_create_study, get_session
    from sessions.stimuli import add_video_stimulus, set_sequence

    duration_s = None
    with session_scope(engine) as db:
        study = get_or_create_study(db, f"bench-{n_streams}" if stimulus else "bench").id
        if stimulus is not None:
            video = add_video_stimulus(db, study, "bench stimulus", stimulus, media_dir=media_dir)
            set_sequence(db, study, [video.id])
            duration_s = video.duration_s
        links = []
        for i in range(n_streams):
            sid = create_session(db, study_id=study, participant_code=f"BENCH-{n_streams}-{i}").id
            links.append((sid, create_join_token(db, sid)))
    with sync_playwright() as pw:
        autoplay = ["--autoplay-policy=no-user-gesture-required"] if stimulus is not None else []
        chromium = pw.chromium.launch(executable_path=browser.CHROMIUM, headless=True,
                                      args=[*browser.CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={clip}", *autoplay])  # fmt: skip
        pages = []
        for _, token in links:
            page = chromium.new_context().new_page()
            page.goto(f"{url}/?join={token}")
            page.get_by_text(CONSENT).first.click(timeout=120_000)
            frame = browser.webrtc_frame(page)
            frame.get_by_role("button", name="START").click(timeout=120_000)
            frame.get_by_role("button", name="STOP").wait_for(timeout=120_000)
            pages.append(page)
        for page in pages if stimulus is not None else []:  # every camera runs: each participant presses Start
            page.get_by_text("We can see your face").wait_for(timeout=120_000)
            page.get_by_role("button", name="Start", exact=True).click(timeout=30_000)
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
        profile = None
        if profile_s > 0:  # after the window, so that the sampler's own CPU does not change the figures above
            p0, pcpu0 = time.monotonic(), cpu_seconds(pid)
            frames0 = sum(store_counts(engine, sid)[0] for sid, _ in links)
            stages, why = sample_process(pid, profile_s, keep=None if profile_raw is None else profile_raw.with_name(
                f"{profile_raw.stem}-{n_streams}{profile_raw.suffix}"))  # fmt: skip
            profile = {"stages": stages, "why": why, "elapsed": time.monotonic() - p0, "cpu": cpu_seconds(pid) - pcpu0,
                       "frames": sum(store_counts(engine, sid)[0] for sid, _ in links) - frames0}  # fmt: skip
        if stimulus is not None:  # the stimulus outlasts the window by 2 s: wait for every ended event
            deadline = time.monotonic() + duration_s + 60
            while any(playback_error_ms(engine, sid, duration_s) != playback_error_ms(engine, sid, duration_s)
                      for sid, _ in links) and time.monotonic() < deadline:  # NaN until ended  # fmt: skip
                time.sleep(1.0)
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
                "timing_ms": playback_error_ms(engine, sid, duration_s) if stimulus is not None else float("nan"),
            })  # fmt: skip
    return {"streams": streams, "cores_per_stream": cpu / elapsed / n_streams, "rss_mb": memory, "profile": profile}


def print_profile(n_streams: int, profile: dict) -> None:
    """Print the server's CPU by stage (:mod:`live_profile`): cores per stream and ms per stored frame."""
    if profile["stages"] is None:
        print(f"profile, {n_streams} streams: not taken ({profile['why']})")
        return
    stages, elapsed = profile["stages"], profile["elapsed"]
    frames = max(profile["frames"], 1)
    print(f"profile, {n_streams} streams ({elapsed:.0f} s of py-spy at {PROFILE_RATE_HZ} Hz after the window; "
          f"{profile['frames']} frames stored meanwhile; process CPU {profile['cpu'] / elapsed:.2f} cores, of which by "
          f"thread {sum(stages.values()) / elapsed:.2f}):")  # fmt: skip
    print(f"  {'stage':<40} {'cores/stream':>12} {'ms/frame':>9} {'share':>6}")
    total = max(sum(stages.values()), 1e-9)
    for name in [name for name, _ in STAGES] + [NATIVE]:
        seconds = stages.get(name, 0.0)
        print(f"  {name:<40} {seconds / elapsed / n_streams:>12.3f} {seconds * 1000 / frames:>9.2f} {seconds / total:>6.1%}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4], help="stream counts to measure")
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per run (s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds between the first frames and the window")
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--detect-every", type=int, default=None, help="FER_DETECT_EVERY for the dashboard (default: "
                        "the dashboard's own, detection on every 2nd analysed frame)")
    parser.add_argument("--analysis-fps", type=float, default=None, help="FER_ANALYSIS_FPS for the dashboard (default: "
                        "its default; 0: every frame the camera sends)")  # fmt: skip
    parser.add_argument("--frame-width", type=int, default=None, help="FER_FRAME_WIDTH for the dashboard (the browser "
                        "is asked for this width, and analysis scales down to it)")  # fmt: skip
    parser.add_argument("--stimulus", action="store_true", help="each participant also watches a stimulus in the page; "
                        "prints the timing error of its stored playing/ended events")  # fmt: skip
    parser.add_argument("--profile-seconds", type=float, default=10.0, help="after each window, sample the server "
                        "with py-spy this long and print its CPU by stage (0: no profile)")  # fmt: skip
    parser.add_argument("--profile-raw", type=Path, default=None, help="also keep py-spy's collapsed stacks, one "
                        "file per stream count (NAME-N.txt)")  # fmt: skip
    args = parser.parse_args(argv)
    reason = browser.missing_tools()
    if reason:
        parser.error(reason)
    source = VIDEO_DIR / "single_face.mp4"
    if not source.is_file():
        parser.error(f"{source} is missing (../shared beside the checkout)")
    from dashboard.settings import load_settings
    from sessions.db import get_engine

    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        folder = Path(folder)
        clip = browser.make_y4m(source, folder / "clip.y4m", width=640, height=480, fps=CAMERA_FPS)
        db_url = f"sqlite:///{folder / 'sessions.db'}"
        env = {"FER_DB_URL": db_url, "FER_MEDIA_DIR": str(folder / "media")}
        if args.detect_every is not None:
            env["FER_DETECT_EVERY"] = str(args.detect_every)
        stimulus = None
        if args.stimulus:
            from tests.sessions.clips import make_stimulus

            stimulus = make_stimulus(folder / "stimulus.mp4", seconds=args.warmup + args.seconds + 2.0, width=640, height=360)
        if args.model:
            env["FER_MODEL_PATH"] = str(args.model.resolve())
        if args.analysis_fps is not None:
            env["FER_ANALYSIS_FPS"] = str(args.analysis_fps)
        if args.frame_width is not None:
            env["FER_FRAME_WIDTH"] = str(args.frame_width)
        settings = load_settings(env)
        print(f"CPU: {cpu_model()} ({os.cpu_count()} logical cores; browsers on the same machine)")
        print(f"camera: 640x480 at {CAMERA_FPS} fps; window {args.seconds:.0f} s after {args.warmup:.0f} s warm-up; "
              f"detect_every={settings.detect_every}; analysis_fps={settings.analysis_fps:g} (0: every frame); frame_width="
              f"{settings.frame_width}; each stream its own session, figures from the store")  # fmt: skip
        process, url = browser.start_dashboard(env, log=folder / "streamlit.log")
        engine = get_engine(db_url)
        try:
            print(f"server resident memory, no stream yet: {rss_mb(process.pid):.0f} MB")
            print(f"{'streams':>7} {'session':>7} {'fps':>6} {'dropped':>8} {'drop %':>7} {'p50 ms':>7} {'p90 ms':>7} "
                  f"{'server cores/stream':>20} {'server MB':>10}" + (f" {'timing ms':>10}" if stimulus else ""))  # fmt: skip
            errors = []
            for n in args.streams:
                result = run(n, url, clip, engine, process.pid, warmup_s=args.warmup, seconds=args.seconds,
                             stimulus=stimulus, media_dir=folder / "media", profile_s=args.profile_seconds,
                             profile_raw=args.profile_raw)  # fmt: skip
                for r in result["streams"]:
                    print(f"{n:>7} {r['session']:>7} {r['fps']:>6.1f} {r['dropped']:>8.0f} {r['dropped_share']:>7.1%} "
                          f"{r['p50']:>7.0f} {r['p90']:>7.0f} {result['cores_per_stream']:>20.2f} {result['rss_mb']:>10.0f}"
                          + (f" {r['timing_ms']:>10.0f}" if stimulus else ""))  # fmt: skip
                    errors.append(r["timing_ms"])
                if result["profile"] is not None:
                    print_profile(n, result["profile"])
            if stimulus is not None:
                import numpy as np

                found = np.asarray([e for e in errors if e == e])
                if len(found):
                    print(f"stored playing-to-ended minus the stimulus duration: median {np.median(found):.0f} ms, worst "
                          f"{found[np.argmax(np.abs(found))]:.0f} ms over {len(found)} sessions "
                          f"({len(errors) - len(found)} without both events)")  # fmt: skip
        finally:
            engine.dispose()
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
