"""Tests of mmrec_lib.models: the tf.data pipeline and MultimodalRecommender on synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 set-up before TensorFlow)
from mmrec_lib import models
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError

NUM_ITEMS, NUM_USERS, NUM_WARM = 40, 30, 30


@pytest.fixture(scope="module")
def data():
    """Items whose latent taste is split over two modalities; the last 10 items are cold."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(NUM_ITEMS, 4))
    item_ids = [f"i{i:03d}" for i in range(NUM_ITEMS)]
    text = pd.DataFrame(latent[:, :2] @ rng.normal(size=(2, 6))
                        + 0.05 * rng.normal(size=(NUM_ITEMS, 6)), index=item_ids)
    audio = pd.DataFrame(latent[:, 2:] @ rng.normal(size=(2, 5))
                         + 0.05 * rng.normal(size=(NUM_ITEMS, 5)), index=item_ids)
    audio.iloc[3] = np.nan  # item i003 has no audio track
    preferences = rng.normal(size=(NUM_USERS, 4))
    truth = preferences @ latent.T
    rows = []
    for user in range(NUM_USERS):
        liked = np.argsort(-truth[user, :NUM_WARM], kind="stable")[:8]
        rows += [(f"u{user:03d}", item_ids[i], pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(t)))
                 for t, i in enumerate(liked)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return {"train": train, "features": {"text": text, "audio": audio}, "truth": truth,
            "item_ids": item_ids}


@pytest.fixture(scope="module")
def fitted(data):
    return models.MultimodalRecommender(fusion="attention", embedding_dim=8, epochs=15,
                                        batch_size=64, learning_rate=0.02, seed=0).fit(
        data["train"], data["features"])


# --------------------------------------------------------------------------- tf.data pipeline

def test_bpr_dataset_batches_and_negatives_come_from_pool():
    users = np.arange(10)
    items = np.arange(10) + 100
    pool = np.array([7, 8, 9])
    batches = list(models.bpr_dataset(users, items, pool, batch_size=4, seed=0))
    assert [len(b[0][0]) for b in batches] == [4, 4, 2]
    user, positive, negative = (np.concatenate([b[0][k].numpy() for b in batches])
                                for k in range(3))
    np.testing.assert_array_equal(np.sort(user), users)
    np.testing.assert_array_equal(positive - user, 100)  # pairs stay together
    assert set(negative) <= {7, 8, 9}


def test_bpr_dataset_is_deterministic_and_reshuffles_each_epoch():
    def epochs(seed):
        dataset = models.bpr_dataset(np.arange(20), np.arange(20), np.arange(50),
                                     batch_size=20, seed=seed)
        return [np.stack([t.numpy() for t in batch[0]]) for batch in dataset.repeat(2)]

    first, second = epochs(0), epochs(0)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], first[1])


@pytest.mark.parametrize("users,items,pool,match", [
    (np.arange(3), np.arange(4), np.arange(3), "same length"),
    (np.array([], int), np.array([], int), np.arange(3), "non-empty"),
    (np.arange(3), np.arange(3), np.array([], int), "negative_pool"),
    (np.array([0.5, 1, 2]), np.arange(3), np.arange(3), "users"),
    (np.arange(3), np.array([-1, 0, 1]), np.arange(3), "items"),
])
def test_bpr_dataset_bad_inputs_raise(users, items, pool, match):
    with pytest.raises(ParameterError, match=match):
        models.bpr_dataset(users, items, pool)


# --------------------------------------------------------------------------- fit and score

def test_catalogue_holds_cold_items_and_scores_are_finite(fitted, data):
    assert list(fitted.item_ids_) == data["item_ids"]
    scores = fitted.score(["u000", "u001"])
    assert scores.shape == (2, NUM_ITEMS)
    assert np.isfinite(scores).all()
    # cold items get distinct content-based scores, not one shared default
    assert len(np.unique(scores[0, NUM_WARM:].round(5))) == NUM_ITEMS - NUM_WARM


def test_training_loss_decreases(fitted):
    loss = fitted.history_["loss"]
    assert len(loss) == 15
    assert loss[-1] < 0.9 * loss[0]
    assert loss[-1] < np.log(2) - 0.1  # log 2 is the loss of random scores


def test_content_model_ranks_cold_items_better_than_chance(fitted, data):
    """Mean per-user AUC of the true top half among cold items."""
    scores = fitted.score([f"u{u:03d}" for u in range(NUM_USERS)])[:, NUM_WARM:]
    truth = data["truth"][:, NUM_WARM:]
    aucs = []
    for s, t in zip(scores, truth):
        good = t > np.median(t)
        aucs.append((s[good][:, None] > s[~good][None, :]).mean())
    assert np.mean(aucs) > 0.7


def test_recommend_one_user_excludes_seen(fitted, data):
    recs = fitted.recommend("u000", k=5)
    assert list(recs.columns) == ["user_id", "item_id", "prediction", "rank"]
    assert list(recs["rank"]) == [1, 2, 3, 4, 5]
    seen = set(data["train"].loc[data["train"]["user_id"] == "u000", "item_id"])
    assert not seen & set(recs["item_id"])
    assert recs["prediction"].is_monotonic_decreasing


