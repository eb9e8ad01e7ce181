"""Unit tests of mmrec_lib._validation: the argument checks every module shares."""

import math

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import _validation as v
from mmrec_lib import utils
from mmrec_lib.errors import DataError, ParameterError

# ----------------------------------------------------------------------------- check_int


def test_check_int_accepts_python_int():
    assert v.check_int("epochs", 3) == 3


def test_check_int_accepts_numpy_int64_and_returns_python_int():
    result = v.check_int("epochs", np.int64(4))
    assert result == 4
    assert type(result) is int


def test_check_int_accepts_numpy_uint8():
    assert v.check_int("epochs", np.uint8(2)) == 2


def test_check_int_refuses_true():
    with pytest.raises(ParameterError, match="epochs=True must be an int >= 1"):
        v.check_int("epochs", True)


def test_check_int_refuses_false_even_with_low_zero():
    with pytest.raises(ParameterError, match="seed=False"):
        v.check_int("seed", False, low=0)


def test_check_int_refuses_float_with_integral_value():
    with pytest.raises(ParameterError, match="epochs=2.0"):
        v.check_int("epochs", 2.0)


def test_check_int_refuses_string():
    with pytest.raises(ParameterError, match="epochs='3'"):
        v.check_int("epochs", "3")


def test_check_int_refuses_none():
    with pytest.raises(ParameterError, match="epochs=None"):
        v.check_int("epochs", None)


def test_check_int_default_low_is_one():
    with pytest.raises(ParameterError, match="k=0 must be an int >= 1"):
        v.check_int("k", 0)


def test_check_int_low_bound_is_inclusive():
    assert v.check_int("n", 0, low=0) == 0


def test_check_int_high_bound_is_inclusive():
    assert v.check_int("k", 5, high=5) == 5


def test_check_int_above_high_names_the_range():
    with pytest.raises(ParameterError, match=r"k=6 must be an int in \[1, 5\]"):
        v.check_int("k", 6, high=5)


def test_check_int_only_high():
    assert v.check_int("offset", -10, low=None, high=0) == -10
    with pytest.raises(ParameterError, match="offset=1 must be an int <= 0"):
        v.check_int("offset", 1, low=None, high=0)


def test_check_int_no_bounds_still_refuses_bool():
    assert v.check_int("x", -7, low=None) == -7
    with pytest.raises(ParameterError, match="must be an int$"):
        v.check_int("x", True, low=None)


# -------------------------------------------------------------------------- check_number


def test_check_number_returns_float():
    result = v.check_number("rate", 1)
    assert result == 1.0
    assert type(result) is float


def test_check_number_accepts_numpy_float32():
    assert v.check_number("rate", np.float32(0.5)) == 0.5


def test_check_number_accepts_numpy_int():
    assert v.check_number("rate", np.int32(2)) == 2.0


def test_check_number_refuses_nan():
    with pytest.raises(ParameterError, match="rate=nan must be a number, not NaN"):
        v.check_number("rate", float("nan"))


def test_check_number_refuses_numpy_nan_even_with_allow_inf():
    with pytest.raises(ParameterError, match="not NaN"):
        v.check_number("rate", np.float32("nan"), allow_inf=True)


def test_check_number_refuses_inf():
    with pytest.raises(ParameterError, match="rate=inf must be finite"):
        v.check_number("rate", math.inf)


def test_check_number_refuses_minus_inf():
    with pytest.raises(ParameterError, match="rate=-inf must be finite"):
        v.check_number("rate", -math.inf)


def test_check_number_allow_inf_accepts_inf():
    assert v.check_number("limit", math.inf, allow_inf=True) == math.inf


def test_check_number_allow_inf_still_checks_bounds():
    with pytest.raises(ParameterError, match="limit=-inf must be >= 0"):
        v.check_number("limit", -math.inf, low=0, allow_inf=True)


def test_check_number_refuses_bool():
    with pytest.raises(ParameterError, match="rate=True must be a number"):
        v.check_number("rate", True)


def test_check_number_refuses_numeric_string():
    with pytest.raises(ParameterError, match="rate='0.5' must be a number"):
        v.check_number("rate", "0.5")


def test_check_number_refuses_none():
    with pytest.raises(ParameterError, match="rate=None must be a number"):
        v.check_number("rate", None)


def test_check_number_refuses_complex():
    with pytest.raises(ParameterError, match="must be a number"):
        v.check_number("rate", 1 + 0j)


def test_check_number_inclusive_bounds_accept_the_ends():
    assert v.check_number("p", 0.0, low=0, high=1) == 0.0
    assert v.check_number("p", 1.0, low=0, high=1) == 1.0


def test_check_number_exclusive_low_refuses_the_end():
    with pytest.raises(ParameterError, match=r"p=0.0 must be in \(0, 1\]"):
        v.check_number("p", 0.0, low=0, high=1, low_inclusive=False)


def test_check_number_exclusive_high_refuses_the_end():
    with pytest.raises(ParameterError, match=r"p=1.0 must be in \[0, 1\)"):
        v.check_number("p", 1.0, low=0, high=1, high_inclusive=False)


def test_check_number_only_exclusive_low():
    with pytest.raises(ParameterError, match="learning_rate=0 must be > 0"):
        v.check_number("learning_rate", 0, low=0, low_inclusive=False)


def test_check_number_only_high():
    with pytest.raises(ParameterError, match="target_db=3 must be <= 0"):
        v.check_number("target_db", 3, high=0)


