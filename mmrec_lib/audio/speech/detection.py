"""Speech detection: which stretches of a waveform sound like speech (level, flatness, peak stability)."""

from __future__ import annotations

import numpy as np

from mmrec_lib._validation import check_number
from mmrec_lib.audio._io import check_waveform, resample

__all__ = ["SPEECH_SR", "detect_speech", "has_speech"]

#: Both recognisers work on 16 kHz mono audio; other rates are resampled to it.
SPEECH_SR = 16000

# 64 ms analysis frames every 10 ms.
_N_FFT = 1024
_HOP = 160
_PEAKS = 5
_PEAK_LAG = 5
_BLOCK_FRAMES = 3000  # frames analysed at once: 30 s, so memory does not grow with the clip


def _frame_features(waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame level (dBFS), spectral flatness and peak stability of a 16 kHz waveform."""
    if waveform.size < _N_FFT:
        waveform = np.pad(waveform, (0, _N_FFT - waveform.size))
    n_frames = 1 + (waveform.size - _N_FFT) // _HOP
    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / SPEECH_SR)
    band = (freqs >= 100) & (freqs <= 3000)
    window = np.hanning(_N_FFT).astype(np.float32)
    level, flatness, peaks = [], [], []
    for first in range(0, n_frames, _BLOCK_FRAMES):
        count = min(_BLOCK_FRAMES, n_frames - first)
        start = first * _HOP
        block = waveform[start:start + (count - 1) * _HOP + _N_FFT]
        frames = np.lib.stride_tricks.sliding_window_view(block, _N_FFT)[::_HOP]
        rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
        level.append(20 * np.log10(rms + 1e-10))
        power = np.abs(np.fft.rfft(frames * window, axis=1))[:, band] ** 2 + 1e-12
        flatness.append(np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1))
        # The strongest spectral peaks of each frame, as a boolean mask over the bins.
        is_peak = np.zeros_like(power, dtype=bool)
        is_peak[:, 1:-1] = (power[:, 1:-1] > power[:, :-2]) & (power[:, 1:-1] >= power[:, 2:])
        top = np.argsort(-np.where(is_peak, power, 0.0), axis=1, kind="stable")[:, :_PEAKS]
        mask = np.zeros_like(is_peak)
        np.put_along_axis(mask, top, True, axis=1)
        peaks.append(mask)
    level, flatness, peaks = (np.concatenate(level), np.concatenate(flatness),
                              np.concatenate(peaks))
    # Peak stability: the share of a frame's top peaks still there (within one bin)
    # 50 ms later. A held musical note keeps its harmonics (~0.9); speech glides in
    # pitch and formants (~0.5); noise has no stable peaks (~0).
    later = np.concatenate([peaks[_PEAK_LAG:], np.zeros_like(peaks[:_PEAK_LAG])])
    widened = later | np.roll(later, 1, axis=1) | np.roll(later, -1, axis=1)
    stability = (peaks & widened).sum(axis=1) / _PEAKS
    stability[-_PEAK_LAG:] = stability[-_PEAK_LAG - 1] if n_frames > _PEAK_LAG else 0.0
    return level, flatness, stability


def detect_speech(waveform, sr: int, *, min_level_db: float = -50.0,
                  max_stability: float = 0.75, max_flatness: float = 0.3,
                  window_seconds: float = 0.5, min_speech_seconds: float = 0.8,
                  ) -> list[tuple[float, float]]:
    """Find the stretches of a waveform that sound like speech.

    Introduced in chapter 03b (speech). A classical detector, in three steps:

    1. *Level.* 64 ms frames every 10 ms; a frame is active if its RMS is above
       ``min_level_db`` dBFS and within 35 dB of the loudest frame.
    2. *Speech-like spectrum,* per window of ``window_seconds`` (half-overlapping),
       over the active frames of the 100-3000 Hz band (voice fundamentals and
       formants): the spectrum is peaky (median spectral flatness below
       ``max_flatness``, which rules out noise, hiss and applause) and its peaks move
       (mean *peak stability* below ``max_stability``: the share of the five strongest
       peaks still present 50 ms later, ~0.9 for held musical notes, ~0.5 for speech,
       even with music 15 dB below it). A window needs half its frames active.
    3. *Duration.* Overlapping speech windows merge into segments; segments shorter
       than ``min_speech_seconds`` are dropped.

    It is deliberately simple and does not replace a trained detector: singing with
    glides, or very quiet speech under loud music, can fool it.

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)
        Mono samples in [-1, 1]; any rate (resampled to 16 kHz for the analysis).
    sr : int
    min_level_db, max_stability, max_flatness, window_seconds, min_speech_seconds : float

    Returns
    -------
    list of (start, end) tuples of float
        Speech segments in seconds, in order, not overlapping; ``[]`` if none.

    Raises
    ------
    ParameterError, DataError
        As :func:`mmrec_lib.audio.check_waveform` (empty, NaN, not 1-D, bad ``sr``).

    Examples
    --------
    >>> detect_speech(np.zeros(16000, dtype=np.float32), 16000)
    []
    """
    waveform, sr = check_waveform(waveform, sr)
    min_level_db = check_number("min_level_db", min_level_db, high=0.0)
    max_stability = check_number("max_stability", max_stability, low=0.0, high=1.0)
    max_flatness = check_number("max_flatness", max_flatness, low=0.0, high=1.0)
    window_seconds = check_number("window_seconds", window_seconds, low=0.05, high=10.0)
    min_speech_seconds = check_number("min_speech_seconds", min_speech_seconds, low=0.0)
    waveform = resample(waveform, orig_sr=sr, target_sr=SPEECH_SR)
    level, flatness, stability = _frame_features(waveform)
    active = (level > min_level_db) & (level > level.max() - 35.0)
    frames_per_window = max(1, int(round(window_seconds * SPEECH_SR / _HOP)))
    step = max(1, frames_per_window // 2)
    duration = waveform.size / SPEECH_SR
    segments: list[list[float]] = []
    for first in range(0, max(1, len(level) - frames_per_window + 1), step):
        chosen = slice(first, first + frames_per_window)
        on = active[chosen]
        if on.sum() < 0.5 * on.size:
            continue
        if np.median(flatness[chosen][on]) > max_flatness:
            continue
        if np.mean(stability[chosen][on]) > max_stability:
            continue
        start = first * _HOP / SPEECH_SR
        end = min(duration, (first + frames_per_window) * _HOP / SPEECH_SR + _N_FFT / SPEECH_SR)
        if segments and start <= segments[-1][1]:
            segments[-1][1] = end
        else:
            segments.append([start, end])
    return [(round(start, 3), round(end, 3)) for start, end in segments
            if end - start >= min_speech_seconds]


def has_speech(waveform, sr: int, **detector_options) -> bool:
    """``True`` if :func:`detect_speech` finds at least one speech segment.

    Introduced in chapter 03b (speech).
    """
    return bool(detect_speech(waveform, sr, **detector_options))
