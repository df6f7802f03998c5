"""Session-store benchmark: live recording throughput, and the Compare page on a large study read from the store.

Prints
1. observations per second written by one LiveRecorder fed by 8 concurrent streams at 30 fps each
   (target: no drops), plus the writer's capacity when frames arrive unpaced (``--skip-recording`` leaves it out);
2. for SQLite (a temporary file) and PostgreSQL (``--pg-url``, a dedicated schema dropped afterwards): a study of
   20 one-hour sessions at 30 frames/s (2.16 million observations; smooth synthetic expressions, stretches
   without a face, a few slow seconds, a "stimulus start" marker, tags variant=A/B) bulk-inserted, each session
   ended through ``sessions.lifecycle.end_session`` (which stores its per-second rows), then the functions the
   Compare page calls, in its order, reading the database: ``aggregate_versions``, ``load_inputs``, ``analyse``,
   ``metric_view``, ``view_figures`` (first view: the page's cache is empty), the same with the analysis cached
   (another time range; the page caches each view too), the study report (``render_report``), and the first read of a database from before the
   per-second table (rows computed and stored). Target: the first view under 3 s. Peak memory of the first view
   (``tracemalloc``, a second run) and the process's peak resident set are printed with the CPU model (lscpu).

Run: ``python benchmarks/bench_sessions.py [--backends sqlite postgresql] [--pg-url URL] [--sessions 20]
[--hours 1] [--skip-recording] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from scipy.signal import lfilter  # noqa: E402
from sqlalchemy import create_engine, text, update  # noqa: E402
from tqdm import tqdm  # noqa: E402

from fer_core.analyzer import FaceResult  # noqa: E402
from fer_core.emotions import EMOTIONS, NO_FACE_ID  # noqa: E402
from sessions import lifecycle, report, repository  # noqa: E402
from sessions.analysis import analyse, load_inputs, load_settings  # noqa: E402
from sessions.db import get_engine, session_scope  # noqa: E402
from sessions.models import SecondAggregate, StudySession  # noqa: E402
from sessions.recorder import LiveRecorder  # noqa: E402
from sessions.second_aggregates import aggregate_versions  # noqa: E402

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: Observation columns written by the bulk insert (the per-frame table without ``id``).
STORED = ("session_id", "time_s", "frame", "face_id", "x", "y", "w", "h", *EMOTIONS, "dominant")

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


def cpu_model() -> str:
    """``lscpu``'s model name and CPU count (else ``unknown CPU``)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown CPU"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{fields.get('Model name', 'CPU').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs"


