"""Exports of observations, per-bin aggregates, comparisons (CSV, Parquet, JSON) and session summaries (JSON).

Files are written to a temporary file beside the target and then renamed over it, so a failed export
leaves neither a partial file nor a changed previous export.

Every row of a per-session export (:func:`export_observations`, :func:`export_bins`) says whose it is, so that
files of different participants can be concatenated without colliding. Columns, in this order:

1. ``IDENTITY_COLUMNS``: ``session_id`` (int), ``participant_code``, ``study`` (str);
2. one ``tag_<key>`` column (str) per tag of the session, keys in sorted order (``tag_age``, ``tag_variant``);
3. the data: ``OBSERVATION_COLUMNS`` then ``ATTENTION_COLUMNS`` (head ``yaw_deg``, ``pitch_deg``, ``attentive``)
   per frame, or ``BIN_COLUMNS`` per bin (with ``attention_rate`` and ``n_frames``, the analysed frames in the
   bin);
4. ``STIMULUS_TIME_COLUMNS``: ``stimulus`` (the stimulus on screen, empty outside playback) and
   ``stimulus_time_s`` (seconds into it; per bin, at the bin's middle), from
   :func:`sessions.playback.add_stimulus_columns` (empty when the table has none).

The format follows the file's suffix (``.csv``, ``.parquet``, ``.json``); an explicit ``fmt`` only decides when
the suffix names no format, and one that contradicts the suffix is refused. In CSV files, text cells that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) are
prefixed with a single quote (:func:`neutralize_csv_cells`, OWASP "CSV injection"); numeric columns are
written as numbers. Parquet and JSON keep the text as it is.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from fer_core.emotions import ATTENTION_COLUMNS, OBSERVATION_COLUMNS
from sessions.aggregate import BIN_COLUMNS, COMPARE_COLUMNS
from sessions.errors import ExportError
from sessions.playback import STIMULUS_TIME_COLUMNS

#: Table formats, by file suffix.
TABLE_FORMATS: tuple[str, ...] = ("csv", "parquet", "json")
#: Columns that lead every row of a per-session export, before its ``tag_<key>`` columns.
IDENTITY_COLUMNS: tuple[str, ...] = ("session_id", "participant_code", "study")
#: Prefix of the per-tag export columns (tag ``variant`` -> column ``tag_variant``).
TAG_COLUMN_PREFIX = "tag_"
#: First characters that make a spreadsheet evaluate a CSV cell (OWASP CSV injection).
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


class SessionIdentity(NamedTuple):
    """Whose rows an export holds: written as leading columns of every row (module docstring).

    Attributes
    ----------
    session_id : int
    participant_code : str
    study : str
        Study name.
    tags : dict of str to str
        The session's tags, one ``tag_<key>`` column each.
    """

    session_id: int
    participant_code: str
    study: str
    tags: Mapping[str, str]

    @classmethod
    def from_listing(cls, row) -> SessionIdentity:
        """Build it from a row of :func:`sessions.repository.list_sessions` (a Series or an ``itertuples`` row).

        Raises
        ------
        AttributeError, KeyError
            ``row`` lacks ``session_id``, ``participant_code``, ``study`` or ``tags``.
        """
        get = row.__getitem__ if isinstance(row, pd.Series) else lambda name: getattr(row, name)
        return cls(int(get("session_id")), str(get("participant_code")), str(get("study")), dict(get("tags") or {}))


def export_columns(identity: SessionIdentity, data_columns) -> list[str]:
    """Column order of a per-session export: identity, ``tag_<key>`` (sorted keys), then ``data_columns``.

    Parameters
    ----------
    identity : SessionIdentity
        Whose rows they are.
    data_columns : iterable of str
        ``OBSERVATION_COLUMNS`` or ``BIN_COLUMNS``.

    Returns
    -------
    list of str
    """
    tags = [f"{TAG_COLUMN_PREFIX}{key}" for key in sorted(identity.tags)]
    return [*IDENTITY_COLUMNS, *tags, *data_columns]


def with_identity(table: pd.DataFrame, identity: SessionIdentity, data_columns) -> pd.DataFrame:
    """Return ``table[data_columns]`` led by the identity and tag columns of :func:`export_columns`.

    Parameters
    ----------
    table : pandas.DataFrame
        Holds at least ``data_columns``.
    identity : SessionIdentity
        Whose rows they are; repeated on every row.
    data_columns : sequence of str
        The data columns, in order.

    Returns
    -------
    pandas.DataFrame
        Columns :func:`export_columns`, ``session_id`` int64, the identity and tag columns of dtype object (str),
        the data columns as in ``table``; the index is reset.

    Raises
    ------
    ValueError
        ``table`` lacks one of ``data_columns``, or a tag column would repeat one of them.
    """
    missing = [c for c in data_columns if c not in table.columns]
    if missing:
        raise ValueError(f"the table to export has to have the columns {list(data_columns)}; missing {missing}")
    data = table[list(data_columns)].reset_index(drop=True)
    lead = {"session_id": pd.Series(identity.session_id, index=data.index, dtype="int64"),
            "participant_code": pd.Series(identity.participant_code, index=data.index, dtype=object),
            "study": pd.Series(identity.study, index=data.index, dtype=object)}  # fmt: skip
    for key in sorted(identity.tags):
        name = f"{TAG_COLUMN_PREFIX}{key}"
        if name in data.columns:
            raise ValueError(f"tag {key!r} would be exported as {name!r}, which is already a data column")
        lead[name] = pd.Series(str(identity.tags[key]), index=data.index, dtype=object)
    return pd.concat([pd.DataFrame(lead, index=data.index), data], axis=1)


def neutralize_csv_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` in which text cells a spreadsheet would evaluate start with a single quote.

    A cell is neutralised when it is a ``str`` starting with one of ``FORMULA_PREFIXES`` (``=``, ``+``, ``-``,
    ``@``, tab, carriage return): ``"=HYPERLINK(...)"`` becomes ``"'=HYPERLINK(...)"`` (OWASP's advice for CSV
    injection). Only columns of dtype object or string are looked at, so numbers (a valence of ``-0.25``)
    stay numbers. The one function every CSV writer of the project uses.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any table.

    Returns
    -------
    pandas.DataFrame
        Same shape, index and columns; numeric, boolean and datetime columns unchanged.
    """
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
            out[column] = series.map(_neutralize_cell)
    return out


