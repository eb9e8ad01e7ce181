"""A Keras rebuild of musicnn (Pons & Serra, 2019) that loads the weights shipped in the wheel."""

from __future__ import annotations

import ast
import importlib.util
import os
from pathlib import Path
from typing import Literal

import numpy as np

from mmrec_lib._validation import check_choice, check_int
from mmrec_lib.audio._io import check_waveform, resample
from mmrec_lib.audio.features import log_mel_spectrogram
from mmrec_lib.errors import EnvironmentError, ModelError, ParameterError

__all__ = [
    "MusicnnEncoder",
    "check_patches",
    "build_musicnn",
    "load_musicnn_weights",
    "musicnn_checkpoint_tensors",
    "musicnn_labels",
    "musicnn_weights_dir",
    "musicnn_patches",
    "MUSICNN_MODELS",
    "MUSICNN_SR",
    "MUSICNN_N_FFT",
    "MUSICNN_HOP",
    "MUSICNN_N_MELS",
    "MUSICNN_PATCH_FRAMES",
    "MUSICNN_EMBEDDING_DIM",
]

#: The musicnn models this rebuild supports (the vgg variants have another architecture).
MUSICNN_MODELS = ("MTT_musicnn", "MSD_musicnn")
#: musicnn's front end (musicnn/configuration.py): 16 kHz, 512-point FFT, hop 256, 96 mels.
MUSICNN_SR = 16000
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256
MUSICNN_N_MELS = 96
#: A 3 s patch: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1 frames.
MUSICNN_PATCH_FRAMES = 187
#: Size of the penultimate layer (the embedding).
MUSICNN_EMBEDDING_DIM = 200
#: The models were trained on 3 s patches; clips shorter than this are refused.
_MIN_DURATION = 0.25
_BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default
_FRONTEND_FILTERS = (204, 204, 51, 51, 51)  # int(1.6 * 128) twice, int(1.6 * 32) three times


def musicnn_weights_dir(model: str = "MTT_musicnn") -> Path:
    """Folder of a model's TF1 checkpoint inside the installed ``musicnn`` wheel.

    Introduced in chapter 03. The package is located without importing it
    (musicnn's extractor module would switch TensorFlow to graph mode).

    Raises
    ------
    EnvironmentError
        ``musicnn`` is not installed or the model folder is missing.
    """
    _check_model(model)
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise EnvironmentError(
            "the musicnn package (which ships the pretrained weights) is not installed: "
            "pip install --no-deps musicnn==0.1.0")
    folder = Path(list(spec.submodule_search_locations)[0]) / model
    if not (folder / ".index").is_file():
        raise EnvironmentError(f"no checkpoint for {model} in {folder}")
    return folder


def _check_model(model: str) -> None:
    # Kept as a name: mmrec_lib.audio.dataset imports it.
    check_choice("model", model, MUSICNN_MODELS)


def musicnn_labels(model: str = "MTT_musicnn") -> list[str]:
    """The 50 tag names of a model, read from musicnn's ``configuration.py``.

    Introduced in chapter 03. MTT models use MagnaTagATune tags ("guitar",
    "classical", "slow", ...); MSD models use Last.fm tags of the Million Song
    Dataset ("rock", "pop", ...).
    """
    source = (musicnn_weights_dir(model).parent / "configuration.py").read_text()
    wanted = "MTT_LABELS" if model.startswith("MTT") else "MSD_LABELS"
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == wanted:
            return list(ast.literal_eval(node.value))
    raise EnvironmentError(f"{wanted} not found in musicnn/configuration.py")


