"""Tests of SessionSASRecModel: gap rules, explicit terms, the intent head, save / load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import sequential as sq
from mmrec_lib.errors import DataError, ModelError, ParameterError

CREATORS, CLIPS = 6, 12
ITEMS = np.arange(1, CREATORS * CLIPS + 1)
DAY = 86400


def item_of(creator: int, clip: int) -> int:
    return creator * CLIPS + clip + 1


def session_interactions(num_users: int = 240, seed: int = 0) -> pd.DataFrame:
    """In a session the next view is the creator's next clip; after a break, the next creator's.

    Both rules are deterministic, so the item after a view has two possible
    values; only the gap to the request tells which one comes.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        creator, clip = int(rng.integers(CREATORS)), int(rng.integers(CLIPS))
        clock = float(rng.uniform(0, DAY))
        for step in range(int(rng.integers(10, 15))):
            if step:
                if rng.random() < 0.35:
                    creator, clock = (creator + 1) % CREATORS, clock + 2 * DAY
                else:
                    clip, clock = (clip + 1) % CLIPS, clock + float(rng.uniform(60, 300))
            rows.append((user, item_of(creator, clip), pd.Timestamp("2026-01-01")
                         + pd.Timedelta(seconds=clock)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def side_table(items) -> pd.DataFrame:
    items = np.asarray(items)
    return pd.DataFrame({"creator_id": [f"c{(i - 1) // CLIPS}" for i in items],
                         "series_id": [f"s{(i - 1) // CLIPS}" if (i - 1) % CLIPS < 4 else ""
                                       for i in items],
                         "episode": [(i - 1) % CLIPS + 1 if (i - 1) % CLIPS < 4 else np.nan
                                     for i in items]},
                        index=pd.Index(items, name="item_id"))


def noise_vectors(items, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.standard_normal((len(items), 4)),
                        index=pd.Index(np.asarray(items), name="item_id"))


PARAMS = dict(use_item_id=True, use_content=False, transitions=False, user_vector=False,
              max_len=8, embedding_dim=24, num_blocks=1, num_heads=1, dropout=0.1,
              learning_rate=1e-2, epochs=25, batch_size=32, patience=None, seed=0)


@pytest.fixture(scope="module")
def split():
    return sq.leave_one_out(session_interactions())


@pytest.fixture(scope="module")
def model(split):
    return sq.SessionSASRecModel(**PARAMS).fit(split.train, noise_vectors(ITEMS),
                                               validation=split.validation,
                                               item_side=side_table(ITEMS))


def test_gap_buckets_by_hand():
    np.testing.assert_array_equal(sq.gap_buckets([0, 60, 61, 1199, 1201, 40 * 86400]),
                                  [1, 1, 2, 5, 6, len(sq.GAP_EDGES_S) + 1])
    assert sq.gap_buckets([np.nan]).tolist() == [0]
    assert len(sq.GAP_LABELS) == len(sq.GAP_EDGES_S) + 1
    with pytest.raises(DataError, match="negative"):
        sq.gap_buckets([10, -1])


def test_the_gaps_reveal_the_session_rule(model, split):
    """Which of the two possible next items comes is in the gap to the request only."""
    with_gaps = sq.evaluate_next_item(model, split, k=1)["hr@1"]
    blind = sq.SessionSASRecModel(**{**PARAMS, "time_gaps": False}).fit(
        split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS))
    without = sq.evaluate_next_item(blind, split, k=1)["hr@1"]
    assert with_gaps > 0.85
    assert without < 0.75
    assert with_gaps > without + 0.15
    # The same model scored without times cannot tell either.
    histories, targets = sq.evaluation_histories(split, "test")
    scores = model.score_histories(histories)
    index = model.item_encoder_.transform(targets["item_id"])
    assert np.mean(np.argmax(scores, axis=1) == index) < with_gaps - 0.1


def test_score_histories_reads_times_and_request_time(model):
    start = pd.Timestamp("2026-03-01")
    history = [item_of(2, 5)]
    times = [[start]]
    soon = model.score_histories([history], times=times, at=[start + pd.Timedelta(minutes=2)])
    later = model.score_histories([history], times=times, at=[start + pd.Timedelta(days=2)])
    position = {item: k for k, item in enumerate(model.item_ids_)}
    soon[0, position[history[0]]] = later[0, position[history[0]]] = -np.inf  # seen
    assert np.argmax(soon[0]) == position[item_of(2, 6)]
    assert np.argmax(later[0]) == position[item_of(3, 5)]
    # Seconds work as well as datetimes.
    seconds = model.score_histories([history], times=[[0.0]], at=[120.0])
    seconds[0, position[history[0]]] = -np.inf
    np.testing.assert_allclose(seconds, soon, rtol=1e-5, atol=1e-5)


def test_context_bad_input(model, split):
    with pytest.raises(ParameterError, match="times has 1 rows for 2"):
        model.score_histories([[1], [2]], times=[[0]])
    with pytest.raises(ParameterError, match=r"times\[0\] has 2 values for 1 items"):
        model.score_histories([[1]], times=[[0, 1]])
    with pytest.raises(ParameterError, match="one request time per history"):
        model.score_histories([[1]], at=[0, 1])
    with pytest.raises(DataError, match="negative"):
        model.score_histories([[1, 2]], times=[[10, 5]])
    with pytest.raises(DataError, match="outside the catalogue"):
        model.score_histories([[999]], at=[0])
    with pytest.raises(DataError, match="is empty"):
        model.score_histories([[999]], at=[0], unknown="drop")
    with pytest.raises(ParameterError, match="histories is empty"):
        model.score_histories([], at=[])
    with pytest.raises(DataError, match="'timestamp' column in train"):
        sq.SessionSASRecModel(**PARAMS).fit(split.train.drop(columns="timestamp"),
                                            noise_vectors(ITEMS), item_side=side_table(ITEMS))
    with pytest.raises(DataError, match="no column"):
        sq.SessionSASRecModel(**{**PARAMS, "transitions": True}).fit(
            split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS)[["creator_id"]])
    with pytest.raises(ParameterError, match="user_l2"):
        sq.SessionSASRecModel(**{**PARAMS, "user_l2": -1}).fit(
            split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS))
    with pytest.raises(ParameterError, match="series_columns"):
        sq.SessionSASRecModel(**{**PARAMS, "series_columns": "series_id"}).fit(
            split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS))


