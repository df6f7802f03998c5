"""Helpers of the real-browser tests and the live benchmark: the dashboard server, a fake camera clip, Chromium.

Chromium is Debian's (``/usr/bin/chromium``), driven by Playwright's Python client with
``executable_path`` (no browser download). Its fake camera plays a ``.y4m`` clip in a loop.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FER_CHROMIUM", "/usr/bin/chromium")
#: Flags of every test browser (no network services, fake camera and permission prompt).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
)  # fmt: skip


def missing_tools() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not Path(CHROMIUM).is_file():
        return f"Debian chromium not found at {CHROMIUM} (apt-get install chromium, or `scripts/install-system-deps.sh`)"
    if shutil.which("ffmpeg") is None:
        return "ffmpeg not found (apt-get install ffmpeg, or `scripts/install-system-deps.sh`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (requirements-dev.txt)"
    return None


def make_y4m(
    source: Path,
    target: Path,
    *,
    width: int = 640,
    height: int = 480,
    fps: int = 15,
    hold_last_s: float = 0.0,
    end_s: float | None = None,
) -> Path:
    """Convert a video to the ``.y4m`` Chromium's fake camera plays (scaled and padded to ``width`` x ``height``).

    ``end_s`` cuts the source at that time (seconds); ``hold_last_s`` then repeats the last kept frame for that
    many seconds (the clip ends on a long, still expression).
    """
    filters = [f"scale={width}:{height}:force_original_aspect_ratio=decrease", f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2", f"fps={fps}"]
    if hold_last_s > 0:
        filters.append(f"tpad=stop_mode=clone:stop_duration={hold_last_s}")
    cut = ["-t", f"{end_s:.3f}"] if end_s is not None else []
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *cut, "-i", str(source), "-vf", ",".join(filters), "-pix_fmt", "yuv420p", str(target)], check=True)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(env: dict[str, str], *, log: Path, port: int | None = None, auth: bool = False,
                    timeout_s: float = 180.0, script: Path | None = None) -> tuple[subprocess.Popen, str]:  # fmt: skip
    """Start ``streamlit run dashboard/app.py`` on 127.0.0.1 (a free port unless ``port``); return it and its URL.

    ``auth=False`` (the default) turns sign-in off (``FER_AUTH=none``, allowed on 127.0.0.1); ``auth=True``
    requires it as in production. The account file is ``accounts.json`` beside ``log`` unless ``env`` has
    ``FER_AUTH_FILE``; on first start the server prints the first account's password into ``log`` (appended to).
    ``script`` runs another Streamlit script instead of ``dashboard/app.py`` (a test page of one renderer feature).
    The caller stops the process (``terminate``, or ``kill`` to simulate a crash).
    """
    port = port or free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script or ROOT / "dashboard" / "app.py"), "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]  # fmt: skip
    server_env = {**os.environ, "FER_AUTH_FILE": str(log.parent / "accounts.json"), **env}
    if auth:
        server_env.pop("FER_AUTH", None)
    else:
        server_env["FER_AUTH"] = "none"
    with open(log, "ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return process, url
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the dashboard did not start; see {log}:\n{log.read_text()[-2000:]}")
        time.sleep(0.3)


@contextmanager
def dashboard_server(env: dict[str, str], *, log: Path, auth: bool = False, timeout_s: float = 180.0,
                     script: Path | None = None) -> Iterator[str]:  # fmt: skip
    """Run the dashboard (:func:`start_dashboard`; ``script`` instead of it) for the block; yield its base URL."""
    process, url = start_dashboard(env, log=log, auth=auth, timeout_s=timeout_s, script=script)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def launch_chromium(playwright, clip: Path | None = None):
    """Headless Debian Chromium whose fake camera plays ``clip`` (a .y4m file; None: Chromium's test pattern)."""
    video = [f"--use-file-for-fake-video-capture={clip}"] if clip is not None else []
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_FLAGS, *video])


def webrtc_frame(page):
    """The streamlit-webrtc component's iframe (its START/STOP buttons live inside it)."""
    return page.frame_locator('iframe[title*="webrtc"]').first


def create_session(page, base_url: str, participant: str, tags: str = "") -> None:
    """Fill and submit the Record page's "New session" form."""
    page.goto(f"{base_url}/record")
    page.get_by_label("Participant code (a pseudonym)").fill(participant)
    if tags:
        page.get_by_label("Tags").fill(tags)
    page.get_by_role("button", name="Create session").click()
    page.get_by_text("I have read this and I agree to take part.").first.wait_for(timeout=60_000)


def start_camera(page) -> None:
    """Tick consent and press START in the webrtc component; wait until frames are analysed."""
    page.get_by_text("I have read this and I agree to take part.").first.click()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    frame = webrtc_frame(page)
    frame.get_by_role("button", name="START").click(timeout=120_000)
    stop = frame.get_by_role("button", name="STOP")
    for _ in range(2):  # a click that lands while the page reruns (after the consent tick) can be lost: press again
        try:
            stop.wait_for(timeout=40_000)
            return
        except PlaywrightTimeout:
            start = frame.get_by_role("button", name="START")
            if start.is_visible() and start.is_enabled():
                start.click()
    stop.wait_for(timeout=60_000)


def metric_value(page, label: str) -> str:
    """Text of the ``st.metric`` labelled ``label`` ("" when absent)."""
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    if metric.count() == 0:
        return ""
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def wait_for_frames(page, n: int, *, timeout_s: float = 120.0) -> int:
    """Wait until the live panel reports at least ``n`` analysed frames; return the count."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = metric_value(page, "Frames analysed")
        if text.strip().isdigit() and int(text) >= n:
            return int(text)
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {n} frames analysed within {timeout_s} s (last: {metric_value(page, 'Frames analysed')!r})")


def first_password(log: Path, *, timeout_s: float = 60.0) -> str:
    """The first account's password that the server printed into ``log`` on first start."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = re.search(r"as researcher with password (\S+)", log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no first-account line in {log} within {timeout_s} s")
        time.sleep(0.2)


def sign_in(page, name: str, password: str) -> None:
    """Fill and submit the sign-in form shown on ``page``; wait until the sign-in form is gone."""
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Password", exact=True).wait_for(state="detached", timeout=60_000)