def test_check_number_below_low():
    with pytest.raises(ParameterError, match="alpha=-0.1 must be >= 0"):
        v.check_number("alpha", -0.1, low=0)


# -------------------------------------------------------------------------- check_choice


def test_check_choice_returns_the_value():
    assert v.check_choice("kind", "row", ("symmetric", "row")) == "row"


def test_check_choice_lists_the_choices():
    with pytest.raises(ParameterError, match=r"kind='col' must be one of \['symmetric', 'row'\]"):
        v.check_choice("kind", "col", ("symmetric", "row"))


def test_check_choice_unhashable_value_against_a_set():
    with pytest.raises(ParameterError, match=r"kind=\['row'\] must be one of"):
        v.check_choice("kind", ["row"], frozenset({"row"}))


def test_check_choice_unhashable_value_against_a_tuple():
    with pytest.raises(ParameterError, match="kind="):
        v.check_choice("kind", {"a": 1}, ("a", "b"))


def test_check_choice_none_is_not_a_choice():
    with pytest.raises(ParameterError, match="kind=None"):
        v.check_choice("kind", None, ("a", "b"))


# -------------------------------------------------------------------------- check_subset


def test_check_subset_one_string_becomes_a_tuple():
    assert v.check_subset("modalities", "text", ("text", "audio")) == ("text",)


def test_check_subset_keeps_order():
    assert v.check_subset("modalities", ["audio", "text"], ("text", "audio")) == ("audio", "text")


def test_check_subset_refuses_empty():
    with pytest.raises(ParameterError, match=r"modalities \[\] must be a non-empty subset"):
        v.check_subset("modalities", [], ("text", "audio"))


def test_check_subset_refuses_unknown_member():
    with pytest.raises(ParameterError, match="video"):
        v.check_subset("modalities", ["text", "video"], ("text", "audio"))


def test_utils_check_subset_is_the_validation_one():
    assert utils.check_subset is v.check_subset


# ---------------------------------------------------------------------------- check_seed


def test_check_seed_accepts_zero_and_numpy_int():
    assert v.check_seed(0) == 0
    assert v.check_seed(np.int64(7)) == 7


def test_check_seed_refuses_negative():
    with pytest.raises(ParameterError, match="seed=-1 must be a non-negative int"):
        v.check_seed(-1)


def test_check_seed_refuses_bool():
    with pytest.raises(ParameterError, match="seed=True"):
        v.check_seed(True)


def test_check_seed_refuses_float():
    with pytest.raises(ParameterError, match="seed=1.0"):
        v.check_seed(1.0)


def test_check_seed_uses_the_given_name():
    with pytest.raises(ParameterError, match="random_state=-2"):
        v.check_seed(-2, name="random_state")


# -------------------------------------------------------------------------- check_matrix


def test_check_matrix_returns_an_array():
    result = v.check_matrix("vectors", [[1, 2], [3, 4]])
    assert isinstance(result, np.ndarray)
    assert result.shape == (2, 2)


def test_check_matrix_refuses_wrong_ndim():
    with pytest.raises(ParameterError, match=r"vectors must be 2-D, got shape \(3,\)"):
        v.check_matrix("vectors", [1.0, 2.0, 3.0])


def test_check_matrix_one_dimensional_when_asked():
    assert v.check_matrix("waveform", np.zeros(3), ndim=1).shape == (3,)


def test_check_matrix_refuses_strings():
    with pytest.raises(ParameterError, match="vectors must be numeric"):
        v.check_matrix("vectors", [["a", "b"]])


def test_check_matrix_refuses_bool():
    with pytest.raises(ParameterError, match="numeric"):
        v.check_matrix("vectors", np.ones((2, 2), dtype=bool))


def test_check_matrix_refuses_nan():
    with pytest.raises(DataError, match="vectors contains NaN or infinite values"):
        v.check_matrix("vectors", [[1.0, np.nan]])


def test_check_matrix_refuses_inf():
    with pytest.raises(DataError, match="NaN or infinite"):
        v.check_matrix("vectors", np.array([[1.0, -np.inf]], dtype=np.float32))


# -------------------------------------------------------------------- check_item_vectors


def _vectors():
    return pd.DataFrame([[1.0, 0.0], [0.0, 1.0]], index=["a", "b"])


def test_check_item_vectors_none_passes_through():
    assert v.check_item_vectors(None) is None


def test_check_item_vectors_returns_the_frame():
    frame = _vectors()
    assert v.check_item_vectors(frame) is frame


def test_check_item_vectors_refuses_an_ndarray():
    with pytest.raises(ParameterError, match="got ndarray"):
        v.check_item_vectors(np.eye(2))


def test_check_item_vectors_refuses_empty():
    with pytest.raises(DataError, match="item_vectors is empty"):
        v.check_item_vectors(pd.DataFrame())


def test_check_item_vectors_refuses_repeated_ids():
    frame = pd.DataFrame([[1.0], [2.0]], index=["a", "a"])
    with pytest.raises(DataError, match="repeated item ids"):
        v.check_item_vectors(frame)


def test_check_item_vectors_refuses_text_columns():
    frame = pd.DataFrame({"x": ["1", "2"]}, index=["a", "b"])
    with pytest.raises(DataError, match="numbers only"):
        v.check_item_vectors(frame)


def test_check_item_vectors_refuses_nan():
    frame = _vectors()
    frame.iloc[0, 1] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        v.check_item_vectors(frame)


def test_check_item_vectors_uses_the_given_name():
    with pytest.raises(DataError, match="text_vectors is empty"):
        v.check_item_vectors(pd.DataFrame(), name="text_vectors")