def test_transition_tables_by_hand_and_for_new_items(split):
    model = sq.SessionSASRecModel(**{**PARAMS, "transitions": True, "user_vector": True,
                                     "epochs": 2}).fit(
        split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS))
    following = model._next_tokens()
    position = {item: k + 1 for k, item in enumerate(model.item_ids_)}
    # Episodes 1-4 of each creator's series: 1 -> 2 -> 3 -> 4, then nothing.
    assert following[position[item_of(1, 0)]] == position[item_of(1, 1)]
    assert following[position[item_of(1, 3)]] == 0
    assert following[position[item_of(1, 7)]] == 0
    assert model.creator_vocabulary_[model.creator_codes_[position[item_of(4, 2)] - 1] - 1] \
        == "c4"
    # Episode 5 of series s1 arrives: episode 4 now leads to it; a new creator gets a new code.
    new = pd.DataFrame({"creator_id": ["c1", "c9"], "series_id": ["s1", ""],
                        "episode": [5, np.nan]}, index=pd.Index([500, 501], name="item_id"))
    model.add_items(noise_vectors([500, 501], seed=3), item_side=new)
    position = {item: k + 1 for k, item in enumerate(model.item_ids_)}
    assert model._next_tokens()[position[item_of(1, 3)]] == position[500]
    assert model.creator_codes_[position[500] - 1] == model.creator_codes_[
        position[item_of(1, 0)] - 1]
    assert model.creator_codes_[position[501] - 1] == len(model.creator_vocabulary_)
    # A watched episode 4 boosts the new episode 5 by the learned next-episode weight.
    weights = model.transition_weights()
    assert list(weights["same_creator"].index) == list(sq.GAP_LABELS)
    scores = model.score_histories([[item_of(1, 3)]], users=[0])
    plain = model.network_.item_logits(model.network_(
        (np.array([[0] * 7 + [position[item_of(1, 3)]]], np.int32), np.zeros((1, 8), np.int32),
         np.zeros((1, 8), np.int32), np.array([1], np.int32))))[:, -1].numpy()
    np.testing.assert_allclose(scores[0, position[500] - 1] - plain[0, position[500] - 1],
                               weights["next_episode"], rtol=1e-4, atol=1e-4)


