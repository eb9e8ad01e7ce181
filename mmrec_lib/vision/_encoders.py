"""Keras CNN image and video encoders, their cached training, the optional MobileNetV2 backbone."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

from mmrec_lib._validation import check_choice, check_int
from mmrec_lib.errors import DataError, ModelError, ParameterError

__all__ = [
    "build_image_encoder",
    "build_video_encoder",
    "build_category_classifier",
    "pretrain_video_encoder",
    "freeze",
    "train_or_load",
    "encode_clips",
    "mobilenet_v2_weights_path",
    "mobilenet_v2_backbone",
]

_MOBILENET_ROWS = (96, 128, 160, 192, 224)
_MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
_MOBILENET_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
                  "{name}")


def _keras():
    from mmrec_lib._env import import_tensorflow

    return import_tensorflow().keras


def build_image_encoder(*, input_shape: tuple[int, int, int] = (64, 64, 3),
                        filters: tuple[int, ...] = (16, 32, 64), embedding_dim: int = 64,
                        name: str = "image_encoder"):
    """A small CNN: frames -> embedding vectors.

    Introduced in chapter 04. Blocks of 3x3 convolution + ReLU + 2x2 max
    pooling, global average pooling, then a dense layer. Inputs are
    normalised frames (e.g. :class:`Normalizer` output).

    Parameters
    ----------
    input_shape : (height, width, 3)
    filters : tuple of int
        Channels of each convolutional block.
    embedding_dim : int

    Returns
    -------
    keras.Model mapping (n, height, width, 3) -> (n, embedding_dim)
    """
    if len(input_shape) != 3 or input_shape[-1] != 3 or min(input_shape[:2]) < 2 ** len(filters):
        raise ParameterError(f"input_shape={input_shape!r} must be (height, width, 3) with sides "
                             f">= {2 ** len(filters)} for {len(filters)} pooling blocks")
    if not filters or any(int(f) < 1 for f in filters):
        raise ParameterError(f"filters={filters!r} must be a non-empty tuple of positive ints")
    embedding_dim = check_int("embedding_dim", embedding_dim)
    keras = _keras()
    inputs = keras.Input(input_shape, name="frame")
    x = inputs
    for block, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(int(width), 3, padding="same", activation="relu",
                                name=f"conv{block}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(embedding_dim, activation="relu", name="embedding")(x)
    return keras.Model(inputs, outputs, name=name)


def build_video_encoder(image_encoder, *, num_frames: int,
                        pooling: Literal["mean", "max", "conv"] = "mean",
                        name: str = "video_encoder"):
    """Apply ``image_encoder`` to every frame (``TimeDistributed``), then pool over time.

    Introduced in chapter 04. ``"mean"``/``"max"`` pool the frame embeddings;
    ``"conv"`` first runs a kernel-3 temporal convolution (sees motion and
    order), then mean-pools.

    Returns
    -------
    keras.Model mapping (n, num_frames, height, width, 3) -> (n, embedding_dim)
    """
    num_frames = check_int("num_frames", num_frames)
    check_choice("pooling", pooling, ("mean", "max", "conv"))
    keras = _keras()
    frame_shape = tuple(image_encoder.input_shape[1:])
    dim = int(image_encoder.output_shape[-1])
    inputs = keras.Input((num_frames, *frame_shape), name="clip")
    x = keras.layers.TimeDistributed(image_encoder, name="per_frame")(inputs)
    if pooling == "conv":
        x = keras.layers.Conv1D(dim, 3, padding="same", activation="relu", name="temporal_conv")(x)
    if pooling == "max":
        outputs = keras.layers.GlobalMaxPooling1D(name="time_pool")(x)
    else:
        outputs = keras.layers.GlobalAveragePooling1D(name="time_pool")(x)
    return keras.Model(inputs, outputs, name=name)


def build_category_classifier(encoder, num_classes: int, *, dropout: float = 0.2):
    """``encoder`` + dropout + a softmax layer: the pre-training task (predict the category).

    Introduced in chapter 04.
    """
    num_classes = check_int("num_classes", num_classes, low=2)
    keras = _keras()
    inputs = keras.Input(tuple(encoder.input_shape[1:]), name="input")
    x = encoder(inputs)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="category")(x)
    return keras.Model(inputs, outputs, name=f"{encoder.name}_classifier")


def pretrain_video_encoder(clips, labels, *, num_classes: int, validation_data=None,
                           epochs: int = 10, batch_size: int = 16, learning_rate: float = 2e-3,
                           embedding_dim: int = 32, filters: tuple[int, ...] = (16, 32, 32),
                           pooling: Literal["mean", "max", "conv"] = "mean", seed: int = 0,
                           weights_path=None):
    """Train a video encoder by predicting the category, then return it frozen.

    Introduced in chapter 04; chapter 08 uses the frozen encoder as the visual
    branch of the full model.

    Parameters
    ----------
    clips : float array of shape (n_clips, num_frames, height, width, 3)
        Normalised frames.
    labels : int array of shape (n_clips,)
    validation_data : (clips, labels), optional
    weights_path : path, optional
        Cache of the trained weights (see :func:`train_or_load`), e.g.
        ``vision.features_cache_path(dataset, "video-encoder", settings, suffix=".h5")``.

    Returns
    -------
    (video_encoder, classifier, history) : the frozen encoder, the classifier
    it was trained in, and the ``History.history`` dict.
    """
    from mmrec_lib._env import import_tensorflow

    clips = np.asarray(clips)
    labels = np.asarray(labels)
    if clips.ndim != 5 or clips.shape[-1] != 3:
        raise DataError(f"clips of shape {clips.shape}: expected (n, frames, height, width, 3)")
    if labels.shape != (len(clips),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels of shape {labels.shape} and dtype {labels.dtype}: expected "
                        f"({len(clips)},) ints")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(f"labels must be in [0, {num_classes - 1}]")
    tf = import_tensorflow()
    tf.keras.utils.set_random_seed(seed)
    image_encoder = build_image_encoder(input_shape=clips.shape[2:], filters=filters,
                                        embedding_dim=embedding_dim)
    video_encoder = build_video_encoder(image_encoder, num_frames=clips.shape[1], pooling=pooling)
    classifier = build_category_classifier(video_encoder, num_classes)
    classifier.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    def train():
        return classifier.fit(clips.astype(np.float32), labels, validation_data=validation_data,
                              epochs=epochs, batch_size=batch_size, verbose=0).history

    history = train_or_load(classifier, weights_path, train)
    freeze(video_encoder)
    return video_encoder, classifier, history


def train_or_load(model, weights_path, train) -> dict:
    """Load ``model``'s weights from ``weights_path`` if cached, else ``train()`` and cache them.

    Introduced in chapter 04. ``train`` fits ``model`` and returns its
    ``History.history`` dict, which is stored next to the weights (``.json``,
    with a digest of the model's architecture) and returned on later calls, so
    a re-run shows the same curves. A cache made by a different architecture is
    ignored and overwritten; an unreadable one (truncated, empty, foreign
    bytes) is reported with a warning naming the file, then retrained from the
    model's initial weights and overwritten. Both files are written
    atomically; without ``weights_path`` this is just ``train()``.
    """
    from mmrec_lib.utils import atomic_path

    if weights_path is None:
        return train()
    weights_path = Path(weights_path)
    if weights_path.suffix != ".h5":
        raise ParameterError(f"weights_path={str(weights_path)!r} must end in .h5")
    history_path = weights_path.with_suffix(".json")
    architecture = hashlib.sha256(model.to_json().encode()).hexdigest()[:16]
    if weights_path.is_file() and history_path.is_file():
        try:
            stored = json.loads(history_path.read_text())
            history = stored["history"] if stored.get("architecture") == architecture else None
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as error:
            warnings.warn(f"ignoring the cache file {history_path}: it cannot be read "
                          f"({type(error).__name__}: {error}); retraining", RuntimeWarning,
                          stacklevel=2)
            history = None
        if history is not None:
            initial = model.get_weights()
            try:
                model.load_weights(str(weights_path))
                return history
            except Exception as error:  # noqa: BLE001 - h5py raises OSError, ValueError, KeyError...
                # A half-loaded model must not be trained further: start from its initial weights.
                model.set_weights(initial)
                warnings.warn(f"ignoring the cache file {weights_path}: its weights cannot be "
                              f"loaded ({type(error).__name__}: {error}); retraining",
                              RuntimeWarning, stacklevel=2)
    history = {key: [float(v) for v in values] for key, values in train().items()}
    with atomic_path(weights_path) as tmp:
        model.save_weights(str(tmp), save_format="h5")
    with atomic_path(history_path) as tmp:
        tmp.write_text(json.dumps({"architecture": architecture, "history": history}))
    return history


def freeze(model):
    """Make every layer of ``model`` non-trainable (in place); return it.

    Introduced in chapter 04.
    """
    model.trainable = False
    for layer in model.layers:
        layer.trainable = False
    return model


def encode_clips(encoder, clips, *, batch_size: int = 32) -> np.ndarray:
    """Embeddings of many clips (or images) with a Keras encoder.

    Introduced in chapter 04.

    Returns
    -------
    ndarray of shape (n, embedding_dim), float32
    """
    clips = np.asarray(clips, dtype=np.float32)
    expected = tuple(encoder.input_shape[1:])
    if clips.shape[1:] != expected:
        raise DataError(f"inputs of shape {clips.shape[1:]} per example; the encoder expects "
                        f"{expected}")
    return encoder.predict(clips, batch_size=batch_size, verbose=0).astype(np.float32)


# --------------------------------------------------------------------- MobileNetV2


def _keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def mobilenet_v2_weights_path(*, rows: int = 96, alpha: float = 1.0) -> Path:
    """Where Keras caches the ImageNet MobileNetV2 weights (no top) for this size.

    Introduced in chapter 04.
    """
    check_choice("rows", rows, _MOBILENET_ROWS)
    check_choice("alpha", alpha, _MOBILENET_ALPHAS)
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}_no_top.h5"
    return _keras_home() / "models" / name


def mobilenet_v2_backbone(*, rows: int = 96, alpha: float = 1.0, allow_download: bool = False):
    """ImageNet MobileNetV2 without its top, with global average pooling (1280-d for alpha=1).

    Introduced in chapter 04. Inputs are RGB in [-1, 1] (``Normalizer(method="symmetric")``).
    The weights must be in the Keras cache; with ``allow_download=True``
    Keras may fetch them. Random weights are never used.

    Raises
    ------
    ModelError
        When the weights are not cached (and not downloadable), naming the
        file, its URL and the command that fetches it.
    """
    path = mobilenet_v2_weights_path(rows=rows, alpha=alpha)
    keras = _keras()
    if not path.is_file():
        url = _MOBILENET_URL.format(name=path.name)
        if not allow_download:
            raise ModelError(
                f"the ImageNet weights of MobileNetV2 (alpha={alpha}, {rows}x{rows}) are not in the "
                f"Keras cache: expected {path}. With network access, run once: python -c \"import "
                f"mmrec_lib; from mmrec_lib import vision; vision.mobilenet_v2_backbone(rows={rows}, "
                f"alpha={alpha}, allow_download=True)\", or download {url} to that path. "
                "(mmrec never falls back to random weights.)")
        try:
            return keras.applications.MobileNetV2(input_shape=(rows, rows, 3), alpha=alpha,
                                                  include_top=False, weights="imagenet",
                                                  pooling="avg")
        except Exception as error:  # network errors come in many types
            raise ModelError(f"could not download the MobileNetV2 weights from {url} to {path}: "
                             f"{error}") from error
    try:
        return keras.applications.MobileNetV2(input_shape=(rows, rows, 3), alpha=alpha,
                                              include_top=False, weights=str(path), pooling="avg")
    except Exception as error:
        raise ModelError(f"{path}: could not load the MobileNetV2 weights ({error}); delete the "
                         "file and fetch it again") from error
