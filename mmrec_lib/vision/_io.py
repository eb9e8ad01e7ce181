"""Decoding: video frames through the ffmpeg binary, images through Pillow."""

from __future__ import annotations

import os
import re
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from mmrec_lib.errors import DataError, ParameterError

__all__ = [
    "VideoInfo",
    "probe_video",
    "read_frames",
    "read_video",
    "sample_indices",
    "load_image",
    "to_rgb",
    "image_to_array",
    "MAX_IMAGE_PIXELS",
    "MAX_DECODED_FRAMES",
]

#: Images with more pixels than this are refused before they are decoded (a
#: "decompression bomb" guard: a few kilobytes of PNG can claim 60000 x 60000 pixels).
MAX_IMAGE_PIXELS = 40_000_000

#: Upper bound on the frames one :func:`read_frames` call returns (memory guard).
MAX_DECODED_FRAMES = 20_000

# When fewer frames than this are asked for, each one is fetched with its own
# seek (``-ss`` before ``-i``), so ffmpeg decodes only from the nearest keyframe.
_SEEK_LIMIT = 16

_FPS_RE = re.compile(r"([\d.]+) (?:fps|tbr)")
_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


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


def _check_path(path: str | os.PathLike) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise ParameterError(f"path={path!r} must be a str or a path, not {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    return path


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
    path = _check_path(path)
    result = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
                            capture_output=True, text=True, errors="replace", check=False)
    return _parse_header(path, result.stderr)


def _parse_header(path: Path, text: str) -> VideoInfo:
    """VideoInfo of the first input's first video stream, from ffmpeg's stderr."""
    if "Error opening input" in text or "Invalid data found" in text or "moov atom not found" in text:
        raise DataError(f"{path}: not a readable video (truncated or not a video file): "
                        f"{_last_line(text)}")
    input_part = text.split("Stream mapping:")[0].split("Output #0")[0]
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


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(ffmpeg printed nothing)"


