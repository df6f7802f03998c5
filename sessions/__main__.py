"""Command line: ``python -m sessions list|show|import-video|export|delete [--db URL]``.

Expected failures (unknown session, unreachable database, a database error, undecodable video, unwritable
export path, a name too long...) print ``error: ...`` on stderr and exit with status 1, without a traceback
and without the SQL of a failed statement; nothing stored is changed. Usage errors (a ``--format`` that
contradicts the suffix of ``--out``...) exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sessions.errors import DatabaseUnavailable, ExportError, NoFaceFound, SessionNotFound


def _expected_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [DatabaseUnavailable, SessionNotFound, LookupError, ExportError, NoFaceFound,
                                         ValueError, OSError]  # fmt: skip
    try:
        from fer_core.model_file import ModelFileError

        errors.append(ModelFileError)
    except ImportError:  # pragma: no cover - fer_core always ships it
        pass
    try:
        from fer_core.video import VideoDecodeError

        errors.append(VideoDecodeError)
    except ImportError:
        pass
    from sessions.batch_engines import EngineUnavailable

    errors.append(EngineUnavailable)
    return tuple(errors)


def _tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"a tag has to look like key=value; got {text!r}")
    return key.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m sessions``."""
    db_help = "database URL (default: $FER_DB_URL, else sessions.db in the user data folder)"
    common = argparse.ArgumentParser(add_help=False)  # --db after the command; SUPPRESS keeps one given before it
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS, help=db_help)
    parser = argparse.ArgumentParser(prog="python -m sessions", description="FER study sessions: list, inspect, "
                                     "import videos, export and delete.")  # fmt: skip
    parser.add_argument("--db", metavar="URL", default=None, help=db_help)
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", parents=[common], help="list sessions (newest first)")
    listing.add_argument("--study", help="only sessions of this study")

    show = commands.add_parser("show", parents=[common], help="show one session and its summary")
    show.add_argument("session", type=int, metavar="SESSION", help="session id")
    show.add_argument("--json", action="store_true", help="print the summary as JSON")

    imp = commands.add_parser("import-video", parents=[common], help="analyse a video into a new session")
    imp.add_argument("video", metavar="VIDEO", help="video file")
    imp.add_argument("--study", required=True, help="study name (created if missing)")
    imp.add_argument("--participant", help="participant pseudonym (default: a random code)")
    imp.add_argument("--tag", action="append", type=_tag, default=[], metavar="K=V", help="group label, repeatable")
    imp.add_argument("--consent-given", action="store_true",
                     help="the person in the video consented: stored with the session (source 'uploader', the study's "
                          "consent text version)")  # fmt: skip

    export = commands.add_parser("export", parents=[common], help="export a session's observations or bins")
    export.add_argument("session", type=int, metavar="SESSION", help="session id")
    export.add_argument("--format", choices=("csv", "parquet", "json"), default=None, dest="fmt",
                        help="table format; default: from the suffix of --out, which it must not contradict")
    export.add_argument("--per-second", action="store_true", help="export per-bin aggregates instead of frames")
    export.add_argument("--bin-s", type=float, default=1.0, help="bin width in seconds with --per-second")
    export.add_argument("--summary", metavar="PATH", help="also write the session summary as JSON to PATH")
    export.add_argument("--out", required=True, metavar="PATH", help="output file: .csv, .parquet or .json")

    delete = commands.add_parser("delete", parents=[common], help="delete a session with its observations")
    delete.add_argument("session", type=int, metavar="SESSION", help="session id")

    study_export = commands.add_parser("export-study", parents=[common], help="export every session of a study "
                                       "into one file (per frame, or per bin with --per-second)")  # fmt: skip
    study_export.add_argument("study", metavar="STUDY", help="study name")
    study_export.add_argument("--per-second", action="store_true", help="per-bin rows instead of per-frame rows")
    study_export.add_argument("--bin-s", type=float, default=1.0, help="bin width in seconds with --per-second")
    study_export.add_argument("--out", required=True, metavar="PATH", help="output file: .csv, .parquet or .json")

    report = commands.add_parser("report", parents=[common], help="write a study's report (charts, tables, "
                                 "exclusions, method notes, model) as one self-contained HTML file")  # fmt: skip
    report.add_argument("study", metavar="STUDY", help="study name")
    report.add_argument("--out", required=True, metavar="PATH", help="output file (.html)")
    report.add_argument("--metric", action="append", default=None, metavar="METRIC",
                        help="a metric with its own section (an emotion, valence, engagement, face_present_rate), "
                             "repeatable; default: happy, valence, engagement")  # fmt: skip
    report.add_argument("--group-tag", default=None, metavar="KEY", help="compare the groups of this tag")
    report.add_argument("--align-on", default=None, metavar="LABEL",
                        help="marker label that becomes time 0, or stimulus:NAME (as Compare's 'Align on': every "
                             "session on that stimulus's own seconds, the same as --stimulus NAME)")  # fmt: skip
    report.add_argument("--stimulus", default=None, metavar="NAME",
                        help="put every session on this stimulus's own seconds (cut points and markers too)")  # fmt: skip
    report.add_argument("--model", default=None, metavar="PATH",
                        help="model file whose card figures are shown (default: the shipped model)")

    _add_batch_parsers(commands, common)

    recover = commands.add_parser("recover", parents=[common], help="end as aborted the sessions whose server "
                                  "process is gone (run before starting a dashboard server)")  # fmt: skip
    recover.add_argument("--stale-after", type=float, default=None, metavar="S",
                         help="seconds without heartbeat after which a server on another machine counts as gone "
                              "(default 10; a crashed server on this machine is found at once)")  # fmt: skip
    return parser


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its message)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"has to be a positive integer; got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"has to be a positive number of seconds; got {text!r}")
    return value


