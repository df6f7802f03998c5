"""Live-path benchmark: the dashboard with 1, 2 and 4 fake-camera browser streams at once.

Starts the dashboard (temporary SQLite store) and, for each stream count, that many headless Chromium
pages whose fake camera plays ``single_face.mp4`` as a 640x480, 15 fps ``.y4m``. Each page creates a
session, ticks consent and starts its camera; after a warm-up the Record page's own live numbers are
read twice, ``--seconds`` apart, and per stream it prints: frames analysed per second, frames dropped
(as a count and a share of the frames the camera sent), and capture-to-result latency p50/p90 (ms, the
stream's last 300 frames; capture time = the frame's timestamp mapped onto the server clock by the least
delayed frame, so the network's constant delay is left out).

Target on the 2-core reference machine, browsers included: 2 streams analysed at the camera's rate with no
drops, 4 streams under 5% dropped, p90 latency under 250 ms.

    python benchmarks/bench_live.py [--streams 1 2 4] [--seconds 20] [--model PATH] [--detect-every 1]

Needs Debian chromium and ffmpeg (``scripts/install-system-deps.sh``) and the real clip in ../shared.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import VIDEO_DIR  # noqa: E402
from tests.dashboard import browser  # noqa: E402

CAMERA_FPS = 15


def read_numbers(page) -> dict[str, float]:
    """The live panel's frame count, drop count and latency percentiles."""
    latency = browser.metric_value(page, "Latency p50/p90 (ms)")
    p50, _, p90 = latency.partition("/")
    number = lambda text: float(text) if text.strip().replace(".", "", 1).isdigit() else float("nan")  # noqa: E731
    return {
        "frames": number(browser.metric_value(page, "Frames analysed")),
        "dropped": number(browser.metric_value(page, "Dropped frames")),
        "p50": number(p50),
        "p90": number(p90),
    }


def run(n_streams: int, url: str, clip: Path, *, warmup_s: float, seconds: float) -> list[dict[str, float]]:
    """Open ``n_streams`` camera pages, measure, stop them; return per-stream figures."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = browser.launch_chromium(pw, clip)
        pages = []
        for i in range(n_streams):
            page = chromium.new_context(viewport={"width": 1400, "height": 1400}).new_page()
            browser.create_session(page, url, f"BENCH-{n_streams}-{i}")
            browser.start_camera(page)
            pages.append(page)
        for page in pages:
            browser.wait_for_frames(page, 3, timeout_s=180)
        time.sleep(warmup_s)
        start = [(time.monotonic(), read_numbers(p)) for p in pages]
        time.sleep(seconds)
        results = []
        for page, (t0, before) in zip(pages, start, strict=True):
            after, elapsed = read_numbers(page), time.monotonic() - t0
            frames, dropped = after["frames"] - before["frames"], after["dropped"] - before["dropped"]
            results.append({
                "fps": frames / elapsed, "dropped": dropped, "dropped_share": dropped / max(frames + dropped, 1),
                "p50": after["p50"], "p90": after["p90"],
            })  # fmt: skip
        for page in pages:
            browser.webrtc_frame(page).get_by_role("button", name="STOP").click()
        time.sleep(2)
        chromium.close()
    return results


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
    with tempfile.TemporaryDirectory(prefix="bench-live-") as folder:
        folder = Path(folder)
        clip = browser.make_y4m(source, folder / "clip.y4m", width=640, height=480, fps=CAMERA_FPS)
        env = {"FER_DB_URL": f"sqlite:///{folder / 'sessions.db'}", "FER_DETECT_EVERY": str(args.detect_every)}
        if args.model:
            env["FER_MODEL_PATH"] = str(args.model.resolve())
        print(f"camera: 640x480 at {CAMERA_FPS} fps; window {args.seconds:.0f} s after {args.warmup:.0f} s warm-up; "
              f"detect_every={args.detect_every}")  # fmt: skip
        with browser.dashboard_server(env, log=folder / "streamlit.log") as url:
            print(f"{'streams':>7} {'stream':>6} {'fps':>6} {'dropped':>8} {'drop %':>7} {'p50 ms':>7} {'p90 ms':>7}")
            for n in args.streams:
                for i, r in enumerate(run(n, url, clip, warmup_s=args.warmup, seconds=args.seconds)):
                    print(
                        f"{n:>7} {i:>6} {r['fps']:>6.1f} {r['dropped']:>8.0f} {r['dropped_share']:>7.1%} {r['p50']:>7.0f} {r['p90']:>7.0f}"
                    )


if __name__ == "__main__":
    main()
