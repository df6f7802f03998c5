"""The emotion classifier: a Keras model file with metadata, served through a compiled function.

:meth:`EmotionClassifier.load` checks the file's metadata (:func:`fer_core.model_file.read_metadata`:
classes in FER2013 order, the preprocessing scheme) before loading TensorFlow, then checks that
the network's input and output shapes match the metadata. :meth:`EmotionClassifier.predict`
prepares faces with :func:`fer_core.preprocessing.preprocess_faces` and runs the network without
any per-call ``model.predict``: by default converted once, at load time, to a LiteRT (TF Lite)
flatbuffer with int8 dynamic-range weights (post-training quantization, TF Lite's
``Optimize.DEFAULT``) run by the XNNPACK interpreter; or the float flatbuffer; or a ``tf.function`` traced once with a fixed input
signature ``(None, S, S, C) uint8`` (no retracing as the number of faces changes); or Keras
``predict_on_batch``. A model file exported by ``python -m training export`` carries the int8 LiteRT
flatbuffer of the default runner (:func:`embed_litert`), so that runner loads without TensorFlow or Keras;
without it the network is converted at load time, which imports TensorFlow (a warning says so).
``benchmarks/bench_core.py`` compares their speed and their agreement
with the Keras model on real faces.

One loaded classifier serves many threads: the model is never mutated after loading,
TensorFlow runs concurrent calls of one concrete function safely, and the LiteRT runner gives
each thread its own interpreter over one shared flatbuffer.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from pathlib import Path

import numpy as np

from fer_core.emotions import NUM_CLASSES
from fer_core.model_file import ModelFileError, check_metadata, read_litert, read_metadata, write_litert
from fer_core.preprocessing import preprocess_faces

logger = logging.getLogger(__name__)

#: Where the shipped default model lives, relative to the package.
DEFAULT_MODEL_FILENAME = "fer2013_cnn.keras"
#: How predictions are computed: the model converted at load time to LiteRT (TF Lite flatbuffer run
#: by XNNPACK, one interpreter per thread), with int8 dynamic-range weights ("litert_int8") or float
#: ("litert"); a traced ``tf.function``; or Keras ``predict_on_batch``.
RUNNERS: tuple[str, ...] = ("litert_int8", "litert", "function", "predict_on_batch")
#: Runner used by :meth:`EmotionClassifier.load` unless told otherwise. In benchmarks/bench_core.py
#: LiteRT with int8 dynamic-range weights was about 5x faster than the float runners on one face,
#: with probabilities within 1e-3 of the Keras model's and the same top class on the clip's faces.
DEFAULT_RUNNER: str = "litert_int8"


def default_model_path() -> Path:
    """Path of the shipped default model, ``fer_core/models/fer2013_cnn.keras``."""
    return Path(__file__).resolve().parent / "models" / DEFAULT_MODEL_FILENAME


def model_file_id(path: str | Path) -> str:
    """``"<file name> sha256:<first 12 hex digits>"`` of a model file: how a session records its model.

    Raises
    ------
    OSError
        If the file cannot be read.
    """
    import hashlib

    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    return f"{Path(path).name} sha256:{digest}"


class EmotionClassifier:
    """Seven-class FER2013 expression classifier loaded from a model file with metadata.

    Build it with :meth:`load`; the constructor checks what was loaded and prepares the runner.

    Parameters
    ----------
    model : keras.Model
        Network mapping (N, S, S, C) float32 0-255 pixels to (N, 7) probabilities.
    metadata : dict
        The model file's checked metadata.
    path : Path or None
        File the model came from (for messages).
    runner : {"litert_int8", "litert", "function", "predict_on_batch"}
        How predictions are computed (see :data:`RUNNERS`).
    num_threads : int, default 1
        Threads of each LiteRT interpreter (LiteRT runners only).
    flatbuffer : bytes, optional
        The network already converted for a LiteRT ``runner`` (as stored in the model file by
        :func:`embed_litert`); ``model`` may then be None and Keras is loaded only if ``model_`` is read.

    Attributes
    ----------
    model_ : keras.Model
        Loaded from ``path_`` on first access when the classifier was built from a flatbuffer.
    metadata_ : dict
        Classes, preprocessing, training and metrics as stored in the file.
    spec_ : PreprocessSpec
        Input size, channels and crop margin the model was trained with.
    path_ : Path or None
    """

    def __init__(
        self,
        model,
        metadata: dict,
        *,
        path: Path | None = None,
        runner: str = DEFAULT_RUNNER,
        num_threads: int = 1,
        flatbuffer: bytes | None = None,
    ):
        if runner not in RUNNERS:
            raise ValueError(f"runner has to be one of {RUNNERS}; got {runner!r}")
        if int(num_threads) < 1:
            raise ValueError(f"num_threads has to be at least 1; got {num_threads}")
        if flatbuffer is not None and not runner.startswith("litert"):
            raise ValueError(f"a flatbuffer serves only the LiteRT runners; got runner {runner!r}")
        if model is None and (flatbuffer is None or path is None):
            raise ValueError("model may be None only with a flatbuffer and the path of its model file")
        self._model = model
        self.metadata_ = metadata
        self.path_ = path
        self.runner = runner
        self.num_threads = int(num_threads)
        self.spec_ = check_metadata(metadata, source=str(path or "model"))
        self._local = threading.local()
        if flatbuffer is not None:
            self._function, self._flatbuffer = None, bytes(flatbuffer)
            self._check_litert_shapes()
        else:
            self._check_shapes()
            self._function = self._compile() if runner == "function" else None
            self._flatbuffer = self._convert(quantize=runner == "litert_int8") if runner.startswith("litert") else None
        self.predict(np.zeros((1, self.spec_.input_size, self.spec_.input_size, self.spec_.channels), np.uint8))

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, runner: str = DEFAULT_RUNNER, num_threads: int = 1
    ) -> EmotionClassifier:
        """Load a ``.keras`` model file after checking its metadata.

        Parameters
        ----------
        path : str or Path, optional
            Model file; default :func:`default_model_path` (the shipped model).
        runner : {"litert_int8", "litert", "function", "predict_on_batch"}
            How predictions are computed (see :data:`RUNNERS`); default :data:`DEFAULT_RUNNER`.
        num_threads : int, default 1
            Threads of each LiteRT interpreter (LiteRT runners only).

        Returns
        -------
        EmotionClassifier

        Raises
        ------
        ModelFileError
            If the file is missing, is not a ``.keras`` archive, has no or mismatching metadata,
            or its network's input/output shapes disagree with the metadata; the message names
            the path.
        """
        path = Path(path) if path is not None else default_model_path()
        if not path.is_file():
            hint = (
                " (the shipped default model is not installed; pass a model path)"
                if path == default_model_path()
                else ""
            )
            raise ModelFileError(f"{path}: model file not found{hint}")
        metadata = read_metadata(path)
        flatbuffer = read_litert(path, runner)
        if flatbuffer is not None:  # converted at export: no TensorFlow or Keras in this process
            return cls(None, metadata, path=path, runner=runner, num_threads=num_threads, flatbuffer=flatbuffer)
        if runner.startswith("litert"):
            logger.warning("%s: no stored LiteRT flatbuffer for %r; converting at load time imports TensorFlow "
                           "(store it with fer_core.classifier.embed_litert or `python -m training export`)",
                           path, runner)
        import keras  # noqa: PLC0415 - TensorFlow is loaded only when a model is

        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # Keras raises many types for a damaged archive
            raise ModelFileError(f"{path}: Keras could not load the model ({type(exc).__name__}: {exc})") from exc
        return cls(model, metadata, path=path, runner=runner, num_threads=num_threads)

    @property
    def model_(self):
        """The Keras network (loaded from ``path_`` on first access if built from a flatbuffer)."""
        if self._model is None:
            import keras  # noqa: PLC0415

            self._model = keras.models.load_model(self.path_, compile=False)
        return self._model

    def _check_litert_shapes(self) -> None:
        interpreter = self._interpreter()
        self._check_io(tuple(int(d) for d in interpreter.get_input_details()[0]["shape"][1:]),
                       tuple(int(d) for d in interpreter.get_output_details()[0]["shape"][1:]), what="LiteRT network")

    def _check_shapes(self) -> None:
        self._check_io(tuple(self.model_.input_shape[1:]), tuple(self.model_.output_shape[1:]), what="network")

    def _check_io(self, got_in: tuple, got_out: tuple, *, what: str) -> None:
        """Raise ModelFileError unless the network maps (S, S, C) of the metadata to (7,) probabilities."""
        spec = self.spec_
        expected = (spec.input_size, spec.input_size, spec.channels)
        if got_in != expected:
            raise ModelFileError(f"{self.path_}: {what} input {got_in} does not match the metadata's {expected}")
        if got_out != (NUM_CLASSES,):
            raise ModelFileError(f"{self.path_}: {what} output {got_out} has to be ({NUM_CLASSES},)")

    def _compile(self):
        import tensorflow as tf  # noqa: PLC0415

        spec = self.spec_
        model = self.model_
        signature = [tf.TensorSpec([None, spec.input_size, spec.input_size, spec.channels], tf.uint8)]

        @tf.function(input_signature=signature, reduce_retracing=True)
        def run(batch):
            return model(tf.cast(batch, tf.float32), training=False)

        return run.get_concrete_function()

    def _convert(self, *, quantize: bool) -> bytes:
        import tensorflow as tf  # noqa: PLC0415

        try:
            # The converter exports a SavedModel first and prints about it; keep stdout clean.
            converter = tf.lite.TFLiteConverter.from_keras_model(self.model_)
            if quantize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]  # int8 weights, dynamic-range activations
            with contextlib.redirect_stdout(io.StringIO()):
                return converter.convert()
        except Exception as exc:  # the converter raises many types
            raise ModelFileError(f"{self.path_}: LiteRT conversion failed ({type(exc).__name__}: {exc})") from exc

    def _interpreter(self):
        """This thread's LiteRT interpreter over the shared flatbuffer (created on first use)."""
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            try:
                from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
            except ImportError:  # pragma: no cover - fallback when LiteRT is absent
                from tensorflow.lite import Interpreter  # noqa: PLC0415
            try:
                interpreter = Interpreter(model_content=self._flatbuffer, num_threads=self.num_threads)
            except (ValueError, RuntimeError) as exc:
                raise ModelFileError(f"{self.path_}: LiteRT could not load the network ({exc})") from exc
            self._local.interpreter, self._local.batch = interpreter, -1
            # Tensor indices are fixed for the interpreter's life; look them up once, not per frame.
            self._local.input_index = interpreter.get_input_details()[0]["index"]
            self._local.output_index = interpreter.get_output_details()[0]["index"]
        return interpreter

    def _run_litert(self, batch: np.ndarray) -> np.ndarray:
        """Run the LiteRT flatbuffer with this thread's own interpreter (interpreters are not thread-safe)."""
        interpreter = self._interpreter()
        input_index = self._local.input_index
        if self._local.batch != len(batch):
            interpreter.resize_tensor_input(input_index, batch.shape)
            interpreter.allocate_tensors()
            self._local.batch = len(batch)
        interpreter.set_tensor(input_index, batch.astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(self._local.output_index)

    @property
    def model_id(self) -> str:
        """Which model this is, for the record of every session it analyses: ``"<file name> sha256:<12 hex>"``.

        The digest is of the model file (computed once, on first use); a model built in memory without a file is
        ``"in-memory model"``.
        """
        cached = getattr(self, "_model_id", None)
        if cached is None:
            cached = "in-memory model" if self.path_ is None else model_file_id(self.path_)
            self._model_id = cached
        return cached

    def predict(self, faces) -> np.ndarray:
        """Classify a batch of face crops.

        Parameters
        ----------
        faces : ndarray of shape (N, H, W) or (N, H, W, C), or a sequence of N images
            uint8 face crops of any size; 3-channel crops are BGR (OpenCV order). They are
            prepared with :func:`fer_core.preprocessing.preprocess_faces` and the model's spec.

        Returns
        -------
        ndarray of shape (N, 7), dtype float32
            Probabilities in FER2013 order (:data:`fer_core.emotions.EMOTIONS`); rows sum to 1.

        Raises
        ------
        ValueError
            If a face is not uint8, is empty, or has an unsupported shape.
        """
        if isinstance(faces, np.ndarray) and faces.ndim not in (3, 4):
            raise ValueError(f"faces has to have shape (N, H, W) or (N, H, W, C); got shape {faces.shape}")
        if len(faces) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        batch = preprocess_faces(faces, self.spec_)
        if self._function is not None:
            probs = self._function(batch).numpy()
        elif self._flatbuffer is not None:
            probs = self._run_litert(batch)
        else:
            probs = self.model_.predict_on_batch(batch.astype(np.float32))
        return np.asarray(probs, dtype=np.float32)


def embed_litert(path: str | Path, runners: tuple[str, ...] = (DEFAULT_RUNNER,)) -> dict[str, int]:
    """Convert a model file's network to LiteRT flatbuffers and store them inside it.

    Afterwards :meth:`EmotionClassifier.load` with a LiteRT runner (the default) needs neither
    TensorFlow nor Keras: the dashboard and the analysis workers start faster and use less memory,
    and Streamlit's per-run Keras clean-up (``keras.backend.clear_session``, which runs a full garbage
    collection) never fires. ``python -m training export`` calls this.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` model file with metadata.
    runners : tuple of str, default ("litert_int8",)
        LiteRT runners to convert for: ``"litert_int8"`` (int8 dynamic-range weights, about a quarter
        of the float size) and/or ``"litert"`` (float32). Only the default runner is stored by
        default, to keep model files small.

    Returns
    -------
    dict
        Runner name to flatbuffer size in bytes.

    Raises
    ------
    ModelFileError
        If the file cannot be loaded or converted.
    """
    path = Path(path)
    flatbuffers = convert_litert(path, runners)
    write_litert(path, flatbuffers)
    return {runner: len(data) for runner, data in flatbuffers.items()}


def convert_litert(path: str | Path, runners: tuple[str, ...] = (DEFAULT_RUNNER,)) -> dict[str, bytes]:
    """Convert a model file's Keras network to LiteRT flatbuffers (the one converter call of the project).

    :func:`embed_litert` stores the result inside the model file; ``python -m training export --tflite``
    writes the float32 one beside it.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` model file with metadata.
    runners : tuple of str, default ("litert_int8",)
        ``"litert_int8"`` (int8 dynamic-range weights) and/or ``"litert"`` (float32).

    Returns
    -------
    dict
        Runner name to flatbuffer bytes.

    Raises
    ------
    ModelFileError
        If the file cannot be loaded or converted.
    ValueError
        If a runner is not a LiteRT runner.
    """
    unknown = [runner for runner in runners if runner not in RUNNERS or not runner.startswith("litert")]
    if unknown:
        raise ValueError(f"not LiteRT runners: {unknown}; use 'litert' and/or 'litert_int8'")
    classifier = EmotionClassifier.load(path, runner="predict_on_batch")  # loads Keras, never a stored flatbuffer
    return {runner: classifier._convert(quantize=runner == "litert_int8") for runner in runners}
