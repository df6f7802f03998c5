"""Bytes for ``st.download_button`` written by the session store's own exporters (one format everywhere)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path


def export_bytes(export: Callable[..., object], data: object, suffix: str, **options) -> bytes:
    """Run a ``sessions.exports`` function into a temporary file and return the file's bytes.

    Parameters
    ----------
    export : callable
        ``export_observations``, ``export_bins`` or ``export_summary``.
    data : DataFrame or dict
        What to export.
    suffix : str
        File suffix choosing the format (``".csv"``, ``".json"``, ``".parquet"``).
    **options
        Passed on to ``export``, e.g. ``identity=SessionIdentity(...)`` for the per-session tables.

    Returns
    -------
    bytes
        The exported file's content, for ``st.download_button``. CSV text cells that a spreadsheet would
        run as a formula are neutralised by the exporter (:func:`sessions.exports.neutralize_csv_cells`).

    Raises
    ------
    ValueError
        If ``suffix`` does not start with a dot, or names a format the exporter does not write.
    sessions.exports.ExportError
        If the temporary file cannot be written.
    """
    if not suffix.startswith("."):
        raise ValueError(f"suffix has to start with a dot, e.g. '.csv'; got {suffix!r}")
    with tempfile.TemporaryDirectory(prefix="fer-export-") as folder:
        path = Path(folder) / f"export{suffix}"
        export(data, path, **options)
        return path.read_bytes()


def table_bytes(frame, suffix: str) -> bytes:
    """The bytes of ``frame`` written by :func:`sessions.exports.write_table` in the format of ``suffix``.

    Raises
    ------
    ValueError
        If ``suffix`` does not start with a dot or names no table format.
    sessions.exports.ExportError
        If the temporary file cannot be written.
    """
    from sessions.exports import write_table

    return export_bytes(write_table, frame, suffix)