def synthetic_observations(rng: np.random.Generator, session_id: int, hours: float) -> pd.DataFrame:
    """One session at FPS with smooth expressions: AR(1) logits (a 2 s time constant) per class, a smile episode
    every few minutes, 3% of frames in stretches without a face, every 200th second at 4 frames/s."""
    n = int(hours * 3600 * FPS)
    steps = rng.normal(0, 0.35, size=(n, len(EMOTIONS)))
    decay = np.exp(-1 / (2.0 * FPS))
    logits = lfilter([(1 - decay) ** 0.5], [1.0, -decay], steps, axis=0)  # x[i] = decay x[i-1] + noise
    logits[:, EMOTIONS.index("neutral")] += 1.5
    smile = (np.sin(np.arange(n) / (FPS * 180 / np.pi)) > 0.9).astype(float) * 2.5
    logits[:, EMOTIONS.index("happy")] += smile
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    frame = np.arange(n)
    time_s = frame / FPS + rng.normal(0, 0.002, n).clip(-0.01, 0.01)
    second = np.floor(time_s).astype(int)
    slow = (second % 200 == 7) & (frame % (FPS // 4) != 0)  # a slow second: only 4 of its frames analysed
    no_face = (np.floor(time_s / 10).astype(int) % 33 == 5) & (rng.random(n) < 0.9)
    keep = ~slow
    table = pd.DataFrame(probs[keep], columns=list(EMOTIONS))
    nf = no_face[keep]
    table.loc[nf, list(EMOTIONS)] = np.nan
    table.insert(0, "session_id", session_id)
    table.insert(1, "time_s", np.clip(time_s[keep], 0, None))
    table.insert(2, "frame", frame[keep])
    table.insert(3, "face_id", np.where(nf, NO_FACE_ID, 1))
    for k, (column, value) in enumerate(zip("xywh", (200, 120, 180, 180), strict=True)):
        table.insert(4 + k, column, np.where(nf, np.nan, value))
    table["dominant"] = np.where(nf, "none", np.array(EMOTIONS)[np.nan_to_num(probs[keep], nan=0).argmax(axis=1)])
    table[list("xywh")] = table[list("xywh")].astype("Int64")  # integer pixels, NULL without a face
    return table[list(STORED)]


def bulk_insert(engine, table: pd.DataFrame) -> None:
    """Write observations as fast as the backend takes them: COPY on PostgreSQL, executemany on SQLite."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "postgresql":
            buffer = io.StringIO()
            table.to_csv(buffer, index=False, header=False, na_rep="\\N")
            with cursor.copy(f"COPY observations ({', '.join(STORED)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')") as copy:
                copy.write(buffer.getvalue())
        else:
            rows = table.astype(object).where(table.notna(), None).itertuples(index=False, name=None)
            cursor.executemany(f"INSERT INTO observations ({', '.join(STORED)}) VALUES ({', '.join('?' * len(STORED))})",
                               rows)  # fmt: skip
        raw.commit()
    finally:
        raw.close()


def build_study(engine, *, sessions: int, hours: float) -> tuple[int, list[int], float, float]:
    """The study of the module docstring; returns its id, the session ids, insert seconds and end seconds."""
    rng = np.random.default_rng(7)
    with session_scope(engine) as db:
        study = repository.create_study(db, f"bench-{uuid.uuid4().hex[:6]}")
        ids = []
        for k in range(sessions):
            session = repository.create_session(db, study_id=study.id, participant_code=f"B{k:02d}",
                                                tags={"variant": "AB"[k % 2]})  # fmt: skip
            lifecycle.start_session(db, session.id, session.created_at)
            repository.add_marker(db, session.id, float(rng.uniform(5, 30)), "stimulus start")
            ids.append(session.id)
        study_id = study.id
    inserted = 0.0
    for sid in tqdm(ids, desc="insert observations", unit="session"):
        table = synthetic_observations(rng, sid, hours)
        started = time.perf_counter()
        bulk_insert(engine, table)
        inserted += time.perf_counter() - started
    started = time.perf_counter()
    for sid in tqdm(ids, desc="end sessions (per-second rows)", unit="session"):
        with session_scope(engine) as db:
            lifecycle.end_session(db, sid, "complete")
    return study_id, ids, inserted, time.perf_counter() - started


def compare_page(engine, study_id: int, ids: list[int], *, cached=None):
    """What the Compare page runs for "Groups by tag" (variant), metric happy; ``cached``: the cache hit."""
    with session_scope(engine) as db:
        aggregate_versions(db, ids)
        settings = load_settings(db, study_id)
        if cached is None:
            inputs = load_inputs(db, ids, settings=settings)
    if cached is None:
        groups = report.group_labels(inputs.sessions, "variant")
        analysis = analyse(inputs.sessions, inputs.per_second, groups=groups, settings=settings, markers=inputs.markers)
        cached = analysis, inputs.markers
    analysis, markers = cached
    view = report.metric_view(analysis, "happy", markers=markers)
    report.view_figures(analysis, view)
    return cached


def bench_compare(engine, *, sessions: int, hours: float) -> None:
    name = engine.dialect.name
    study_id, ids, inserted, ended = build_study(engine, sessions=sessions, hours=hours)
    with session_scope(engine) as db:
        n_obs = db.scalar(text("SELECT count(*) FROM observations"))
        n_sec = db.scalar(text("SELECT count(*) FROM second_aggregates"))
    print(f"[{name}] {sessions} sessions x {hours:g} h: {n_obs:,} observations inserted in {inserted:.1f} s; "
          f"ending them (per-second rows: {n_sec:,}) took {ended:.1f} s, {ended / sessions:.2f} s per session")  # fmt: skip
    started = time.perf_counter()
    cached = compare_page(engine, study_id, ids)
    first = time.perf_counter() - started
    started = time.perf_counter()
    compare_page(engine, study_id, ids, cached=cached)
    other_metric = time.perf_counter() - started
    started = time.perf_counter()
    analysis, markers = cached
    views = [report.metric_view(analysis, m, markers=markers) for m in report.DEFAULT_REPORT_METRICS]
    html = report.render_report("bench", analysis, views)
    rendered = time.perf_counter() - started
    tracemalloc.start()
    compare_page(engine, study_id, ids)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    with session_scope(engine) as db:  # a database from before the per-second table
        db.execute(SecondAggregate.__table__.delete())
        db.execute(update(StudySession).values(aggregates_version=None))
    started = time.perf_counter()
    with session_scope(engine) as db:
        load_inputs(db, ids)
    upgraded = time.perf_counter() - started
    print(f"[{name}] Compare, first view (store read, analysis, happy view, charts): {first:.2f} s (target < 3 s); "
          f"another time range (analysis cached; the page caches each view too): {other_metric:.2f} s; study report ({len(html) / 2**20:.1f} MB, 3 metrics): "
          f"{rendered:.2f} s; first read of an older database (per-second rows computed and stored): {upgraded:.1f} s; "
          f"peak Python memory of the first view {peak:.0f} MiB")  # fmt: skip


def postgres_engine(url: str):
    """An engine on a fresh schema of ``url`` (search_path through the URL), and a function dropping it."""
    schema = f"bench_sessions_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = get_engine(f"{url}?options=-csearch_path%3D{schema}")

    def drop() -> None:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return engine, drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_URL, help=f"PostgreSQL server (default {PG_URL})")
    parser.add_argument("--skip-recording", action="store_true", help="leave out the live-recording run")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the live-recording run")
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--hours", type=float, default=1.0, help="length of each session of the study")
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}")
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_recording:
            engine = get_engine(f"sqlite:///{Path(folder) / 'live.db'}")
            bench_recording(engine, streams=args.streams, seconds=args.seconds)
            engine.dispose()
        for backend in args.backends:
            if backend == "sqlite":
                engine = get_engine(f"sqlite:///{Path(folder) / 'study.db'}")
                try:
                    bench_compare(engine, sessions=args.sessions, hours=args.hours)
                finally:
                    engine.dispose()
            else:
                engine, drop = postgres_engine(args.pg_url)
                try:
                    bench_compare(engine, sessions=args.sessions, hours=args.hours)
                finally:
                    drop()
    print(f"peak resident set of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
