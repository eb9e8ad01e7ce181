"""Every clip of a data set at once: sampled frames, shot histograms, CNN embeddings, all cached."""

from __future__ import annotations

import concurrent.futures
import os

import numpy as np

from mmrec_lib import cache as feature_cache
from mmrec_lib._validation import check_int
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.vision._encoders import encode_clips
from mmrec_lib.vision._shots import colour_histograms, shot_detection_scores, shots_from_histograms

__all__ = [
    "CLIP_FRAMES",
    "CLIP_SIDE",
    "ENCODER_SIDE",
    "downsample",
    "features_cache_path",
    "cached_array",
    "load_clip_frames",
    "clip_histograms",
    "evaluate_shot_detection",
    "clip_embeddings",
]

#: Frames sampled per clip for the visual features and CNNs (chapter 04, reused by 07-08).
CLIP_FRAMES = 8
#: Side of the resize-cropped frames (MiniClips frames are 96 x 96).
CLIP_SIDE = 64
#: Side of the frames chapter 04's video encoder sees: ``CLIP_SIDE`` downsampled 2x.
ENCODER_SIDE = 32

#: Kept under its chapter-04 name for notebooks and tests; see :func:`mmrec_lib.cache.cached_array`.
cached_array = feature_cache.cached_array


def downsample(clips, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` pixel blocks of every frame (chapter 04).

    Parameters
    ----------
    clips : ndarray of shape (n, frames, height, width, channels)
        ``height`` and ``width`` divisible by ``factor``.
    factor : int

    Returns
    -------
    ndarray of shape (n, frames, height // factor, width // factor, channels), float64
    """
    factor = check_int("factor", factor)
    clips = np.asarray(clips)
    if clips.ndim != 5:
        raise DataError(f"clips of shape {clips.shape}: expected (n, frames, height, width, "
                        "channels)")
    n, t, h, w, c = clips.shape
    if h % factor or w % factor:
        raise DataError(f"frames of {h} x {w} pixels cannot be downsampled by factor={factor}")
    return clips.reshape(n, t, h // factor, factor, w // factor, factor, c).mean(axis=(3, 5))


def features_cache_path(dataset, kind: str, settings: dict, *,
                        data_dir: str | os.PathLike | None = None, suffix: str = ".npz"):
    """Cache file of vision ``kind`` for ``dataset`` and ``settings`` (chapter 04).

    :func:`mmrec_lib.cache.feature_cache_path` with ``modality="vision"``:
    ``<cache>/features/vision/<dataset>/<kind>-<key><suffix>``, so a change
    of any setting gives a new file. Trained weights use ``suffix=".h5"``.
    """
    return feature_cache.feature_cache_path(dataset, "vision", kind, settings, suffix=suffix,
                                            data_dir=data_dir)


def _item_ids(dataset, item_ids) -> list[str]:
    if item_ids is None:
        items = getattr(dataset, "items", None)
        if items is None or "item_id" not in getattr(items, "columns", ()):
            raise ParameterError("dataset has no items table with an item_id column: expected "
                                 "a loaded MiniClips set")
        item_ids = items["item_id"]
    item_ids = [str(item_id) for item_id in item_ids]
    if not item_ids:
        raise ParameterError("item_ids is empty: expected at least one clip")
    return item_ids


def _histogram_path(dataset, item_ids: list[str], bins: int, data_dir):
    return feature_cache.feature_cache_path(dataset, "vision", "histograms",
                                            {"bins": bins, "space": "hsv"},
                                            item_ids=item_ids, data_dir=data_dir)


def _histogram_table(results) -> np.ndarray:
    """[(histograms, fps), ...] -> one table: clip position, fps, then one frame per row."""
    return np.concatenate([np.column_stack([np.full(len(h), k), np.full(len(h), fps), h])
                           for k, (h, fps) in enumerate(results)]).astype(np.float64)


def _split_histogram_table(table: np.ndarray, num_clips: int) -> list:
    positions = table[:, 0].astype(np.int64)
    starts = np.searchsorted(positions, np.arange(num_clips + 1))
    return [(table[starts[k]:starts[k + 1], 2:], float(table[starts[k], 1]))
            for k in range(num_clips)]


def load_clip_frames(dataset, *, num_frames: int = CLIP_FRAMES, size: int = CLIP_SIDE,
                     item_ids=None, cache: bool = True, data_dir=None, workers: int = 4,
                     histogram_bins: int | None = 16) -> np.ndarray:
    """``num_frames`` evenly spaced frames of every clip, resize-cropped to ``size``.

    Introduced in chapter 04. Decoding is the slow step, so the uint8 result is
    cached per dataset, items and settings (``cache=False`` recomputes without
    writing). Frame ``sample_indices(num_frames, n)[j]`` of a clip of ``n``
    frames is ``result[i, j]``. ``workers`` clips are decoded at a time (threads).

    Each clip is decoded whole once; when ``histogram_bins`` is set and the
    shot-detection histograms of the same clips are not cached yet, they are
    computed from the same frames and cached too, so that
    :func:`clip_histograms` / :func:`evaluate_shot_detection` need no second pass.

    Returns
    -------
    ndarray of shape (n_items, num_frames, size, size, 3), uint8, rows in
    ``dataset.items`` order (or ``item_ids`` order).
    """
    from mmrec_lib.utils import progress
    from mmrec_lib.vision._io import read_video, sample_indices
    from mmrec_lib.vision._preprocess import ResizeCrop

    num_frames = check_int("num_frames", num_frames)
    size = check_int("size", size)
    workers = check_int("workers", workers)
    item_ids = _item_ids(dataset, item_ids)
    resize = ResizeCrop(size=size)
    histogram_path = None
    if cache and histogram_bins is not None:
        histogram_path = _histogram_path(dataset, item_ids, histogram_bins, data_dir)
        if histogram_path.is_file():
            histogram_path = None

    def one_clip(item_id):
        frames, info = read_video(dataset.clip_path(item_id))
        chosen = frames[sample_indices(num_frames, len(frames))]
        histograms = (colour_histograms(frames, bins=histogram_bins), info.fps) \
            if histogram_path is not None else None
        return resize.fit(chosen).transform(chosen), histograms

    def compute():
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(progress(pool.map(one_clip, item_ids), total=len(item_ids),
                                    desc="decoding clips"))
        if histogram_path is not None:
            table = _histogram_table([histograms for _, histograms in results])
            feature_cache.save_entry(histogram_path, {"values": table}, item_ids=item_ids)
        return np.stack([clip for clip, _ in results])

    if not cache:
        return compute()
    path = feature_cache.feature_cache_path(dataset, "vision", "frames",
                                            {"num_frames": num_frames, "size": size},
                                            item_ids=item_ids, data_dir=data_dir)
    return feature_cache.cached_array(path, compute, item_ids=item_ids,
                                      shape=(len(item_ids), num_frames, size, size, 3))


def clip_histograms(dataset, *, item_ids=None, bins: int = 16, cache: bool = True,
                    workers: int = 4, data_dir=None) -> list[tuple[np.ndarray, float]]:
    """Per-frame :func:`colour_histograms` of every clip, with its frame rate (cached).

    Introduced in chapter 04.

    Returns
    -------
    list of (ndarray of shape (n_frames, 3 * bins), fps) in ``item_ids`` order
    """
    from mmrec_lib.utils import progress
    from mmrec_lib.vision._io import read_video

    workers = check_int("workers", workers)
    item_ids = _item_ids(dataset, item_ids)

    def one_clip(item_id):
        frames, info = read_video(dataset.clip_path(item_id))
        return colour_histograms(frames, bins=bins), info.fps

    def compute() -> np.ndarray:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return _histogram_table(list(progress(pool.map(one_clip, item_ids),
                                                  total=len(item_ids), desc="colour histograms")))

    if cache:
        table = feature_cache.cached_array(_histogram_path(dataset, item_ids, bins, data_dir),
                                           compute, item_ids=item_ids, shape=(None, 2 + 3 * bins))
    else:
        table = compute()
    return _split_histogram_table(table, len(item_ids))


def evaluate_shot_detection(dataset, tolerance_frames: int = 1, *, item_ids=None,
                            bins: int = 16, cache: bool = True, workers: int = 4,
                            **detector_options) -> dict:
    """Detect cuts in every clip of a MiniClips set and score them against the true cuts.

    Introduced in chapter 04. Each clip is decoded at its native rate, its
    :func:`colour_histograms` go through :func:`shots_from_histograms` with
    ``detector_options`` (``window``, ``k``, ``floor``, ``min_shot_frames``,
    ``metric``), and the cuts are compared with ``dataset.truth.shot_cuts``
    (seconds, converted to frames with the clip's frame rate) by
    :func:`shot_detection_scores`.

    Decoding every clip is the slow part, so the per-frame histograms are
    cached per dataset and ``bins`` (``cache=False`` recomputes them); the
    detection itself always runs.

    Parameters
    ----------
    dataset : MiniClips
        From ``mmrec_lib.datasets.miniclips.load_miniclips``.
    tolerance_frames : int
        A predicted cut counts if it is within this many frames of a true one.
    item_ids : sequence of str, optional
        Evaluate only these clips (default: all).
    bins : int
        Histogram bins per HSV channel.
    cache : bool
    workers : int
        Clips decoded at the same time (threads around ffmpeg processes);
        the result does not depend on it.

    Returns
    -------
    dict with ``precision``, ``recall``, ``f1`` (and the counts, see
    :func:`shot_detection_scores`).
    """
    for name in ("items", "truth", "clip_path"):
        if not hasattr(dataset, name):
            raise ParameterError(f"dataset has no {name!r}: expected a loaded MiniClips set")
    true_cuts = dataset.truth.shot_cuts
    item_ids = _item_ids(dataset, item_ids)
    missing = [item_id for item_id in item_ids if item_id not in true_cuts]
    if missing:
        raise DataError(f"items {missing[:5]} have no recorded shot cuts in dataset.truth")
    per_clip = clip_histograms(dataset, item_ids=item_ids, bins=bins, cache=cache,
                               workers=workers)
    predicted, true = [], []
    for item_id, (histograms, fps) in zip(item_ids, per_clip, strict=True):
        predicted.append(shots_from_histograms(histograms, **detector_options).cut_frames)
        true.append(np.rint(np.asarray(true_cuts[item_id], dtype=np.float64) * fps).astype(int))
    return shot_detection_scores(predicted, true, tolerance=tolerance_frames)


def clip_embeddings(dataset, encoder, clips, *, settings: dict | None = None,
                    cache: bool = True, data_dir=None, batch_size: int = 32) -> np.ndarray:
    """:func:`encode_clips` with a cache keyed by dataset, encoder (name + weights) and settings.

    Introduced in chapter 04.

    Parameters
    ----------
    clips : float array, the encoder's input for every item of ``dataset``
        Rows in ``dataset.items`` order.
    settings : dict
        Whatever produced ``clips`` (frames, size, normalisation), part of the key.
    """

    def compute():
        return encode_clips(encoder, clips, batch_size=batch_size)

    if not cache:
        return compute()
    item_ids = _item_ids(dataset, None)
    if len(clips) != len(item_ids):
        raise DataError(f"clips has {len(clips)} rows but the dataset has {len(item_ids)} "
                        "items: expected one clip per item, in dataset.items order")
    key = {"encoder": encoder.name, "input_shape": list(np.shape(clips)), **(settings or {})}
    path = feature_cache.feature_cache_path(
        dataset, "vision", f"cnn-{encoder.name}", key, item_ids=item_ids,
        weights=feature_cache.weights_fingerprint(encoder), data_dir=data_dir)
    return feature_cache.cached_array(path, compute, item_ids=item_ids,
                                      shape=(len(item_ids), int(encoder.output_shape[-1])))
