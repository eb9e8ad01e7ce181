"""Tests of semantic IDs (residual k-means) and the TIGER-style generator of mmrec_lib.sequential."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import sequential as sq
from mmrec_lib.errors import DataError, ModelError, ParameterError

NUM_ITEMS = 24


def clustered_vectors(num_clusters: int = 6, per_cluster: int = 10, dim: int = 8, seed: int = 0):
    """Vectors around ``num_clusters`` well separated centres, and the cluster of each."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=5.0, size=(num_clusters, dim))
    labels = np.repeat(np.arange(num_clusters), per_cluster)
    return centers[labels] + rng.normal(scale=0.3, size=(len(labels), dim)), labels


def circle_vectors(angles: np.ndarray) -> np.ndarray:
    """Content of an item at angle ``a``: (cos a, sin a); neighbours on the circle are similar."""
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def item_frame(item_ids, angles) -> pd.DataFrame:
    return pd.DataFrame(circle_vectors(np.asarray(angles)), index=pd.Index(item_ids),
                        columns=["x", "y"])


def cycle_interactions(num_users: int = 60, seed: int = 0) -> pd.DataFrame:
    """Each user walks the circle 1 -> 2 -> ... -> 24 -> 1 from a random start."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        start = int(rng.integers(NUM_ITEMS))
        for step in range(int(rng.integers(5, 9))):
            rows.append((user, (start + step) % NUM_ITEMS + 1, step))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


CATALOGUE = item_frame(np.arange(1, NUM_ITEMS + 1), 2 * np.pi * np.arange(NUM_ITEMS) / NUM_ITEMS)


@pytest.fixture(scope="module")
def generator():
    model = sq.SemanticIDGenerator(levels=2, codebook_size=4, max_len=6, embedding_dim=32,
                                   num_blocks=1, num_heads=2, dropout=0.0, learning_rate=5e-3,
                                   epochs=40, batch_size=32, beam_width=10, seed=0)
    return model.fit(cycle_interactions(), CATALOGUE)


# ---------------------------------------------------------------- quantizer


def test_quantizer_is_deterministic_and_codes_are_unique():
    vectors, _ = clustered_vectors()
    first = sq.ResidualQuantizer(levels=2, codebook_size=4, seed=3).fit(vectors)
    second = sq.ResidualQuantizer(levels=2, codebook_size=4, seed=3).fit(vectors)
    np.testing.assert_array_equal(first.codes_, second.codes_)
    assert first.codes_.shape == (60, 3)
    assert len({tuple(row) for row in first.codes_}) == 60
    assert first.item_of_code_ == {tuple(int(c) for c in row): i
                                   for i, row in enumerate(first.codes_)}
    np.testing.assert_array_equal(first.transform(vectors), first.codes_[:, :2])


def test_duplicates_get_counting_suffix():
    vectors = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [5.0, 5.0]])
    quantizer = sq.ResidualQuantizer(levels=1, codebook_size=2).fit(vectors)
    assert sorted(quantizer.codes_[:3, 1].tolist()) == [0, 1, 2]
    assert quantizer.codes_[3, 1] == 0
    added = quantizer.add(np.array([[5.0, 5.0]]))
    assert added[0, 1] == 1 and quantizer.item_of_code_[tuple(int(c) for c in added[0])] == 4


def test_reconstruction_error_decreases_with_levels():
    vectors = np.random.default_rng(1).normal(size=(80, 6))
    errors = []
    for levels in (1, 2, 3, 4):
        quantizer = sq.ResidualQuantizer(levels=levels, codebook_size=4).fit(vectors)
        errors.append(float(((quantizer.reconstruct(quantizer.codes_) - vectors) ** 2).mean()))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))


def test_close_vectors_share_prefixes_more_than_random_pairs():
    vectors, labels = clustered_vectors()
    codes = sq.ResidualQuantizer(levels=2, codebook_size=6).fit(vectors).codes_
    same = labels[:, None] == labels[None]
    shared = codes[:, None, 0] == codes[None, :, 0]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    assert shared[same & off_diagonal].mean() > 0.9
    assert shared[~same].mean() < 0.3


def test_prefix_tree_lists_only_existing_continuations():
    vectors, _ = clustered_vectors()
    quantizer = sq.ResidualQuantizer(levels=2, codebook_size=4).fit(vectors)
    tree = quantizer.prefix_tree()
    for code in quantizer.item_of_code_:
        for length in range(3):
            assert code[length] in tree[code[:length]]
    leaves = {(*prefix, int(c)) for prefix, children in tree.items() if len(prefix) == 2
              for c in children}
    assert leaves == set(quantizer.item_of_code_)


@pytest.mark.parametrize("kwargs", [{"levels": 0}, {"codebook_size": 1}, {"seed": -1}])
def test_quantizer_rejects_bad_parameters(kwargs):
    with pytest.raises(ParameterError):
        sq.ResidualQuantizer(**kwargs).fit(np.ones((5, 2)))


def test_quantizer_rejects_nan_and_wrong_shapes():
    vectors = np.random.default_rng(0).normal(size=(10, 3))
    bad = vectors.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError):
        sq.ResidualQuantizer(levels=1, codebook_size=2).fit(bad)
    quantizer = sq.ResidualQuantizer(levels=1, codebook_size=2).fit(vectors)
    with pytest.raises(ParameterError):
        quantizer.transform(np.ones((2, 4)))
    with pytest.raises(ParameterError):
        quantizer.reconstruct(np.array([[0, 0, 0]]))


# ---------------------------------------------------------------- generator


def test_beam_search_returns_distinct_existing_items(generator):
    histories = [[1, 2, 3], [10], [24, 1], [5, 9, 13, 17]]
    beam_model = sq.SemanticIDGenerator(**generator.get_params()).set_params(scoring="beam")
    beam_model.__dict__.update({key: value for key, value in generator.__dict__.items()
                                if key.endswith("_") or key.startswith("_")})
    scores = beam_model.score_histories(histories)
    assert scores.shape == (4, NUM_ITEMS)
    finite = np.isfinite(scores)
    assert (finite.sum(axis=1) == 10).all()
    assert (scores[finite] <= 0).all()
    for beam in generator.generate([np.array(h) for h in histories], beam_width=7):
        items = [item for item, _ in beam]
        assert len(items) == len(set(items)) == 7
        assert all(0 <= item < NUM_ITEMS for item in items)
        log_probabilities = [score for _, score in beam]
        assert log_probabilities == sorted(log_probabilities, reverse=True)
    # A full-width beam finds every item once and its probabilities sum to 1.
    full = generator.generate([np.array([3])], beam_width=NUM_ITEMS)[0]
    assert sorted(item for item, _ in full) == list(range(NUM_ITEMS))
    assert np.exp([score for _, score in full]).sum() == pytest.approx(1.0, abs=1e-5)


def test_full_scoring_equals_the_exhaustive_beam(generator):
    """Full scoring = the log-probability a catalogue-wide beam gives every item."""
    histories = [[1, 2, 3], [10], [24, 1]]
    scores = generator.score_histories(histories)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(np.exp(scores.astype(np.float64)).sum(axis=1), 1.0, atol=1e-4)
    for row, beam in enumerate(generator.generate([np.array(h) for h in histories],
                                                  beam_width=NUM_ITEMS)):
        by_beam = np.full(NUM_ITEMS, np.nan)
        for item, score in beam:
            by_beam[item] = score
        np.testing.assert_allclose(scores[row], by_beam, rtol=1e-4, atol=1e-4)
        # So a narrow beam returns the top of the full scores (up to ties).
        narrow = [item for item, _ in generator.generate([np.array(histories[row])],
                                                         beam_width=5)[0]]
        np.testing.assert_allclose(np.sort(scores[row])[::-1][:5], scores[row, narrow],
                                   rtol=1e-4, atol=1e-4)


def test_generator_learns_the_rule(generator):
    split = sq.leave_one_out(cycle_interactions(num_users=30, seed=1))
    histories, targets = sq.evaluation_histories(split)
    scores = generator.score_histories(histories)
    expected = targets["item_id"].to_numpy() - 1  # item ids 1..24 are columns 0..23
    assert (expected == np.array([h[-1] % NUM_ITEMS for h in histories])).all()
    top = np.argsort(-scores, axis=1, kind="stable")
    hit_at_10 = (top[:, :10] == expected[:, None]).any(axis=1).mean()
    hit_at_1 = (top[:, 0] == expected).mean()
    assert hit_at_10 >= 0.9 > 10 / NUM_ITEMS + 0.2
    # The suffix (which of the 2-3 items sharing a code) is the hard part; seeds 0 and 1
    # give HR@1 = 0.60 and 0.27 against 1/24 for a random pick.
    assert hit_at_1 >= 0.15


def test_recommend_gives_k_distinct_unseen_items(generator):
    frame = generator.recommend([0, 1, 2], k=5)
    assert len(frame) == 15
    for user, group in frame.groupby("user_id"):
        assert group["item_id"].is_unique
        seen = generator.train_sequences_[generator.user_encoder_.transform([user])[0]]
        assert not set(group["item_id"]) & set(generator.item_ids_[seen - 1])
        assert group["prediction"].is_monotonic_decreasing


def test_new_item_is_generated_where_its_content_belongs(generator):
    import copy

    model = copy.copy(generator)
    model.quantizer_ = copy.deepcopy(generator.quantizer_)
    # A re-release of item 8: same place on the circle, so item 7 should lead to it.
    model.add_items(item_frame([100], [2 * np.pi * 7 / NUM_ITEMS]))
    assert len(model.item_ids_) == NUM_ITEMS + 1 and 100 in model.item_ids_
    scores = model.score_histories([[5, 6, 7]])[0]
    new_column = int(np.flatnonzero(model.item_ids_ == 100)[0])
    assert np.isfinite(scores[new_column])
    assert new_column in np.argsort(-scores)[:10]
    # The original model is untouched.
    assert len(generator.item_ids_) == NUM_ITEMS
    with pytest.raises(DataError):
        model.add_items(item_frame([3], [0.0]))


def test_generator_bad_inputs(generator):
    with pytest.raises(ParameterError):
        generator.recommend([0], k=NUM_ITEMS + 1)
    with pytest.raises(DataError):
        generator.score_histories([[1, 2], []])
    with pytest.raises(ParameterError):
        generator.score_histories([])
    nan_catalogue = CATALOGUE.copy()
    nan_catalogue.iloc[3, 0] = np.nan
    with pytest.raises(DataError):
        sq.SemanticIDGenerator(epochs=1).fit(cycle_interactions(), nan_catalogue)
    with pytest.raises(ParameterError):
        sq.SemanticIDGenerator(levels=0).fit(cycle_interactions(), CATALOGUE)
    with pytest.raises(ParameterError):
        sq.SemanticIDGenerator(codebook_size=1).fit(cycle_interactions(), CATALOGUE)
    with pytest.raises(ParameterError):
        sq.SemanticIDGenerator().fit(cycle_interactions())  # no item vectors
    with pytest.raises(ParameterError, match="scoring"):
        sq.SemanticIDGenerator(scoring="greedy").fit(cycle_interactions(), CATALOGUE)
    with pytest.raises(ParameterError, match="patience"):
        sq.SemanticIDGenerator(patience=0).fit(cycle_interactions(), CATALOGUE)


def test_early_stopping_keeps_the_best_validation_epoch():
    split = sq.leave_one_out(cycle_interactions())
    model = sq.SemanticIDGenerator(levels=2, codebook_size=4, max_len=6, embedding_dim=16,
                                   num_blocks=1, num_heads=1, dropout=0.0, learning_rate=5e-3,
                                   epochs=8, patience=2, batch_size=32, seed=0)
    model.fit(split.train, CATALOGUE, validation=split.validation)
    values = model.history_["val_ndcg@10"]
    assert len(values) == len(model.history_["loss"]) <= 8
    assert model.best_epoch_ == int(np.argmax(values)) + 1
    # The kept weights are the best epoch's: validation NDCG@10 is recomputed identically.
    again = sq.evaluate_next_item(model, split, stage="validation", k=10)
    assert again["ndcg@10"] == pytest.approx(max(values), abs=1e-6)


def test_save_load_generates_identically(generator, tmp_path):
    import copy

    model = copy.copy(generator)
    model.quantizer_ = copy.deepcopy(generator.quantizer_)
    model.add_items(item_frame([100], [2 * np.pi * 7 / NUM_ITEMS]))
    loaded = sq.SemanticIDGenerator.load(model.save(tmp_path / "tiger"))
    histories = [[5, 6, 7], [1], [20, 21, 22, 23]]
    np.testing.assert_array_equal(loaded.score_histories(histories),
                                  model.score_histories(histories))
    np.testing.assert_array_equal(loaded.code_tokens_, model.code_tokens_)
    assert loaded.recommend([0, 1], k=3).equals(model.recommend([0, 1], k=3))
    with pytest.raises(ModelError):
        sq.SemanticIDGenerator.load(tmp_path / "missing")


def test_same_seed_same_codes_and_scores(generator):
    again = sq.SemanticIDGenerator(**generator.get_params()).set_params(epochs=2)
    again.fit(cycle_interactions(), CATALOGUE)
    np.testing.assert_array_equal(again.code_tokens_, generator.code_tokens_)
    twice = sq.SemanticIDGenerator(**again.get_params()).fit(cycle_interactions(), CATALOGUE)
    np.testing.assert_array_equal(twice.score_histories([[3, 4]]),
                                  again.score_histories([[3, 4]]))


def test_beam_search_restricted_to_candidates(generator):
    allowed = np.zeros((2, NUM_ITEMS), dtype=bool)
    allowed[0, [3, 7, 20]] = True
    allowed[1, 5] = True
    scores = generator.score_histories([[1, 2], [4]], candidates=allowed)
    assert np.array_equal(np.isfinite(scores), allowed)
    # A candidate's log-probability does not depend on the other candidates.
    unrestricted = generator.score_histories([[1, 2], [4]])
    np.testing.assert_array_equal(scores[allowed], unrestricted[allowed])
    none = generator.score_histories([[1, 2]], candidates=np.zeros((1, NUM_ITEMS), bool))
    assert np.isinf(none).all()
    # The beam cut to the candidates reaches exactly them, with the same scores.
    for row, history in enumerate(([1, 2], [4])):
        beam = generator.generate([np.array(history)], beam_width=NUM_ITEMS,
                                  candidates=allowed[row:row + 1])[0]
        assert sorted(item for item, _ in beam) == np.flatnonzero(allowed[row]).tolist()
        np.testing.assert_allclose([score for _, score in beam],
                                   [scores[row, item] for item, _ in beam], rtol=1e-4)


def test_generate_session_writes_distinct_allowed_items(generator):
    allowed = np.ones((2, NUM_ITEMS), dtype=bool)
    allowed[1, :12] = False
    lists = generator.generate_session([[1, 2], [4, 5, 6]], length=6, beam_width=5,
                                       candidates=allowed)
    assert [len(items) for items in lists] == [6, 6]
    for row, (items, history) in enumerate(zip(lists, [[1, 2], [4, 5, 6]], strict=True)):
        assert len(set(items.tolist())) == 6
        assert allowed[row, items].all()
        # The history is excluded (item ids here are index + 1).
        assert not set((items + 1).tolist()) & set(history)
    # The first item of a session is the best next item of one beam search.
    first = generator.generate([np.array([1, 2])], beam_width=5)[0]
    best_unseen = next(item for item, _ in first if item + 1 not in (1, 2))
    assert lists[0][0] == best_unseen
    # Fewer allowed items than the length: the list stops when they run out.
    few = np.zeros((1, NUM_ITEMS), dtype=bool)
    few[0, [7, 9]] = True
    assert sorted(generator.generate_session([[1]], length=5, candidates=few)[0].tolist()) == [7, 9]
    with pytest.raises(ParameterError, match="length"):
        generator.generate_session([[1]], length=0)
    with pytest.raises(DataError):
        generator.generate_session([[]], length=2)
    with pytest.raises(ParameterError, match="boolean"):
        generator.generate_session([[1]], length=2, candidates=np.ones((1, 3), bool))


def test_session_split_and_evaluation(generator):
    rows = [("a", 1, 1, "s1"), ("a", 2, 2, "s1"), ("a", 3, 3, "s2"), ("a", 4, 4, "s2"),
            ("b", 5, 1, "t1"), ("b", 6, 2, "t2"),
            ("c", 7, 1, "u1"), ("c", 8, 2, "u1"), ("c", 9, 3, "u1")]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "session_id"])
    split = sq.last_session_split(frame)
    assert split.test.item_id.tolist() == [3, 4]          # b: session too short; c: no history
    assert split.train.item_id.tolist() == [1, 2, 5, 6, 7, 8, 9]
    with pytest.raises(DataError, match="session_id"):
        sq.last_session_split(frame.drop(columns="session_id"))
    with pytest.raises(DataError, match="no user"):
        sq.last_session_split(frame, min_session=5)
    walks = cycle_interactions().assign(session_id=lambda d: d.user_id.astype(str)
                                        + (d.timestamp >= 4).astype(str))
    walk_split = sq.last_session_split(walks)
    for mode in ("next_item", "session"):
        result = sq.evaluate_session(generator, walk_split, k=4, mode=mode, beam_width=6)
        assert 0.0 <= result["ndcg@4"] <= 1.0 and result["num_users"] > 0
    with pytest.raises(ParameterError, match="cannot generate"):
        sq.evaluate_session(sq.SequentialPopularityModel().fit(walks), walk_split,
                            mode="session")


# ---------------------------------------------------------------- the two training objectives


def test_tree_steps_are_the_conditionals_of_one_item_softmax(generator):
    """loss="tree": each step's probabilities (the network's level logits, normalised over the
    codes that exist) are the item softmax's mass below each child over the mass below the prefix."""
    assert generator.loss == "tree"
    history = np.array([5, 6, 7])
    log_p = generator.score_histories([history])[0].astype(np.float64)
    hidden = generator._hidden([history])
    codes = generator._catalogue_codes()
    tree = generator.quantizer_.prefix_tree()
    for level in range(generator.levels):
        for prefix in {tuple(int(c) for c in row[:level]) for row in codes}:
            padded = np.zeros((1, generator.levels), np.int32)
            padded[0, :level] = prefix
            children = tree[prefix]
            logits = generator.network_.level_logits(hidden, padded, level).numpy()[0, children]
            step = logits - np.logaddexp.reduce(logits)
            below = np.all(codes[:, :level] == prefix, axis=1)
            mass = np.array([np.logaddexp.reduce(log_p[below & (codes[:, level] == c)])
                             for c in children]) - np.logaddexp.reduce(log_p[below])
            np.testing.assert_allclose(step, mass, atol=1e-4)


