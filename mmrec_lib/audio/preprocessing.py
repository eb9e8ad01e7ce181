"""Waveform preprocessing as scikit-learn transformers: loudness, denoising, trimming, length."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._validation import check_choice, check_matrix, check_number
from mmrec_lib.audio._io import _check_sr, check_waveform
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.utils import check_is_fitted

__all__ = [
    "normalize_loudness",
    "spectral_gate",
    "trim_silence",
    "fix_duration",
    "LoudnessNormalizer",
    "SpectralGate",
    "SilenceTrimmer",
    "FixedDuration",
    "rms_dbfs",
]

#: Below this RMS (about -120 dBFS) a clip counts as digital silence and is left unscaled.
_SILENCE_RMS = 1e-6


def _check_samples(waveform, *, allow_empty: bool = False) -> np.ndarray:
    """A 1-D array of finite samples (no sample rate needed), in its own dtype."""
    array = check_matrix("waveform", waveform, ndim=1)
    if array.dtype.kind == "f" and array.dtype.itemsize > 4 \
            and np.abs(array).max(initial=0.0) > np.finfo(np.float32).max:
        raise DataError("waveform has samples too large for float32 (|x| > 3.4e38)")
    if array.size == 0 and not allow_empty:
        raise DataError("waveform is empty; expected at least one sample")
    return array


def rms_dbfs(waveform) -> float:
    """RMS level in dB relative to full scale (a full-scale sine is -3.01 dBFS).

    Introduced in chapter 03. Digital silence (and an empty clip) gives ``-inf``;
    a NaN or infinite sample raises :class:`~mmrec_lib.errors.DataError` (it is
    not silence), and so does a clip that is not 1-D.
    """
    waveform = _check_samples(waveform, allow_empty=True).astype(np.float64)
    rms = float(np.sqrt(np.mean(waveform ** 2))) if waveform.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def normalize_loudness(waveform, *, method: Literal["rms", "peak"] = "rms",
                       target_db: float = -20.0) -> np.ndarray:
    """Scale a clip to a target RMS or peak level in dBFS.

    Introduced in chapter 03. ``method="rms"`` matches the average power (a
    rough proxy for perceived loudness; -20 dBFS leaves headroom for peaks);
    ``method="peak"`` makes the largest sample ``10 ** (target_db / 20)``.
    Samples are then clipped to [-1, 1], so an RMS target on a very peaky clip
    may clip a few samples. Silence (RMS below 1e-6) is returned unchanged
    instead of being amplified into noise or divided by zero. The clip must be
    1-D (one channel), non-empty and finite: a NaN sample raises
    :class:`~mmrec_lib.errors.DataError` instead of turning the whole clip into NaN.

    Returns
    -------
    ndarray of shape (n_samples,), float32
    """
    check_choice("method", method, ("rms", "peak"))
    check_number("target_db", target_db, high=0.0)
    waveform = _check_samples(waveform).astype(np.float32)
    if method == "rms":
        level = float(np.sqrt(np.mean(waveform.astype(np.float64) ** 2)))
    else:
        level = float(np.abs(waveform).max())
    if level < _SILENCE_RMS:
        return waveform.copy()
    gain = 10.0 ** (target_db / 20.0) / level
    return np.clip(waveform * np.float32(gain), -1.0, 1.0).astype(np.float32)


def _stft_params(sr: int) -> tuple[int, int]:
    n_fft = 1024 if sr >= 16000 else 512
    return n_fft, n_fft // 4


def _noise_floor_db(magnitude_db: np.ndarray, quantile: float) -> np.ndarray:
    """Per-frequency noise floor: the ``quantile`` of each bin's level over frames."""
    return np.quantile(magnitude_db, quantile, axis=1)


def _check_gate_params(noise_quantile, threshold_db, reduction_db) -> None:
    check_number("noise_quantile", noise_quantile, low=0.0, high=1.0, low_inclusive=False,
                 high_inclusive=False)
    check_number("threshold_db", threshold_db, low=0.0)
    check_number("reduction_db", reduction_db, low=0.0)