def _angle(text: str) -> float:
    """argparse type: degrees in (0, 90] (:func:`fer_core.attention.check_max_angle`)."""
    from fer_core.attention import check_max_angle

    try:
        return check_max_angle(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"has to be a number of degrees in (0, 90]; got {text!r}") from None


def _batch_attention_angle(given: float | None) -> float:
    """``--attention-angle``, else ``FER_ATTENTION_ANGLE_DEG`` (the Upload page's setting), else 30 degrees."""
    import os

    from fer_core.attention import DEFAULT_MAX_ANGLE_DEG, check_max_angle

    if given is not None:
        return given
    env = os.environ.get("FER_ATTENTION_ANGLE_DEG", "").strip()
    return check_max_angle(env, "FER_ATTENTION_ANGLE_DEG") if env else DEFAULT_MAX_ANGLE_DEG


def _add_batch_parsers(commands, common) -> None:
    """``import-videos`` and ``reanalyse`` (:mod:`sessions.batch`)."""
    from fer_core.detection import DEFAULT_DETECTOR, DETECTOR_NAMES

    run = argparse.ArgumentParser(add_help=False)
    run.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="where the analysis runs: this process (default) or Ray Data (needs requirements-scale.txt)")
    run.add_argument("--address", default=None, help="Ray cluster to join, e.g. auto (default: start a local Ray)")
    run.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                     help="Ray actors, one CPU and model each (default 1)")  # fmt: skip
    run.add_argument("--split-s", type=_positive_seconds, default=None, metavar="SECONDS",
                     help="split videos into ranges of at least this length (at key frames) so one video uses "
                          "several workers")
    run.add_argument("--detector", choices=DETECTOR_NAMES, default=DEFAULT_DETECTOR, help="face detector")
    run.add_argument("--attention-angle", type=_angle, default=None, metavar="DEG",
                     help="largest head yaw and pitch (degrees) of a face stored attentive (default: "
                          "FER_ATTENTION_ANGLE_DEG if set, as the Upload page, else 30)")  # fmt: skip
    run.add_argument("--force", action="store_true", help="analyse videos already imported with the same model and "
                     "settings again, into new sessions")  # fmt: skip
    many = commands.add_parser("import-videos", parents=[common, run], help="analyse many videos into sessions; "
                               "videos already imported with the same model and settings are skipped")  # fmt: skip
    many.add_argument("videos", nargs="+", metavar="PATH", help="video files, or folders of them (not recursive)")
    many.add_argument("--study", required=True, help="study name (created if missing)")
    many.add_argument("--tag", action="append", type=_tag, default=[], metavar="K=V", help="group label, repeatable")
    many.add_argument("--model", default=None, metavar="PATH", help="expression model (default: the shipped one)")
    again = commands.add_parser("reanalyse", parents=[common, run], help="analyse a study's imported videos again "
                                "with another model into new sessions (the old ones stay)")  # fmt: skip
    again.add_argument("--study", required=True, help="study name")
    again.add_argument("--model", required=True, metavar="PATH", help="the new expression model")


