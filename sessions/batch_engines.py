"""Where the batch importer's analysis runs: in this process (``local``) or on Ray Data (``ray``), one code path.

The unit of work is a **range task**: one time range of one video (:class:`fer_core.video_ranges.VideoRange`).
:class:`RangeAnalyzer` turns a batch of range tasks into a batch of range results; it loads the expression model
and builds the face detector once, in its constructor. ``local`` calls one instance on each task in turn;
``ray`` hands the class to ``Dataset.map_batches`` (``compute=ActorPoolStrategy(size=workers)``, what
``concurrency=workers`` asked for before Ray deprecated it; one CPU per actor: each actor loads the model once and
analyses range after range), and the driver iterates the results as
they finish, in whatever order. Nothing here touches the session store: the driver
(:mod:`sessions.batch`) stitches the results of each video in order and writes them.

Ray is optional (``requirements-scale.txt``); it is imported only by :func:`run_ray`, which says how to install
it when it is missing (:class:`EngineUnavailable`).
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

from fer_core.attention import DEFAULT_MAX_ANGLE_DEG

#: Engines of ``python -m sessions import-videos --engine``.
ENGINES: tuple[str, ...] = ("local", "ray")
#: Columns of a range task (one row of the Ray dataset).
TASK_COLUMNS: tuple[str, ...] = ("job", "range", "path", "start_s", "end_s", "first_frame")
#: Columns of a range result.
RESULT_COLUMNS: tuple[str, ...] = ("job", "range", "table", "frames", "decoded_s", "duration_s", "decode_error",
                                   "error")  # fmt: skip
#: What to install for ``--engine ray``.
RAY_INSTALL_HINT = ".venv/bin/pip install -r requirements-scale.txt"


class EngineUnavailable(RuntimeError):
    """The engine asked for cannot run here (Ray is not installed, or its cluster cannot be reached)."""


def range_task(job: int, path: str, video_range) -> dict:
    """One row of work: range ``video_range`` of video number ``job`` at ``path``.

    Parameters
    ----------
    job : int
        The video's number in the batch.
    path : str
        Absolute path of the video file (on a cluster: a path every node can read).
    video_range : fer_core.video_ranges.VideoRange
        The range; a missing ``end_s`` (to the end of the video) is stored as NaN.

    Returns
    -------
    dict
        Keyed by :data:`TASK_COLUMNS`; ``start_s`` and ``end_s`` in seconds, ``first_frame`` a frame index.
    """
    end_s = math.nan if video_range.end_s is None else float(video_range.end_s)
    return {"job": int(job), "range": int(video_range.index), "path": str(path), "start_s": float(video_range.start_s),
            "end_s": end_s, "first_frame": int(video_range.first_frame)}  # fmt: skip


def table_to_bytes(table: pd.DataFrame) -> bytes:
    """An observation table as Parquet bytes (float64 values round-trip exactly)."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()


def table_from_bytes(data: bytes) -> pd.DataFrame:
    """The inverse of :func:`table_to_bytes`."""
    return pd.read_parquet(io.BytesIO(data))