def build_musicnn(*, num_classes: int = 50, num_filters_midend: int = 64,
                  num_units_backend: int = 200, n_mels: int = MUSICNN_N_MELS):
    """The musicnn architecture as a tf.keras functional model (no weights loaded).

    Introduced in chapter 03. Same layers, order and settings as
    ``musicnn/models.py::build_musicnn`` (layers are named after the TF1
    variables they take):

    - front end: batch norm of the log-mel; timbral convolutions 7 x 38 and
      7 x 67 (frames x mel bands, 204 filters, time zero-padded by 3) and
      temporal convolutions 128 x 1, 64 x 1, 32 x 1 (51 filters, "same"), each
      ReLU -> batch norm -> max over frequency; concatenated: 561 channels.
    - mid end: three 1-D convolutions of width 7 and 64 filters (ReLU, batch
      norm), the 2nd and 3rd residual; dense connection of all four outputs
      (753 channels).
    - back end: max and mean over time, interleaved (max_0, mean_0, max_1, ...),
      batch norm, dropout 0.5, dense 200 + ReLU, batch norm (the penultimate
      embedding), dropout 0.5, dense 50, sigmoid.

    Batch norms use epsilon 1e-3 and the stored moving statistics at inference.

    Parameters
    ----------
    num_classes, num_filters_midend, num_units_backend, n_mels : int

    Returns
    -------
    keras.Model
        Input of shape (batch, n_frames, n_mels) (any ``n_frames`` >= 1);
        outputs ``[probabilities (batch, num_classes), penultimate (batch,
        num_units_backend)]``.
    """
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    layers = tf.keras.layers

    def batch_norm(name):
        return layers.BatchNormalization(axis=-1, epsilon=_BN_EPSILON, momentum=0.99, name=name)

    log_mel = layers.Input(shape=(None, n_mels), name="log_mel")
    x = layers.Reshape((-1, n_mels, 1), name="expand")(log_mel)
    x = batch_norm("batch_normalization")(x)

    # Front end. Each block ends with a max over the whole frequency axis.
    padded = layers.ZeroPadding2D(((3, 3), (0, 0)), name="pad_timbral")(x)
    branches = []
    specs = [  # (input, kernel, padding) per block, in TF1 creation order
        (padded, (7, int(0.4 * n_mels)), "valid"),
        (padded, (7, int(0.7 * n_mels)), "valid"),
        (x, (128, 1), "same"),
        (x, (64, 1), "same"),
        (x, (32, 1), "same"),
    ]
    for index, ((inputs, kernel, padding), filters) in enumerate(zip(specs, _FRONTEND_FILTERS,
                                                                     strict=True)):
        conv_name = "conv2d" if index == 0 else f"conv2d_{index}"
        branch = layers.Conv2D(filters, kernel, padding=padding, activation="relu",
                               name=conv_name)(inputs)
        branch = batch_norm(f"batch_normalization_{index + 1}")(branch)
        width = n_mels - kernel[1] + 1 if padding == "valid" else n_mels
        branch = layers.MaxPooling2D((1, width), name=f"freq_max_{index}")(branch)
        branches.append(layers.Reshape((-1, filters), name=f"squeeze_{index}")(branch))
    frontend = layers.Concatenate(axis=-1, name="frontend")(branches)

    # Mid end. A TF1 conv2d whose kernel spans all channels equals a Conv1D.
    features = [frontend]
    previous = frontend
    for index in range(3):
        y = layers.ZeroPadding1D(3, name=f"pad_midend_{index}")(previous)
        y = layers.Conv1D(num_filters_midend, 7, padding="valid", activation="relu",
                          name=f"conv2d_{5 + index}")(y)
        y = batch_norm(f"batch_normalization_{6 + index}")(y)
        if index > 0:
            y = layers.Add(name=f"residual_{index}")([y, previous])
        features.append(y)
        previous = y
    midend = layers.Concatenate(axis=-1, name="midend")(features)
    channels = int(sum(_FRONTEND_FILTERS) + 3 * num_filters_midend)

    # Back end: TF1 concatenates max and mean on a trailing axis, then flattens,
    # so the two statistics of each channel sit next to each other.
    max_pool = layers.Reshape((channels, 1), name="max_col")(
        layers.GlobalMaxPooling1D(name="max_pool")(midend))
    mean_pool = layers.Reshape((channels, 1), name="mean_col")(
        layers.GlobalAveragePooling1D(name="mean_pool")(midend))
    pooled = layers.Flatten(name="flatten")(
        layers.Concatenate(axis=-1, name="max_mean")([max_pool, mean_pool]))
    pooled = batch_norm("batch_normalization_9")(pooled)
    pooled = layers.Dropout(0.5, name="dropout")(pooled)
    dense = layers.Dense(num_units_backend, activation="relu", name="dense")(pooled)
    penultimate = batch_norm("batch_normalization_10")(dense)
    logits = layers.Dense(num_classes, name="dense_1")(
        layers.Dropout(0.5, name="dropout_1")(penultimate))
    probabilities = layers.Activation("sigmoid", name="probabilities")(logits)
    return tf.keras.Model(log_mel, [probabilities, penultimate], name="musicnn")