@pytest.fixture(scope="module")
def levels_generator():
    """TIGER's objective: per-level cross-entropies (teacher forcing) and the in-cell step."""
    model = sq.SemanticIDGenerator(levels=2, codebook_size=4, max_len=6, embedding_dim=16,
                                   num_blocks=1, num_heads=1, dropout=0.0, learning_rate=5e-3,
                                   epochs=15, batch_size=32, beam_width=10, loss="levels", seed=0)
    return model.fit(cycle_interactions(), CATALOGUE)


def test_levels_objective_full_scores_equal_the_beam_and_survive_save_load(levels_generator,
                                                                           tmp_path):
    histories = [[1, 2, 3], [10]]
    scores = levels_generator.score_histories(histories)
    np.testing.assert_allclose(np.exp(scores.astype(np.float64)).sum(axis=1), 1.0, atol=1e-4)
    for row, beam in enumerate(levels_generator.generate([np.array(h) for h in histories],
                                                         beam_width=NUM_ITEMS)):
        assert sorted(item for item, _ in beam) == list(range(NUM_ITEMS))
        np.testing.assert_allclose([s for _, s in beam], scores[row, [i for i, _ in beam]],
                                   rtol=1e-4, atol=1e-4)
    loaded = sq.SemanticIDGenerator.load(levels_generator.save(tmp_path / "levels"))
    assert loaded.loss == "levels"
    np.testing.assert_array_equal(loaded.score_histories(histories), scores)
    # It learns the cycle too (HR@10 well above the 10/24 of a random list).
    split = sq.leave_one_out(cycle_interactions(num_users=30, seed=1))
    result = sq.evaluate_next_item(levels_generator, split, k=10)
    assert result["hr@10"] > 10 / NUM_ITEMS + 0.2


