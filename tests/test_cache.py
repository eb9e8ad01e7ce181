"""Tests of mmrec_lib.cache and its users: keys, atomic entries, corrupt and stale files."""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 environment first)
from mmrec_lib import cache
from mmrec_lib.errors import DataError, ParameterError

REPO = Path(__file__).resolve().parents[1]
IDS = ["i0", "i1", "i2"]


def _dataset(root: Path, ids=IDS):
    return SimpleNamespace(root=root, items=pd.DataFrame({"item_id": list(ids)}))


def _corrupt(path: Path, how: str) -> None:
    """Damage a cache entry the ways a crash, a full disk or a stray file would."""
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
                         .tobytes())
    else:
        raise ValueError(how)


DAMAGE = ["truncated", "empty", "random"]


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ----------------------------------------------------------------------------- dataset_key


def test_dataset_key_is_parent_and_folder():
    assert cache.dataset_key(_dataset(Path("/c/miniclips/tiny-seed0"))) == "miniclips-tiny-seed0"


def test_dataset_key_without_root_is_items():
    assert cache.dataset_key(pd.DataFrame({"item_id": ["a"]})) == "items"


def test_dataset_key_ignores_a_root_column_of_a_table():
    assert cache.dataset_key(pd.DataFrame({"root": ["x"], "item_id": ["a"]})) == "items"


def test_dataset_key_of_a_name_is_the_name():
    assert cache.dataset_key("toy") == "toy"


@pytest.mark.parametrize("name", ["", "a/b", "../up", "with space"])
def test_dataset_key_rejects_bad_names(name):
    with pytest.raises(ParameterError, match="dataset name"):
        cache.dataset_key(name)


# ----------------------------------------------------------------------------- cache_key


def _key(**changes):
    options = {"dataset": _dataset(Path("/c/miniclips/tiny-seed0")), "modality": "vision",
               "kind": "frames", "settings": {"size": 64, "frames": 8}, "item_ids": IDS,
               "weights": "abc"}
    options.update(changes)
    return cache.cache_key(options.pop("dataset"), options.pop("modality"),
                           options.pop("kind"), options.pop("settings"), **options)


def test_cache_key_ignores_settings_order():
    assert _key() == _key(settings={"frames": 8, "size": 64})


def test_cache_key_changes_with_a_setting():
    assert _key() != _key(settings={"size": 32, "frames": 8})


def test_cache_key_changes_with_an_added_setting():
    assert _key() != _key(settings={"size": 64, "frames": 8, "pooling": "mean"})


def test_cache_key_changes_with_the_weights():
    assert _key() != _key(weights="abd")


def test_cache_key_changes_with_the_items_and_their_order():
    assert _key() != _key(item_ids=IDS[:2])
    assert _key() != _key(item_ids=IDS[::-1])


def test_cache_key_changes_with_the_dataset():
    assert _key() != _key(dataset=_dataset(Path("/c/miniclips/tiny-seed1")))


def test_cache_key_changes_with_the_generator_version():
    """A rebuilt MiniClips under the same folder name must not read the old build's features."""
    old = SimpleNamespace(root=Path("/c/miniclips/tiny-seed0"), generator_version=4)
    new = SimpleNamespace(root=Path("/c/miniclips/tiny-seed0"), generator_version=5)
    assert _key(dataset=old) != _key(dataset=new)
    assert _key(dataset=old) == _key(dataset=SimpleNamespace(**vars(old)))
    # Data sets without a generator keep the key they always had.
    assert _key() == _key(dataset=SimpleNamespace(root=Path("/c/miniclips/tiny-seed0"),
                                                  generator_version=None))


def test_cache_key_changes_with_the_code_version(monkeypatch):
    before = _key()
    monkeypatch.setattr(cache, "CACHE_VERSION", cache.CACHE_VERSION + 1)
    assert _key() != before


def test_cache_key_changes_with_modality_and_kind():
    assert len({_key(), _key(modality="audio"), _key(kind="histograms")}) == 3


def test_cache_key_rejects_unknown_modality():
    with pytest.raises(ParameterError, match="modality='smell'"):
        _key(modality="smell")


def test_cache_key_rejects_settings_that_are_not_a_dict():
    with pytest.raises(ParameterError, match="settings"):
        _key(settings=[("size", 64)])


# ----------------------------------------------------------------------------- feature_cache_path


