"""Exports of observations, per-bin aggregates (CSV, Parquet, JSON) and session summaries (JSON).

Files are written to a temporary file beside the target and then renamed over it, so a failed export
leaves neither a partial file nor a changed previous export.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fer_core.emotions import OBSERVATION_COLUMNS
from sessions.errors import ExportError

#: Table formats, by file suffix.
TABLE_FORMATS: tuple[str, ...] = ("csv", "parquet", "json")


def _format_of(path: Path, fmt: str | None) -> str:
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"export format has to be one of {TABLE_FORMATS} (from the file suffix or `fmt`); "
                         f"got {fmt or 'no suffix'!r} for {str(path)!r}")  # fmt: skip
    return fmt


def _atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write export {str(target)!r}: the folder {str(folder)!r} does not exist")
    if target.is_dir():
        raise ExportError(f"cannot write export {str(target)!r}: it is a folder")
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise ExportError(f"cannot write export {str(target)!r}: {exc.strerror or exc}") from None
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        os.replace(temp, target)
    except OSError as exc:
        raise ExportError(f"cannot write export {str(target)!r}: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)
    return target


def _write_table(frame: pd.DataFrame, path: str | os.PathLike, fmt: str | None) -> Path:
    kind = _format_of(Path(path), fmt)

    def write(temp: Path) -> None:
        if kind == "csv":
            frame.to_csv(temp, index=False)
        elif kind == "parquet":
            frame.to_parquet(temp, index=False)
        else:
            frame.to_json(temp, orient="records", double_precision=10)

    return _atomic_write(path, write)


def export_observations(df: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None) -> Path:
    """Write per-frame observations (columns ``OBSERVATION_COLUMNS``) to ``path``.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`sessions.repository.load_observations`.
    path : str or path-like
        Target file; the format comes from its suffix (``.csv``, ``.parquet``, ``.json``) unless ``fmt`` is given.
    fmt : {"csv", "parquet", "json"}, optional
        Format overriding the suffix. JSON is a list of records, NaN written as null.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        Unknown format, or ``df`` lacks observation columns.
    ExportError
        The file cannot be written (missing folder, no permission...); nothing is left behind.
    """
    missing = [c for c in OBSERVATION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"observations have to have the columns {list(OBSERVATION_COLUMNS)}; missing {missing}")
    return _write_table(df[list(OBSERVATION_COLUMNS)], path, fmt)


def export_bins(df: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None) -> Path:
    """Write a per-bin table (:func:`sessions.aggregate.per_bin` or :func:`~sessions.aggregate.compare`) to ``path``.

    Same formats, return value and errors as :func:`export_observations`; all columns of ``df`` are
    written as they are (``time_s`` in seconds, probabilities and rates in [0, 1]), its index is not.

    Parameters
    ----------
    df : pandas.DataFrame
        Any table; its columns are not checked.
    path : str or path-like
        Target file; the format comes from its suffix (``.csv``, ``.parquet``, ``.json``) unless ``fmt`` is given.
    fmt : {"csv", "parquet", "json"}, optional
        Format overriding the suffix. JSON is a list of records, NaN written as null.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        Unknown format.
    ExportError
        The file cannot be written (missing folder, no permission...); nothing is left behind.
    """
    return _write_table(df, path, fmt)


def json_ready(value):
    """Return ``value`` with NaN/inf as None, numpy scalars as Python numbers, datetimes as ISO strings.

    Parameters
    ----------
    value : object
        A scalar, or dicts, lists and tuples of them, nested to any depth.

    Returns
    -------
    object
        A copy in which dict keys are ``str``, tuples are lists, non-finite floats are None, objects with
        ``.item()`` (numpy scalars) are converted and objects with ``.isoformat()`` (datetimes, dates)
        become ISO 8601 strings; other values are returned unchanged.

    Raises
    ------
    ValueError
        ``value`` holds a numpy array of more than one element (its ``.item()`` fails).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "item"):  # numpy scalar
        return json_ready(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def export_summary(summary: dict, path: str | os.PathLike) -> Path:
    """Write a session summary (:func:`sessions.aggregate.session_summary`) as JSON (NaN as null).

    Parameters
    ----------
    summary : dict
        The summary; passed through :func:`json_ready` and written UTF-8, indented by 2 spaces.
    path : str or path-like
        Target file (any suffix).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    TypeError, ValueError
        ``summary`` holds a value that JSON cannot represent even after :func:`json_ready`
        (see its errors).
    ExportError
        The file cannot be written; nothing is left behind.
    """
    text = json.dumps(json_ready(summary), indent=2, allow_nan=False)
    return _atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))
