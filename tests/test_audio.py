"""Tests for mmrec_lib.audio: loading, preprocessing, features, musicnn (golden), encoders, cache."""

from __future__ import annotations

import importlib.util
import subprocess
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 environment first)
from mmrec_lib import audio
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError

SR = 16000
REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "fixtures" / "musicnn_golden.npz"


def _golden_module():
    spec = importlib.util.spec_from_file_location("make_musicnn_golden",
                                                  REPO / "tools" / "make_musicnn_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sine(freq=440.0, seconds=1.0, sr=SR, amplitude=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def click_track(bpm=120.0, seconds=6.0, sr=SR):
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    burst = (np.random.default_rng(0).standard_normal(300) * np.exp(-np.arange(300) / 40.0))
    step = int(round(60.0 / bpm * sr))
    for start in range(0, y.size - 300, step):
        y[start: start + 300] += 0.6 * burst.astype(np.float32)
    return y


def write_wav(path, samples, sr=SR, channels=1):
    pcm = np.clip(np.round(np.asarray(samples) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(sr)
        handle.writeframes(pcm.tobytes())
    return path


def ffmpeg(*args):
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error",
                    *map(str, args)], check=True)


@pytest.fixture(scope="module")
def encoder():
    return audio.MusicnnEncoder()


# --------------------------------------------------------------------------- loading
def test_load_wav_resamples_to_target_rate(tmp_path):
    path = write_wav(tmp_path / "a.wav", sine(440.0, 1.0, sr=8000), sr=8000)
    y = audio.load_audio(path, sr=SR)
    assert y.dtype == np.float32
    assert y.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / y.size - 440.0) < 2.0


def test_load_stereo_wav_averages_channels(tmp_path):
    left, right = sine(440.0, 0.5), np.zeros(8000, dtype=np.float32)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    y = audio.load_audio(write_wav(tmp_path / "s.wav", stereo, channels=2), sr=SR)
    np.testing.assert_allclose(np.abs(y).max(), 0.25, atol=1e-3)


def test_load_mp4_audio_track(tmp_path):
    path = tmp_path / "clip.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=32x32:d=1", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=1:sample_rate=44100", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path)
    y = audio.load_audio(path, sr=SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - SR) < 0.1 * SR
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SR / y.size - 440.0) < 3.0


def test_mp4_without_audio_track_raises_data_error(tmp_path):
    path = tmp_path / "silent_video.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=32x32:d=1", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", path)
    with pytest.raises(DataError, match="no audio track"):
        audio.load_audio(path)


