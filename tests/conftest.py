"""Shared fixtures: paths to the real data in ../shared, skipped with a clear reason when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FER_SHARED_DIR", ROOT.parent / "shared"))
VIDEO_DIR = SHARED / "data" / "video"
FER2013_CSV = SHARED / "data" / "fer2013" / "fer2013.csv.xz"
FERPLUS_CSV = SHARED / "data" / "fer2013" / "fer2013new.csv"


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
