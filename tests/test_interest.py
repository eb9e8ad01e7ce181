"""Tests for mmrec_lib.interest: every model on tiny hand-made data."""

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import interest
from mmrec_lib.errors import DataError, NotFittedError, ParameterError

# Users a, b, c; items 1..4. Item 5 exists only in item_vectors (a cold item).
TRAIN = pd.DataFrame({
    "user_id": ["a", "a", "b", "b", "b", "c"],
    "item_id": [1, 2, 1, 2, 3, 3],
    "rating": [5.0, 3.0, 4.0, 4.0, 1.0, 2.0],
    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-01", "2024-01-02",
                                 "2024-01-05", "2024-01-01"]),
})
VECTORS = pd.DataFrame([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 0.1]],
                       index=[1, 2, 3, 4, 5])
X = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=float)  # TRAIN as a matrix (items 1..3)


def test_popularity_counts_users():
    model = interest.PopularityModel().fit(TRAIN)
    np.testing.assert_array_equal(model.item_ids_, [1, 2, 3])
    np.testing.assert_allclose(model.score(["a", "c"]), [[2, 2, 2], [2, 2, 2]])


def test_popularity_with_cold_items_in_catalogue():
    model = interest.PopularityModel().fit(TRAIN, item_vectors=VECTORS)
    np.testing.assert_array_equal(model.item_ids_, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(model.score(["a"])[0], [2, 2, 2, 0, 0])


def test_score_subset_of_items():
    model = interest.PopularityModel().fit(TRAIN)
    np.testing.assert_allclose(model.score(["a"], item_ids=[3, 1]), [[2, 2]])


def test_ease_matches_closed_form():
    l2 = 0.5
    model = interest.EASEModel(l2=l2).fit(TRAIN)
    P = np.linalg.inv(X.T @ X + l2 * np.eye(3))
    B = np.eye(3) - P / np.diag(P)[None, :]  # Steck (2019), eq. 8
    np.testing.assert_allclose(np.diag(model.weights_), 0.0, atol=1e-7)
    np.testing.assert_allclose(model.weights_, B, atol=1e-5)
    np.testing.assert_allclose(model.score(["a", "b", "c"]), X @ B, atol=1e-5)


def test_ease_cold_item_scores_zero():
    model = interest.EASEModel(l2=1.0).fit(TRAIN, item_vectors=VECTORS)
    np.testing.assert_allclose(model.score(["b"])[0, 3:], [0.0, 0.0])


def test_ease_popularity_exponent_demotes_popular():
    plain = interest.EASEModel(l2=1.0).fit(TRAIN)
    demoted = interest.EASEModel(l2=1.0, popularity_exponent=1.0).fit(TRAIN)
    popularity = np.array([2.0, 2.0, 2.0])
    np.testing.assert_allclose(demoted.weights_, plain.weights_ / popularity[None, :], atol=1e-6)


def test_ease_bad_l2():
    with pytest.raises(ParameterError, match="l2"):
        interest.EASEModel(l2=0).fit(TRAIN)


def test_itemknn_cosine_hand_computed():
    model = interest.ItemKNNModel(num_neighbors=5).fit(TRAIN)
    # Items 1 and 2 share users a, b: cos = 2 / (sqrt2 sqrt2) = 1; items 1 and 3 share b:
    # 1 / (sqrt2 sqrt2) = 0.5.
    expected = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(model.similarity_, expected, atol=1e-6)
    np.testing.assert_allclose(model.score(["c"]), [[0.5, 0.5, 0.0]], atol=1e-6)


def test_itemknn_keeps_top_neighbours():
    model = interest.ItemKNNModel(num_neighbors=1).fit(TRAIN)
    assert ((model.similarity_ > 0).sum(axis=0) <= 1).all()


def test_itemknn_bad_neighbours():
    with pytest.raises(ParameterError, match="num_neighbors"):
        interest.ItemKNNModel(num_neighbors=0).fit(TRAIN)


def test_content_profile_is_mean_of_vectors():
    model = interest.ContentProfileModel().fit(TRAIN, item_vectors=VECTORS)
    # User a consumed items 1 and 2: profile (1, 0.5).
    np.testing.assert_allclose(model.user_profiles_[0], [1.0, 0.5])
    profile = np.array([1.0, 0.5])
    vectors = VECTORS.to_numpy()
    expected = vectors @ profile / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(profile))
    np.testing.assert_allclose(model.score(["a"])[0], expected, rtol=1e-5)


def test_content_profile_scores_cold_item():
    model = interest.ContentProfileModel().fit(TRAIN, item_vectors=VECTORS)
    scores = model.score(["a"], item_ids=[4, 5])[0]
    assert scores[1] > 0.9 > scores[0]


