"""The one media decoder: finds the ffmpeg binary and decodes video frames and audio tracks with it.

Every video and audio file of the series goes through this module (chapters 01, 03 and 04):
``vision.read_frames``, ``vision.read_video``, ``vision.probe_video``, ``audio.load_audio``,
MiniClips' ``read_frames``/``read_audio`` and ``datasets.load_video_folder`` are thin layers
over it. ffmpeg itself comes from the ``imageio-ffmpeg`` wheel, so nothing has to be
installed system-wide.

A file cut short (an interrupted download or copy) is the nasty case: ffmpeg decodes what
is there, exits with status 0 and only *reports* the damage on stderr. Each decoder here
therefore reads ffmpeg's log and refuses the result when ffmpeg reported damage
(:data:`DAMAGE_PATTERN`) or when the decoded stream is much shorter than the duration the
file's header announces (:func:`check_length`), with a :class:`~mmrec_lib.errors.DataError`
that names the file and the problem.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmrec_lib.errors import DataError, EnvironmentError, ParameterError

__all__ = [
    "ffmpeg_exe",
    "check_media_path",
    "VideoInfo",
    "probe_video",
    "decode_video",
    "decode_audio",
    "scan_video",
    "check_length",
    "check_wav_complete",
    "DAMAGE_PATTERN",
    "LENGTH_TOLERANCE_S",
    "LENGTH_TOLERANCE_FRACTION",
]

#: Lines of ffmpeg's log that report a damaged file (searched case-insensitively). A
#: truncated mdat decodes partly with exit status 0; these lines are the only trace.
DAMAGE_PATTERN = re.compile(r".*(partial file|Invalid NAL|error while decoding|corrupt).*",
                            re.IGNORECASE)

#: A decoded stream may fall short of the header's duration by this many seconds...
LENGTH_TOLERANCE_S = 0.5
#: ... or by this fraction of the duration, whichever is larger, before it counts as truncated
#: (tracks of a real file often end a few frames apart).
LENGTH_TOLERANCE_FRACTION = 0.1

_FPS_RE = re.compile(r"([\d.]+) (?:fps|tbr)")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_TIME_RE = re.compile(r"time=(\d+):(\d+):([\d.]+)")
_FRAME_RE = re.compile(r"frame=\s*(\d+)")


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by the ``imageio-ffmpeg`` wheel.

    ``imageio_ffmpeg.get_ffmpeg_exe`` looks, in this order, at the ``IMAGEIO_FFMPEG_EXE``
    environment variable, the binary inside the wheel, then an ``ffmpeg`` on the ``PATH``.

    Raises
    ------
    EnvironmentError
        If ``imageio-ffmpeg`` is not installed or finds no binary.
    """
    try:
        import imageio_ffmpeg
    except ImportError as error:  # pragma: no cover - a declared dependency
        raise EnvironmentError("imageio-ffmpeg is needed to decode and encode video files: "
                               "pip install imageio-ffmpeg") from error
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:  # pragma: no cover - the wheel ships a binary
        raise EnvironmentError(f"imageio-ffmpeg found no ffmpeg binary: {error}") from error


def check_media_path(path) -> Path:
    """``path`` as a :class:`~pathlib.Path` to an existing, non-empty file.

    Raises
    ------
    ParameterError
        ``path`` is not a str or path (``None``, a number, ...).
    DataError
        The file is missing, is a directory or is empty.
    """
    if not isinstance(path, str | os.PathLike):
        raise ParameterError(f"path={path!r} must be a str or a path, not {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a media file")
    if not path.is_file():
        raise DataError(f"{path}: no such file (it does not exist)")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes)")
    return path


@dataclass(frozen=True)
class VideoInfo:
    """What the container header says about a video stream (chapter 04).

    Attributes
    ----------
    path : Path
    width, height : int
        Frame size in pixels.
    fps : float
        Frames per second.
    duration_s : float
        Container duration in seconds.
    """

    path: Path
    width: int
    height: int
    fps: float
    duration_s: float

    @property
    def num_frames(self) -> int:
        """Frame count estimated from the header: ``round(duration_s * fps)``."""
        return int(round(self.duration_s * self.fps))


def _run(command: list[str]) -> tuple[bytes, str, int]:
    result = subprocess.run(command, capture_output=True, check=False)
    return result.stdout, result.stderr.decode("utf-8", errors="replace"), result.returncode


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(ffmpeg printed nothing)"


def _input_part(text: str) -> str:
    """The part of ffmpeg's log that describes the input file (not the outputs)."""
    return text.split("Stream mapping:")[0].split("Output #0")[0]


