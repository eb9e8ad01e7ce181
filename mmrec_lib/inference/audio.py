"""The served audio path: musicnn on ONNX Runtime, exported once into the cache, no TensorFlow."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np

from mmrec_lib._validation import check_int
from mmrec_lib.audio.musicnn import (
    MusicnnEncoder,
    _check_model,
    check_patches,
    musicnn_labels,
    musicnn_weights_dir,
)
from mmrec_lib.errors import ModelError
from mmrec_lib.inference._onnx import cached_session
from mmrec_lib.utils import atomic_path, data_dir

__all__ = ["MUSICNN_EXPORT_VERSION", "export_musicnn", "ServedMusicnnEncoder"]

#: Part of the cache key of an exported musicnn: bump it when the export changes.
MUSICNN_EXPORT_VERSION = 1


def _export_path(model: str, weights_dir: Path, folder: Path | None) -> Path:
    from mmrec_lib.cache import weights_fingerprint

    # Keyed like the feature cache: the code version, the model and the weights' digest.
    payload = {"version": MUSICNN_EXPORT_VERSION, "model": model,
               "weights": weights_fingerprint(weights_dir)}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return data_dir(folder) / "models" / "onnx" / f"{model}-{key}.onnx"


def export_musicnn(model: Literal["MTT_musicnn", "MSD_musicnn"] = "MTT_musicnn", *,
                   weights_dir: str | os.PathLike | None = None,
                   data_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Export musicnn (tags and 200-d penultimate layer) to an ONNX file in the cache.

    Introduced in chapter 10. The file ``<cache>/models/onnx/<model>-<key>.onnx`` is
    written atomically and reused; its key covers :data:`MUSICNN_EXPORT_VERSION`, the
    model and the sha256 of the checkpoint folder. Exporting reads the TF1 checkpoint,
    which imports TensorFlow once; loading the exported file never does.

    Returns
    -------
    Path
        The ``.onnx`` file.
    """
    _check_model(model)
    source = Path(weights_dir) if weights_dir is not None else musicnn_weights_dir(model)
    folder = None if data_dir is None else Path(data_dir)
    target = _export_path(model, source, folder)
    if target.is_file() and not force:
        return target
    import onnx

    from mmrec_lib.inference._musicnn_onnx import musicnn_checkpoint_tensors, musicnn_onnx_model

    onnx_model = musicnn_onnx_model(musicnn_checkpoint_tensors(source))
    with atomic_path(target) as tmp:
        onnx.save(onnx_model, str(tmp))
    return target


class ServedMusicnnEncoder(MusicnnEncoder):
    """musicnn on ONNX Runtime: the served audio path, same API as :class:`MusicnnEncoder`.

    Introduced in chapter 10. Same log-mel front end, same 3 s patches and the same
    network (the ONNX graph built from the checkpoint by :func:`export_musicnn`;
    outputs equal the Keras rebuild's to ~1e-5), so :meth:`embed`, :meth:`embed_many`,
    :meth:`tags` and :meth:`taggram` behave alike. A new process needs ONNX Runtime
    and the exported file, not TensorFlow (except once, to export into an empty cache).

    Parameters
    ----------
    model : {"MTT_musicnn", "MSD_musicnn"}
    weights_dir : path or None
        A checkpoint folder; default: the one inside the musicnn wheel.
    batch_size : int
        Patches per forward pass.
    num_threads : int, optional
        ONNX Runtime's intra-op threads; None uses every core.
    data_dir : path, optional
        Cache folder of the exported model.

    Examples
    --------
    >>> encoder = ServedMusicnnEncoder()                     # doctest: +SKIP
    >>> encoder.embed(waveform, sr=16000).shape              # doctest: +SKIP
    (200,)
    """

    def __init__(self, model: Literal["MTT_musicnn", "MSD_musicnn"] = "MTT_musicnn", *,
                 weights_dir: str | os.PathLike | None = None, batch_size: int = 8,
                 num_threads: int | None = None, data_dir: str | os.PathLike | None = None):
        # MusicnnEncoder.__init__ builds the Keras network: deliberately not called.
        _check_model(model)
        self.model = model
        self.batch_size = check_int("batch_size", batch_size)
        self.num_threads = None if num_threads is None else check_int("num_threads",
                                                                      num_threads)
        self.weights_dir = Path(weights_dir) if weights_dir is not None else musicnn_weights_dir(
            model)
        self.labels = musicnn_labels(model)
        self.data_dir = data_dir
        self.path = export_musicnn(model, weights_dir=self.weights_dir, data_dir=data_dir)
        self._session = self._load()

    def __repr__(self) -> str:
        return f"ServedMusicnnEncoder(model={self.model!r})"

    def _load(self):
        return cached_session(self.path, self.num_threads or (os.cpu_count() or 1),
                              what="musicnn")

    @property
    def settings(self) -> dict:
        """What determines the outputs (used as a cache key): those of the Keras encoder."""
        return super().settings

    def predict_patches(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on log-mel patches (n_patches, n_frames, 96).

        Introduced in chapter 10.

        Returns
        -------
        probabilities : ndarray of shape (n_patches, 50)
        penultimate : ndarray of shape (n_patches, 200)
        """
        patches = check_patches(patches)
        probabilities, penultimate = [], []
        for start in range(0, len(patches), self.batch_size):
            probs, emb = self._session.run(
                ["probabilities", "penultimate"],
                {"log_mel": np.ascontiguousarray(patches[start: start + self.batch_size])})
            probabilities.append(probs)
            penultimate.append(emb)
        probabilities = np.concatenate(probabilities).astype(np.float32)
        penultimate = np.concatenate(penultimate).astype(np.float32)
        if not (np.isfinite(probabilities).all() and np.isfinite(penultimate).all()):
            raise ModelError("musicnn produced non-finite outputs")
        return probabilities, penultimate
