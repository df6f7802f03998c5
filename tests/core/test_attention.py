"""Head pose from face keypoints (synthetic heads of known pose, real frames) and attention in the analyzer."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from fer_core.analyzer import FrameAnalyzer, observation_rows
from fer_core.attention import DEFAULT_MAX_ANGLE_DEG, HEAD_MODEL_MM, attentive, head_pose, head_rotation
from fer_core.detection import KEYPOINT_NAMES, create_detector, detect_faces
from fer_core.emotions import ATTENTION_COLUMNS, OBSERVATION_COLUMNS


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> np.ndarray:
    """Head-to-camera rotation of a face pointing ``yaw`` right and ``pitch`` up, tilted by ``roll`` about its axis."""
    y, p, r = (math.radians(v) for v in (yaw_deg, pitch_deg, roll_deg))
    turn = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    nod = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    tilt = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return turn @ nod @ tilt


def project(yaw_deg, pitch_deg, roll_deg=0.0, *, distance_mm=None, scale=2.5, centre=(320.0, 240.0)) -> np.ndarray:
    """Image points (6, 2) of the generic head: orthographic, or pinhole at ``distance_mm`` (focal 800 px)."""
    points = HEAD_MODEL_MM @ rotation(yaw_deg, pitch_deg, roll_deg).T
    if distance_mm is None:
        return points[:, :2] * scale + centre
    points = points + (0.0, 0.0, distance_mm)
    return points[:, :2] / points[:, 2:] * 800.0 + centre


POSES = [(0, 0, 0), (20, 0, 0), (-20, 0, 0), (0, 15, 0), (0, -25, 0), (-35, -20, 25), (40, 10, -15), (60, 30, 0)]


@pytest.mark.parametrize(("yaw", "pitch", "roll"), POSES)
def test_orthographic_head_of_known_pose_is_recovered_exactly(yaw, pitch, roll):
    pose = head_pose(project(yaw, pitch, roll)[None])
    np.testing.assert_allclose(pose, [[yaw, pitch]], atol=1e-6)
    r = head_rotation(project(yaw, pitch, roll)[None])[0]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)


@pytest.mark.parametrize(("yaw", "pitch", "roll"), POSES[:7])
def test_perspective_at_webcam_distance_changes_the_angles_by_a_few_degrees(yaw, pitch, roll):
    pose = head_pose(project(yaw, pitch, roll, distance_mm=600.0)[None])[0]
    assert abs(pose[0] - yaw) < 5 and abs(pose[1] - pitch) < 5


def test_scale_translation_and_many_faces_at_once():
    faces = np.stack([project(10, -5, scale=1.0, centre=(50, 60)), project(-30, 20, scale=9.0, centre=(900, 10))])
    np.testing.assert_allclose(head_pose(faces), [[10, -5], [-30, 20]], atol=1e-6)
    assert head_pose(np.zeros((0, 6, 2))).shape == (0, 2)


def test_keypoints_without_a_pose_give_nan():
    line = np.stack([np.linspace(0, 100, 6), np.linspace(0, 50, 6)], axis=1)  # collinear: no plane
    broken = project(0, 0).copy()
    broken[2, 0] = np.nan
    pose = head_pose(np.stack([line, broken]))
    assert np.isnan(pose).all()


def test_shapes_are_checked_with_a_message():
    with pytest.raises(ValueError, match=r"keypoints have to have shape \(N, 6, 2\); got \(6, 2\)"):
        head_pose(project(0, 0))
    with pytest.raises(ValueError, match="max_angle_deg has to be a number of degrees in"):
        attentive([0.0], [0.0], max_angle_deg=0)


def test_attentive_uses_both_angles_and_says_unknown():
    yaw = np.array([0.0, 29.9, -31.0, 5.0, np.nan])
    pitch = np.array([0.0, -29.9, 0.0, 45.0, 0.0])
    assert attentive(yaw, pitch).tolist() == [True, True, False, False, None]
    assert attentive(yaw, pitch, max_angle_deg=50).tolist() == [True, True, True, True, None]
    assert DEFAULT_MAX_ANGLE_DEG == 30.0


@pytest.fixture(scope="module")
def blazeface():
    return create_detector("blazeface")


def _frames(video_dir, name, every):
    import av

    with av.open(str(video_dir / name)) as container:
        return [f.to_ndarray(format="bgr24") for i, f in enumerate(container.decode(video=0)) if i % every == 0]


def test_blazeface_keypoints_sit_on_the_face(blazeface, video_dir):
    frame = _frames(video_dir, "single_face.mp4", 30)[0]
    boxes, keypoints = detect_faces(blazeface, frame)
    assert keypoints.shape == (len(boxes), len(KEYPOINT_NAMES), 2) == (1, 6, 2) and keypoints.dtype == np.float32
    x, y, w, h = boxes[0, :4]
    eyes, nose, mouth = keypoints[0, :2], keypoints[0, 2], keypoints[0, 3]
    assert eyes[0, 0] < nose[0] < eyes[1, 0], "the person's right eye is on the image's left"
    assert eyes[:, 1].max() < nose[1] < mouth[1], "eyes above nose above mouth"
    assert (x <= keypoints[0, :4, 0]).all() and (keypoints[0, :4, 0] <= x + w).all()
    assert (y <= keypoints[0, :4, 1]).all() and (keypoints[0, :4, 1] <= y + h).all()
    np.testing.assert_array_equal(blazeface.detect(frame), boxes)


def test_detectors_without_keypoints_say_so(video_dir):
    frame = _frames(video_dir, "single_face.mp4", 30)[0]
    boxes, keypoints = detect_faces(create_detector("haar"), frame)
    assert len(boxes) == 1 and keypoints is None


def test_real_frontal_webcam_face_is_attentive(blazeface, video_dir):
    """single_face.mp4: a man facing his webcam throughout: head within 10 degrees of the camera axis."""
    poses = []
    for frame in _frames(video_dir, "single_face.mp4", 6):
        _, keypoints = detect_faces(blazeface, frame)
        poses.append(head_pose(keypoints)[0])
    poses = np.array(poses)
    assert len(poses) >= 10 and np.abs(poses).max() < 10, poses
    assert attentive(poses[:, 0], poses[:, 1]).all()


def test_real_face_pose_is_unchanged_by_rolling_the_image(blazeface, video_dir):
    """Rotating a real frame in the image plane (head tilt) leaves yaw and pitch within a few degrees."""
    frame = _frames(video_dir, "single_face.mp4", 30)[0]
    centre = (frame.shape[1] / 2, frame.shape[0] / 2)
    base = head_pose(detect_faces(blazeface, frame)[1])[0]
    for angle in (-20, 20):
        tilted = cv2.warpAffine(frame, cv2.getRotationMatrix2D(centre, angle, 1.0), frame.shape[1::-1])
        pose = head_pose(detect_faces(blazeface, tilted)[1])[0]
        assert abs(pose[0] - base[0]) < 6 and abs(pose[1] - base[1]) < 6, (angle, base, pose)


def test_real_turned_faces_change_sign_in_the_mirror(blazeface, video_dir):
    """WolfgangLanger clip: where the head is turned over 10 degrees, the mirrored frame is turned the other way."""
    turned = 0
    for frame in _frames(video_dir, "WolfgangLanger_Pexels.mp4", 20):
        _, keypoints = detect_faces(blazeface, frame)
        _, mirrored = detect_faces(blazeface, np.ascontiguousarray(frame[:, ::-1]))
        if keypoints is None or len(keypoints) != 1 or len(mirrored) != 1:
            continue
        yaw, yaw_mirrored = head_pose(keypoints)[0, 0], head_pose(mirrored)[0, 0]
        if abs(yaw) > 10:
            turned += 1
            assert np.sign(yaw_mirrored) == -np.sign(yaw), (yaw, yaw_mirrored)
    assert turned >= 3, "the clip has turned heads"


def test_analyzer_rows_carry_pose_and_attention(tiny_classifier, video_dir):
    analyzer = FrameAnalyzer(tiny_classifier, create_detector("blazeface"))
    frame = _frames(video_dir, "single_face.mp4", 30)[0]
    (result,) = analyzer.analyze(frame, 0.0)
    assert abs(result.yaw_deg) < 10 and abs(result.pitch_deg) < 10 and result.attentive is True
    (row,) = observation_rows(0, 0.0, [result])
    assert list(row) == [*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS]
    assert row["yaw_deg"] == result.yaw_deg and row["attentive"] is True
    (empty,) = observation_rows(1, 0.1, [])
    assert empty["attentive"] is False and math.isnan(empty["yaw_deg"])
    strict = FrameAnalyzer(tiny_classifier, create_detector("blazeface"), max_head_angle_deg=0.5)
    assert strict.analyze(frame, 0.0)[0].attentive is False
    haar = FrameAnalyzer(tiny_classifier, create_detector("haar"))
    (unknown,) = haar.analyze(frame, 0.0)
    assert math.isnan(unknown.yaw_deg) and unknown.attentive is None


def test_cli_writes_attention_and_refuses_a_bad_angle(video_dir, tiny_model_path, tmp_path):
    import pandas as pd

    from tests.core.test_cli import _run

    out = tmp_path / "faces.csv"
    done = _run("analyze", video_dir / "single_face.jpg", "--out", out, "--model", tiny_model_path)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out)
    assert table["attentive"].tolist() == [True] and abs(table["yaw_deg"][0]) < 15
    strict = _run("analyze", video_dir / "single_face.jpg", "--out", out, "--model", tiny_model_path,
                  "--attention-angle", "0.1")  # fmt: skip
    assert strict.returncode == 0 and pd.read_csv(out)["attentive"].tolist() == [False]
    bad = _run("analyze", video_dir / "single_face.jpg", "--out", out, "--attention-angle", "95")
    assert bad.returncode == 2 and "--attention-angle has to be a number of degrees in (0, 90]; got 95.0" in bad.stderr
    assert "Traceback" not in bad.stderr