def test_save_load_gives_identical_scores(split, tmp_path):
    model = sq.SessionSASRecModel(**{**PARAMS, "transitions": True, "user_vector": True,
                                     "epochs": 3}).fit(
        split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS),
        validation=split.validation)
    path = model.save(tmp_path / "session")
    loaded = sq.SessionSASRecModel.load(path)
    np.testing.assert_array_equal(loaded.score(model.user_ids_[:7]),
                                  model.score(model.user_ids_[:7]))
    context = {"times": [[0, 100, 200]], "at": [300], "users": [model.user_ids_[3]]}
    np.testing.assert_array_equal(loaded.score_histories([[1, 2, 3]], **context),
                                  model.score_histories([[1, 2, 3]], **context))
    assert loaded.get_params() == model.get_params()
    assert sq.evaluate_next_item(loaded, split) == sq.evaluate_next_item(model, split)
    with pytest.raises(ModelError, match="not a saved SessionSASRecModel"):
        sq.SessionSASRecModel.load(tmp_path / "nothing")


def test_user_vector_carries_what_the_window_cannot():
    """With max_len 1 the history shows only a random clip; each user's favourite is in p_u."""
    rng = np.random.default_rng(1)
    rows = []
    for user in range(120):
        favourite = int(rng.integers(CREATORS))
        for step in range(16):
            creator = favourite if step % 2 == 0 else int(rng.integers(CREATORS))
            rows.append((user, item_of(creator, int(rng.integers(CLIPS))), step * 60))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    events = events[events.groupby("user_id").cumcount() < 15]  # the test target: a favourite
    split = sq.leave_one_out(events)
    params = {**PARAMS, "max_len": 1, "use_item_id": False, "time_gaps": False, "epochs": 30,
              "user_l2": 1e-3}
    results = {}
    for flag in (True, False):
        fitted = sq.SessionSASRecModel(**{**params, "user_vector": flag}).fit(
            split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS))
        results[flag] = sq.evaluate_next_item(fitted, split, k=CLIPS)["hr@12"]
    assert results[True] > 0.6
    assert results[True] > results[False] + 0.3


class FixedTeacher:
    """A stand-in teacher that always gives ``favourite`` most of its probability."""

    _uses_context = False

    def __init__(self, items, favourite):
        self.item_ids_ = np.asarray(items)
        self.favourite = favourite

    def fit(self, *args, **kwargs):
        return self

    def score_histories(self, histories, **context):
        assert not context  # a teacher without _uses_context gets the histories only
        scores = np.where(self.item_ids_ == self.favourite, 5.0, -5.0)
        log_probs = scores - np.log(np.exp(scores).sum())
        return np.tile(log_probs, (len(histories), 1)).astype(np.float32)


def top_item_share(model, item) -> float:
    """Share of training users whose highest-scored item is ``item``."""
    scores = model.score(model.user_ids_)
    return float(np.mean(np.asarray(model.item_ids_)[scores.argmax(axis=1)] == item))


def test_distillation_pulls_the_student_to_its_teacher(split, tmp_path):
    favourite = item_of(2, 7)
    params = {**PARAMS, "epochs": 8}
    plain = sq.SessionSASRecModel(**params).fit(split.train, noise_vectors(ITEMS),
                                                item_side=side_table(ITEMS))
    student = sq.SessionSASRecModel(**{**params, "teacher_weight": 1.0}).fit(
        split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS),
        teacher=FixedTeacher(ITEMS, favourite))
    assert top_item_share(plain, favourite) < 0.2
    assert top_item_share(student, favourite) > 0.8
    # The student is a SessionSASRec like any other: saved and loaded without its teacher.
    loaded = sq.SessionSASRecModel.load(student.save(tmp_path / "student"))
    np.testing.assert_array_equal(loaded.score(student.user_ids_[:5]),
                                  student.score(student.user_ids_[:5]))
    assert loaded.get_params()["teacher_weight"] == 1.0


