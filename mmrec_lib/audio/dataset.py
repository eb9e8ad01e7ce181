"""Per-dataset audio features, cached in the cache folder, and linear probes of their content."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib import cache
from mmrec_lib._validation import check_number
from mmrec_lib.audio._io import DEFAULT_SR, load_audio
from mmrec_lib.audio.features import (
    handcrafted_feature_names,
    handcrafted_features,
    log_mel_batch,
)
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.utils import progress

__all__ = [
    "MusicnnFeatures",
    "dataset_waveforms",
    "dataset_musicnn_features",
    "dataset_handcrafted_features",
    "dataset_log_mels",
    "probe_r2",
]


@dataclass
class MusicnnFeatures:
    """musicnn outputs for the items of a dataset, rows aligned with ``dataset.items``.

    Attributes
    ----------
    item_ids : ndarray of str, shape (n_items,)
    embeddings : ndarray of shape (n_items, 200), float32
    probabilities : ndarray of shape (n_items, 50), float32
    labels : list of str (50 tag names)
    model : str
    """

    item_ids: np.ndarray
    embeddings: np.ndarray
    probabilities: np.ndarray
    labels: list[str]
    model: str

    def top_tags(self, item_id: str, *, top_k: int = 5) -> list[tuple[str, float]]:
        """The ``top_k`` most probable tags of one item, most probable first."""
        rows = np.flatnonzero(self.item_ids == item_id)
        if rows.size == 0:
            raise ParameterError(f"item_id={item_id!r} is not in these features")
        probabilities = self.probabilities[rows[0]]
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        return [(self.labels[i], float(probabilities[i])) for i in order]


def _item_ids(dataset) -> np.ndarray:
    items = getattr(dataset, "items", None)
    if not isinstance(items, pd.DataFrame) or "item_id" not in items.columns:
        raise ParameterError(
            "dataset must have an `items` DataFrame with an item_id column and a "
            "clip_path(item_id) method, like MiniClips")
    if not callable(getattr(dataset, "clip_path", None)):
        raise ParameterError("dataset has no clip_path(item_id) method")
    return np.asarray([str(item_id) for item_id in items["item_id"]], dtype=str)


def _cache_path(dataset, kind: str, settings: dict, ids: np.ndarray, data_dir, *,
                weights: str | None = None) -> Path:
    """``<cache>/features/audio/<dataset>/<kind>-<key>.npz`` (see :mod:`mmrec_lib.cache`)."""
    return cache.feature_cache_path(dataset, "audio", kind, settings, item_ids=ids,
                                    weights=weights, data_dir=data_dir)


class _LazyWaveforms(Sequence):
    """Clips of a dataset decoded on first access and then kept in memory."""

    def __init__(self, dataset, item_ids: list[str], sr: int):
        self._dataset, self._ids, self._sr = dataset, item_ids, sr
        self._decoded: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]
        if index not in self._decoded:
            self._decoded[index] = load_audio(self._dataset.clip_path(self._ids[index]),
                                              sr=self._sr)
        return self._decoded[index]


def dataset_waveforms(dataset, item_ids=None, *, sr: int = DEFAULT_SR,
                      lazy: bool = False) -> Sequence[np.ndarray]:
    """Decode the audio of the dataset's clips (all items, or ``item_ids``), in order.

    Introduced in chapter 03. With ``lazy=True`` nothing is decoded yet: the
    returned sequence decodes a clip when it is first indexed and keeps it.
    Pass it as ``waveforms=`` to several ``dataset_*`` functions so that the
    clips are decoded at most once, and not at all when their caches are warm.

    Returns
    -------
    list (or lazy sequence) of ndarray of shape (n_samples_i,), float32
    """
    ids = list(_item_ids(dataset)) if item_ids is None else [str(i) for i in item_ids]
    if lazy:
        return _LazyWaveforms(dataset, ids, sr)
    return [load_audio(dataset.clip_path(item_id), sr=sr)
            for item_id in progress(ids, total=len(ids), desc="decoding audio")]


def _check_waveforms(waveforms, ids: np.ndarray) -> None:
    if waveforms is not None and len(waveforms) != len(ids):
        raise ParameterError(
            f"waveforms has {len(waveforms)} clips but the dataset has {len(ids)} items")


def dataset_musicnn_features(dataset, *, model: Literal["MTT_musicnn", "MSD_musicnn"] =
                             "MTT_musicnn", encoder=None,
                             waveforms=None, sr: int = DEFAULT_SR,
                             data_dir: str | os.PathLike | None = None,
                             recompute: bool = False) -> MusicnnFeatures:
    """musicnn embeddings and tag probabilities of every clip of a dataset, cached.

    Introduced in chapter 03; chapters 07-08 load them from the cache. The
    first call decodes every clip and runs :class:`MusicnnEncoder`; the result
    is written atomically to the feature cache (:mod:`mmrec_lib.cache`, keyed by dataset,
    items, model, front-end settings and a fingerprint of the weights) and later
    calls just read it.

    Parameters
    ----------
    dataset : MiniClips or any object with ``items`` (item_id column) and ``clip_path``
    model : {"MTT_musicnn", "MSD_musicnn"}
    encoder : MusicnnEncoder or None
        Reuse an already built encoder (its model wins over ``model``).
    waveforms : sequence of ndarray or None
        Already decoded clips at ``sr`` aligned with ``dataset.items`` (saves
        decoding them again, see ``dataset_waveforms(lazy=True)``); default:
        decode each clip at 16 kHz.
    sr : int
        Sample rate of ``waveforms`` (resampled to 16 kHz if different).
    data_dir : path or None
        Cache folder (default ``$MMREC_DATA_DIR``).
    recompute : bool
        Ignore and overwrite the cache.

    Returns
    -------
    MusicnnFeatures
        ``embeddings`` of shape (n_items, 200), ``probabilities`` (n_items, 50).
    """
    from mmrec_lib.audio.musicnn import (
        MUSICNN_SR,
        MusicnnEncoder,
        _check_model,
        musicnn_labels,
        musicnn_weights_dir,
    )

    ids = _item_ids(dataset)
    _check_waveforms(waveforms, ids)
    if encoder is not None:
        model = encoder.model
    _check_model(model)
    settings = {"model": model, "sr": MUSICNN_SR, "n_fft": 512, "hop": 256, "n_mels": 96,
                "patch_frames": 187, "log_mel": "float32-log10(1e4x+1)", "pooling": "mean"}
    weights = cache.weights_fingerprint(encoder.weights_dir if encoder is not None
                                        else musicnn_weights_dir(model))
    path = _cache_path(dataset, f"musicnn-{model}", settings, ids, data_dir, weights=weights)

    def compute():
        nonlocal encoder
        if encoder is None:
            encoder = MusicnnEncoder(model)
        embeddings = np.zeros((len(ids), 200), dtype=np.float32)
        probabilities = np.zeros((len(ids), 50), dtype=np.float32)
        chunk = 32  # clips per forward pass: batching is much faster than one clip at a time
        for start in progress(range(0, len(ids), chunk), total=-(-len(ids) // chunk),
                              desc=f"musicnn {model}"):
            rows = range(start, min(start + chunk, len(ids)))
            clips = [load_audio(dataset.clip_path(ids[row]), sr=MUSICNN_SR)
                     if waveforms is None else waveforms[row] for row in rows]
            embeddings[start: rows.stop], probabilities[start: rows.stop] = \
                encoder.embed_many(clips, sr=MUSICNN_SR if waveforms is None else sr)
        return {"embeddings": embeddings, "probabilities": probabilities}

    cached = cache.cached_arrays(path, compute, item_ids=ids, recompute=recompute,
                                 shapes={"embeddings": (len(ids), 200),
                                         "probabilities": (len(ids), 50)})
    return MusicnnFeatures(item_ids=ids, embeddings=cached["embeddings"],
                           probabilities=cached["probabilities"],
                           labels=musicnn_labels(model), model=model)


def dataset_handcrafted_features(dataset, *, sr: int = DEFAULT_SR, waveforms=None,
                                 data_dir: str | os.PathLike | None = None,
                                 recompute: bool = False) -> pd.DataFrame:
    """The :func:`handcrafted_features` table of every clip of a dataset, cached.

    Introduced in chapter 03. ``waveforms``, if given, are the decoded clips
    at ``sr`` aligned with ``dataset.items``; otherwise each clip is decoded.

    Returns
    -------
    DataFrame of shape (n_items, 64), index ``item_id``, named feature columns
    """
    ids = _item_ids(dataset)
    _check_waveforms(waveforms, ids)
    names = handcrafted_feature_names()
    settings = {"sr": int(sr), "columns": names}
    path = _cache_path(dataset, "handcrafted", settings, ids, data_dir)

    def compute():
        values = np.zeros((len(ids), len(names)), dtype=np.float64)
        for row, item_id in enumerate(progress(ids, total=len(ids), desc="audio features")):
            waveform = (load_audio(dataset.clip_path(item_id), sr=sr)
                        if waveforms is None else waveforms[row])
            values[row] = handcrafted_features(waveform, sr=sr).to_numpy()
        return values

    values = cache.cached_array(path, compute, item_ids=ids, shape=(len(ids), len(names)),
                                recompute=recompute)
    return pd.DataFrame(values, columns=names,
                        index=pd.Index(ids, name="item_id"))


def dataset_log_mels(dataset, *, n_frames: int = 184, n_mels: int = 96, sr: int = DEFAULT_SR,
                     waveforms=None, data_dir: str | os.PathLike | None = None,
                     recompute: bool = False) -> np.ndarray:
    """Fixed-size log-mel spectrograms of every clip of a dataset, cached.

    Introduced in chapter 03: the input of the CNN and Transformer audio
    encoders (and of the audio branch in chapter 08). Each clip's musicnn-style
    log-mel (:func:`log_mel_spectrogram`, 16 ms frames) is cropped or
    zero-padded to ``n_frames`` (184 frames = 2.9 s, a multiple of 4 for the
    Transformer's tokens) by :func:`log_mel_batch`.

    Returns
    -------
    ndarray of shape (n_items, n_frames, n_mels), float32
    """
    ids = _item_ids(dataset)
    _check_waveforms(waveforms, ids)
    settings = {"sr": int(sr), "n_frames": int(n_frames), "n_mels": int(n_mels),
                "n_fft": 512, "hop": 256, "log_mel": "float32-log10(1e4x+1)"}
    path = _cache_path(dataset, "log-mel", settings, ids, data_dir)

    def compute():
        values = np.zeros((len(ids), n_frames, n_mels), dtype=np.float32)
        for row, item_id in enumerate(progress(ids, total=len(ids), desc="log-mel")):
            waveform = (load_audio(dataset.clip_path(item_id), sr=sr)
                        if waveforms is None else waveforms[row])
            values[row] = log_mel_batch([waveform], sr=sr, n_frames=n_frames, n_mels=n_mels)[0]
        return values

    return cache.cached_array(path, compute, item_ids=ids, shape=(len(ids), n_frames, n_mels),
                              recompute=recompute)


def probe_r2(features, target, *, test_fraction: float = 0.3, seed: int = 0) -> float:
    """R² on held-out items of a ridge regression from features to a target.

    Introduced in chapter 03 (predicting the hidden energy, valence or timbre
    from audio representations). Items are split at random (``seed``) into a
    training and a test part; features are standardised on the training part;
    the ridge penalty is chosen by leave-one-out cross-validation on the
    training part only (``RidgeCV``). The same ``seed`` and number of items
    give the same split, so probes of different features are comparable.

    Parameters
    ----------
    features : array-like of shape (n_items, n_features)
    target : array-like of shape (n_items,)
    test_fraction : float in (0, 1)
    seed : int

    Returns
    -------
    float
        R² on the test items (1 is perfect, 0 is predicting the mean, can be negative).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ParameterError(
            f"features has shape {X.shape} and target {y.shape}; expected (n, d) and (n,)")
    test_fraction = check_number("test_fraction", test_fraction, low=0.0, high=1.0,
                                 low_inclusive=False, high_inclusive=False)
    if len(y) < 10:
        raise ParameterError(f"{len(y)} items are too few for a probe; need at least 10")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise DataError("features or target contain NaN or inf")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_fraction,
                                                        random_state=seed)
    model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15)))
    model.fit(X_train, y_train)
    return float(r2_score(y_test, model.predict(X_test)))