def test_recommend_without_exclusion_can_return_seen(fitted):
    recs = fitted.recommend(["u000", "u001"], k=NUM_ITEMS, exclude_seen=False)
    assert len(recs) == 2 * NUM_ITEMS


def test_modality_weights_zero_for_missing_audio(fitted):
    weights = fitted.modality_weights()
    assert list(weights.columns) == ["text", "audio"]
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(weights.loc["i003"], [1.0, 0.0])


def test_score_history_matches_known_user(fitted, data):
    """A new user with the same history as u000 gets u000's scores (no user id embedding)."""
    history = data["train"].loc[data["train"]["user_id"] == "u000"].sort_values("timestamp")
    scores = fitted.score_history([history["item_id"].tolist()])
    np.testing.assert_allclose(scores, fitted.score(["u000"]), rtol=1e-5, atol=1e-6)


def test_score_history_unknown_item_raises(fitted):
    with pytest.raises(DataError, match="not seen"):
        fitted.score_history([["i999"]])


def test_score_history_needs_a_list(fitted):
    with pytest.raises(ParameterError, match="histories"):
        fitted.score_history("i000")


def test_item_vectors_frame(fitted):
    vectors = fitted.item_vectors()
    assert vectors.shape == (NUM_ITEMS, 8)
    assert vectors.index[0] == "i000"


# --------------------------------------------------------------------------- variants

@pytest.mark.parametrize("options", [
    {"fusion": "concat", "use_user_id": True, "use_item_id": True, "similarity": "cosine"},
    {"fusion": "gated", "graph_k": 3, "graph_layers": 2},
])
def test_variants_train_and_round_trip(options, data, tmp_path):
    model = models.MultimodalRecommender(embedding_dim=8, epochs=2, batch_size=64,
                                         seed=1, **options).fit(data["train"], data["features"])
    assert (model.network_.graph is not None) == ("graph_k" in options)
    users = ["u000", "u005"]
    scores = model.score(users)
    assert np.isfinite(scores).all()
    loaded = models.MultimodalRecommender.load(model.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.score(users), scores)
    assert loaded.get_params() == model.get_params()
    if model.use_user_id:
        with pytest.raises(ModelError, match="use_user_id"):
            model.score_history([["i000"]])


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "saved")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "config.json",
                                                      "model.weights.h5"]
    loaded = models.MultimodalRecommender.load(path)
    users = list(fitted.user_ids_)
    np.testing.assert_array_equal(loaded.score(users), fitted.score(users))
    pd.testing.assert_frame_equal(loaded.recommend("u003", k=5), fitted.recommend("u003", k=5))
    assert loaded.modalities_ == ["text", "audio"]


def test_training_is_deterministic(data):
    def run():
        return models.MultimodalRecommender(fusion="concat", embedding_dim=4, epochs=2,
                                            batch_size=64, seed=3).fit(
            data["train"], data["features"]).score(["u002"])

    np.testing.assert_array_equal(run(), run())


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("options,match", [
    ({"fusion": "sum"}, "fusion"),
    ({"similarity": "euclid"}, "similarity"),
    ({"embedding_dim": 0}, "embedding_dim"),
    ({"graph_k": 0}, "graph_k"),
    ({"use_item_id": 1}, "use_item_id"),
    ({"learning_rate": 0}, "learning_rate"),
])
def test_bad_parameters_raise(options, match, data):
    with pytest.raises(ParameterError, match=match):
        models.MultimodalRecommender(**options).fit(data["train"], data["features"])


def test_features_must_be_a_dict(data):
    with pytest.raises(ParameterError, match="item_features"):
        models.MultimodalRecommender().fit(data["train"], data["features"]["text"])


def test_training_item_without_features_raises(data):
    features = {"text": data["features"]["text"].drop(index="i000"),
                "audio": data["features"]["audio"].drop(index="i000")}
    train = data["train"]
    if "i000" not in set(train["item_id"]):
        train = pd.concat([train, train.iloc[:1].assign(item_id="i000")])
    with pytest.raises(DataError, match="no features"):
        models.MultimodalRecommender(epochs=1).fit(train, features)


def test_non_numeric_features_raise(data):
    features = {"text": data["features"]["text"].astype(str)}
    with pytest.raises(DataError, match="numbers"):
        models.MultimodalRecommender(epochs=1).fit(data["train"], features)


def test_unfitted_model_raises():
    with pytest.raises(NotFittedError):
        models.MultimodalRecommender().score(["u000"])


def test_unknown_user_raises(fitted):
    with pytest.raises(DataError, match="not seen"):
        fitted.recommend("nobody", k=3)


def test_modality_weights_need_attention(data):
    model = models.MultimodalRecommender(fusion="gated", epochs=1).fit(
        data["train"], data["features"])
    with pytest.raises(ModelError, match="attention"):
        model.modality_weights()


def test_load_from_wrong_folder_raises(tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        models.MultimodalRecommender.load(tmp_path)