def test_content_profile_weights_and_negative_feedback():
    train = TRAIN.assign(disliked=TRAIN.rating < 2)
    weighted = interest.ContentProfileModel(weight_col="rating").fit(train, item_vectors=VECTORS)
    # User a: (5 * (1, 0) + 3 * (1, 1)) / 8 = (1, 0.375).
    np.testing.assert_allclose(weighted.user_profiles_[0], [1.0, 0.375])
    negative = interest.ContentProfileModel(negative_col="disliked").fit(train,
                                                                         item_vectors=VECTORS)
    # User b: ((1, 0) + (1, 1) - (0, 1)) / 3 = (2/3, 0).
    np.testing.assert_allclose(negative.user_profiles_[1], [2 / 3, 0.0], atol=1e-7)


def test_content_profile_recency_decay():
    model = interest.ContentProfileModel(half_life=2.0).fit(TRAIN, item_vectors=VECTORS)
    # User a: item 2 is the latest (weight 1), item 1 is 2 days older (weight 0.5).
    expected = (0.5 * np.array([1.0, 0.0]) + np.array([1.0, 1.0])) / 1.5
    np.testing.assert_allclose(model.user_profiles_[0], expected, rtol=1e-6)


def test_content_profile_needs_vectors():
    with pytest.raises(ParameterError, match="needs item_vectors"):
        interest.ContentProfileModel().fit(TRAIN)


def test_content_profile_decay_needs_timestamp():
    with pytest.raises(DataError, match="timestamp"):
        interest.ContentProfileModel(half_life=1.0).fit(TRAIN.drop(columns="timestamp"),
                                                        item_vectors=VECTORS)


def test_content_profile_bad_metric():
    with pytest.raises(ParameterError, match="metric"):
        interest.ContentProfileModel(metric="euclid").fit(TRAIN, item_vectors=VECTORS)


def test_item_vectors_missing_training_item():
    with pytest.raises(DataError, match="no row for 1 training item"):
        interest.ContentProfileModel().fit(TRAIN, item_vectors=VECTORS.drop(index=3))


