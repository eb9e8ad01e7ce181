"""vision._io._size_pair: one int or a (width, height) pair, each side checked as an int in [1, 8192]."""

from __future__ import annotations

import numpy as np
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 environment first)
from mmrec_lib import vision
from mmrec_lib.errors import ParameterError
from mmrec_lib.vision._io import _size_pair

# --------------------------------------------------------------------------- valid sizes

@pytest.mark.parametrize(("size", "expected"), [
    (64, (64, 64)),
    (1, (1, 1)),
    (8192, (8192, 8192)),
    (np.int64(32), (32, 32)),
    ((12, 8), (12, 8)),
    ([12, 8], (12, 8)),
    ((np.int64(6), np.int32(4)), (6, 4)),
    ((1, 8192), (1, 8192)),
])
def test_valid_sizes_give_width_and_height(size, expected):
    assert _size_pair(size) == expected


def test_sides_are_plain_ints():
    width, height = _size_pair((np.int64(6), np.int64(4)))
    assert type(width) is int and type(height) is int


# --------------------------------------------------------------------------- one bad side

def test_string_side_is_refused_with_its_index():
    with pytest.raises(ParameterError, match=r"size\[1\]='a' must be an int in \[1, 8192\]"):
        _size_pair((8, "a"))


def test_float_side_is_refused_not_truncated():
    with pytest.raises(ParameterError, match=r"size\[0\]=2.7 must be an int in \[1, 8192\]"):
        _size_pair((2.7, 8))


def test_integral_float_side_is_refused():
    with pytest.raises(ParameterError, match=r"size\[1\]=8.0"):
        _size_pair((8, 8.0))


def test_bool_side_is_refused():
    with pytest.raises(ParameterError, match=r"size\[0\]=True"):
        _size_pair((True, 8))


def test_zero_side_is_refused():
    with pytest.raises(ParameterError, match=r"size\[1\]=0 must be an int in \[1, 8192\]"):
        _size_pair((8, 0))


def test_negative_side_is_refused():
    with pytest.raises(ParameterError, match=r"size\[0\]=-4 must be an int in \[1, 8192\]"):
        _size_pair((-4, 8))


def test_side_over_the_limit_is_refused():
    with pytest.raises(ParameterError, match=r"size\[0\]=8193"):
        _size_pair((8193, 8))


# --------------------------------------------------------------------------- bad shapes

@pytest.mark.parametrize("size", [0, -3, 8193])
def test_single_int_out_of_range_is_refused(size):
    with pytest.raises(ParameterError, match=rf"size={size} must be an int in \[1, 8192\]"):
        _size_pair(size)


@pytest.mark.parametrize("size", [(8, 8, 8), (8,), (), [1, 2, 3]])
def test_pair_of_wrong_length_is_refused(size):
    with pytest.raises(ParameterError, match=r"must be an int or a \(width, height\) pair"):
        _size_pair(size)


@pytest.mark.parametrize("size", ["64", 2.7, True, None, {"width": 8}])
def test_non_int_non_pair_is_refused(size):
    with pytest.raises(ParameterError, match=r"must be an int or a \(width, height\) pair"):
        _size_pair(size)


# --------------------------------------------------------------------------- through the public API

def test_read_frames_refuses_a_bad_side_before_decoding(tmp_path):
    # The file is not a video: the size check must fire before ffmpeg is asked.
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not a video")
    with pytest.raises(ParameterError, match=r"size\[0\]='a'"):
        vision.read_frames(path, size=("a", 8))
    with pytest.raises(ParameterError, match=r"size\[1\]=2.7"):
        vision.read_frames(path, size=(8, 2.7))


def test_resize_crop_reports_the_same_side_names():
    images = [np.zeros((10, 10, 3), np.uint8)]
    with pytest.raises(ParameterError, match=r"size\[1\]=2.5"):
        vision.ResizeCrop(size=(8, 2.5)).fit(images)
