"""Speech recognition (chapter 03b): speech detection, Whisper and pocketsphinx, word error rate."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile

from conftest import FIXTURES, REPO
from mmrec_lib import audio, metrics
from mmrec_lib.audio import speech
from mmrec_lib.errors import DataError, ModelError, ParameterError

SR = 16000
SPEECH_DIR = FIXTURES / "speech"
TRANSCRIPTS = json.loads((SPEECH_DIR / "transcripts.json").read_text())["transcripts"]
NAMES = sorted(TRANSCRIPTS)


def load_fixture(name: str) -> np.ndarray:
    samples, sr = soundfile.read(str(SPEECH_DIR / name), dtype="float32")
    assert sr == SR
    return samples


def music_bed(num_samples: int, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    """An arpeggiated A-minor chord of harmonic tones with a kick on each beat (like MiniClips)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sr
    beat = 0.45
    beat_index = np.floor(t / beat).astype(int)
    since_beat = t - beat_index * beat
    midi = 57 + np.array([0, 3, 7, 12])[beat_index % 4]
    phase = 2 * np.pi * np.cumsum(440.0 * 2.0 ** ((midi - 69) / 12.0)) / sr
    tone = sum(h ** -1.2 * np.sin(h * phase) for h in range(1, 9))
    tone *= 0.35 + 0.65 * np.exp(-6 * since_beat)
    kick = np.sin(2 * np.pi * 60 * since_beat) * np.exp(-25 * since_beat)
    signal = 0.7 * tone / np.abs(tone).max() + 0.4 * kick + rng.normal(0, 0.005, num_samples)
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


def mix_under(voice: np.ndarray, *, music_db: float = -15.0, lead_seconds: float = 1.0):
    """``voice`` with the music bed ``music_db`` below it (RMS), music also before and after."""
    lead = int(lead_seconds * SR)
    music = music_bed(voice.size + 2 * lead)
    rms = np.sqrt(np.mean(voice.astype(np.float64) ** 2))
    music = music * (rms / np.sqrt(np.mean(music.astype(np.float64) ** 2))) * 10 ** (music_db / 20)
    music[lead:lead + voice.size] += voice
    return music.astype(np.float32)


@pytest.fixture(scope="session")
def whisper():
    return speech.SpeechRecognizer(backend="whisper")


@pytest.fixture(scope="session")
def pocketsphinx():
    return speech.SpeechRecognizer(backend="pocketsphinx")


@pytest.fixture(scope="session")
def whisper_dataset_transcripts(whisper, tmp_path_factory):
    """Whisper's transcripts of the fixtures, read through transcribe_dataset (one pass)."""

    class FixtureClips:
        items = pd.DataFrame({"item_id": [name.removesuffix(".flac") for name in NAMES]})

        def clip_path(self, item_id):
            return SPEECH_DIR / f"{item_id}.flac"

    # A fresh cache folder, so that the model really runs (no transcript from an earlier run).
    return whisper.transcribe_dataset(FixtureClips(), show_progress=False,
                                      data_dir=tmp_path_factory.mktemp("speech-cache"))


# --------------------------------------------------------------------------- word error rate


def test_normalize_words_lowercases_and_strips_punctuation():
    assert metrics.normalize_words("Hello, World!  It's a well-known 'test'.") == \
        ["hello", "world", "it's", "a", "well", "known", "test"]
    assert metrics.normalize_words("   ") == []


def test_wer_perfect_ignores_case_and_punctuation():
    assert metrics.word_error_rate("The cat sat.", "the cat, sat") == 0.0


def test_wer_substitution():
    counts = metrics.word_error_counts("the cat sat on the mat", "the cat sat on a mat")
    assert (counts["substitutions"], counts["deletions"], counts["insertions"]) == (1, 0, 0)
    assert metrics.word_error_rate("the cat sat on the mat", "the cat sat on a mat") == 1 / 6


