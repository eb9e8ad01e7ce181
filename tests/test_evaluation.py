"""Tests for mmrec_lib.evaluate: protocol, agreement with the metrics, bootstrap."""

import numpy as np
import pandas as pd
import pytest

import mmrec_lib as mm
from mmrec_lib import interest, metrics, splits
from mmrec_lib.errors import DataError, NotFittedError, ParameterError


class FixedScores(interest.InterestModel):
    """Every user gets the same scores: item i scores -i (item 0 best)."""

    def _fit(self, X, vectors, train):
        self.fixed_ = -np.arange(X.shape[1], dtype=np.float32)

    def _score(self, user_index):
        return np.tile(self.fixed_, (len(user_index), 1))


TRAIN = pd.DataFrame({"user_id": ["a", "a", "b", "c"], "item_id": [0, 1, 2, 3]})
VALIDATION = pd.DataFrame({"user_id": ["a"], "item_id": [4]})
TEST = pd.DataFrame({"user_id": ["a", "a", "b", "z"], "item_id": [2, 5, 0, 0]})
ITEMS = pd.DataFrame(np.eye(6), index=range(6))


@pytest.fixture
def model():
    return FixedScores().fit(TRAIN, item_vectors=ITEMS)


def _value(table, metric):
    return table.set_index("metric").loc[metric, "value"]


def test_evaluate_hand_computed(model):
    split = splits.Split(TRAIN, VALIDATION, TEST)
    table = mm.evaluate(model, split, k=2, metrics=("precision", "recall", "ndcg", "hit_rate"),
                        n_bootstrap=0)
    # a: seen {0, 1} (train) and {4} (validation) removed -> top-2 = [2, 3]; relevant {2, 5}.
    # b: seen {2} -> top-2 = [0, 1]; relevant {0}. User z is unknown to the model: skipped.
    assert table["n_users"].tolist() == [2] * 4
    assert _value(table, "precision@2") == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert _value(table, "recall@2") == pytest.approx((1 / 2 + 1) / 2)
    assert _value(table, "ndcg@2") == pytest.approx((1 / (1 + 1 / np.log2(3)) + 1) / 2)
    assert _value(table, "hit_rate@2") == pytest.approx(1.0)
    assert table.columns.tolist() == ["model", "metric", "k", "value", "ci_low", "ci_high",
                                      "n_users"]
    assert table["ci_low"].isna().all()


def test_evaluate_agrees_with_metric_functions(model):
    split = splits.Split(TRAIN, VALIDATION, TEST)
    table = mm.evaluate(model, split, k=3, metrics=("map", "mrr", "novelty", "coverage"),
                        n_bootstrap=0)
    recommended = [[2, 3, 5], [0, 1, 3]]
    relevant = [{2, 5}, {0}]
    assert _value(table, "map@3") == pytest.approx(metrics.map_at_k(recommended, relevant, k=3))
    assert _value(table, "mrr@3") == pytest.approx(metrics.mrr_at_k(recommended, relevant, k=3))
    assert _value(table, "novelty@3") == pytest.approx(
        metrics.novelty(recommended, TRAIN.item_id))
    assert _value(table, "coverage@3") == pytest.approx(
        metrics.catalog_coverage(recommended, TRAIN.item_id))


def test_forgetting_to_remove_seen_items_hurts(model):
    split = (TRAIN, TEST)
    with_removal = mm.evaluate(model, split, k=2, metrics=("precision",), n_bootstrap=0)
    without = mm.evaluate(model, split, k=2, metrics=("precision",), n_bootstrap=0,
                          remove_seen=False)
    assert _value(without, "precision@2") < _value(with_removal, "precision@2")


def test_evaluate_on_validation(model):
    split = splits.Split(TRAIN, VALIDATION, TEST)
    table = mm.evaluate(model, split, k=1, metrics=("hit_rate",), on="validation",
                        n_bootstrap=0)
    # a's validation item 4 is not the best unseen item (2 is): no hit.
    assert _value(table, "hit_rate@1") == 0.0
    assert table["n_users"].iloc[0] == 1


