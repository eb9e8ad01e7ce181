"""Tests of mmrec_lib.features: every modality of a dataset in one call, cached."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 set-up before TensorFlow)
from mmrec_lib import features
from mmrec_lib.errors import ParameterError


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("features-cache")


def test_handcrafted_modalities_are_aligned_frames(miniclips_tiny, cache):
    result = features.item_features(miniclips_tiny, modalities=("audio", "visual"),
                                    audio="handcrafted", visual="handcrafted", data_dir=cache)
    assert list(result) == ["audio", "visual"]
    ids = miniclips_tiny.items.item_id.tolist()
    for frame in result.values():
        assert frame.index.tolist() == ids and frame.index.name == "item_id"
        assert frame.dtypes.eq(np.float32).all() and np.isfinite(frame.to_numpy()).all()
        # Standardised columns: one modality's scale cannot dominate another's.
        np.testing.assert_allclose(frame.mean().abs().max(), 0.0, atol=1e-4)
    again = features.item_features(miniclips_tiny, modalities=["visual"], visual="handcrafted",
                                   data_dir=cache)
    pd.testing.assert_frame_equal(again["visual"], result["visual"])


def test_cnn_visual_features_are_cached_and_skip_cold_labels(miniclips_tiny, cache):
    first = features.visual_features(miniclips_tiny, kind="cnn", data_dir=cache)
    assert first.shape == (len(miniclips_tiny.items), 32)
    assert first.columns[0] == "cnn_0" and np.isfinite(first.to_numpy()).all()
    files = sorted(p.name for p in (cache / "features" / "vision").rglob("video-encoder-*.h5"))
    assert len(files) == 1
    second = features.visual_features(miniclips_tiny, kind="cnn", data_dir=cache)
    pd.testing.assert_frame_equal(first, second)
    both = features.visual_features(miniclips_tiny, kind="both", data_dir=cache)
    assert both.shape[1] == 32 + features.visual_features(
        miniclips_tiny, kind="handcrafted", data_dir=cache).shape[1]


@pytest.mark.parametrize("options,match", [
    ({"modalities": ("smell",)}, "modalities"),
    ({"modalities": ()}, "modalities"),
    ({"audio": "mfcc"}, "audio"),
])
def test_bad_options_raise(miniclips_tiny, cache, options, match):
    with pytest.raises(ParameterError, match=match):
        features.item_features(miniclips_tiny, data_dir=cache, **options)


def test_bad_visual_kind_and_dataset_raise(miniclips_tiny, cache):
    with pytest.raises(ParameterError, match="kind"):
        features.visual_features(miniclips_tiny, kind="pixels", data_dir=cache)
    with pytest.raises(ParameterError, match="items table"):
        features.item_features(object(), data_dir=cache)


def test_visual_entries_live_under_the_dataset_key(miniclips_tiny, cache):
    from mmrec_lib import cache as feature_cache

    features.visual_features(miniclips_tiny, kind="handcrafted", data_dir=cache)
    folder = cache / "features" / "vision" / feature_cache.dataset_key(miniclips_tiny)
    assert feature_cache.dataset_key(miniclips_tiny) == "miniclips-tiny-seed0"
    assert len(list(folder.glob("handcrafted-clip-features-*.npz"))) == 1


def test_damaged_visual_entry_warns_and_is_recomputed(miniclips_tiny, tmp_path):
    first = features.visual_features(miniclips_tiny, kind="handcrafted", data_dir=tmp_path)
    [path] = (tmp_path / "features" / "vision").rglob("handcrafted-clip-features-*.npz")
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match=path.name):
        again = features.visual_features(miniclips_tiny, kind="handcrafted", data_dir=tmp_path)
    pd.testing.assert_frame_equal(again, first)
