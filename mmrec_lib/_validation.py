"""Argument checks shared by every module: one place, one wording, one set of accepted types."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mmrec_lib.errors import DataError, ParameterError

__all__ = [
    "check_int",
    "check_number",
    "check_choice",
    "check_subset",
    "check_seed",
    "check_matrix",
    "check_item_vectors",
]

# Python and NumPy integers are accepted everywhere; bool is refused everywhere (True is not 1 epoch).
_INT_TYPES = (int, np.integer)
_NUMBER_TYPES = (int, float, np.integer, np.floating)


def check_int(name: str, value, *, low: int | None = 1, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[low, high]``; ``ParameterError`` naming ``name`` otherwise.

    ``low=None`` or ``high=None`` leaves that side open. NumPy integers are accepted, ``bool`` is not.
    """
    if isinstance(value, bool) or not isinstance(value, _INT_TYPES) \
            or (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            expected = f"an int in [{low}, {high}]"
        elif low is not None:
            expected = f"an int >= {low}"
        elif high is not None:
            expected = f"an int <= {high}"
        else:
            expected = "an int"
        raise ParameterError(f"{name}={value!r} must be {expected}")
    return int(value)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None,
                 low_inclusive: bool = True, high_inclusive: bool = True,
                 allow_inf: bool = False) -> float:
    """``value`` as a finite ``float`` within the bounds; ``ParameterError`` naming ``name`` otherwise.

    NaN is always refused; infinity unless ``allow_inf``. The bounds are inclusive unless
    ``low_inclusive``/``high_inclusive`` say otherwise (``low=0, low_inclusive=False`` is "> 0").
    """
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        raise ParameterError(f"{name}={value!r} must be a number")
    number = float(value)
    if math.isnan(number):
        raise ParameterError(f"{name}={value!r} must be a number, not NaN")
    if math.isinf(number) and not allow_inf:
        raise ParameterError(f"{name}={value!r} must be finite")
    too_low = low is not None and (number < low if low_inclusive else number <= low)
    too_high = high is not None and (number > high if high_inclusive else number >= high)
    if too_low or too_high:
        if low is not None and high is not None:
            expected = (f"in {'[' if low_inclusive else '('}{low}, {high}"
                        f"{']' if high_inclusive else ')'}")
        elif low is not None:
            expected = f"{'>=' if low_inclusive else '>'} {low}"
        else:
            expected = f"{'<=' if high_inclusive else '<'} {high}"
        raise ParameterError(f"{name}={value!r} must be {expected}")
    return number


def check_choice(name: str, value, choices: Sequence):
    """``value`` if it is one of ``choices``; ``ParameterError`` listing them otherwise."""
    try:
        ok = value in choices
    except TypeError:  # an unhashable value against a set of choices
        ok = False
    if not ok:
        raise ParameterError(f"{name}={value!r} must be one of {list(choices)}")
    return value


def check_subset(name: str, values, choices) -> tuple:
    """``values`` (one string or a sequence) as a tuple, if it is a non-empty subset of ``choices``."""
    values = (values,) if isinstance(values, str) else tuple(values)
    if not values or any(value not in choices for value in values):
        raise ParameterError(f"{name} {list(values)} must be a non-empty subset of {list(choices)}")
    return values


def check_seed(seed, *, name: str = "seed") -> int:
    """A random seed: a non-negative int."""
    if isinstance(seed, bool) or not isinstance(seed, _INT_TYPES) or seed < 0:
        raise ParameterError(f"{name}={seed!r} must be a non-negative int")
    return int(seed)


def check_matrix(name: str, matrix, *, ndim: int = 2) -> np.ndarray:
    """``matrix`` as a numeric, finite ndarray with ``ndim`` dimensions."""
    array = np.asarray(matrix)
    if array.ndim != ndim:
        raise ParameterError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ParameterError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return array


def check_item_vectors(item_vectors, *, name: str = "item_vectors"):
    """Item vectors as a DataFrame indexed by unique item ids, numbers only, all finite (or None)."""
    import pandas as pd

    if item_vectors is None:
        return None
    if not isinstance(item_vectors, pd.DataFrame):
        raise ParameterError(f"{name} must be a DataFrame indexed by item id (one row per "
                             f"item), got {type(item_vectors).__name__}")
    if item_vectors.empty:
        raise DataError(f"{name} is empty")
    if not item_vectors.index.is_unique:
        raise DataError(f"{name} has repeated item ids in its index")
    values = item_vectors.to_numpy()
    if values.dtype.kind not in "fiub":
        raise DataError(f"{name} must hold numbers only")
    if not np.isfinite(values.astype(np.float64)).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return item_vectors
