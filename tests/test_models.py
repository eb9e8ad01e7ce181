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
    {"fusion": "concat", "loss": "softmax", "item_bias": False},
    {"fusion": "attention", "loss": "softmax", "similarity": "cosine", "temperature": 0.2},
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
    ({"loss": "hinge"}, "loss"),
    ({"temperature": 0}, "temperature"),
    ({"item_bias": "yes"}, "item_bias"),
    ({"patience": 0}, "patience"),
    ({"patience": 2}, "patience needs validation"),
])
def test_bad_parameters_raise(options, match, data):
    with pytest.raises(ParameterError, match=match):
        models.MultimodalRecommender(**options).fit(data["train"], data["features"])


def test_features_must_be_a_dict_or_a_frame(data):
    with pytest.raises(ParameterError, match="item_vectors"):
        models.MultimodalRecommender().fit(data["train"], [data["features"]["text"]])


def test_fit_without_any_features_raises(data):
    with pytest.raises(ParameterError, match="needs modality features"):
        models.MultimodalRecommender().fit(data["train"])


def test_features_given_twice_raise(data):
    with pytest.raises(ParameterError, match="once"):
        models.MultimodalRecommender().fit(data["train"], data["features"],
                                           item_features=data["features"])


def test_empty_item_features_raise(data):
    with pytest.raises(ParameterError, match="item_features"):
        models.MultimodalRecommender().fit(data["train"], item_features={})


def test_item_features_keyword_must_be_a_dict(data):
    with pytest.raises(ParameterError, match="item_features must be a dict"):
        models.MultimodalRecommender().fit(data["train"], item_features=data["features"]["text"])


def test_constructor_item_features_must_be_a_dict(data):
    with pytest.raises(ParameterError, match="MultimodalRecommender\\(item_features=...\\) must"):
        models.MultimodalRecommender(item_features=data["features"]["text"]).fit(data["train"])


def test_integer_item_ids_keep_their_dtype(data):
    features = {name: frame.set_axis(range(NUM_ITEMS)) for name, frame in data["features"].items()}
    train = data["train"].assign(item_id=data["train"]["item_id"].str[1:].astype(int))
    model = models.MultimodalRecommender(fusion="concat", embedding_dim=4, epochs=1,
                                         batch_size=64).fit(train, features)
    assert model.item_ids_.dtype.kind == "i"


# --------------------------------------------------------------------------- fit contract

def _small(**options):
    return models.MultimodalRecommender(fusion="concat", embedding_dim=4, epochs=2,
                                        batch_size=64, seed=3, **options)


def test_features_keyword_and_constructor_equal_positional_dict(data):
    expected = _small().fit(data["train"], data["features"]).score(["u002"])
    by_keyword = _small().fit(data["train"], item_features=data["features"])
    by_constructor = _small(item_features=data["features"]).fit(data["train"])
    np.testing.assert_array_equal(by_keyword.score(["u002"]), expected)
    np.testing.assert_array_equal(by_constructor.score(["u002"]), expected)
    assert by_constructor.modalities_ == ["text", "audio"]


def test_fit_argument_wins_over_constructor_features(data):
    model = _small(item_features={"audio": data["features"]["audio"]})
    model.fit(data["train"], item_features={"text": data["features"]["text"]})
    assert model.modalities_ == ["text"]


def test_a_frame_alone_is_one_modality(data):
    model = _small().fit(data["train"], data["features"]["text"])
    assert model.modalities_ == ["item_vectors"]
    assert model.score(["u000"]).shape == (1, NUM_ITEMS)


def test_a_frame_next_to_features_extends_the_catalogue(data):
    extra = pd.DataFrame({"x": [0.0, 1.0]}, index=["j000", "j001"])
    model = _small(item_features=data["features"]).fit(data["train"], extra)
    assert model.modalities_ == ["text", "audio"]
    assert list(model.item_ids_[-2:]) == ["j000", "j001"]
    assert np.isfinite(model.score(["u000"])).all()


def test_member_of_a_hybrid_model(data):
    from mmrec_lib import interest

    vectors = data["features"]["text"]
    hybrid = interest.HybridModel([interest.EASEModel(l2=10.0),
                                   _small(item_features=data["features"])])
    hybrid.fit(data["train"], vectors)
    scores = hybrid.score(["u000", "u001"])
    assert scores.shape == (2, NUM_ITEMS)
    assert np.isfinite(scores).all()
    assert isinstance(hybrid.models_[1], models.MultimodalRecommender)
    np.testing.assert_array_equal(hybrid.models_[1].item_ids_, hybrid.item_ids_)


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


