"""Tests for mmrec_lib.content_models.LinearContentModel (EASE in content space)."""

import numpy as np
import pandas as pd
import pytest

import mmrec_lib as mm
from mmrec_lib import interest
from mmrec_lib.content_models import LinearContentModel
from mmrec_lib.errors import ParameterError

# Two tastes: users 0-5 consume items with feature 0 (items 0-3), users 6-11 feature 1 (4-7).
# Item 8 (feature 0) and item 9 (feature 1) are cold: nobody consumed them.
VECTORS = pd.DataFrame(np.array([[1, 0, 0.1 * i] for i in range(4)]
                                + [[0, 1, 0.1 * i] for i in range(4)]
                                + [[1, 0, 0.05], [0, 1, 0.05]], dtype=np.float64),
                       index=range(10))
RNG = np.random.default_rng(0)
TRAIN = pd.DataFrame(
    [(user, item) for user in range(6) for item in RNG.choice(4, 2, replace=False)]
    + [(user, item) for user in range(6, 12) for item in 4 + RNG.choice(4, 2, replace=False)],
    columns=["user_id", "item_id"])


def test_scores_cover_the_catalogue_including_cold_items():
    model = LinearContentModel().fit(TRAIN, item_vectors=VECTORS)
    assert model.score([0, 6]).shape == (2, 10)
    assert model.content_map_.shape == (4, 4)


def test_cold_items_follow_the_users_taste():
    model = LinearContentModel(l2=0.01).fit(TRAIN, item_vectors=VECTORS)
    scores = model.score(range(12), item_ids=[8, 9])
    assert (scores[:6, 0] > scores[:6, 1]).all()
    assert (scores[6:, 1] > scores[6:, 0]).all()


def test_items_with_equal_vectors_get_equal_scores_warm_or_cold():
    # No per-item parameter: a cold copy of item 2's vector scores exactly like item 2.
    vectors = VECTORS.copy()
    vectors.loc[8] = vectors.loc[2]
    scores = LinearContentModel().fit(TRAIN, item_vectors=vectors).score(range(12))
    np.testing.assert_allclose(scores[:, 2], scores[:, 8], rtol=1e-5, atol=1e-6)


def test_content_map_solves_the_ridge_normal_equations():
    model = LinearContentModel(l2=0.3).fit(TRAIN, item_vectors=VECTORS)
    X = model.train_matrix_.toarray().astype(np.float64)
    V = model.item_features_.astype(np.float64)
    A = X @ V
    alpha, beta = np.linalg.eigvalsh(A.T @ A), np.linalg.eigvalsh(V.T @ V)
    penalty = 0.3 * alpha.mean() * beta.mean()
    W = model.content_map_.astype(np.float64)
    residual = A.T @ A @ W @ V.T @ V + penalty * W - A.T @ X @ V
    assert np.abs(residual).max() < 1e-3 * np.abs(A.T @ X @ V).max()


def test_popularity_prior_reorders_warm_items_only():
    train = pd.concat([TRAIN, pd.DataFrame({"user_id": range(12), "item_id": 5})])
    train = train.drop_duplicates().reset_index(drop=True)
    plain = LinearContentModel().fit(train, item_vectors=VECTORS).score([0])[0]
    prior = LinearContentModel(popularity_weight=100.0).fit(train, item_vectors=VECTORS)
    scores = prior.score([0])[0]
    assert np.argmax(scores) == 5 != np.argmax(plain)
    # Both cold items have count 0: the prior shifts them equally.
    standardized = (plain - plain.mean()) / plain.std()
    assert scores[8] - scores[9] == pytest.approx(standardized[8] - standardized[9], abs=1e-4)


def test_ranks_cold_items_better_than_popularity():
    test = pd.DataFrame({"user_id": list(range(12)), "item_id": [8] * 6 + [9] * 6})
    values = [mm.evaluate(model.fit(TRAIN, item_vectors=VECTORS), (TRAIN, test), k=1,
                          metrics=("hit_rate",), n_bootstrap=0, candidates=[8, 9])["value"].iloc[0]
              for model in (LinearContentModel(l2=0.01), interest.PopularityModel())]
    assert values[0] == 1.0 > values[1]


def test_needs_item_vectors():
    with pytest.raises(ParameterError, match="needs item_vectors"):
        LinearContentModel().fit(TRAIN)


@pytest.mark.parametrize("l2", [0.0, -1.0, float("nan"), float("inf"), "1"])
def test_rejects_a_bad_l2(l2):
    with pytest.raises(ParameterError, match="l2="):
        LinearContentModel(l2=l2).fit(TRAIN, item_vectors=VECTORS)


@pytest.mark.parametrize("weight", [-0.5, float("nan")])
def test_rejects_a_bad_popularity_weight(weight):
    with pytest.raises(ParameterError, match="popularity_weight="):
        LinearContentModel(popularity_weight=weight).fit(TRAIN, item_vectors=VECTORS)
