"""HybridModel learns its weights on validation data and is never below its best member there."""

import numpy as np
import pandas as pd
import pytest

import mmrec_lib as mm
from mmrec_lib import blending, interest, splits
from mmrec_lib.errors import NotFittedError, ParameterError

RNG = np.random.default_rng(0)
NUM_USERS, NUM_ITEMS = 80, 40
# Users in 4 taste groups of 10 items each, plus some popular noise: collaborative and
# content models both carry signal, of different quality.
ROWS = []
for user in range(NUM_USERS):
    group = user % 4
    liked = RNG.choice(10, 6, replace=False) + 10 * group
    ROWS += [(user, int(item)) for item in liked]
    ROWS += [(user, int(item)) for item in RNG.choice(5, 2, replace=False)]
DATA = pd.DataFrame(ROWS, columns=["user_id", "item_id"]).drop_duplicates()
VECTORS = pd.DataFrame(np.eye(4)[np.arange(NUM_ITEMS) // 10] + RNG.normal(0, 0.3, (NUM_ITEMS, 4)),
                       index=range(NUM_ITEMS))
SPLIT = splits.stratified_split(DATA, ratio=0.7, by="user", seed=0)


def members():
    return [interest.PopularityModel(), interest.ContentProfileModel(), interest.EASEModel(l2=5.0)]


def ndcg(model, validation=SPLIT.test):
    table = mm.evaluate(model, (SPLIT.train, validation), k=5, metrics=("ndcg",), n_bootstrap=0)
    return table["value"].iloc[0]


def test_tuned_hybrid_is_never_below_its_best_member_on_the_tuning_split():
    hybrid = interest.HybridModel(members()).fit(SPLIT.train, item_vectors=VECTORS)
    hybrid.tune(SPLIT.test, k=5)
    member_values = [ndcg(model.fit(SPLIT.train, item_vectors=VECTORS)) for model in members()]
    assert ndcg(hybrid) >= max(member_values)
    assert hybrid.tuning_results_["ndcg"].max() == pytest.approx(ndcg(hybrid))


@pytest.mark.parametrize("normalize", ["zscore", "minmax"])
def test_tuned_pair_is_never_below_either_member(normalize):
    pair = [interest.ContentProfileModel(), interest.ItemKNNModel(num_neighbors=10)]
    hybrid = interest.HybridModel(pair, normalize=normalize).fit(SPLIT.train, item_vectors=VECTORS)
    hybrid.tune(SPLIT.test, k=5, seed=1)
    member_values = [mm.evaluate(model.fit(SPLIT.train, item_vectors=VECTORS),
                                 (SPLIT.train, SPLIT.test), k=5, metrics=("ndcg",),
                                 n_bootstrap=0, seed=1)["value"].iloc[0] for model in pair]
    tuned = mm.evaluate(hybrid, (SPLIT.train, SPLIT.test), k=5, metrics=("ndcg",),
                        n_bootstrap=0, seed=1)["value"].iloc[0]
    assert tuned >= max(member_values)


def test_tuning_tries_the_whole_simplex_grid():
    hybrid = interest.HybridModel(members()[:2]).fit(SPLIT.train, item_vectors=VECTORS)
    hybrid.tune(SPLIT.test, step=0.25)
    assert len(hybrid.tuning_results_) == 5
    assert hybrid.tuning_results_.columns.tolist() == ["0:PopularityModel",
                                                       "1:ContentProfileModel", "ndcg"]
    assert hybrid.weights_.sum() == pytest.approx(1.0)


def test_a_useless_member_gets_no_weight():
    constant = interest.ScoreFunctionModel(lambda users, items: np.ones((len(users), len(items))))
    hybrid = interest.HybridModel([interest.EASEModel(l2=5.0), constant])
    hybrid.fit(SPLIT.train, item_vectors=VECTORS).tune(SPLIT.test)
    np.testing.assert_array_equal(hybrid.weights_, [1.0, 0.0])


def test_weights_tune_learns_on_a_holdout_then_refits_on_all_of_train():
    hybrid = interest.HybridModel(members(), weights="tune", seed=0)
    hybrid.fit(SPLIT.train, item_vectors=VECTORS)
    assert len(hybrid.tuning_results_) == 66
    assert any(np.allclose(hybrid.weights_, weights) for weights in blending.simplex_grid(3))
    full = interest.PopularityModel().fit(SPLIT.train, item_vectors=VECTORS)
    assert hybrid.models_[0].train_matrix_.nnz == full.train_matrix_.nnz


def test_weights_tune_is_deterministic():
    first = interest.HybridModel(members(), weights="tune").fit(SPLIT.train, item_vectors=VECTORS)
    second = interest.HybridModel(members(), weights="tune").fit(SPLIT.train, item_vectors=VECTORS)
    np.testing.assert_array_equal(first.weights_, second.weights_)


def test_simplex_grid_by_hand():
    grid = blending.simplex_grid(2, step=0.5)
    np.testing.assert_array_equal(np.array(grid), [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    assert len(blending.simplex_grid(3, step=0.1)) == 66


def test_simplex_grid_rejects_a_step_that_does_not_divide_one():
    with pytest.raises(ParameterError, match="step=0.3"):
        blending.simplex_grid(2, step=0.3)


def test_tune_before_fit_fails():
    with pytest.raises(NotFittedError):
        interest.HybridModel(members()).tune(SPLIT.test)


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), -float("inf")])
def test_hybrid_rejects_non_finite_weights(weight):
    with pytest.raises(ParameterError, match="weight="):
        interest.HybridModel([interest.PopularityModel()], weights=[weight]).fit(SPLIT.train)


def test_hybrid_rejects_an_unknown_weights_string():
    with pytest.raises(ParameterError, match="weights='auto'"):
        interest.HybridModel([interest.PopularityModel()], weights="auto").fit(SPLIT.train)


@pytest.mark.parametrize("ratio", [0.0, 1.0, float("nan")])
def test_hybrid_rejects_a_bad_validation_ratio(ratio):
    with pytest.raises(ParameterError, match="validation_ratio="):
        interest.HybridModel([interest.PopularityModel()], weights="tune",
                             validation_ratio=ratio).fit(SPLIT.train)