# --------------------------------------------------------------------------- losses, biases, validation

def test_softmax_loss_learns_and_ranks_cold_items(data):
    model = models.MultimodalRecommender(fusion="concat", loss="softmax", embedding_dim=8,
                                         epochs=15, batch_size=64, learning_rate=0.02,
                                         seed=0).fit(data["train"], data["features"])
    losses = model.history_["loss"]
    assert losses[-1] < losses[0] - 0.1
    cold = np.arange(NUM_WARM, NUM_ITEMS)
    scores = model.score(list(model.user_ids_))[:, cold]
    users = model.user_encoder_.transform(model.user_ids_).astype(int)
    truth = data["truth"][users][:, cold]
    agreement = np.mean([np.corrcoef(s, t)[0, 1] for s, t in zip(scores, truth, strict=True)])
    assert agreement > 0.2


def test_item_biases_are_content_plus_id(data):
    model = models.MultimodalRecommender(fusion="concat", use_item_id=True, embedding_dim=8,
                                         epochs=3, batch_size=64, seed=0).fit(
        data["train"], data["features"])
    biases = model.item_biases()
    assert biases.shape == (NUM_ITEMS,) and np.isfinite(biases).all()
    # A cold item's id bias is never trained: its bias is its content bias alone.
    network = model.network_
    id_bias = network.item_id_bias.get_weights()[0][:, 0]
    assert np.all(id_bias[NUM_WARM:] == 0) and np.any(id_bias[:NUM_WARM] != 0)
    without = models.MultimodalRecommender(item_bias=False, embedding_dim=8, epochs=1,
                                           batch_size=64).fit(data["train"], data["features"])
    assert (without.item_biases() == 0).all()


def test_score_is_dot_plus_bias(data):
    model = models.MultimodalRecommender(fusion="concat", embedding_dim=8, epochs=2,
                                         batch_size=64, seed=0).fit(data["train"],
                                                                    data["features"])
    vectors, biases = model.item_vectors().to_numpy(), model.item_biases().to_numpy()
    history = data["train"][data["train"].user_id == "u004"].item_id.tolist()
    user = vectors[model.item_encoder_.transform(history)].mean(axis=0)
    np.testing.assert_allclose(model.score(["u004"])[0], vectors @ user + biases, rtol=1e-4,
                               atol=1e-5)


def test_validation_loss_and_early_stopping(data):
    train = data["train"]
    held_out = train.groupby("user_id").tail(2)
    rest = train.drop(held_out.index)
    model = models.MultimodalRecommender(fusion="concat", embedding_dim=8, epochs=40,
                                         batch_size=64, learning_rate=0.05, patience=2,
                                         seed=0).fit(rest, data["features"], validation=held_out)
    history = model.history_
    assert len(history["val_loss"]) == len(history["loss"]) <= 40
    assert model.best_epoch_ == int(np.argmin(history["val_loss"])) + 1
    if len(history["loss"]) < 40:  # stopped early: the best epoch is `patience` epochs back
        assert model.best_epoch_ == len(history["loss"]) - 2


def test_validation_with_unknown_user_raises(data):
    validation = pd.DataFrame({"user_id": ["nobody"], "item_id": ["i000"]})
    with pytest.raises(DataError, match="unknown to the model"):
        models.MultimodalRecommender(embedding_dim=4, epochs=1).fit(
            data["train"], data["features"], validation=validation)


def test_bpr_dataset_without_reshuffle_repeats_batches():
    dataset = models.bpr_dataset(np.arange(20), np.arange(20) % 7, np.arange(7), batch_size=8,
                                 seed=0, reshuffle=False)
    first = [b[0][2].numpy() for b in dataset]
    second = [b[0][2].numpy() for b in dataset]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- the seed's classifier

@pytest.fixture(scope="module")
def labelled():
    rng = np.random.default_rng(1)
    ids = [f"i{i:03d}" for i in range(120)]
    labels = pd.Series(np.array(["news", "music", "sport"])[np.arange(120) % 3], index=ids)
    centres = rng.normal(size=(3, 6)) * 2
    codes = np.arange(120) % 3
    text = pd.DataFrame(centres[codes] + rng.normal(size=(120, 6)), index=ids)
    audio = pd.DataFrame(rng.normal(size=(120, 4)), index=ids)  # pure noise
    audio.iloc[5] = np.nan
    return {"text": text, "audio": audio}, labels