def test_wer_deletion():
    counts = metrics.word_error_counts("a b c d", "a c d")
    assert (counts["substitutions"], counts["deletions"], counts["insertions"]) == (0, 1, 0)
    assert metrics.word_error_rate("a b c d", "a c d") == 0.25


def test_wer_insertion_can_exceed_one():
    counts = metrics.word_error_counts("yes", "yes yes yes")
    assert (counts["substitutions"], counts["deletions"], counts["insertions"]) == (0, 0, 2)
    assert metrics.word_error_rate("yes", "yes yes yes") == 2.0


def test_wer_mixed_hand_computed():
    # ref: the cat sat on the mat (6 words); hyp: oh the dog sat the mat
    # best alignment: +oh (I), cat->dog (S), on dropped (D); any other costs more than 3.
    counts = metrics.word_error_counts("The cat sat on the mat.", "oh the dog sat the mat")
    assert counts == {"substitutions": 1, "deletions": 1, "insertions": 1,
                      "reference_words": 6, "errors": 3}
    assert metrics.word_error_rate("The cat sat on the mat.", "oh the dog sat the mat") == 0.5


def test_wer_ties_prefer_substitutions():
    # "every week" -> "week now" costs 2 either as 2 S or as D + I; sclite counts 2 S.
    counts = metrics.word_error_counts("music every week", "music week now")
    assert (counts["substitutions"], counts["deletions"], counts["insertions"]) == (2, 0, 0)


def test_wer_empty_hypothesis_is_all_deletions():
    assert metrics.word_error_rate("one two three", "") == 1.0


def test_wer_empty_reference_rules():
    assert metrics.word_error_rate("", "") == 0.0
    assert metrics.word_error_rate("", "hallucinated words") == float("inf")


def test_corpus_wer_pools_errors_and_words():
    # 1 error in 4 words, 2 insertions into an empty reference, 0 errors in 2 words.
    value = metrics.corpus_word_error_rate(["a b c d", "", "e f"], ["a b x d", "oh no", "e f"])
    assert value == pytest.approx(3 / 6)


def test_corpus_wer_bad_inputs():
    with pytest.raises(ParameterError):
        metrics.corpus_word_error_rate(["a"], ["a", "b"])
    with pytest.raises(ParameterError):
        metrics.corpus_word_error_rate("a b", "a b")
    with pytest.raises(ParameterError):
        metrics.corpus_word_error_rate([], [])
    with pytest.raises(DataError):
        metrics.corpus_word_error_rate(["", ""], ["", "a"])
    with pytest.raises(ParameterError):
        metrics.word_error_rate(None, "a")


# --------------------------------------------------------------------------- speech detection


@pytest.mark.parametrize("name", NAMES)
def test_detect_speech_finds_the_sentence(name):
    voice = load_fixture(name)
    segments = speech.detect_speech(voice, SR)
    assert len(segments) == 1
    start, end = segments[0]
    assert start < 0.3 and end > voice.size / SR - 0.3


def test_detect_speech_finds_the_sentence_under_music():
    mixed = mix_under(load_fixture(NAMES[0]))
    segments = speech.detect_speech(mixed, SR)
    assert len(segments) == 1 and 0.5 <= segments[0][0] <= 1.2


@pytest.mark.parametrize("kind", ["silence", "music", "noise", "sine"])
def test_detect_speech_rejects_non_speech(kind):
    rng = np.random.default_rng(0)
    t = np.arange(5 * SR) / SR
    signal = {"silence": np.zeros(5 * SR), "music": music_bed(5 * SR),
              "noise": rng.normal(0, 0.1, 5 * SR), "sine": 0.3 * np.sin(2 * np.pi * 440 * t)}[kind]
    assert speech.detect_speech(signal.astype(np.float32), SR) == []
    assert not speech.has_speech(signal.astype(np.float32), SR)


def test_detect_speech_any_sample_rate():
    voice = load_fixture(NAMES[0])
    voice_8k = audio.resample(voice, orig_sr=SR, target_sr=8000)
    assert len(speech.detect_speech(voice_8k, 8000)) == 1


