"""Tests of SideSASRecModel: a rule expressed only in side information is learned, saved and reaches new items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import sequential as sq
from mmrec_lib.errors import DataError, ModelError, ParameterError

NUM_CREATORS = 8
CLIPS_PER_CREATOR = 8
NEW_ITEM = 1000
NEW_CREATOR = 3


def creator_of(item: int) -> str:
    return f"c{(item - 1) // CLIPS_PER_CREATOR}"


def make_side(items) -> pd.DataFrame:
    """Creator of each item; a 'series' column that is empty for all but two items."""
    items = list(items)
    series = ["s1" if item in (1, 2) else "" for item in items]
    return pd.DataFrame({"creator_id": [creator_of(i) for i in items], "series_id": series},
                        index=pd.Index(items, name="item_id"))


def noise_vectors(items, seed: int = 0) -> pd.DataFrame:
    """Content vectors that carry no information (the rule lives in the creator only)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((len(items), 4)), index=pd.Index(items, name="item_id"))


def creator_interactions(num_users: int = 160, seed: int = 0) -> pd.DataFrame:
    """The next clip is a random clip of the creator after the previous clip's creator."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        creator = int(rng.integers(NUM_CREATORS))
        for step in range(int(rng.integers(5, 9))):
            item = creator * CLIPS_PER_CREATOR + int(rng.integers(CLIPS_PER_CREATOR)) + 1
            rows.append((user, item, step))
            creator = (creator + 1) % NUM_CREATORS
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


ITEMS = np.arange(1, NUM_CREATORS * CLIPS_PER_CREATOR + 1)
# Only the side embeddings can carry the rule: no id embedding, no content.
PARAMS = dict(use_item_id=False, use_content=False, max_len=8, embedding_dim=16, num_blocks=1,
              num_heads=2, dropout=0.1, learning_rate=1e-2, epochs=8, batch_size=32,
              patience=None, seed=0)


@pytest.fixture(scope="module")
def split():
    return sq.leave_one_out(creator_interactions())


@pytest.fixture(scope="module")
def model(split):
    return sq.SideSASRecModel(**PARAMS).fit(split.train, noise_vectors(ITEMS),
                                            validation=split.validation,
                                            item_side=make_side(ITEMS))


def test_encode_side_features_by_hand():
    side = pd.DataFrame({"creator": ["b", "a", "b", None], "episode": [1, pd.NA, 2, 1]},
                        index=["x", "y", "z", "w"])
    codes, vocab = sq.encode_side_features(side, ["w", "x", "y", "z"])
    assert [v.tolist() for v in vocab] == [["a", "b"], ["1", "2"]]
    np.testing.assert_array_equal(codes, [[0, 1], [2, 1], [1, 0], [2, 2]])
    # With a fixed vocabulary an unknown value has no code (0).
    new = pd.DataFrame({"creator": ["c", "a"], "episode": [3, 2]}, index=["p", "q"])
    codes, _ = sq.encode_side_features(new, ["p", "q"], vocab)
    np.testing.assert_array_equal(codes, [[0, 0], [1, 2]])


def test_encode_side_features_bad_input():
    side = pd.DataFrame({"creator": ["a", "b"]}, index=["x", "y"])
    with pytest.raises(ParameterError, match="DataFrame"):
        sq.encode_side_features(side["creator"], ["x"])
    with pytest.raises(DataError, match="no column"):
        sq.encode_side_features(side[[]], ["x"])
    with pytest.raises(DataError, match="no row for 1 item"):
        sq.encode_side_features(side, ["x", "zz"])
    with pytest.raises(DataError, match="repeated"):
        sq.encode_side_features(pd.DataFrame({"c": [1, 2]}, index=["x", "x"]), ["x"])
    with pytest.raises(DataError, match="fitted on 2"):
        sq.encode_side_features(side, ["x"], [np.array(["a"]), np.array(["b"])])


def test_learns_the_rule_from_side_information_only(model, split):
    metrics = sq.evaluate_next_item(model, split, stage="test", k=10)
    random_hr = 10 / len(ITEMS)
    assert metrics["hr@10"] > 0.9 > 3 * random_hr
    np.testing.assert_array_equal(model.side_codes_[:, 0],
                                  [int(creator_of(i)[1:]) + 1 for i in ITEMS])
    assert model.side_columns_ == ["creator_id", "series_id"]


def test_new_item_of_a_known_creator_is_recommended(split):
    model = sq.SideSASRecModel(**PARAMS).fit(split.train, noise_vectors(ITEMS),
                                             item_side=make_side(ITEMS))
    before = len(model.item_ids_)
    model.add_items(noise_vectors([NEW_ITEM], seed=5), item_side=make_side([NEW_ITEM]).assign(
        creator_id=f"c{NEW_CREATOR}"))
    assert len(model.item_ids_) == before + 1
    # After a clip of creator NEW_CREATOR - 1 comes one of NEW_CREATOR, the new clip's creator.
    history = [[(NEW_CREATOR - 1) * CLIPS_PER_CREATOR + 1]]
    scores = model.score_histories(history)[0]
    rank = int(np.sum(scores > scores[list(model.item_ids_).index(NEW_ITEM)]))
    assert rank < CLIPS_PER_CREATOR + 2
    # Without side values the new clip is like any other: not in that top group.
    plain = sq.SideSASRecModel(**PARAMS).fit(split.train, noise_vectors(ITEMS),
                                             item_side=make_side(ITEMS))
    plain.add_items(noise_vectors([NEW_ITEM], seed=5))
    scores = plain.score_histories(history)[0]
    assert int(np.sum(scores > scores[list(plain.item_ids_).index(NEW_ITEM)])) > rank
    with pytest.raises(DataError, match="already in the catalogue"):
        model.add_items(noise_vectors([NEW_ITEM]), item_side=make_side([NEW_ITEM]))


def test_save_load_gives_identical_scores(model, tmp_path):
    path = model.save(tmp_path / "side")
    loaded = sq.SideSASRecModel.load(path)
    histories = [[1, 9, 17], [40], [64, 3]]
    np.testing.assert_array_equal(loaded.score_histories(histories),
                                  model.score_histories(histories))
    np.testing.assert_array_equal(loaded.side_codes_, model.side_codes_)
    assert loaded.get_params() == model.get_params()
    with pytest.raises(ModelError, match="not a saved SideSASRecModel"):
        sq.SideSASRecModel.load(tmp_path / "nothing")
    content_path = tmp_path / "content"
    sq.ContentSASRecModel(max_len=4, embedding_dim=8, num_blocks=1, epochs=1).fit(
        creator_interactions(20), noise_vectors(ITEMS)).save(content_path)
    with pytest.raises(ModelError, match="not a saved SideSASRecModel"):
        sq.SideSASRecModel.load(content_path)


def test_release_counts_by_hand():
    """Each event's count is 1 + the number of items released by its time."""
    train = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": [1, 2, 3, 3, 1],
                          "timestamp": [5, 10, 20, 20, 30]})
    release = pd.Series([0, 10, 15], index=pd.Index([1, 2, 3], name="item_id"))
    model = sq.SideSASRecModel(max_len=4, embedding_dim=8, num_blocks=1, epochs=1)
    model.item_ids_ = np.array([1, 2, 3])
    model._release_time, model._raw_train, model._validation_frame = release, train, None
    model._prepare_release_counts()
    np.testing.assert_array_equal(model._release_rank, [1, 2, 3])
    assert [c.tolist() for c in model._counts] == [[2, 3, 4], [4, 4]]
    # Trains both ways (masked over released, unseen items; plain full softmax).
    vectors = noise_vectors([1, 2, 3])
    for mask in (True, False):
        fitted = sq.SideSASRecModel(max_len=4, embedding_dim=8, num_blocks=1, epochs=2,
                                    mask_training=mask).fit(
            train, vectors, item_side=make_side([1, 2, 3]), release_time=release)
        assert np.isfinite(fitted.history_["loss"]).all()


