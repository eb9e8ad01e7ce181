"""Tests of mmrec_lib.sequential: sequences, leave-one-out, next-item metrics, the models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import sequential as sq
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError
from mmrec_lib.interest import EASEModel, InterestModel

NUM_ITEMS = 12


def rule_interactions(num_users: int = 48, seed: int = 0) -> pd.DataFrame:
    """Each user walks the cycle 1 -> 2 -> ... -> 12 -> 1 from a random start.

    The next item is a deterministic function of the previous one, so a
    sequence model can reach HR@1 = 1 while popularity cannot.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        start = int(rng.integers(NUM_ITEMS))
        length = int(rng.integers(5, 9))
        for step in range(length):
            rows.append((user, (start + step) % NUM_ITEMS + 1, step))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.fixture(scope="module")
def rule_split():
    return sq.leave_one_out(rule_interactions())


@pytest.fixture(scope="module")
def sasrec(rule_split):
    model = sq.SASRecModel(max_len=8, embedding_dim=16, num_blocks=2, num_heads=2, dropout=0.1,
                           learning_rate=1e-2, epochs=12, batch_size=16, patience=None, seed=0)
    return model.fit(rule_split.train, validation=rule_split.validation)


# ---------------------------------------------------------------- data


def test_user_sequences_time_order_and_ties_keep_row_order():
    frame = pd.DataFrame({"user_id": [2, 1, 1, 1, 2], "item_id": [9, 7, 5, 6, 8],
                          "timestamp": [5, 3, 1, 3, 1]})
    sequences = sq.user_sequences(frame)
    assert sequences.index.tolist() == [1, 2]
    # Items 7 and 6 share timestamp 3: input row order (7 before 6) is kept.
    assert sequences[1].tolist() == [5, 7, 6]
    assert sequences[2].tolist() == [8, 9]


def test_user_sequences_without_timestamp_use_row_order():
    frame = pd.DataFrame({"user_id": ["b", "a", "b"], "item_id": [3, 1, 2]})
    assert sq.user_sequences(frame)["b"].tolist() == [3, 2]


def test_user_sequences_bad_input():
    with pytest.raises(DataError):
        sq.user_sequences(pd.DataFrame({"user_id": [], "item_id": []}))
    with pytest.raises(DataError):
        sq.user_sequences(pd.DataFrame({"user_id": [1], "item_id": [1], "timestamp": [None]}))
    with pytest.raises(DataError):
        sq.user_sequences(pd.DataFrame({"user_id": [1]}))


def test_encode_sequences_tokens_start_at_one():
    from mmrec_lib.interactions import IdEncoder

    encoder = IdEncoder().fit([10, 20, 30])
    tokens = sq.encode_sequences([[30, 10], [20]], encoder)
    assert [t.tolist() for t in tokens] == [[3, 1], [2]]
    with pytest.raises(DataError, match="not in the catalogue"):
        sq.encode_sequences([[10, 99]], encoder)
    assert sq.encode_sequences([[10, 99]], encoder, unknown="drop")[0].tolist() == [1]
    with pytest.raises(ParameterError):
        sq.encode_sequences([[10]], encoder, unknown="keep")


def test_pad_sequences_left_pads_and_keeps_most_recent():
    padded = sq.pad_sequences([[1, 2, 3, 4], [5], []], max_len=3)
    assert padded.tolist() == [[2, 3, 4], [0, 0, 5], [0, 0, 0]]
    assert padded.dtype == np.int32


@pytest.mark.parametrize("max_len", [0, -1, 2.5, True])
def test_pad_sequences_bad_max_len(max_len):
    with pytest.raises(ParameterError, match="max_len"):
        sq.pad_sequences([[1]], max_len=max_len)


def test_pad_sequences_refuses_padding_token_inside():
    with pytest.raises(DataError, match="token 0"):
        sq.pad_sequences([[1, 0, 2]], max_len=3)


def test_training_pairs_windows():
    inputs, targets = sq.training_pairs([np.array([1, 2, 3, 4, 5]), np.array([7])], 2)
    assert inputs.tolist() == [[3, 4]] and targets.tolist() == [[4, 5]]
    inputs, targets = sq.training_pairs([np.array([1, 2, 3, 4, 5])], 2, all_windows=True)
    assert inputs.tolist() == [[3, 4], [1, 2]]
    assert targets.tolist() == [[4, 5], [2, 3]]


