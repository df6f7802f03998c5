"""The stimulus player's browser code run in Node with a stand-in page: its events and its clock offset are on
one clock, so a wall clock (``Date.now()``) stepped after the page loaded does not shift the events' session
times; the final text of a participant link and of the Record page."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from dashboard import stimulus_player

# A page stand-in: every element answers every query with an element of its own; the video records listeners.
_HARNESS = r"""
const el = () => {
  const e = { style: {}, q: {}, listeners: {}, textContent: "", className: "", paused: false, currentTime: 0,
              querySelector(sel) { return (this.q[sel] ||= el()); }, addEventListener(k, f) { this.listeners[k] = f; },
              replaceChildren() {}, appendChild() {}, scrollIntoView() {}, load() {}, play: () => Promise.resolve() };
  return e;
};
const clocks = JSON.parse(process.argv[2]);
let perfNow = clocks.perf_now_ms;
Object.defineProperty(globalThis, "performance", { value: { timeOrigin: clocks.time_origin_ms, now: () => perfNow } });
Date.now = () => clocks.date_now_ms;  // the wall clock, stepped after the page loaded
const player = (await import(clocks.module)).default;
let sent = [];
const parent = el();
const component = { data: clocks.data, parentElement: parent, setStateValue: (k, v) => { sent = v; } };
player(component);  // first render: the offset and a "ready" event
perfNow += 400;
parent.querySelector(".fer-player").q["video"].listeners["playing"]({ timeStamp: clocks.playing_stamp_ms });
console.log(JSON.stringify(sent));
"""


@pytest.fixture
def run_player(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the player's browser code cannot be run here")
    module = tmp_path / "player.mjs"
    module.write_text(stimulus_player._JS)
    harness = tmp_path / "harness.mjs"
    harness.write_text(_HARNESS)

    def run(**clocks) -> list[dict]:
        clocks["module"] = module.as_uri()
        out = subprocess.run([node, str(harness), json.dumps(clocks)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    return run


def test_events_and_offset_use_one_clock_when_the_wall_clock_was_stepped(run_player):
    """Server and browser clocks agree; the render arrives 20 ms after the server stamped it; the browser's
    ``Date.now()`` reads 2.5 s ahead of its ``performance`` clock (stepped after the page loaded). Each event's
    ``client_ms - offset_ms`` (what the server turns into session time) has to be the server's time of the event,
    late by the 20 ms delivery delay only."""
    origin, perf = 1_700_000_000_000.0, 500.0
    items = [{"position": 0, "buffer_s": 0, "src": "/media/a.mp4", "missing": False}]
    data = {"server_ms": origin + perf - 20.0, "ready": True, "check": "", "items": items, "done": [],
            "start_label": "Start", "final_text": "done"}  # fmt: skip
    sent = run_player(time_origin_ms=origin, perf_now_ms=perf, date_now_ms=origin + perf + 2500.0, data=data,
                      playing_stamp_ms=850.0)  # fmt: skip
    assert [e["kind"] for e in sent] == ["ready", "playing"]
    ready, playing = sent
    assert ready["client_ms"] - ready["offset_ms"] == pytest.approx(origin + perf - 20.0, abs=1.0)
    assert playing["client_ms"] - playing["offset_ms"] == pytest.approx(origin + 850.0 - 20.0, abs=1.0)


def test_a_participant_link_is_told_to_press_stop_and_the_record_page_keeps_its_in_lab_text():
    """Issue 13 review: a remote participant was told to wait for a researcher who is not there."""
    participant, in_lab = stimulus_player.final_text("part"), stimulus_player.final_text("rec")
    assert "Press STOP" in participant and "researcher" not in participant and "once the session has ended" in participant
    assert in_lab == "The video is over. Thank you! Please wait for the researcher's instructions."
