"""SpeechRecognizer.transcribe_dataset through the shared feature cache (no model is loaded)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile

from mmrec_lib.audio import speech
from mmrec_lib.audio.speech import recognizer as recognizer_module

SR = 16000


class _FakeDataset:
    def __init__(self, root, clips: dict):
        self.root = root
        self.items = pd.DataFrame({"item_id": list(clips)})
        for item_id, samples in clips.items():
            soundfile.write(root / f"{item_id}.wav", samples, SR)

    def clip_path(self, item_id):
        return self.root / f"{item_id}.wav"


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "fakeset" / "tiny-seed0"
    root.mkdir(parents=True)
    time = np.arange(SR) / SR
    return _FakeDataset(root, {"a": 0.5 * np.sin(2 * np.pi * 440 * time),
                               "b": np.zeros(SR // 2), "c": 0.2 * np.sin(2 * np.pi * 220 * time)})


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A fake Whisper model folder, so that the fingerprint needs no installed model."""
    folder = tmp_path / "whisper-model"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"weights v1")
    monkeypatch.setattr(recognizer_module._models, "whisper_model_dir", lambda: folder)
    return folder


def _fake(recognizer, monkeypatch, calls: list):
    """Replace transcribe by a deterministic stand-in that records its calls."""

    def transcribe(waveform, sr):
        calls.append(len(waveform))
        text = "" if not np.any(waveform) else f"clip of {len(waveform)} samples é"
        return speech.Transcript(text=text, duration=len(waveform) / sr, seconds=0.01,
                                 backend=recognizer.backend, speech_seconds=0.5)

    monkeypatch.setattr(recognizer, "transcribe", transcribe)
    return recognizer


def _entries(cache_dir):
    return sorted((cache_dir / "features" / "audio").rglob("*.npz"))


def test_second_call_reads_the_cache(dataset, weights, tmp_path, monkeypatch):
    calls = []
    recognizer = _fake(speech.SpeechRecognizer(), monkeypatch, calls)
    first = recognizer.transcribe_dataset(dataset, show_progress=False, data_dir=tmp_path / "c")
    assert len(calls) == 3 and first.loc["b", "text"] == ""
    files = _entries(tmp_path / "c")
    assert len(files) == 1 and "fakeset-tiny-seed0" in str(files[0])
    with np.load(files[0], allow_pickle=False) as stored:  # unicode text, not a pickle
        assert stored["text"].dtype.kind == "U"
    second = recognizer.transcribe_dataset(dataset, show_progress=False, data_dir=tmp_path / "c")
    assert len(calls) == 3
    pd.testing.assert_frame_equal(first, second)
    recognizer.transcribe_dataset(dataset, show_progress=False, data_dir=tmp_path / "c",
                                  recompute=True)
    assert len(calls) == 6


def test_cached_results_equal_uncached_ones(dataset, weights, tmp_path, monkeypatch):
    recognizer = _fake(speech.SpeechRecognizer(), monkeypatch, [])
    cached = recognizer.transcribe_dataset(dataset, ["c", "a"], show_progress=False,
                                           data_dir=tmp_path / "c")
    cached = recognizer.transcribe_dataset(dataset, ["c", "a"], show_progress=False,
                                           data_dir=tmp_path / "c")
    uncached = [recognizer.transcribe(soundfile.read(dataset.clip_path(i))[0], SR)
                for i in ("c", "a")]
    assert list(cached.index) == ["c", "a"]
    assert list(cached["text"]) == [t.text for t in uncached]
    assert isinstance(cached.loc["a", "text"], str)
    np.testing.assert_allclose(cached["duration"], [t.duration for t in uncached])
    np.testing.assert_allclose(cached["speech_seconds"], [t.speech_seconds for t in uncached])


def test_key_changes_with_backend_settings_and_weights(dataset, weights, tmp_path, monkeypatch):
    cache_dir = tmp_path / "c"
    for recognizer in (speech.SpeechRecognizer(), speech.SpeechRecognizer(beam_size=1),
                       speech.SpeechRecognizer(detect=False),
                       speech.SpeechRecognizer(detector_options={"threshold": 0.3}),
                       speech.SpeechRecognizer(backend="pocketsphinx")):
        if recognizer.backend == "pocketsphinx":
            monkeypatch.setattr(recognizer, "_weights_fingerprint", lambda: "0" * 16)
        _fake(recognizer, monkeypatch, [])
        recognizer.transcribe_dataset(dataset, show_progress=False, data_dir=cache_dir)
    assert len(_entries(cache_dir)) == 5
    assert any("speech-pocketsphinx" in f.name for f in _entries(cache_dir))
    # cpu_threads does not change the text, so it shares the entry.
    calls = []
    _fake(speech.SpeechRecognizer(cpu_threads=4), monkeypatch, calls).transcribe_dataset(
        dataset, show_progress=False, data_dir=cache_dir)
    assert calls == [] and len(_entries(cache_dir)) == 5
    (weights / "model.bin").write_bytes(b"weights v2")
    _fake(speech.SpeechRecognizer(), monkeypatch, calls).transcribe_dataset(
        dataset, show_progress=False, data_dir=cache_dir)
    assert len(calls) == 3 and len(_entries(cache_dir)) == 6


def test_truncated_entry_warns_and_is_rebuilt(dataset, weights, tmp_path, monkeypatch):
    calls = []
    recognizer = _fake(speech.SpeechRecognizer(), monkeypatch, calls)
    first = recognizer.transcribe_dataset(dataset, show_progress=False, data_dir=tmp_path / "c")
    (entry,) = _entries(tmp_path / "c")
    entry.write_bytes(entry.read_bytes()[:40])
    with pytest.warns(RuntimeWarning, match="ignoring the cache file"):
        again = recognizer.transcribe_dataset(dataset, show_progress=False,
                                              data_dir=tmp_path / "c")
    assert len(calls) == 6
    pd.testing.assert_frame_equal(first, again)
    recognizer.transcribe_dataset(dataset, show_progress=False, data_dir=tmp_path / "c")
    assert len(calls) == 6