def test_bootstrap_interval_brackets_value():
    rng = np.random.RandomState(0)
    rows = [(u, i) for u in range(60) for i in rng.choice(30, 8, replace=False)]
    data = pd.DataFrame(rows, columns=["user_id", "item_id"])
    split = splits.stratified_split(data, seed=0)
    fitted = interest.PopularityModel().fit(split.train)
    table = mm.evaluate(fitted, split, k=5, metrics=("ndcg", "auc"), n_bootstrap=200, seed=1)
    assert (table.ci_low <= table.value).all() and (table.value <= table.ci_high).all()
    assert (table.ci_high - table.ci_low > 0).all()
    again = mm.evaluate(fitted, split, k=5, metrics=("ndcg", "auc"), n_bootstrap=200, seed=1)
    pd.testing.assert_frame_equal(table, again)


def test_diversity_and_gini(model):
    table = mm.evaluate(model, (TRAIN, TEST), k=2, metrics=("diversity", "gini", "arp"),
                        item_vectors=ITEMS, n_bootstrap=0)
    assert _value(table, "diversity@2") == pytest.approx(1.0)  # one-hot vectors: orthogonal
    assert 0.0 <= _value(table, "gini@2") <= 1.0


def test_model_name_column(model):
    table = mm.evaluate(model, (TRAIN, TEST), k=1, metrics=("precision",), n_bootstrap=0,
                        name="fixed")
    assert table["model"].tolist() == ["fixed"]


def test_unknown_metric(model):
    with pytest.raises(ParameterError, match="unknown"):
        mm.evaluate(model, (TRAIN, TEST), k=2, metrics=("accuracy",))


def test_diversity_needs_vectors(model):
    with pytest.raises(ParameterError, match="item_vectors"):
        mm.evaluate(model, (TRAIN, TEST), k=2, metrics=("diversity",))


def test_k_larger_than_catalogue(model):
    with pytest.raises(ParameterError, match="catalogue"):
        mm.evaluate(model, (TRAIN, TEST), k=7)


def test_bad_split_type(model):
    with pytest.raises(ParameterError, match="split"):
        mm.evaluate(model, TEST, k=2)


def test_bad_on(model):
    with pytest.raises(ParameterError, match="on="):
        mm.evaluate(model, (TRAIN, TEST), k=2, on="train")


def test_bad_bootstrap(model):
    with pytest.raises(ParameterError, match="n_bootstrap"):
        mm.evaluate(model, (TRAIN, TEST), k=2, n_bootstrap=-1)


def test_bad_confidence(model):
    with pytest.raises(ParameterError, match="confidence"):
        mm.evaluate(model, (TRAIN, TEST), k=2, confidence=95)


def test_empty_target(model):
    with pytest.raises(DataError, match="no rows"):
        mm.evaluate(model, splits.Split(TRAIN, VALIDATION.iloc[:0], TEST), k=2, on="validation")


def test_no_known_user(model):
    with pytest.raises(DataError, match="no user"):
        mm.evaluate(model, (TRAIN, TEST[TEST.user_id == "z"]), k=2)


def test_unfitted_model():
    with pytest.raises(NotFittedError):
        mm.evaluate(interest.EASEModel(), (TRAIN, TEST), k=2)


def test_candidates_restrict_lists_and_targets(model):
    # Candidates 3..5: items 0-2 may not be recommended; test rows about them are dropped.
    table = mm.evaluate(model, (TRAIN, VALIDATION, TEST), k=2, metrics=["recall", "hit_rate"],
                        n_bootstrap=0, candidates=[3, 4, 5])
    # Only user a has a candidate test item (5); a saw 4 in validation, so a's list is [3, 5].
    assert _value(table, "recall@2") == 1.0 and table["n_users"].iloc[0] == 1
    result = mm.evaluation.recommend_for_evaluation(model, (TRAIN, VALIDATION, TEST), k=2,
                                                    candidates=[3, 4, 5])
    assert set(result["indices"].ravel()) <= {3, 5}


def test_candidates_errors(model):
    with pytest.raises(DataError, match="candidate"):
        mm.evaluate(model, (TRAIN, TEST), k=2, candidates=["nope"])
    with pytest.raises(ParameterError, match="candidate items"):
        mm.evaluate(model, (TRAIN, TEST), k=3, candidates=[4, 5])
    with pytest.raises(DataError, match="among the candidate items"):
        mm.evaluate(model, (TRAIN, TEST), k=1, candidates=[1])