def test_teacher_weight_zero_is_training_without_a_teacher(split):
    params = {**PARAMS, "epochs": 3, "teacher_weight": 0.0}
    fits = [sq.SessionSASRecModel(**params).fit(split.train, noise_vectors(ITEMS),
                                                item_side=side_table(ITEMS), teacher=teacher)
            for teacher in (None, FixedTeacher(ITEMS, ITEMS[0]))]
    np.testing.assert_array_equal(fits[0].score(fits[0].user_ids_[:9]),
                                  fits[1].score(fits[1].user_ids_[:9]))


def test_teacher_bad_input(split):
    from mmrec_lib.errors import NotFittedError

    def fit(teacher, **params):
        return sq.SessionSASRecModel(**{**PARAMS, "epochs": 1, **params}).fit(
            split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS), teacher=teacher)

    with pytest.raises(ParameterError, match="teacher_weight"):
        fit(None, teacher_weight=1.5)
    with pytest.raises(ParameterError, match="teacher must be a fitted sequential model"):
        fit(object())
    with pytest.raises(NotFittedError, match=r"teacher \(SessionIntentModel\) is not fitted"):
        fit(sq.SessionIntentModel())
    with pytest.raises(DataError, match="the teacher does not know 3 training item"):
        fit(FixedTeacher(ITEMS[:-3], ITEMS[0]))


@pytest.fixture(scope="module")
def intent_model(split):
    released = pd.Series(pd.Timestamp("2026-01-01")
                         + pd.to_timedelta(np.arange(len(ITEMS)) * 600, unit="s"), index=ITEMS)
    return sq.SessionSASRecModel(**{**PARAMS, "intents": 4, "epochs": 12}).fit(
        split.train, noise_vectors(ITEMS), validation=split.validation,
        item_side=side_table(ITEMS), release_time=released)


def head_by_hand(network, tokens, gap_in, gap_out, counts, following, hidden):
    """The latent-intent head in NumPy for one padded history; log-probs after its last view."""
    from scipy.special import logsumexp, softmax

    n = network.num_items
    logits = network.context_logits(hidden, tokens, gap_out).numpy()[0]       # (P, n)
    tokens, gap_in, gap_out, counts, following = (a[0] for a in (tokens, gap_in, gap_out,
                                                                 counts, following))
    length = len(tokens)
    rank = network.release_rank.numpy()
    allowed = np.zeros((length, n), bool)
    for t in range(length):
        seen = set(tokens[:t + 1].tolist())
        allowed[t] = [(j + 1 not in seen) and rank[j] <= counts[t] - 1 for j in range(n)]
        if following[t] > 0:
            allowed[t, following[t] - 1] = True
    logits = np.where(allowed, logits, -np.inf)
    intent = (1 + 10 * network.intent_scale.numpy()) * network.intent_memberships().numpy()
    norm = logsumexp(logits[:, :, None] + intent[None], axis=1)                # (P, K)
    prior = hidden.numpy()[0] @ network.prior_kernel.numpy() + network.prior_bias.numpy()
    session = np.cumsum((gap_in == 0) | (gap_in > 5))
    t = length - 1
    evidence = np.zeros(intent.shape[1])
    if 1 <= gap_out[t] <= 5:
        for s in range(1, t + 1):
            if session[s] == session[t] and tokens[s] > 0 and tokens[s - 1] > 0:
                evidence += intent[tokens[s] - 1] - norm[s - 1]
    posterior = softmax(prior[t] + evidence)
    return logsumexp(np.log(posterior)[None] + logits[t][:, None] + intent - norm[t][None],
                     axis=1)


