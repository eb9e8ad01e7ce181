"""Audio features: log-mel spectrogram, MFCC, chroma, spectral shape, tempo, and a summary vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._validation import check_int
from mmrec_lib.audio._io import _check_sr, check_waveform
from mmrec_lib.errors import DataError
from mmrec_lib.utils import check_is_fitted

__all__ = [
    "log_mel_spectrogram",
    "mfcc",
    "chroma",
    "spectral_shape",
    "rms_energy",
    "zero_crossing_rate",
    "tempo_and_beat_strength",
    "handcrafted_features",
    "handcrafted_feature_names",
    "HandcraftedFeatures",
    "log_mel_batch",
    "N_MFCC",
    "CHROMA_NAMES",
    "MIN_FEATURE_DURATION",
]

#: Number of MFCC coefficients summarised by :func:`handcrafted_features`.
N_MFCC = 13
#: Pitch classes of the chroma features, in librosa's order.
CHROMA_NAMES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
#: Shortest clip (s) the summary features accept: below this there is no frame to summarise.
MIN_FEATURE_DURATION = 0.1
_N_FFT = 1024
_HOP = 256
#: Loudest sample the summary features accept. Audio lives in [-1, 1] (or in PCM units up
#: to ~2e9 for int32 scaled by hand); far beyond, the float32 power spectrum overflows to
#: inf and librosa fails deep inside with its own error.
_MAX_PEAK = 1e12


def _check_feature_waveform(waveform, sr) -> tuple[np.ndarray, int]:
    waveform, sr = check_waveform(waveform, sr, min_duration=MIN_FEATURE_DURATION)
    peak = float(np.abs(waveform).max())
    if peak > _MAX_PEAK:
        raise DataError(f"the waveform is too loud for float32 features (peak |sample| = "
                        f"{peak:.3g} > {_MAX_PEAK:.0e}); scale it to [-1, 1] first")
    return waveform, sr


def log_mel_spectrogram(waveform, *, sr: int, n_fft: int = 512, hop_length: int = 256,
                        n_mels: int = 96) -> np.ndarray:
    """Log-compressed mel spectrogram, frames first, computed in float32.

    Introduced in chapter 03. The defaults are musicnn's front end: at 16 kHz a
    512-point FFT (32 ms Hann window), hop 256 (16 ms), 96 Slaney mel bands,
    power spectrum, compressed as ``log10(10000 * mel + 1)``. The original musicnn
    casts the mel power to float16 first, which overflows to inf (and NaN tags)
    for loud audio; here everything stays float32.

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)
    sr : int
    n_fft, hop_length, n_mels : int

    Returns
    -------
    ndarray of shape (1 + n_samples // hop_length, n_mels), float32
    """
    waveform, sr = check_waveform(waveform, sr)
    n_fft, hop_length = check_int("n_fft", n_fft), check_int("hop_length", hop_length)
    n_mels = check_int("n_mels", n_mels)
    import librosa

    # Overflow (inf) is detected below and reported, so numpy's warnings are noise.
    with np.errstate(over="ignore", invalid="ignore"):
        mel = librosa.feature.melspectrogram(y=waveform, sr=sr, n_fft=n_fft,
                                             hop_length=hop_length, n_mels=n_mels)
        log_mel = np.log10(np.float32(10000) * mel.T.astype(np.float32) + np.float32(1))
    if not np.isfinite(log_mel).all():
        raise DataError(
            f"the waveform is too loud for a float32 spectrogram (peak |sample| = "
            f"{np.abs(waveform).max():.3g}); scale it to [-1, 1] first"
        )
    return log_mel.astype(np.float32)


def log_mel_batch(waveforms: Sequence, *, sr: int, n_frames: int, n_mels: int = 96) -> np.ndarray:
    """Log-mel spectrograms of several clips cropped or zero-padded to ``n_frames``.

    Introduced in chapter 03: the fixed-size input of the CNN and Transformer
    encoders. Long clips keep their first ``n_frames`` frames; short ones are
    padded with zeros (the log-mel of silence).

    Returns
    -------
    ndarray of shape (n_clips, n_frames, n_mels), float32
    """
    n_frames = check_int("n_frames", n_frames)
    out = np.zeros((len(waveforms), n_frames, n_mels), dtype=np.float32)
    for row, waveform in enumerate(waveforms):
        spec = log_mel_spectrogram(waveform, sr=sr, n_mels=n_mels)[:n_frames]
        out[row, : len(spec)] = spec
    return out


def mfcc(waveform, *, sr: int, n_mfcc: int = N_MFCC, deltas: bool = True) -> np.ndarray:
    """Mel-frequency cepstral coefficients, optionally with first and second deltas.

    Introduced in chapter 03. MFCCs are the DCT of the log-mel spectrum: the
    first coefficients describe the spectral envelope (timbre), not the pitch.

    Returns
    -------
    ndarray of shape (n_frames, n_mfcc) or (n_frames, 3 * n_mfcc) with deltas, float32
    """
    waveform, sr = _check_feature_waveform(waveform, sr)
    import librosa

    coefficients = librosa.feature.mfcc(y=waveform, sr=sr, n_mfcc=n_mfcc, n_fft=_N_FFT,
                                        hop_length=_HOP)
    parts = [coefficients]
    if deltas:
        # The delta window must fit the clip: 9 frames by default, fewer for short clips.
        width = min(9, coefficients.shape[1] - (1 - coefficients.shape[1] % 2))
        if width >= 3:
            parts.append(librosa.feature.delta(coefficients, width=width, order=1))
            parts.append(librosa.feature.delta(coefficients, width=width, order=2))
        else:
            parts += [np.zeros_like(coefficients)] * 2
    return np.concatenate(parts, axis=0).T.astype(np.float32)


def chroma(waveform, *, sr: int) -> np.ndarray:
    """Chroma (energy per pitch class C..B), frames first.

    Introduced in chapter 03.

    Returns
    -------
    ndarray of shape (n_frames, 12), float32 in [0, 1]
    """
    waveform, sr = _check_feature_waveform(waveform, sr)
    import librosa

    # tuning=0: A4 = 440 Hz. Estimating the tuning per clip is slow and fails on silence.
    return librosa.feature.chroma_stft(y=waveform, sr=sr, n_fft=_N_FFT, hop_length=_HOP,
                                       tuning=0.0).T.astype(np.float32)


def spectral_shape(waveform, *, sr: int) -> np.ndarray:
    """Spectral centroid, bandwidth and 85 % roll-off in Hz, frames first.

    Introduced in chapter 03. Bright sounds have a high centroid; noisy ones a
    wide bandwidth.

    Returns
    -------
    ndarray of shape (n_frames, 3), float32: centroid, bandwidth, roll-off
    """
    waveform, sr = _check_feature_waveform(waveform, sr)
    import librosa

    magnitude = np.abs(librosa.stft(waveform, n_fft=_N_FFT, hop_length=_HOP))
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=sr)
    bandwidth = librosa.feature.spectral_bandwidth(S=magnitude, sr=sr, centroid=centroid)
    rolloff = librosa.feature.spectral_rolloff(S=magnitude, sr=sr, roll_percent=0.85)
    return np.concatenate([centroid, bandwidth, rolloff], axis=0).T.astype(np.float32)


def rms_energy(waveform, *, sr: int) -> np.ndarray:
    """Root-mean-square energy per frame (frame 1024, hop 256).

    Introduced in chapter 03.

    Returns
    -------
    ndarray of shape (n_frames,), float32
    """
    waveform, sr = _check_feature_waveform(waveform, sr)
    import librosa

    return librosa.feature.rms(y=waveform, frame_length=_N_FFT, hop_length=_HOP)[0].astype(
        np.float32)


def zero_crossing_rate(waveform, *, sr: int) -> np.ndarray:
    """Fraction of sign changes per frame: high for noise and hi-hats, low for bass.

    Introduced in chapter 03.

    Returns
    -------
    ndarray of shape (n_frames,), float32 in [0, 1]
    """
    waveform, sr = _check_feature_waveform(waveform, sr)
    import librosa

    return librosa.feature.zero_crossing_rate(waveform, frame_length=_N_FFT,
                                              hop_length=_HOP)[0].astype(np.float32)


def tempo_and_beat_strength(waveform, *, sr: int) -> tuple[float, float]:
    """Estimated tempo (beats per minute) and beat strength.

    Introduced in chapter 03. The onset-strength envelope (how much the
    spectrum grows from one frame to the next) is autocorrelated to find the
    dominant period; the beat tracker then places beats on it. Beat strength is
    the mean onset strength at the beats divided by the mean onset strength
    overall: about 1 when the beats do not stand out, larger for a clear pulse.
    A clip without onsets (silence, a steady tone) gets ``(0.0, 0.0)``.

    Returns
    -------
    tempo_bpm : float
    beat_strength : float
    """
    waveform, sr = _check_feature_waveform(waveform, sr)
    import librosa

    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(
        y=waveform, sr=sr, n_fft=_N_FFT, hop_length=_HOP))
    return _tempo_from_mel_db(mel_db, sr)


def _tempo_from_mel_db(mel_db: np.ndarray, sr: int) -> tuple[float, float]:
    import librosa

    envelope = librosa.onset.onset_strength(S=mel_db, sr=sr, hop_length=_HOP)
    if envelope.size < 4 or float(envelope.mean()) <= 1e-8:
        return 0.0, 0.0
    tempo, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=sr, hop_length=_HOP)
    tempo = float(np.atleast_1d(tempo)[0])
    if beats.size == 0 or not np.isfinite(tempo):
        return 0.0, 0.0
    strength = float(envelope[beats].mean() / envelope.mean())
    return tempo, strength


def handcrafted_feature_names() -> list[str]:
    """Column names of :func:`handcrafted_features`, in order.

    Introduced in chapter 03.
    """
    names = ["duration_s", "rms_mean", "rms_std", "zcr_mean", "zcr_std",
             "centroid_mean", "centroid_std", "bandwidth_mean", "bandwidth_std",
             "rolloff_mean", "rolloff_std", "tempo_bpm", "beat_strength"]
    names += [f"mfcc{k:02d}_{stat}" for k in range(1, N_MFCC + 1) for stat in ("mean", "std")]
    names += [f"mfcc{k:02d}_delta_std" for k in range(1, N_MFCC + 1)]
    names += [f"chroma_{note}" for note in CHROMA_NAMES]
    return names


def handcrafted_features(waveform, *, sr: int) -> pd.Series:
    """A fixed-length summary of a clip: means and spreads of classic audio features.

    Introduced in chapter 03. Columns (see :func:`handcrafted_feature_names`):
    duration; mean and standard deviation over frames of RMS energy,
    zero-crossing rate, spectral centroid, bandwidth and roll-off (Hz); tempo
    and beat strength; mean and std of 13 MFCCs and the std of their deltas;
    the mean chroma per pitch class.

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)
    sr : int

    Returns
    -------
    pandas.Series of length 64, float64, indexed by feature name; all finite

    Raises
    ------
    DataError
        Non-finite samples, a clip shorter than 0.1 s, or one so loud (peak
        above 1e12) that its float32 power spectrum would overflow.
    """
    waveform, sr = _check_feature_waveform(waveform, sr)
    import librosa

    # One STFT feeds every spectral feature (the single-feature functions above
    # compute the same values, each from its own STFT).
    magnitude = np.abs(librosa.stft(waveform, n_fft=_N_FFT, hop_length=_HOP))
    power = magnitude ** 2
    mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=sr)
    shape = np.concatenate([
        centroid,
        librosa.feature.spectral_bandwidth(S=magnitude, sr=sr, centroid=centroid),
        librosa.feature.spectral_rolloff(S=magnitude, sr=sr, roll_percent=0.85),
    ], axis=0).T
    coefficients = librosa.feature.mfcc(S=mel_db, n_mfcc=N_MFCC)
    width = min(9, coefficients.shape[1] - (1 - coefficients.shape[1] % 2))
    delta = (librosa.feature.delta(coefficients, width=width, order=1) if width >= 3
             else np.zeros_like(coefficients))
    chroma_mean = librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0).mean(axis=1)
    tempo, strength = _tempo_from_mel_db(mel_db, sr)
    rms = rms_energy(waveform, sr=sr)
    zcr = zero_crossing_rate(waveform, sr=sr)
    values = [waveform.size / sr, rms.mean(), rms.std(), zcr.mean(), zcr.std()]
    for column in range(3):
        values += [shape[:, column].mean(), shape[:, column].std()]
    values += [tempo, strength]
    for k in range(N_MFCC):
        values += [coefficients[k].mean(), coefficients[k].std()]
    values += list(delta.std(axis=1))
    values += list(chroma_mean)
    series = pd.Series(np.asarray(values, dtype=np.float64), index=handcrafted_feature_names(),
                       name="handcrafted")
    if not np.isfinite(series.to_numpy()).all():
        bad = list(series.index[~np.isfinite(series.to_numpy())])
        raise DataError(f"handcrafted features {bad} are not finite for this clip")
    return series


class HandcraftedFeatures(TransformerMixin, BaseEstimator):
    """Turn a list of waveforms into the :func:`handcrafted_features` table.

    Introduced in chapter 03.

    Parameters
    ----------
    sr : int
        Sample rate of the waveforms.

    Attributes
    ----------
    feature_names_ : list of str
    """

    def __init__(self, *, sr: int = 16000):
        self.sr = sr

    def fit(self, X=None, y=None):
        _check_sr(self.sr)
        self.feature_names_ = handcrafted_feature_names()
        return self

    def transform(self, X) -> pd.DataFrame:
        """Return a DataFrame of shape (n_clips, 64) with named columns."""
        check_is_fitted(self)
        rows = [handcrafted_features(waveform, sr=self.sr) for waveform in X]
        return pd.DataFrame(rows, columns=self.feature_names_).reset_index(drop=True)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.asarray(self.feature_names_, dtype=object)