def _header_duration(text: str) -> float | None:
    """Container duration from ffmpeg's log; None when unknown or only estimated."""
    if "Estimating duration from bitrate" in text:
        return None  # e.g. a VBR mp3 without an index: the estimate can be far off
    match = _DURATION_RE.search(_input_part(text))
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _check_opened(path: Path, text: str) -> None:
    # Only the part of the log written while opening the file counts here: the same words
    # printed later by a decoder mean damage inside the stream (see _check_damage).
    opening = _input_part(text)
    if "Error opening input" in opening or "Invalid data found" in opening \
            or "moov atom not found" in opening:
        raise DataError(f"{path}: not a readable video (truncated or not a video file): "
                        f"{_last_line(text)}")


def _parse_header(path: Path, text: str) -> VideoInfo:
    """VideoInfo of the first input's first video stream, from ffmpeg's stderr."""
    _check_opened(path, text)
    input_part = _input_part(text)
    video_lines = [line for line in input_part.splitlines() if ": Video: " in line]
    if not video_lines:
        raise DataError(f"{path}: the file has no video stream")
    line = video_lines[0]
    size = re.search(r"[ ,](\d{1,5})x(\d{1,5})[ ,]", line)
    fps = _FPS_RE.search(line)
    duration = _DURATION_RE.search(input_part)
    if size is None or fps is None or duration is None:
        raise DataError(f"{path}: could not read size, frame rate and duration from the header")
    hours, minutes, seconds = duration.groups()
    return VideoInfo(path=path, width=int(size.group(1)), height=int(size.group(2)),
                     fps=float(fps.group(1)),
                     duration_s=int(hours) * 3600 + int(minutes) * 60 + float(seconds))


def _check_damage(path: Path, text: str, what: str) -> None:
    damage = DAMAGE_PATTERN.search(text)
    if damage:
        raise DataError(f"{path}: the {what} is truncated or corrupt: {damage.group(0).strip()}")


def check_length(path, decoded_s: float, header_s: float | None, *, what: str) -> None:
    """Raise ``DataError`` if ``decoded_s`` falls short of the header's ``header_s``.

    The allowed shortfall is ``max(LENGTH_TOLERANCE_S, LENGTH_TOLERANCE_FRACTION *
    header_s)``; ``header_s=None`` (unknown duration) checks nothing.
    """
    if header_s is None or header_s <= 0:
        return
    allowed = max(LENGTH_TOLERANCE_S, LENGTH_TOLERANCE_FRACTION * header_s)
    if decoded_s < header_s - allowed:
        raise DataError(f"{path}: the {what} is truncated: {decoded_s:.2f} s decoded, but the "
                        f"header announces {header_s:.2f} s")


