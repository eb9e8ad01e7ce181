"""Pillow preprocessing as scikit-learn transformers: denoise, enhance, resize-crop, normalise."""

from __future__ import annotations

from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._validation import check_choice, check_int, check_number
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.utils import check_is_fitted

__all__ = ["as_image_list", "Denoiser", "Enhancer", "ResizeCrop", "Normalizer"]


def as_image_list(images) -> list[np.ndarray]:
    """Validate a batch of RGB images and return it as a list of uint8 arrays.

    Introduced in chapter 04. Accepts an ndarray of shape (n, height, width, 3)
    or a sequence of (height, width, 3) arrays and/or ``PIL.Image`` objects
    (converted with :func:`mmrec_lib.vision.to_rgb`); sizes may differ.
    """
    from PIL import Image

    from mmrec_lib.vision._io import to_rgb

    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise DataError(f"images of shape {images.shape}: expected (n, height, width, 3)")
        images = list(images)
    elif isinstance(images, Image.Image):
        raise ParameterError("images must be a batch (a list or a 4-d array), not one PIL image; "
                             "wrap it in a list")
    elif not isinstance(images, list | tuple):
        raise ParameterError(f"images must be a list or a 4-d array, not {type(images).__name__}")
    result = []
    for index, image in enumerate(images):
        if isinstance(image, Image.Image):
            image = np.asarray(to_rgb(image))
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
            raise DataError(f"image {index} has shape {image.shape}: expected (height, width, 3)")
        if image.dtype != np.uint8:
            if not np.all(np.isfinite(image)):
                raise DataError(f"image {index} contains NaN or infinite values")
            if image.min() < 0 or image.max() > 255:
                raise DataError(f"image {index} has values outside [0, 255]: expected uint8 pixels")
            image = np.rint(image).astype(np.uint8)
        result.append(image)
    if not result:
        raise DataError("images is empty: expected at least one image")
    return result


def _restack(original, images: list[np.ndarray]):
    """Return an ndarray when the input was one and all sizes agree, else a list."""
    if isinstance(original, np.ndarray) and len({im.shape for im in images}) == 1:
        return np.stack(images)
    return images


def _bilateral(image: np.ndarray, radius: int, sigma_space: float, sigma_color: float) -> np.ndarray:
    """Edge-preserving smoothing: neighbours weighted by distance and by colour difference."""
    height, width, _ = image.shape
    source = image.astype(np.float32)
    padded = np.pad(source, ((radius, radius), (radius, radius), (0, 0)), mode="edge")
    total = np.zeros_like(source)
    weights = np.zeros((height, width, 1), dtype=np.float32)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = padded[radius + dy:radius + dy + height, radius + dx:radius + dx + width]
            colour = np.sum((shifted - source) ** 2, axis=-1, keepdims=True)
            weight = np.exp(-(dx * dx + dy * dy) / (2 * sigma_space ** 2)
                            - colour / (2 * sigma_color ** 2))
            total += weight * shifted
            weights += weight
    return np.clip(np.rint(total / weights), 0, 255).astype(np.uint8)


class _PerImageTransformer(TransformerMixin, BaseEstimator):
    """Shared plumbing: ``fit`` checks the parameters and the images, ``transform`` maps each image."""

    def _check_params(self) -> None:  # overridden
        pass

    def _transform_one(self, image: np.ndarray) -> np.ndarray:  # overridden
        raise NotImplementedError

    def fit(self, images, y=None):
        self._check_params()
        as_image_list(images)
        self.n_images_fit_ = len(images)
        return self

    def transform(self, images):
        check_is_fitted(self)
        return _restack(images, [self._transform_one(image) for image in as_image_list(images)])