def test_zero_byte_file_raises_data_error(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        audio.load_audio(path)


def test_undecodable_bytes_raise_data_error_naming_the_file(tmp_path):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(DataError, match="garbage.mp4"):
        audio.load_audio(path)


def test_undecodable_wav_raises_data_error(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(DataError, match="broken.wav"):
        audio.load_audio(path)


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        audio.load_audio(tmp_path / "nope.mp4")


def test_wav_with_zero_samples_raises_data_error(tmp_path):
    path = write_wav(tmp_path / "zero.wav", np.zeros(0))
    with pytest.raises(DataError, match="zero length"):
        audio.load_audio(path)


# --------------------------------------------------------------------------- waveform checks
def test_nan_samples_raise_data_error_everywhere(encoder):
    y = sine(seconds=1.0)
    y[100] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        encoder.embed(y, sr=SR)
    with pytest.raises(DataError, match="index 100"):
        audio.handcrafted_features(y, sr=SR)
    with pytest.raises(DataError):
        audio.log_mel_spectrogram(y, sr=SR)


def test_inf_samples_raise_data_error(encoder):
    y = sine(seconds=1.0)
    y[-1] = np.inf
    with pytest.raises(DataError, match="non-finite"):
        encoder.tags(y, sr=SR)


def test_ten_ms_clip_raises_data_error(encoder):
    y = sine(seconds=0.01)
    assert y.size == 160
    with pytest.raises(DataError, match="10.0 ms"):
        encoder.embed(y, sr=SR)
    with pytest.raises(DataError, match="10.0 ms"):
        audio.handcrafted_features(y, sr=SR)


@pytest.mark.parametrize("bad_sr", [0, -16000, 16, 16000.0, "16000", True, 10_000_000])
def test_wrong_sample_rate_raises_parameter_error(encoder, bad_sr):
    with pytest.raises(ParameterError, match="sr="):
        encoder.embed(sine(), sr=bad_sr)


def test_other_sample_rate_is_resampled(encoder):
    sr_high = 44100
    high = sine(440.0, 3.5, sr=sr_high)
    low = audio.resample(high, orig_sr=sr_high, target_sr=SR)
    a, b = encoder.embed(high, sr=sr_high), encoder.embed(low, sr=SR)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_two_dimensional_waveform_raises_parameter_error(encoder):
    with pytest.raises(ParameterError, match="1-D"):
        encoder.embed(np.zeros((2, SR), dtype=np.float32), sr=SR)


def test_integer_pcm_is_scaled_to_unit_range():
    pcm = (sine(amplitude=0.5) * 32767).astype(np.int16)
    y, sr = audio.check_waveform(pcm, SR)
    assert y.dtype == np.float32 and sr == SR
    np.testing.assert_allclose(np.abs(y).max(), 0.5, atol=1e-3)


def test_silent_clip_gives_finite_embedding_and_features(encoder):
    silence = np.zeros(SR * 2, dtype=np.float32)
    embedding = encoder.embed(silence, sr=SR)
    assert embedding.shape == (200,) and np.isfinite(embedding).all()
    features = audio.handcrafted_features(silence, sr=SR)
    assert np.isfinite(features.to_numpy()).all()
    assert features["rms_mean"] == 0.0
    assert features["tempo_bpm"] == 0.0 and features["beat_strength"] == 0.0
    np.testing.assert_array_equal(audio.normalize_loudness(silence), silence)


def test_very_loud_clip_gives_finite_outputs_where_float16_overflows(encoder):
    loud = sine(440.0, 3.0, amplitude=1000.0)
    import librosa

    mel = librosa.feature.melspectrogram(y=loud, sr=SR, n_fft=512, hop_length=256, n_mels=96)
    with np.errstate(over="ignore"):
        original = np.log10(10000 * mel.astype(np.float16) + 1)  # musicnn's own front end
    assert not np.isfinite(original).all()
    ours = audio.log_mel_spectrogram(loud, sr=SR)
    assert np.isfinite(ours).all()
    embedding = encoder.embed(loud, sr=SR)
    assert np.isfinite(embedding).all()
    assert all(np.isfinite(p) for _, p in encoder.tags(loud, sr=SR))


def test_clipped_clip_gives_finite_embedding(encoder):
    clipped = np.clip(sine(220.0, 3.0, amplitude=20.0), -1.0, 1.0)
    embedding = encoder.embed(clipped, sr=SR)
    assert np.isfinite(embedding).all()
    features = audio.handcrafted_features(clipped, sr=SR)
    assert np.isfinite(features.to_numpy()).all()


def test_absurdly_loud_clip_raises_data_error():
    with pytest.raises(DataError, match="too loud"):
        audio.log_mel_spectrogram(sine(amplitude=1e30), sr=SR)


# --------------------------------------------------------------------------- musicnn golden
def test_golden_signals_are_the_ones_of_the_fixture():
    golden = np.load(GOLDEN)
    for name, signal in _golden_module().golden_signals().items():
        np.testing.assert_array_equal(signal[:64], golden[f"signal/{name}/head"])
        np.testing.assert_allclose(signal.astype(np.float64).sum(),
                                   golden[f"signal/{name}/sum"], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("model", ["MTT_musicnn", "MSD_musicnn"])
def test_keras_rebuild_matches_original_tf1_graph(model, encoder):
    rebuilt = encoder if model == encoder.model else audio.MusicnnEncoder(model)
    golden = np.load(GOLDEN)
    worst = 0.0
    for name, signal in _golden_module().golden_signals().items():
        probabilities, penultimate = rebuilt.taggram(signal, sr=SR)
        expected = golden[f"{model}/{name}/probabilities"]
        assert probabilities.shape == expected.shape
        worst = max(worst, float(np.abs(probabilities - expected).max()))
        np.testing.assert_allclose(penultimate, golden[f"{model}/{name}/penultimate"],
                                   atol=1e-3, rtol=0)
    assert worst < 1e-4


def test_embed_and_tags_are_means_over_patches(encoder):
    golden = np.load(GOLDEN)
    signal = _golden_module().golden_signals()["noisy_chirp"]  # 7 s: two 3 s patches
    expected_embedding = golden["MTT_musicnn/noisy_chirp/penultimate"].mean(axis=0)
    np.testing.assert_allclose(encoder.embed(signal, sr=SR), expected_embedding, atol=1e-3)
    tags = encoder.tags(signal, sr=SR)
    assert len(tags) == 50
    probabilities = [p for _, p in tags]
    assert probabilities == sorted(probabilities, reverse=True)
    expected = golden["MTT_musicnn/noisy_chirp/probabilities"].mean(axis=0)
    assert tags[0][0] == audio.musicnn_labels("MTT_musicnn")[int(np.argmax(expected))]


def test_tags_are_sensible_for_a_drum_loop(encoder):
    drums = _golden_module().golden_signals()["drums"]
    top = [tag for tag, _ in encoder.tags(drums, sr=SR, top_k=3)]
    assert "beat" in top or "techno" in top


def test_tags_top_k_is_validated(encoder):
    assert len(encoder.tags(sine(seconds=1.0), sr=SR, top_k=5)) == 5
    with pytest.raises(ParameterError, match="top_k"):
        encoder.tags(sine(seconds=1.0), sr=SR, top_k=0)


def test_encoder_leaves_eager_mode_on(encoder):
    import tensorflow as tf

    encoder.embed(sine(seconds=1.0), sr=SR)
    assert tf.executing_eagerly()


def test_unknown_model_raises_parameter_error():
    with pytest.raises(ParameterError, match="MTT_vgg"):
        audio.MusicnnEncoder("MTT_vgg")


def test_embed_many_matches_embed_one_by_one(encoder):
    clips = [sine(330.0, 3.5), click_track(seconds=7.0), sine(550.0, 1.0), sine(660.0, 1.0)]
    embeddings, probabilities = encoder.embed_many(clips, sr=SR)
    assert embeddings.shape == (4, 200) and probabilities.shape == (4, 50)
    for row, clip in enumerate(clips):
        np.testing.assert_allclose(embeddings[row], encoder.embed(clip, sr=SR), atol=1e-4)
        np.testing.assert_allclose(probabilities[row], encoder.tag_probabilities(clip, sr=SR),
                                   atol=1e-5)


def test_musicnn_patches_follow_the_original_batching():
    spec = np.zeros((400, 96), dtype=np.float32)
    assert audio.musicnn_patches(spec).shape == (2, 187, 96)
    assert audio.musicnn_patches(spec[:100]).shape == (1, 100, 96)


def _write_checkpoint(folder, tensors: dict):
    """Write a TF checkpoint like musicnn's: prefix ``folder/`` (empty file stem)."""
    import tensorflow as tf

    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=str(folder) + "/", tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])


def _original_variables():
    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(
        str(audio.musicnn.musicnn_weights_dir("MTT_musicnn")) + "/")
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "Adam" not in name and "power" not in name}


