"""Encode one new clip exactly as :func:`mmrec_lib.features.item_features` encodes the catalogue.

A clip uploaded to the server gets the same modality vectors the model was trained on: the
MiniLM vector of its text (title, description, tags), the musicnn embedding or the
standardised hand-made features of its audio, and the standardised hand-made features of
its frames. Standardisation uses the catalogue's mean and standard deviation, the ones
``item_features`` used, so a catalogue clip re-encoded here gets its own row back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_subset
from mmrec_lib.errors import DataError, ParameterError

__all__ = ["ClipEncoder", "init_process", "encode_in_process"]

logger = logging.getLogger(__name__)

#: Modalities a live clip can be encoded in, and the settings of each that are supported.
MODALITIES = ("text", "audio", "visual")


def _standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((values - mean) / np.maximum(std, 1e-8)).astype(np.float32)


class ClipEncoder:
    """Turns an mp4 file plus its title into ``{modality: vector}``, like ``item_features``.

    Introduced in chapter 10 (real time). ``fit(dataset)`` reads the catalogue's feature
    statistics (cached by the earlier chapters); :meth:`encode` then encodes one clip.

    Parameters
    ----------
    modalities : sequence of {"text", "audio", "visual"}
    audio : {"musicnn", "handcrafted"}
    visual : {"handcrafted"}
        The frame CNN of ``visual="cnn"`` is trained per dataset and is not served yet.
    runtime : {"keras", "onnx"}
        "onnx" encodes text and audio with the ONNX Runtime exports of
        :mod:`mmrec_lib.inference` (same vectors within 1e-5, a new process ready in
        seconds, no TensorFlow); "keras" (default) with the TensorFlow encoders.
    data_dir : path, optional
        The feature cache (default ``$MMREC_DATA_DIR``).
    """

    def __init__(self, *, modalities: Sequence[str] = MODALITIES, audio: str = "musicnn",
                 visual: str = "handcrafted", runtime: str = "keras",
                 data_dir: str | os.PathLike | None = None):
        self.modalities = check_subset("modalities", modalities, MODALITIES)
        self.runtime = check_choice("runtime", runtime, ("keras", "onnx"))
        self.audio = check_choice("audio", audio, ("musicnn", "handcrafted"))
        self.visual = check_choice("visual", visual, ("handcrafted",))
        self.data_dir = data_dir

    def settings(self) -> dict:
        """The options to pass to ``item_features`` for a catalogue encoded the same way."""
        return {"modalities": list(self.modalities), "audio": self.audio, "visual": self.visual}

    def fit(self, dataset) -> ClipEncoder:
        """Read the catalogue statistics that standardise the hand-made features."""
        self.stats_ = {}
        if "audio" in self.modalities and self.audio == "handcrafted":
            from mmrec_lib.audio import dataset_handcrafted_features

            table = dataset_handcrafted_features(dataset, data_dir=self.data_dir)
            values = table.to_numpy(np.float64)
            self.stats_["audio"] = (values.mean(axis=0), values.std(axis=0))
        if "visual" in self.modalities:
            from mmrec_lib import vision

            clips = vision.load_clip_frames(dataset, num_frames=vision.CLIP_FRAMES,
                                            size=vision.CLIP_SIDE, data_dir=self.data_dir)
            values = vision.clip_feature_table(clips).to_numpy(np.float64)
            self.stats_["visual"] = (values.mean(axis=0), values.std(axis=0))
        self._text_encoder = None
        self._musicnn = None
        return self

    def __getstate__(self) -> dict:
        # Sent to the encoding process: settings and statistics, not the loaded networks.
        return {**self.__dict__, "_text_encoder": None, "_musicnn": None}

    def warm_up(self, clip_path: str | os.PathLike | None = None) -> None:
        """Load the networks (and encode ``clip_path`` once), so no upload pays for it."""
        if clip_path is not None:
            self.encode(clip_path, title="warm up")
            return
        if "text" in self.modalities:
            self._text(["warm up"])
        if "audio" in self.modalities and self.audio == "musicnn":
            self._musicnn_encoder()

    def _text(self, texts: list[str]) -> np.ndarray:
        if self._text_encoder is None:
            from mmrec_lib.text.features import ITEM_MAX_LENGTH

            if getattr(self, "runtime", "keras") == "onnx":
                from mmrec_lib.inference import ServedTextEncoder

                self._text_encoder = ServedTextEncoder(max_length=ITEM_MAX_LENGTH)
            else:
                from mmrec_lib.text import BertTextEncoder

                self._text_encoder = BertTextEncoder(max_length=ITEM_MAX_LENGTH)
        return self._text_encoder.encode(texts)

    def _musicnn_encoder(self):
        if self._musicnn is None:
            if getattr(self, "runtime", "keras") == "onnx":
                from mmrec_lib.inference import ServedMusicnnEncoder as MusicnnEncoder
            else:
                from mmrec_lib.audio import MusicnnEncoder

            self._musicnn = MusicnnEncoder("MTT_musicnn")
        return self._musicnn

    def encode(self, path: str | os.PathLike, *, title: str, description: str = "",
               tags: str = "", cover_path: str | os.PathLike | None = None
               ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """``({modality: float32 vector}, {step: seconds})`` of one clip.

        ``cover_path``, if given, receives a JPEG of the clip's middle frame.

        Raises
        ------
        DataError
            The file cannot be decoded (no video or audio track, truncated, not a video).
        """
        if not hasattr(self, "stats_"):
            raise ParameterError("ClipEncoder is not fitted yet; call fit(dataset) first")
        from mmrec_lib.text.features import ITEM_TEXT_FIELDS, item_texts

        path = Path(path)
        vectors: dict[str, np.ndarray] = {}
        timings: dict[str, float] = {}
        if "visual" in self.modalities or cover_path is not None:
            start = time.perf_counter()
            vectors["visual"] = self._visual(path, cover_path)
            timings["visual_s"] = time.perf_counter() - start
        if "audio" in self.modalities:
            start = time.perf_counter()
            vectors["audio"] = self._audio(path)
            timings["audio_s"] = time.perf_counter() - start
        if "text" in self.modalities:
            start = time.perf_counter()
            row = pd.DataFrame([{"title_en": title, "description_en": description,
                                 "tags": tags}])
            vectors["text"] = self._text(item_texts(row, fields=ITEM_TEXT_FIELDS))[0]
            timings["text_s"] = time.perf_counter() - start
        return {m: vectors[m].astype(np.float32) for m in self.modalities}, timings

    def _visual(self, path: Path, cover_path) -> np.ndarray:
        from mmrec_lib import vision

        frames, _ = vision.read_video(path)
        chosen = frames[vision.sample_indices(vision.CLIP_FRAMES, len(frames))]
        if cover_path is not None:
            from PIL import Image

            Image.fromarray(chosen[len(chosen) // 2]).save(cover_path, format="JPEG",
                                                           quality=85)
        if "visual" not in self.stats_:
            return np.zeros(0, np.float32)
        small = vision.ResizeCrop(size=vision.CLIP_SIDE).fit(chosen).transform(chosen)
        values = vision.clip_features(np.asarray(small)).to_numpy(np.float64)
        return _standardise(values, *self.stats_["visual"])

    def _audio(self, path: Path) -> np.ndarray:
        from mmrec_lib import audio

        if self.audio == "musicnn":
            from mmrec_lib.audio.musicnn import MUSICNN_SR

            waveform = audio.load_audio(path, sr=MUSICNN_SR)
            embeddings, _ = self._musicnn_encoder().embed_many([waveform], sr=MUSICNN_SR)
            return embeddings[0]
        waveform = audio.load_audio(path, sr=audio.DEFAULT_SR)
        if waveform.size == 0:
            raise DataError(f"{path.name}: the audio track is empty")
        values = audio.handcrafted_features(waveform, sr=audio.DEFAULT_SR).to_numpy(np.float64)
        return _standardise(values, *self.stats_["audio"])


_PROCESS_ENCODER: ClipEncoder | None = None


def init_process(encoder: ClipEncoder, warm_clip: str | None, threads: int,
                 nice: int = 0) -> None:
    """Initialiser of the encoding process: lower CPU priority, few threads, networks loaded.

    ``nice`` lowers the process's priority (``os.nice``) so that, when the cores are busy,
    the server's queries run first and only an upload waits.
    """
    global _PROCESS_ENCODER
    if nice and hasattr(os, "nice"):
        os.nice(nice)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    if getattr(encoder, "runtime", "keras") != "onnx":  # the ONNX encoders need no TensorFlow
        from mmrec_lib._env import import_tensorflow

        tf = import_tensorflow()
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    _PROCESS_ENCODER = encoder
    try:
        encoder.warm_up(warm_clip)
    except Exception:  # a warm-up failure must not kill the pool; the upload will report it
        logger.exception("warming up the clip encoder failed")


def encode_in_process(path: str, title: str, description: str, tags: str, cover_path: str):
    """:meth:`ClipEncoder.encode` in the encoding process (see :func:`init_process`)."""
    if _PROCESS_ENCODER is None:
        raise RuntimeError("the encoding process was not initialised")
    return _PROCESS_ENCODER.encode(path, title=title, description=description, tags=tags,
                                   cover_path=cover_path)
