"""Tests for mmrec_lib.metrics on hand-computed cases and edge cases."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mmrec_lib import metrics
from mmrec_lib.errors import DataError, ParameterError

# Three users, k = 3 (values worked out by hand in the comments).
RECOMMENDED = [["a", "b", "c", "d"], ["x", "y"], ["p", "q", "r"]]
RELEVANT = [{"a", "c", "e"}, {"y"}, {"z"}]
LOG3 = np.log2(3)


def test_precision_hand_computed():
    # u1: 2 hits / 3; u2: 1 hit / 3 (a short list still divides by k); u3: 0.
    per_user = metrics.precision_at_k(RECOMMENDED, RELEVANT, k=3, per_user=True)
    np.testing.assert_allclose(per_user, [2 / 3, 1 / 3, 0.0])
    assert metrics.precision_at_k(RECOMMENDED, RELEVANT, k=3) == pytest.approx(1 / 3)


def test_recall_hand_computed():
    np.testing.assert_allclose(metrics.recall_at_k(RECOMMENDED, RELEVANT, k=3, per_user=True),
                               [2 / 3, 1.0, 0.0])


def test_ndcg_hand_computed():
    # u1: DCG = 1 + 1/log2(4) = 1.5, IDCG = 1 + 1/log2(3) + 1/2; u2: DCG = 1/log2(3), IDCG = 1.
    expected = [1.5 / (1.5 + 1 / LOG3), 1 / LOG3, 0.0]
    np.testing.assert_allclose(metrics.ndcg_at_k(RECOMMENDED, RELEVANT, k=3, per_user=True),
                               expected)
    assert metrics.ndcg_at_k(RECOMMENDED, RELEVANT, k=3) == pytest.approx(np.mean(expected))


def test_map_hand_computed():
    # u1: (1/1 + 2/3) / min(3, 3); u2: (1/2) / 1.
    np.testing.assert_allclose(metrics.map_at_k(RECOMMENDED, RELEVANT, k=3, per_user=True),
                               [(1 + 2 / 3) / 3, 0.5, 0.0])


def test_map_normalisations_differ_when_many_relevant():
    recommended, relevant = [["a", "b"]], [{"a", "b", "c", "d", "e"}]
    assert metrics.map_at_k(recommended, relevant, k=2) == pytest.approx(1.0)
    assert metrics.map_at_k(recommended, relevant, k=2, normalize="relevant") == \
        pytest.approx(0.4)


def test_map_bad_normalize():
    with pytest.raises(ParameterError, match="normalize"):
        metrics.map_at_k(RECOMMENDED, RELEVANT, normalize="k")


def test_hit_rate_and_mrr_hand_computed():
    assert metrics.hit_rate_at_k(RECOMMENDED, RELEVANT, k=3) == pytest.approx(2 / 3)
    np.testing.assert_allclose(metrics.mrr_at_k(RECOMMENDED, RELEVANT, k=3, per_user=True),
                               [1.0, 0.5, 0.0])


def test_perfect_ranking_scores_one():
    recommended, relevant = [[1, 2, 3]], [{1, 2, 3}]
    for metric in (metrics.precision_at_k, metrics.recall_at_k, metrics.ndcg_at_k,
                   metrics.map_at_k, metrics.hit_rate_at_k, metrics.mrr_at_k):
        assert metric(recommended, relevant, k=3) == pytest.approx(1.0)


def test_ndcg_is_one_for_all_hits_in_front_even_with_more_relevant():
    # 5 relevant items, k = 2, both slots hit: the ideal list cannot do better.
    assert metrics.ndcg_at_k([["a", "b"]], [set("abcde")], k=2) == pytest.approx(1.0)


def test_user_without_relevant_items_is_skipped():
    recommended, relevant = [["a"], ["b"]], [{"a"}, set()]
    per_user = metrics.precision_at_k(recommended, relevant, k=1, per_user=True)
    assert per_user[0] == 1.0 and np.isnan(per_user[1])
    assert metrics.precision_at_k(recommended, relevant, k=1) == 1.0


def test_no_user_with_relevant_items():
    with pytest.raises(DataError, match="no user has a relevant item"):
        metrics.ndcg_at_k([["a"]], [set()], k=1)


def test_k_larger_than_list():
    # Only one item recommended; k = 10: precision 1/10, recall 1, NDCG 1.
    recommended, relevant = [["a"]], [{"a"}]
    assert metrics.precision_at_k(recommended, relevant, k=10) == pytest.approx(0.1)
    assert metrics.recall_at_k(recommended, relevant, k=10) == pytest.approx(1.0)
    assert metrics.ndcg_at_k(recommended, relevant, k=10) == pytest.approx(1.0)


def test_order_matters_for_ndcg_not_precision():
    relevant = [{"a"}]
    first = metrics.ndcg_at_k([["a", "b"]], relevant, k=2)
    second = metrics.ndcg_at_k([["b", "a"]], relevant, k=2)
    assert first == pytest.approx(1.0) and second == pytest.approx(1 / LOG3)
    assert metrics.precision_at_k([["a", "b"]], relevant, k=2) == \
        metrics.precision_at_k([["b", "a"]], relevant, k=2)


def test_permuting_users_does_not_change_means():
    order = [2, 0, 1]
    shuffled_rec = [RECOMMENDED[i] for i in order]
    shuffled_rel = [RELEVANT[i] for i in order]
    assert metrics.ndcg_at_k(shuffled_rec, shuffled_rel, k=3) == \
        pytest.approx(metrics.ndcg_at_k(RECOMMENDED, RELEVANT, k=3))


def test_repeated_item_in_list():
    with pytest.raises(DataError, match="repeats"):
        metrics.precision_at_k([["a", "a"]], [{"a"}], k=2)


def test_misaligned_lists():
    with pytest.raises(ParameterError, match="aligned"):
        metrics.precision_at_k([["a"]], [{"a"}, {"b"}])


def test_empty_lists():
    with pytest.raises(ParameterError, match="empty"):
        metrics.recall_at_k([], [])


def test_bad_k():
    with pytest.raises(ParameterError, match="k=0"):
        metrics.ndcg_at_k(RECOMMENDED, RELEVANT, k=0)


def test_auc_hand_computed_and_sklearn():
    labels, scores = [1, 0, 1, 0], [0.9, 0.1, 0.4, 0.4]
    # Pairs (pos, neg): 0.9>0.1, 0.9>0.4, 0.4>0.1, 0.4=0.4 (one half) -> 3.5 / 4.
    assert metrics.auc(labels, scores) == pytest.approx(0.875)
    assert metrics.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))


def test_auc_single_class():
    with pytest.raises(DataError, match="positive and one negative"):
        metrics.auc([1, 1], [0.2, 0.3])


def test_auc_non_binary_labels():
    with pytest.raises(DataError, match="binary"):
        metrics.auc([2, 0], [0.2, 0.3])


def test_user_auc_with_exclusion():
    scores = np.array([[0.9, 0.8, 0.1, 0.5]])
    relevant = np.array([[False, False, True, False]])
    # Without exclusion the relevant item beats nobody; excluding items 0, 1 and 3
    # leaves no negative, so the user is skipped.
    assert metrics.user_auc(scores, relevant) == pytest.approx(0.0)
    exclude = np.array([[True, True, False, False]])
    assert metrics.user_auc(scores, relevant, exclude=exclude) == pytest.approx(0.0)
    exclude_all = np.array([[True, True, False, True]])
    with pytest.raises(DataError, match="no user"):
        metrics.user_auc(scores, relevant, exclude=exclude_all)


def test_coverage_and_entropy():
    recommended = [["a", "b"], ["a", "c"]]
    assert metrics.catalog_coverage(recommended, ["a", "b", "c", "d"]) == pytest.approx(0.75)
    # Slots: a twice, b once, c once -> p = (1/2, 1/4, 1/4) -> 1.5 bits.
    assert metrics.distributional_coverage(recommended) == pytest.approx(1.5)


def test_novelty_hand_computed():
    train_items = ["a", "a", "b", "c"]  # -log2 share: a 1, b 2, c 2
    recommended = [["a", "b"], ["c", "z"]]  # z never trained: contributes 0, as Recommenders
    assert metrics.novelty(recommended, train_items) == pytest.approx(5 / 4)
    np.testing.assert_allclose(metrics.novelty(recommended, train_items, per_user=True),
                               [1.5, 1.0])


def test_average_recommended_popularity():
    train_items = ["a", "a", "b", "c"]
    assert metrics.average_recommended_popularity([["a", "b"], ["c", "z"]], train_items) == \
        pytest.approx(1.0)


def test_intra_list_diversity():
    vectors = pd.DataFrame([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], index=["a", "b", "c"])
    # Pairs: a-b 0, a-c 1/sqrt2, b-c 1/sqrt2.
    expected = 1 - (2 / np.sqrt(2)) / 3
    assert metrics.intra_list_diversity([["a", "b", "c"]], vectors) == pytest.approx(expected)
    assert metrics.intra_list_diversity([[0, 1, 2]], vectors.to_numpy()) == pytest.approx(expected)
    per_user = metrics.intra_list_diversity([["a", "c"], ["b"]], vectors, per_user=True)
    assert per_user[0] == pytest.approx(1 - 1 / np.sqrt(2))
    assert np.isnan(per_user[1])  # a one-item list has no pair


def test_intra_list_diversity_unknown_item():
    vectors = pd.DataFrame([[1.0, 0.0]], index=["a"])
    with pytest.raises(DataError, match="no row"):
        metrics.intra_list_diversity([["a", "b"]], vectors)


def test_gini_index():
    assert metrics.gini_index([1, 1, 1, 1]) == pytest.approx(0.0)
    assert metrics.gini_index([0, 0, 0, 1]) == pytest.approx(0.75)
    assert metrics.gini_index([0, 0, 0, 0]) == 0.0


def test_gini_negative():
    with pytest.raises(DataError, match="non-negative"):
        metrics.gini_index([1, -1])


def test_exposure_gini_counts_unrecommended_items():
    assert metrics.exposure_gini([["a"], ["a"]], ["a", "b"]) == pytest.approx(0.5)


def test_lists_from_frames_common_users_and_order():
    truth = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 10, 12]})
    predictions = pd.DataFrame({"user_id": [1, 1, 1, 2, 4], "item_id": [10, 12, 11, 13, 10],
                                "prediction": [0.1, 0.9, 0.5, 1.0, 1.0]})
    users, recommended, relevant = metrics.lists_from_frames(truth, predictions, k=2)
    assert users.tolist() == [1, 2]  # user 3 has no predictions, user 4 no truth
    assert recommended[0].tolist() == [12, 11]
    assert relevant[0] == {10, 11}
    assert metrics.precision_at_k(recommended, relevant, k=2) == pytest.approx((0.5 + 0) / 2)


def test_lists_from_frames_no_common_user():
    truth = pd.DataFrame({"user_id": [1], "item_id": [1]})
    predictions = pd.DataFrame({"user_id": [2], "item_id": [1], "prediction": [1.0]})
    with pytest.raises(DataError, match="no user in common"):
        metrics.lists_from_frames(truth, predictions)
