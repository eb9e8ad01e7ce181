"""Tests for mmrec_lib.interest on bad input: each bad value its own test and its own error."""

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import interest
from mmrec_lib.errors import DataError, ParameterError

TRAIN = pd.DataFrame({
    "user_id": ["a", "a", "b", "b", "b", "c"],
    "item_id": [1, 2, 1, 2, 3, 3],
    "rating": [5.0, 3.0, 4.0, 4.0, 1.0, 2.0],
    "disliked": [False, False, False, False, True, False],
})
VECTORS = pd.DataFrame([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], index=[1, 2, 3])


# --------------------------------------------------------------------------- parameters

def test_ease_infinite_l2_raises():
    with pytest.raises(ParameterError, match="l2=inf must be finite"):
        interest.EASEModel(l2=np.inf).fit(TRAIN)


def test_ease_nan_l2_raises():
    with pytest.raises(ParameterError, match="l2=nan"):
        interest.EASEModel(l2=float("nan")).fit(TRAIN)


def test_ease_nan_popularity_exponent_raises():
    with pytest.raises(ParameterError, match="popularity_exponent"):
        interest.EASEModel(popularity_exponent=float("nan")).fit(TRAIN)


def test_user_ease_infinite_l2_raises():
    with pytest.raises(ParameterError, match="l2=inf"):
        interest.UserEASEModel(l2=float("inf")).fit(TRAIN)


def test_itemknn_nan_shrink_raises():
    with pytest.raises(ParameterError, match="shrink=nan"):
        interest.ItemKNNModel(shrink=float("nan")).fit(TRAIN)


def test_itemknn_infinite_shrink_raises():
    with pytest.raises(ParameterError, match="shrink=inf"):
        interest.ItemKNNModel(shrink=float("inf")).fit(TRAIN)


def test_itemknn_bool_neighbours_raise():
    with pytest.raises(ParameterError, match="num_neighbors=True"):
        interest.ItemKNNModel(num_neighbors=True).fit(TRAIN)


def test_content_profile_nan_half_life_raises():
    with pytest.raises(ParameterError, match="half_life=nan"):
        interest.ContentProfileModel(half_life=float("nan")).fit(TRAIN, VECTORS)


def test_content_profile_infinite_negative_weight_raises():
    with pytest.raises(ParameterError, match="negative_weight=inf"):
        interest.ContentProfileModel(negative_weight=float("inf")).fit(TRAIN, VECTORS)


def test_bprmf_nan_learning_rate_raises():
    with pytest.raises(ParameterError, match="learning_rate=nan"):
        interest.BPRMFModel(learning_rate=float("nan")).fit(TRAIN)


def test_bprmf_negative_seed_raises():
    with pytest.raises(ParameterError, match="seed=-1"):
        interest.BPRMFModel(seed=-1).fit(TRAIN)


# --------------------------------------------------------------------------- weight columns

def test_content_profile_nan_weight_raises_at_fit():
    train = TRAIN.assign(rating=[5.0, np.nan, 4.0, 4.0, 1.0, 2.0])
    with pytest.raises(DataError, match="weight_col 'rating' has 1 NaN"):
        interest.ContentProfileModel(weight_col="rating").fit(train, VECTORS)


def test_content_profile_infinite_weight_raises_at_fit():
    train = TRAIN.assign(rating=[5.0, np.inf, 4.0, 4.0, 1.0, 2.0])
    with pytest.raises(DataError, match="weight_col 'rating' has 1 NaN or infinite"):
        interest.ContentProfileModel(weight_col="rating").fit(train, VECTORS)


def test_content_profile_string_weight_raises_at_fit():
    train = TRAIN.assign(rating=["5", "3", "4", "4", "1", "2"])
    with pytest.raises(DataError, match="weight_col 'rating' must hold numbers"):
        interest.ContentProfileModel(weight_col="rating").fit(train, VECTORS)


def test_content_profile_missing_weight_column_raises():
    with pytest.raises(DataError, match="stars"):
        interest.ContentProfileModel(weight_col="stars").fit(TRAIN, VECTORS)


def test_content_profile_nan_negative_flag_raises():
    train = TRAIN.assign(disliked=[False, None, False, False, True, False])
    with pytest.raises(DataError, match="negative_col 'disliked' has 1 missing"):
        interest.ContentProfileModel(negative_col="disliked").fit(train, VECTORS)


def test_content_profile_string_negative_flag_raises():
    train = TRAIN.assign(disliked=["no", "no", "no", "no", "yes", "no"])
    with pytest.raises(DataError, match="negative_col 'disliked' must hold booleans"):
        interest.ContentProfileModel(negative_col="disliked").fit(train, VECTORS)


def test_content_profile_integer_weights_and_flags_are_accepted():
    train = TRAIN.assign(rating=[5, 3, 4, 4, 1, 2], disliked=[0, 0, 0, 0, 1, 0])
    model = interest.ContentProfileModel(weight_col="rating", negative_col="disliked")
    scores = model.fit(train, VECTORS).score(["b"])
    assert np.isfinite(scores).all()