def _cmd_list(engine, args) -> None:
    from sessions import repository
    from sessions.db import session_scope

    with session_scope(engine) as db:
        study_id = None
        if args.study:
            study = next((s for s in repository.list_studies(db) if s.name == args.study), None)
            if study is None:
                raise ValueError(f"--study has to name an existing study; got {args.study!r}")
            study_id = study.id
        table = repository.list_sessions(db, study_id=study_id)
    if table.empty:
        print("no sessions")
        return
    table["tags"] = table["tags"].map(lambda tags: ",".join(f"{k}={v}" for k, v in tags.items()))
    table["started_at"] = table["started_at"].map(lambda t: "-" if t is None else t.strftime("%Y-%m-%d %H:%M:%SZ"))
    columns = ["session_id", "study", "participant_code", "tags", "source", "status", "started_at",
               "duration_s", "face_present_rate", "dominant_emotion", "dropped_frames"]  # fmt: skip
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.2f}"))


def _summary(engine, session_id: int):
    from sessions import repository
    from sessions.aggregate import session_summary
    from sessions.db import session_scope
    from sessions.fieldwork import consent_summary

    with session_scope(engine) as db:
        info = repository.list_sessions(db, session_ids=[session_id])
        if info.empty:
            raise SessionNotFound(f"no session has id {session_id}")
        observations = repository.load_observations(db, session_id)
        markers = repository.load_markers(db, session_id)
        consent = consent_summary(db, session_id)
    summary = session_summary(observations, markers)
    summary["consent"] = consent  # time, consent text version and source (sessions.fieldwork)
    return info.iloc[0], observations, summary


def _cmd_show(engine, args) -> None:
    from sessions.exports import json_ready

    info, _, summary = _summary(engine, args.session)
    if args.json:
        print(json.dumps(json_ready({"session": info.to_dict(), "summary": summary}), indent=2))
        return
    for key in ("session_id", "study", "participant_code", "tags", "source", "status", "started_at", "ended_at",
                "dropped_frames"):  # fmt: skip
        print(f"{key:>18}: {info[key]}")
    fpr = summary["face_present_rate"]
    print(f"{'duration_s':>18}: {summary['duration_s']:.2f}  frames: {summary['n_frames']}  face present: "
          f"{'n/a' if fpr is None else f'{fpr:.1%}'}")  # fmt: skip
    attention, consent = summary["attention_rate"], summary["consent"]
    print(f"{'attention':>18}: {'n/a' if attention is None else f'{attention:.1%}'}  consent: "
          f"{consent['consent_at'] or 'none'} (version {consent['consent_version'] or 'generic'}, "
          f"{consent['consent_source'] or '-'})")  # fmt: skip
    print(f"{'emotion':>18}  {'mean':>6}  {'peak':>6}  {'peak at s':>9}  {'dominant':>8}")
    for emotion, values in summary["emotions"].items():
        cells = [values["mean"], values["peak"], values["peak_time_s"], summary["dominant_distribution"][emotion]]
        print(f"{emotion:>18}  " + "  ".join(f"{'n/a':>{width}}" if v is None else f"{v:{width}.3f}"
                                             for v, width in zip(cells, (6, 6, 9, 8), strict=True)))  # fmt: skip
    for marker in summary["markers"]:
        print(f"{'marker':>18}: {marker['time_s']:.2f} s  {marker['label']}  {marker['note']}")