def test_leave_one_out_hand_example():
    frame = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2, 3, 3, 3],
                          "item_id": [10, 11, 12, 13, 20, 21, 30, 31, 32],
                          "timestamp": [4, 1, 2, 3, 1, 2, 3, 2, 1]})
    split = sq.leave_one_out(frame)
    assert split.sizes() == {"train": 5, "validation": 2, "test": 2}
    assert split.test[["user_id", "item_id"]].values.tolist() == [[1, 10], [3, 30]]
    assert split.validation[["user_id", "item_id"]].values.tolist() == [[1, 13], [3, 31]]
    # User 2 has only two interactions: both stay in train, never evaluated.
    train = sq.user_sequences(split.train)
    assert train[1].tolist() == [11, 12] and train[2].tolist() == [20, 21]
    assert train[3].tolist() == [32]


def test_leave_one_out_bad_input():
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "timestamp": [1, 2]})
    with pytest.raises(DataError, match="at least 3"):
        sq.leave_one_out(frame)
    with pytest.raises(ParameterError, match="min_interactions"):
        sq.leave_one_out(frame, min_interactions=2)


# ---------------------------------------------------------------- metrics


def test_next_item_metrics_hand_computed():
    scores = np.array([[0.9, 0.5, 0.1, 0.0],
                       [0.9, 0.8, 0.7, 0.1]])
    # User 0: target 0 ranks first. User 1: target 2; item 0 is excluded (seen), so
    # item 1 then item 2: rank 2, NDCG = 1 / log2(3).
    result = sq.next_item_metrics(scores, np.array([0, 2]), [[], [0]], k=2)
    assert result["hr@2"] == pytest.approx(1.0)
    assert result["ndcg@2"] == pytest.approx((1 + 1 / np.log2(3)) / 2)
    result = sq.next_item_metrics(scores, np.array([0, 2]), [[], []], k=2)
    assert result["hr@2"] == pytest.approx(0.5)
    per_user = sq.next_item_metrics(scores, np.array([0, 2]), None, k=3, per_user=True)
    np.testing.assert_allclose(per_user["ndcg@3"], [1.0, 0.5])


def test_next_item_metrics_missing_target_is_a_miss():
    result = sq.next_item_metrics(np.ones((2, 3)), np.array([0, -1]), k=1)
    assert result["hr@1"] == pytest.approx(0.5)


def test_next_item_metrics_bad_shapes():
    with pytest.raises(ParameterError):
        sq.next_item_metrics(np.ones((2, 3)), np.array([0]), k=1)
    with pytest.raises(ParameterError, match="k="):
        sq.next_item_metrics(np.ones((1, 3)), np.array([0]), k=4)


def test_sample_candidates_uniform_and_popularity():
    exclude = [np.array([0, 1]), np.array([], dtype=np.int64)]
    mask = sq.sample_candidates(np.array([2, 3]), exclude, 10, num_negatives=4, seed=0)
    assert mask.sum(axis=1).tolist() == [5, 5]
    assert mask[0, 2] and mask[1, 3] and not mask[0, :2].any()
    counts = np.array([0, 0, 0, 0, 5, 5, 5, 5, 5, 0], dtype=float)
    mask = sq.sample_candidates(np.array([2]), [np.array([4])], 10, num_negatives=10,
                                sampling="popularity", item_counts=counts)
    # Only items with training events and not seen can be drawn: 5, 6, 7, 8.
    assert np.flatnonzero(mask[0]).tolist() == [2, 5, 6, 7, 8]
    with pytest.raises(ParameterError):
        sq.sample_candidates(np.array([0]), [[]], 3, sampling="popularity")


