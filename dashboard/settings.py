"""Dashboard settings: one frozen object built from embedded defaults, a TOML file and the environment.

Precedence, lowest to highest: the defaults below, the TOML file (``FER_CONFIG`` or
``fer-dashboard.toml`` in the working directory, table ``[dashboard]`` or top level), environment
variables. Every setting is documented in ``docs/SETTINGS.md``.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from dashboard.accounts import AccountError, check_password, default_auth_file
from fer_core.attention import DEFAULT_MAX_ANGLE_DEG
from fer_core.detection import DEFAULT_DETECTOR, DETECTOR_NAMES
from sessions.analysis_rate import DEFAULT_ANALYSIS_FPS, DEFAULT_DETECT_EVERY, check_fps

#: Config file read when ``FER_CONFIG`` is not set (relative to the working directory).
DEFAULT_CONFIG_FILE = "fer-dashboard.toml"

#: Environment variable of each setting.
ENV_VARS: dict[str, str] = {
    "db_url": "FER_DB_URL",
    "model_path": "FER_MODEL_PATH",
    "live_model_path": "FER_LIVE_MODEL_PATH",
    "ice_servers": "FER_ICE_SERVERS",
    "frame_width": "FER_FRAME_WIDTH",
    "preview_width": "FER_PREVIEW_WIDTH",
    "detect_every": "FER_DETECT_EVERY",
    "researcher_password": "FER_RESEARCHER_PASSWORD",
    "detector": "FER_DETECTOR",
    "auth": "FER_AUTH",
    "auth_file": "FER_AUTH_FILE",
    "auth_cookie_hours": "FER_AUTH_COOKIE_HOURS",
    "resume_grace_s": "FER_RESUME_GRACE_S",
    "media_dir": "FER_MEDIA_DIR",
    "attention_angle_deg": "FER_ATTENTION_ANGLE_DEG",
    "analysis_fps": "FER_ANALYSIS_FPS",
}
#: Values of the ``auth`` setting: sign-in with the account file, or none (loopback-only servers).
AUTH_MODES = ("accounts", "none")


@dataclass(frozen=True)
class Settings:
    """Everything the dashboard reads from its environment.

    Attributes
    ----------
    db_url : str or None
        SQLAlchemy URL of the session store; None lets ``sessions.db.resolve_db_url`` pick its
        default (a SQLite file under the user's data directory).
    model_path : str or None
        ``.keras`` model file of offline analysis (Upload; batch imports take theirs from their own command line);
        None means the shipped model (``fer_core/models/fer2013_cnn.keras``).
    live_model_path : str or None
        ``.keras`` model file of live camera streams, when it differs from ``model_path`` (for example the cheaper
        ``fer_core/models/fer2013_fast.keras`` on a CPU where the default model costs too much a face); None means
        ``model_path``. Each session stores the model that analysed it.
    ice_servers : list of dict
        WebRTC ICE servers (``[{"urls": ["stun:..."]}, {"urls": ..., "username": ..., "credential": ...}]``).
        Empty by default, which works when browser and server are on one machine or one LAN.
    frame_width : int
        Frames wider than this many pixels are scaled down (aspect kept) before analysis.
    preview_width : int
        Width in pixels of the annotated video sent back to the browser (encoding and decoding it costs
        CPU in proportion to its area; analysis uses ``frame_width``).
    detect_every : int
        A live stream runs the face detector on every n-th analysed frame (default 2); tracked boxes are reused in
        between (:mod:`sessions.analysis_rate`). Uploaded videos detect every frame.
    researcher_password : str or None
        Password given to the first account (``researcher``) when the account file has none yet; ignored
        once an account exists. None: a random password, printed once in the server's terminal.
    detector : str
        Face-detector backend name passed to ``fer_core.detection.create_detector``.
    auth : {"accounts", "none"}
        ``"accounts"`` (default): every page except a participant link needs a signed-in account.
        ``"none"``: no sign-in, accepted only when the server listens on 127.0.0.1 only
        (:func:`dashboard.signin.check_no_auth_allowed`).
    auth_file : str or None
        The account file (names, password hashes, cookie secret); None means ``accounts.json`` in the user
        data folder (:func:`dashboard.accounts.default_auth_file`).
    auth_cookie_hours : float
        How long a sign-in lasts in a browser (hours), reloads and restarts included.
    resume_grace_s : float
        Seconds a live session whose camera dropped (reload, closed tab, network) waits for its participant to
        come back from the same link before it ends ``aborted`` (everything recorded is kept).
    media_dir : str or None
        Folder of the stimulus files and their thumbnails; None means ``media`` in the user data folder (beside
        ``sessions.db``; :func:`sessions.stimuli.resolve_media_dir`).
    attention_angle_deg : float
        Largest head yaw and pitch (degrees from the camera axis) of a face counted as attentive (turned to the
        screen); default 30 (:data:`fer_core.attention.DEFAULT_MAX_ANGLE_DEG`, justified there). In (0, 90].
    analysis_fps : float
        Largest number of camera frames analysed (and stored) per second per live stream, asked of the browser
        and kept to on the server (:mod:`sessions.analysis_rate`); 0: every frame the camera sends. In [0, 120].

    Raises
    ------
    ValueError
        If ``ice_servers`` is not a list of objects, ``frame_width`` or ``preview_width`` is under 64
        pixels, ``detect_every`` under 1, ``detector`` not one of
        :data:`fer_core.detection.DETECTOR_NAMES`, ``auth`` not one of :data:`AUTH_MODES`,
        ``auth_cookie_hours`` not in (0, 720], or ``researcher_password`` blank or shorter than 8
        characters. Messages never repeat a password or an ICE server's credential.
    """

    db_url: str | None = None
    model_path: str | None = None
    live_model_path: str | None = None
    ice_servers: list[dict] = field(default_factory=list)
    frame_width: int = 640
    preview_width: int = 320
    detect_every: int = DEFAULT_DETECT_EVERY
    researcher_password: str | None = None
    detector: str = DEFAULT_DETECTOR
    auth: str = "accounts"
    auth_file: str | None = None
    auth_cookie_hours: float = 12.0
    resume_grace_s: float = 120.0
    media_dir: str | None = None
    attention_angle_deg: float = DEFAULT_MAX_ANGLE_DEG
    analysis_fps: float = DEFAULT_ANALYSIS_FPS

    def __post_init__(self) -> None:
        if not isinstance(self.ice_servers, list):
            raise ValueError(f"ice_servers has to be a list of objects with 'urls'; got a {type(self.ice_servers).__name__}")
        for i, server in enumerate(self.ice_servers):  # types only: a server's entries may hold a TURN credential
            if not isinstance(server, dict):
                raise ValueError(f"ice_servers has to be a list of objects with 'urls'; item {i} is a {type(server).__name__}")
        if self.frame_width < 64:
            raise ValueError(f"frame_width has to be at least 64 pixels; got {self.frame_width}")
        if self.preview_width < 64:
            raise ValueError(f"preview_width has to be at least 64 pixels; got {self.preview_width}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every has to be at least 1; got {self.detect_every}")
        if self.detector not in DETECTOR_NAMES:
            raise ValueError(f"detector has to be one of {', '.join(DETECTOR_NAMES)}; got {self.detector!r}")
        if not 0 < self.attention_angle_deg <= 90:
            raise ValueError(f"attention_angle_deg has to be more than 0 and at most 90 degrees; got {self.attention_angle_deg}")
        check_fps(self.analysis_fps)
        if not 0 <= self.resume_grace_s <= 86400:
            raise ValueError(f"resume_grace_s has to be between 0 and 86400 seconds; got {self.resume_grace_s}")
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth has to be one of {', '.join(AUTH_MODES)}; got {self.auth!r}")
        if not 0 < self.auth_cookie_hours <= 720:
            raise ValueError(f"auth_cookie_hours has to be more than 0 and at most 720 (30 days); got {self.auth_cookie_hours}")
        if self.researcher_password is not None:
            try:
                check_password(self.researcher_password, what="researcher_password (FER_RESEARCHER_PASSWORD)")
            except AccountError as exc:
                raise ValueError(str(exc)) from None

    @property
    def resolved_auth_file(self) -> Path:
        """``auth_file``, or ``accounts.json`` in the user data folder when it is None."""
        return Path(self.auth_file).expanduser() if self.auth_file else default_auth_file()

    @property
    def resolved_model_path(self) -> Path:
        """``model_path``, or the shipped model ``fer_core/models/fer2013_cnn.keras`` when it is None."""
        from fer_core.classifier import default_model_path

        return Path(self.model_path) if self.model_path else default_model_path()

    @property
    def resolved_live_model_path(self) -> Path:
        """``live_model_path``, or :attr:`resolved_model_path` when it is None or names the same file.

        The same file named twice (relative and absolute, or through a link) is one model: one card on the Model page
        and one classifier in memory.
        """
        offline = self.resolved_model_path
        if not self.live_model_path:
            return offline
        live = Path(self.live_model_path)
        return offline if live.resolve() == offline.resolve() else live

    @property
    def rtc_configuration(self) -> dict:
        """The ``RTCConfiguration`` passed to ``webrtc_streamer``."""
        return {"iceServers": list(self.ice_servers)}


def _parse(name: str, raw: object) -> object:
    """Convert one raw value (a string from the environment, or a TOML value) to the setting's type."""
    if name == "ice_servers":
        if isinstance(raw, str):
            try:
                raw = json.loads(raw) if raw.strip() else []
            except json.JSONDecodeError as exc:  # the message is JSON's own, which never quotes the value
                raise ValueError(f"{ENV_VARS[name]} has to be a JSON list of ICE servers; it is not valid JSON "
                                 f"({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        return raw
    if name in ("frame_width", "preview_width", "detect_every"):
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ENV_VARS[name]} has to be an integer; got {raw!r}") from exc
    if name == "analysis_fps":
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ENV_VARS[name]} has to be a number of frames per second; got {raw!r}") from exc
    if name == "attention_angle_deg":
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ENV_VARS[name]} has to be a number of degrees; got {raw!r}") from exc
    if name == "resume_grace_s":
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ENV_VARS[name]} has to be a number of seconds; got {raw!r}") from exc
    if name == "auth_cookie_hours":
        try:
            return float(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ENV_VARS[name]} has to be a number of hours; got {raw!r}") from exc
    if name == "researcher_password":
        if isinstance(raw, str) and not raw.strip():
            raise ValueError(f"{ENV_VARS[name]} is set but blank; unset it (a random first password is printed "
                             "at first start) or set a real password")  # fmt: skip
        return raw if raw is None else str(raw)
    if name == "auth" and isinstance(raw, str):
        return raw.strip().lower() or "accounts"
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None if name != "detector" else DEFAULT_DETECTOR
    return str(raw)


def load_settings(environ: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> Settings:
    """Build the settings from the defaults, an optional TOML file and the environment.

    Parameters
    ----------
    environ : mapping, optional
        Environment variables (default: ``os.environ``).
    config_file : str or Path, optional
        TOML file; default ``FER_CONFIG`` from ``environ``, else ``fer-dashboard.toml`` if it exists.

    Returns
    -------
    Settings

    Raises
    ------
    ValueError
        If a value has the wrong type or range, naming the variable or key, or if an explicitly
        named config file does not exist or is not valid TOML.
    """
    environ = os.environ if environ is None else environ
    explicit = config_file or environ.get("FER_CONFIG")
    path = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
    values: dict[str, object] = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"config file {path} is not valid TOML: {exc}") from exc
        table = table.get("dashboard", table)
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"config file {path}: unknown keys {unknown}; expected some of {sorted(known)}")
        values.update({key: _parse(key, value) for key, value in table.items()})
    elif explicit:
        raise ValueError(f"config file {path} does not exist (from FER_CONFIG or config_file)")
    for name, var in ENV_VARS.items():
        if var in environ:
            values[name] = _parse(name, environ[var])
    return Settings(**values)