def _cmd_import(engine, args) -> None:
    from tqdm import tqdm

    from sessions.importer import import_video

    with tqdm(total=100, unit="%", desc="analysing", file=sys.stderr) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(100 * fraction) - bar.n)

        result = import_video(engine, args.video, study=args.study, participant_code=args.participant,
                              tags=dict(args.tag), progress=progress,
                              consent_at=datetime.now(UTC) if args.consent_given else None)  # fmt: skip
    if result.warning:
        print(f"warning: {result.warning}; the session holds what was decoded", file=sys.stderr)
    print(f"imported session {result.session_id}")


def _cmd_export(engine, args) -> None:
    from sessions.aggregate import per_bin
    from sessions.db import session_scope
    from sessions.exports import SessionIdentity, export_bins, export_observations, export_summary
    from sessions.playback import add_stimulus_columns, session_spans

    info, observations, summary = _summary(engine, args.session)
    identity = SessionIdentity.from_listing(info)
    with session_scope(engine) as db:
        spans = session_spans(db, args.session)  # the stimulus on screen at each time (none: empty columns)
    if args.per_second:
        bins = add_stimulus_columns(per_bin(observations, args.bin_s), spans, bin_s=args.bin_s)
        path = export_bins(bins, args.out, identity=identity, fmt=args.fmt)
    else:
        path = export_observations(add_stimulus_columns(observations, spans), args.out, identity=identity, fmt=args.fmt)
    print(f"wrote {path}")
    if args.summary:
        print(f"wrote {export_summary(summary, args.summary)}")


def _cmd_delete(engine, args) -> None:
    from sessions import repository
    from sessions.db import session_scope

    with session_scope(engine) as db:
        repository.delete_session(db, args.session)
    print(f"deleted session {args.session} with its observations and markers")


def _cmd_export_study(engine, args) -> None:
    from sqlalchemy import select

    from sessions.db import session_scope
    from sessions.models import Study
    from sessions.study_export import export_study

    with session_scope(engine) as db:
        study_id = db.scalar(select(Study.id).where(Study.name == args.study.strip()))
        if study_id is None:
            raise LookupError(f"no study is named {args.study!r}")
        path = export_study(db, study_id, args.out, per_second=args.per_second, bin_s=args.bin_s)
    print(f"wrote {path}")


def _cmd_report(engine, args) -> None:
    from sessions.db import session_scope
    from sessions.report import DEFAULT_REPORT_METRICS, build_report, write_report

    if not str(args.out).lower().endswith((".html", ".htm")):
        raise ValueError(f"--out has to be an .html file; got {args.out!r}")
    align_on, stimulus = _report_alignment(args.align_on, args.stimulus)
    bar = None

    def progress(done: int, total: int) -> None:  # sessions of an older database get their per-second rows once
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="per-second rows (once per older session)", unit="session", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        with session_scope(engine) as db:  # commits per-second rows computed on first read
            text = build_report(db, args.study.strip(), metrics=args.metric or DEFAULT_REPORT_METRICS,
                                group_tag=args.group_tag, align_on=align_on, stimulus=stimulus,
                                model_metadata=_model_metadata(args.model), progress=progress)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {write_report(text, args.out)}")


#: ``--align-on`` prefix naming a stimulus (Compare's "Align on" offers ``stimulus time: NAME``).
ALIGN_STIMULUS_PREFIX = "stimulus:"


