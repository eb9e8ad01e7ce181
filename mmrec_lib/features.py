"""All modality features of a dataset in one call: {modality: DataFrame indexed by item id}."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib import cache
from mmrec_lib._validation import check_choice, check_subset
from mmrec_lib.errors import ParameterError

__all__ = ["MODALITIES", "ALL_MODALITIES", "item_features", "speech_features",
           "visual_features"]

#: The default modalities of :func:`item_features`, in the order of V = [v_text, v_audio, v_image].
MODALITIES = ("text", "audio", "visual")
#: Every modality :func:`item_features` knows: the defaults plus ``"speech"`` (chapter 03b),
#: which is opt-in so that chapters 05-08 keep their three modalities and their results.
ALL_MODALITIES = MODALITIES + ("speech",)


def _item_ids(dataset) -> np.ndarray:
    items = getattr(dataset, "items", None)
    if not isinstance(items, pd.DataFrame) or "item_id" not in items.columns:
        raise ParameterError("dataset must have an items table with an item_id column "
                             f"(e.g. a loaded MiniClips set), got {type(dataset).__name__}")
    if items.empty:
        raise ParameterError("dataset has no items")
    return items["item_id"].astype(str).to_numpy()


def visual_features(dataset, *, kind: Literal["handcrafted", "cnn", "both"] = "both",
                    data_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Visual vectors of every clip, cached: hand-made frame statistics and/or the frame CNN.

    Introduced in chapter 07. ``"handcrafted"`` is the mean over 8 frames of
    :func:`mmrec_lib.vision.clip_features` (colourfulness, brightness, edges,
    motion, ...), standardised. ``"cnn"`` is the frozen video encoder of chapter
    04 (a per-frame CNN, ``TimeDistributed``, mean over time), pre-trained to
    predict the category of the *warm* clips only: the late releases (cold
    items) lend it neither their frames nor their labels, so cold-start
    evaluation stays honest. ``"both"`` concatenates the two.

    Returns
    -------
    DataFrame (n_items, n_features) indexed by item id, rows in ``dataset.items`` order.
    """
    from mmrec_lib import vision

    check_choice("kind", kind, ("handcrafted", "cnn", "both"))
    ids = _item_ids(dataset)
    # The frames every visual feature is computed from: the settings of chapter 04.
    clips = vision.load_clip_frames(dataset, num_frames=vision.CLIP_FRAMES,
                                    size=vision.CLIP_SIDE, data_dir=data_dir)
    parts = []
    if kind in ("handcrafted", "both"):
        path = cache.feature_cache_path(dataset, "vision", "handcrafted-clip-features",
                                        {"frames": vision.CLIP_FRAMES, "side": vision.CLIP_SIDE},
                                        item_ids=ids, data_dir=data_dir)
        table = cache.cached_array(path, lambda: vision.clip_feature_table(clips).to_numpy(),
                                   item_ids=ids,
                                   shape=(len(ids), len(vision.CLIP_FEATURE_COLUMNS)))
        table = (table - table.mean(axis=0)) / np.maximum(table.std(axis=0), 1e-8)
        parts.append(pd.DataFrame(table, index=ids).add_prefix("frame_"))
    if kind in ("cnn", "both"):
        parts.append(pd.DataFrame(_cnn_embeddings(dataset, clips, data_dir), index=ids)
                     .add_prefix("cnn_"))
    frame = pd.concat(parts, axis=1).astype(np.float32)
    frame.index.name = "item_id"
    return frame


