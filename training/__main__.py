"""Command line: ``python -m training train|evaluate|export|clean``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys

from training.train import TrainConfig, train


def _add_train(sub) -> None:
    parser = sub.add_parser("train", help="train a model (checkpoint every epoch; --resume continues)")
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, list):
            parser.add_argument(flag, type=int, nargs="+", default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")


def _add_evaluate(sub) -> None:
    parser = sub.add_parser("evaluate", help="score a model file on a dataset split")
    parser.add_argument("--data", required=True, help="FER2013 CSV (.csv, .gz, .xz) or image folder")
    parser.add_argument("--model", action="append", default=None,
                        help="model file (default: the shipped fer_core model); repeat it to evaluate an ensemble "
                             "(mean of the members' probabilities)")
    parser.add_argument("--split", default=None, help="Usage value or split folder (default: PublicTest/test)")
    parser.add_argument("--detect-faces", action="store_true", help="crop the largest face first (full photos)")
    parser.add_argument("--detector", default=None,
                        help="face detector backend for --detect-faces (default: the live analyzer's, "
                             "fer_core.detection.DEFAULT_DETECTOR)")
    parser.add_argument("--tta", action="store_true", help="test-time augmentation (mirror and shifted crops)")
    parser.add_argument("--exclude-overlap-with", default=None, metavar="SPLIT",
                        help="leave out images whose pixels also appear in SPLIT (e.g. Training)")
    parser.add_argument("--skip-malformed", action="store_true", help="skip malformed rows / unreadable images")
    parser.add_argument("--skip-unknown", action="store_true", help="skip class folders with unknown names")
    parser.add_argument("--plots", default=None, metavar="DIR", help="write confusion and recall PNGs here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _add_export(sub) -> None:
    parser = sub.add_parser("export", help="export a run's best model with metadata, plots and model card")
    parser.add_argument("--run", required=True, help="training run folder (config.json, best.keras, history.csv)")
    parser.add_argument("--out", default="fer_core/models/fer2013_cnn.keras", help="model file to write")
    parser.add_argument("--card", default=None, help="model card (default: OUT with .md); plots go beside it")
    parser.add_argument("--tflite", action="store_true", help="also write a LiteRT (.tflite) copy")
    parser.add_argument("--no-tta", action="store_true", help="skip the test-time augmentation metrics")
    parser.add_argument("--train-command", default=None, help="override the recorded training command")
    parser.add_argument("--duration-s", type=float, default=None, help="override the recorded training duration")
    parser.add_argument("--ensemble-with", action="append", default=[], metavar="MODEL",
                        help="exported model file to average with the run's network (repeatable); ships their mean "
                             "ensemble as one model file")
    parser.add_argument("--mirror-tta", action="store_true",
                        help="ship the network with flip test-time augmentation inside it (mean over the face and "
                             "its mirror; twice the cost per face)")
    parser.add_argument("--notes", default=None, metavar="FILE",
                        help="Markdown file whose text goes into the model card after its opening paragraph "
                             "(status, stages of a chained run, what was tried)")


def _add_clean(sub) -> None:
    parser = sub.add_parser("clean", help="report what each cleaning step would drop (nothing is written)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--train-split", default="Training")
    parser.add_argument("--face-detector", default="", help="also run face-detection cleaning with this backend")
    parser.add_argument("--face-limit", type=int, default=0, help="run face detection on the first N images only")
    parser.add_argument("--face-upsample", type=int, default=192)


def _clean(args) -> dict:
    from training.cleaning import clean_dataset
    from training.data import load_dataset

    data = load_dataset(args.data)
    others = sorted(set(map(str, data.splits)) - {args.train_split})
    n_train = int((data.splits == args.train_split).sum())
    _, counts = clean_dataset(data, train_split=args.train_split, holdout_splits=others, exact_duplicates=True,
                              conflicting_duplicates=True, overlap=True)
    result = {"n_train": n_train, "steps": counts}
    if args.face_detector:
        from training.cleaning import drop_faceless
        from training.faces import FaceCropper

        train = data.split(args.train_split)
        if args.face_limit:
            train = train.subset(slice(0, args.face_limit))
        cropper = FaceCropper(args.face_detector, upsample_to=args.face_upsample)
        _, dropped = drop_faceless(train, args.train_split, cropper.has_face, progress=True)
        result["face_detection"] = {"detector": args.face_detector, "upsample_to": args.face_upsample,
                                    "checked": len(train), "no_face": dropped,
                                    "fraction": round(dropped / max(len(train), 1), 4)}
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_export(sub)
    _add_clean(sub)
    args = parser.parse_args(argv)
    if args.command == "train":
        values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
        command = "python -m training " + " ".join(shlex.quote(a) for a in argv)
        train(TrainConfig(**values), resume=args.resume, command=command)
    elif args.command == "evaluate":
        from fer_core.model_file import ModelFileError
        from training.evaluate import evaluate, format_report

        try:
            result = evaluate(args.data, model_path=args.model, split=args.split, detect_faces=args.detect_faces,
                              detector=args.detector, tta=args.tta, exclude_overlap_with=args.exclude_overlap_with,
                              skip_malformed=args.skip_malformed, skip_unknown=args.skip_unknown)
        except (ModelFileError, FileNotFoundError, KeyError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.plots:
            from pathlib import Path

            from training.plots import plot_confusion_matrix, plot_per_class_recall

            folder = Path(args.plots)
            folder.mkdir(parents=True, exist_ok=True)
            plot_confusion_matrix(result["confusion_matrix"], folder / "confusion_matrix.png")
            plot_per_class_recall(result["per_class"], folder / "per_class_recall.png")
        print(json.dumps(result) if args.json else format_report(result))
    elif args.command == "export":
        from fer_core.model_file import ModelFileError
        from training.export import export_run

        try:
            export_run(args.run, args.out, card=args.card, tflite=args.tflite, tta=not args.no_tta,
                       command=args.train_command, duration_s=args.duration_s, ensemble_with=args.ensemble_with,
                       mirror_tta=args.mirror_tta, notes=args.notes)
        except (ModelFileError, FileNotFoundError, ValueError) as exc:  # a missing or unreadable input: named
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elif args.command == "clean":
        print(json.dumps(_clean(args), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
