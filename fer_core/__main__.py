"""Command line: ``python -m fer_core analyze INPUT --out OUT.csv|.parquet|.json [options]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer_core.attention import DEFAULT_MAX_ANGLE_DEG
from fer_core.detection import DEFAULT_DETECTOR, DETECTOR_NAMES

OUTPUT_SUFFIXES = (".csv", ".parquet", ".json")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m fer_core`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m fer_core", description="Facial-expression analysis of images and videos."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    analyze = commands.add_parser("analyze", help="analyze an image or a video into a per-face, per-frame table")
    analyze.add_argument("input", type=Path, help="image (.jpg, .png...) or video (.mp4, .mov, .webm, .avi...)")
    analyze.add_argument("--out", type=Path, required=True, help="output table: .csv, .parquet or .json")
    analyze.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    analyze.add_argument("--every", type=int, default=1, help="analyse every n-th frame (default 1)")
    analyze.add_argument("--start", type=float, default=None, help="start time in seconds")
    analyze.add_argument("--end", type=float, default=None, help="end time in seconds")
    analyze.add_argument("--detector", choices=DETECTOR_NAMES, default=DEFAULT_DETECTOR, help="face detector backend")
    analyze.add_argument("--detect-every", type=int, default=1, help="run the detector every k-th frame (default 1)")
    analyze.add_argument("--smoothing", type=float, default=0.5, help="EMA time constant in seconds (default 0.5)")
    analyze.add_argument("--attention-angle", type=float, default=DEFAULT_MAX_ANGLE_DEG, metavar="DEG",
                         help="largest head yaw and pitch of an attentive face, degrees (default 30)")  # fmt: skip
    return parser


def write_table(table, out: Path) -> None:
    """Write the observations table by the suffix of ``out`` (.csv, .parquet, .json records).

    Raises
    ------
    ValueError
        If the suffix of ``out`` is not one of :data:`OUTPUT_SUFFIXES`.
    """
    if out.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"output file has to end in one of {OUTPUT_SUFFIXES}; got {str(out)!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        table.to_csv(out, index=False)
    elif out.suffix == ".parquet":
        table.to_parquet(out, index=False)
    else:
        table.to_json(out, orient="records", indent=1)


def run_analyze(args: argparse.Namespace) -> int:
    """Run ``analyze``; returns the process exit status.

    Raises
    ------
    ModelFileError, VideoDecodeError, ImageDecodeError, ValueError
        Bad model file, input file or options (:func:`main` turns them into a message and status 2).
    """
    from fer_core.analyzer import FrameAnalyzer  # noqa: PLC0415 - keep `--help` fast
    from fer_core.attention import check_max_angle  # noqa: PLC0415
    from fer_core.classifier import EmotionClassifier  # noqa: PLC0415
    from fer_core.detection import create_detector  # noqa: PLC0415
    from fer_core.video import IMAGE_SUFFIXES, VideoDecodeError, analyze_image, analyze_video, read_image  # noqa: PLC0415

    is_image = args.input.suffix.lower() in IMAGE_SUFFIXES
    if is_image:
        read_image(args.input)  # fail on a bad input before the slow model load
    elif not args.input.is_file():
        raise VideoDecodeError(f"{args.input}: video file not found")
    check_max_angle(args.attention_angle, "--attention-angle")  # before the slow model load
    classifier = EmotionClassifier.load(args.model)
    analyzer = FrameAnalyzer(
        classifier, create_detector(args.detector), smoothing_s=args.smoothing, detect_every=args.detect_every,
        max_head_angle_deg=args.attention_angle,
    )  # fmt: skip
    if is_image:
        table = analyze_image(args.input, analyzer=analyzer)
    else:
        table = analyze_video(args.input, analyzer=analyzer, every_n=args.every, start_s=args.start, end_s=args.end)
    write_table(table, args.out)
    faces = int((table["face_id"] >= 0).sum())
    print(f"{args.out}: {len(table)} rows, {table['frame'].nunique()} frames, {faces} face rows", file=sys.stderr)
    if "decode_error" in table.attrs:
        print(f"warning: {table.attrs['decode_error']}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors in the input, the model file or the output file (unwritable folder, no permission,
    a full disk) end with a one-line message and status 2, without a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out.suffix not in OUTPUT_SUFFIXES:
        parser.error(f"--out has to end in one of {OUTPUT_SUFFIXES}; got {str(args.out)!r}")
    try:
        return run_analyze(args)
    except (ValueError, OSError) as exc:  # ModelFileError, VideoDecodeError, ImageDecodeError are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
