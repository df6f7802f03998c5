"""Shared fixtures: paths to the real data in ../shared, skipped with a clear reason when absent."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import dashboard  # noqa: F401  (first: loads WebRTC's SRTP library before any test loads TensorFlow; see its __init__)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FER_SHARED_DIR", ROOT.parent / "shared"))
VIDEO_DIR = SHARED / "data" / "video"
FER2013_CSV = SHARED / "data" / "fer2013" / "fer2013.csv.xz"
FERPLUS_CSV = SHARED / "data" / "fer2013" / "fer2013new.csv"
#: The PostgreSQL server every machine (CI included) runs: trust auth, database ``test``.
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (../shared is not beside the checkout)")
    return path


@pytest.fixture(scope="session")
def video_dir() -> Path:
    """Folder of real face clips and stills (../shared/data/video)."""
    return _require(VIDEO_DIR)


@pytest.fixture(scope="session")
def fer2013_csv() -> Path:
    """The real FER2013 CSV (../shared/data/fer2013/fer2013.csv.xz)."""
    return _require(FER2013_CSV)


@pytest.fixture(scope="session")
def ferplus_csv() -> Path:
    """The real FER+ votes (../shared/data/fer2013/fer2013new.csv)."""
    return _require(FERPLUS_CSV)


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
