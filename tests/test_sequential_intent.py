"""Tests of SessionIntentModel (latent session intent, full-batch choice model) and GeometricMix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import sequential as sq
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError

TOPICS, PER_TOPIC = 3, 20
ITEMS = np.arange(1, TOPICS * PER_TOPIC + 1)
DAY = 86400.0
START = pd.Timestamp("2026-01-01")


def topic_of(item) -> np.ndarray:
    return (np.asarray(item) - 1) // PER_TOPIC


def intent_interactions(num_users: int = 150, seed: int = 0) -> pd.DataFrame:
    """Sessions of 3-5 views a few minutes apart, 2 days between sessions.

    Each session draws a focus topic from the user's own topic law, then every view
    of the session is an unwatched clip of that topic (90%) or any clip (10%). The
    last view alone says little about a new session; within one, the session's
    topic is the best guess.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        law = rng.dirichlet(np.full(TOPICS, 0.5))
        seen: set[int] = set()
        clock = float(rng.uniform(0, DAY))
        for _ in range(int(rng.integers(3, 5))):
            focus = int(rng.choice(TOPICS, p=law))
            for _ in range(int(rng.integers(3, 6))):
                pool = [i for i in ITEMS if i not in seen
                        and (topic_of(i) == focus or rng.random() < 0.1)]
                item = int(rng.choice(pool))
                seen.add(item)
                rows.append((user, item, START + pd.Timedelta(seconds=clock)))
                clock += float(rng.uniform(60, 300))
            clock += 2 * DAY
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def topic_vectors(seed: int = 0) -> pd.DataFrame:
    """Content: a noisy one-hot of the topic (the model must find the topics in it)."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * np.eye(TOPICS, 6)
    vectors = centres[topic_of(ITEMS)] + rng.standard_normal((len(ITEMS), 6))
    return pd.DataFrame(vectors, index=pd.Index(ITEMS, name="item_id"))


PARAMS = dict(topics=TOPICS, rank=2, steps=200, eval_every=25, learning_rate=0.05,
              theta_l2=2.0, seed=0)


@pytest.fixture(scope="module")
def split():
    return sq.leave_one_out(intent_interactions())


@pytest.fixture(scope="module")
def model(split):
    return sq.SessionIntentModel(**PARAMS).fit(split.train, topic_vectors(),
                                               validation=split.validation)


def test_topics_are_found_and_the_intent_is_learned(model):
    memberships = model.topic_memberships()
    found = memberships.to_numpy().argmax(axis=1)
    # Each learned topic is one true topic (up to relabelling).
    table = pd.crosstab(topic_of(memberships.index), found)
    assert (table.max(axis=1) / table.sum(axis=1)).min() > 0.9
    assert model.transition_weights()["w_intent"] > 1.0
    assert model.history_["step"] and model.best_step_ in model.history_["step"]


def test_the_posterior_follows_the_session_and_forgets_it_after_a_break(model):
    history = [1, 2, 3]                                   # three clips of topic 0
    times = [[START, START + pd.Timedelta(minutes=2), START + pd.Timedelta(minutes=4)]]
    found = model.topic_memberships().loc[history].to_numpy().argmax(axis=1)
    assert len(set(found)) == 1
    topic = found[0]
    soon = model.intent_posterior([history], times=times,
                                  at=[START + pd.Timedelta(minutes=6)])[0]
    later = model.intent_posterior([history], times=times, at=[START + pd.Timedelta(days=2)])[0]
    np.testing.assert_allclose(soon.sum(), 1.0, rtol=1e-5)
    assert soon[topic] > 0.9
    assert later[topic] < soon[topic] - 0.3
    # The next view: within the session mostly topic 0, after a break much less.
    scores = {when: model.score_histories([history], times=times, at=[START + delta])[0]
              for when, delta in (("soon", pd.Timedelta(minutes=6)),
                                  ("later", pd.Timedelta(days=2)))}
    share = {when: np.exp(s)[topic_of(model.item_ids_) == 0].sum() for when, s in scores.items()}
    # (Topic 0 holds a third of the clips; 17 of its 20 are still unwatched.)
    assert share["soon"] > 0.6 and share["later"] < share["soon"] - 0.3


def test_scores_are_log_probabilities_over_the_allowed_items(model, split):
    histories, targets = sq.evaluation_histories(split, "test")
    scores = model.score_histories(histories[:5], times=None, users=targets.user_id[:5])
    for row, history in enumerate(histories[:5]):
        seen = np.isin(model.item_ids_, history)
        assert np.isneginf(scores[row, seen]).all()
        np.testing.assert_allclose(np.exp(scores[row, ~seen].astype(np.float64)).sum(), 1.0,
                                   rtol=1e-4)
    allowed = np.zeros((1, len(ITEMS)), bool)
    allowed[0, [10, 30, 50]] = True
    only = model.score_histories(histories[:1], candidates=allowed)
    assert np.isfinite(only[0, [10, 30, 50]]).all() and np.isneginf(only[0, ~allowed[0]]).all()
    np.testing.assert_allclose(np.exp(only[0, allowed[0]].astype(np.float64)).sum(), 1.0,
                               rtol=1e-4)


def test_it_beats_popularity_and_the_markov_chain(model, split):
    ours = sq.evaluate_next_item(model, split, k=10)["ndcg@10"]
    for baseline in (sq.SequentialPopularityModel(), sq.MarkovModel()):
        baseline.fit(split.train)
        assert ours > sq.evaluate_next_item(baseline, split, k=10)["ndcg@10"] + 0.05


def test_explicit_terms_from_item_side():
    """A view of episode e of a series is followed by episode e + 1 within the session."""
    rng = np.random.default_rng(1)
    side = pd.DataFrame({"creator_id": [f"c{(i - 1) // 10}" for i in ITEMS],
                         "series_id": [f"s{(i - 1) // 5}" for i in ITEMS],
                         "episode": [(i - 1) % 5 + 1 for i in ITEMS]},
                        index=pd.Index(ITEMS, name="item_id"))
    rows = []
    for user in range(120):
        clock = 0.0
        for _ in range(3):
            first = int(rng.choice(ITEMS[(ITEMS - 1) % 5 == 0]))
            for episode in range(int(rng.integers(3, 6))):
                rows.append((user, first + episode, START + pd.Timedelta(seconds=clock)))
                clock += 120.0
            clock += 2 * DAY
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame = frame.drop_duplicates(["user_id", "item_id"])
    split = sq.leave_one_out(frame)
    fitted = sq.SessionIntentModel(**{**PARAMS, "steps": 150}).fit(
        split.train, topic_vectors(), validation=split.validation, item_side=side)
    weights = fitted.transition_weights()
    assert weights["w_episode"] > 1.0
    assert fitted.next_episode_[0] == 1 and fitted.next_episode_[4] == -1


def test_save_load_gives_identical_scores(model, split, tmp_path):
    path = model.save(tmp_path / "intent")
    loaded = sq.SessionIntentModel.load(path)
    histories, targets = sq.evaluation_histories(split, "test")
    context = sq.evaluation._history_context(split, "test", targets)
    np.testing.assert_array_equal(model.score_histories(histories, **context),
                                  loaded.score_histories(histories, **context))
    assert loaded.best_step_ == model.best_step_
    with pytest.raises(ModelError, match="not a saved"):
        sq.SessionIntentModel.load(tmp_path)


def test_bad_input(model, split):
    with pytest.raises(DataError, match="timestamp"):
        sq.SessionIntentModel().fit(split.train.drop(columns="timestamp"), topic_vectors())
    with pytest.raises(ParameterError, match="needs item_vectors"):
        sq.SessionIntentModel().fit(split.train)
    with pytest.raises(DataError, match="item_side has no column"):
        sq.SessionIntentModel().fit(split.train, topic_vectors(),
                                    item_side=pd.DataFrame({"x": 1}, index=ITEMS))
    for name, value in (("topics", 0), ("rank", -1), ("theta_l2", -1.0), ("steps", 0),
                        ("learning_rate", 0.0), ("exclude_seen", "yes")):
        with pytest.raises(ParameterError, match=name):
            sq.SessionIntentModel(**{name: value}).fit(split.train, topic_vectors())
    with pytest.raises(NotFittedError):
        sq.SessionIntentModel().score_histories([[1]])
    with pytest.raises(ParameterError, match="histories is empty"):
        model.score_histories([])
    with pytest.raises(DataError, match="outside the catalogue"):
        model.score_histories([[1, 999]])
    with pytest.raises(DataError, match="history 0 is empty"):
        model.score_histories([[999]], unknown="drop")
    with pytest.raises(ParameterError, match="times has 1 rows for 2"):
        model.score_histories([[1], [2]], times=[[0]])
    with pytest.raises(ParameterError, match=r"times\[0\] has 2 values"):
        model.score_histories([[1]], times=[[0.0, 1.0]])
    with pytest.raises(ParameterError, match="candidates"):
        model.score_histories([[1]], candidates=np.ones((1, 3), bool))


def test_geometric_mix(model, split):
    other = sq.MarkovModel().fit(split.train)
    with pytest.raises(ModelError, match="catalogues"):
        sq.GeometricMix(model, sq.MarkovModel().fit(split.train[split.train.item_id < 40]))
    with pytest.raises(NotFittedError):
        sq.GeometricMix(model, sq.MarkovModel())
    mix = sq.GeometricMix(other, model)
    with pytest.raises(ModelError, match="no weight"):
        sq.evaluate_next_item(mix, split)
    with pytest.raises(ModelError, match="fit_weight"):
        mix.fit(split.train)
    histories, targets = sq.evaluation_histories(split, "test")
    context = sq.evaluation._history_context(split, "test", targets)
    alone = model.score_histories(histories, **context)
    mix.weight = 1.0
    np.testing.assert_allclose(mix.score_histories(histories, **context), alone, atol=1e-4)
    mix.fit_weight(split)
    assert mix.weight in mix.weights_ and len(mix.validation_ndcg_) == 11
    assert max(mix.validation_ndcg_) >= max(mix.validation_ndcg_[0], mix.validation_ndcg_[-1])
    best = sq.evaluate_next_item(mix, split, stage="validation")["ndcg@10"]
    assert best == pytest.approx(max(mix.validation_ndcg_))


def test_a_refit_gives_the_same_scores(split):
    """Full-batch Adam from a seeded start: the same fit twice scores identically."""
    params = {**PARAMS, "steps": 60}
    first, second = (sq.SessionIntentModel(**params).fit(split.train, topic_vectors(),
                                                          validation=split.validation)
                     for _ in range(2))
    histories, _ = sq.evaluation_histories(split, "test")
    np.testing.assert_array_equal(first.score_histories(histories[:50]),
                                  second.score_histories(histories[:50]))


def test_intent_posterior_bad_input(model):
    with pytest.raises(DataError, match="outside the catalogue"):
        model.intent_posterior([[1, 999]])
    with pytest.raises(ParameterError, match="histories is empty"):
        model.intent_posterior([])
    # A request without history times continues the history's session: not the bare prior.
    prior = model.intent_posterior([[1]], times=[[0.0]], at=[10 * DAY])[0]
    within = model.intent_posterior([[1, 2, 3]])[0]
    assert within.max() > prior.max()


def test_refit_with_validation_runs_the_chosen_number_of_steps(model, split):
    refit = sq.refit_with_validation(model, split, topic_vectors())
    assert refit.steps == model.best_step_ and refit.best_step_ == model.best_step_
    assert refit.history_["val_ndcg@10"] == []
    assert sum(map(len, refit.train_sequences_)) == len(split.train) + len(split.validation)
    assert sq.evaluate_next_item(refit, split, k=10)["ndcg@10"] > 0