@pytest.mark.parametrize("bad, error", [
    (np.zeros(0, dtype=np.float32), DataError),
    (np.full(16000, np.nan, dtype=np.float32), DataError),
    (np.zeros((2, 16000), dtype=np.float32), ParameterError),
])
def test_detect_speech_bad_inputs(bad, error):
    with pytest.raises(error):
        speech.detect_speech(bad, SR)


def test_detect_speech_bad_options():
    with pytest.raises(ParameterError):
        speech.detect_speech(np.zeros(SR, np.float32), SR, max_stability=2.0)


# --------------------------------------------------------------------------- recognisers


def test_whisper_transcribes_the_fixtures(whisper_dataset_transcripts):
    frame = whisper_dataset_transcripts
    assert list(frame.index) == [name.removesuffix(".flac") for name in NAMES]
    for name in NAMES:
        hypothesis = frame.loc[name.removesuffix(".flac"), "text"]
        assert metrics.word_error_rate(TRANSCRIPTS[name], hypothesis) <= 0.1, hypothesis


@pytest.mark.parametrize("name", NAMES)
def test_whisper_transcribes_speech_over_music(whisper, name):
    result = whisper.transcribe(mix_under(load_fixture(name)), SR)
    assert metrics.word_error_rate(TRANSCRIPTS[name], result.text) <= 0.1, result.text
    assert result.segments and result.segments[0].start >= 0.5  # times in the whole clip


def test_whisper_is_deterministic(whisper, whisper_dataset_transcripts):
    name = NAMES[1]
    again = whisper.transcribe(load_fixture(name), SR)
    assert again.text == whisper_dataset_transcripts.loc[name.removesuffix(".flac"), "text"]


def test_whisper_resamples_other_rates(whisper, whisper_dataset_transcripts):
    name = NAMES[2]
    voice_44k = audio.resample(load_fixture(name), orig_sr=SR, target_sr=44100)
    result = whisper.transcribe(voice_44k, 44100)
    assert metrics.word_error_rate(TRANSCRIPTS[name], result.text) <= 0.1
    assert result.duration == pytest.approx(voice_44k.size / 44100, abs=1e-3)


def test_pocketsphinx_runs_and_returns_text(pocketsphinx, capsys):
    hypotheses = [pocketsphinx.transcribe(load_fixture(name), SR).text for name in NAMES]
    assert all(isinstance(text, str) and text for text in hypotheses)
    assert pocketsphinx.transcribe(load_fixture(NAMES[0]), SR).text == hypotheses[0]
    wer = metrics.corpus_word_error_rate([TRANSCRIPTS[name] for name in NAMES], hypotheses)
    with capsys.disabled():
        print(f"\npocketsphinx corpus WER on the espeak-ng fixtures: {wer:.2f}")


@pytest.mark.parametrize("backend", ["whisper", "pocketsphinx"])
@pytest.mark.parametrize("kind", ["silence", "music"])
def test_speech_free_clip_gives_empty_text(request, backend, kind):
    recognizer = request.getfixturevalue(backend)
    signal = np.zeros(4 * SR, np.float32) if kind == "silence" else music_bed(8 * SR, seed=1)
    result = recognizer.transcribe(signal, SR)
    assert result.text == "" and result.segments == [] and result.model_calls == 0


def test_whisper_own_guard_rejects_music_without_the_detector(whisper):
    unguarded = speech.SpeechRecognizer(backend="whisper", detect=False)
    unguarded._model = whisper._load()  # share the loaded model
    result = unguarded.transcribe(music_bed(8 * SR, seed=2), SR)
    assert result.text == "" and result.model_calls == 1