def test_evaluate_next_item_full_ranking_hand_computed():
    frame = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3],
                          "item_id": [1, 2, 3, 4, 3, 4, 1, 2, 1, 3, 4],
                          "timestamp": [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3]})
    split = sq.leave_one_out(frame)
    # Train: user 1 [1, 2], user 2 [3, 4], user 3 [1]; events: item 1: 2, items 2-4: 1.
    model = sq.SequentialPopularityModel().fit(split.train)
    # Test (history = train + validation item, all removed from the ranking):
    # user 1 sees 1, 2, 3 -> only 4 left: rank 1. User 2 sees 3, 4, 1 -> 2: rank 1.
    # User 3 sees 1, 3 -> 2 and 4 tie, lower index first: target 4 ranks 2nd.
    result = sq.evaluate_next_item(model, split, k=2, per_user=True)
    np.testing.assert_allclose(result["ndcg@2"], [1.0, 1.0, 1 / np.log2(3)])
    assert sq.evaluate_next_item(model, split, k=1)["hr@1"] == pytest.approx(2 / 3)
    # Validation (history = train): user 1 -> 3 and 4 tie: target 3 first. User 2 ->
    # target 1 is the most popular. User 3 sees 1 -> 2, 3, 4 tie: target 3 second.
    result = sq.evaluate_next_item(model, split, stage="validation", k=2, per_user=True)
    np.testing.assert_allclose(result["ndcg@2"], [1.0, 1.0, 1 / np.log2(3)])


def test_evaluate_next_item_target_outside_catalogue_is_a_miss():
    frame = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2],
                          "item_id": [1, 2, 7, 2, 1, 8],
                          "timestamp": [1, 2, 3, 1, 2, 3]})
    split = sq.leave_one_out(frame)
    model = sq.SequentialPopularityModel().fit(split.train)
    # Items 7 and 8 occur only in the test: no model can rank them.
    assert sq.evaluate_next_item(model, split, k=1)["hr@1"] == 0.0


def test_sampled_metrics_are_higher_than_full(rule_split):
    model = sq.SequentialPopularityModel().fit(rule_split.train)
    full = sq.evaluate_next_item(model, rule_split, k=3)
    sampled = sq.evaluate_next_item(model, rule_split, k=3, protocol="sampled", num_negatives=3)
    assert sampled["hr@3"] > full["hr@3"]
    with pytest.raises(ParameterError, match="protocol"):
        sq.evaluate_next_item(model, rule_split, protocol="exact")


# ---------------------------------------------------------------- baselines


def test_markov_learns_the_rule_popularity_cannot(rule_split):
    markov = sq.MarkovModel().fit(rule_split.train)
    popularity = sq.SequentialPopularityModel().fit(rule_split.train)
    assert sq.evaluate_next_item(markov, rule_split, k=1)["hr@1"] == pytest.approx(1.0)
    assert sq.evaluate_next_item(popularity, rule_split, k=1)["hr@1"] < 0.3
    assert isinstance(markov, InterestModel)
    top = markov.recommend([0], k=1)
    last = sq.user_sequences(rule_split.train)[0][-1]
    assert top["item_id"].tolist() == [last % NUM_ITEMS + 1]


def test_markov_probabilities_hand_computed():
    frame = pd.DataFrame({"user_id": [1, 1, 1, 2, 2], "item_id": [1, 2, 1, 1, 3],
                          "timestamp": [1, 2, 3, 1, 2]})
    model = sq.MarkovModel(smoothing=1.0).fit(frame)
    # After item 1: transitions 1->2 once, 1->3 once; shares 3/5, 1/5, 1/5.
    expected = (np.array([0, 1, 1]) + np.array([3, 1, 1]) / 5) / 3
    np.testing.assert_allclose(model.score_histories([[2, 1]])[0], expected, rtol=1e-6)
    with pytest.raises(ParameterError, match="smoothing"):
        sq.MarkovModel(smoothing=-1).fit(frame)


def test_ease_adapter_matches_interest_ease(rule_split):
    model = sq.SequentialEASEModel(l2=10.0).fit(rule_split.train)
    reference = EASEModel(l2=10.0).fit(rule_split.train)
    users = reference.user_ids_[:5]
    np.testing.assert_allclose(model.score(users), reference.score(users), rtol=1e-5)
    with pytest.raises(ParameterError, match="l2"):
        sq.SequentialEASEModel(l2=0).fit(rule_split.train)


@pytest.mark.parametrize("histories, error", [
    ([[]], DataError),                 # an empty history
    ([[999]], DataError),              # only unknown items
    ([], ParameterError),              # no history at all
    ("12", ParameterError),            # a string, not a list of sequences
    ([[[1, 2]]], ParameterError),      # a history that is not 1-D
])
def test_score_histories_bad_input(rule_split, histories, error):
    model = sq.MarkovModel().fit(rule_split.train)
    with pytest.raises(error):
        model.score_histories(histories)