def test_feature_cache_path_layout(tmp_path):
    dataset = _dataset(Path("/c/miniclips/tiny-seed0"))
    path = cache.feature_cache_path(dataset, "audio", "log-mel", {"n_mels": 96},
                                    item_ids=IDS, data_dir=tmp_path)
    key = cache.cache_key(dataset, "audio", "log-mel", {"n_mels": 96}, item_ids=IDS)
    assert path == tmp_path / "features" / "audio" / "miniclips-tiny-seed0" / f"log-mel-{key}.npz"


def test_feature_cache_path_uses_the_environment_cache(data_dir):
    path = cache.feature_cache_path("toy", "text", "model", {})
    assert path.parent == data_dir / "features" / "text" / "toy"


def test_feature_cache_path_weights_suffix(tmp_path):
    path = cache.feature_cache_path("toy", "vision", "video-encoder", {}, suffix=".h5",
                                    data_dir=tmp_path)
    assert path.suffix == ".h5"


@pytest.mark.parametrize("kind", ["", "a/b", "../x", "with space", None])
def test_feature_cache_path_rejects_bad_kind(tmp_path, kind):
    with pytest.raises(ParameterError, match="kind"):
        cache.feature_cache_path("toy", "vision", kind, {}, data_dir=tmp_path)


@pytest.mark.parametrize("suffix", ["npz", ".n/z", ""])
def test_feature_cache_path_rejects_bad_suffix(tmp_path, suffix):
    with pytest.raises(ParameterError, match="suffix"):
        cache.feature_cache_path("toy", "vision", "frames", {}, suffix=suffix, data_dir=tmp_path)


# ----------------------------------------------------------------------------- weights_fingerprint


def test_weights_fingerprint_of_a_file_follows_its_content(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"one")
    first = cache.weights_fingerprint(path)
    assert cache.weights_fingerprint(path) == first and len(first) == 16
    path.write_bytes(b"two")
    assert cache.weights_fingerprint(path) != first


def test_weights_fingerprint_same_bytes_same_fingerprint(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"same")
    (tmp_path / "b.bin").write_bytes(b"same")
    assert cache.weights_fingerprint(tmp_path / "a.bin") == \
        cache.weights_fingerprint(tmp_path / "b.bin")


