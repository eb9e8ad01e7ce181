"""Fair ties: seeded random tie-breaking in top_k and evaluate, and the count of tied slots."""

import numpy as np
import pandas as pd
import pytest

import mmrec_lib as mm
from mmrec_lib import interest, similarity
from mmrec_lib.errors import ParameterError

TRAIN = pd.DataFrame({"user_id": [0, 0, 1, 2, 3], "item_id": [0, 1, 2, 3, 4]})
TEST = pd.DataFrame({"user_id": [0, 1, 2, 3], "item_id": [9, 8, 7, 6]})
ITEMS = pd.DataFrame(np.eye(10), index=range(10))


def constant_model():
    return interest.ScoreFunctionModel(
        lambda users, items: np.zeros((len(users), len(items)))).fit(TRAIN, item_vectors=ITEMS)


class Decreasing(interest.InterestModel):
    """Item i scores -i for everyone: no ties at all."""

    def _fit(self, X, vectors, train):
        self.fixed_ = -np.arange(X.shape[1], dtype=np.float32)

    def _score(self, user_index):
        return np.tile(self.fixed_, (len(user_index), 1))


def test_top_k_index_ties_keep_the_lower_index_by_default():
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(similarity.top_k(scores, 3), [[1, 2, 3]])


def test_top_k_random_ties_are_deterministic_for_a_seed():
    scores = np.zeros((20, 30))
    first = similarity.top_k(scores, 5, tie_break="random", seed=3)
    second = similarity.top_k(scores, 5, tie_break="random", seed=3)
    np.testing.assert_array_equal(first, second)


def test_top_k_random_ties_change_with_the_seed():
    scores = np.zeros((20, 30))
    first = similarity.top_k(scores, 5, tie_break="random", seed=3)
    other = similarity.top_k(scores, 5, tie_break="random", seed=4)
    assert not np.array_equal(first, other)


def test_top_k_random_ties_only_reorder_tied_items():
    scores = np.array([[5.0, 1.0, 3.0, 3.0, 3.0, 0.0, 4.0]] * 50)
    indices = similarity.top_k(scores, 4, tie_break="random", seed=0)
    np.testing.assert_array_equal(indices[:, :2], np.tile([0, 6], (50, 1)))
    assert set(indices[:, 2:].ravel()) == {2, 3, 4}
    # Two of the three tied items fill the last two slots, differently across rows.
    assert len({tuple(row) for row in indices[:, 2:]}) > 1


def test_top_k_random_ties_are_uniform_over_tied_items():
    # Deterministic (seeded): 3000 rows of 5 equal scores, each item first ~600 times.
    indices = similarity.top_k(np.zeros((3000, 5)), 1, tie_break="random", seed=0)
    counts = np.bincount(indices.ravel(), minlength=5)
    assert counts.min() > 500 and counts.max() < 700


def test_top_k_random_ties_respect_exclude_and_return_scores():
    scores = np.zeros((2, 4))
    exclude = np.array([[True, False, False, False], [False, False, False, True]])
    indices, values = similarity.top_k(scores, 3, exclude=exclude, return_scores=True,
                                       tie_break="random", seed=1)
    assert 0 not in indices[0] and 3 not in indices[1]
    np.testing.assert_array_equal(values, np.zeros((2, 3)))


def test_top_k_random_ties_accept_a_generator_and_one_row():
    indices = similarity.top_k(np.zeros(6), 6, tie_break="random",
                               seed=np.random.default_rng(0))
    assert sorted(indices.tolist()) == list(range(6))


def test_top_k_rejects_an_unknown_tie_break():
    with pytest.raises(ParameterError, match="tie_break='first'"):
        similarity.top_k(np.zeros((1, 3)), 1, tie_break="first")


def test_top_k_rejects_a_negative_seed():
    with pytest.raises(ParameterError, match="seed=-1"):
        similarity.top_k(np.zeros((1, 3)), 1, tie_break="random", seed=-1)


def test_evaluate_counts_every_slot_of_a_constant_model_as_tied():
    table = mm.evaluate(constant_model(), (TRAIN, TEST), k=3, metrics=("ndcg", "tied"),
                        n_bootstrap=0)
    assert table.attrs["slots"] == 4 * 3
    assert table.attrs["tied_slots"] == 4 * 3
    assert table.set_index("metric").loc["tied@3", "value"] == 1.0


def test_evaluate_counts_no_tie_for_distinct_scores():
    model = Decreasing().fit(TRAIN, item_vectors=ITEMS)
    table = mm.evaluate(model, (TRAIN, TEST), k=3, metrics=("ndcg", "tied"), n_bootstrap=0)
    assert table.attrs["tied_slots"] == 0
    assert table.set_index("metric").loc["tied@3", "value"] == 0.0


def test_evaluate_random_ties_do_not_change_distinct_scores():
    model = Decreasing().fit(TRAIN, item_vectors=ITEMS)
    fair = mm.evaluate(model, (TRAIN, TEST), k=3, metrics=("ndcg",), n_bootstrap=0)
    ordered = mm.evaluate(model, (TRAIN, TEST), k=3, metrics=("ndcg",), n_bootstrap=0,
                          tie_break="index")
    assert fair["value"].iloc[0] == ordered["value"].iloc[0]


def test_evaluate_index_ties_hand_the_constant_model_the_catalogue_order():
    # With ties to the lower index every user gets the unseen items 0..9 in order:
    # user 2's relevant item 7 is never in the top 3, and neither are 6, 8, 9.
    table = mm.evaluate(constant_model(), (TRAIN, TEST), k=3, metrics=("hit_rate",),
                        n_bootstrap=0, tie_break="index")
    assert table["value"].iloc[0] == 0.0


def test_evaluate_random_ties_are_deterministic_for_a_seed():
    model = constant_model()
    first = mm.evaluate(model, (TRAIN, TEST), k=3, metrics=("ndcg",), n_bootstrap=0, seed=5)
    second = mm.evaluate(model, (TRAIN, TEST), k=3, metrics=("ndcg",), n_bootstrap=0, seed=5)
    assert first["value"].iloc[0] == second["value"].iloc[0]


def test_evaluate_popularity_on_cold_items_is_exactly_random():
    # Cold items score 0 under popularity: a tie the random order decides, as for a constant model.
    popularity = interest.PopularityModel().fit(TRAIN, item_vectors=ITEMS)
    cold = [5, 6, 7, 8, 9]
    values = [mm.evaluate(model, (TRAIN, TEST), k=2, metrics=("ndcg",), n_bootstrap=0,
                          candidates=cold)["value"].iloc[0]
              for model in (popularity, constant_model())]
    assert values[0] == values[1]


def test_top_k_random_ties_default_to_a_fixed_seed():
    scores = np.zeros((5, 12))
    np.testing.assert_array_equal(similarity.top_k(scores, 4, tie_break="random"),
                                  similarity.top_k(scores, 4, tie_break="random", seed=0))