def test_score_histories_unknown_items_can_be_dropped(rule_split):
    model = sq.MarkovModel().fit(rule_split.train)
    np.testing.assert_allclose(model.score_histories([[3, 999]], unknown="drop"),
                               model.score_histories([[3]]))
    with pytest.raises(DataError):
        model.score_histories([[999]], unknown="drop")


def test_fit_bad_input(rule_split):
    with pytest.raises(DataError):
        sq.MarkovModel().fit(rule_split.train.iloc[:0])
    with pytest.raises(DataError):
        sq.MarkovModel().fit(rule_split.train, validation=rule_split.validation.iloc[:0])
    with pytest.raises(ParameterError):
        sq.MarkovModel().fit("not a frame")


# ---------------------------------------------------------------- neural models


@pytest.mark.parametrize("params, match", [
    ({"max_len": 0}, "max_len"),
    ({"dropout": 1.0}, "dropout"),
    ({"embedding_dim": 10, "num_heads": 3}, "divisible"),
    ({"patience": 0}, "patience"),
    ({"all_windows": 1}, "all_windows"),
    ({"loss": "bpr"}, "loss"),
    ({"loss": "sampled", "num_negatives": 0}, "num_negatives"),
    ({"weight_decay": -1e-4}, "weight_decay"),
    ({"label_smoothing": 1.0}, "label_smoothing"),
    ({"label_smoothing": float("nan")}, "label_smoothing"),
    ({"loss": "sampled", "label_smoothing": 0.1}, "label_smoothing"),
])
def test_sasrec_bad_params(rule_split, params, match):
    with pytest.raises(ParameterError, match=match):
        sq.SASRecModel(**params).fit(rule_split.train)


def test_sasrec_sampled_softmax_with_log_q_learns_the_rule(rule_split):
    # 4 negatives of 12 items: the sampled, log-q corrected loss still finds the rule.
    model = sq.SASRecModel(max_len=8, embedding_dim=16, num_blocks=1, num_heads=2,
                           dropout=0.1, learning_rate=1e-2, epochs=12, batch_size=16,
                           patience=None, loss="sampled", num_negatives=4, seed=0)
    model.fit(rule_split.train)
    assert sq.evaluate_next_item(model, rule_split, k=1)["hr@1"] > 0.8
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_smoothed_cross_entropy_hand_computed():
    from mmrec_lib.sequential._networks import smoothed_cross_entropy

    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], np.float32)
    labels = np.array([0, 2])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = [-(0.9 * log_p[r, labels[r]] + 0.1 * log_p[r].mean()) for r in range(2)]
    np.testing.assert_allclose(smoothed_cross_entropy(labels, logits, 0.1).numpy(), expected,
                               rtol=1e-5)
    # No smoothing: the plain cross-entropy.
    np.testing.assert_allclose(smoothed_cross_entropy(labels, logits, 0.0).numpy(),
                               -log_p[[0, 1], labels], rtol=1e-5)


def test_sasrec_weight_decay_and_label_smoothing_learn_the_rule(rule_split):
    model = sq.SASRecModel(max_len=8, embedding_dim=16, num_blocks=1, num_heads=2,
                           dropout=0.1, learning_rate=1e-2, epochs=12, batch_size=16,
                           patience=None, weight_decay=1e-3, label_smoothing=0.1, seed=0)
    model.fit(rule_split.train)
    assert sq.evaluate_next_item(model, rule_split, k=1)["hr@1"] > 0.8
    # Smoothing keeps the loss above the smoothed target's entropy (> 0 at the optimum).
    assert model.history_["loss"][-1] > 0.1 * np.log(NUM_ITEMS) * 0.5


def test_sasrec_needs_a_next_item():
    frame = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2]})
    with pytest.raises(DataError, match="two items"):
        sq.SASRecModel(epochs=1).fit(frame)


def test_sasrec_learns_the_rule(sasrec, rule_split):
    assert sq.evaluate_next_item(sasrec, rule_split, k=1)["hr@1"] > 0.9
    assert len(sasrec.history_["val_ndcg@10"]) == 12
    assert sasrec.history_["loss"][-1] < sasrec.history_["loss"][0]


