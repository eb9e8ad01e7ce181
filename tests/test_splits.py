"""Tests for mmrec_lib.splits: sizes, determinism, and no leakage."""

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import splits
from mmrec_lib.errors import DataError, ParameterError


@pytest.fixture
def frame():
    rng = np.random.RandomState(0)
    rows = []
    for user in range(20):
        items = rng.choice(50, size=8 + user % 5, replace=False)
        for position, item in enumerate(items):
            rows.append((f"u{user:02d}", f"i{item:02d}", int(rng.randint(1, 6)),
                         pd.Timestamp("2024-01-01") + pd.Timedelta(days=user + 3 * position)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def _pairs(data):
    return set(zip(data.user_id, data.item_id, strict=True))


def _assert_partition(split, frame):
    train, validation, test = split
    assert len(train) + len(validation) + len(test) == len(frame)
    assert not _pairs(train) & _pairs(test)
    assert not _pairs(train) & _pairs(validation)
    assert not _pairs(validation) & _pairs(test)


def test_stratified_by_user_ratio_per_user(frame):
    split = splits.stratified_split(frame, ratio=0.75, by="user", seed=1)
    _assert_partition(split, frame)
    counts = frame.groupby("user_id").size()
    train_counts = split.train.groupby("user_id").size()
    expected = np.round(0.75 * counts)
    np.testing.assert_array_equal(train_counts.reindex(counts.index).to_numpy(), expected)
    assert split.kind == "stratified_by_user"


def test_stratified_by_item_keeps_every_item_in_train(frame):
    split = splits.stratified_split(frame, ratio=0.75, by="item", seed=3)
    _assert_partition(split, frame)
    assert set(split.test.item_id) <= set(split.train.item_id)


def test_stratified_matches_recommenders_algorithm():
    # Hand-run of Recommenders' rule: one group of 4 rows, random keys from seed 0.
    data = pd.DataFrame({"user_id": ["u"] * 4, "item_id": ["a", "b", "c", "d"]})
    keys = np.random.RandomState(0).rand(4)  # 0.549, 0.715, 0.603, 0.545
    order = np.argsort(keys)  # d, a, c, b -> ranks 1..4; round(0.75 * 4) = 3 in train
    expected_test = {data.item_id[order[-1]]}
    split = splits.stratified_split(data, ratio=0.75, seed=0)
    assert set(split.test.item_id) == expected_test == {"b"}


def test_stratified_deterministic_and_seed_dependent(frame):
    first = splits.stratified_split(frame, seed=5)
    second = splits.stratified_split(frame, seed=5)
    other = splits.stratified_split(frame, seed=6)
    pd.testing.assert_frame_equal(first.test, second.test)
    assert _pairs(first.test) != _pairs(other.test)


def test_stratified_with_validation(frame):
    split = splits.stratified_split(frame, ratio=0.8, validation_ratio=0.2, seed=0)
    _assert_partition(split, frame)
    assert len(split.validation) > 0


def test_stratified_min_rating_drops_small_groups(frame):
    split = splits.stratified_split(frame, min_rating=11, seed=0)
    kept = frame.groupby("user_id").size()
    assert set(split.train.user_id) == set(kept[kept >= 11].index)


def test_stratified_bad_ratio(frame):
    with pytest.raises(ParameterError, match="ratio"):
        splits.stratified_split(frame, ratio=1.0)


def test_stratified_bad_validation_ratio(frame):
    with pytest.raises(ParameterError, match="validation_ratio"):
        splits.stratified_split(frame, ratio=0.5, validation_ratio=0.5)


def test_stratified_bad_by(frame):
    with pytest.raises(ParameterError, match="by="):
        splits.stratified_split(frame, by="time")


def test_stratified_bad_min_rating(frame):
    with pytest.raises(ParameterError, match="min_rating"):
        splits.stratified_split(frame, min_rating=0)


def test_stratified_bad_seed(frame):
    with pytest.raises(ParameterError, match="seed"):
        splits.stratified_split(frame, seed=-1)


def test_stratified_nothing_left(frame):
    with pytest.raises(DataError, match="no rows"):
        splits.stratified_split(frame, min_rating=1000)


def test_stratified_missing_column():
    with pytest.raises(DataError, match="item_id"):
        splits.stratified_split(pd.DataFrame({"user_id": [1]}))


def test_random_split_sizes(frame):
    split = splits.random_split(frame, ratio=0.7, validation_ratio=0.1, seed=0)
    _assert_partition(split, frame)
    assert len(split.train) == round(0.6 * len(frame))
    assert len(split.validation) == round(0.7 * len(frame)) - round(0.6 * len(frame))


def test_leave_last_out_takes_latest(frame):
    split = splits.leave_last_out(frame)
    _assert_partition(split, frame)
    latest = frame.sort_values("timestamp").groupby("user_id").tail(1)
    assert _pairs(split.test) == _pairs(latest)
    assert split.test.user_id.is_unique and split.validation.user_id.is_unique
    # No validation or test row is older than a training row of the same user.
    last_train = split.train.groupby("user_id").timestamp.max()
    first_validation = split.validation.set_index("user_id").timestamp
    assert (first_validation >= last_train.reindex(first_validation.index)).all()


def test_leave_last_out_short_users_stay_in_train():
    data = pd.DataFrame({"user_id": ["a", "a", "b", "b", "b"], "item_id": [1, 2, 1, 2, 3],
                         "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-01",
                                                      "2020-01-02", "2020-01-03"])})
    split = splits.leave_last_out(data)
    assert split.test.user_id.tolist() == ["b"]
    assert split.test.item_id.tolist() == [3]
    assert split.validation.item_id.tolist() == [2]
    assert sorted(split.train.user_id) == ["a", "a", "b"]


