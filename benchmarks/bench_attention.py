"""Cost and spread of attention on the real clips: head pose per face and what it adds to detection.

Run ``python benchmarks/bench_attention.py`` from the repository root. It prints, for each clip of
``../shared/data/video`` with a face (BlazeFace short range, the default detector, on every frame):

- milliseconds per frame of ``detect`` (boxes only) and of ``detect_faces`` + ``head_pose`` (boxes, keypoints,
  yaw and pitch), timed alternately in rounds, and microseconds per face of ``head_pose`` alone;
- the spread of the faces' yaw and pitch (median, 5th and 95th percentiles, degrees) and the share attentive
  at the default angle (30 degrees) and at 20 and 40.

Asserts nothing; prints the CPU model.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fer_core.attention import DEFAULT_MAX_ANGLE_DEG, attentive, head_pose  # noqa: E402
from fer_core.detection import create_detector, detect_faces  # noqa: E402

CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def frames_of(path: Path) -> list[np.ndarray]:
    """Every decoded frame of ``path`` as BGR arrays (H, W, 3) uint8."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def bench_clip(path: Path, rounds: int) -> None:
    """Print the timing and pose spread of one clip."""
    detector = create_detector("blazeface")
    frames = frames_of(path)
    plain, with_pose = [], []
    poses = []
    for _ in tqdm(range(rounds), desc=path.name, unit="round"):
        start = time.perf_counter()
        for frame in frames:
            detector.detect(frame)
        plain.append((time.perf_counter() - start) / len(frames))
        start = time.perf_counter()
        poses = []
        for frame in frames:
            _, keypoints = detect_faces(detector, frame)
            poses.append(head_pose(keypoints))
        with_pose.append((time.perf_counter() - start) / len(frames))
    pose = np.concatenate(poses) if poses else np.zeros((0, 2))
    keypoints = np.concatenate([detect_faces(detector, f)[1] for f in frames[:50]])
    start = time.perf_counter()
    for _ in range(200):
        for one in keypoints:
            head_pose(one[None])
    per_face_us = (time.perf_counter() - start) / (200 * max(1, len(keypoints))) * 1e6
    print(f"\n{path.name}: {len(frames)} frames, {len(pose)} faces")
    print(f"  detect: {np.median(plain) * 1e3:.2f} ms/frame; detect_faces + head_pose: {np.median(with_pose) * 1e3:.2f} "
          f"ms/frame; head_pose alone: {per_face_us:.0f} us/face")  # fmt: skip
    if len(pose):
        for name, column in (("yaw", pose[:, 0]), ("pitch", pose[:, 1])):
            p5, p50, p95 = np.percentile(column, [5, 50, 95])
            print(f"  {name}: median {p50:+.1f} deg, 5-95% {p5:+.1f} to {p95:+.1f}")
        for angle in (20.0, DEFAULT_MAX_ANGLE_DEG, 40.0):
            share = np.mean(attentive(pose[:, 0], pose[:, 1], angle).astype(bool))
            print(f"  attentive within {angle:.0f} deg: {share:.1%} of faces")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video-dir", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per clip (the median is printed)")
    args = parser.parse_args(argv)
    if not args.video_dir.is_dir():
        print(f"{args.video_dir}: not found (the real clips live in ../shared/data/video)", file=sys.stderr)
        return 2
    print(f"CPU: {cpu_model()}")
    for name in CLIPS:
        bench_clip(args.video_dir / name, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
