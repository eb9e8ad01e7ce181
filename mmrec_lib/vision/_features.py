"""Hand-made visual features with named columns, and the visual energy ("emotion") regressor."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from mmrec_lib._validation import check_number
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.utils import check_is_fitted
from mmrec_lib.vision._shots import _check_frames, rgb_to_hsv

__all__ = [
    "HUE_BINS",
    "FRAME_FEATURE_COLUMNS",
    "CLIP_FEATURE_COLUMNS",
    "colourfulness",
    "edge_density",
    "motion_energy",
    "frame_features",
    "clip_features",
    "clip_feature_table",
    "VisualEnergyRegressor",
]

#: Number of hue bins in the (saturation-weighted) hue histogram features.
HUE_BINS = 8

#: Columns of :func:`frame_features`, in order.
FRAME_FEATURE_COLUMNS = [
    "brightness", "contrast", "saturation", "colourfulness", "edge_density",
    "red", "green", "blue", *[f"hue_{i}" for i in range(HUE_BINS)],
]

#: Columns of :func:`clip_features`: the frame features averaged, plus motion.
CLIP_FEATURE_COLUMNS = [*FRAME_FEATURE_COLUMNS, "brightness_change", "motion_energy"]

# A Sobel magnitude above this (0..255 intensity scale) counts as an edge pixel.
_EDGE_THRESHOLD = 100.0


def colourfulness(frames) -> np.ndarray:
    """Hasler and Suesstrunk's colourfulness metric of each frame (0 for gray images).

    Introduced in chapter 04. With ``rg = R - G`` and ``yb = (R + G) / 2 - B``:
    ``sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)``, on 0..255 pixels.

    Returns
    -------
    ndarray of shape (n_frames,)
    """
    frames = _check_frames(frames).astype(np.float64)
    red, green, blue = frames[..., 0], frames[..., 1], frames[..., 2]
    rg = (red - green).reshape(len(frames), -1)
    yb = (0.5 * (red + green) - blue).reshape(len(frames), -1)
    spread = np.sqrt(rg.std(axis=1) ** 2 + yb.std(axis=1) ** 2)
    level = np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    return spread + 0.3 * level


def _gray(frames: np.ndarray) -> np.ndarray:
    return frames.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def edge_density(frames, *, threshold: float = _EDGE_THRESHOLD) -> np.ndarray:
    """Fraction of pixels whose Sobel gradient magnitude exceeds ``threshold``.

    Introduced in chapter 04. Frames smaller than 3x3 have no interior and get 0.

    Returns
    -------
    ndarray of shape (n_frames,), values in [0, 1]
    """
    from scipy import ndimage

    frames = _check_frames(frames)
    check_number("threshold", threshold, low=0.0)
    if min(frames.shape[1:3]) < 3:
        return np.zeros(len(frames))
    gray = _gray(frames)
    gx = ndimage.sobel(gray, axis=2, mode="nearest")
    gy = ndimage.sobel(gray, axis=1, mode="nearest")
    magnitude = np.hypot(gx, gy)
    return (magnitude > threshold).reshape(len(frames), -1).mean(axis=1)


def motion_energy(frames) -> np.ndarray:
    """Mean absolute intensity change between consecutive frames, on a 0..1 scale.

    Introduced in chapter 04.

    Returns
    -------
    ndarray of shape (n_frames - 1,)
    """
    gray = _gray(_check_frames(frames)) / 255.0
    return np.abs(np.diff(gray, axis=0)).reshape(len(gray) - 1, -1).mean(axis=1)


def frame_features(frames) -> pd.DataFrame:
    """Hand-made features of each frame, one named column each.

    Introduced in chapter 04. ``brightness`` and ``contrast`` are the mean and
    standard deviation of the HSV value channel; ``saturation`` the mean HSV
    saturation; ``red``/``green``/``blue`` the channel means (0..1);
    ``hue_i`` a saturation-weighted hue histogram (sums to the mean saturation).

    Parameters
    ----------
    frames : ndarray of shape (n_frames, height, width, 3), uint8

    Returns
    -------
    DataFrame of shape (n_frames, len(FRAME_FEATURE_COLUMNS))
    """
    frames = _check_frames(frames)
    count = len(frames)
    hsv = rgb_to_hsv(frames).reshape(count, -1, 3).astype(np.float64)
    hue, saturation, value = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    codes = np.minimum((hue * HUE_BINS).astype(np.int64), HUE_BINS - 1)
    hue_hist = np.zeros((count, HUE_BINS))
    for row in range(count):
        hue_hist[row] = np.bincount(codes[row], weights=saturation[row], minlength=HUE_BINS)
    hue_hist /= hsv.shape[1]
    means = frames.reshape(count, -1, 3).mean(axis=1) / 255.0
    table = np.column_stack([
        value.mean(axis=1), value.std(axis=1), saturation.mean(axis=1),
        colourfulness(frames) / 255.0, edge_density(frames), means, hue_hist,
    ])
    return pd.DataFrame(table, columns=FRAME_FEATURE_COLUMNS)


def clip_features(frames) -> pd.Series:
    """Features of one clip: the mean of :func:`frame_features`, plus motion.

    Introduced in chapter 04. ``motion_energy`` is the mean of
    :func:`motion_energy`; ``brightness_change`` the standard deviation of the
    frames' brightness (flicker, fades). Both are 0 for a single frame.

    Returns
    -------
    Series indexed by ``CLIP_FEATURE_COLUMNS``
    """
    frames = _check_frames(frames)
    per_frame = frame_features(frames)
    values = per_frame.mean(axis=0)
    values["brightness_change"] = float(per_frame["brightness"].std(ddof=0))
    values["motion_energy"] = float(motion_energy(frames).mean()) if len(frames) > 1 else 0.0
    return values[CLIP_FEATURE_COLUMNS].astype(np.float64)


def clip_feature_table(clips, *, index=None) -> pd.DataFrame:
    """:func:`clip_features` for many clips.

    Introduced in chapter 04.

    Parameters
    ----------
    clips : ndarray of shape (n_clips, n_frames, height, width, 3) or a list of
        (n_frames, height, width, 3) arrays
    index : sequence, optional
        Row labels, e.g. the item ids.

    Returns
    -------
    DataFrame of shape (n_clips, len(CLIP_FEATURE_COLUMNS))
    """
    if isinstance(clips, np.ndarray) and clips.ndim != 5:
        raise DataError(f"clips of shape {clips.shape}: expected (n_clips, n_frames, h, w, 3)")
    rows = [clip_features(clip) for clip in clips]
    if not rows:
        raise DataError("clips is empty: expected at least one clip")
    if index is not None and len(index) != len(rows):
        raise ParameterError(f"index has {len(index)} labels for {len(rows)} clips")
    return pd.DataFrame(rows, index=index, columns=CLIP_FEATURE_COLUMNS)


class VisualEnergyRegressor(RegressorMixin, BaseEstimator):
    """"Video emotion": predict a clip's energy (arousal) from visual features.

    Introduced in chapter 04. Standardised features and ridge regression;
    motion, cut rate, brightness and saturation carry most of the signal.

    Parameters
    ----------
    alpha : float
        Ridge penalty.

    Attributes
    ----------
    feature_names_in_ : ndarray of str (when fitted on a DataFrame)
    coef_ : ndarray of shape (n_features,)
        Weights on the standardised features (comparable across features).
    """

    def __init__(self, *, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X, y):
        from sklearn.linear_model import Ridge
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        check_number("alpha", self.alpha, low=0.0)
        values, target = self._check(X), np.asarray(y, dtype=np.float64)
        if target.shape != (len(values),):
            raise DataError(f"y has shape {target.shape}: expected ({len(values)},)")
        if not np.all(np.isfinite(target)):
            raise DataError("y contains NaN or infinite values")
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.pipeline_ = make_pipeline(StandardScaler(), Ridge(alpha=self.alpha))
        self.pipeline_.fit(values, target)
        self.coef_ = self.pipeline_[-1].coef_
        self.n_features_in_ = values.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """Returns ndarray of shape (n_clips,)."""
        check_is_fitted(self)
        values = self._check(X)
        if values.shape[1] != self.n_features_in_:
            raise DataError(f"X has {values.shape[1]} features, the model was fitted on "
                            f"{self.n_features_in_}")
        return self.pipeline_.predict(values)

    @staticmethod
    def _check(X) -> np.ndarray:
        values = np.asarray(X, dtype=np.float64)
        if values.ndim != 2 or len(values) == 0:
            raise DataError(f"X of shape {values.shape}: expected (n_clips, n_features)")
        if not np.all(np.isfinite(values)):
            raise DataError("X contains NaN or infinite values")
        return values
