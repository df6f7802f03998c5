"""Video analysis on the real clips: face/no-face rows, time from the decoder, options, bad files."""

from __future__ import annotations

import av
import numpy as np
import pandas as pd
import pytest

from fer_core.analyzer import FrameAnalyzer
from fer_core.detection import create_detector
from fer_core.emotions import ATTENTION_COLUMNS, NO_FACE_ID, OBSERVATION_COLUMNS
from fer_core.tracking import iou
from fer_core.video import ImageDecodeError, VideoDecodeError, analyze_image, analyze_video


@pytest.fixture()
def analyzer(tiny_classifier):
    return FrameAnalyzer(tiny_classifier, create_detector("blazeface"))


def test_face_then_no_face(video_dir, analyzer):
    table = analyze_video(video_dir / "face_noface.mov", analyzer=analyzer, every_n=2, show_progress=False)
    assert list(table.columns) == [*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS]
    no_face = table["face_id"] == NO_FACE_ID
    assert not table.loc[no_face, "attentive"].any() and table.loc[~no_face, "yaw_deg"].notna().all()
    per_frame = table.groupby("frame")["face_id"].max() >= 0
    first, last = per_frame.iloc[: len(per_frame) // 3], per_frame.iloc[-len(per_frame) // 3 :]
    assert first.mean() > 0.9, "the man is in the first third"
    assert last.mean() < 0.1, "the animated film has no face"
    no_face = table[table.face_id == NO_FACE_ID]
    assert no_face[["x", "happy"]].isna().all().all() and (no_face.dominant == "none").all()


def test_time_comes_from_the_decoder(video_dir, analyzer):
    # noface_face.mov has a 120 fps time base but ~26 fps frames: frame/fps would be wrong.
    table = analyze_video(video_dir / "noface_face.mov", analyzer=analyzer, every_n=4, show_progress=False)
    with av.open(str(video_dir / "noface_face.mov")) as container:
        times = [float(f.time) for f in container.decode(video=0)]
    frames = table.drop_duplicates("frame")
    np.testing.assert_allclose(frames.time_s, [times[i] for i in frames.frame])
    assert frames.time_s.is_monotonic_increasing
    per_frame = table.groupby("frame")["face_id"].max() >= 0
    assert not per_frame.iloc[: len(per_frame) // 3].any(), "the film comes first"
    assert per_frame.iloc[-len(per_frame) // 3 :].mean() > 0.9, "the man comes last"


def test_every_n_time_range_roi_and_progress(video_dir, analyzer):
    fractions = []
    table = analyze_video(
        video_dir / "single_face.mp4",
        analyzer=analyzer,
        every_n=3,
        start_s=0.5,
        end_s=1.5,
        roi=(100, 0, 440, 360),
        progress=fractions.append,
        show_progress=False,
    )
    assert table.time_s.min() >= 0.5 and table.time_s.max() <= 1.5
    assert (np.diff(table.frame) == 3).all()
    assert (table.face_id >= 0).all()
    assert (table.x >= 100).all(), "boxes are reported in full-frame pixels"
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    full = analyze_video(video_dir / "single_face.mp4", analyzer=analyzer, start_s=0.5, end_s=1.5, show_progress=False)
    merged = table.merge(full, on="frame", suffixes=("", "_full"))
    overlap = iou(merged[["x", "y", "w", "h"]].to_numpy(), merged[["x_full", "y_full", "w_full", "h_full"]].to_numpy())
    assert np.diag(overlap).min() > 0.8, "ROI boxes match the full-frame boxes"
    with pytest.raises(ValueError, match="roi"):
        analyze_video(video_dir / "single_face.mp4", analyzer=analyzer, roi=(600, 0, 100, 100), show_progress=False)


@pytest.mark.parametrize(("suffix", "codec"), [(".webm", "libvpx"), (".avi", "mpeg4"), (".mp4", "libx264")])
def test_other_containers(tmp_path, single_face_frames, analyzer, suffix, codec):
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for _, frame in single_face_frames[:15]:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(stream.encode())
    table = analyze_video(path, analyzer=analyzer, show_progress=False)
    assert len(table) == 15 and (table.face_id == 0).all()
    assert table.time_s.iloc[-1] == pytest.approx(14 / 30, abs=0.01)


def test_truncated_video_keeps_decoded_rows_and_says_where(video_dir, analyzer, tmp_path):
    source = video_dir / "WolfgangLanger_Pexels.mp4"  # index (moov) at the start: a cut keeps the early frames
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(source.read_bytes()[: int(source.stat().st_size * 0.4)])
    with pytest.warns(RuntimeWarning, match="cut.mp4: decoding stopped"):
        table = analyze_video(cut, analyzer=analyzer, every_n=6, show_progress=False)
    assert 0 < table.time_s.max() < 15
    assert "cut.mp4" in table.attrs["decode_error"] and "t=" in table.attrs["decode_error"]
    assert (table.face_id >= 0).mean() > 0.9


def test_truncated_index_and_non_video_files_are_refused(video_dir, analyzer, tmp_path):
    source = video_dir / "single_face.mp4"  # index (moov) at the end: a cut loses it
    cut = tmp_path / "cut_index.mp4"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="cut_index.mp4"):
        analyze_video(cut, analyzer=analyzer, show_progress=False)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="notes.mp4: not a readable video"):
        analyze_video(text, analyzer=analyzer, show_progress=False)
    with pytest.raises(VideoDecodeError, match="missing.mov: video file not found"):
        analyze_video(tmp_path / "missing.mov", analyzer=analyzer, show_progress=False)
    audio = tmp_path / "tone.wav"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoDecodeError, match="tone.wav: file holds no video stream"):
        analyze_video(audio, analyzer=analyzer, show_progress=False)


def test_images(video_dir, analyzer, tmp_path):
    table = analyze_image(
        video_dir / "multi_face.jpg", analyzer=FrameAnalyzer(analyzer.classifier, create_detector("ssd"))
    )
    assert len(table) >= 5 and table.face_id.is_unique and isinstance(table, pd.DataFrame)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ImageDecodeError, match="bad.jpg: cannot be decoded as an image"):
        analyze_image(bad, analyzer=analyzer)


def test_happy_dominates_the_end_of_single_face(video_dir, trained_classifier):
    analyzer = FrameAnalyzer(trained_classifier, create_detector())
    table = analyze_video(video_dir / "single_face.mp4", analyzer=analyzer, show_progress=False)
    end = table[table.time_s >= table.time_s.max() - 0.5]
    assert (end.face_id >= 0).all()
    assert end[list(OBSERVATION_COLUMNS[7:14])].mean().idxmax() == "happy"
    assert (end.dominant == "happy").mean() > 0.5
