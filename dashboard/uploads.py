"""Turn an uploaded video (bytes from ``st.file_uploader``) into a new session."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Longest upload file name accepted, in UTF-8 bytes (the usual file-system limit, ``NAME_MAX``).
UPLOAD_NAME_MAX_BYTES = 255
#: A file suffix kept for the temporary copy (it picks the demuxer): a dot and up to 10 letters or digits.
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")


def check_upload(name: str, data: bytes) -> None:
    """Refuse an upload that cannot be a video before anything is written.

    Parameters
    ----------
    name : str
        The uploaded file's name, as the browser sent it.
    data : bytes
        The file's content.

    Raises
    ------
    ValueError
        If ``data`` is empty (0 bytes), or ``name`` is empty, longer than ``UPLOAD_NAME_MAX_BYTES`` bytes in
        UTF-8, or holds a control character; the message gives the size or length, not the name when it is
        too long.
    """
    from sessions.validation import check_text

    size = len(name.encode("utf-8", errors="surrogatepass"))
    if size > UPLOAD_NAME_MAX_BYTES:
        raise ValueError(f"the uploaded file's name has to be at most {UPLOAD_NAME_MAX_BYTES} bytes long; got "
                         f"{size} bytes ({len(name)} characters), so nothing was created")  # fmt: skip
    if not name.strip():
        raise ValueError("the uploaded file has to have a name; got an empty one")
    check_text(name, "the uploaded file's name", max_length=UPLOAD_NAME_MAX_BYTES)
    if not data:
        raise ValueError(f"the uploaded file {name!r} is empty (0 bytes), so nothing was created")


def import_upload(engine, name: str, data: bytes, *, study: str, participant_code: str | None = None,
                  tags: dict[str, str] | None = None, progress: Callable[[float], None] | None = None,
                  analyzer=None, consent_at=None):  # fmt: skip
    """Write the upload to a temporary file (keeping its suffix, which picks the demuxer) and import it.

    Parameters
    ----------
    engine : sqlalchemy.Engine
    name : str
        The uploaded file's name (only its suffix is used on disk; it names the file in messages).
    data : bytes
        The file's content.
    study, participant_code, tags, progress, analyzer, consent_at
        As for ``sessions.importer.import_video`` (``consent_at``: when the uploader confirmed consent).

    Returns
    -------
    sessions.importer.ImportResult
        The new session's id and, when the video was decoded only in part, a warning saying how much
        (``"decoded 6.1 s of the container's 20.3 s (30%)"``).

    Raises
    ------
    ValueError
        If the upload is refused by :func:`check_upload` (empty, over-long or odd name), or the study,
        participant code or tags are invalid; nothing is created.
    fer_core.video.VideoDecodeError
        If the file cannot be decoded; nothing is created. The message names the upload, not the
        server's temporary file.
    sessions.errors.NoFaceFound
        If no frame shows a face; nothing is created (the message names the upload, too).
    """
    from fer_core.video import VideoDecodeError
    from sessions.errors import NoFaceFound
    from sessions.importer import import_video

    check_upload(name, data)
    suffix = Path(name).suffix
    with tempfile.TemporaryDirectory(prefix="fer-upload-") as folder:
        path = Path(folder) / f"upload{suffix.lower() if _SUFFIX.fullmatch(suffix) else '.mp4'}"
        path.write_bytes(data)
        try:
            return import_video(engine, path, study=study, participant_code=participant_code, tags=tags,
                                progress=progress, analyzer=analyzer, consent_at=consent_at)  # fmt: skip
        except (VideoDecodeError, NoFaceFound) as exc:  # the same error, naming the upload instead of the temp file
            raise type(exc)(str(exc).replace(str(path), name).replace(folder, "")) from None