class Denoiser(_PerImageTransformer):
    """Remove pixel noise: median filter, edge-preserving bilateral filter or Gaussian blur.

    Introduced in chapter 04. The median filter removes salt-and-pepper
    noise and keeps edges; the bilateral filter averages only neighbours of
    similar colour, so it smooths flat areas without blurring edges.

    Parameters
    ----------
    method : {"median", "bilateral", "gaussian"}
    size : int
        Odd window size (median, bilateral) or twice the Gaussian radius.
    sigma_color : float
        Bilateral only: colour difference (0..255 scale) at which a neighbour's
        weight falls to exp(-1/2).
    """

    def __init__(self, *, method: Literal["median", "bilateral", "gaussian"] = "median",
                 size: int = 3, sigma_color: float = 30.0):
        self.method = method
        self.size = size
        self.sigma_color = sigma_color

    def _check_params(self) -> None:
        check_choice("method", self.method, ("median", "bilateral", "gaussian"))
        if check_int("size", self.size, low=3) % 2 == 0:
            raise ParameterError(f"size={self.size!r} must be an odd int >= 3")
        check_number("sigma_color", self.sigma_color, low=0.0, low_inclusive=False)

    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        from PIL import Image, ImageFilter

        size = int(self.size)
        if self.method == "median":
            return np.asarray(Image.fromarray(image).filter(ImageFilter.MedianFilter(size)))
        if self.method == "gaussian":
            return np.asarray(Image.fromarray(image).filter(
                ImageFilter.GaussianBlur(radius=size / 2)))
        return _bilateral(image, size // 2, size / 2, float(self.sigma_color))


class Enhancer(_PerImageTransformer):
    """Improve contrast and detail: autocontrast, histogram equalisation, sharpening.

    Introduced in chapter 04. Steps run in this order, each only when enabled.

    Parameters
    ----------
    autocontrast : bool
        Stretch each channel so that the darkest ``cutoff`` percent maps to 0
        and the brightest to 255.
    cutoff : float
        Percent of pixels clipped at each end by autocontrast, in [0, 50).
    equalize : bool
        Histogram equalisation (flattens the brightness histogram).
    sharpen : float
        Unsharp-mask strength; 0 disables it, 1 adds back 100 % of the detail.
    """

    def __init__(self, *, autocontrast: bool = True, cutoff: float = 1.0,
                 equalize: bool = False, sharpen: float = 0.0):
        self.autocontrast = autocontrast
        self.cutoff = cutoff
        self.equalize = equalize
        self.sharpen = sharpen

    def _check_params(self) -> None:
        check_number("cutoff", self.cutoff, low=0.0, high=50.0, high_inclusive=False)
        check_number("sharpen", self.sharpen, low=0.0, high=10.0)

    def _transform_one(self, image: np.ndarray) -> np.ndarray:
        from PIL import Image, ImageFilter, ImageOps

        pil = Image.fromarray(image)
        if self.autocontrast:
            pil = ImageOps.autocontrast(pil, cutoff=self.cutoff)
        if self.equalize:
            pil = ImageOps.equalize(pil)
        if self.sharpen > 0:
            pil = pil.filter(ImageFilter.UnsharpMask(radius=2, percent=int(100 * self.sharpen),
                                                     threshold=2))
        return np.asarray(pil)


class ResizeCrop(TransformerMixin, BaseEstimator):
    """Resize images to one size, keeping the aspect ratio.

    Introduced in chapter 04. ``"crop"`` scales the image to cover the target
    and cuts the overflow around the centre; ``"pad"`` scales it to fit inside
    and pads with ``fill``. Either way nothing is stretched.

    Parameters
    ----------
    size : int or (width, height)
    mode : {"crop", "pad"}
    fill : (r, g, b)
        Padding colour for ``mode="pad"``.
    """

    def __init__(self, *, size: int | tuple[int, int] = 64,
                 mode: Literal["crop", "pad"] = "crop", fill: tuple[int, int, int] = (0, 0, 0)):
        self.size = size
        self.mode = mode
        self.fill = fill

    def _target(self) -> tuple[int, int]:
        from mmrec_lib.vision._io import _size_pair

        # _size_pair checks each side (size[0], size[1]) as an int in [1, 8192].
        return _size_pair(self.size)

    def fit(self, images, y=None):
        check_choice("mode", self.mode, ("crop", "pad"))
        self.output_size_ = self._target()
        as_image_list(images)
        return self

    def transform(self, images) -> np.ndarray:
        """Returns ndarray of shape (n, height, width, 3), dtype uint8."""
        from PIL import Image, ImageOps

        check_is_fitted(self)
        result = []
        for image in as_image_list(images):
            pil = Image.fromarray(image)
            if self.mode == "crop":
                pil = ImageOps.fit(pil, self.output_size_, method=Image.Resampling.BILINEAR)
            else:
                pil = ImageOps.pad(pil, self.output_size_, method=Image.Resampling.BILINEAR,
                                   color=tuple(self.fill))
            result.append(np.asarray(pil))
        return np.stack(result)


class Normalizer(TransformerMixin, BaseEstimator):
    """Turn uint8 images into float32 CNN inputs.

    Introduced in chapter 04.

    Parameters
    ----------
    method : {"standard", "unit", "symmetric"}
        ``"standard"``: subtract the per-channel mean and divide by the
        per-channel standard deviation learnt in ``fit``; ``"unit"``: x / 255
        in [0, 1]; ``"symmetric"``: x / 127.5 - 1 in [-1, 1] (what
        MobileNetV2 expects).

    Attributes
    ----------
    mean_, std_ : ndarray of shape (3,)
        Per-channel offset and scale on the 0..255 scale; ``transform`` returns
        ``(x - mean_) / std_`` (fixed values for ``"unit"`` and ``"symmetric"``).
    """

    def __init__(self, *, method: Literal["standard", "unit", "symmetric"] = "standard"):
        self.method = method

    def fit(self, images, y=None):
        check_choice("method", self.method, ("standard", "unit", "symmetric"))
        batch = _as_batch(images)
        if self.method == "standard":
            pixels = batch.reshape(-1, 3).astype(np.float64)
            self.mean_ = pixels.mean(axis=0).astype(np.float32)
            self.std_ = np.maximum(pixels.std(axis=0), 1.0).astype(np.float32)
        elif self.method == "unit":
            self.mean_ = np.zeros(3, np.float32)
            self.std_ = np.full(3, 255.0, np.float32)
        else:
            self.mean_ = np.full(3, 127.5, np.float32)
            self.std_ = np.full(3, 127.5, np.float32)
        return self

    def transform(self, images) -> np.ndarray:
        """Returns float32 ndarray of the input's shape (..., height, width, 3)."""
        check_is_fitted(self)
        batch = _as_batch(images)
        return ((batch.astype(np.float32) - self.mean_) / self.std_).astype(np.float32)

    def inverse_transform(self, images) -> np.ndarray:
        """Back to uint8 pixels (clipped to 0..255)."""
        check_is_fitted(self)
        values = np.asarray(images, dtype=np.float32) * self.std_ + self.mean_
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _as_batch(images) -> np.ndarray:
    """Images as one array (..., height, width, 3); clips (n, T, h, w, 3) are allowed."""
    if isinstance(images, np.ndarray):
        if images.ndim < 3 or images.shape[-1] != 3:
            raise DataError(f"images of shape {images.shape}: expected (..., height, width, 3)")
        if images.size == 0:
            raise DataError("images is empty: expected at least one image")
        if images.dtype != np.uint8 and not np.all(np.isfinite(images)):
            raise DataError("images contain NaN or infinite values")
        return images
    images = as_image_list(images)
    if len({image.shape for image in images}) != 1:
        raise DataError("images have different sizes: resize them first (ResizeCrop)")
    return np.stack(images)
