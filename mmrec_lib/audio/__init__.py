"""Audio understanding: loading, preprocessing, features, musicnn, Keras encoders (chapter 03) and speech (03b)."""

from mmrec_lib.audio._io import (
    DEFAULT_SR,
    check_waveform,
    load_audio,
    resample,
)
from mmrec_lib.audio.dataset import (
    MusicnnFeatures,
    dataset_handcrafted_features,
    dataset_log_mels,
    dataset_musicnn_features,
    dataset_waveforms,
    probe_r2,
)
from mmrec_lib.audio.encoders import (
    build_cnn_encoder,
    build_regression_head,
    build_transformer_encoder,
)
from mmrec_lib.audio.features import (
    CHROMA_NAMES,
    HandcraftedFeatures,
    chroma,
    handcrafted_feature_names,
    handcrafted_features,
    log_mel_batch,
    log_mel_spectrogram,
    mfcc,
    rms_energy,
    spectral_shape,
    tempo_and_beat_strength,
    zero_crossing_rate,
)
from mmrec_lib.audio.musicnn import (
    MUSICNN_MODELS,
    MusicnnEncoder,
    build_musicnn,
    load_musicnn_weights,
    musicnn_labels,
    musicnn_patches,
)
from mmrec_lib.audio.preprocessing import (
    FixedDuration,
    LoudnessNormalizer,
    SilenceTrimmer,
    SpectralGate,
    fix_duration,
    normalize_loudness,
    rms_dbfs,
    spectral_gate,
    trim_silence,
)
from mmrec_lib.audio.speech import (
    SPEECH_SR,
    SpeechRecognizer,
    SpeechSegment,
    Transcript,
    detect_speech,
    has_speech,
    probe_accuracy,
    whisper_model_dir,
)

__all__ = [
    "DEFAULT_SR", "load_audio", "check_waveform", "resample",
    "normalize_loudness", "spectral_gate", "trim_silence", "fix_duration", "rms_dbfs",
    "LoudnessNormalizer", "SpectralGate", "SilenceTrimmer", "FixedDuration",
    "log_mel_spectrogram", "log_mel_batch", "mfcc", "chroma", "spectral_shape", "rms_energy",
    "zero_crossing_rate", "tempo_and_beat_strength", "handcrafted_features",
    "handcrafted_feature_names", "HandcraftedFeatures", "CHROMA_NAMES",
    "MusicnnEncoder", "build_musicnn", "load_musicnn_weights", "musicnn_labels",
    "musicnn_patches", "MUSICNN_MODELS",
    "build_cnn_encoder", "build_transformer_encoder", "build_regression_head",
    "MusicnnFeatures", "dataset_waveforms",
    "dataset_musicnn_features", "dataset_handcrafted_features", "dataset_log_mels", "probe_r2",
    "SpeechRecognizer", "Transcript", "SpeechSegment", "detect_speech", "has_speech",
    "probe_accuracy",
    "whisper_model_dir", "SPEECH_SR",
]
