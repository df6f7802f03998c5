"""The one preprocessing path: shapes, colour modes, sizes, crops and margins."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_core.preprocessing import PreprocessSpec, crop_face, expand_box, preprocess_faces


def test_batches_of_any_mode_become_48x48_gray():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (2, 100, 80), dtype=np.uint8)
    bgr = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    bgra = rng.integers(0, 256, (2, 30, 30, 4), dtype=np.uint8)
    for batch in (gray, bgr, bgra):
        out = preprocess_faces(batch)
        assert out.shape == (2, 48, 48, 1) and out.dtype == np.uint8


def test_list_of_different_sizes_and_channels():
    faces = [np.full((10, 20), 7, np.uint8), np.full((200, 150, 3), 200, np.uint8)]
    out = preprocess_faces(faces)
    assert out.shape == (2, 48, 48, 1)
    assert (out[0] == 7).all() and (out[1] == 200).all()


def test_bgr_and_rgb_orders_give_the_same_gray():
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, (1, 48, 48, 3), dtype=np.uint8)
    from_bgr = preprocess_faces(bgr)
    from_rgb = preprocess_faces(bgr[..., ::-1].copy(), color_order="rgb")
    np.testing.assert_array_equal(from_bgr, from_rgb)
    expected = cv2.cvtColor(bgr[0], cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(from_bgr[0, :, :, 0], expected)


def test_three_channel_spec_keeps_colour():
    spec = PreprocessSpec(input_size=32, channels=3)
    out = preprocess_faces(np.zeros((3, 50, 50), np.uint8), spec)
    assert out.shape == (3, 32, 32, 3)


def test_bgr_colour_batch_becomes_rgb_whatever_its_size():
    spec = PreprocessSpec(input_size=8, channels=3)
    blue = np.zeros((1, 8, 8, 3), np.uint8)
    blue[..., 0] = 255  # BGR blue
    for batch in (blue, list(blue), np.zeros((1, 9, 9, 3), np.uint8) + blue[:, :1, :1]):
        np.testing.assert_array_equal(preprocess_faces(batch, spec)[0, 0, 0], [0, 0, 255])
    np.testing.assert_array_equal(preprocess_faces(blue, spec, color_order="rgb")[0, 0, 0], [255, 0, 0])


def test_wrong_dtype_and_empty_face_are_named():
    with pytest.raises(ValueError, match="face 0 has to be uint8"):
        preprocess_faces(np.zeros((1, 48, 48), np.float32) + 0.5)
    with pytest.raises(ValueError, match="face 1 is empty"):
        preprocess_faces([np.zeros((5, 5), np.uint8), np.zeros((0, 5), np.uint8)])


def test_spec_round_trip_and_validation():
    spec = PreprocessSpec(input_size=64, channels=3, margin=0.2)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="channels"):
        PreprocessSpec(channels=2)
    with pytest.raises(ValueError, match="preprocessing"):
        PreprocessSpec.from_dict({**spec.to_dict(), "name": "other/v9"})


def test_expand_box_adds_margin_and_clips_to_frame():
    assert expand_box((100, 100, 50, 50), 0.2, (480, 640, 3)) == (90, 90, 70, 70)
    x, y, w, h = expand_box((0, 0, 50, 50), 0.2, (480, 640, 3))
    assert (x, y) == (0, 0) and (w, h) == (60, 60)


def test_crop_face_is_a_view_with_margin():
    frame = np.zeros((100, 100, 3), np.uint8)
    crop = crop_face(frame, (40, 40, 20, 20), 0.25)
    assert crop.shape == (30, 30, 3)
    assert np.shares_memory(crop, frame)
    with pytest.raises(ValueError, match="outside the frame"):
        crop_face(frame, (200, 200, 10, 10), 0.1)
