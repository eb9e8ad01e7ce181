"""Tests of mmrec_lib.fairness: re-rankers (MMR, calibration, fair exposure) and their metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import fairness, metrics, similarity
from mmrec_lib.errors import DataError, ParameterError

# Items 0 and 1 are near-duplicates; 2 and 3 point the other way.
SCORES = np.array([0.9, 0.8, 0.7, 0.1])
VECTORS = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.0, 1.0]])
CATEGORIES = np.array([0, 0, 1, 1])


def _fair_case():
    """Group A (items 0-9) outscores group B (items 10-19) for both users."""
    scores = np.vstack([np.linspace(1.0, 0.05, 20), np.linspace(0.95, 0.0, 20)])
    groups = np.array(["A"] * 10 + ["B"] * 10)
    relevance = (scores - scores.min(axis=1, keepdims=True)) / np.ptp(scores, axis=1,
                                                                        keepdims=True)
    return scores, groups, relevance


def _total_gap(recommended, relevance, groups):
    frame = fairness.exposure_relevance_gap(recommended, relevance, groups)
    return frame["gap"].abs().sum() / 2


# --------------------------------------------------------------------------- re-rankers

def test_mmr_picks_the_hand_computed_items():
    # relevance (min-max) = [1, .875, .75, 0]; step 2: item 1 gets .4375 - .5 * cos(0, 1) < 0,
    # item 2 gets .375; step 3: item 1 (-.0625) beats item 3 (0 - .5 * 1).
    np.testing.assert_array_equal(fairness.mmr_rerank(SCORES, VECTORS, k=3, lambda_=0.5),
                                  [0, 2, 1])


@pytest.mark.parametrize("rerank", ["mmr", "calibrated", "exposure"])
def test_lambda_zero_returns_the_original_top_k(rerank):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 12))
    scores[0, 3] = scores[0, 4]  # a tie: the lower index first, as top_k
    vectors = rng.normal(size=(12, 3))
    history = np.full((5, 2), 0.5)
    categories = np.arange(12) % 2
    result = {"mmr": lambda: fairness.mmr_rerank(scores, vectors, 6, 0.0),
              "calibrated": lambda: fairness.calibrated_rerank(scores, categories, history, 6, 0),
              "exposure": lambda: fairness.exposure_fair_rerank(scores, categories, 6, 0.0),
              }[rerank]()
    np.testing.assert_array_equal(result, similarity.top_k(scores, 6))


def test_rerankers_respect_exclude():
    exclude = np.array([True, False, False, False])
    result = fairness.mmr_rerank(SCORES, VECTORS, k=2, lambda_=0.5, exclude=exclude)
    assert 0 not in result
    np.testing.assert_array_equal(fairness.mmr_rerank(SCORES, VECTORS, 2, 0.0, exclude=exclude),
                                  [1, 2])


def test_mmr_raises_intra_list_diversity():
    rng = np.random.default_rng(1)
    scores, vectors = rng.normal(size=(8, 30)), rng.normal(size=(30, 4))
    before = metrics.intra_list_diversity(similarity.top_k(scores, 5), vectors)
    after = metrics.intra_list_diversity(fairness.mmr_rerank(scores, vectors, 5, 0.7), vectors)
    assert after > before


def test_miscalibration_kl_hand_computed():
    # q = [1, 0], q~ = .99 q + .01 p = [.995, .005]; KL = .5 ln(.5/.995) + .5 ln(.5/.005).
    expected = 0.5 * np.log(0.5 / 0.995) + 0.5 * np.log(0.5 / 0.005)
    value = fairness.miscalibration_kl([[0, 1]], [[0.5, 0.5]], CATEGORIES)
    assert value == pytest.approx(expected)
    assert fairness.miscalibration_kl([[0, 2]], [[0.5, 0.5]], CATEGORIES) == pytest.approx(0.0)


def test_calibrated_rerank_lowers_kl():
    history = np.array([0.5, 0.5])
    original = similarity.top_k(SCORES, 2)
    calibrated = fairness.calibrated_rerank(SCORES, CATEGORIES, history, 2, 0.5)
    np.testing.assert_array_equal(calibrated, [0, 2])
    assert (fairness.miscalibration_kl([calibrated], [history], CATEGORIES)
            < fairness.miscalibration_kl([original], [history], CATEGORIES))


def test_calibrated_rerank_accepts_category_distributions():
    one_hot = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])  # rows get normalised
    np.testing.assert_array_equal(
        fairness.calibrated_rerank(SCORES, one_hot, [0.5, 0.5], 2, 0.5), [0, 2])
    # An item that is half of each category calibrates a 50/50 history on its own.
    mixed = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert fairness.calibrated_rerank(SCORES, mixed, [0.5, 0.5], 1, 0.5)[0] == 3


def test_exposure_rerank_halves_the_group_gap():
    scores, groups, relevance = _fair_case()
    before = _total_gap(similarity.top_k(scores, 10), relevance, groups)
    after = _total_gap(fairness.exposure_fair_rerank(scores, groups, 10, 0.5), relevance, groups)
    assert before > 0.2
    assert after <= before / 2


def test_exposure_rerank_full_weight_matches_relevance_shares():
    scores, groups, relevance = _fair_case()
    result = fairness.exposure_fair_rerank(scores, groups, 10, 1.0)
    assert _total_gap(result, relevance, groups) < 0.05


# --------------------------------------------------------------------------- metrics

def test_creator_exposure_log_and_flat():
    log = fairness.creator_exposure([[0, 1]], ["a", "b", "c"])
    first, second = 1.0, 1.0 / np.log2(3)
    np.testing.assert_allclose(log.to_numpy(), [first / (first + second),
                                                second / (first + second), 0.0])
    flat = fairness.creator_exposure([[0, 1], [0, 2]], ["a", "b", "c"], position_discount="none")
    np.testing.assert_allclose(flat.to_numpy(), [0.5, 0.25, 0.25])


def test_exposure_relevance_gap_hand_computed():
    relevance = np.array([[1.0, 1.0, 0.0, 0.0]])
    frame = fairness.exposure_relevance_gap([[0, 2]], relevance, ["a", "b", "a", "b"],
                                            position_discount="none")
    np.testing.assert_allclose(frame["exposure_share"], [1.0, 0.0])
    np.testing.assert_allclose(frame["relevance_share"], [0.5, 0.5])
    np.testing.assert_allclose(frame["gap"], [0.5, -0.5])


def test_serendipity_hand_computed():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # Item 1: (1 - cos(1, 0)) * 1 = 1; item 2 is not relevant: 0. Mean 0.5.
    assert fairness.serendipity([[1, 2]], [[0]], vectors, relevant=[{1}]) == pytest.approx(0.5)
    values = fairness.serendipity([[1, 2], [0]], [[0], []], vectors, relevant=[{1}, {0}],
                                  per_user=True)
    assert values[0] == pytest.approx(0.5) and np.isnan(values[1])
    # Without relevance (Recommenders' default): unexpectedness alone, (1 + 1 - cos 45) / 2.
    assert fairness.serendipity([[1, 2]], [[0]], vectors) == pytest.approx(
        (1 + 1 - np.sqrt(0.5)) / 2)


def test_user_group_gap_light_vs_heavy():
    frame = fairness.user_group_gap([1.0, 0.0, 1.0, np.nan], ["light", "light", "heavy", "heavy"])
    assert frame.loc["light", "num_users"] == 2 and frame.loc["heavy", "num_users"] == 1
    np.testing.assert_allclose(frame.loc[["heavy", "light"], "mean"], [1.0, 0.5])
    np.testing.assert_allclose(frame.loc[["heavy", "light"], "gap"], [1 / 3, -1 / 6])


def test_tradeoff_curve_one_row_per_lambda():
    rng = np.random.default_rng(2)
    scores, vectors = rng.normal(size=(6, 20)), rng.normal(size=(20, 3))
    relevant = [set(similarity.top_k(row, 3).tolist()) for row in scores]
    frame = fairness.tradeoff_curve(
        lambda lam: fairness.mmr_rerank(scores, vectors, 10, lam), [0.0, 0.5, 1.0],
        relevant=relevant, metric=lambda rec: metrics.intra_list_diversity(rec, vectors),
        metric_name="diversity")
    assert list(frame.columns) == ["lambda", "ndcg@10", "diversity"]
    assert frame["ndcg@10"].iloc[0] == pytest.approx(1.0)
    assert frame["diversity"].iloc[-1] > frame["diversity"].iloc[0]


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("lambda_", [-0.1, 1.5, float("nan"), "0.5"])
def test_lambda_outside_unit_interval(lambda_):
    with pytest.raises(ParameterError, match="lambda_"):
        fairness.mmr_rerank(SCORES, VECTORS, 2, lambda_)


@pytest.mark.parametrize("k", [0, -1, 5, 2.0])
def test_bad_k(k):
    with pytest.raises(ParameterError, match="k="):
        fairness.exposure_fair_rerank(SCORES, CATEGORIES, k, 0.5)


def test_nan_scores():
    with pytest.raises(DataError, match="NaN"):
        fairness.mmr_rerank([0.5, np.nan, 0.1, 0.2], VECTORS, 2, 0.5)


def test_empty_scores():
    with pytest.raises(ParameterError, match="scores"):
        fairness.calibrated_rerank(np.zeros((1, 0)), [], [[1.0]], 1, 0.5)


def test_item_vectors_of_the_wrong_length():
    with pytest.raises(ParameterError, match="item_vectors"):
        fairness.mmr_rerank(SCORES, VECTORS[:3], 2, 0.5)


def test_item_groups_of_the_wrong_length():
    with pytest.raises(ParameterError, match="item_groups"):
        fairness.exposure_fair_rerank(SCORES, ["a", "b"], 2, 0.5)


def test_history_distribution_of_the_wrong_shape():
    with pytest.raises(ParameterError, match="user_history_category_dist"):
        fairness.calibrated_rerank(SCORES, CATEGORIES, [0.2, 0.3, 0.5], 2, 0.5)


def test_exclude_of_the_wrong_shape():
    with pytest.raises(ParameterError, match="exclude"):
        fairness.mmr_rerank(SCORES, VECTORS, 2, 0.5, exclude=[True, False])


def test_unknown_items_in_recommended():
    with pytest.raises(DataError, match="outside"):
        fairness.creator_exposure([[0, 7]], ["a", "b", "c"])


def test_empty_recommended():
    with pytest.raises(ParameterError, match="empty"):
        fairness.creator_exposure([], ["a", "b"])


def test_unknown_position_discount():
    with pytest.raises(ParameterError, match="position_discount"):
        fairness.creator_exposure([[0]], ["a"], position_discount="linear")


def test_negative_relevance():
    with pytest.raises(DataError, match="non-negative"):
        fairness.exposure_relevance_gap([[0]], [[-1.0, 1.0]], ["a", "b"])


def test_serendipity_misaligned_users():
    with pytest.raises(ParameterError, match="aligned"):
        fairness.serendipity([[0]], [[1], [0]], VECTORS)
    with pytest.raises(ParameterError, match="relevant"):
        fairness.serendipity([[0]], [[1]], VECTORS, relevant=[{0}, {1}])


def test_empty_lists_are_allowed_per_user():
    np.testing.assert_allclose(fairness.creator_exposure([[], [0]], ["a", "b"]), [1.0, 0.0])
    values = fairness.miscalibration_kl([[], [0]], [[1, 0], [1, 0]], [0, 1], per_user=True)
    assert np.isnan(values[0]) and values[1] == pytest.approx(0.0)


def test_user_group_gap_mismatched_shapes():
    with pytest.raises(ParameterError, match="groups"):
        fairness.user_group_gap([0.1, 0.2], ["light"])


def test_tradeoff_curve_empty_lambdas():
    with pytest.raises(ParameterError, match="lambdas"):
        fairness.tradeoff_curve(lambda lam: [[0]], [], relevant=[{0}], metric=len)


def test_results_are_plain_index_arrays():
    result = fairness.mmr_rerank(np.tile(SCORES, (2, 1)), VECTORS, 2, 0.5)
    assert result.shape == (2, 2) and result.dtype == np.int64
    assert isinstance(fairness.creator_exposure(result, ["a", "a", "b", "b"]), pd.Series)


# --------------------------------------------------------------------------- merit

def test_exposure_rerank_follows_the_given_merit_not_the_catalogue():
    # 90 clips of group "a", 10 of "b"; the user's history is half "b". From min-max
    # scaled scores the estimated share of "b" is about its catalogue share (0.1);
    # with the history as merit the list gives "b" about half of the exposure.
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, (1, 100))
    groups = np.array(["a"] * 90 + ["b"] * 10)
    seen = np.zeros((1, 100), bool)
    seen[0, [0, 1, 90, 91]] = True
    merit = fairness.group_shares(seen, groups)
    np.testing.assert_allclose(merit, [[0.5, 0.5]], atol=1e-3)
    default = fairness.exposure_fair_rerank(scores, groups, 10, 1.0, exclude=seen)
    given = fairness.exposure_fair_rerank(scores, groups, 10, 1.0, merit=merit, exclude=seen)
    share_b = {name: fairness.creator_exposure(lists, groups)["b"]
               for name, lists in (("default", default), ("given", given))}
    assert share_b["default"] < 0.25
    assert 0.4 <= share_b["given"] <= 0.6
    assert not seen[0, given[0]].any()


def test_group_shares_counts_and_smoothing():
    seen = np.array([[True, True, False, True], [False, False, False, False]])
    shares = fairness.group_shares(seen, ["x", "y", "x", "y"], smoothing=1.0)
    np.testing.assert_allclose(shares, [[2 / 5, 3 / 5], [0.5, 0.5]])
    with pytest.raises(DataError, match="no views"):
        fairness.group_shares(seen, ["x", "y", "x", "y"], smoothing=0.0)
    with pytest.raises(ParameterError, match="boolean"):
        fairness.group_shares(seen.astype(int), ["x", "y", "x", "y"])
    with pytest.raises(ParameterError, match="item_groups"):
        fairness.group_shares(seen, ["x", "y"])
    with pytest.raises(ParameterError, match="smoothing"):
        fairness.group_shares(seen, ["x", "y", "x", "y"], smoothing=-1.0)


@pytest.mark.parametrize("merit, error", [
    (np.ones((2, 3)), ParameterError),          # three groups given, two exist
    (np.ones((5, 2)), ParameterError),          # five users given, scores have one row
    (np.array([[1.0, -1.0]]), DataError),       # negative share
    (np.array([[0.0, 0.0]]), DataError),        # no positive share
])
def test_exposure_rerank_rejects_bad_merit(merit, error):
    scores = np.array([[0.9, 0.8, 0.1, 0.2]])
    with pytest.raises(error, match="merit"):
        fairness.exposure_fair_rerank(scores, ["a", "a", "b", "b"], 2, 0.5, merit=merit)