def test_long_input_is_chunked(whisper, monkeypatch):
    # 12 minutes, silent but for one sentence at 5:00.
    name = NAMES[0]
    voice = load_fixture(name)
    audio = np.zeros(12 * 60 * SR, np.float32)
    audio[300 * SR:300 * SR + voice.size] = voice
    calls = []
    real_decode = whisper._decode_chunk

    def counting_decode(chunk):
        calls.append(chunk.size)
        return real_decode(chunk)

    monkeypatch.setattr(whisper, "_decode_chunk", counting_decode)
    result = whisper.transcribe(audio, SR)
    assert calls and max(calls) <= 30 * SR and sum(calls) < 10 * SR
    assert result.model_calls == len(calls)
    assert metrics.word_error_rate(TRANSCRIPTS[name], result.text) <= 0.1
    assert 299.0 <= result.segments[0].start <= 301.0


def test_without_detection_windows_are_at_most_chunk_seconds(monkeypatch):
    recognizer = speech.SpeechRecognizer(backend="pocketsphinx", detect=False, chunk_seconds=20)
    calls = []
    monkeypatch.setattr(recognizer, "_decode_chunk",
                        lambda chunk: calls.append(chunk.size) or [(0.0, 1.0, "x")])
    result = recognizer.transcribe(np.zeros(70 * SR, np.float32), SR)
    assert len(calls) == 5 and max(calls) <= 20 * SR and sum(calls) == 70 * SR
    assert result.text == "x x x x x"
    starts = [s.start for s in result.segments]
    assert starts[0] == 0.0 and starts == sorted(starts)


def test_long_speech_is_cut_between_words(monkeypatch):
    # 40 s of "speech": 0.4 s tone bursts with 0.1 s gaps; cuts must land in the gaps.
    t = np.arange(40 * SR) / SR
    bursts = (0.3 * np.sin(2 * np.pi * 300 * t) * ((t % 0.5) < 0.4)).astype(np.float32)
    recognizer = speech.SpeechRecognizer(backend="pocketsphinx", detect=False)
    calls = []
    monkeypatch.setattr(recognizer, "_decode_chunk",
                        lambda chunk: calls.append(chunk.size) or [])
    recognizer.transcribe(bursts, SR)
    cuts = np.cumsum(calls)[:-1] / SR
    assert len(calls) == 2 and max(calls) <= 30 * SR
    assert all((cut % 0.5) >= 0.4 for cut in cuts), cuts


@pytest.mark.parametrize("bad, sr, error", [
    (np.zeros(0, dtype=np.float32), SR, DataError),
    (np.array([0.0, np.nan, 0.1] * 1000, dtype=np.float32), SR, DataError),
    (np.zeros((SR, 2), dtype=np.float32), SR, ParameterError),
    (np.zeros(SR, dtype=np.float32), 16, ParameterError),
    (np.full(SR, 3000.0, dtype=np.float32), SR, DataError),  # unscaled int16 values
    (["a", "b"], SR, ParameterError),
])
def test_transcribe_bad_inputs(pocketsphinx, bad, sr, error):
    with pytest.raises(error):
        pocketsphinx.transcribe(bad, sr)


def test_transcribe_warns_on_clipped_audio(pocketsphinx):
    square = np.sign(np.sin(2 * np.pi * 200 * np.arange(2 * SR) / SR)).astype(np.float32)
    with pytest.warns(UserWarning, match="clipped"):
        result = pocketsphinx.transcribe(square, SR)
    assert result.text == ""


def test_int16_input_is_scaled(pocketsphinx):
    pcm = np.zeros(SR, dtype=np.int16)
    assert pocketsphinx.transcribe(pcm, SR).text == ""


@pytest.mark.parametrize("options", [
    {"backend": "kaldi"}, {"chunk_seconds": 60.0}, {"beam_size": 0}, {"cpu_threads": True},
    {"no_speech_threshold": 1.5}, {"detector_options": "loud"},
])
def test_recognizer_bad_options(options):
    with pytest.raises(ParameterError):
        speech.SpeechRecognizer(**options)


