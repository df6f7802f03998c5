"""Turn an uploaded video (bytes from ``st.file_uploader``) into a new session."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path


def import_upload(engine, name: str, data: bytes, *, study: str, participant_code: str | None = None,
                  tags: dict[str, str] | None = None, progress: Callable[[float], None] | None = None,
                  analyzer=None) -> int:  # fmt: skip
    """Write the upload to a temporary file (keeping its suffix, which picks the demuxer) and import it.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    name : str
        The uploaded file's name (only its suffix and base name are used).
    data : bytes
        The file's content.
    study, participant_code, tags, progress, analyzer
        As for ``sessions.importer.import_video``.

    Returns
    -------
    int
        The new session's id.

    Raises
    ------
    ValueError
        If ``data`` is empty.
    fer_core.video.VideoDecodeError
        If the file cannot be decoded; nothing is created.
    sessions.errors.NoFaceFound
        If no frame shows a face; nothing is created.
    """
    from sessions.importer import import_video

    if not data:
        raise ValueError(f"the uploaded file {name!r} is empty")
    with tempfile.TemporaryDirectory(prefix="fer-upload-") as folder:
        path = Path(folder) / (Path(name).name or "upload.mp4")
        path.write_bytes(data)
        return import_video(engine, path, study=study, participant_code=participant_code, tags=tags, progress=progress, analyzer=analyzer)