def test_bad_input(split):
    vectors, side = noise_vectors(ITEMS), make_side(ITEMS)
    with pytest.raises(ParameterError, match="needs item_side"):
        sq.SideSASRecModel(**PARAMS).fit(split.train, vectors)
    with pytest.raises(ParameterError, match="item_side must be a DataFrame"):
        sq.SideSASRecModel(**PARAMS).fit(split.train, vectors, item_side=side["creator_id"])
    with pytest.raises(DataError, match="no row for 1 item"):
        sq.SideSASRecModel(**PARAMS).fit(split.train, vectors, item_side=side.iloc[1:])
    with pytest.raises(ParameterError, match="needs item_vectors"):
        sq.SideSASRecModel(**PARAMS).fit(split.train, item_side=side)
    with pytest.raises(ParameterError, match="release_time must be a pandas Series"):
        sq.SideSASRecModel(**PARAMS).fit(split.train, vectors, item_side=side,
                                         release_time=[0] * len(ITEMS))
    with pytest.raises(DataError, match="'timestamp' column"):
        sq.SideSASRecModel(**PARAMS).fit(split.train.drop(columns="timestamp"), vectors,
                                         item_side=side, release_time=pd.Series(0, index=ITEMS))
    with pytest.raises(DataError, match=r"no value for item\(s\) \[1\]"):
        sq.SideSASRecModel(**PARAMS).fit(split.train, vectors, item_side=side,
                                         release_time=pd.Series(0, index=ITEMS[1:]))
    with pytest.raises(ParameterError, match="use_content"):
        sq.SideSASRecModel(**{**PARAMS, "use_content": 1}).fit(split.train, vectors,
                                                               item_side=side)
    with pytest.raises(ParameterError, match="max_len"):
        sq.SideSASRecModel(**{**PARAMS, "max_len": 0}).fit(split.train, vectors,
                                                           item_side=side)
