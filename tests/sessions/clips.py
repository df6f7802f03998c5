"""Stimulus clips generated at test time with PyAV: a moving test pattern with its frame number burnt in, and a tone."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np


def make_stimulus(path: Path, *, seconds: float = 10.0, fps: int = 25, width: int = 320, height: int = 180,
                  codec: str = "libx264", tone_hz: float = 440.0) -> Path:  # fmt: skip
    """Write a test stimulus: colour bars that scroll, ``frame N`` and ``t=S.SS s`` burnt in, a sine tone.

    ``codec`` ``"libx264"`` (MP4, AAC sound), ``"libvpx-vp9"`` (WebM, Opus sound) or any PyAV encoder (e.g.
    ``"mpeg4"``: a codec browsers do not play). Frame ``i`` has pts ``i / fps`` exactly.
    """
    audio_codec = "libopus" if path.suffix == ".webm" else "aac"
    n_frames = int(round(seconds * fps))
    bars = np.array([[255, 255, 255], [0, 255, 255], [255, 255, 0], [0, 255, 0], [255, 0, 255], [0, 0, 255],
                     [255, 0, 0]], dtype=np.uint8)  # fmt: skip
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, fps)
        rate = 48000
        audio = container.add_stream(audio_codec, rate=rate)
        audio.layout = "mono"
        for i in range(n_frames):
            columns = (np.arange(width) * len(bars) // width + i // 5) % len(bars)
            image = np.ascontiguousarray(np.broadcast_to(bars[columns], (height, width, 3)))
            cv2.putText(image, f"frame {i}", (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 3)
            cv2.putText(image, f"t={i / fps:.2f} s", (10, height // 2 + 35), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 2)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        samples_per_frame = 1024
        n_audio = int(seconds * rate)
        for start in range(0, n_audio, samples_per_frame):
            t = (np.arange(start, min(n_audio, start + samples_per_frame)) / rate).astype(np.float32)
            tone = (0.2 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


def make_vfr_clip(path: Path, times_s: list[float], *, width: int = 320, height: int = 180) -> Path:
    """Write a variable-frame-rate H.264 MP4 (no sound) whose frame ``i`` has pts ``times_s[i]`` (ms time base)
    and a solid colour of its own with ``frame i`` burnt in; frames more than a second apart leave seconds
    without a frame of their own."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, 1000)
        for i, t in enumerate(times_s):
            image = np.full((height, width, 3), ((i * 70) % 256, (i * 40 + 60) % 256, (255 - i * 50) % 256), np.uint8)
            cv2.putText(image, f"frame {i}", (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 3)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return path
