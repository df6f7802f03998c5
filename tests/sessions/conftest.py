"""Fixtures of the session-store tests: a SQLite file always, PostgreSQL when reachable (own schema)."""

from __future__ import annotations

import uuid
from typing import NamedTuple

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from fer_core.emotions import EMOTIONS

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

try:  # the core's own result type once it exists; the same fields otherwise
    from fer_core.analyzer import FaceResult
except ImportError:

    class FaceResult(NamedTuple):  # type: ignore[no-redef]
        face_id: int
        box: tuple[int, int, int, int]
        probs: np.ndarray
        smoothed: np.ndarray
        dominant: str


def face(face_id: int = 1, *, box=(10, 20, 100, 120), **probs: float) -> FaceResult:
    """A FaceResult with the given probabilities (the rest of the mass spread evenly over the other classes)."""
    rest = (1.0 - sum(probs.values())) / max(1, len(EMOTIONS) - len(probs))
    vector = np.array([probs.get(e, rest) for e in EMOTIONS], dtype=np.float32)
    smoothed = np.full(len(EMOTIONS), 1 / len(EMOTIONS), dtype=np.float32)  # deliberately different from probs
    return FaceResult(face_id, tuple(box), vector, smoothed, EMOTIONS[int(np.argmax(smoothed))])


def _postgres_reason() -> str | None:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    return _postgres_reason()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


@pytest.fixture
def postgres_url(postgres_available):
    """URL of a fresh schema in the shared test database (search_path set through the URL); dropped after."""
    if postgres_available:
        pytest.skip(postgres_available)
    schema = f"sessions_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    """Each test using it runs on SQLite and on PostgreSQL (skipped with the reason when unreachable)."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
def engine(db_url):
    from sessions.db import get_engine

    engine = get_engine(db_url)
    yield engine
    engine.dispose()