def test_checkpoint_with_a_missing_variable_raises_model_error(tmp_path):
    variables = _original_variables()
    del variables["conv2d_3/kernel"]
    _write_checkpoint(tmp_path / "ckpt", variables)
    model = audio.build_musicnn()
    with pytest.raises(ModelError, match="conv2d_3/kernel is missing"):
        audio.load_musicnn_weights(model, tmp_path / "ckpt")


def test_checkpoint_with_an_unused_variable_raises_model_error(tmp_path):
    variables = _original_variables()
    variables["extra_layer/kernel"] = np.zeros(3, dtype=np.float32)
    _write_checkpoint(tmp_path / "ckpt", variables)
    with pytest.raises(ModelError, match="extra_layer/kernel"):
        audio.load_musicnn_weights(audio.build_musicnn(), tmp_path / "ckpt")


def test_checkpoint_with_wrong_shapes_raises_model_error():
    model = audio.build_musicnn(num_filters_midend=32)
    with pytest.raises(ModelError, match="shape"):
        audio.load_musicnn_weights(model, audio.musicnn.musicnn_weights_dir("MTT_musicnn"))


def test_unreadable_checkpoint_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot read"):
        audio.load_musicnn_weights(audio.build_musicnn(), tmp_path)


def test_labels_of_both_models():
    mtt, msd = audio.musicnn_labels("MTT_musicnn"), audio.musicnn_labels("MSD_musicnn")
    assert len(mtt) == len(msd) == 50
    assert mtt[:3] == ["guitar", "classical", "slow"]
    assert msd[:3] == ["rock", "pop", "alternative"]