def _neutralize_cell(value):
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value


def resolve_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """Return the table format of an export to ``path``: its suffix, else ``fmt``.

    Parameters
    ----------
    path : str or path-like
        Target file.
    fmt : {"csv", "parquet", "json"}, optional
        Format asked for explicitly (case-insensitive).

    Returns
    -------
    str
        One of ``TABLE_FORMATS``.

    Raises
    ------
    ValueError
        ``fmt`` is not a known format, ``fmt`` contradicts a known suffix (``fmt="csv"`` for ``x.parquet``),
        or neither the suffix nor ``fmt`` names a format.
    """
    path = Path(path)
    suffix = path.suffix.lstrip(".").lower()
    asked = (fmt or "").lower() or None
    if asked is not None and asked not in TABLE_FORMATS:
        raise ValueError(f"export format has to be one of {TABLE_FORMATS}; got {fmt!r}")
    if suffix in TABLE_FORMATS:
        if asked is not None and asked != suffix:
            raise ValueError(f"export format {asked!r} contradicts the file suffix of {str(path)!r} "
                             f"(.{suffix} is {suffix}); give a matching suffix or leave the format out")  # fmt: skip
        return suffix
    if asked is None:
        raise ValueError(f"export format has to be one of {TABLE_FORMATS} (from the file suffix or `fmt`); "
                         f"got {('.' + suffix) if suffix else 'no suffix'!r} for {str(path)!r}")  # fmt: skip
    return asked


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
    kind = resolve_format(path, fmt)

    def write(temp: Path) -> None:
        if kind == "csv":
            neutralize_csv_cells(frame).to_csv(temp, index=False)
        elif kind == "parquet":
            frame.to_parquet(temp, index=False)
        else:
            frame.to_json(temp, orient="records", double_precision=10)

    return _atomic_write(path, write)


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None) -> Path:
    """Write a finished export table to ``path`` atomically: CSV (cells neutralised), Parquet or JSON by suffix.

    Raises
    ------
    ValueError
        Unknown or contradicting format; nothing is written.
    ExportError
        The file cannot be written; nothing is left behind.
    """
    return _write_table(frame, path, fmt)


def with_stimulus_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``STIMULUS_TIME_COLUMNS``: as they are when present, else empty (``stimulus`` None,
    ``stimulus_time_s`` NaN: a session that never played a stimulus)."""
    if all(c in table.columns for c in STIMULUS_TIME_COLUMNS):
        return table
    return table.assign(stimulus=pd.Series(None, index=table.index, dtype=object),
                        stimulus_time_s=pd.Series(float("nan"), index=table.index, dtype="float64"))  # fmt: skip


def with_attention_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``ATTENTION_COLUMNS`` (head ``yaw_deg``, ``pitch_deg`` in degrees, ``attentive``): as they are
    when present, else unknown (NaN, NA: a table from before attention, or a detector without keypoints)."""
    missing = {c: pd.Series(pd.NA if c == "attentive" else float("nan"), index=table.index,
                            dtype="boolean" if c == "attentive" else "float64")
               for c in ATTENTION_COLUMNS if c not in table.columns}  # fmt: skip
    return table.assign(**missing) if missing else table