def test_classifier_learns_the_category(labelled):
    features, labels = labelled
    train, test = labels.iloc[:90], labels.iloc[90:]
    model = models.ModalityClassifier(epochs=40, seed=0).fit(features, train)
    assert list(model.classes_) == ["music", "news", "sport"]
    assert model.score(features, test) > 0.8
    probabilities = model.predict_proba(features)
    assert probabilities.shape == (120, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert set(model.predict(features).unique()) <= set(model.classes_)
    assert "val_accuracy" in model.history_


def test_classifier_is_deterministic(labelled):
    features, labels = labelled
    first = models.ModalityClassifier(epochs=3, seed=2).fit(features, labels).predict_proba(features)
    second = models.ModalityClassifier(epochs=3, seed=2).fit(features, labels).predict_proba(features)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.parametrize("options,match", [
    ({"fusion": "sum"}, "fusion"),
    ({"dropout": 1.0}, "dropout"),
    ({"validation_fraction": 0.0}, "validation_fraction"),
    ({"hidden_dim": 0}, "hidden_dim"),
])
def test_classifier_bad_parameters_raise(options, match, labelled):
    with pytest.raises(ParameterError, match=match):
        models.ModalityClassifier(**options).fit(*labelled)


def test_classifier_bad_labels_raise(labelled):
    features, labels = labelled
    with pytest.raises(DataError, match="missing"):
        models.ModalityClassifier().fit(features, labels.where(labels != "news"))
    with pytest.raises(DataError, match="two classes"):
        models.ModalityClassifier().fit(features, labels[labels == "news"])
    with pytest.raises(ParameterError, match="Series"):
        models.ModalityClassifier().fit(features, labels.to_numpy())


def test_classifier_is_a_scikit_learn_estimator():
    from sklearn.base import clone

    model = models.ModalityClassifier(epochs=3, fusion="gated")
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert copy.get_params()["epochs"] == 3
    assert repr(model) == "ModalityClassifier(epochs=3, fusion='gated')"


def test_classifier_failed_fit_leaves_it_unfitted(labelled):
    features, labels = labelled
    model = models.ModalityClassifier()
    with pytest.raises(DataError, match="two classes"):
        model.fit(features, labels[labels == "news"])
    with pytest.raises(NotFittedError):
        model.predict(features)


def test_classifier_unfitted_and_wrong_modalities_raise(labelled):
    features, labels = labelled
    with pytest.raises(NotFittedError):
        models.ModalityClassifier().predict(features)
    model = models.ModalityClassifier(epochs=1).fit(features, labels)
    with pytest.raises(DataError, match="modalities"):
        model.predict({"text": features["text"]})


# --------------------------------------------------------------------------- trainable branches

def test_lstm_text_branch_trains_inside_the_item_tower(data, tmp_path):
    from mmrec_lib import text

    rng = np.random.default_rng(3)
    words = np.array(["cat", "dog", "song", "goal", "rain", "sun", "jazz", "city"])
    titles = [" ".join(rng.choice(words, size=4)) for _ in range(NUM_ITEMS)]
    vocabulary = text.WordVocabulary(max_length=6).fit(titles)
    token_ids = pd.DataFrame(vocabulary.transform(titles), index=data["item_ids"])
    encoder = text.LstmTextEncoder(vocabulary.vocab_size_, embedding_dim=8, units=8)
    features = {"text": token_ids, "audio": data["features"]["audio"]}
    model = models.MultimodalRecommender(fusion="concat", embedding_dim=8, epochs=3,
                                         batch_size=64, encoders={"text": encoder},
                                         seed=0).fit(data["train"], features)
    assert model.network_.feature_tables[0].dtype == "int32"
    assert not encoder.weights  # the caller's layer was copied, not trained
    lstm_weights = [w for w in model.network_.trainable_weights if "lstm" in w.name]
    assert lstm_weights
    scores = model.score(["u001"])
    assert np.isfinite(scores).all()
    loaded = models.MultimodalRecommender.load(model.save(tmp_path / "lstm"))
    np.testing.assert_allclose(loaded.score(["u001"]), scores, rtol=1e-6)


def test_encoders_must_name_known_modalities(data):
    from mmrec_lib import text

    with pytest.raises(ParameterError, match="not in item_features"):
        models.MultimodalRecommender(encoders={"video": text.LstmTextEncoder(10)}).fit(
            data["train"], data["features"])
    with pytest.raises(ParameterError, match="encoders"):
        models.MultimodalRecommender(encoders={"text": "lstm"}).fit(
            data["train"], data["features"])


def test_softmax_logits_are_corrected_by_log_sampling_probability(data):
    model = models.MultimodalRecommender(fusion="concat", loss="softmax", embedding_dim=4,
                                         epochs=1, batch_size=64, seed=0).fit(
        data["train"], data["features"])
    counts = np.asarray(model.train_matrix_.sum(axis=0)).ravel()
    log_q = model.network_.log_q.numpy()
    seen = counts > 0
    np.testing.assert_allclose(log_q[seen], np.log(counts[seen] / counts.sum()), rtol=1e-5)
    assert (log_q[~seen] == 0).all()
    users, positives = np.array([0, 1], np.int32), np.array([2, 5], np.int32)
    logits = model.network_((users, positives, positives)).numpy()
    network = model.network_
    items, bias = network.item_vectors(with_bias=True)
    plain = network.score_users(network.user_vectors(users, items, exclude=positives),
                                tf_gather(items, positives), tf_gather(bias, positives)).numpy()
    np.testing.assert_allclose(logits, plain - log_q[positives][None, :], rtol=1e-4, atol=1e-5)
    # Serving scores carry no correction: it only undoes the sampling during training.
    bpr = models.MultimodalRecommender(fusion="concat", embedding_dim=4, epochs=1,
                                       batch_size=64, seed=0).fit(data["train"], data["features"])
    assert bpr.network_.log_q is None


def tf_gather(values, index):
    from mmrec_lib._env import import_tensorflow

    return import_tensorflow().gather(values, index)


# --------------------------------------------------------------------------- explanations

@pytest.fixture(scope="module")
def hybrid(data):
    """Dot product, concat fusion, user and item id embeddings: every part is non-trivial."""
    return models.MultimodalRecommender(fusion="concat", use_user_id=True, use_item_id=True,
                                        embedding_dim=8, epochs=3, batch_size=64,
                                        learning_rate=0.02, seed=0).fit(
        data["train"], data["features"])


@pytest.fixture(scope="module")
def content_dot(data):
    """Dot product, concat fusion, content only: new users can be scored from a history."""
    return models.MultimodalRecommender(fusion="concat", embedding_dim=8, epochs=3,
                                        batch_size=64, learning_rate=0.02, seed=0).fit(
        data["train"], data["features"])


def test_user_vectors_give_the_dot_product_scores(hybrid, content_dot):
    for model in (hybrid, content_dot):
        users = ["u003", "u000"]
        vectors = model.user_vectors(users)
        assert vectors.shape == (2, 8)
        assert list(vectors.index) == users and vectors.index.name == "user_id"
        scores = (vectors.to_numpy() @ model.item_vectors().to_numpy().T
                  + model.item_biases().to_numpy())
        np.testing.assert_allclose(scores, model.score(users), rtol=1e-4, atol=1e-5)


def test_user_vectors_of_histories_give_score_history(content_dot):
    histories = [["i001", "i002"], ["i035"]]
    vectors = content_dot.user_vectors(histories=histories)
    assert list(vectors.index) == [0, 1]
    item_vectors = content_dot.item_vectors()
    # A history's vector is the mean vector of its items (no user id embedding).
    np.testing.assert_allclose(vectors.loc[0], item_vectors.loc[["i001", "i002"]].mean(),
                               rtol=1e-5, atol=1e-6)
    scores = vectors.to_numpy() @ item_vectors.to_numpy().T + content_dot.item_biases().to_numpy()
    np.testing.assert_allclose(scores, content_dot.score_history(histories), rtol=1e-4,
                               atol=1e-5)


def test_user_vectors_of_one_id(content_dot):
    pd.testing.assert_frame_equal(content_dot.user_vectors("u004"),
                                  content_dot.user_vectors(["u004"]))


def test_score_parts_add_up_for_a_hybrid_model(hybrid):
    parts = hybrid.score_parts("u002")
    assert list(parts.columns) == ["text", "audio", "collaborative", "shared"]
    assert list(parts.index) == list(hybrid.item_ids_) and parts.index.name == "item_id"
    np.testing.assert_allclose(parts.sum(axis=1), hybrid.score(["u002"])[0], rtol=1e-4,
                               atol=1e-4)
    assert parts.loc["i003", "audio"] == 0  # i003 has no audio track
    assert parts["shared"].nunique() == 1
    assert (parts["collaborative"].iloc[:NUM_WARM] != 0).any()
    # A cold item's id embedding and id bias are never trained: nothing collaborative.
    assert (parts["collaborative"].iloc[NUM_WARM:] == 0).all()


def test_score_parts_add_up_for_a_content_model(content_dot):
    parts = content_dot.score_parts("u005")
    np.testing.assert_allclose(parts.sum(axis=1), content_dot.score(["u005"])[0], rtol=1e-4,
                               atol=1e-4)
    assert (parts["collaborative"] == 0).all()
    assert (parts["text"] != 0).all()


def test_score_parts_of_a_history_add_up_to_score_history(content_dot):
    history = ["i004", "i010", "i033"]
    parts = content_dot.score_parts(history=history)
    np.testing.assert_allclose(parts.sum(axis=1), content_dot.score_history([history])[0],
                               rtol=1e-4, atol=1e-4)


def test_score_parts_stay_exact_with_a_trainable_branch(data):
    from mmrec_lib import text

    titles = [f"{'cat dog' if i % 2 else 'song jazz'} city {i % 3}" for i in range(NUM_ITEMS)]
    vocabulary = text.WordVocabulary(max_length=5).fit(titles)
    token_ids = pd.DataFrame(vocabulary.transform(titles), index=data["item_ids"])
    encoder = text.LstmTextEncoder(vocabulary.vocab_size_, embedding_dim=4, units=4)
    model = models.MultimodalRecommender(
        fusion="concat", embedding_dim=4, epochs=1, batch_size=64, encoders={"text": encoder},
        seed=0).fit(data["train"], {"text": token_ids, "audio": data["features"]["audio"]})
    parts = model.score_parts("u001")
    np.testing.assert_allclose(parts.sum(axis=1), model.score(["u001"])[0], rtol=1e-4,
                               atol=1e-4)
    assert (parts["text"] != 0).all()


@pytest.mark.parametrize("options,match", [
    ({"similarity": "cosine"}, "cosine"),
    ({"fusion": "gated"}, "gated"),
    ({"graph_k": 3}, "graph_k=3"),
])
def test_score_parts_refuse_inexact_splits(options, match, data):
    model = models.MultimodalRecommender(**{"fusion": "concat", **options}, embedding_dim=4,
                                         epochs=1, batch_size=64).fit(data["train"],
                                                                      data["features"])
    with pytest.raises(ParameterError, match=match):
        model.score_parts("u000")


def test_score_parts_refuse_attention_fusion(fitted):
    with pytest.raises(ParameterError, match="fusion='attention'"):
        fitted.score_parts("u000")


def test_unknown_user_raises_in_explanations(content_dot):
    with pytest.raises(DataError, match="not seen"):
        content_dot.user_vectors(["nobody"])
    with pytest.raises(DataError, match="not seen"):
        content_dot.score_parts("nobody")


def test_unknown_history_item_raises_in_explanations(content_dot):
    with pytest.raises(DataError, match="not seen"):
        content_dot.score_parts(history=["i999"])


@pytest.mark.parametrize("histories,match", [
    ([], "histories is empty"),
    ([["i000"], []], r"histories\[1\]"),
    (["i000"], r"histories\[0\]"),
])
def test_user_vectors_bad_histories_raise(histories, match, content_dot):
    with pytest.raises(ParameterError, match=match):
        content_dot.user_vectors(histories=histories)


def test_score_parts_empty_history_raises(content_dot):
    with pytest.raises(ParameterError, match="non-empty"):
        content_dot.score_parts(history=[])


def test_explanations_need_exactly_one_of_user_and_history(content_dot):
    with pytest.raises(ParameterError, match="neither"):
        content_dot.user_vectors()
    with pytest.raises(ParameterError, match="both"):
        content_dot.user_vectors(["u000"], histories=[["i000"]])
    with pytest.raises(ParameterError, match="neither"):
        content_dot.score_parts()
    with pytest.raises(ParameterError, match="both"):
        content_dot.score_parts("u000", history=["i000"])
    with pytest.raises(ParameterError, match="one id"):
        content_dot.score_parts(["u000", "u001"])


def test_histories_need_a_model_without_user_ids(hybrid):
    with pytest.raises(ModelError, match="use_user_id"):
        hybrid.user_vectors(histories=[["i000"]])
    with pytest.raises(ModelError, match="use_user_id"):
        hybrid.score_parts(history=["i000"])


def test_explanations_of_an_unfitted_model_raise():
    model = models.MultimodalRecommender(fusion="concat")
    with pytest.raises(NotFittedError):
        model.user_vectors(["u000"])
    with pytest.raises(NotFittedError):
        model.score_parts("u000")