def spectral_gate(waveform, *, sr: int, threshold_db: float = 12.0, reduction_db: float = 24.0,
                  noise_quantile: float = 0.2, noise_floor_db: np.ndarray | None = None
                  ) -> np.ndarray:
    """Denoise by spectral gating against an estimated noise floor.

    Introduced in chapter 03. The short-time spectrum is computed (1024-point
    FFT at 16 kHz and above); the noise floor of each frequency bin is the
    ``noise_quantile`` of its level over the frames (stationary noise is
    present even in the quietest frames, music is not), unless a floor is
    given. A time-frequency cell more than ``threshold_db`` above the floor is
    kept; others are attenuated by ``reduction_db``. The gain mask is smoothed
    over 3 frequency bins x 3 frames to avoid "musical noise" and the signal is
    resynthesised with the inverse STFT, at the same length.

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)
    sr : int
    threshold_db, reduction_db : float
    noise_quantile : float in (0, 1)
    noise_floor_db : ndarray of shape (n_fft // 2 + 1,) or None

    Returns
    -------
    ndarray of shape (n_samples,), float32
    """
    waveform, sr = check_waveform(waveform, sr)
    _check_gate_params(noise_quantile, threshold_db, reduction_db)
    import librosa
    from scipy.ndimage import uniform_filter

    n_fft, hop = _stft_params(sr)
    if waveform.size < n_fft:
        return waveform.copy()
    spectrum = librosa.stft(waveform, n_fft=n_fft, hop_length=hop)
    magnitude_db = 20.0 * np.log10(np.abs(spectrum) + 1e-10)
    if noise_floor_db is None:
        floor = _noise_floor_db(magnitude_db, noise_quantile)
    else:
        floor = np.asarray(noise_floor_db, dtype=np.float64)
        if floor.shape != (magnitude_db.shape[0],):
            raise ParameterError(
                f"noise_floor_db has shape {floor.shape}; expected ({magnitude_db.shape[0]},)")
        if not np.isfinite(floor).all():
            raise DataError("noise_floor_db contains NaN or infinite values")
    keep = (magnitude_db > floor[:, None] + threshold_db).astype(np.float64)
    keep = uniform_filter(keep, size=3, mode="nearest")
    attenuation = 10.0 ** (-reduction_db / 20.0)
    gain = attenuation + (1.0 - attenuation) * keep
    cleaned = librosa.istft(spectrum * gain, hop_length=hop, n_fft=n_fft, length=waveform.size)
    return cleaned.astype(np.float32)