def _cnn_embeddings(dataset, clips: np.ndarray, data_dir) -> np.ndarray:
    from mmrec_lib import vision

    truth = getattr(dataset, "truth", None)
    if truth is None:
        raise ParameterError("the CNN visual features are pre-trained on the category labels "
                             "of a MiniClips set; this dataset has none (use kind='handcrafted')")
    ids = _item_ids(dataset)
    warm = np.flatnonzero(~np.isin(ids, truth.cold_items))
    small = vision.downsample(clips, vision.CLIP_SIDE // vision.ENCODER_SIDE)
    normalizer = vision.Normalizer(method="standard").fit(small[warm])
    inputs = normalizer.transform(small)
    settings = {"epochs": 10, "embedding_dim": 32, "filters": (16, 32, 32),
                "learning_rate": 2e-3, "seed": 0}
    weights = cache.feature_cache_path(
        dataset, "vision", "video-encoder",
        {**settings, "frames": vision.CLIP_FRAMES, "side": vision.ENCODER_SIDE,
         "train": "warm-items"}, item_ids=ids, suffix=".h5", data_dir=data_dir)
    encoder, _, _ = vision.pretrain_video_encoder(
        inputs[warm], truth.category[warm], num_classes=len(truth.category_names),
        weights_path=weights, **settings)
    return vision.clip_embeddings(dataset, encoder, inputs, data_dir=data_dir,
                                  settings={"normalizer": "standard-warm",
                                            "side": vision.ENCODER_SIDE})


def speech_features(dataset, *, backend: Literal["whisper", "pocketsphinx"] = "whisper",
                    data_dir: str | os.PathLike | None = None,
                    show_progress: bool | None = None) -> pd.DataFrame:
    """Sentence vectors of each clip's voice-over transcript; NaN rows for clips without speech.

    Introduced in chapter 03b (speech). The clip's audio is transcribed by
    :meth:`mmrec_lib.audio.SpeechRecognizer.transcribe_dataset` (Whisper tiny.en by
    default, speech detection first, cached), and every non-empty transcript is
    encoded like the titles of chapter 02 (:func:`mmrec_lib.text.encode_items`,
    MiniLM, 384-d, cached and keyed by the transcripts themselves). A clip whose
    transcript is empty (no speech detected) gets a row of NaN: for
    :class:`mmrec_lib.models.MultimodalRecommender` and the fusion layers that
    means "this item has no speech" (masked, see :func:`mmrec_lib.fusion.modality_mask`),
    not a vector of an empty sentence posing as data.

    Parameters
    ----------
    dataset : MiniClips or any data set with ``items`` and ``clip_path``
    backend : {"whisper", "pocketsphinx"}
    data_dir : path, optional
    show_progress : bool, optional

    Returns
    -------
    DataFrame (n_items, 384) indexed by item id, columns ``speech_0`` ...; rows in
    ``dataset.items`` order, all-NaN where no speech was found.

    Examples
    --------
    >>> vectors = speech_features(ds)                                  # doctest: +SKIP
    >>> vectors.notna().all(axis=1).mean()                             # doctest: +SKIP
    0.5
    """
    from mmrec_lib import text as text_module
    from mmrec_lib.audio.speech import SpeechRecognizer

    ids = _item_ids(dataset)
    transcripts = SpeechRecognizer(backend=backend).transcribe_dataset(
        dataset, ids, data_dir=data_dir, show_progress=show_progress)["text"]
    texts = transcripts.reindex(ids).fillna("").astype(str).str.strip().to_numpy()
    spoken = texts != ""
    if spoken.any():
        table = pd.DataFrame({"item_id": ids[spoken], "transcript": texts[spoken]})
        encoded = text_module.encode_items(table, fields=["transcript"],
                                           dataset_name=f"{cache.dataset_key(dataset)}-speech-"
                                                        f"{backend}", data_dir=data_dir)
        width = encoded.shape[1]
    else:  # no clip speaks: every row is missing, at the encoder's width
        width = text_module.BertTextEncoder().fit().embedding_dim_
    values = np.full((len(ids), width), np.nan, dtype=np.float32)
    if spoken.any():
        values[spoken] = encoded
    frame = pd.DataFrame(values, index=ids).add_prefix("speech_")
    frame.index.name = "item_id"
    return frame


def item_features(dataset, *, modalities: Sequence[str] = MODALITIES,
                  audio: Literal["musicnn", "handcrafted"] = "musicnn",
                  visual: Literal["handcrafted", "cnn", "both"] = "both",
                  data_dir: str | os.PathLike | None = None) -> dict[str, pd.DataFrame]:
    """The item vectors of every modality, each a DataFrame indexed by item id.

    Introduced in chapter 07; chapter 08 feeds the result to
    :class:`mmrec_lib.models.MultimodalRecommender`. Everything is cached by the
    chapter that introduced it: text = MiniLM sentence vectors (chapter 02,
    384-d), audio = musicnn embeddings (chapter 03, 200-d) or hand-made audio
    features, visual = :func:`visual_features`. The first call on an empty
    cache computes them (minutes), later calls read them (about a second).

    Returns
    -------
    dict {modality: DataFrame (n_items, d_modality)}, rows in ``dataset.items`` order.
    """
    from mmrec_lib import text as text_module

    modalities = check_subset("modalities", modalities, ALL_MODALITIES)
    check_choice("audio", audio, ("musicnn", "handcrafted"))
    ids = _item_ids(dataset)
    result: dict[str, pd.DataFrame] = {}
    for modality in modalities:
        if modality == "text":
            values = text_module.encode_items(dataset, data_dir=data_dir)
            frame = pd.DataFrame(values, index=ids).add_prefix("text_")
        elif modality == "audio":
            from mmrec_lib.audio import dataset as audio_dataset

            if audio == "musicnn":
                values = audio_dataset.dataset_musicnn_features(dataset,
                                                                data_dir=data_dir).embeddings
                frame = pd.DataFrame(values, index=ids).add_prefix("musicnn_")
            else:
                table = audio_dataset.dataset_handcrafted_features(dataset, data_dir=data_dir)
                values = table.to_numpy(np.float64)
                values = (values - values.mean(axis=0)) / np.maximum(values.std(axis=0), 1e-8)
                frame = pd.DataFrame(values, index=ids, columns=table.columns)
        elif modality == "speech":
            frame = speech_features(dataset, data_dir=data_dir)
        else:
            frame = visual_features(dataset, kind=visual, data_dir=data_dir)
        frame = frame.astype(np.float32)
        frame.index.name = "item_id"
        result[modality] = frame
    return result