# --------------------------------------------------------------------------- features
def test_log_mel_shape_and_band_of_a_tone():
    spec = audio.log_mel_spectrogram(sine(1000.0, 1.0), sr=SR)
    assert spec.shape == (1 + SR // 256, 96) and spec.dtype == np.float32
    import librosa

    mel_freqs = librosa.mel_frequencies(n_mels=96, fmax=SR / 2)
    assert abs(mel_freqs[int(np.argmax(spec.mean(axis=0)))] - 1000.0) < 80.0


def test_log_mel_of_silence_is_zero():
    np.testing.assert_array_equal(audio.log_mel_spectrogram(np.zeros(SR), sr=SR), 0.0)


def test_mfcc_shapes():
    y = sine(seconds=1.0)
    assert audio.mfcc(y, sr=SR, deltas=True).shape[1] == 39
    assert audio.mfcc(y, sr=SR, n_mfcc=20, deltas=False).shape[1] == 20


def test_chroma_of_a440_peaks_at_a():
    profile = audio.chroma(sine(440.0, 1.0), sr=SR).mean(axis=0)
    assert audio.CHROMA_NAMES[int(np.argmax(profile))] == "A"


def test_spectral_centroid_and_zero_crossings_of_a_tone():
    y = sine(1000.0, 1.0)
    shape = audio.spectral_shape(y, sr=SR)
    assert abs(np.median(shape[:, 0]) - 1000.0) < 30.0
    assert abs(np.median(audio.zero_crossing_rate(y, sr=SR)) - 2 * 1000.0 / SR) < 0.01


def test_rms_of_a_sine_is_amplitude_over_sqrt2():
    rms = audio.rms_energy(sine(440.0, 1.0, amplitude=0.5), sr=SR)
    np.testing.assert_allclose(np.median(rms), 0.5 / np.sqrt(2), rtol=0.01)


def test_tempo_of_a_click_track():
    tempo, strength = audio.tempo_and_beat_strength(click_track(bpm=120.0), sr=SR)
    assert abs(tempo - 120.0) < 4.0
    assert strength > 2.0


def test_handcrafted_features_have_named_columns():
    names = audio.handcrafted_feature_names()
    assert len(names) == len(set(names)) == 64
    assert names[:3] == ["duration_s", "rms_mean", "rms_std"]
    features = audio.handcrafted_features(click_track(seconds=3.0), sr=SR)
    assert list(features.index) == names
    assert features["duration_s"] == 3.0
    assert np.isfinite(features.to_numpy()).all()


def test_handcrafted_transformer_returns_a_table():
    table = audio.HandcraftedFeatures(sr=SR).fit_transform([sine(seconds=1.0),
                                                            click_track(seconds=2.0)])
    assert isinstance(table, pd.DataFrame)
    assert table.shape == (2, 64)
    assert table["duration_s"].tolist() == [1.0, 2.0]


def test_handcrafted_transformer_not_fitted_raises():
    with pytest.raises(NotFittedError):
        audio.HandcraftedFeatures().transform([sine()])


def test_log_mel_batch_crops_and_pads():
    batch = audio.log_mel_batch([sine(seconds=2.0), sine(seconds=0.5)], sr=SR, n_frames=64)
    assert batch.shape == (2, 64, 96)
    assert (batch[1, 40:] == 0).all() and (batch[1, :30] > 0).any()


# --------------------------------------------------------------------------- preprocessing
def test_rms_normalisation_hits_target_level():
    y = audio.normalize_loudness(sine(amplitude=0.01), method="rms", target_db=-20.0)
    assert abs(audio.rms_dbfs(y) + 20.0) < 0.01


def test_peak_normalisation_hits_target_level():
    y = audio.normalize_loudness(sine(amplitude=0.01), method="peak", target_db=-6.0)
    np.testing.assert_allclose(np.abs(y).max(), 10 ** (-6 / 20), rtol=1e-4)


@pytest.mark.parametrize("kwargs", [{"method": "lufs"}, {"target_db": 3.0},
                                    {"target_db": float("nan")}])
def test_bad_normalisation_settings_raise(kwargs):
    with pytest.raises(ParameterError):
        audio.normalize_loudness(sine(), **kwargs)


def test_spectral_gate_removes_stationary_noise_and_keeps_the_tone():
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.zeros(SR, dtype=np.float32), sine(440.0, 1.0, amplitude=0.3),
                            np.zeros(SR, dtype=np.float32)])
    noisy = clean + 0.02 * rng.standard_normal(clean.size).astype(np.float32)
    denoised = audio.spectral_gate(noisy, sr=SR)
    assert denoised.shape == noisy.shape
    quiet = slice(0, SR - 2000)
    noise_drop_db = audio.rms_dbfs(noisy[quiet]) - audio.rms_dbfs(denoised[quiet])
    assert noise_drop_db > 12.0
    tone = slice(SR + 2000, 2 * SR - 2000)
    assert np.corrcoef(denoised[tone], clean[tone])[0, 1] > 0.99