def test_sasrec_causal_mask(sasrec):
    # Changing the last item must not change any earlier position's output.
    before = sasrec.hidden_states([[1, 2, 3, 4, 5]])
    after = sasrec.hidden_states([[1, 2, 3, 4, 9]])
    np.testing.assert_allclose(before[0, :-1], after[0, :-1], atol=1e-6)
    assert not np.allclose(before[0, -1], after[0, -1])
    # Padding positions are zero.
    np.testing.assert_array_equal(before[0, :3], 0.0)


def test_sasrec_truncates_long_histories(sasrec):
    history = [(step % NUM_ITEMS) + 1 for step in range(20)]
    np.testing.assert_allclose(sasrec.score_histories([history]),
                               sasrec.score_histories([history[-8:]]), atol=1e-6)


def test_sasrec_save_load_identical_scores(sasrec, tmp_path, rule_split):
    path = sasrec.save(tmp_path / "sasrec")
    loaded = sq.SASRecModel.load(path)
    users = sasrec.user_ids_[:10]
    np.testing.assert_array_equal(loaded.score(users), sasrec.score(users))
    assert loaded.best_epoch_ == sasrec.best_epoch_
    with pytest.raises(ModelError):
        sq.GRU4RecModel.load(path)
    with pytest.raises(ModelError):
        sq.SASRecModel.load(tmp_path / "nothing")


def test_sasrec_same_seed_same_scores(rule_split):
    params = {"max_len": 4, "embedding_dim": 8, "num_blocks": 1, "epochs": 1, "seed": 3}
    first = sq.SASRecModel(**params).fit(rule_split.train)
    second = sq.SASRecModel(**params).fit(rule_split.train)
    np.testing.assert_array_equal(first.score([0, 1]), second.score([0, 1]))


def test_gru4rec_learns_the_rule(rule_split):
    model = sq.GRU4RecModel(max_len=8, embedding_dim=16, dropout=0.0, learning_rate=2e-2,
                            epochs=10, batch_size=16, patience=3, seed=0)
    model.fit(rule_split.train, validation=rule_split.validation)
    assert sq.evaluate_next_item(model, rule_split, k=1)["hr@1"] > 0.8
    assert 1 <= model.best_epoch_ <= 10


# ---------------------------------------------------------------- refit on train + validation


def test_refit_with_validation_adds_each_validation_view_at_the_chosen_length(sasrec,
                                                                                rule_split):
    refit = sq.refit_with_validation(sasrec, rule_split)
    assert type(refit) is sq.SASRecModel and refit is not sasrec
    assert refit.epochs == sasrec.best_epoch_ and len(refit.history_["loss"]) == refit.epochs
    assert "val_ndcg@10" not in refit.history_
    # Every evaluated user's sequence now ends with its validation view; the model given
    # is left as it was.
    validation = rule_split.validation.set_index("user_id")["item_id"]
    users = list(refit.user_ids_)
    for user, item in validation.items():
        last = refit.train_sequences_[users.index(user)][-1]
        assert refit.item_ids_[last - 1] == item
    assert sum(map(len, refit.train_sequences_)) == len(rule_split.train) + len(validation)
    assert sum(map(len, sasrec.train_sequences_)) == len(rule_split.train)
    assert sq.evaluate_next_item(refit, rule_split, k=1)["hr@1"] > 0.8


def test_refit_with_validation_bad_input(sasrec, rule_split):
    with pytest.raises(NotFittedError):
        sq.refit_with_validation(sq.SASRecModel(), rule_split)
    markov = sq.MarkovModel().fit(rule_split.train)
    with pytest.raises(ModelError, match="chooses no training length"):
        sq.refit_with_validation(markov, rule_split)
    unvalidated = sq.SASRecModel(max_len=8, embedding_dim=8, num_blocks=1, epochs=1,
                                 seed=0).fit(rule_split.train)
    with pytest.raises(ModelError, match="without validation"):
        sq.refit_with_validation(unvalidated, rule_split)
    with pytest.raises(ParameterError, match="validation="):
        sq.refit_with_validation(sasrec, rule_split, validation=rule_split.validation)
    empty = sq.SequenceSplit(rule_split.train, rule_split.validation.iloc[:0], rule_split.test)
    with pytest.raises(DataError, match="no rows"):
        sq.refit_with_validation(sasrec, empty)
    narrow = sq.SequenceSplit(rule_split.train, rule_split.validation[["user_id", "item_id"]],
                              rule_split.test)
    with pytest.raises(DataError, match="timestamp"):
        sq.refit_with_validation(sasrec, narrow)