def check_wav_complete(path: str | os.PathLike) -> None:
    """Raise ``DataError`` if a .wav file holds fewer sample bytes than its header announces.

    libsndfile (``soundfile``) silently reads what is left of a cut WAV file; its RIFF
    header still declares the size of the whole ``data`` chunk, so the check is exact.
    Files whose header leaves the size open (0 or 0xFFFFFFFF, written by a stream) and
    files that are not RIFF/WAVE are not checked here (libsndfile reports those).
    """
    path = check_media_path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        if handle.read(12)[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = handle.read(4), int.from_bytes(handle.read(4), "little")
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return
                if offset + 8 + chunk_size > size:
                    raise DataError(f"{path}: the audio is truncated: the WAV header announces "
                                    f"{chunk_size} bytes of samples, the file holds "
                                    f"{size - offset - 8}")
                return
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read size, frame rate and duration from a video's header (no decoding).

    Introduced in chapter 04.

    Parameters
    ----------
    path : str or Path
        An mp4 (or any container ffmpeg reads) with a video stream.

    Returns
    -------
    VideoInfo

    Raises
    ------
    DataError
        If the file is missing, not a video, truncated before its header ends,
        or has no video stream.
    """
    path = check_media_path(path)
    _, stderr, _ = _run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)])
    return _parse_header(path, stderr)


def decode_video(path: str | os.PathLike, *, input_args: Sequence[str] = (),
                 filters: Sequence[str] = (), output_args: Sequence[str] = (),
                 size: tuple[int, int] | None = None, whole: bool = False,
                 output_fps: float | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Decode the first video stream to RGB frames with one ffmpeg process.

    The low-level decoder under :func:`mmrec_lib.vision.read_frames`; the header is parsed
    from the same run's log.

    Parameters
    ----------
    path : str or Path
    input_args : sequence of str
        ffmpeg options placed before ``-i`` (e.g. ``["-ss", "1.5"]`` to seek).
    filters : sequence of str
        ffmpeg video filters, joined with commas into one ``-vf``.
    output_args : sequence of str
        ffmpeg output options (e.g. ``["-frames:v", "1"]``).
    size : (width, height), optional
        The frame size the filters produce; default: the header's.
    whole : bool
        The whole video is being decoded: the frames must then span the header's duration
        (:func:`check_length`), else the file counts as truncated.
    output_fps : float, optional
        The frame rate the filters produce (an ``fps`` filter); default: the header's.

    Returns
    -------
    frames : ndarray of shape (n_frames, height, width, 3), uint8
    info : VideoInfo

    Raises
    ------
    DataError
        Missing, empty, non-video, truncated or corrupt file.
    """
    path = check_media_path(path)
    # One decoder thread: for small clips, thread start-up costs more than it saves.
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
               "-threads", "1", *input_args, "-i", str(path), "-map", "0:v:0", "-an", "-sn"]
    if filters:
        command += ["-vf", ",".join(filters)]
    command += [*output_args, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    data, stderr, returncode = _run(command)
    info = _parse_header(path, stderr)
    if returncode != 0:
        raise DataError(f"{path}: ffmpeg could not decode the video: {_last_line(stderr)}")
    _check_damage(path, stderr, "video")
    width, height = size if size is not None else (info.width, info.height)
    frame_bytes = width * height * 3
    if len(data) % frame_bytes:
        raise DataError(f"{path}: ffmpeg returned {len(data)} bytes, not a whole number of "
                        f"{width}x{height} frames")
    frames = np.frombuffer(data, dtype=np.uint8).reshape(-1, height, width, 3).copy()
    capped = "-frames:v" in output_args and \
        len(frames) >= int(output_args[list(output_args).index("-frames:v") + 1])
    if whole and len(frames) and not capped:
        check_length(path, len(frames) / (output_fps or info.fps), info.duration_s,
                     what="video")
    return frames, info


def decode_audio(path: str | os.PathLike, *, sr: int) -> np.ndarray:
    """Decode the first audio track to mono float32 samples at ``sr`` Hz with ffmpeg.

    The decoder under :func:`mmrec_lib.audio.load_audio` for video and compressed files.
    Channels are averaged by ffmpeg (``-ac 1``), resampling is ffmpeg's (``-ar``).

    Parameters
    ----------
    path : str or Path
    sr : int
        Target sample rate in Hz (checked by the caller).

    Returns
    -------
    ndarray of shape (n_samples,), float32

    Raises
    ------
    DataError
        Missing, empty, undecodable, truncated or corrupt file, or no audio track.
    """
    path = check_media_path(path)
    command = [
        ffmpeg_exe(), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        "-i", str(path),
        "-map", "0:a:0",  # the first audio track; fails clearly when there is none
        "-vn", "-ac", "1", "-ar", str(int(sr)), "-f", "f32le", "pipe:1",
    ]
    data, stderr, returncode = _run(command)
    if returncode != 0:
        if "matches no streams" in stderr or "does not contain any stream" in stderr:
            raise DataError(f"{path} has no audio track")
        raise DataError(f"cannot decode the audio of {path}: ffmpeg says {_last_line(stderr)!r}")
    _check_damage(path, stderr, "audio")
    waveform = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if waveform.size:
        check_length(path, waveform.size / sr, _header_duration(stderr), what="audio")
    return waveform


def scan_video(path: str | os.PathLike) -> VideoInfo:
    """Check that a video file is whole and decodable, cheaply; return its header.

    One ffmpeg run reads every packet of every stream without decoding it (stream copy to
    a null output), which finds a file cut short, and decodes the first video frame, which
    proves the codec is readable. Used by :func:`mmrec_lib.datasets.load_video_folder`.

    Returns
    -------
    VideoInfo

    Raises
    ------
    DataError
        Missing, empty, non-video, truncated or corrupt file, no video stream, or no
        decodable frame.
    """
    path = check_media_path(path)
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-threads", "1",
               "-i", str(path),
               "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-",
               "-map", "0", "-c", "copy", "-f", "null", "-"]
    _, stderr, returncode = _run(command)
    info = _parse_header(path, stderr)
    if returncode != 0:
        raise DataError(f"{path}: ffmpeg could not decode the video: {_last_line(stderr)}")
    _check_damage(path, stderr, "video")
    frames = _FRAME_RE.findall(stderr)
    if frames and int(frames[-1]) == 0:
        raise DataError(f"{path}: the video has no decodable frame")
    times = _TIME_RE.findall(stderr)
    if times:
        hours, minutes, seconds = times[-1]
        check_length(path, int(hours) * 3600 + int(minutes) * 60 + float(seconds),
                     info.duration_s, what="video")
    return info