def test_weights_fingerprint_of_a_folder_covers_every_file(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    (tmp_path / "ckpt" / "model.data").write_bytes(b"\x00" * 10)
    first = cache.weights_fingerprint(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.data").write_bytes(b"\x00" * 9 + b"\x01")
    assert cache.weights_fingerprint(tmp_path / "ckpt") != first


def test_weights_fingerprint_of_a_folder_covers_file_names(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"1")
    (tmp_path / "b" / "y.bin").write_bytes(b"1")
    assert cache.weights_fingerprint(tmp_path / "a") != cache.weights_fingerprint(tmp_path / "b")


def test_weights_fingerprint_is_memoised_per_path_mtime_and_size(tmp_path, monkeypatch):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x" * 100)
    cache.weights_fingerprint(path)
    reads = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        reads.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    cache.weights_fingerprint(path)
    assert reads == []


def test_weights_fingerprint_of_arrays_and_models():
    arrays = [np.ones((2, 2), np.float32), np.zeros(3, np.float32)]
    model = SimpleNamespace(get_weights=lambda: arrays)
    assert cache.weights_fingerprint(model) == cache.weights_fingerprint(arrays)
    changed = [arrays[0] * 2, arrays[1]]
    assert cache.weights_fingerprint(changed) != cache.weights_fingerprint(arrays)


def test_weights_fingerprint_missing_path_raises(tmp_path):
    with pytest.raises(ParameterError, match="does not exist"):
        cache.weights_fingerprint(tmp_path / "nothing.h5")


def test_weights_fingerprint_empty_folder_raises(tmp_path):
    with pytest.raises(ParameterError, match="holds no file"):
        cache.weights_fingerprint(tmp_path)


def test_weights_fingerprint_nothing_raises():
    with pytest.raises(ParameterError, match="weights is empty"):
        cache.weights_fingerprint([])


# ----------------------------------------------------------------------------- entries


def test_save_and_load_entry_round_trip(tmp_path, no_warnings):
    path = tmp_path / "e.npz"
    values = np.arange(6, dtype=np.float32).reshape(3, 2)
    cache.save_entry(path, {"values": values}, item_ids=IDS)
    loaded = cache.load_entry(path, item_ids=IDS, shapes={"values": (3, None)})
    np.testing.assert_array_equal(loaded["values"], values)
    assert loaded["values"].dtype == np.float32
    assert list(loaded["item_ids"]) == IDS
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]  # no temporary left over


def test_load_entry_missing_is_none_without_warning(tmp_path, no_warnings):
    assert cache.load_entry(tmp_path / "absent.npz") is None


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_load_entry_damaged_file_warns_and_is_none(tmp_path, how, suffix):
    path = tmp_path / f"entry{suffix}"
    arrays = {"array" if suffix == ".npy" else "values": np.arange(100.0)}
    cache.save_entry(path, arrays)
    _corrupt(path, how)
    with pytest.warns(RuntimeWarning, match=f"entry\\{suffix}"):
        assert cache.load_entry(path) is None


def test_load_entry_other_item_ids_warns(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_entry(path, {"values": np.zeros((3, 2))}, item_ids=IDS)
    with pytest.warns(RuntimeWarning, match="item ids are not the requested ones"):
        assert cache.load_entry(path, item_ids=["i0", "i1", "i9"]) is None


def test_load_entry_fewer_item_ids_warns(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_entry(path, {"values": np.zeros((3, 2))}, item_ids=IDS)
    with pytest.warns(RuntimeWarning, match="item ids"):
        assert cache.load_entry(path, item_ids=IDS[:2]) is None


def test_load_entry_without_item_ids_warns(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_entry(path, {"values": np.zeros((3, 2))})
    with pytest.warns(RuntimeWarning, match="no item ids"):
        assert cache.load_entry(path, item_ids=IDS) is None


def test_load_entry_wrong_shape_warns(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_entry(path, {"values": np.zeros((3, 2))}, item_ids=IDS)
    with pytest.warns(RuntimeWarning, match=r"has shape \(3, 2\), expected \(3, 5\)"):
        assert cache.load_entry(path, shapes={"values": (3, 5)}) is None


def test_load_entry_wrong_rank_warns(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_entry(path, {"values": np.zeros((3, 2))})
    with pytest.warns(RuntimeWarning, match="shape"):
        assert cache.load_entry(path, shapes={"values": (3, 2, 1)}) is None


def test_load_entry_missing_array_warns(tmp_path):
    path = tmp_path / "e.npz"
    cache.save_entry(path, {"other": np.zeros(3)})
    with pytest.warns(RuntimeWarning, match="no array 'values'"):
        assert cache.load_entry(path, shapes={"values": (3,)}) is None


def test_load_entry_never_unpickles(tmp_path):
    path = tmp_path / "e.npz"
    np.savez(path, values=np.array([{"a": 1}], dtype=object))
    with pytest.warns(RuntimeWarning, match="cannot be read"):
        assert cache.load_entry(path) is None


def test_save_entry_refuses_object_arrays(tmp_path):
    with pytest.raises(ParameterError, match="object arrays"):
        cache.save_entry(tmp_path / "e.npz", {"values": np.array([None, 1], dtype=object)})


def test_save_entry_refuses_other_suffixes(tmp_path):
    with pytest.raises(ParameterError, match=".npz or .npy"):
        cache.save_entry(tmp_path / "e.pkl", {"values": np.zeros(2)})


def test_save_entry_npy_holds_one_array(tmp_path):
    with pytest.raises(ParameterError, match="one array"):
        cache.save_entry(tmp_path / "e.npy", {"a": np.zeros(2), "b": np.zeros(2)})


def test_save_entry_failure_keeps_the_previous_entry(tmp_path, monkeypatch):
    path = tmp_path / "e.npz"
    cache.save_entry(path, {"values": np.ones(2)})

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.save_entry(path, {"values": np.zeros(2)})
    monkeypatch.undo()
    np.testing.assert_array_equal(cache.load_entry(path)["values"], [1, 1])
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]


def test_cached_arrays_computes_once(tmp_path, no_warnings):
    calls = []

    def compute():
        calls.append(1)
        return {"values": np.arange(3.0)}

    path = tmp_path / "e.npz"
    first = cache.cached_arrays(path, compute, item_ids=IDS)
    second = cache.cached_arrays(path, compute, item_ids=IDS)
    assert len(calls) == 1 and set(second) == {"values"}
    np.testing.assert_array_equal(first["values"], second["values"])


def test_cached_arrays_recompute_overwrites(tmp_path):
    path = tmp_path / "e.npz"
    cache.cached_arrays(path, lambda: {"values": np.zeros(2)})
    again = cache.cached_arrays(path, lambda: {"values": np.ones(2)}, recompute=True)
    np.testing.assert_array_equal(again["values"], [1, 1])
    np.testing.assert_array_equal(cache.load_entry(path)["values"], [1, 1])


@pytest.mark.parametrize("how", DAMAGE)
def test_cached_array_rewrites_a_damaged_entry(tmp_path, how):
    path = tmp_path / "e.npz"
    cache.cached_array(path, lambda: np.arange(50.0), item_ids=None)
    _corrupt(path, how)
    with pytest.warns(RuntimeWarning, match="e.npz") as record:
        np.testing.assert_array_equal(cache.cached_array(path, lambda: np.arange(50.0)),
                                      np.arange(50.0))
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(cache.cached_array(path, lambda: None), np.arange(50.0))


def test_cached_array_with_item_ids_needs_npz(tmp_path):
    with pytest.raises(ParameterError, match="item_ids need a .npz"):
        cache.cached_array(tmp_path / "e.npy", lambda: np.zeros(3), item_ids=IDS)


# ----------------------------------------------------------------------------- modules


def _imports(relative: str) -> set[str]:
    tree = ast.parse((REPO / relative).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_shots_and_encoders_do_not_import_each_other():
    shots = _imports("mmrec_lib/vision/_shots.py")
    encoders = _imports("mmrec_lib/vision/_encoders.py")
    assert not any(name.startswith("mmrec_lib.vision") for name in shots)
    assert not any(name.startswith("mmrec_lib.vision") for name in encoders)


def test_clip_caching_lives_in_clips_module():
    from mmrec_lib import vision

    for name in ("load_clip_frames", "clip_histograms", "evaluate_shot_detection",
                 "clip_embeddings", "features_cache_path", "downsample"):
        assert getattr(vision, name).__module__ == "mmrec_lib.vision._clips", name
    assert vision.cached_array is cache.cached_array


def test_importing_the_cache_does_not_import_tensorflow():
    code = "import mmrec_lib.cache, sys; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, check=True)
    assert result.stdout.strip() == "False"


# ----------------------------------------------------------------------------- vision


def test_downsample_averages_blocks():
    clips = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4, 1)
    from mmrec_lib import vision

    result = vision.downsample(clips, 2)
    np.testing.assert_array_equal(result[0, 0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_downsample_chapter_factor_is_two():
    from mmrec_lib import vision

    assert vision.CLIP_SIDE // vision.ENCODER_SIDE == 2 and vision.CLIP_FRAMES == 8


def test_downsample_rejects_indivisible_frames():
    from mmrec_lib import vision

    with pytest.raises(DataError, match="factor=3"):
        vision.downsample(np.zeros((1, 1, 4, 4, 3)), 3)


def test_downsample_rejects_bad_factor():
    from mmrec_lib import vision

    with pytest.raises(ParameterError, match="factor"):
        vision.downsample(np.zeros((1, 1, 4, 4, 3)), 0)


def test_downsample_rejects_non_clips():
    from mmrec_lib import vision

    with pytest.raises(DataError, match="expected"):
        vision.downsample(np.zeros((4, 4, 3)), 2)


def _frames(item_id: str) -> np.ndarray:
    seed = int(item_id[1:])
    return np.random.default_rng(seed).integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)


@pytest.fixture
def fake_video(monkeypatch):
    """read_video replaced by synthetic frames; counts the clips decoded."""
    from mmrec_lib.vision import _io

    decoded = []

    def read_video(path, **kwargs):
        decoded.append(Path(path).stem)
        return _frames(Path(path).stem), SimpleNamespace(fps=10.0)

    monkeypatch.setattr(_io, "read_video", read_video)
    return decoded


def _video_dataset(tmp_path):
    dataset = _dataset(tmp_path / "miniclips" / "fake-seed0")
    dataset.clip_path = lambda item_id: tmp_path / f"{item_id}.mp4"
    return dataset


def _only_entry(data_dir: Path, modality: str, pattern: str) -> Path:
    entries = list((data_dir / "features" / modality).rglob(pattern))
    assert len(entries) == 1, entries
    return entries[0]


@pytest.mark.parametrize("how", [*DAMAGE, "wrong shape", "wrong ids"])
def test_vision_frames_entry_damaged_is_recomputed(tmp_path, data_dir, fake_video, how):
    from mmrec_lib import vision

    dataset = _video_dataset(tmp_path)
    first = vision.load_clip_frames(dataset, num_frames=4, size=8, histogram_bins=None)
    path = _only_entry(data_dir, "vision", "frames-*.npz")
    if how == "wrong shape":
        cache.save_entry(path, {"values": first[:, :2]}, item_ids=IDS)
    elif how == "wrong ids":
        cache.save_entry(path, {"values": first}, item_ids=["x0", "x1", "x2"])
    else:
        _corrupt(path, how)
    fake_video.clear()
    with pytest.warns(RuntimeWarning, match=path.name):
        again = vision.load_clip_frames(dataset, num_frames=4, size=8, histogram_bins=None)
    np.testing.assert_array_equal(again, first)
    assert fake_video == IDS  # decoded again
    fake_video.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(
            vision.load_clip_frames(dataset, num_frames=4, size=8, histogram_bins=None), first)
    assert fake_video == []  # the rewritten entry is read


def test_vision_frames_key_changes_with_settings(tmp_path, data_dir, fake_video):
    from mmrec_lib import vision

    dataset = _video_dataset(tmp_path)
    vision.load_clip_frames(dataset, num_frames=4, size=8, histogram_bins=None)
    vision.load_clip_frames(dataset, num_frames=4, size=12, histogram_bins=None)
    assert len(list((data_dir / "features" / "vision").rglob("frames-*.npz"))) == 2


@pytest.mark.parametrize("how", [*DAMAGE, "wrong shape"])
def test_vision_histogram_entry_damaged_is_recomputed(tmp_path, data_dir, fake_video, how):
    from mmrec_lib import vision

    dataset = _video_dataset(tmp_path)
    first = vision.clip_histograms(dataset, bins=4)
    path = _only_entry(data_dir, "vision", "histograms-*.npz")
    if how == "wrong shape":
        cache.save_entry(path, {"values": np.zeros((5, 3))}, item_ids=IDS)
    else:
        _corrupt(path, how)
    with pytest.warns(RuntimeWarning, match=path.name):
        again = vision.clip_histograms(dataset, bins=4)
    for (a, fps_a), (b, fps_b) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        assert fps_a == fps_b


def _tiny_encoder(seed: int):
    from mmrec_lib import vision

    mmrec_lib.set_seed(seed)
    return vision.build_video_encoder(
        vision.build_image_encoder(input_shape=(8, 8, 3), filters=(2,), embedding_dim=3),
        num_frames=2)


def test_vision_embeddings_key_changes_with_the_weights(tmp_path, data_dir):
    from mmrec_lib import vision

    dataset = _video_dataset(tmp_path)
    inputs = np.random.default_rng(0).random((3, 2, 8, 8, 3)).astype(np.float32)
    first = vision.clip_embeddings(dataset, _tiny_encoder(0), inputs)
    other = vision.clip_embeddings(dataset, _tiny_encoder(1), inputs)
    assert not np.array_equal(first, other)
    assert len(list((data_dir / "features" / "vision").rglob("cnn-*.npz"))) == 2


@pytest.mark.parametrize("how", [*DAMAGE, "wrong shape"])
def test_vision_embeddings_entry_damaged_is_recomputed(tmp_path, data_dir, how):
    from mmrec_lib import vision

    dataset = _video_dataset(tmp_path)
    encoder = _tiny_encoder(0)
    inputs = np.random.default_rng(0).random((3, 2, 8, 8, 3)).astype(np.float32)
    first = vision.clip_embeddings(dataset, encoder, inputs)
    path = _only_entry(data_dir, "vision", "cnn-*.npz")
    if how == "wrong shape":
        cache.save_entry(path, {"values": first[:, :2]}, item_ids=IDS)
    else:
        _corrupt(path, how)
    with pytest.warns(RuntimeWarning, match=path.name):
        np.testing.assert_array_equal(vision.clip_embeddings(dataset, encoder, inputs), first)


def test_vision_embeddings_need_one_clip_per_item(tmp_path, data_dir):
    from mmrec_lib import vision

    with pytest.raises(DataError, match="one clip per item"):
        vision.clip_embeddings(_video_dataset(tmp_path), _tiny_encoder(0),
                               np.zeros((2, 2, 8, 8, 3), np.float32))


def test_vision_stale_entry_of_the_old_layout_is_not_read(tmp_path, data_dir, fake_video,
                                                          no_warnings):
    from mmrec_lib import vision

    dataset = _video_dataset(tmp_path)
    # Where the code before mmrec_lib.cache put the frames: a .npy named by folder and settings.
    settings = {"num_frames": 4, "size": 8, "items": IDS}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    old = data_dir / "features" / "vision" / "fake-seed0" / f"frames-{digest}.npy"
    old.parent.mkdir(parents=True)
    np.save(old, np.zeros((3, 4, 8, 8, 3), np.uint8))
    frames = vision.load_clip_frames(dataset, num_frames=4, size=8, histogram_bins=None)
    assert fake_video == IDS and frames.any()  # rebuilt from the clips, not the stale zeros
    assert old.is_file()  # left alone: another checkout of the old code may still use it


# ----------------------------------------------------------------------------- audio


def _waveform(item_id: str, sr: int = 16000) -> np.ndarray:
    frequency = 220.0 * (1 + int(item_id[1:]))
    return (0.3 * np.sin(2 * np.pi * frequency * np.arange(sr // 2) / sr)).astype(np.float32)


@pytest.fixture
def fake_audio(monkeypatch):
    from mmrec_lib.audio import dataset as audio_dataset

    decoded = []

    def load_audio(path, *, sr):
        decoded.append(Path(path).stem)
        return _waveform(Path(path).stem, sr)

    monkeypatch.setattr(audio_dataset, "load_audio", load_audio)
    return decoded


def _audio_dataset(tmp_path):
    dataset = _dataset(tmp_path / "miniclips" / "fake-seed0")
    dataset.clip_path = lambda item_id: tmp_path / f"{item_id}.wav"
    return dataset


@pytest.mark.parametrize("how", [*DAMAGE, "wrong shape", "wrong ids"])
def test_audio_log_mel_entry_damaged_is_recomputed(tmp_path, data_dir, fake_audio, how):
    from mmrec_lib import audio

    dataset = _audio_dataset(tmp_path)
    first = audio.dataset_log_mels(dataset, n_frames=8, n_mels=16)
    path = _only_entry(data_dir, "audio", "log-mel-*.npz")
    if how == "wrong shape":
        cache.save_entry(path, {"values": first[:, :4]}, item_ids=IDS)
    elif how == "wrong ids":
        cache.save_entry(path, {"values": first[::-1]}, item_ids=IDS[::-1])
    else:
        _corrupt(path, how)
    fake_audio.clear()
    with pytest.warns(RuntimeWarning, match=path.name):
        np.testing.assert_array_equal(audio.dataset_log_mels(dataset, n_frames=8, n_mels=16),
                                      first)
    assert fake_audio == IDS


def test_audio_log_mel_key_changes_with_settings(tmp_path, data_dir, fake_audio):
    from mmrec_lib import audio

    dataset = _audio_dataset(tmp_path)
    audio.dataset_log_mels(dataset, n_frames=8, n_mels=16)
    audio.dataset_log_mels(dataset, n_frames=8, n_mels=24)
    assert len(list((data_dir / "features" / "audio").rglob("log-mel-*.npz"))) == 2


@pytest.mark.parametrize("how", ["truncated", "random"])
def test_audio_handcrafted_entry_damaged_is_recomputed(tmp_path, data_dir, fake_audio, how):
    from mmrec_lib import audio

    dataset = _audio_dataset(tmp_path)
    first = audio.dataset_handcrafted_features(dataset)
    path = _only_entry(data_dir, "audio", "handcrafted-*.npz")
    _corrupt(path, how)
    with pytest.warns(RuntimeWarning, match=path.name):
        pd.testing.assert_frame_equal(audio.dataset_handcrafted_features(dataset), first)


def _need_musicnn():
    import importlib.util

    if importlib.util.find_spec("musicnn") is None:  # the tag names come from the package
        pytest.skip("the musicnn package is not installed")


class _FakeMusicnn:
    """What dataset_musicnn_features uses of a MusicnnEncoder, with weights in a folder."""

    model = "MTT_musicnn"

    def __init__(self, weights_dir: Path, scale: float):
        self.weights_dir, self.scale, self.calls = weights_dir, scale, 0

    def embed_many(self, clips, *, sr):
        self.calls += 1
        energy = np.array([[float(np.abs(c).mean())] for c in clips], np.float32)
        return (np.repeat(energy * self.scale, 200, axis=1),
                np.repeat(energy, 50, axis=1).astype(np.float32))


@pytest.fixture
def musicnn_weights(tmp_path):
    folder = tmp_path / "musicnn-weights"
    folder.mkdir()
    (folder / ".index").write_bytes(b"index")
    (folder / ".data-00000-of-00001").write_bytes(b"weights v1")
    return folder


def test_audio_musicnn_key_changes_with_the_weights(tmp_path, data_dir, fake_audio,
                                                    musicnn_weights):
    from mmrec_lib import audio

    _need_musicnn()
    dataset = _audio_dataset(tmp_path)
    encoder = _FakeMusicnn(musicnn_weights, scale=1.0)
    first = audio.dataset_musicnn_features(dataset, encoder=encoder)
    audio.dataset_musicnn_features(dataset, encoder=encoder)
    assert encoder.calls == 1  # cached
    (musicnn_weights / ".data-00000-of-00001").write_bytes(b"weights v2")
    retrained = _FakeMusicnn(musicnn_weights, scale=2.0)
    second = audio.dataset_musicnn_features(dataset, encoder=retrained)
    assert retrained.calls == 1
    np.testing.assert_array_equal(second.embeddings, 2 * first.embeddings)


@pytest.mark.parametrize("how", [*DAMAGE, "wrong shape"])
def test_audio_musicnn_entry_damaged_is_recomputed(tmp_path, data_dir, fake_audio,
                                                   musicnn_weights, how):
    from mmrec_lib import audio

    _need_musicnn()
    dataset = _audio_dataset(tmp_path)
    encoder = _FakeMusicnn(musicnn_weights, scale=1.0)
    first = audio.dataset_musicnn_features(dataset, encoder=encoder)
    path = _only_entry(data_dir, "audio", "musicnn-*.npz")
    if how == "wrong shape":
        cache.save_entry(path, {"embeddings": first.embeddings[:, :10],
                                "probabilities": first.probabilities}, item_ids=IDS)
    else:
        _corrupt(path, how)
    with pytest.warns(RuntimeWarning, match=path.name):
        again = audio.dataset_musicnn_features(dataset, encoder=encoder)
    assert encoder.calls == 2
    np.testing.assert_array_equal(again.embeddings, first.embeddings)
    np.testing.assert_array_equal(again.probabilities, first.probabilities)


def test_audio_stale_entry_of_the_old_layout_is_not_read(tmp_path, data_dir, fake_audio,
                                                         no_warnings):
    from mmrec_lib import audio

    dataset = _audio_dataset(tmp_path)
    # Where the code before mmrec_lib.cache put the log-mels: <folder>-<hash of ids>/...
    ids_digest = hashlib.sha256("\n".join(IDS).encode()).hexdigest()[:8]
    settings = {"format": 1, "sr": 22050, "n_frames": 8, "n_mels": 16, "n_fft": 512,
                "hop": 256, "log_mel": "float32-log10(1e4x+1)"}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    old = data_dir / "features" / "audio" / f"miniclips-fake-seed0-{ids_digest}" / \
        f"log-mel-{digest}.npz"
    old.parent.mkdir(parents=True)
    np.savez(old, item_ids=np.array(IDS), values=np.zeros((3, 8, 16), np.float32))
    values = audio.dataset_log_mels(dataset, n_frames=8, n_mels=16)
    assert fake_audio == IDS and values.any()


# ----------------------------------------------------------------------------- text


class _FakeTextEncoder:
    """What encode_items uses of a BertTextEncoder, with a checkpoint folder of weights."""

    def __init__(self, checkpoint: Path, scale: float = 1.0):
        self.checkpoint, self.scale, self.calls = checkpoint, scale, 0

    def cache_key(self) -> dict:
        return {"encoder": "fake", "model": "fake-bert", "max_length": 8}

    def encode(self, texts):
        self.calls += 1
        return np.array([[len(t) * self.scale, 1.0] for t in texts], np.float32)


@pytest.fixture
def text_checkpoint(tmp_path):
    folder = tmp_path / "fake_bert"
    folder.mkdir()
    (folder / "bert_config.json").write_text("{}")
    (folder / "bert_model.ckpt.data-00000-of-00001").write_bytes(b"weights v1")
    return folder


@pytest.fixture
def items():
    return pd.DataFrame({"item_id": IDS, "title_en": ["a", "bb", "ccc"],
                         "description_en": ["", "", ""], "tags": ["", "", ""]})


def test_text_key_changes_with_the_weights(items, text_checkpoint, data_dir):
    from mmrec_lib import text

    encoder = _FakeTextEncoder(text_checkpoint)
    first = text.encode_items(items, encoder=encoder)
    text.encode_items(items, encoder=encoder)
    assert encoder.calls == 1
    (text_checkpoint / "bert_model.ckpt.data-00000-of-00001").write_bytes(b"weights v2")
    retrained = _FakeTextEncoder(text_checkpoint, scale=2.0)
    np.testing.assert_array_equal(text.encode_items(items, encoder=retrained)[:, 0],
                                  2 * first[:, 0])
    assert retrained.calls == 1


def test_text_key_changes_with_the_settings(items, text_checkpoint, data_dir):
    from mmrec_lib import text

    encoder = _FakeTextEncoder(text_checkpoint)
    text.encode_items(items, encoder=encoder)
    text.encode_items(items, encoder=encoder, separator=" | ")
    assert encoder.calls == 2


@pytest.mark.parametrize("how", [*DAMAGE, "wrong shape", "wrong ids"])
def test_text_entry_damaged_is_recomputed(items, text_checkpoint, data_dir, how):
    from mmrec_lib import text

    encoder = _FakeTextEncoder(text_checkpoint)
    first = text.encode_items(items, encoder=encoder)
    path = _only_entry(data_dir, "text", "*.npz")
    if how == "wrong shape":
        cache.save_entry(path, {"vectors": first[:2]}, item_ids=IDS)
    elif how == "wrong ids":
        cache.save_entry(path, {"vectors": first}, item_ids=["x", "y", "z"])
    else:
        _corrupt(path, how)
    with pytest.warns(RuntimeWarning, match=path.name) as record:
        np.testing.assert_array_equal(text.encode_items(items, encoder=encoder), first)
    assert encoder.calls == 2 and len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text.encode_items(items, encoder=encoder)
    assert encoder.calls == 2  # the rewritten entry is read


def test_text_stale_entry_of_the_old_layout_is_not_read(items, text_checkpoint, data_dir,
                                                        no_warnings):
    from mmrec_lib import text

    encoder = _FakeTextEncoder(text_checkpoint)
    # The file name the code before mmrec_lib.cache used: <dataset>-<model>-<hash>.npz.
    old = data_dir / "features" / "text" / "items-fake-bert-0123456789abcdef.npz"
    old.parent.mkdir(parents=True)
    np.savez(old, vectors=np.zeros((3, 2), np.float32), item_ids=np.array(IDS))
    vectors = text.encode_items(items, encoder=encoder)
    assert encoder.calls == 1 and vectors.any()


_WORKER = """
import sys, time
from pathlib import Path
import numpy as np
from mmrec_lib import cache

entry, log, go = map(Path, sys.argv[1:4])
while not go.exists():
    time.sleep(0.01)


def compute():
    with open(log, "a") as handle:
        handle.write("computed\\n")
    time.sleep(1.0)                 # long enough for the other process to ask meanwhile
    return {"values": np.arange(6.0).reshape(3, 2)}


print(cache.cached_arrays(entry, compute, item_ids=["i0", "i1", "i2"])["values"].sum())
"""


def test_cached_arrays_computes_once_for_concurrent_processes(tmp_path):
    # Two notebooks (or test workers) asking for the same missing entry at once: one
    # computes it, the other waits for the lock and reads what the first wrote.
    entry, log, go = tmp_path / "entry.npz", tmp_path / "log.txt", tmp_path / "go"
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(entry), str(log), str(go)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    go.touch()
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == ["15.0", "15.0"]
    assert log.read_text() == "computed\n"
    assert (tmp_path / ".entry.npz.lock").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".entry.npz.lock", "entry.npz", "go",
                                                          "log.txt"]
