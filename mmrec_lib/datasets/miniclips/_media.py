"""Decoding of MiniClips media (frames, audio) and the ffmpeg locator the renderer also uses.

Kept apart on purpose: these functions are moved verbatim from the old single-file module and
are meant to become aliases of the shared decoder ``mmrec_lib.media``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np

from mmrec_lib.datasets.miniclips._constants import AUDIO_SR
from mmrec_lib.errors import DataError, EnvironmentError, ParameterError

__all__ = ["read_frames", "read_audio"]


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as error:  # pragma: no cover - pinned dependency
        raise EnvironmentError("MiniClips needs imageio-ffmpeg: pip install imageio-ffmpeg") \
            from error
    return imageio_ffmpeg.get_ffmpeg_exe()


def read_frames(path: str | os.PathLike, *, size: int | None = None) -> np.ndarray:
    """Decode all video frames of an mp4 file.

    Introduced in chapter 01.

    Parameters
    ----------
    path : path of a video file
    size : int, optional
        If given, frames are scaled to ``size`` x ``size``; default: the file's own size.

    Returns
    -------
    ndarray of shape (n_frames, height, width, 3), uint8
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"video file {path} does not exist")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ParameterError(f"size={size!r} must be a positive int (pixels) or None")
    # One ffmpeg process: frames on stdout, stream description (with the size) on stderr.
    command = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-threads", "1", "-i", str(path),
               "-map", "0:v:0"]
    if size is not None:
        command += ["-vf", f"scale={size}:{size}"]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    result = subprocess.run(command, capture_output=True, check=False)
    log = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise DataError(f"cannot decode video of {path}: {log[-300:]}")
    # The "Video: rawvideo" line describes the decoded output stream.
    sizes = re.findall(r"Video: rawvideo.*?, (\d{1,5})x(\d{1,5})\b", log)
    if not sizes:
        raise DataError(f"{path} has no readable video stream")
    width, height = (int(v) for v in sizes[-1])
    data = np.frombuffer(result.stdout, dtype=np.uint8)
    frame_bytes = width * height * 3
    if data.size == 0 or data.size % frame_bytes:
        raise DataError(f"{path} decoded to {data.size} bytes, not whole {width}x{height} frames")
    return data.reshape(-1, height, width, 3).copy()


def read_audio(path: str | os.PathLike, *, sr: int = AUDIO_SR) -> np.ndarray:
    """Decode the audio track of a media file to mono float32 at ``sr`` Hz.

    Introduced in chapter 01.

    Returns
    -------
    ndarray of shape (n_samples,), float32 in [-1, 1]
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"media file {path} does not exist")
    if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0:
        raise ParameterError(f"sr={sr!r} must be a positive int (Hz)")
    command = [_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
               "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(sr),
               "-f", "f32le", "pipe:1"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise DataError(f"cannot decode audio of {path}: "
                        f"{result.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(result.stdout, dtype="<f4").copy()