def export_observations(df: pd.DataFrame, path: str | os.PathLike, *, identity: SessionIdentity,
                        fmt: str | None = None) -> Path:  # fmt: skip
    """Write one session's per-frame observations to ``path``, every row led by whose they are.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``OBSERVATION_COLUMNS`` (:func:`sessions.repository.load_observations`); other columns are left out.
    path : str or path-like
        Target file; the format comes from its suffix (``.csv``, ``.parquet``, ``.json``).
    identity : SessionIdentity
        The session, participant, study and tags written on every row (:func:`export_columns`).
    fmt : {"csv", "parquet", "json"}, optional
        Format for a path whose suffix names none; one contradicting the suffix is refused. JSON is a list of
        records, NaN written as null.

    Returns
    -------
    pathlib.Path
        The written file: columns :func:`export_columns` over ``OBSERVATION_COLUMNS``, ``ATTENTION_COLUMNS``
        (:func:`with_attention_columns`) and ``STIMULUS_TIME_COLUMNS``, one row per row of ``df``.

    Raises
    ------
    ValueError
        Unknown or contradicting format, or ``df`` lacks observation columns; nothing is written.
    ExportError
        The file cannot be written (missing folder, no permission...); nothing is left behind.
    """
    if not all(c in df.columns for c in OBSERVATION_COLUMNS):
        missing = [c for c in OBSERVATION_COLUMNS if c not in df.columns]
        raise ValueError(f"observations have to have the columns {list(OBSERVATION_COLUMNS)}; missing {missing}")
    resolve_format(path, fmt)  # refuse a bad format before building anything
    table = with_stimulus_columns(with_attention_columns(df))
    return _write_table(with_identity(table, identity, (*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS, *STIMULUS_TIME_COLUMNS)),
                        path, fmt)  # fmt: skip


def export_bins(df: pd.DataFrame, path: str | os.PathLike, *, identity: SessionIdentity,
                fmt: str | None = None) -> Path:  # fmt: skip
    """Write one session's per-bin table (:func:`sessions.aggregate.per_bin`) to ``path``, rows led by whose they are.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``BIN_COLUMNS``: ``time_s`` (bin start, s), probabilities and rates in [0, 1], ``valence`` in
        [-1, 1], ``n_frames`` (analysed frames in the bin); other columns are left out.
    path : str or path-like
        Target file; the format comes from its suffix (``.csv``, ``.parquet``, ``.json``).
    identity : SessionIdentity
        The session, participant, study and tags written on every row (:func:`export_columns`).
    fmt : {"csv", "parquet", "json"}, optional
        Format for a path whose suffix names none; one contradicting the suffix is refused.

    Returns
    -------
    pathlib.Path
        The written file: columns :func:`export_columns` over ``BIN_COLUMNS``, one row per bin.

    Raises
    ------
    ValueError
        Unknown or contradicting format, or ``df`` lacks per-bin columns; nothing is written.
    ExportError
        The file cannot be written (missing folder, no permission...); nothing is left behind.
    """
    resolve_format(path, fmt)
    return _write_table(with_identity(with_stimulus_columns(df), identity, (*BIN_COLUMNS, *STIMULUS_TIME_COLUMNS)),
                        path, fmt)  # fmt: skip


#: Columns of :func:`sessions.stats.group_curves` written after ``COMPARE_COLUMNS`` when present.
COMPARISON_EXTRA_COLUMNS: tuple[str, ...] = ("n_low_frames", "method", "baseline")


def export_comparison(table: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None) -> Path:
    """Write a comparison across sessions (:func:`sessions.stats.group_curves`) to ``path``.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``COMPARE_COLUMNS`` (``group``, ``time_s`` in s, ``metric``, ``mean``, ``ci_low``, ``ci_high``,
        ``n_sessions`` (sessions with a value in the bin), ``share_expressing``), written in that order, then
        those of ``COMPARISON_EXTRA_COLUMNS`` it has (``n_low_frames``: sessions whose bin was left out for too
        few frames; ``method``: how the band was computed, in words; ``baseline``: the baseline correction, in words,
        ``sessions.analysis.StudyAnalysis.baseline_note``); other columns are left out.
    path : str or path-like
        Target file; the format comes from its suffix (``.csv``, ``.parquet``, ``.json``).
    fmt : {"csv", "parquet", "json"}, optional
        Format for a path whose suffix names none; one contradicting the suffix is refused.

    Returns
    -------
    pathlib.Path
        The written file, one row per group, metric and bin (CSV text cells neutralised, see the module).

    Raises
    ------
    ValueError
        Unknown or contradicting format, or ``table`` lacks comparison columns; nothing is written.
    ExportError
        The file cannot be written; nothing is left behind.
    """
    missing = [c for c in COMPARE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"a comparison has to have the columns {list(COMPARE_COLUMNS)}; missing {missing}")
    extra = [c for c in COMPARISON_EXTRA_COLUMNS if c in table.columns]
    return _write_table(table[[*COMPARE_COLUMNS, *extra]], path, fmt)


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
