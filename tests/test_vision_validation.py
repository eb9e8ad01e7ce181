"""Argument checks of the vision encoders and shot detection (mmrec_lib._validation wording)."""

from __future__ import annotations

import numpy as np
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 environment first)
from mmrec_lib import audio, vision
from mmrec_lib.errors import ParameterError

FRAMES = np.zeros((3, 4, 4, 3), np.uint8)


@pytest.mark.parametrize("bins", [1, 257, 2.5, True])
def test_colour_histograms_rejects_bad_bins(bins):
    with pytest.raises(ParameterError, match="bins="):
        vision.colour_histograms(FRAMES, bins=bins)


def test_colour_histograms_accepts_numpy_int_bins():
    np.testing.assert_array_equal(vision.colour_histograms(FRAMES, bins=np.int64(8)),
                                  vision.colour_histograms(FRAMES, bins=8))


def test_colour_histograms_rejects_unknown_space():
    with pytest.raises(ParameterError, match="space='lab'"):
        vision.colour_histograms(FRAMES, space="lab")


def test_histogram_distances_rejects_unknown_metric():
    with pytest.raises(ParameterError, match="metric='l2'"):
        vision.histogram_distances(np.ones((3, 4)), metric="l2")


@pytest.mark.parametrize("window", [0, 1.5, True])
def test_adaptive_threshold_rejects_bad_window(window):
    with pytest.raises(ParameterError, match="window="):
        vision.adaptive_threshold(np.ones(5), window=window)


@pytest.mark.parametrize("k", [-1.0, float("nan"), float("inf")])
def test_adaptive_threshold_rejects_bad_k(k):
    with pytest.raises(ParameterError, match="k="):
        vision.adaptive_threshold(np.ones(5), k=k)


@pytest.mark.parametrize("floor", [-0.1, 1.5, float("nan")])
def test_adaptive_threshold_rejects_bad_floor(floor):
    with pytest.raises(ParameterError, match="floor="):
        vision.adaptive_threshold(np.ones(5), floor=floor)


def test_shots_from_histograms_rejects_bad_min_shot_frames():
    with pytest.raises(ParameterError, match="min_shot_frames=0"):
        vision.shots_from_histograms(np.ones((4, 6)), min_shot_frames=0)


def test_keyframes_rejects_unknown_method():
    shots = vision.detect_shots(FRAMES)
    with pytest.raises(ParameterError, match="method='first'"):
        vision.keyframes(FRAMES, shots, method="first")


def test_match_cuts_accepts_numpy_int_tolerance():
    assert vision.match_cuts([1], [2], tolerance=np.int64(1)) == (1, 0, 0)


def test_build_video_encoder_rejects_unknown_pooling():
    encoder = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=2)
    with pytest.raises(ParameterError, match="pooling='median'"):
        vision.build_video_encoder(encoder, num_frames=2, pooling="median")


def test_build_video_encoder_rejects_bad_num_frames():
    encoder = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=2)
    with pytest.raises(ParameterError, match="num_frames=0"):
        vision.build_video_encoder(encoder, num_frames=0)


def test_build_image_encoder_rejects_bad_embedding_dim():
    with pytest.raises(ParameterError, match="embedding_dim=0"):
        vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=0)


def test_build_category_classifier_needs_two_classes():
    encoder = vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=2)
    with pytest.raises(ParameterError, match="num_classes=1"):
        vision.build_category_classifier(encoder, 1)


def test_mobilenet_rejects_unsupported_alpha():
    with pytest.raises(ParameterError, match="alpha=0.2"):
        vision.mobilenet_v2_weights_path(alpha=0.2)


@pytest.mark.parametrize("fraction", [0.0, 1.0, float("nan")])
def test_probe_r2_rejects_bad_test_fraction(fraction):
    features = np.random.default_rng(0).random((20, 2))
    with pytest.raises(ParameterError, match="test_fraction="):
        audio.probe_r2(features, features[:, 0], test_fraction=fraction)
