"""Speech as a fourth modality (chapter 03b): transcripts -> vectors, masked where a clip has no speech."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile

import mmrec_lib  # noqa: F401  (Keras 2 set-up before TensorFlow)
from conftest import FIXTURES
from mmrec_lib import features, models
from mmrec_lib.audio import speech
from mmrec_lib.errors import DataError, ParameterError

SPEECH_DIR = FIXTURES / "speech"
NAMES = sorted(json.loads((SPEECH_DIR / "transcripts.json").read_text())["transcripts"])
SR = 16000


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The three espeak fixtures plus a silent clip and a noise clip, as a data set."""
    folder = tmp_path_factory.mktemp("speech-clips")
    rng = np.random.default_rng(0)
    soundfile.write(folder / "silent.flac", np.zeros(3 * SR, np.float32), SR)
    soundfile.write(folder / "noise.flac", (0.05 * rng.normal(size=3 * SR)).astype(np.float32),
                    SR)

    class Clips:
        items = pd.DataFrame({"item_id": ["guitar", "silent", "mountains", "noise", "subscribe"]})

        def clip_path(self, item_id):
            path = SPEECH_DIR / f"{item_id}.flac"
            return path if path.is_file() else folder / f"{item_id}.flac"

    return Clips()


@pytest.fixture(scope="module")
def speech_frame(clips, tmp_path_factory):
    return features.speech_features(clips, data_dir=tmp_path_factory.mktemp("cache"),
                                    show_progress=False)


def test_speech_vectors_where_speech_nan_rows_elsewhere(clips, speech_frame):
    assert speech_frame.index.tolist() == clips.items.item_id.tolist()
    assert speech_frame.index.name == "item_id" and speech_frame.shape[1] == 384
    assert speech_frame.columns[0] == "speech_0" and (speech_frame.dtypes == np.float32).all()
    present = speech_frame.notna().all(axis=1)
    absent = speech_frame.isna().all(axis=1)
    assert (present | absent).all()  # a row is all numbers or all NaN, never half
    assert present.to_dict() == {"guitar": True, "silent": False, "mountains": True,
                                 "noise": False, "subscribe": True}
    # Different sentences, different vectors (not one constant posing as speech).
    spoken = speech_frame[present].to_numpy()
    assert np.linalg.matrix_rank(spoken) == 3


def test_speech_features_are_cached(clips, tmp_path, monkeypatch):
    first = features.speech_features(clips, data_dir=tmp_path, show_progress=False)
    # The second call reads both caches: a model call now would be an error.
    monkeypatch.setattr(speech.SpeechRecognizer, "_decode_chunk",
                        lambda self, chunk: pytest.fail("transcribed again"))
    second = features.speech_features(clips, data_dir=tmp_path, show_progress=False)
    pd.testing.assert_frame_equal(first, second)


def test_item_features_speech_is_opt_in(clips, speech_frame, tmp_path):
    assert features.MODALITIES == ("text", "audio", "visual")
    assert features.ALL_MODALITIES == ("text", "audio", "visual", "speech")
    result = features.item_features(clips, modalities=["speech"], data_dir=tmp_path)
    assert list(result) == ["speech"]
    pd.testing.assert_frame_equal(result["speech"], speech_frame)
    with pytest.raises(ParameterError, match="speach"):
        features.item_features(clips, modalities=["speach"])


def test_recommender_masks_items_without_speech(speech_frame):
    ids = speech_frame.index.tolist()
    rng = np.random.default_rng(0)
    text = pd.DataFrame(rng.normal(size=(len(ids), 4)), index=ids)
    train = pd.DataFrame([(f"u{u}", ids[(u + j) % len(ids)]) for u in range(6) for j in range(3)],
                         columns=["user_id", "item_id"])
    model = models.MultimodalRecommender(embedding_dim=8, epochs=2, batch_size=8, seed=0)
    model.fit(train, {"text": text, "speech": speech_frame})
    assert model.modalities_ == ["text", "speech"]
    has = speech_frame.notna().all(axis=1).reindex(model.item_ids_).to_numpy()
    np.testing.assert_array_equal(model.network_.mask_table.numpy()[:, 1], has)
    full = model.score_items(["u0"])
    text_only = model.score_items(["u0"], modality_mask=["text"])
    # Hiding speech changes nothing for the clips that have none, and changes the others.
    np.testing.assert_allclose(text_only[0, ~has], full[0, ~has], rtol=1e-5, atol=1e-6)
    assert np.abs(text_only[0, has] - full[0, has]).max() > 1e-4


def test_probe_accuracy_reads_a_label_and_not_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 15)
    informative = np.eye(4)[labels] + 0.3 * rng.normal(size=(60, 4))
    noise = rng.normal(size=(60, 4))
    assert speech.probe_accuracy(informative, labels) > 0.9
    assert speech.probe_accuracy(noise, labels) < 0.5


@pytest.mark.parametrize("bad, labels, error", [
    (np.ones((10, 2)), np.arange(9), ParameterError),
    (np.full((10, 2), np.nan), np.repeat([0, 1], 5), DataError),
    (np.ones((10, 2)), np.zeros(10), ParameterError),
    (np.ones((10, 2)), np.array([0] * 8 + [1] * 2), ParameterError),
])
def test_probe_accuracy_bad_inputs(bad, labels, error):
    with pytest.raises(error):
        speech.probe_accuracy(bad, labels)
