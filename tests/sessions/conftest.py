"""Fixtures of the session-store tests: a SQLite file always, PostgreSQL when reachable (own schema)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from fer_core.emotions import EMOTIONS
from tests.conftest import PG_URL  # noqa: F401 - the shared PostgreSQL fixtures live in tests/conftest.py

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


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


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
