"""Head pose from a face detector's six keypoints, and attention: a face turned to the screen.

Attention (as Realeyes and Affectiva report it) is, per frame, whether the participant's face is present and
turned towards the screen. The face detector's keypoints (BlazeFace: both eyes, nose tip, mouth centre, both
ear tragions; :data:`fer_core.detection.KEYPOINT_NAMES`) give the head's yaw and pitch; a face is attentive
when both are within ``max_angle_deg`` of the camera axis.

Method
------
Scaled orthographic ("weak perspective") fit of a generic 3D head to the six image points (Hartley & Zisserman,
2004, *Multiple View Geometry*, 2nd ed., sec. 6.3.4, the affine camera; the rotation is the nearest scaled
rotation to the least-squares affine map, as in Tomasi & Kanade's (1992) orthographic factorisation and in
3DDFA's ``P2sRt``):

1. centre the image points ``p`` (6, 2) and the model points ``P`` (6, 3) on their means;
2. least squares for the 2x3 affine map ``M`` with ``p ~ P @ M.T``;
3. the first two rows of the rotation are the orthonormal polar factor of ``M``, ``R12 = U V^T`` for the SVD
   ``M = U S V^T``, computed in closed form as ``(M M^T)^(-1/2) M`` (the square root of a 2x2 symmetric matrix
   ``A`` is ``(A + sqrt(det A) I) / sqrt(tr A + 2 sqrt(det A))``); the third row is their cross product (a
   proper rotation);
4. the face's forward direction in the camera frame is ``f = R @ (0, 0, -1)`` (towards the camera), and
   ``yaw = atan2(f_x, -f_z)``, ``pitch = atan2(-f_y, hypot(f_x, f_z))``: the horizontal and vertical angles
   between where the face points and the camera's optical axis. Roll (tilting the head sideways) changes
   neither.

Frames (OpenCV's camera convention): x to the image's right, y down, z away from the camera. ``yaw_deg > 0``:
the face points towards the image's right side; ``pitch_deg > 0``: the face points up. At webcam distances
(50-70 cm for a 15 cm wide face) perspective changes the fitted angles by about a degree (tests).

The generic head (:data:`HEAD_MODEL_MM`, millimetres, eyes' midpoint at the origin) uses adult mean
proportions: interpupillary distance 63 mm (Dodgson, 2004, "Variation and extrema of human interpupillary
distance", Proc. SPIE 5291), bitragion breadth about 145 mm and the tragion about 75 mm behind the eyes
(Farkas, 1994, *Anthropometry of the Head and Face*), nose tip 38 mm below and 22 mm in front of the eyes,
mouth centre 72 mm below and 10 mm in front. The vertical proportions match BlazeFace's keypoints on the real
frontal faces of ``../shared/data/video`` (nose 0.62 and mouth 1.14 interpupillary distances below the eyes).
It is a mean head, not the participant's: expect errors of 5-10 degrees, which the default angle allows for.

Default angle
-------------
:data:`DEFAULT_MAX_ANGLE_DEG` = 30 degrees for yaw and for pitch. A screen seen from a typical distance spans
about +-18 degrees (a 33 cm wide laptop screen at 50 cm) to +-24 degrees (a 60 cm monitor at 65 cm) around
its centre, and the webcam sits on its top edge, so a participant reading the bottom of the screen has the
head 15-25 degrees below the camera axis; gaze shifts under about 20 degrees are made mostly with the eyes,
the head turning little (Freedman, 2008, "Coordination of the eyes and head during visual orienting", Exp.
Brain Res. 190). A head turned more than 30 degrees from the camera therefore points away from the screen,
and 30 degrees leaves room for the 5-10 degree error of a mean-head fit.
"""

from __future__ import annotations

import math

import numpy as np

#: Generic adult head at the six BlazeFace keypoints, millimetres, in the camera frame of a face looking into
#: the camera (x to the image's right, y down, z away from the camera); rows follow
#: :data:`fer_core.detection.KEYPOINT_NAMES`: the eye and ear on the image's left (the person's right in an
#: unmirrored image) first. Sources in the module docstring.
HEAD_MODEL_MM: np.ndarray = np.array(
    [
        [-31.5, 0.0, 0.0],  # right eye (image left)
        [31.5, 0.0, 0.0],  # left eye (image right)
        [0.0, 38.0, -22.0],  # nose tip
        [0.0, 72.0, -10.0],  # mouth centre
        [-72.0, 20.0, 75.0],  # right ear tragion (image left)
        [72.0, 20.0, 75.0],  # left ear tragion (image right)
    ],
    dtype=np.float64,
)
#: Pseudo-inverse of the centred default head (3, 6), for the least-squares fit.
_DEFAULT_PINV: np.ndarray = np.linalg.pinv(HEAD_MODEL_MM - HEAD_MODEL_MM.mean(axis=0))
#: Largest head yaw and pitch (degrees from the camera axis) of an attentive face; see the module docstring.
DEFAULT_MAX_ANGLE_DEG: float = 30.0


def check_max_angle(max_angle_deg: float, name: str = "max_angle_deg") -> float:
    """Return ``max_angle_deg`` as a float after checking it is a number of degrees in (0, 90].

    Raises
    ------
    ValueError
        If it is not a finite number in (0, 90]; the message names the input ``name``.
    """
    try:
        value = float(max_angle_deg)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0.0 < value <= 90.0):
        raise ValueError(f"{name} has to be a number of degrees in (0, 90]; got {max_angle_deg!r}")
    return value


