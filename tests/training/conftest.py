"""Fixtures for the training tests: small datasets written in each format the loaders read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def pixels_text(image: np.ndarray) -> str:
    """Return a 48x48 uint8 image as the Kaggle CSV's space-separated pixel string."""
    return " ".join(map(str, image.reshape(-1).tolist()))


@pytest.fixture(scope="session")
def real_rows(fer2013_csv) -> pd.DataFrame:
    """The first 400 rows of the real FER2013 CSV (all Training in the file)."""
    return pd.read_csv(fer2013_csv, nrows=400, dtype={"emotion": int, "pixels": str, "Usage": str})


@pytest.fixture(scope="session")
def small_real_csv(real_rows, tmp_path_factory):
    """A real-image CSV (.xz): rows 0-299 Training, 300-399 PublicTest, plus 2 Training images copied into PublicTest."""
    frame = real_rows.copy()
    frame.loc[300:, "Usage"] = "PublicTest"
    frame = pd.concat([frame, frame.iloc[[5, 7]].assign(Usage="PublicTest")], ignore_index=True)
    path = tmp_path_factory.mktemp("small") / "small.csv.xz"
    frame.to_csv(path, index=False)
    return path