def sample_indices(num_frames: int, total_frames: int) -> np.ndarray:
    """Evenly spaced frame indices: the middle frame of ``num_frames`` equal slices.

    Introduced in chapter 04. If ``num_frames > total_frames`` some frames repeat.

    Returns
    -------
    ndarray of shape (num_frames,), int
    """
    for name, value in (("num_frames", num_frames), ("total_frames", total_frames)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ParameterError(f"{name}={value!r} must be a positive int")
    indices = np.floor((np.arange(num_frames) + 0.5) * (total_frames / num_frames)).astype(np.int64)
    return np.minimum(indices, total_frames - 1)


def _scale_filter(size: int | tuple[int, int] | None) -> list[str]:
    if size is None:
        return []
    width, height = _size_pair(size)
    return [f"scale={width}:{height}:flags=area"]


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        width = height = int(size)
    elif isinstance(size, tuple | list) and len(size) == 2:
        width, height = (int(v) for v in size)
    else:
        raise ParameterError(f"size={size!r} must be an int or a (width, height) pair")
    if width < 1 or height < 1 or width > 8192 or height > 8192:
        raise ParameterError(f"size={size!r}: width and height must be in [1, 8192]")
    return width, height


def _run_ffmpeg(path: Path, input_args: list[str], filters: list[str], extra: list[str],
                size: tuple[int, int] | None) -> tuple[np.ndarray, VideoInfo]:
    """Decode with one ffmpeg process; the header is parsed from the same run's log."""
    # One decoder thread: for small clips, thread start-up costs more than it saves.
    command = [_ffmpeg(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info",
               "-threads", "1", *input_args, "-i", str(path), "-map", "0:v:0", "-an", "-sn"]
    if filters:
        command += ["-vf", ",".join(filters)]
    command += [*extra, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    result = subprocess.run(command, capture_output=True, check=False)
    stderr = result.stderr.decode("utf-8", errors="replace")
    info = _parse_header(path, stderr)
    if result.returncode != 0:
        raise DataError(f"{path}: ffmpeg could not decode the video: {_last_line(stderr)}")
    # A truncated mdat decodes partly; ffmpeg then reports the damage on stderr.
    damage = re.search(r".*(partial file|Invalid NAL|error while decoding|corrupt).*", stderr,
                       re.I)
    if damage:
        raise DataError(f"{path}: the video is truncated or corrupt: {damage.group(0).strip()}")
    width, height = size if size is not None else (info.width, info.height)
    frame_bytes = width * height * 3
    data = result.stdout
    if len(data) % frame_bytes:
        raise DataError(f"{path}: ffmpeg returned {len(data)} bytes, not a whole number of "
                        f"{width}x{height} frames")
    return np.frombuffer(data, dtype=np.uint8).reshape(-1, height, width, 3).copy(), info


def read_frames(path: str | os.PathLike, *, fps: float | None = None,
                num_frames: int | None = None, frame_indices=None,
                size: int | tuple[int, int] | None = None,
                method: Literal["auto", "seek", "select"] = "auto") -> np.ndarray:
    """Decode RGB frames of a video.

    Introduced in chapter 04. At most one of ``fps``, ``num_frames`` and
    ``frame_indices`` may be given; with none, every frame is returned.

    * ``fps``: resample to this rate (ffmpeg's ``fps`` filter).
    * ``num_frames``: that many evenly spaced frames (:func:`sample_indices`).
      ``method="seek"`` fetches each with its own seek (``-ss`` before
      ``-i``), so only the stretch from the nearest keyframe is decoded, not
      the whole clip; ``"select"`` picks them in one ``select`` filter pass
      that stops after the last one; ``"auto"`` seeks when at most 16 frames
      are wanted from a video at least 10 times longer, else selects.
    * ``frame_indices``: exactly these frames (0-based), through a ``select``
      filter; decoding stops after the last one asked for.

    Parameters
    ----------
    path : str or Path
    fps : float, optional
    num_frames : int, optional
    frame_indices : sequence of int, optional
    size : int or (width, height), optional
        Resize every frame (area filter). The aspect ratio is not kept; use
        :class:`ResizeCrop` on full frames to keep it.
    method : {"auto", "seek", "select"}
        How ``num_frames`` frames are fetched (see above).

    Returns
    -------
    ndarray of shape (n_frames, height, width, 3), dtype uint8

    Raises
    ------
    DataError
        Missing, empty, truncated or non-video file, or a video that yields no frame.
    ParameterError
        Bad options (more than one selection, non-positive values, indices out of range).
    """
    chosen = [name for name, value in (("fps", fps), ("num_frames", num_frames),
                                       ("frame_indices", frame_indices)) if value is not None]
    if len(chosen) > 1:
        raise ParameterError(f"give at most one of fps, num_frames, frame_indices; got {chosen}")
    if fps is not None and not (isinstance(fps, int | float) and 0 < fps <= 1000):
        raise ParameterError(f"fps={fps!r} must be a number in (0, 1000]")
    if num_frames is not None and (isinstance(num_frames, bool) or not isinstance(
            num_frames, int | np.integer) or not 1 <= num_frames <= MAX_DECODED_FRAMES):
        raise ParameterError(f"num_frames={num_frames!r} must be an int in [1, {MAX_DECODED_FRAMES}]")
    if method not in ("auto", "seek", "select"):
        raise ParameterError(f"method={method!r} must be 'auto', 'seek' or 'select'")
    path = _check_path(path)
    out_size = _size_pair(size) if size is not None else None
    filters = _scale_filter(size)

    if frame_indices is not None:
        indices = np.asarray(frame_indices)
        if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
            raise ParameterError("frame_indices must be a non-empty 1-d sequence of ints")
        if indices.min() < 0:
            raise ParameterError(f"frame_indices must be >= 0, got {indices.min()}")
        unique = np.unique(indices)
        expression = "+".join(f"eq(n\\,{int(i)})" for i in unique)
        frames, _ = _run_ffmpeg(path, [], [f"select={expression}", *filters],
                                ["-fps_mode", "passthrough", "-frames:v", str(unique.size)],
                                out_size)
        if len(frames) < unique.size:
            raise ParameterError(f"frame_indices: asked for frame {int(unique.max())} but only "
                                 f"{len(frames)} of the {unique.size} requested frames exist "
                                 f"in {path}")
        lookup = {int(i): k for k, i in enumerate(unique)}
        return frames[[lookup[int(i)] for i in indices]]

    if num_frames is not None:
        info = probe_video(path)
        if info.num_frames < 1:
            raise DataError(f"{path}: the header reports no frames (duration {info.duration_s} s)")
        indices = sample_indices(int(num_frames), info.num_frames)
        seek = method == "seek" or (method == "auto" and num_frames <= _SEEK_LIMIT
                                    and info.num_frames >= 10 * num_frames)
        if not seek:
            return read_frames(path, frame_indices=indices, size=size)
        parts = []
        for index in indices:
            # "-ss t" before "-i" yields the first frame whose time is >= t; a quarter
            # frame early makes that exactly frame `index` despite rounding.
            time = max(0.0, (index - 0.25) / info.fps)
            frame, _ = _run_ffmpeg(path, ["-ss", f"{time:.6f}"], filters, ["-frames:v", "1"],
                                   out_size)
            if len(frame) == 0:
                raise DataError(f"{path}: no frame could be decoded at {time:.3f} s (frame "
                                f"{index}); the video may be truncated")
            parts.append(frame)
        return np.concatenate(parts)

    if fps is not None:
        filters = [f"fps={fps}", *filters]
    frames, _ = _run_ffmpeg(path, [], filters, ["-frames:v", str(MAX_DECODED_FRAMES)], out_size)
    if len(frames) == 0:
        raise DataError(f"{path}: the video has no decodable frame")
    return frames


def read_video(path: str | os.PathLike, *,
               size: int | tuple[int, int] | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Every frame of a video and its header, from a single ffmpeg run.

    Introduced in chapter 04. Same frames as ``read_frames(path, size=size)``,
    without the extra process that :func:`probe_video` would cost.

    Returns
    -------
    frames : ndarray of shape (n_frames, height, width, 3), uint8
    info : VideoInfo
    """
    path = _check_path(path)
    frames, info = _run_ffmpeg(path, [], _scale_filter(size),
                               ["-frames:v", str(MAX_DECODED_FRAMES)],
                               _size_pair(size) if size is not None else None)
    if len(frames) == 0:
        raise DataError(f"{path}: the video has no decodable frame")
    return frames, info


# --------------------------------------------------------------------------- images


def load_image(path: str | os.PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS,
               background: tuple[int, int, int] = (255, 255, 255)):
    """Open an image file as an 8-bit RGB ``PIL.Image`` whatever its mode.

    Introduced in chapter 04. Conversions: grayscale (``L``, ``1``) is copied
    to three channels; alpha (``RGBA``, ``LA``, ``PA`` and palettes with a
    transparent colour) is composited over ``background``; palettes are
    expanded; ``CMYK`` and ``YCbCr`` go through Pillow's converters; 16-bit
    and 32-bit integer images (``I;16``, ``I``) are scaled from 0..65535 to
    0..255 (Pillow's own ``convert("L")`` clips them instead); float images
    (``F``) are read as 0..1 if their maximum is <= 1, else clipped to 0..255.
    The EXIF orientation is applied.

    Parameters
    ----------
    path : str or Path
    max_pixels : int
        Refuse images whose header claims more pixels than this, before decoding.
    background : (r, g, b)
        Colour under transparent pixels.

    Returns
    -------
    PIL.Image.Image in mode ``"RGB"``

    Raises
    ------
    DataError
        Missing, empty, truncated or non-image file, or an image above ``max_pixels``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ParameterError(f"max_pixels={max_pixels!r} must be a positive int")
    path = _check_path(path)
    bomb = (f"{path}: the image has more pixels than the limit max_pixels={max_pixels} "
            "(possible decompression bomb); raise max_pixels if the file is trusted")
    previous = Image.MAX_IMAGE_PIXELS
    # Pillow's own guard reads this global; it is set to our limit for this call only.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise DataError(f"{bomb} ({width}x{height} = {width * height} pixels)")
                image.load()
                image = ImageOps.exif_transpose(image)
                return to_rgb(image, background=background)
    except Image.DecompressionBombError as error:
        raise DataError(f"{bomb} ({error})") from error
    except UnidentifiedImageError as error:
        raise DataError(f"{path}: not an image file Pillow can read") from error
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: the image is truncated or corrupt ({error})") from error
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def to_rgb(image, *, background: tuple[int, int, int] = (255, 255, 255)):
    """Convert a ``PIL.Image`` of any mode to 8-bit RGB (see :func:`load_image`).

    Introduced in chapter 04.
    """
    from PIL import Image

    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
        if mode == "RGB":
            return image
    if mode in ("1", "L"):
        return image.convert("L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(base, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if mode == "F":
            scaled = values * 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else values
        else:
            # 16-bit data (I;16*) and 32-bit ints holding 16-bit data: 65535 -> 255.
            scaled = values / 257.0 if mode.startswith("I;16") or values.max(initial=0) > 255 \
                else values
        gray = np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as error:
        raise DataError(f"cannot convert an image of mode {mode!r} to RGB") from error


def image_to_array(image) -> np.ndarray:
    """``PIL.Image`` (any mode) -> ndarray of shape (height, width, 3), dtype uint8.

    Introduced in chapter 04.
    """
    return np.asarray(to_rgb(image), dtype=np.uint8)
