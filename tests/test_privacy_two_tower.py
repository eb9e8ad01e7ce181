"""DPTwoTower: per-user gradients, clipping, user-level accounting, leave-one-out scores, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import privacy
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.privacy import dp_two_tower


def toy(num_users=30, num_items=20, per_user=6, seed=0):
    """Two user groups, each liking the half of the catalogue whose content points its way."""
    rng = np.random.default_rng(seed)
    content = rng.normal(size=(num_items, 4))
    content[: num_items // 2, 0] += 3.0
    content[num_items // 2:, 0] -= 3.0
    rows = []
    for user in range(num_users):
        half = np.arange(num_items // 2) + (num_items // 2 if user % 2 else 0)
        rows += [(f"u{user}", f"i{item}") for item in rng.choice(half, per_user, replace=False)]
    frame = pd.DataFrame(content, index=[f"i{j}" for j in range(num_items)])
    return pd.DataFrame(rows, columns=["user_id", "item_id"]), frame


def test_public_content_vectors_are_whitened_components():
    rng = np.random.default_rng(0)
    index = [f"i{j}" for j in range(40)]
    feats = {"text": pd.DataFrame(rng.normal(size=(40, 10)), index=index),
             "audio": pd.DataFrame(rng.normal(size=(40, 6)) * 50, index=index)}
    content = privacy.public_content_vectors(feats, dim=5)
    assert content.shape == (40, 5) and list(content.index) == index
    np.testing.assert_allclose(content.to_numpy().std(axis=0), 1.0, rtol=1e-4)
    np.testing.assert_allclose(np.corrcoef(content.to_numpy().T), np.eye(5), atol=1e-4)


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": 11}])
def test_public_content_vectors_reject_bad_dim(kwargs):
    feats = {"text": pd.DataFrame(np.ones((12, 10)) + np.eye(12, 10))}
    with pytest.raises(ParameterError, match="dim"):
        privacy.public_content_vectors(feats, **kwargs)


def test_public_content_vectors_reject_bad_input():
    with pytest.raises(ParameterError, match="item_features"):
        privacy.public_content_vectors({})
    a = pd.DataFrame(np.eye(3), index=["a", "b", "c"])
    with pytest.raises(DataError, match="audio"):
        privacy.public_content_vectors({"text": a, "audio": a.rename(index={"c": "d"})})


def test_per_user_gradients_equal_each_users_own_gradient():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    k, d, n, batch, width = 3, 2, 7, 4, 5
    params = [tf.Variable(rng.normal(size=s).astype(np.float32))
              for s in ((k, d), (k, d), (k,), (n,))]
    context = rng.normal(size=(batch, width, k)).astype(np.float32)
    positives = rng.integers(0, n, (batch, width))
    negatives = rng.integers(0, n, (batch, width))
    mask = (rng.random((batch, width)) < 0.7).astype(np.float32)
    mask[:, 0] = 1.0
    content = tf.constant(rng.normal(size=(n, k)).astype(np.float32))
    for loss in ("softmax", "bpr"):
        together, _ = dp_two_tower._per_user_gradients(
            tf, params, tf.constant(context), tf.constant(positives), tf.constant(negatives),
            content, tf.constant(mask), loss)
        for b in range(batch):
            alone, _ = dp_two_tower._per_user_gradients(
                tf, params, tf.constant(context[b:b + 1]), tf.constant(positives[b:b + 1]),
                tf.constant(negatives[b:b + 1]), content, tf.constant(mask[b:b + 1]), loss)
            for g_all, g_one in zip(together, alone):
                np.testing.assert_allclose(g_all.numpy()[b], g_one.numpy()[0], rtol=1e-4,
                                           atol=1e-6)


def test_non_private_model_learns_the_content_groups():
    train, content = toy()
    model = privacy.DPTwoTower(embedding_dim=2, epochs=60, sampling_rate=1.0,
                               noise_multiplier=0.0, clip=math.inf, seed=0).fit(train, content)
    scores = model.score(["u0", "u1"], [f"i{j}" for j in range(20)])
    # user 0 likes items 0-9, user 1 items 10-19: each scores its own half higher
    assert scores[0, :10].mean() > scores[0, 10:].mean()
    assert scores[1, 10:].mean() > scores[1, :10].mean()
    assert model.epsilon_ == math.inf
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_dp_model_is_user_level_deterministic_and_clips():
    train, content = toy()
    kwargs = dict(embedding_dim=2, epochs=4, sampling_rate=0.5, noise_multiplier=1.0,
                  clip=0.01, seed=3)
    first = privacy.DPTwoTower(**kwargs).fit(train, content)
    second = privacy.DPTwoTower(**kwargs).fit(train, content)
    np.testing.assert_array_equal(first.score(["u0"]), second.score(["u0"]))
    assert first.steps_ == 8 and first.delta_ == pytest.approx(1 / len(train))
    assert first.epsilon_ == pytest.approx(privacy.epsilon_for(1.0, 0.5, 8, 1 / len(train)))
    assert max(first.history_["clipped_fraction"]) == 1.0  # clip far below every norm
    other = privacy.DPTwoTower(**{**kwargs, "seed": 4}).fit(train, content)
    assert not np.array_equal(first.score(["u0"]), other.score(["u0"]))


def test_seen_items_are_scored_from_the_rest_of_the_history():
    train, content = toy()
    model = privacy.DPTwoTower(embedding_dim=2, epochs=2, sampling_rate=1.0,
                               noise_multiplier=0.0, clip=math.inf).fit(train, content)
    user = "u0"
    history = list(train.loc[train["user_id"] == user, "item_id"])
    scores = pd.Series(model.score([user])[0], index=model.item_ids_)
    rows = model.item_encoder_.transform(history)
    for item, row in zip(history, rows):
        rest = np.setdiff1d(rows, [row])
        expected = model.user_vector(rest) @ model.item_factors_[row] + model.item_bias_[row]
        assert scores[item] == pytest.approx(expected, rel=1e-4, abs=1e-5)
    unseen = np.setdiff1d(np.arange(len(model.item_ids_)), rows)
    np.testing.assert_allclose(scores.to_numpy()[unseen],
                               model.item_factors_[unseen] @ model.user_vector(rows)
                               + model.item_bias_[unseen], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, value", [
    ("clip", 0.0), ("clip", -1.0), ("clip", math.nan), ("noise_multiplier", -0.5),
    ("sampling_rate", 0.0), ("sampling_rate", 1.5), ("epochs", 0), ("learning_rate", 0.0),
    ("delta", 1.0), ("embedding_dim", 0), ("max_positives", 0), ("loss", "hinge"),
    ("item_bias", 1), ("clip", math.inf), ("optimizer", "rmsprop"), ("momentum", 1.0),
    ("momentum", -0.1), ("bias_noise_multiplier", -1.0), ("bias_noise_multiplier", math.nan)])
def test_dp_two_tower_rejects_bad_parameters(name, value):
    train, content = toy()
    with pytest.raises(ParameterError, match=name if name != "clip" or value != math.inf
                       else "finite clip"):
        privacy.DPTwoTower(**{name: value}).fit(train, content)


def test_dp_two_tower_needs_content_for_every_item():
    train, content = toy()
    with pytest.raises(ParameterError, match="item_vectors"):
        privacy.DPTwoTower().fit(train)
    with pytest.raises(DataError, match="no row"):
        privacy.DPTwoTower().fit(train, content.iloc[:5])


@pytest.mark.parametrize("epsilon", [0.0, -1.0, math.nan])
def test_noise_for_an_epsilon_at_or_below_zero_is_refused(epsilon):
    with pytest.raises(ParameterError, match="target_epsilon"):
        privacy.noise_for_epsilon(epsilon, 1.0, 30, 1e-4)


def test_released_biases_are_a_noised_histogram_of_normalised_counts_and_stay_fixed():
    train, content = toy(per_user=4)
    train = pd.concat([train, pd.DataFrame({"user_id": ["u0"] * 4,
                                            "item_id": ["i5", "i6", "i7", "i8"]})])
    train = train.drop_duplicates()
    exact = privacy.DPTwoTower(embedding_dim=2, epochs=3, sampling_rate=1.0,
                               noise_multiplier=0.0, clip=math.inf,
                               bias_noise_multiplier=0.0).fit(train, content)
    # each user adds 1/sqrt(|history|) to each of their items
    sizes = train.groupby("user_id")["item_id"].transform("size")
    expected = (1 / np.sqrt(sizes)).groupby(train["item_id"]).sum()
    expected = expected.reindex(exact.item_ids_, fill_value=0.0).to_numpy()
    np.testing.assert_allclose(exact.released_histogram_, expected, rtol=1e-9)
    bias = np.log(expected + 1.0)
    # fixed during training: what training added lies in the content space (content bias)
    trained_part = exact.item_bias_ - (bias - bias.mean())
    content_part = exact.content_ @ np.linalg.lstsq(exact.content_, trained_part, rcond=None)[0]
    np.testing.assert_allclose(trained_part, content_part, atol=1e-4)
    assert exact.epsilon_ == math.inf  # exact counts are not private
    noisy = privacy.DPTwoTower(embedding_dim=2, epochs=3, sampling_rate=1.0,
                               noise_multiplier=2.0, clip=1.0,
                               bias_noise_multiplier=1.5).fit(train, content)
    assert not np.allclose(noisy.released_histogram_, expected)
    delta = 1 / len(train)
    assert noisy.epsilon_ == pytest.approx(
        privacy.epsilon_for(2.0, 1.0, 3, delta, release_noise=1.5))
    # the release spends budget: more than the steps alone
    assert noisy.epsilon_ > privacy.epsilon_for(2.0, 1.0, 3, delta)


def test_released_biases_need_item_biases():
    train, content = toy()
    with pytest.raises(ParameterError, match="bias_noise_multiplier"):
        privacy.DPTwoTower(item_bias=False, bias_noise_multiplier=1.0).fit(train, content)


def test_momentum_optimizer_learns_the_content_groups():
    train, content = toy()
    model = privacy.DPTwoTower(embedding_dim=2, epochs=60, sampling_rate=1.0, optimizer="momentum",
                               learning_rate=0.05, noise_multiplier=0.0, clip=math.inf,
                               seed=0).fit(train, content)
    scores = model.score(["u0", "u1"], [f"i{j}" for j in range(20)])
    assert scores[0, :10].mean() > scores[0, 10:].mean()
    assert scores[1, 10:].mean() > scores[1, :10].mean()
    assert model.history_["loss"][-1] < model.history_["loss"][0]


def test_composed_release_matches_one_gaussian_at_full_batch():
    # at sampling rate 1, T Gaussian steps of multiplier z and one release of multiplier r
    # compose (RDP) to one Gaussian of multiplier (T / z^2 + 1 / r^2) ** -0.5
    steps, z, r, delta = 30, 4.0, 1.2, 1e-4
    single = (steps / z**2 + 1 / r**2) ** -0.5
    assert privacy.epsilon_for(z, 1.0, steps, delta, release_noise=r) == pytest.approx(
        privacy.epsilon_for(single, 1.0, 1, delta), rel=1e-6)
    noise = privacy.noise_for_epsilon(8.0, 1.0, steps, delta, release_noise=r)
    assert privacy.epsilon_for(noise, 1.0, steps, delta, release_noise=r) <= 8.0
    assert noise > privacy.noise_for_epsilon(8.0, 1.0, steps, delta)


@pytest.mark.parametrize("release", [0.0, -1.0, math.nan])
def test_epsilon_for_rejects_a_bad_release_noise(release):
    with pytest.raises(ParameterError, match="release_noise"):
        privacy.epsilon_for(1.0, 1.0, 10, 1e-4, release_noise=release)