def test_item_vectors_with_nan():
    bad = VECTORS.copy()
    bad.iloc[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        interest.ContentProfileModel().fit(TRAIN, item_vectors=bad)


def test_item_vectors_not_a_frame():
    with pytest.raises(ParameterError, match="DataFrame"):
        interest.ContentProfileModel().fit(TRAIN, item_vectors=VECTORS.to_numpy())


def test_score_before_fit():
    with pytest.raises(NotFittedError):
        interest.EASEModel().score(["a"])


def test_score_unknown_user():
    model = interest.PopularityModel().fit(TRAIN)
    with pytest.raises(DataError, match="not seen in fit"):
        model.score(["zzz"])


def test_fit_empty_train():
    with pytest.raises(DataError, match="no rows"):
        interest.PopularityModel().fit(TRAIN.iloc[:0])


def test_fit_not_a_frame():
    with pytest.raises(ParameterError, match="DataFrame"):
        interest.PopularityModel().fit([("a", 1)])


def test_recommend_removes_seen_items():
    model = interest.EASEModel(l2=1.0).fit(TRAIN)
    recommendations = model.recommend(["a", "c"], k=3)
    seen = set(zip(TRAIN.user_id, TRAIN.item_id, strict=True))
    pairs = set(zip(recommendations.user_id, recommendations.item_id, strict=True))
    assert not pairs & seen
    assert recommendations.query("user_id == 'a'").item_id.tolist() == [3]
    assert recommendations["rank"].min() == 1


def test_recommend_bad_k():
    with pytest.raises(ParameterError, match="k=9"):
        interest.PopularityModel().fit(TRAIN).recommend(["a"], k=9)


def test_bpr_trains_and_is_deterministic():
    rng = np.random.RandomState(0)
    # Two groups of users who like two disjoint groups of items.
    rows = [(f"u{u}", item) for u in range(20) for item in
            (rng.choice(10, 5, replace=False) if u < 10 else 10 + rng.choice(10, 5, replace=False))]
    train = pd.DataFrame(rows, columns=["user_id", "item_id"])
    settings = dict(embedding_dim=8, epochs=15, batch_size=32, learning_rate=0.05, seed=0)
    first = interest.BPRMFModel(**settings).fit(train)
    second = interest.BPRMFModel(**settings).fit(train)
    np.testing.assert_allclose(first.score(["u0"]), second.score(["u0"]), rtol=1e-5)
    assert len(first.history_["loss"]) == 15
    assert first.history_["loss"][-1] < first.history_["loss"][0]
    scores = first.score(["u0", "u15"])
    # Group 1 users prefer items 0-9, group 2 users items 10-19.
    assert scores[0, :10].mean() > scores[0, 10:].mean()
    assert scores[1, 10:].mean() > scores[1, :10].mean()


def test_bpr_bad_epochs():
    with pytest.raises(ParameterError, match="epochs"):
        interest.BPRMFModel(epochs=0).fit(TRAIN)


def test_hybrid_single_model_keeps_ranking():
    hybrid = interest.HybridModel([interest.EASEModel(l2=1.0)]).fit(TRAIN)
    plain = interest.EASEModel(l2=1.0).fit(TRAIN)
    scores, reference = hybrid.score(["b"])[0], plain.score(["b"])[0]
    np.testing.assert_array_equal(np.argsort(-scores, kind="stable"),
                                  np.argsort(-reference, kind="stable"))
    assert abs(scores.mean()) < 1e-5 and abs(scores.std() - 1) < 1e-4


def test_hybrid_mixes_content_for_cold_items():
    hybrid = interest.HybridModel(
        [interest.PopularityModel(), interest.ContentProfileModel()], weights=[0.5, 0.5],
        normalize="minmax").fit(TRAIN, item_vectors=VECTORS)
    scores = hybrid.score(["a"])[0]
    popularity = np.array([1, 1, 1, 0, 0])
    content = interest.ContentProfileModel().fit(TRAIN, item_vectors=VECTORS).score(["a"])[0]
    content = (content - content.min()) / (content.max() - content.min())
    np.testing.assert_allclose(scores, 0.5 * popularity + 0.5 * content, atol=1e-5)


def test_hybrid_no_models():
    with pytest.raises(ParameterError, match="at least one"):
        interest.HybridModel([]).fit(TRAIN)


def test_hybrid_weight_count():
    with pytest.raises(ParameterError, match="weights has 1"):
        interest.HybridModel([interest.PopularityModel(), interest.EASEModel()],
                             weights=[1.0]).fit(TRAIN)


def test_hybrid_bad_normalize():
    with pytest.raises(ParameterError, match="normalize"):
        interest.HybridModel([interest.PopularityModel()], normalize="rank").fit(TRAIN)


def test_ease_user_degree_exponent_hand_computed():
    l2, exponent = 0.5, 0.5
    model = interest.EASEModel(l2=l2, user_degree_exponent=exponent).fit(TRAIN)
    degree = X.sum(axis=1)
    gram = X.T @ np.diag(degree ** -exponent) @ X
    penalty = l2 * np.trace(gram) / np.trace(X.T @ X)
    P = np.linalg.inv(gram + penalty * np.eye(3))
    np.testing.assert_allclose(model.weights_, np.eye(3) - P / np.diag(P)[None, :], atol=1e-5)


def test_ease_bad_user_degree_exponent():
    with pytest.raises(ParameterError, match="user_degree_exponent"):
        interest.EASEModel(user_degree_exponent=-1).fit(TRAIN)


def test_user_ease_matches_closed_form():
    l2 = 0.7
    model = interest.UserEASEModel(l2=l2).fit(TRAIN)
    P = np.linalg.inv(X @ X.T + l2 * np.eye(3))
    C = np.eye(3) - P / np.diag(P)[None, :]
    np.testing.assert_allclose(model.score(["a", "b", "c"]), C.T @ X, atol=1e-5)


def test_user_ease_bad_l2():
    with pytest.raises(ParameterError, match="l2"):
        interest.UserEASEModel(l2=-1.0).fit(TRAIN)


def test_score_function_model_wraps_a_function():
    def score(users, items):
        return np.array([[float(item) * (1 if user == "a" else -1) for item in items]
                         for user in users])

    model = interest.ScoreFunctionModel(score, item_ids=[1, 2, 3, 4, 5]).fit(TRAIN)
    np.testing.assert_array_equal(model.item_ids_, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(model.score(["a", "b"]), [[1, 2, 3, 4, 5], [-1, -2, -3, -4, -5]])
    top = model.recommend(["a"], k=2)
    assert top.item_id.tolist() == [5, 4]


def test_score_function_model_errors():
    with pytest.raises(ParameterError, match="callable"):
        interest.ScoreFunctionModel(None).fit(TRAIN)
    model = interest.ScoreFunctionModel(lambda users, items: np.zeros((1, 1))).fit(TRAIN)
    with pytest.raises(DataError, match="shape"):
        model.score(["a", "b"])


def test_bpr_leaves_unseen_catalogue_items_at_their_initial_vectors():
    rng = np.random.RandomState(0)
    rows = [(f"u{u}", int(item)) for u in range(20) for item in rng.choice(10, 5, replace=False)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id"])
    vectors = pd.DataFrame(np.zeros((14, 1)), index=range(14))  # items 10-13: never seen
    model = interest.BPRMFModel(embedding_dim=4, epochs=5, batch_size=16, l2=0.0,
                                seed=0).fit(train, item_vectors=vectors)
    cold = np.isin(model.item_ids_, [10, 11, 12, 13])
    np.testing.assert_array_equal(model.item_bias_[cold], 0.0)
    assert np.abs(model.item_factors_[cold]).max() < 0.05  # N(0, 0.01) initialisation
    assert np.abs(model.item_factors_[~cold]).max() > 0.05