def head_rotation(keypoints: np.ndarray, model: np.ndarray = HEAD_MODEL_MM) -> np.ndarray:
    """Rotation of the generic head that best explains the keypoints under scaled orthographic projection.

    Parameters
    ----------
    keypoints : ndarray of shape (N, K, 2), float
        Image coordinates (pixels) of the K keypoints of N faces, in ``model``'s row order.
    model : ndarray of shape (K, 3), float
        The head's 3D points (any unit; default :data:`HEAD_MODEL_MM`).

    Returns
    -------
    ndarray of shape (N, 3, 3), float64
        Proper rotations (determinant +1) from the head frame to the camera frame; NaN for a face whose
        keypoints are not finite or do not span a plane (all on one line).

    Raises
    ------
    ValueError
        If the shapes do not match ``(N, K, 2)`` and ``(K, 3)`` with K >= 4.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    model = np.asarray(model, dtype=np.float64)
    if model.ndim != 2 or model.shape[1] != 3 or model.shape[0] < 4:
        raise ValueError(f"model has to have shape (K, 3) with K >= 4; got {model.shape}")
    if points.ndim != 3 or points.shape[1:] != (model.shape[0], 2):
        raise ValueError(f"keypoints have to have shape (N, {model.shape[0]}, 2); got {points.shape}")
    pinv = _DEFAULT_PINV if model is HEAD_MODEL_MM else np.linalg.pinv(model - model.mean(axis=0))
    # least squares p ~ P @ M.T for every face at once: M.T = pinv(P) @ p, so M = p.T @ pinv(P).T
    centred = points - points.mean(axis=1, keepdims=True)
    affine = np.matmul(centred.transpose(0, 2, 1), pinv.T)  # (N, 2, 3)
    out = np.full((len(points), 3, 3), np.nan)
    # polar factor (A^(-1/2) M with A = M M^T, 2x2): closed form, no SVD per face
    gram = np.matmul(affine, affine.transpose(0, 2, 1))
    det = gram[:, 0, 0] * gram[:, 1, 1] - gram[:, 0, 1] * gram[:, 1, 0]
    trace = gram[:, 0, 0] + gram[:, 1, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        good = np.isfinite(det) & (det > 1e-12 * trace**2)  # collinear points span no plane: no rotation
    if not good.any():
        return out
    gram, det, trace, affine = gram[good], det[good], trace[good], affine[good]
    root_det = np.sqrt(det)
    root = (gram + root_det[:, None, None] * np.eye(2)) / np.sqrt(trace + 2 * root_det)[:, None, None]
    # inverse of the 2x2 root: adjugate over determinant
    inverse = np.stack([root[:, 1, 1], -root[:, 0, 1], -root[:, 1, 0], root[:, 0, 0]], axis=1).reshape(-1, 2, 2)
    inverse /= (root[:, 0, 0] * root[:, 1, 1] - root[:, 0, 1] * root[:, 1, 0])[:, None, None]
    rows = np.matmul(inverse, affine)
    third = np.cross(rows[:, 0], rows[:, 1])
    out[good] = np.concatenate([rows, third[:, None, :]], axis=1)
    return out


def head_pose(keypoints: np.ndarray, model: np.ndarray = HEAD_MODEL_MM) -> np.ndarray:
    """Head yaw and pitch in degrees from face keypoints (the method of the module docstring).

    Parameters
    ----------
    keypoints : ndarray of shape (N, K, 2), float
        Image coordinates (pixels) of each face's keypoints in ``model``'s order
        (:data:`fer_core.detection.KEYPOINT_NAMES` for the default model).
    model : ndarray of shape (K, 3), float
        The generic head (default :data:`HEAD_MODEL_MM`).

    Returns
    -------
    ndarray of shape (N, 2), float64
        ``[yaw_deg, pitch_deg]`` per face: angles between where the face points and the camera's optical axis,
        yaw positive towards the image's right, pitch positive upwards, in (-180, 180]; NaN where the keypoints
        give no pose.

    Raises
    ------
    ValueError
        If the shapes do not match (see :func:`head_rotation`).
    """
    rotation = head_rotation(keypoints, model)
    forward = -rotation[:, :, 2]  # R @ (0, 0, -1): the face's direction, towards the camera when frontal
    yaw = np.degrees(np.arctan2(forward[:, 0], -forward[:, 2]))
    pitch = np.degrees(np.arctan2(-forward[:, 1], np.hypot(forward[:, 0], forward[:, 2])))
    return np.stack([yaw, pitch], axis=1)


def attentive(yaw_deg, pitch_deg, max_angle_deg: float = DEFAULT_MAX_ANGLE_DEG) -> np.ndarray:
    """Whether each face is turned to the screen: ``|yaw| <= max_angle_deg`` and ``|pitch| <= max_angle_deg``.

    Parameters
    ----------
    yaw_deg, pitch_deg : array_like of shape (N,), float
        Head angles in degrees (:func:`head_pose`); NaN where unknown.
    max_angle_deg : float, default :data:`DEFAULT_MAX_ANGLE_DEG`
        Largest angle from the camera axis, degrees, in (0, 90].

    Returns
    -------
    ndarray of shape (N,), dtype object
        True or False per face, None where the pose is unknown (NaN).

    Raises
    ------
    ValueError
        If ``max_angle_deg`` is not in (0, 90] or the arrays differ in shape.
    """
    limit = check_max_angle(max_angle_deg)
    yaw, pitch = np.asarray(yaw_deg, dtype=np.float64), np.asarray(pitch_deg, dtype=np.float64)
    if yaw.shape != pitch.shape:
        raise ValueError(f"yaw_deg and pitch_deg have to have the same shape; got {yaw.shape} and {pitch.shape}")
    known = np.isfinite(yaw) & np.isfinite(pitch)
    within = (np.abs(yaw) <= limit) & (np.abs(pitch) <= limit)
    out = np.full(yaw.shape, None, dtype=object)
    out[known] = within[known]
    return out