def trim_silence(waveform, *, sr: int, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing parts quieter than ``top_db`` below the clip's peak.

    Introduced in chapter 03. A clip that is all silence is returned unchanged
    (an empty clip would break every later step).

    Returns
    -------
    ndarray of shape (n_kept,), float32
    """
    waveform, sr = check_waveform(waveform, sr)
    check_number("top_db", top_db, low=0.0, low_inclusive=False)
    if np.abs(waveform).max() < _SILENCE_RMS:
        return waveform.copy()
    import librosa

    trimmed, _ = librosa.effects.trim(waveform, top_db=top_db, frame_length=1024,
                                      hop_length=256)
    return trimmed.astype(np.float32) if trimmed.size else waveform.copy()


def fix_duration(waveform, *, sr: int, duration: float,
                 anchor: Literal["start", "center"] = "start") -> np.ndarray:
    """Crop or zero-pad a clip to exactly ``round(duration * sr)`` samples.

    Introduced in chapter 03. ``anchor="start"`` keeps the beginning and pads
    at the end; ``"center"`` keeps the middle and pads both sides equally.

    Returns
    -------
    ndarray of shape (round(duration * sr),), float32
    """
    waveform, sr = check_waveform(waveform, sr)
    check_choice("anchor", anchor, ("start", "center"))
    check_number("duration", duration, low=0.0, low_inclusive=False)
    length = int(round(duration * sr))
    if length < 1:
        raise ParameterError(f"duration={duration} s is shorter than one sample at {sr} Hz")
    if waveform.size >= length:
        start = 0 if anchor == "start" else (waveform.size - length) // 2
        return waveform[start: start + length].copy()
    missing = length - waveform.size
    before = 0 if anchor == "start" else missing // 2
    return np.pad(waveform, (before, missing - before)).astype(np.float32)


class _WaveformTransformer(TransformerMixin, BaseEstimator):
    """Shared plumbing: X is a list of 1-D waveforms; the output is a list too."""

    def _check_params(self) -> None:  # overridden
        pass

    def fit(self, X, y=None):
        self._check_params()
        _check_sr(self.sr)
        self.n_clips_seen_ = len(X)
        return self

    def transform(self, X) -> list[np.ndarray]:
        check_is_fitted(self)
        return [self._transform_one(np.asarray(waveform)) for waveform in X]

    def _transform_one(self, waveform: np.ndarray) -> np.ndarray:  # overridden
        raise NotImplementedError


class LoudnessNormalizer(_WaveformTransformer):
    """Scale every clip to the same RMS (default) or peak level.

    Introduced in chapter 03; see :func:`normalize_loudness`.

    Parameters
    ----------
    method : {"rms", "peak"}
    target_db : float
        Target level in dBFS (<= 0).
    sr : int
    """

    def __init__(self, *, method: Literal["rms", "peak"] = "rms", target_db: float = -20.0,
                 sr: int = 16000):
        self.method = method
        self.target_db = target_db
        self.sr = sr

    def _check_params(self) -> None:
        normalize_loudness(np.zeros(4, dtype=np.float32), method=self.method,
                           target_db=self.target_db)

    def _transform_one(self, waveform):
        waveform, _ = check_waveform(waveform, self.sr)
        return normalize_loudness(waveform, method=self.method, target_db=self.target_db)


class SpectralGate(_WaveformTransformer):
    """Spectral-gating denoiser; see :func:`spectral_gate`.

    Introduced in chapter 03. With ``noise_floor="per_clip"`` (default) each
    clip's floor is estimated from that clip; with ``"fit"`` one floor, the
    median of the per-clip floors of the training clips, is learnt in ``fit``
    (``noise_floor_db_``) and used for every clip: better when the recording
    chain, and so the noise, is shared.

    Parameters
    ----------
    sr : int
    threshold_db, reduction_db, noise_quantile : float
    noise_floor : {"per_clip", "fit"}
    """

    def __init__(self, *, sr: int = 16000, threshold_db: float = 12.0, reduction_db: float = 24.0,
                 noise_quantile: float = 0.2,
                 noise_floor: Literal["per_clip", "fit"] = "per_clip"):
        self.sr = sr
        self.threshold_db = threshold_db
        self.reduction_db = reduction_db
        self.noise_quantile = noise_quantile
        self.noise_floor = noise_floor

    def _check_params(self) -> None:
        check_choice("noise_floor", self.noise_floor, ("per_clip", "fit"))
        _check_gate_params(self.noise_quantile, self.threshold_db, self.reduction_db)

    def fit(self, X, y=None):
        super().fit(X, y)
        self.noise_floor_db_ = None
        if self.noise_floor == "fit":
            import librosa

            n_fft, hop = _stft_params(self.sr)
            floors = []
            for waveform in X:
                waveform, _ = check_waveform(waveform, self.sr)
                if waveform.size < n_fft:
                    continue
                level = 20.0 * np.log10(
                    np.abs(librosa.stft(waveform, n_fft=n_fft, hop_length=hop)) + 1e-10)
                floors.append(_noise_floor_db(level, self.noise_quantile))
            if not floors:
                raise ParameterError(
                    f"noise_floor='fit' needs at least one clip of >= {n_fft} samples")
            self.noise_floor_db_ = np.median(np.stack(floors), axis=0)
        return self

    def _transform_one(self, waveform):
        return spectral_gate(waveform, sr=self.sr, threshold_db=self.threshold_db,
                             reduction_db=self.reduction_db,
                             noise_quantile=self.noise_quantile,
                             noise_floor_db=self.noise_floor_db_)


class SilenceTrimmer(_WaveformTransformer):
    """Trim leading/trailing silence; see :func:`trim_silence`.

    Introduced in chapter 03.
    """

    def __init__(self, *, sr: int = 16000, top_db: float = 40.0):
        self.sr = sr
        self.top_db = top_db

    def _check_params(self) -> None:
        check_number("top_db", self.top_db, low=0.0, low_inclusive=False)

    def _transform_one(self, waveform):
        return trim_silence(waveform, sr=self.sr, top_db=self.top_db)


class FixedDuration(_WaveformTransformer):
    """Crop or pad every clip to ``duration`` seconds; see :func:`fix_duration`.

    Introduced in chapter 03. After it, the list of clips stacks into one array
    of shape (n_clips, round(duration * sr)).
    """

    def __init__(self, *, sr: int = 16000, duration: float = 3.0,
                 anchor: Literal["start", "center"] = "start"):
        self.sr = sr
        self.duration = duration
        self.anchor = anchor

    def _check_params(self) -> None:
        fix_duration(np.zeros(4, dtype=np.float32), sr=self.sr, duration=self.duration,
                     anchor=self.anchor)

    def _transform_one(self, waveform):
        return fix_duration(waveform, sr=self.sr, duration=self.duration, anchor=self.anchor)
