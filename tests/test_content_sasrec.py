"""Tests of ContentSASRecModel: a rule expressed in content is learned and reaches new items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import sequential as sq
from mmrec_lib.errors import DataError, ParameterError

NUM_CLUSTERS = 8
CLUSTER_SIZE = 8
NEW_ITEM = 1000
NEW_CLUSTER = 3


def content_vector(cluster: int, rng) -> np.ndarray:
    """One-hot cluster plus small item-specific noise (4 extra dimensions)."""
    onehot = np.eye(NUM_CLUSTERS)[cluster]
    return np.concatenate([onehot, 0.1 * rng.standard_normal(4)])


def item_cluster(item: int) -> int:
    return (item - 1) // CLUSTER_SIZE


def make_item_vectors(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    items = np.arange(1, NUM_CLUSTERS * CLUSTER_SIZE + 1)
    rows = [content_vector(item_cluster(i), rng) for i in items]
    return pd.DataFrame(rows, index=pd.Index(items, name="item_id"))


def cluster_interactions(num_users: int = 160, seed: int = 0) -> pd.DataFrame:
    """The next item is a random item of the cluster after the previous item's cluster."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        cluster = int(rng.integers(NUM_CLUSTERS))
        for step in range(int(rng.integers(5, 9))):
            item = cluster * CLUSTER_SIZE + int(rng.integers(CLUSTER_SIZE)) + 1
            rows.append((user, item, step))
            cluster = (cluster + 1) % NUM_CLUSTERS
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


PARAMS = dict(max_len=8, embedding_dim=16, num_blocks=1, num_heads=2, dropout=0.1,
              learning_rate=1e-2, epochs=8, batch_size=32, patience=None, seed=0)


@pytest.fixture(scope="module")
def split():
    return sq.leave_one_out(cluster_interactions())


@pytest.fixture(scope="module")
def vectors():
    return make_item_vectors()


@pytest.fixture(scope="module")
def model(split, vectors):
    return sq.ContentSASRecModel(**PARAMS).fit(split.train, vectors,
                                               validation=split.validation)


def new_item_vectors(seed: int = 1) -> pd.DataFrame:
    row = content_vector(NEW_CLUSTER, np.random.default_rng(seed))
    return pd.DataFrame([row], index=pd.Index([NEW_ITEM], name="item_id"))


def test_learns_the_content_rule(model, split):
    metrics = sq.evaluate_next_item(model, split, stage="test", k=10)
    random_hr = 10 / (NUM_CLUSTERS * CLUSTER_SIZE)
    assert metrics["hr@10"] > 0.9 > 3 * random_hr
    assert len(model.history_["val_ndcg@10"]) == PARAMS["epochs"]


def test_new_item_is_recommended_from_its_content(split, vectors):
    model = sq.ContentSASRecModel(**PARAMS).fit(split.train, vectors)
    before = model.score_histories([[1, 9]])
    model.add_items(new_item_vectors())
    assert NEW_ITEM in model.item_ids_ and model.item_vectors_.shape == (65, 12)
    # Trained items score as before (the catalogue only grew).
    after = model.score_histories([[1, 9]])
    np.testing.assert_allclose(after[:, model.item_encoder_.transform(np.arange(1, 65))],
                               before, rtol=1e-5, atol=1e-5)
    # Users whose last item is in the cluster before NEW_CLUSTER get the new item in their top 10.
    sequences = sq.user_sequences(split.train)
    users = [u for u, s in sequences.items() if item_cluster(s[-1]) == NEW_CLUSTER - 1]
    assert len(users) >= 5
    top = model.recommend(users, k=10)
    assert set(top.loc[top["item_id"] == NEW_ITEM, "user_id"]) == set(users)
    # The other users do not get it first.
    others = [u for u, s in sequences.items() if item_cluster(s[-1]) == NEW_CLUSTER + 1][:5]
    assert NEW_ITEM not in set(model.recommend(others, k=10)["item_id"])
    # An ID-only SASRec cannot even score it: it is not in its catalogue.
    id_only = sq.SASRecModel(**{**PARAMS, "epochs": 1}).fit(split.train)
    with pytest.raises(DataError):
        id_only.score(users[:1], item_ids=[NEW_ITEM])
    with pytest.raises(DataError):
        id_only.score_histories([[1, NEW_ITEM]])


def test_use_item_id_new_items_get_zero_id_embedding(split, vectors):
    params = {**PARAMS, "epochs": 2}
    model = sq.ContentSASRecModel(use_item_id=True, **params).fit(split.train, vectors)
    model.add_items(new_item_vectors())
    table = model.network_.item_embedding.embeddings.numpy()
    np.testing.assert_array_equal(table[1 + model.item_encoder_.transform([NEW_ITEM])[0]], 0.0)
    assert np.isfinite(model.score_histories([[1, NEW_ITEM]])).all()


def test_save_load_identical_scores(model, tmp_path):
    model.save(tmp_path / "content")
    loaded = sq.ContentSASRecModel.load(tmp_path / "content")
    users = model.user_ids_[:10]
    np.testing.assert_array_equal(loaded.score(users), model.score(users))
    np.testing.assert_array_equal(loaded.item_vectors_, model.item_vectors_)
    assert loaded.get_params() == model.get_params()


def test_save_load_after_add_items(split, vectors, tmp_path):
    model = sq.ContentSASRecModel(**{**PARAMS, "epochs": 1}).fit(split.train, vectors)
    model.add_items(new_item_vectors())
    model.save(tmp_path / "grown")
    loaded = sq.ContentSASRecModel.load(tmp_path / "grown")
    np.testing.assert_array_equal(loaded.score_histories([[1, NEW_ITEM]]),
                                  model.score_histories([[1, NEW_ITEM]]))


# ---------------------------------------------------------------- bad inputs


def test_fit_needs_item_vectors(split):
    with pytest.raises(ParameterError, match="item_vectors"):
        sq.ContentSASRecModel(**PARAMS).fit(split.train)


def test_fit_rejects_nan_vectors(split, vectors):
    bad = vectors.copy()
    bad.iloc[3, 2] = np.nan
    with pytest.raises(DataError):
        sq.ContentSASRecModel(**PARAMS).fit(split.train, bad)


def test_fit_rejects_missing_items(split, vectors):
    with pytest.raises(DataError, match="no row"):
        sq.ContentSASRecModel(**PARAMS).fit(split.train, vectors.drop(index=[5, 6]))


def test_fit_rejects_duplicate_ids(split, vectors):
    with pytest.raises(DataError, match="repeated"):
        sq.ContentSASRecModel(**PARAMS).fit(split.train, pd.concat([vectors, vectors.iloc[:1]]))


def test_bad_use_item_id(split, vectors):
    with pytest.raises(ParameterError, match="use_item_id"):
        sq.ContentSASRecModel(use_item_id="yes").fit(split.train, vectors)


def test_add_items_rejects_bad_inputs(model):
    with pytest.raises(DataError, match="columns"):
        model.add_items(pd.DataFrame([[0.0] * 5], index=[2000]))
    with pytest.raises(DataError, match="already"):
        model.add_items(make_item_vectors().iloc[:2])
    with pytest.raises(DataError):
        model.add_items(pd.DataFrame([[np.nan] * 12], index=[2001]))
    with pytest.raises(DataError, match="repeated"):
        model.add_items(pd.DataFrame(np.zeros((2, 12)), index=[2002, 2002]))
    assert 2000 not in model.item_ids_ and len(model.item_ids_) == 64