def test_intent_head_matches_numpy_and_reads_the_session(intent_model):
    """The Bayes-gated mixture by hand; the session's earlier views move its posterior."""
    network = intent_model.network_
    network.intent_scale.assign(0.3)          # a strong intent term, so the test can fail
    network.prior_bias.assign([0.5, -0.5, 1.0, 0.0])
    start = pd.Timestamp("2026-01-02")
    minutes = [0, 2, 4, 3 * 24 * 60, 3 * 24 * 60 + 3, 3 * 24 * 60 + 5]
    history = [item_of(0, 1), item_of(0, 2), item_of(1, 3), item_of(4, 1), item_of(4, 2),
               item_of(5, 0)]
    times = [start + pd.Timedelta(minutes=m) for m in minutes]
    results = []
    # The request continues the last session (its earlier views are evidence), or starts
    # a new one two days later (only the prior).
    for at in (start + pd.Timedelta(minutes=minutes[-1] + 2), start + pd.Timedelta(days=5)):
        scores = intent_model.score_histories([history], times=[times], at=[at])[0]
        tokens, gap_in, gap_out, users, counts = intent_model._context(
            [np.asarray(history)], [sq.session._seconds(np.array(times))],
            sq.session._seconds(np.array([at])), np.zeros(1, np.int32))
        following = np.zeros_like(tokens)
        following[:, :-1] = np.where(tokens[:, :-1] > 0, tokens[:, 1:], 0)
        hidden = network((tokens, gap_in, gap_out, users), training=False)
        expected = head_by_hand(network, tokens, gap_in, gap_out, counts, following, hidden)
        allowed = np.isfinite(expected)
        assert allowed.sum() == len(ITEMS) - len(history)
        np.testing.assert_allclose(scores[allowed], expected[allowed], rtol=1e-4, atol=1e-4)
        assert np.all(scores[~allowed] < -1e8)
        np.testing.assert_allclose(np.log(np.exp(scores[allowed]).sum()), 0.0, atol=1e-4)
        results.append(scores[allowed])
    assert np.abs(results[1] - results[0]).max() > 1e-3


def test_intent_head_collapses_to_the_plain_softmax(intent_model):
    """With a zero intent term every intent's law is the same: log_softmax of the logits."""
    network = intent_model.network_
    saved = network.intent_scale.numpy()
    network.intent_scale.assign(-0.1)         # scale 1 + 10 * (-0.1) = 0
    try:
        tokens = np.zeros((1, PARAMS["max_len"]), np.int32)
        tokens[0, -3:] = [1, 2, 3]
        gaps = np.zeros_like(tokens)
        gaps[0, -3:] = [0, 2, 2]
        out_gaps = np.zeros_like(tokens)
        out_gaps[0, -3:] = [2, 2, 2]
        counts = np.full_like(tokens, len(ITEMS) + 1)
        following = np.zeros_like(tokens)
        following[0, -3:-1] = [2, 3]
        hidden = network((tokens, gaps, out_gaps, np.zeros(1, np.int32)), training=False)
        mixed = network.mixture_log_probs(hidden, tokens, gaps, out_gaps, counts,
                                          following).numpy()[0, -1]
        logits = network.context_logits(hidden, tokens, out_gaps).numpy()[0, -1]
        allowed = np.ones(len(ITEMS), bool)
        allowed[:3] = False
        plain = logits[allowed] - np.log(np.exp(logits[allowed]).sum())
        np.testing.assert_allclose(mixed[allowed], plain, rtol=1e-5, atol=1e-5)
    finally:
        network.intent_scale.assign(saved)


def test_intent_head_learns_saves_and_checks(intent_model, split, tmp_path):
    # It still reads the gap rule, and a release time limits its choice sets.
    assert sq.evaluate_next_item(intent_model, split, k=1)["hr@1"] > 0.85
    loaded = sq.SessionSASRecModel.load(intent_model.save(tmp_path / "intent"))
    context = {"times": [[0, 100, 200]], "at": [300], "users": [intent_model.user_ids_[3]]}
    np.testing.assert_array_equal(loaded.score_histories([[1, 2, 3]], **context),
                                  intent_model.score_histories([[1, 2, 3]], **context))
    np.testing.assert_array_equal(loaded.release_rank_, intent_model.release_rank_)
    assert sq.evaluate_next_item(loaded, split) == sq.evaluate_next_item(intent_model, split)
    # A new clip joins the intents from its content (treated as released).
    grown = sq.SessionSASRecModel.load(tmp_path / "intent").add_items(
        noise_vectors([999], seed=3), side_table([1]).set_axis([999]))
    scores = grown.score_histories([[1, 2]], times=[[0, 60]], at=[120])
    assert np.isfinite(scores[0, list(grown.item_ids_).index(999)])
    with pytest.raises(ParameterError, match="intents"):
        sq.SessionSASRecModel(**{**PARAMS, "intents": -1}).fit(
            split.train, noise_vectors(ITEMS), item_side=side_table(ITEMS))
