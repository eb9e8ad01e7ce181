"""Tests of SessionSASRecModel: a rule only the time gaps reveal, the explicit terms, save / load."""

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