class RangeAnalyzer:
    """Analyse range tasks: the stateful class of ``map_batches`` (one per Ray actor, or one in this process).

    Parameters
    ----------
    model_path : str or None
        Expression model (``.keras`` with its metadata); None: the shipped model. Loaded once, here.
    detector : str
        Face-detector backend (:data:`fer_core.detection.DETECTOR_NAMES`); built once, here.
    attention_angle_deg : float, default 30
        Largest head yaw and pitch (degrees) of an attentive face (``FrameAnalyzer``'s ``max_head_angle_deg``).

    Raises
    ------
    fer_core.model_file.ModelFileError
        The model file is missing or invalid.
    """

    def __init__(self, model_path: str | None, detector: str, attention_angle_deg: float = DEFAULT_MAX_ANGLE_DEG):
        from fer_core.analyzer import FrameAnalyzer
        from fer_core.classifier import EmotionClassifier
        from fer_core.detection import create_detector

        self.classifier_ = EmotionClassifier.load(model_path, num_threads=1)
        self.analyzer_ = FrameAnalyzer(self.classifier_, create_detector(detector),
                                       max_head_angle_deg=attention_angle_deg)  # fmt: skip

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Analyse every task of ``batch``.

        Parameters
        ----------
        batch : dict of str to ndarray
            Columns :data:`TASK_COLUMNS`, one entry per task.

        Returns
        -------
        dict of str to ndarray
            Columns :data:`RESULT_COLUMNS`, one entry per task: ``table`` the range's observations as Parquet
            bytes (:func:`table_to_bytes`; empty on failure), ``frames`` the analysed frames, ``decoded_s`` and
            ``duration_s`` in seconds (NaN when unknown), ``decode_error`` (decoding stopped early; ``""`` if not)
            and ``error`` (why the range failed, e.g. a corrupt file; ``""`` when it did not). A failing range
            never raises, so one bad video never stops the others.
        """
        results = [self.analyze_task({name: batch[name][i] for name in TASK_COLUMNS})
                   for i in range(len(batch["job"]))]  # fmt: skip
        return {name: np.array([r[name] for r in results], dtype=object if name in ("table", "decode_error", "error")
                               else None) for name in RESULT_COLUMNS}  # fmt: skip

    def analyze_task(self, task: dict) -> dict:
        """Analyse one range task (see :meth:`__call__`) into one result dict."""
        import warnings

        from fer_core.video_ranges import VideoRange, analyze_range

        end_s = float(task["end_s"])
        video_range = VideoRange(int(task["range"]), float(task["start_s"]), None if math.isnan(end_s) else end_s,
                                 int(task["first_frame"]))  # fmt: skip
        result = {"job": int(task["job"]), "range": int(task["range"]), "table": b"", "frames": 0,
                  "decoded_s": math.nan, "duration_s": math.nan, "decode_error": "", "error": ""}  # fmt: skip
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a stopped decode is reported in decode_error
                table = analyze_range(str(task["path"]), video_range, analyzer=self.analyzer_)
        except Exception as exc:  # noqa: BLE001 - any failure of one video is reported, never fatal to the batch
            result["error"] = str(exc) or type(exc).__name__
            return result
        duration = table.attrs.get("duration_s")
        result.update(table=table_to_bytes(table), frames=int(table["frame"].nunique()),
                      decoded_s=float(table.attrs.get("decoded_s") or math.nan),
                      duration_s=math.nan if duration is None else float(duration),
                      decode_error=table.attrs.get("decode_error") or "")  # fmt: skip
        return result


def run_local(tasks: Sequence[dict], *, model_path: str | None, detector: str,
              attention_angle_deg: float = DEFAULT_MAX_ANGLE_DEG) -> Iterator[dict]:  # fmt: skip
    """Analyse the tasks in this process, in order, with one :class:`RangeAnalyzer` (its parameters).

    Yields
    ------
    dict
        One result per task (:meth:`RangeAnalyzer.analyze_task`), in the order of ``tasks``.
    """
    if not tasks:
        return
    analyzer = RangeAnalyzer(model_path, detector, attention_angle_deg)
    for task in tasks:
        yield analyzer.analyze_task(task)


def run_ray(tasks: Sequence[dict], *, model_path: str | None, detector: str, workers: int,
            address: str | None = None, attention_angle_deg: float = DEFAULT_MAX_ANGLE_DEG) -> Iterator[dict]:  # fmt: skip
    """Analyse the tasks on Ray Data: ``map_batches`` with :class:`RangeAnalyzer` (``model_path``, ``detector``,
    ``attention_angle_deg``) on ``workers`` actors.

    Connects to the Ray cluster at ``address`` (``"auto"``: the one this machine belongs to), or starts a local
    one with ``workers`` CPUs when ``address`` is None, unless this process already called ``ray.init``; a Ray
    started here is shut down when the results are done. Each task is its own block, so a long video's ranges go
    to different actors. Every node must read the video paths and have this repository and
    ``requirements-scale.txt`` installed.

    Yields
    ------
    dict
        One result per task, as the actors finish them (not in order): the driver restores the order.

    Raises
    ------
    EngineUnavailable
        Ray is not installed, the cluster at ``address`` cannot be reached, or the job failed (an actor died);
        the driver then ends the sessions it had open, and the next run redoes their videos.
    """
    if not tasks:
        return
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise EngineUnavailable(f"--engine ray needs Ray, which is not installed here ({exc}); install it with "
                                f"{RAY_INSTALL_HINT}, or use --engine local") from None  # fmt: skip
    started_here = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineUnavailable(f"no Ray cluster can be reached at --address {address!r}: {exc}") from None
        started_here = True
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no "execution finished" lines between the bars
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the importer draws its own (videos and frames per second)
        context.print_on_execution_start = False
        dataset = ray.data.from_items(list(tasks), override_num_blocks=len(tasks)).map_batches(
            RangeAnalyzer,
            fn_constructor_kwargs={"model_path": model_path, "detector": detector,
                                   "attention_angle_deg": attention_angle_deg},
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=int(workers)),
            num_cpus=1,
        )
        try:
            for row in dataset.iter_rows():
                yield dict(row)
        except ray.exceptions.RayError as exc:  # an actor died (out of memory, node lost): no traceback, the reason
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineUnavailable(f"the Ray job failed: {reason}") from None
    finally:
        if started_here:
            ray.shutdown()