def _report_alignment(align_on: str | None, stimulus: str | None) -> tuple[str | None, str | None]:
    """(marker label, stimulus name) from ``--align-on`` and ``--stimulus``: ``--align-on stimulus:NAME`` (or
    Compare's ``stimulus time: NAME``) means ``--stimulus NAME``.

    Raises
    ------
    ValueError
        An empty stimulus name, or ``--align-on stimulus:...`` and ``--stimulus`` naming different stimuli.
    """
    if align_on is None:
        return None, stimulus
    text = align_on.strip()
    for prefix in (ALIGN_STIMULUS_PREFIX, "stimulus time:"):
        if text.lower().startswith(prefix):
            name = text[len(prefix):].strip()
            if not name:
                raise ValueError(f"--align-on {align_on!r} names no stimulus; give stimulus:NAME")
            if stimulus is not None and stimulus.strip() != name:
                raise ValueError(f"--align-on {align_on!r} and --stimulus {stimulus!r} name different stimuli; give one")
            return None, name
    return align_on, stimulus


def _model_metadata(path: str | None) -> dict | None:
    """The card metadata of ``path`` (default: the shipped model), None when there is no readable model file."""
    from fer_core.classifier import default_model_path
    from fer_core.model_file import ModelFileError, read_metadata

    try:
        return read_metadata(path or default_model_path())
    except (ModelFileError, OSError):
        if path:
            raise
        return None


def _cmd_import_videos(engine, args) -> int:
    from sessions.batch import BatchSettings, expand_video_paths, import_videos, reanalyse

    options = {"engine_name": args.engine, "address": args.address, "workers": args.workers, "force": args.force,
               "split_s": args.split_s, "settings": BatchSettings(
                   detector=args.detector, attention_angle_deg=_batch_attention_angle(args.attention_angle))}  # fmt: skip
    try:
        if args.command == "reanalyse":
            report = reanalyse(engine, study=args.study, model_path=args.model, **options)
        else:
            report = import_videos(engine, expand_video_paths(args.videos), study=args.study, tags=dict(args.tag),
                                   model_path=args.model, **options)  # fmt: skip
    except KeyboardInterrupt:
        print("interrupted: the videos stored so far are kept; run the same command again to import the rest",
              file=sys.stderr)  # fmt: skip
        return 130
    for outcome in report.outcomes:
        if outcome.status == "imported":
            note = f"; warning: {outcome.reason}" if outcome.reason else ""
            print(f"imported {outcome.path}: session {outcome.session_id} ({outcome.frames} frames{note})")
        else:
            print(f"{outcome.status} {outcome.path}: {outcome.reason}")
    rate = f" in {report.wall_s:.1f} s ({report.frames / report.wall_s:.1f} frames/s)" if report.wall_s > 0 else ""
    print(f"{report.count('imported')} imported, {report.count('skipped')} skipped, {report.count('failed')} failed; "
          f"{report.frames} frames{rate}")  # fmt: skip
    return 0 if report.ok else 1


def _cmd_recover(engine, args) -> None:
    from sessions.lifecycle import OWNER_STALE_S
    from sessions.recorder import recover_interrupted

    aborted = recover_interrupted(engine, stale_after_s=OWNER_STALE_S if args.stale_after is None else args.stale_after)
    print(f"ended as aborted: {', '.join(map(str, aborted))}" if aborted else "no interrupted session")


COMMANDS = {"list": _cmd_list, "show": _cmd_show, "import-video": _cmd_import, "export": _cmd_export,
            "delete": _cmd_delete, "export-study": _cmd_export_study, "report": _cmd_report, "recover": _cmd_recover,
            "import-videos": _cmd_import_videos, "reanalyse": _cmd_import_videos}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 success, 1 expected error, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from sqlalchemy.exc import SQLAlchemyError

    from sessions.db import get_engine
    from sessions.errors import describe_database_error

    if args.command in ("export", "export-study"):
        from sessions.exports import resolve_format

        try:
            resolve_format(args.out, getattr(args, "fmt", None))
        except ValueError as exc:
            parser.error(str(exc))  # exits with status 2
    try:
        engine = get_engine(args.db)
        try:
            status = COMMANDS[args.command](engine, args)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:  # its own message carries the SQL and the bound parameters
        print(f"error: {describe_database_error(exc)}", file=sys.stderr)
        return 1
    except _expected_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return int(status or 0)  # import-videos: 1 when a video failed


if __name__ == "__main__":
    sys.exit(main())