def test_generator_rejects_an_unknown_loss():
    with pytest.raises(ParameterError, match="loss"):
        sq.SemanticIDGenerator(loss="softmax").fit(cycle_interactions(), CATALOGUE)


def test_identity_dropout_trains_and_reloads_identically(tmp_path):
    model = sq.SemanticIDGenerator(levels=2, codebook_size=4, max_len=6, embedding_dim=16,
                                   num_blocks=1, num_heads=1, dropout=0.0, learning_rate=5e-3,
                                   epochs=3, batch_size=32, identity_dropout=0.5, seed=0)
    model.fit(cycle_interactions(), CATALOGUE)
    histories = [[1, 2, 3], [10]]
    loaded = sq.SemanticIDGenerator.load(model.save(tmp_path / "dropout"))
    assert loaded.identity_dropout == 0.5
    # Dropout acts in training only: scoring is deterministic and survives save / load.
    np.testing.assert_array_equal(loaded.score_histories(histories),
                                  model.score_histories(histories))
    np.testing.assert_array_equal(model.score_histories(histories),
                                  model.score_histories(histories))
    for bad in (-0.1, 1.0):
        with pytest.raises(ParameterError, match="identity_dropout"):
            sq.SemanticIDGenerator(identity_dropout=bad).fit(cycle_interactions(), CATALOGUE)