def test_leave_last_out_ties_broken_by_item():
    data = pd.DataFrame({"user_id": ["a"] * 3, "item_id": [3, 1, 2],
                         "timestamp": pd.to_datetime(["2020-01-01"] * 3)})
    split = splits.leave_last_out(data, validation=False)
    assert split.test.item_id.tolist() == [3]


def test_leave_last_out_needs_timestamp():
    with pytest.raises(DataError, match="timestamp"):
        splits.leave_last_out(pd.DataFrame({"user_id": [1], "item_id": [1]}))


def test_leave_last_out_bad_min_interactions(frame):
    with pytest.raises(ParameterError, match="min_interactions"):
        splits.leave_last_out(frame, min_interactions=2)


def test_temporal_split_no_future_in_train(frame):
    split = splits.temporal_split(frame, ratio=0.8, validation_ratio=0.1)
    _assert_partition(split, frame)
    assert split.train.timestamp.max() < split.validation.timestamp.min()
    assert split.validation.timestamp.max() < split.test.timestamp.min()


def test_temporal_split_bad_ratio(frame):
    with pytest.raises(ParameterError, match="ratio"):
        splits.temporal_split(frame, ratio=0.0)


def test_cold_start_items_absent_from_train(frame):
    split = splits.cold_start_item_split(frame, ratio=0.2, validation_ratio=0.1, seed=0)
    _assert_partition(split, frame)
    assert len(split.cold_items) > 0
    assert not set(split.cold_items) & set(split.train.item_id)
    assert set(split.test.item_id) | set(split.validation.item_id) == set(split.cold_items)


def test_cold_start_given_items(frame):
    chosen = sorted(frame.item_id.unique())[:3]
    split = splits.cold_start_item_split(frame, items=chosen)
    assert sorted(split.test.item_id.unique()) == chosen
    assert not set(chosen) & set(split.train.item_id)


def test_cold_start_unknown_items(frame):
    with pytest.raises(DataError, match="do not occur"):
        splits.cold_start_item_split(frame, items=["nope"])


def test_cold_start_too_many(frame):
    with pytest.raises(ParameterError, match="validation_ratio"):
        splits.cold_start_item_split(frame, ratio=0.6, validation_ratio=0.5)


def test_split_unpacks(frame):
    train, validation, test = splits.stratified_split(frame)
    assert validation.empty and len(train) > len(test) > 0


def test_warm_cold_split(frame):
    cold = ["i03", "i07", "i11", "missing"]
    split = splits.warm_cold_split(frame, cold, ratio=0.8, validation_ratio=0.1, seed=0)
    assert split.kind == "warm_cold"
    # Every given cold item stays a candidate, watched or not.
    assert sorted(split.cold_items) == sorted(cold)
    assert set(split.cold_test.item_id) <= set(cold[:3])
    for part in (split.train, split.validation, split.test):
        assert not part.item_id.isin(cold).any()
    assert split.cold_test.item_id.isin(cold).all()
    assert split.cold_test.user_id.isin(split.train.user_id).all()
    warm = frame[~frame.item_id.isin(cold)]
    assert len(split.train) + len(split.validation) + len(split.test) == len(warm)
    again = splits.warm_cold_split(frame, cold, ratio=0.8, validation_ratio=0.1, seed=0)
    pd.testing.assert_frame_equal(split.test, again.test)


def test_warm_cold_split_bad_items(frame):
    with pytest.raises(ParameterError, match="cold_items"):
        splits.warm_cold_split(frame, [])
    with pytest.raises(ParameterError, match="cold_items"):
        splits.warm_cold_split(frame, "i03")
    with pytest.raises(DataError, match="none of the cold_items"):
        splits.warm_cold_split(frame, ["nope"])