def test_spectral_gate_transformer_can_learn_one_noise_floor():
    rng = np.random.default_rng(1)
    clips = [0.02 * rng.standard_normal(SR).astype(np.float32) for _ in range(3)]
    gate = audio.SpectralGate(sr=SR, noise_floor="fit").fit(clips)
    assert gate.noise_floor_db_.shape == (513,)
    out = gate.transform(clips)
    assert audio.rms_dbfs(out[0]) < audio.rms_dbfs(clips[0]) - 12.0


def test_spectral_gate_bad_setting_raises():
    with pytest.raises(ParameterError, match="noise_floor"):
        audio.SpectralGate(noise_floor="global").fit([sine()])


def test_trim_silence_cuts_leading_and_trailing_silence():
    y = np.concatenate([np.zeros(SR), sine(440.0, 1.0), np.zeros(SR)]).astype(np.float32)
    trimmed = audio.trim_silence(y, sr=SR)
    assert abs(trimmed.size - SR) < 1500


def test_fix_duration_pads_and_crops():
    y = sine(seconds=1.0)
    assert audio.fix_duration(y, sr=SR, duration=2.0).shape == (2 * SR,)
    cropped = audio.fix_duration(y, sr=SR, duration=0.5, anchor="center")
    np.testing.assert_array_equal(cropped, y[4000:12000])
    padded = audio.fix_duration(y[:10], sr=SR, duration=20 / SR, anchor="center")
    np.testing.assert_array_equal(padded[:5], 0.0)
    with pytest.raises(ParameterError, match="duration"):
        audio.fix_duration(y, sr=SR, duration=-1.0)


def test_preprocessing_pipeline_and_not_fitted_error():
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(audio.SilenceTrimmer(sr=SR), audio.LoudnessNormalizer(sr=SR),
                             audio.FixedDuration(sr=SR, duration=1.5))
    clips = [np.concatenate([np.zeros(4000), sine(amplitude=0.05)]).astype(np.float32),
             sine(seconds=2.0, amplitude=0.9)]
    out = pipeline.fit_transform(clips)
    assert [c.shape for c in out] == [(24000,), (24000,)]
    assert abs(audio.rms_dbfs(out[1]) + 20.0) < 0.1
    with pytest.raises(NotFittedError):
        audio.LoudnessNormalizer().transform(clips)