def test_transcribe_batch_refuses_a_single_waveform(pocketsphinx):
    with pytest.raises(ParameterError):
        pocketsphinx.transcribe_batch(np.zeros(SR, np.float32), SR)
    assert pocketsphinx.transcribe_batch([], SR) == []


# --------------------------------------------------------------------------- model files


def test_whisper_model_files_match_the_pinned_checksums():
    folder = speech.whisper_model_dir()
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == \
        sorted(speech.WHISPER_MODEL_SHA256)
    speech._models._verify_whisper_files(folder)  # raises on mismatch


def test_checksum_mismatch_names_the_file(tmp_path, monkeypatch):
    for name in speech.WHISPER_MODEL_SHA256:
        (tmp_path / name).write_text("not the model")
    monkeypatch.setattr(speech._models, "whisper_model_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match="config.json"):
        speech.SpeechRecognizer(backend="whisper").transcribe(load_fixture(NAMES[0]), SR)


def test_missing_model_file_is_a_model_error(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setattr(speech._models, "whisper_model_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match="model.bin"):
        speech.SpeechRecognizer(backend="whisper")._load()


def test_whisper_never_goes_online(whisper):
    whisper._load()
    assert os.environ.get("HF_HUB_OFFLINE") == "1"


def test_import_audio_does_not_load_the_speech_models():
    code = ("import sys, mmrec_lib.audio\n"
            "print(sorted(m for m in ('faster_whisper', 'ctranslate2', 'pocketsphinx', "
            "'onnxruntime', 'tensorflow') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- long files, streamed


@pytest.fixture(scope="module")
def long_file(tmp_path_factory):
    """11 minutes of FLAC: one sentence across the 60 s mark, another at 5:00, silence elsewhere."""
    first, second = load_fixture(NAMES[0]), load_fixture(NAMES[1])
    samples = np.zeros(11 * 60 * SR, np.float32)
    cross = 60 * SR - first.size // 2
    samples[cross:cross + first.size] = first
    samples[300 * SR:300 * SR + second.size] = second
    path = tmp_path_factory.mktemp("long") / "long.flac"
    soundfile.write(path, samples, SR)
    return path, cross / SR


def test_file_is_read_in_bounded_blocks(long_file):
    from mmrec_lib.audio.speech.recognizer import _file_blocks

    sizes = [block.size for block in _file_blocks(long_file[0], 60 * SR)]
    assert len(sizes) == 11 and max(sizes) == 60 * SR and sum(sizes) == 11 * 60 * SR


def test_transcribe_file_streams_and_keeps_a_sentence_across_blocks(whisper, long_file,
                                                                      monkeypatch):
    path, cross = long_file
    calls = []
    real_decode = whisper._decode_chunk
    monkeypatch.setattr(whisper, "_decode_chunk",
                        lambda chunk: calls.append(chunk.size) or real_decode(chunk))
    result = whisper.transcribe_file(path, block_seconds=60)
    assert result.duration == pytest.approx(660.0)
    assert len(calls) == 2 and max(calls) <= 30 * SR  # one call per sentence, none cut in two
    assert [round(s.start) for s in result.segments][0] == pytest.approx(cross, abs=1)
    reference = f"{TRANSCRIPTS[NAMES[0]]} {TRANSCRIPTS[NAMES[1]]}"
    assert metrics.word_error_rate(reference, result.text) <= 0.1, result.text


def test_transcribe_file_bad_files(pocketsphinx, tmp_path):
    empty = tmp_path / "empty.flac"
    soundfile.write(empty, np.zeros(0, np.float32), SR)
    with pytest.raises(DataError):
        pocketsphinx.transcribe_file(empty)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DataError, match="broken.mp4"):
        pocketsphinx.transcribe_file(broken)
    with pytest.raises(DataError):
        pocketsphinx.transcribe_file(tmp_path / "missing.wav")
    with pytest.raises(ParameterError, match="block_seconds"):
        pocketsphinx.transcribe_file(empty, block_seconds=5)