def musicnn_checkpoint_tensors(checkpoint_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every non-optimiser variable of a musicnn TF1 checkpoint, as NumPy arrays.

    Introduced in chapter 03 (:func:`load_musicnn_weights`); chapter 10 writes the ONNX
    graph from it. Reading the TF1 checkpoint needs TensorFlow; the served ONNX path reads
    it once, when the file is exported into the cache, never when it is served.
    """
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    prefix = str(checkpoint_dir).rstrip("/") + "/"
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    except Exception as error:
        raise ModelError(f"cannot read the musicnn checkpoint {prefix}: {error}") from error
    return {name: np.asarray(reader.get_tensor(name))
            for name in reader.get_variable_to_shape_map()
            if "Adam" not in name and name not in ("beta1_power", "beta2_power")}


def load_musicnn_weights(model, checkpoint_dir: str | os.PathLike) -> list[str]:
    """Copy the variables of a musicnn TF1 checkpoint into a :func:`build_musicnn` model.

    Introduced in chapter 03. Every weight of the Keras model must be found in
    the checkpoint with the same shape (a Conv1D takes the TF1 conv2d kernel
    without its singleton axis), and every non-optimiser variable of the
    checkpoint must be used: anything else raises, nothing is skipped silently.
    Eager mode is never touched (the checkpoint is read with
    ``tf.compat.v1.train.NewCheckpointReader``).

    Returns
    -------
    list of str
        The checkpoint variables that were loaded.

    Raises
    ------
    ModelError
        Unreadable checkpoint, missing, unused or mis-shaped variables.
    """
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    prefix = str(checkpoint_dir).rstrip("/") + "/"
    tensors = musicnn_checkpoint_tensors(checkpoint_dir)
    used: list[str] = []
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            names = ["gamma", "beta", "moving_mean", "moving_variance"]
        elif isinstance(layer, tf.keras.layers.Conv2D | tf.keras.layers.Conv1D
                        | tf.keras.layers.Dense):
            names = ["kernel", "bias"]
        else:
            continue
        values = []
        for name, target in zip(names, layer.get_weights(), strict=True):
            key = f"{layer.name}/{name}"
            if key not in tensors:
                raise ModelError(f"variable {key} is missing from the checkpoint {prefix}")
            value = tensors[key]
            if isinstance(layer, tf.keras.layers.Conv1D) and name == "kernel" and value.ndim == 4:
                value = value[:, :, 0, :]
            if value.shape != target.shape:
                raise ModelError(
                    f"variable {key} has shape {value.shape} in the checkpoint but the "
                    f"model expects {target.shape}")
            values.append(value)
            used.append(key)
        layer.set_weights(values)
    unused = sorted(set(tensors) - set(used))
    if unused:
        raise ModelError(f"checkpoint variables not used by the rebuild: {unused}")
    return used


def musicnn_patches(log_mel: np.ndarray, *, patch_frames: int = MUSICNN_PATCH_FRAMES
                    ) -> np.ndarray:
    """Cut a log-mel spectrogram into musicnn's non-overlapping 3 s patches.

    Introduced in chapter 03. As in musicnn's ``batch_data``, patches start at
    frames 0, 187, 374, ... and a trailing remainder shorter than a patch is
    dropped. A clip shorter than one patch becomes one shorter patch (the
    network pools over time, so it accepts any length).

    Returns
    -------
    ndarray of shape (n_patches, patch_frames or n_frames, n_mels), float32
    """
    n_frames = log_mel.shape[0]
    if n_frames < patch_frames:
        return log_mel[None].astype(np.float32)
    starts = range(0, n_frames - patch_frames + 1, patch_frames)
    return np.stack([log_mel[start: start + patch_frames] for start in starts]).astype(np.float32)


class MusicnnEncoder:
    """Pretrained musicnn audio tagger and embedder, rebuilt in Keras.

    Introduced in chapter 03. Loads the MagnaTagATune (``"MTT_musicnn"``) or
    Million Song Dataset (``"MSD_musicnn"``) weights shipped in the ``musicnn``
    wheel (ISC licence). A clip is resampled to 16 kHz, turned into a float32
    log-mel spectrogram, cut into 3 s patches; the network gives 50 tag
    probabilities and a 200-d penultimate vector per patch, and the clip gets
    their mean.

    Parameters
    ----------
    model : {"MTT_musicnn", "MSD_musicnn"}
    weights_dir : path or None
        A checkpoint folder; default: the one inside the musicnn wheel.
    batch_size : int
        Patches per forward pass. The front end's feature maps take about
        35 MB per patch, so 8 patches keep memory near 300 MB with most of
        the speed of larger batches.

    Examples
    --------
    >>> encoder = MusicnnEncoder()                           # doctest: +SKIP
    >>> encoder.embed(waveform, sr=16000).shape              # doctest: +SKIP
    (200,)
    >>> encoder.tags(waveform, sr=16000)[:2]                 # doctest: +SKIP
    [('techno', 0.61), ('electronic', 0.55)]
    """

    def __init__(self, model: Literal["MTT_musicnn", "MSD_musicnn"] = "MTT_musicnn", *,
                 weights_dir: str | os.PathLike | None = None, batch_size: int = 8):
        _check_model(model)
        batch_size = check_int("batch_size", batch_size)
        self.model = model
        self.batch_size = batch_size
        self.weights_dir = Path(weights_dir) if weights_dir is not None else musicnn_weights_dir(
            model)
        self.labels = musicnn_labels(model)
        self.network = build_musicnn(num_classes=len(self.labels))
        load_musicnn_weights(self.network, self.weights_dir)
        from mmrec_lib._env import import_tensorflow

        tf = import_tensorflow()
        # A traced function runs the ~60 layers as one graph call (eager mode
        # itself stays on); the signature accepts any batch size and length.
        self._forward = tf.function(
            lambda patches: self.network(patches, training=False),
            input_signature=[tf.TensorSpec((None, None, MUSICNN_N_MELS), tf.float32)],
            reduce_retracing=True)

    @property
    def settings(self) -> dict:
        """What determines the outputs (used as a cache key)."""
        return {"model": self.model, "sr": MUSICNN_SR, "n_fft": MUSICNN_N_FFT,
                "hop": MUSICNN_HOP, "n_mels": MUSICNN_N_MELS,
                "patch_frames": MUSICNN_PATCH_FRAMES, "log_mel": "float32-log10(1e4x+1)",
                "pooling": "mean"}

    def __repr__(self) -> str:
        return f"MusicnnEncoder(model={self.model!r})"

    def log_mel(self, waveform, *, sr: int) -> np.ndarray:
        """The float32 log-mel the network sees, shape (n_frames, 96).

        Introduced in chapter 03.
        """
        waveform, sr = check_waveform(waveform, sr, min_duration=_MIN_DURATION)
        waveform = resample(waveform, orig_sr=sr, target_sr=MUSICNN_SR)
        return log_mel_spectrogram(waveform, sr=MUSICNN_SR, n_fft=MUSICNN_N_FFT,
                                   hop_length=MUSICNN_HOP, n_mels=MUSICNN_N_MELS)

    def predict_patches(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on log-mel patches.

        Introduced in chapter 03.

        Parameters
        ----------
        patches : ndarray of shape (n_patches, n_frames, 96)

        Returns
        -------
        probabilities : ndarray of shape (n_patches, 50)
        penultimate : ndarray of shape (n_patches, 200)
        """
        patches = check_patches(patches)
        probabilities, penultimate = [], []
        for start in range(0, len(patches), self.batch_size):
            batch = patches[start: start + self.batch_size]
            probs, emb = self._forward(batch)
            probabilities.append(probs.numpy())
            penultimate.append(emb.numpy())
        probabilities = np.concatenate(probabilities).astype(np.float32)
        penultimate = np.concatenate(penultimate).astype(np.float32)
        if not (np.isfinite(probabilities).all() and np.isfinite(penultimate).all()):
            raise ModelError("musicnn produced non-finite outputs")
        return probabilities, penultimate

    def taggram(self, waveform, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-patch tag probabilities and embeddings of one clip.

        Introduced in chapter 03.

        Returns
        -------
        probabilities : ndarray of shape (n_patches, 50)
        penultimate : ndarray of shape (n_patches, 200)
        """
        return self.predict_patches(musicnn_patches(self.log_mel(waveform, sr=sr)))

    def embed(self, waveform, *, sr: int) -> np.ndarray:
        """The 200-d clip embedding: the penultimate layer averaged over 3 s patches.

        Introduced in chapter 03.

        Parameters
        ----------
        waveform : array-like of shape (n_samples,)
            Mono, finite, at least 0.25 s long.
        sr : int
            Its sample rate (resampled to 16 kHz if different).

        Returns
        -------
        ndarray of shape (200,), float32

        Raises
        ------
        ParameterError
            Not 1-D, or an implausible ``sr``.
        DataError
            NaN/inf samples or a clip shorter than 0.25 s.
        """
        return self.taggram(waveform, sr=sr)[1].mean(axis=0)

    def tag_probabilities(self, waveform, *, sr: int) -> np.ndarray:
        """The 50 tag probabilities of a clip (mean over patches), in label order.

        Introduced in chapter 03.

        Returns
        -------
        ndarray of shape (50,), float32
        """
        return self.taggram(waveform, sr=sr)[0].mean(axis=0)

    def tags(self, waveform, *, sr: int, top_k: int | None = None) -> list[tuple[str, float]]:
        """(tag, probability) pairs, most probable first.

        Introduced in chapter 03.

        Parameters
        ----------
        waveform : array-like of shape (n_samples,)
        sr : int
        top_k : int or None
            Keep only the ``top_k`` most probable tags (default: all 50).

        Returns
        -------
        list of (str, float)
        """
        if top_k is not None:
            top_k = check_int("top_k", top_k, high=len(self.labels))
        probabilities = self.tag_probabilities(waveform, sr=sr)
        order = np.argsort(-probabilities, kind="stable")[:top_k]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def embed_many(self, waveforms, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings and tag probabilities of several clips.

        Introduced in chapter 03.

        Returns
        -------
        embeddings : ndarray of shape (n_clips, 200)
        probabilities : ndarray of shape (n_clips, 50)
        """
        spectrograms = [musicnn_patches(self.log_mel(waveform, sr=sr)) for waveform in waveforms]
        if not spectrograms:
            raise ParameterError("waveforms is empty; expected at least one clip")
        embeddings = np.zeros((len(spectrograms), MUSICNN_EMBEDDING_DIM), dtype=np.float32)
        probabilities = np.zeros((len(spectrograms), len(self.labels)), dtype=np.float32)
        # Patches of the same length (all full 3 s patches, or the short clips
        # of one length) go through the network together.
        for length in sorted({patches.shape[1] for patches in spectrograms}):
            rows = [row for row, patches in enumerate(spectrograms)
                    if patches.shape[1] == length]
            counts = [len(spectrograms[row]) for row in rows]
            probs, emb = self.predict_patches(np.concatenate([spectrograms[r] for r in rows]))
            bounds = np.cumsum([0, *counts])
            for row, start, stop in zip(rows, bounds[:-1], bounds[1:], strict=True):
                embeddings[row] = emb[start:stop].mean(axis=0)
                probabilities[row] = probs[start:stop].mean(axis=0)
        return embeddings, probabilities


def check_patches(patches) -> np.ndarray:
    """``patches`` as float32 (n_patches, n_frames, 96) log-mels, or a ParameterError naming why not.

    Shared by the Keras (:class:`MusicnnEncoder`) and ONNX
    (:class:`mmrec_lib.inference.ServedMusicnnEncoder`) encoders.
    """
    patches = np.asarray(patches, dtype=np.float32)
    if patches.ndim != 3 or patches.shape[2] != MUSICNN_N_MELS or patches.shape[1] < 1:
        raise ParameterError(
            f"patches has shape {patches.shape}; expected (n_patches, n_frames, "
            f"{MUSICNN_N_MELS})")
    if not np.isfinite(patches).all():
        raise ParameterError("patches contain NaN or inf values")
    return patches