# --------------------------------------------------------------------------- Keras encoders
def test_cnn_encoder_shapes_and_training():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    encoder = audio.build_cnn_encoder(n_frames=32, n_mels=16, embedding_dim=8, filters=(4, 8))
    x = np.random.default_rng(0).random((6, 32, 16)).astype(np.float32)
    assert encoder(x).shape == (6, 8)
    model = audio.build_regression_head(encoder)
    history = model.fit(x, np.arange(6, dtype=np.float32), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_transformer_encoder_shapes():
    encoder = audio.build_transformer_encoder(n_frames=32, n_mels=16, embedding_dim=8,
                                              model_dim=16, num_heads=2, num_layers=1)
    x = np.random.default_rng(0).random((3, 32, 16)).astype(np.float32)
    assert encoder(x).shape == (3, 8)


def test_encoders_reject_bad_shapes():
    with pytest.raises(ParameterError, match="frames_per_token"):
        audio.build_transformer_encoder(n_frames=30, frames_per_token=4)
    with pytest.raises(ParameterError, match="num_heads"):
        audio.build_transformer_encoder(n_frames=32, model_dim=30, num_heads=4)
    with pytest.raises(ParameterError, match="pooling"):
        audio.build_cnn_encoder(n_frames=4, filters=(8, 8, 8))


def test_encoder_is_usable_as_a_branch_of_a_bigger_model():
    import tensorflow as tf

    branch = audio.build_cnn_encoder(n_frames=16, n_mels=16, embedding_dim=4, filters=(4,))
    spectrogram = tf.keras.Input(shape=(16, 16))
    other = tf.keras.Input(shape=(3,))
    merged = tf.keras.layers.Concatenate()([branch(spectrogram), other])
    model = tf.keras.Model([spectrogram, other], tf.keras.layers.Dense(1)(merged))
    assert model.output_shape == (None, 1)


# --------------------------------------------------------------------------- dataset cache
class _FakeDataset:
    def __init__(self, root: Path, clips: dict):
        self.root = root
        self.items = pd.DataFrame({"item_id": list(clips)})
        for item_id, samples in clips.items():
            write_wav(root / f"{item_id}.wav", samples)

    def clip_path(self, item_id):
        return self.root / f"{item_id}.wav"


def test_musicnn_features_are_cached_atomically(tmp_path, encoder, monkeypatch):
    root = tmp_path / "fakeset" / "small-seed0"
    root.mkdir(parents=True)
    dataset = _FakeDataset(root, {"i0": sine(330.0, 1.0), "i1": click_track(seconds=1.0)})
    cache = tmp_path / "cache"
    first = audio.dataset_musicnn_features(dataset, encoder=encoder, data_dir=cache)
    assert first.embeddings.shape == (2, 200) and first.probabilities.shape == (2, 50)
    # The data set path embeds clips in batches, embed() one at a time: TensorFlow's CPU
    # kernels sum in a batch-size-dependent order, so float32 results differ in the 6th digit
    # (3.3e-6 measured on values of order 1), not more.
    np.testing.assert_allclose(first.embeddings[0],
                               encoder.embed(audio.load_audio(root / "i0.wav"), sr=SR),
                               atol=1e-5)
    files = list((cache / "features" / "audio").rglob("*.npz"))
    assert len(files) == 1 and "fakeset-small-seed0" in str(files[0])
    assert not list((cache / "features" / "audio").rglob("*.part*"))

    def fail(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(audio.musicnn.MusicnnEncoder, "taggram", fail)
    monkeypatch.setattr(audio.musicnn.MusicnnEncoder, "embed_many", fail)
    second = audio.dataset_musicnn_features(dataset, data_dir=cache)
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert second.top_tags("i0", top_k=2)[0][0] == first.top_tags("i0", top_k=1)[0][0]


def test_handcrafted_dataset_features_are_cached(tmp_path):
    root = tmp_path / "fakeset" / "tiny"
    root.mkdir(parents=True)
    dataset = _FakeDataset(root, {"a": sine(seconds=0.5), "b": click_track(seconds=1.0)})
    table = audio.dataset_handcrafted_features(dataset, data_dir=tmp_path / "cache")
    assert list(table.index) == ["a", "b"] and table.shape == (2, 64)
    again = audio.dataset_handcrafted_features(dataset, data_dir=tmp_path / "cache")
    pd.testing.assert_frame_equal(table, again)


def test_lazy_waveforms_decode_on_first_access(tmp_path):
    root = tmp_path / "fakeset" / "tiny"
    root.mkdir(parents=True)
    dataset = _FakeDataset(root, {"a": sine(seconds=0.5), "b": sine(seconds=1.0)})
    lazy = audio.dataset_waveforms(dataset, lazy=True)
    assert len(lazy) == 2 and lazy._decoded == {}
    assert lazy[-1].shape == (SR,) and list(lazy._decoded) == [1]
    assert [w.size for w in lazy[:]] == [SR // 2, SR]
    eager = audio.dataset_waveforms(dataset)
    np.testing.assert_array_equal(eager[0], lazy[0])


def test_dataset_without_items_raises_parameter_error():
    with pytest.raises(ParameterError, match="items"):
        audio.dataset_musicnn_features(object())


# --------------------------------------------------------------------------- probes
def test_probe_r2_recovers_a_linear_target_and_not_noise():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 0.0]) + 0.05 * rng.standard_normal(200)
    assert audio.probe_r2(X, y) > 0.99
    assert audio.probe_r2(X, rng.standard_normal(200)) < 0.1


def test_probe_r2_rejects_bad_shapes():
    with pytest.raises(ParameterError, match="shape"):
        audio.probe_r2(np.zeros((20, 2)), np.zeros(19))
    with pytest.raises(ParameterError, match="too few"):
        audio.probe_r2(np.zeros((5, 2)), np.zeros(5))
