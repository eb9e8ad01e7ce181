"""Tests for mmrec_lib.interactions: encoders, deduplication, the user-item matrix."""

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import interactions
from mmrec_lib.errors import DataError, NotFittedError, ParameterError


def test_column_constants():
    assert interactions.USER_COL == "user_id"
    assert interactions.ITEM_COL == "item_id"
    assert interactions.RATING_COL == "rating"
    assert interactions.TIMESTAMP_COL == "timestamp"


def test_encoder_sorted_and_round_trip():
    encoder = interactions.IdEncoder().fit(["u3", "u1", "u3", "u2"])
    assert encoder.classes_.tolist() == ["u1", "u2", "u3"]
    assert encoder.num_ids == 3
    indices = encoder.transform(["u2", "u3", "u1"])
    assert indices.tolist() == [1, 2, 0]
    assert indices.dtype == np.int64
    assert encoder.inverse_transform(indices).tolist() == ["u2", "u3", "u1"]


def test_encoder_int_ids_and_series():
    encoder = interactions.IdEncoder().fit(pd.Series([30, 10, 20]))
    assert encoder.transform(pd.Series([10, 30])).tolist() == [0, 2]


def test_encoder_unknown_error():
    encoder = interactions.IdEncoder().fit(["a", "b"])
    with pytest.raises(DataError, match="not seen in fit"):
        encoder.transform(["a", "zzz"])


def test_encoder_unknown_ignore_maps_to_minus_one():
    encoder = interactions.IdEncoder(unknown="ignore").fit(["a", "b"])
    assert encoder.transform(["b", "zzz"]).tolist() == [1, interactions.UNKNOWN_INDEX]


def test_encoder_bad_unknown_option():
    with pytest.raises(ParameterError, match="unknown="):
        interactions.IdEncoder(unknown="drop").fit(["a"])


def test_encoder_not_fitted():
    with pytest.raises(NotFittedError):
        interactions.IdEncoder().transform(["a"])


def test_encoder_missing_ids():
    with pytest.raises(DataError, match="missing"):
        interactions.IdEncoder().fit(["a", None])


def test_encoder_float_ids_rejected():
    with pytest.raises(DataError, match="float"):
        interactions.IdEncoder().fit(np.array([1.0, 2.0]))


def test_encoder_single_string_rejected():
    with pytest.raises(ParameterError, match="single string"):
        interactions.IdEncoder().fit("abc")


def test_encoder_2d_rejected():
    with pytest.raises(ParameterError, match="1-D"):
        interactions.IdEncoder().fit(np.zeros((2, 2), dtype=int))


def test_encoder_string_lookup_in_int_encoder():
    encoder = interactions.IdEncoder().fit([1, 2])
    with pytest.raises(DataError, match="dtype"):
        encoder.transform(["1"])


def test_inverse_transform_out_of_range():
    encoder = interactions.IdEncoder().fit(["a", "b"])
    with pytest.raises(DataError, match="outside"):
        encoder.inverse_transform([0, 2])


def test_deduplicate_last_by_timestamp():
    frame = pd.DataFrame({
        "user_id": ["u1", "u1", "u1", "u2"],
        "item_id": ["i1", "i1", "i2", "i1"],
        "rating": [5, 2, 4, 3],
        "timestamp": pd.to_datetime(["2020-01-03", "2020-01-01", "2020-01-02", "2020-01-01"]),
    })
    result = interactions.deduplicate(frame)
    assert len(result) == 3
    row = result[(result.user_id == "u1") & (result.item_id == "i1")]
    assert row["rating"].tolist() == [5]  # the latest rating (Jan 3) wins, not the last row


def test_deduplicate_first_max_sum():
    frame = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [7, 7, 7], "rating": [2, 5, 1]})
    assert interactions.deduplicate(frame, keep="first")["rating"].tolist() == [2]
    assert interactions.deduplicate(frame, keep="last")["rating"].tolist() == [1]
    assert interactions.deduplicate(frame, keep="max")["rating"].tolist() == [5]
    assert interactions.deduplicate(frame, keep="sum")["rating"].tolist() == [8]


def test_deduplicate_bad_keep():
    frame = pd.DataFrame({"user_id": [1], "item_id": [2]})
    with pytest.raises(ParameterError, match="keep="):
        interactions.deduplicate(frame, keep="mean")


def test_deduplicate_missing_value_column():
    frame = pd.DataFrame({"user_id": [1], "item_id": [2]})
    with pytest.raises(DataError, match="rating"):
        interactions.deduplicate(frame, keep="sum")


def test_check_interactions_not_a_frame():
    with pytest.raises(ParameterError, match="DataFrame"):
        interactions.check_interactions([("u", "i")])


def test_check_interactions_missing_column():
    with pytest.raises(DataError, match="item_id"):
        interactions.check_interactions(pd.DataFrame({"user_id": [1]}))


def test_check_interactions_missing_ids():
    with pytest.raises(DataError, match="missing values"):
        interactions.check_interactions(pd.DataFrame({"user_id": [1, None], "item_id": [1, 2]}))


def test_build_matrix_binary_and_values():
    frame = pd.DataFrame({"user_id": ["b", "a", "a"], "item_id": [20, 10, 30],
                          "rating": [4.0, 5.0, 1.0]})
    matrix, users, items = interactions.build_user_item_matrix(frame)
    assert matrix.shape == (2, 3)
    np.testing.assert_array_equal(matrix.toarray(), [[1, 0, 1], [0, 1, 0]])
    rated, _, _ = interactions.build_user_item_matrix(frame, value_col="rating")
    np.testing.assert_array_equal(rated.toarray(), [[5, 0, 1], [0, 4, 0]])
    assert users.classes_.tolist() == ["a", "b"]
    assert items.classes_.tolist() == [10, 20, 30]


def test_build_matrix_with_given_encoders_drops_ignored():
    frame = pd.DataFrame({"user_id": ["a", "z"], "item_id": [1, 2]})
    users = interactions.IdEncoder(unknown="ignore").fit(["a", "b"])
    items = interactions.IdEncoder().fit([1, 2, 3])
    matrix, _, _ = interactions.build_user_item_matrix(frame, user_encoder=users,
                                                       item_encoder=items)
    np.testing.assert_array_equal(matrix.toarray(), [[1, 0, 0], [0, 0, 0]])


def test_build_matrix_duplicates_rejected():
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [2, 2]})
    with pytest.raises(DataError, match="deduplicate"):
        interactions.build_user_item_matrix(frame)


def test_build_matrix_nan_values_rejected():
    frame = pd.DataFrame({"user_id": [1, 2], "item_id": [2, 2], "rating": [1.0, np.nan]})
    with pytest.raises(DataError, match="NaN"):
        interactions.build_user_item_matrix(frame, value_col="rating")
