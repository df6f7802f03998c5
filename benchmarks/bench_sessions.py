"""Session-store benchmark: live recording throughput, and aggregation/comparison of long sessions.

Prints
1. observations per second written by one LiveRecorder fed by 8 concurrent streams at 30 fps each
   (target: no drops), plus the writer's capacity when frames arrive unpaced;
2. the time to aggregate (``per_bin``) and to compare (``compare``) 20 one-hour sessions at 30 fps
   (2.16 million observations; target: under 5 s on the development machine).

Run: ``python benchmarks/bench_sessions.py [--db URL] [--seconds 20] [--sessions 20] [--hours 1]``
(default database: a temporary SQLite file).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from fer_core.analyzer import FaceResult  # noqa: E402
from fer_core.emotions import EMOTIONS, NO_FACE_ID, OBSERVATION_COLUMNS  # noqa: E402
from sessions import repository  # noqa: E402
from sessions.aggregate import compare, per_bin  # noqa: E402
from sessions.db import get_engine, session_scope  # noqa: E402
from sessions.recorder import LiveRecorder  # noqa: E402

FPS = 30


def _sessions(engine, count: int, study: str) -> list[int]:
    with session_scope(engine) as db:
        study_row = repository.get_or_create_study(db, study)
        return [repository.create_session(db, study_id=study_row.id, participant_code=f"B-{i}").id
                for i in range(count)]  # fmt: skip


def bench_recording(engine, *, streams: int, seconds: float) -> None:
    """Streams submit one face per frame at FPS in real time; report rows written per second and drops."""
    ids = _sessions(engine, streams, "bench-live")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(EMOTIONS)), size=256).astype(np.float32)
    recorder = LiveRecorder(engine)
    late = [0.0] * streams

    def stream(k: int, sid: int) -> None:
        start = time.perf_counter()
        for index in range(int(seconds * FPS)):
            due = start + index / FPS
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                late[k] = max(late[k], -delay)
            p = probs[index % len(probs)]
            recorder.submit(sid, index, index / FPS, [FaceResult(1, (100, 80, 160, 160), p, p, "happy")])

    started = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(k, sid)) for k, sid in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finals = [recorder.finish(sid) for sid in ids]
    elapsed = time.perf_counter() - started
    recorder.close()
    written = sum(s.written for s in finals)
    dropped = sum(s.dropped for s in finals)
    print(f"live recording: {streams} streams x {FPS} fps for {seconds:.0f} s: {written} observations written in "
          f"{elapsed:.1f} s = {written / elapsed:.0f} observations/s (offered {streams * FPS}/s), "
          f"dropped {dropped}, worst producer lag {max(late) * 1000:.0f} ms")  # fmt: skip

    # capacity: the same number of frames, submitted as fast as possible
    ids = _sessions(engine, streams, "bench-burst")
    recorder = LiveRecorder(engine, max_queue=int(seconds * FPS * streams) + 1)
    started = time.perf_counter()
    p = probs[0]
    for index in range(int(seconds * FPS)):
        for sid in ids:
            recorder.submit(sid, index, index / FPS, [FaceResult(1, (100, 80, 160, 160), p, p, "happy")])
    finals = [recorder.finish(sid, timeout_s=600) for sid in ids]
    elapsed = time.perf_counter() - started
    recorder.close()
    written = sum(s.written for s in finals)
    print(f"writer capacity (unpaced burst): {written} observations in {elapsed:.1f} s = "
          f"{written / elapsed:.0f} observations/s")  # fmt: skip


def synthetic_session(rng: np.random.Generator, hours: float) -> pd.DataFrame:
    """One session at FPS: one face per frame (5% of frames without a face), Dirichlet probabilities."""
    n = int(hours * 3600 * FPS)
    probs = rng.dirichlet(np.full(len(EMOTIONS), 0.5), size=n)
    no_face = rng.random(n) < 0.05
    probs[no_face] = np.nan
    frame = pd.DataFrame(probs, columns=list(EMOTIONS))
    frame["time_s"] = np.arange(n) / FPS + rng.normal(0, 0.002, n).clip(-0.01, 0.01)
    frame["frame"] = np.arange(n)
    frame["face_id"] = np.where(no_face, NO_FACE_ID, 1)
    for column, value in zip("xywh", (100, 80, 160, 160), strict=True):
        frame[column] = np.where(no_face, np.nan, value)
    frame["dominant"] = np.where(no_face, "none", np.array(EMOTIONS)[np.nan_to_num(probs, nan=0).argmax(axis=1)])
    return frame[list(OBSERVATION_COLUMNS)]


def bench_aggregation(*, sessions: int, hours: float) -> None:
    rng = np.random.default_rng(1)
    observations = {sid: synthetic_session(rng, hours) for sid in range(1, sessions + 1)}
    rows = sum(len(df) for df in observations.values())
    started, cpu_started = time.perf_counter(), time.process_time()
    bins = {sid: per_bin(df) for sid, df in observations.items()}
    aggregated = time.perf_counter()
    groups = {sid: "A" if sid % 2 else "B" for sid in bins}
    table = compare(bins, groups=groups)
    compared, cpu = time.perf_counter(), time.process_time() - cpu_started
    print(f"aggregate {sessions} sessions x {hours:g} h at {FPS} fps ({rows:,} observations): per_bin "
          f"{aggregated - started:.2f} s, compare {compared - aggregated:.2f} s ({len(table):,} rows, 2 groups), "
          f"total {compared - started:.2f} s wall, {cpu:.2f} s CPU (target < 5 s)")  # fmt: skip
    aligned = {sid: float(rng.uniform(0, 30)) for sid in observations}
    started = time.perf_counter()
    compare(observations, groups=groups, align=aligned)
    print(f"compare from raw observations aligned on a marker (re-binning included): "
          f"{time.perf_counter() - started:.2f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the live-recording run")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--hours", type=float, default=1.0, help="length of each aggregated session")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = get_engine(args.db or f"sqlite:///{Path(folder) / 'bench.db'}")
        print(f"database: {engine.url.render_as_string(hide_password=True)}")
        bench_recording(engine, streams=args.streams, seconds=args.seconds)
        engine.dispose()
    bench_aggregation(sessions=args.sessions, hours=args.hours)


if __name__ == "__main__":
    main()
