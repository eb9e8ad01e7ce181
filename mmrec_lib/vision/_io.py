"""Decoding: video frames through the one media decoder (:mod:`mmrec_lib.media`), images through Pillow."""

from __future__ import annotations

import os
import warnings
from typing import Literal

import numpy as np

from mmrec_lib._validation import check_choice, check_int, check_number
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.media import VideoInfo, check_media_path, decode_video, probe_video

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


def sample_indices(num_frames: int, total_frames: int) -> np.ndarray:
    """Evenly spaced frame indices: the middle frame of ``num_frames`` equal slices.

    Introduced in chapter 04. If ``num_frames > total_frames`` some frames repeat.

    Returns
    -------
    ndarray of shape (num_frames,), int
    """
    num_frames = check_int("num_frames", num_frames, low=1)
    total_frames = check_int("total_frames", total_frames, low=1)
    indices = np.floor((np.arange(num_frames) + 0.5) * (total_frames / num_frames)).astype(np.int64)
    return np.minimum(indices, total_frames - 1)


def _scale_filter(size: int | tuple[int, int] | None) -> list[str]:
    if size is None:
        return []
    width, height = _size_pair(size)
    return [f"scale={width}:{height}:flags=area"]


def _size_pair(size: int | tuple[int, int]) -> tuple[int, int]:
    """``(width, height)`` from one int (a square) or a pair of ints, each in [1, 8192].

    Callers map ``size=None`` (keep the source size) before calling. Each side goes
    through ``check_int``: a string, a float (2.7 is not silently 2) or a bool is
    refused with a ``ParameterError`` naming the side, ``size[0]`` or ``size[1]``.
    """
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        side = check_int("size", size, high=8192)
        return side, side
    if not isinstance(size, tuple | list) or len(size) != 2:
        raise ParameterError(f"size={size!r} must be an int or a (width, height) pair")
    width, height = (check_int(f"size[{index}]", value, high=8192)
                     for index, value in enumerate(size))
    return width, height


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
    if fps is not None:
        check_number("fps", fps, low=0, low_inclusive=False, high=1000)
    if num_frames is not None:
        check_int("num_frames", num_frames, low=1, high=MAX_DECODED_FRAMES)
    check_choice("method", method, ("auto", "seek", "select"))
    path = check_media_path(path)
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
        frames, _ = decode_video(path, filters=[f"select={expression}", *filters],
                                 output_args=["-fps_mode", "passthrough",
                                              "-frames:v", str(unique.size)],
                                 size=out_size)
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
            frame, _ = decode_video(path, input_args=["-ss", f"{time:.6f}"], filters=filters,
                                    output_args=["-frames:v", "1"], size=out_size)
            if len(frame) == 0:
                raise DataError(f"{path}: no frame could be decoded at {time:.3f} s (frame "
                                f"{index}); the video may be truncated")
            parts.append(frame)
        return np.concatenate(parts)

    frames, info = decode_video(path, filters=[f"fps={fps}", *filters] if fps is not None
                                else filters,
                                output_args=["-frames:v", str(MAX_DECODED_FRAMES)],
                                size=out_size, whole=True, output_fps=fps)
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
    path = check_media_path(path)
    frames, info = decode_video(path, filters=_scale_filter(size),
                                output_args=["-frames:v", str(MAX_DECODED_FRAMES)],
                                size=_size_pair(size) if size is not None else None,
                                whole=True)
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

    check_int("max_pixels", max_pixels, low=1)
    background = _check_background(background)
    path = check_media_path(path)
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

    background = _check_background(background)
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


def _check_background(background) -> tuple[int, int, int]:
    """``background`` as an ``(r, g, b)`` tuple of ints in [0, 255]."""
    if isinstance(background, str) or not isinstance(background, tuple | list) \
            or len(background) != 3:
        raise ParameterError(f"background={background!r} must be an (r, g, b) tuple of three "
                             "ints in [0, 255]")
    return tuple(check_int(f"background[{i}]", value, low=0, high=255)
                 for i, value in enumerate(background))


def image_to_array(image) -> np.ndarray:
    """``PIL.Image`` (any mode) -> ndarray of shape (height, width, 3), dtype uint8.

    Introduced in chapter 04.
    """
    return np.asarray(to_rgb(image), dtype=np.uint8)
