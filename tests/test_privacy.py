"""Privacy: DP-SGD clipping and noise, the accountant, FedAvg, membership inference, on-device scoring."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import privacy
from mmrec_lib.errors import DataError, NotFittedError, ParameterError
from mmrec_lib.interest import ScoreFunctionModel
from mmrec_lib.privacy import dp_sgd


def toy_interactions(num_users=12, num_items=15, per_user=5, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{i}") for u in range(num_users)
            for i in rng.choice(num_items, size=per_user, replace=False)]
    return pd.DataFrame(rows, columns=["user_id", "item_id"])


def tiny_tables(seed=0, num_users=4, num_items=6, dim=3):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return (tf.Variable(rng.normal(size=(num_users, dim)).astype(np.float32)),
            tf.Variable(rng.normal(size=(num_items, dim)).astype(np.float32)),
            tf.Variable(rng.normal(size=num_items).astype(np.float32)))


BATCH = (np.array([0, 1, 2, 3, 0]), np.array([1, 2, 3, 4, 5]), np.array([0, 0, 1, 5, 2]))


# --- DP-SGD ---------------------------------------------------------------------------

def test_clipping_bounds_every_per_example_gradient_norm():
    P, Q, b = tiny_tables()
    grads = privacy.bpr_per_example_gradients(P, Q, b, *BATCH)
    factors = dp_sgd._clip_factors(__import__("tensorflow"), grads, 0.1).numpy()
    norms = np.sqrt(sum((g.numpy().reshape(5, -1) ** 2).sum(1) for g in grads))
    assert (norms > 0.1).all()  # the test is only meaningful if every example gets clipped
    np.testing.assert_allclose(norms * factors, 0.1, rtol=1e-5)
    # The aggregate of clipped examples is bounded by batch * clip.
    total = privacy.clip_and_noise(grads, clip=0.1, noise_multiplier=0.0, denominator=1.0)
    assert np.sqrt(sum((t.numpy() ** 2).sum() for t in total)) <= 5 * 0.1 + 1e-6


def test_no_noise_and_huge_clip_give_plain_averaged_gradient():
    import tensorflow as tf

    P, Q, b = tiny_tables()
    users, positives, negatives = BATCH
    grads = privacy.bpr_per_example_gradients(P, Q, b, users, positives, negatives)
    averaged = privacy.clip_and_noise(grads, clip=1e9, noise_multiplier=0.0, denominator=5.0)
    dense = dp_sgd._scatter_rows(tf, [g * 1.0 for g in grads], users, positives, negatives, 4, 6)
    with tf.GradientTape() as tape:
        difference = (tf.reduce_sum(tf.gather(P, users) * (tf.gather(Q, positives)
                                                           - tf.gather(Q, negatives)), 1)
                      + tf.gather(b, positives) - tf.gather(b, negatives))
        loss = tf.reduce_mean(-tf.math.log_sigmoid(difference))
    expected = tape.gradient(loss, [P, Q, b])
    for mine, plain in zip(dense, expected):
        np.testing.assert_allclose(mine.numpy() / 5.0, tf.convert_to_tensor(plain).numpy(),
                                   rtol=1e-5, atol=1e-6)
    # clip_and_noise sums per-example rows: its first entry is the sum over the batch of P rows.
    np.testing.assert_allclose(averaged[0].numpy(), grads[0].numpy().sum(0) / 5.0, rtol=1e-5)


def test_noise_has_the_documented_standard_deviation():
    zeros = [np.zeros((3, 20000), np.float32)]
    noisy = privacy.clip_and_noise(zeros, clip=2.0, noise_multiplier=1.5, denominator=1.0,
                                   seed=1)[0].numpy()
    assert abs(noisy.std() - 3.0) < 0.1


def test_dp_model_fits_scores_and_is_deterministic():
    train = toy_interactions()
    kwargs = dict(embedding_dim=4, epochs=2, batch_size=20, noise_multiplier=1.0, seed=3)
    first = privacy.DPMatrixFactorization(**kwargs).fit(train)
    second = privacy.DPMatrixFactorization(**kwargs).fit(train)
    np.testing.assert_array_equal(first.score(["u0", "u1"]), second.score(["u0", "u1"]))
    assert first.score(["u0"]).shape == (1, 15)
    assert 0 < first.epsilon_ < math.inf
    other = privacy.DPMatrixFactorization(**{**kwargs, "seed": 4}).fit(train)
    assert not np.array_equal(first.score(["u0"]), other.score(["u0"]))


@pytest.mark.parametrize("name, value", [("clip", 0.0), ("noise_multiplier", -1.0),
                                         ("delta", 1.0), ("batch_size", 0),
                                         ("learning_rate", float("nan")), ("clip", math.inf)])
def test_dp_model_rejects_bad_parameters(name, value):
    with pytest.raises(ParameterError, match=name):
        privacy.DPMatrixFactorization(**{name: value}).fit(toy_interactions())


# --- Accounting -----------------------------------------------------------------------

def test_epsilon_falls_with_noise_and_grows_with_steps():
    eps = privacy.epsilon_for(1.0, 0.01, 1000, 1e-5)
    assert privacy.epsilon_for(2.0, 0.01, 1000, 1e-5) < eps
    assert privacy.epsilon_for(1.0, 0.01, 4000, 1e-5) > eps
    assert privacy.epsilon_for(1.0, 0.05, 1000, 1e-5) > eps


def test_noise_for_epsilon_inverts_epsilon_for():
    noise = privacy.noise_for_epsilon(8.0, 0.02, 500, 1e-5)
    assert privacy.epsilon_for(noise, 0.02, 500, 1e-5) <= 8.0
    assert privacy.epsilon_for(noise - 0.01, 0.02, 500, 1e-5) > 8.0


@pytest.mark.parametrize("args", [(0.0, 0.1, 10, 1e-5), (1.0, 0.1, 10, 0.0), (1.0, 0.1, 10, 1.0),
                                  (float("nan"), 0.1, 10, 1e-5), (1.0, 1.5, 10, 1e-5),
                                  (1.0, 0.1, 0, 1e-5), (1.0, 0.1, 10, float("nan"))])
def test_epsilon_for_rejects_bad_values(args):
    with pytest.raises(ParameterError):
        privacy.epsilon_for(*args)


@pytest.mark.parametrize("target", [0.0, -1.0, float("nan")])
def test_noise_for_epsilon_rejects_bad_targets(target):
    with pytest.raises(ParameterError, match="target_epsilon"):
        privacy.noise_for_epsilon(target, 0.1, 10, 1e-5)


def test_noise_for_epsilon_says_when_the_target_is_out_of_reach():
    with pytest.raises(ParameterError, match="high"):
        privacy.noise_for_epsilon(1e-4, 1.0, 10000, 1e-5, high=2.0)


# --- FedAvg ---------------------------------------------------------------------------

def test_fedavg_with_every_client_and_one_step_is_full_batch_gradient_descent():
    train = toy_interactions(num_users=6, num_items=8, per_user=3)
    model, metrics = privacy.federated_fit(train, rounds=1, clients_per_round=6, local_steps=1,
                                           learning_rate=0.5, embedding_dim=3, l2=0.7, seed=2)
    # The same initial table, then one centralised step on the mean of the users' losses.
    Y = model.train_matrix_.toarray().astype(float)
    rng = np.random.default_rng(2)
    Q = rng.normal(0, 1 / math.sqrt(3), (Y.shape[1], 3))
    gradient = np.zeros_like(Q)
    for y in Y:
        p = np.linalg.solve(Q.T @ Q + 0.7 * np.eye(3), Q.T @ y)
        gradient += 2 * np.outer(Q @ p - y, p) / len(y)
    np.testing.assert_allclose(model.item_factors_, Q - 0.5 * gradient / len(Y), rtol=1e-5,
                               atol=1e-6)
    assert list(metrics.columns) == ["round", "client_loss", "update_norm", "clipped_fraction"]


def test_fedavg_learns_clips_and_is_deterministic():
    train = toy_interactions()
    model, metrics = privacy.federated_fit(train, rounds=30, clients_per_round=6, local_steps=2,
                                           clip=0.05, noise=0.5, embedding_dim=4, seed=1)
    again, _ = privacy.federated_fit(train, rounds=30, clients_per_round=6, local_steps=2,
                                     clip=0.05, noise=0.5, embedding_dim=4, seed=1)
    np.testing.assert_array_equal(model.item_factors_, again.item_factors_)
    assert len(metrics) == 30 and metrics["clipped_fraction"].max() > 0
    assert 0 < model.epsilon_ < math.inf
    plain, plain_metrics = privacy.federated_fit(train, rounds=30, clients_per_round=12,
                                                 embedding_dim=4, seed=1)
    assert plain_metrics["client_loss"].iloc[-1] < plain_metrics["client_loss"].iloc[0]
    assert plain.epsilon_ == math.inf


@pytest.mark.parametrize("kwargs, error", [({"clients_per_round": 13}, ParameterError),
                                           ({"rounds": 0}, ParameterError),
                                           ({"noise": 1.0}, ParameterError),
                                           ({"clip": -1.0}, ParameterError)])
def test_fedavg_rejects_bad_settings(kwargs, error):
    with pytest.raises(error):
        privacy.federated_fit(toy_interactions(), **kwargs)


def test_fedavg_rejects_bad_train():
    with pytest.raises(DataError):
        privacy.federated_fit(toy_interactions().iloc[:0])


# --- On-device scoring ----------------------------------------------------------------

def test_client_side_scores_equal_the_models_scores():
    train = toy_interactions()
    model, _ = privacy.federated_fit(train, rounds=5, clients_per_round=4, embedding_dim=4,
                                     l2=0.5, seed=0)
    index = privacy.ItemIndex.from_model(model)
    history = train.loc[train["user_id"] == "u3", "item_id"].tolist()
    on_device = index.score(index.user_vector(history, l2=0.5))
    np.testing.assert_allclose(on_device, model.score(["u3"])[0], rtol=1e-4, atol=1e-5)


def test_item_index_rejects_bad_inputs():
    with pytest.raises(NotFittedError):
        privacy.ItemIndex.from_model(object())
    index = privacy.ItemIndex(["a", "b"], np.eye(2))
    with pytest.raises(DataError, match="not in the index"):
        index.user_vector(["c"])
    with pytest.raises(ParameterError, match="user_vector"):
        index.score(np.ones(3))
    with pytest.raises(ParameterError, match="item_factors"):
        privacy.ItemIndex(["a"], np.eye(2))
    with pytest.raises(ParameterError, match="history"):
        privacy.user_vector_from_history([0.5], np.eye(2))
    with pytest.raises(DataError, match="outside"):
        privacy.user_vector_from_history([2], np.eye(2))
    with pytest.raises(ParameterError, match="l2"):
        privacy.user_vector_from_history([1], np.eye(2), l2=0.0)


# --- Membership inference -------------------------------------------------------------

def split_members(train: pd.DataFrame):
    held_out = train.groupby("user_id").tail(2)
    return train.drop(held_out.index), held_out


def test_mia_is_chance_on_a_model_that_never_saw_the_data():
    members, non_members = split_members(toy_interactions(num_users=40, num_items=30,
                                                          per_user=8))
    rng = np.random.default_rng(0)
    table = rng.normal(size=(40, 30))

    def random_scores(user_ids, item_ids):
        return table[[int(u[1:]) for u in user_ids]][:, [int(i[1:]) for i in item_ids]]

    model = ScoreFunctionModel(random_scores, item_ids=[f"i{i}" for i in range(30)]).fit(members)
    assert abs(privacy.membership_inference_auc(model, members, non_members) - 0.5) < 0.1


def test_mia_detects_an_overfit_model():
    members, non_members = split_members(toy_interactions(num_users=30, num_items=30,
                                                          per_user=8))
    model = privacy.DPMatrixFactorization(embedding_dim=16, epochs=60, batch_size=64,
                                          learning_rate=2.0, noise_multiplier=0.0, clip=1e6,
                                          seed=0).fit(members)
    assert privacy.membership_inference_auc(model, members, non_members) > 0.8


def test_mia_rejects_bad_inputs():
    members, non_members = split_members(toy_interactions())
    with pytest.raises(ParameterError, match="score"):
        privacy.membership_inference_auc(object(), members, non_members)
    with pytest.raises(ParameterError, match="non_members"):
        privacy.membership_inference_auc(ScoreFunctionModel(lambda u, i: 0), members, [1, 2])
    with pytest.raises(DataError, match="members"):
        privacy.membership_inference_auc(ScoreFunctionModel(lambda u, i: 0), members.iloc[:0],
                                         non_members)


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, mmrec_lib.privacy; "
            "print('tensorflow' in sys.modules, 'dp_accounting' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
