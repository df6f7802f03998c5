"""What the live analysis settings do to per-second means, on the real clips (the README's "Analysis rate" tables).

Each clip in ../shared/data/video is analysed at every frame with detection on every frame (the reference), then
as a live stream would analyse it: only the frames due at an analysis rate (``sessions.analysis_rate.AnalysisRate``
over the decoder's timestamps) and faces detected on every ``detect_every``-th analysed frame. Printed per
configuration, over all clips' one-second bins with a face: the mean and worst absolute difference
of a bin's mean probability of an emotion (probability units) and the worst difference of a bin's face-present rate
(``sessions.analysis_rate.per_second_difference``). Raw probabilities, the shipped model, BlazeFace.

    python benchmarks/rate_effect.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The real clips, as ``tests/sessions/test_analysis_rate.py`` uses them.
CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov")
#: (label, analysis rate in Hz or None for every frame, detect_every) compared with every frame detected.
CONFIGS = (
    ("15 Hz, detection every analysed frame", 15.0, 1),
    ("10 Hz, detection every analysed frame", 10.0, 1),
    ("5 Hz, detection every analysed frame", 5.0, 1),
    ("10 Hz, detection every 2nd analysed frame (live default)", 10.0, 2),
    ("10 Hz, detection every 3rd analysed frame", 10.0, 3),
)


def analyse_as_live(path, classifier, *, fps: float | None, detect_every: int):
    """``path`` analysed as a live stream with these settings would: the rows a stream stores.

    Parameters
    ----------
    path : str or Path
        A video file (decoded with PyAV; frame times from the decoder, seconds).
    classifier : fer_core.classifier.EmotionClassifier
        The model.
    fps : float or None
        Analysis rate (frames per second; None: every frame is due).
    detect_every : int
        Faces are detected on every n-th analysed frame; tracked boxes in between.

    Returns
    -------
    pandas.DataFrame
        Observations (``fer_core.video.observations_frame``) of the due frames, numbered by decoded frame.
    """
    import av

    from fer_core.analyzer import FrameAnalyzer, observation_rows
    from fer_core.video import observations_frame
    from sessions.analysis_rate import AnalysisRate

    analyzer, rate, rows = FrameAnalyzer(classifier, detect_every=detect_every), AnalysisRate(fps), []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if rate.due(frame.time):
                image = frame.to_ndarray(format="bgr24")
                rows += observation_rows(index, frame.time, analyzer.analyze(image, frame.time))
    return observations_frame(rows)


def pooled(differences: list[dict]) -> dict:
    """Bin-weighted mean and the worst of :func:`sessions.analysis_rate.per_second_difference` results."""
    bins = sum(d["bins"] for d in differences)
    return {
        "bins": bins,
        "mean": sum(d["mean_abs_diff"] * d["bins"] for d in differences) / bins,
        "worst": max(d["max_abs_diff"] for d in differences),
        "face-present worst": max(d["face_present_max_diff"] for d in differences),
    }


def main() -> int:
    from fer_core.classifier import EmotionClassifier
    from sessions.analysis_rate import per_second_difference
    from tests.conftest import VIDEO_DIR

    missing = [name for name in CLIPS if not (VIDEO_DIR / name).exists()]
    if missing:
        print(f"the real clips are missing ({', '.join(missing)} in {VIDEO_DIR}); nothing measured", file=sys.stderr)
        return 2
    classifier = EmotionClassifier.load()
    reference = {name: analyse_as_live(VIDEO_DIR / name, classifier, fps=None, detect_every=1) for name in CLIPS}
    print("per-second mean probabilities against every frame detected and analysed (4 real clips)")
    print(f"{'configuration':58s} {'bins':>5s} {'mean':>7s} {'worst':>7s} {'face-present worst':>19s}")
    for label, fps, detect_every in CONFIGS:
        p = pooled([per_second_difference(reference[name], analyse_as_live(VIDEO_DIR / name, classifier, fps=fps,
                                                                           detect_every=detect_every))
                    for name in CLIPS])  # fmt: skip
        print(f"{label:58s} {p['bins']:5d} {p['mean']:7.4f} {p['worst']:7.4f} "
              f"{p['face-present worst']:19.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
