"""Audio loading: the audio track of a video or an audio file, as a mono float32 waveform."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.media import check_media_path, check_wav_complete, decode_audio

__all__ = [
    "load_audio",
    "check_waveform",
    "resample",
    "DEFAULT_SR",
    "MIN_SR",
    "MAX_SR",
    "SOUNDFILE_SUFFIXES",
]

#: Default target sample rate: musicnn's rate, and enough for speech and most music cues.
DEFAULT_SR = 16000
#: Sample rates outside [MIN_SR, MAX_SR] are treated as a mistake (e.g. ``sr=16`` for 16 kHz).
MIN_SR = 1000
MAX_SR = 384000
#: Files read with libsndfile; everything else (mp4, mkv, mp3, m4a, ...) goes through ffmpeg.
SOUNDFILE_SUFFIXES = (".wav", ".flac", ".ogg")


def _check_sr(sr, name: str = "sr") -> int:
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer):
        raise ParameterError(f"{name}={sr!r} must be an int sample rate in Hz, e.g. 16000")
    if not MIN_SR <= int(sr) <= MAX_SR:
        raise ParameterError(
            f"{name}={sr} Hz is not a plausible sample rate; expected an int in "
            f"[{MIN_SR}, {MAX_SR}] (in Hz, not kHz)"
        )
    return int(sr)


def check_waveform(waveform, sr, *, min_duration: float = 0.0, name: str = "waveform"):
    """Validate a waveform and its sample rate; return ``(float32 1-D array, int sr)``.

    Introduced in chapter 03. A waveform must be one channel (1-D; downmix
    stereo first, ``load_audio`` does), finite (NaN or inf samples raise: a
    single NaN would turn every spectrogram frame it touches, and then the
    whole embedding, into NaN) and at least ``min_duration`` seconds long.

    Parameters
    ----------
    waveform : array-like of shape (n_samples,)
    sr : int
        Sample rate in Hz, in [1000, 384000].
    min_duration : float
        Minimum length in seconds.

    Returns
    -------
    waveform : ndarray of shape (n_samples,), float32
    sr : int

    Raises
    ------
    ParameterError
        Wrong type, shape or sample rate.
    DataError
        Non-finite samples, or shorter than ``min_duration``.
    """
    sr = _check_sr(sr)
    try:
        array = np.asarray(waveform)
    except Exception as error:  # ragged lists and the like
        raise ParameterError(f"{name} must be a 1-D array of samples: {error}") from error
    if array.dtype.kind not in "fiub":
        raise ParameterError(f"{name} has dtype {array.dtype}; expected a float or int array")
    if array.ndim != 1:
        raise ParameterError(
            f"{name} has shape {array.shape}; expected a 1-D array (n_samples,) of one "
            "channel (average the channels of a stereo signal first)"
        )
    if array.dtype.kind in "iu":
        # Integer PCM: scale to [-1, 1] as soundfile and ffmpeg would.
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    array = array.astype(np.float32, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(
            f"{name} has {bad.size} non-finite (NaN or inf) samples, the first at index "
            f"{bad[0]} ({bad[0] / sr:.3f} s); repair or drop the clip (e.g. "
            "np.nan_to_num) before computing features"
        )
    duration = array.size / sr
    if array.size == 0 or duration < min_duration:
        raise DataError(
            f"{name} is {duration * 1000:.1f} ms long ({array.size} samples at {sr} Hz); "
            f"expected at least {min_duration * 1000:.0f} ms"
        )
    return array, sr


def resample(waveform: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a 1-D waveform from ``orig_sr`` to ``target_sr`` (soxr, high quality).

    Introduced in chapter 03.

    Returns
    -------
    ndarray of shape (round(n_samples * target_sr / orig_sr),), float32
    """
    orig_sr = _check_sr(orig_sr, "orig_sr")
    target_sr = _check_sr(target_sr, "target_sr")
    waveform = np.asarray(waveform, dtype=np.float32)
    if orig_sr == target_sr:
        return waveform
    import librosa

    return librosa.resample(waveform, orig_sr=orig_sr, target_sr=target_sr,
                            res_type="soxr_hq").astype(np.float32)


def _load_with_soundfile(path: Path, sr: int) -> np.ndarray:
    import soundfile

    if path.suffix.lower() == ".wav":
        check_wav_complete(path)
    try:
        data, file_sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile raises its own LibsndfileError
        raise DataError(f"cannot decode the audio of {path}: {error}") from error
    return resample(data.mean(axis=1), orig_sr=int(file_sr), target_sr=sr)


def load_audio(path: str | os.PathLike, *, sr: int = DEFAULT_SR) -> np.ndarray:
    """Load the (first) audio track of a video or audio file as a mono waveform.

    Introduced in chapter 03. Video and compressed files (mp4, mkv, mp3, m4a, ...)
    are decoded by the ffmpeg binary that ships with ``imageio-ffmpeg``
    (:func:`mmrec_lib.media.decode_audio`) straight
    to 32-bit float samples at ``sr``; wav/flac/ogg are read with ``soundfile``
    and resampled with soxr. Channels are averaged.

    Parameters
    ----------
    path : str or PathLike
    sr : int
        Target sample rate in Hz.

    Returns
    -------
    ndarray of shape (n_samples,), float32, nominally in [-1, 1]

    Raises
    ------
    DataError
        The file is missing, has no audio track, is empty, truncated or corrupt (ffmpeg
        reports damage, or the track is much shorter than the header says; see
        :mod:`mmrec_lib.media`) or cannot be decoded.
    ParameterError
        ``path`` is not a str or path, or ``sr`` is not a plausible sample rate.

    Examples
    --------
    >>> y = load_audio(ds.clip_path("i0000"), sr=16000)     # doctest: +SKIP
    """
    sr = _check_sr(sr)
    path = check_media_path(path)
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        waveform = _load_with_soundfile(path, sr)
    else:
        waveform = decode_audio(path, sr=sr)
    if waveform.size == 0:
        raise DataError(f"{path} has an audio track of zero length")
    if not np.isfinite(waveform).all():
        raise DataError(f"{path} decodes to non-finite samples")
    return waveform
