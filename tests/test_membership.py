"""Membership inference: calibrated (offline / LiRA) user-level attacks, their metrics, bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import privacy
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interest import ScoreFunctionModel


def views(num_users=200, per_user=5, num_items=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(f"u{u:03d}", f"i{i}") for u in range(num_users)
            for i in rng.choice(num_items, per_user, replace=False)]
    return pd.DataFrame(rows, columns=["user_id", "item_id"])


class Recorder:
    """A stand-in model: remembers which users trained it and carries its own noise stream."""

    def __init__(self, train, index):
        self.users = set(train["user_id"])
        self.rng = np.random.default_rng(index)


def recipe():
    """fit(train) -> Recorder; the k-th call gets noise stream k (deterministic)."""
    calls = []

    def fit(train):
        calls.append(1)
        return Recorder(train, len(calls))
    return fit


def difficulty(frame, seed=7):
    """A per-user 'how easy' term, large next to the membership effect: what calibration removes."""
    users = np.sort(frame["user_id"].unique())
    return pd.Series(np.random.default_rng(seed).normal(scale=3.0, size=len(users)), index=users)


def memorising_signal(model, frame):
    easy = difficulty(frame)
    member = easy.index.isin(model.users).astype(float)
    return easy + member + model.rng.normal(scale=0.3, size=len(easy))


def independent_signal(model, frame):
    easy = difficulty(frame)
    return easy + model.rng.normal(scale=0.3, size=len(easy))


def test_a_memorising_model_is_detected_and_calibration_is_what_finds_it():
    result = privacy.user_membership_attack(recipe(), views(), n_references=6,
                                            signal=memorising_signal, seed=0)
    table = result.table
    assert list(table.index) == ["global", "offline", "online"]
    assert table.loc["offline", "auc"] > 0.9 and table.loc["online", "auc"] > 0.9
    assert table.loc["online", "tpr_at_fpr"] > 0.3
    # the same signal without calibration: the per-user difficulty drowns the membership bump
    assert table.loc["global", "auc"] < 0.7
    assert result.best in ("offline", "online")
    assert result.membership.shape == (7, 200) and (result.membership.sum(axis=0) == 3).all()
    assert 0 < table.loc["offline", "auc_se"] < 0.05


def test_a_model_independent_of_its_data_is_at_chance():
    result = privacy.user_membership_attack(recipe(), views(), n_references=6,
                                            signal=independent_signal, seed=0)
    for attack, row in result.table.iterrows():
        assert abs(row["auc"] - 0.5) < max(3 * row["auc_se"], 0.03), attack
        assert row["tpr_at_fpr"] < 0.06, attack


def test_calibrated_scores_from_scratch():
    from scipy.stats import norm

    rng = np.random.default_rng(0)
    references = rng.normal(size=(6, 10))
    inside = np.zeros((6, 10), bool)
    inside[:3] = True
    target = rng.normal(size=10)
    offline = privacy.calibrated_membership_scores(target, references, inside)
    np.testing.assert_allclose(offline, target - references[3:].mean(axis=0))
    np.testing.assert_allclose(privacy.calibrated_membership_scores(target, references[3:]),
                               offline)
    mu_in, mu_out = references[:3].mean(axis=0), references[3:].mean(axis=0)
    sigma = math.sqrt((((references[:3] - mu_in) ** 2).sum() + ((references[3:] - mu_out) ** 2)
                       .sum()) / (60 - 20))
    expected = norm.logpdf(target, mu_in, sigma) - norm.logpdf(target, mu_out, sigma)
    np.testing.assert_allclose(privacy.calibrated_membership_scores(
        target, references, inside, online=True), expected, rtol=1e-10)


def test_attack_metrics():
    labels = np.r_[np.ones(50, bool), np.zeros(150, bool)]
    perfect = privacy.attack_metrics(labels.astype(float), labels)
    assert perfect["auc"] == 1.0 and perfect["tpr_at_fpr"] == 1.0
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200) + labels
    result = privacy.attack_metrics(scores, labels, n_bootstrap=100)
    from sklearn.metrics import roc_auc_score
    assert result["auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert 0.01 < result["auc_se"] < 0.1   # Hanley-McNeil gives about 0.035 here
    assert 0 <= result["tpr_at_fpr"] <= 1
    assert math.isnan(privacy.attack_metrics(scores, labels, n_bootstrap=0)["auc_se"])


def toy_two_tower(num_users=40, num_items=20, per_user=6, seed=0):
    rng = np.random.default_rng(seed)
    content = pd.DataFrame(rng.normal(size=(num_items, 4)),
                           index=[f"i{j}" for j in range(num_items)])
    rows = [(f"u{u}", f"i{i}") for u in range(num_users)
            for i in rng.choice(num_items, per_user, replace=False)]
    return pd.DataFrame(rows, columns=["user_id", "item_id"]), content


def test_user_log_likelihood_is_the_leave_one_out_softmax_of_the_model():
    train, content = toy_two_tower()
    model = privacy.DPTwoTower(noise_multiplier=0.0, clip=math.inf, epochs=3.0, sampling_rate=1.0,
                               embedding_dim=4).fit(train, content)
    likelihood = privacy.user_log_likelihood(model, train)
    user = "u3"
    items = list(train[train.user_id == user].item_id)
    scores = model.score([user]).astype(np.float64)[0]   # seen items: from the rest
    loo = model.leave_one_out_scores(items)
    columns = model.item_encoder_.transform(items)
    np.testing.assert_allclose(loo[np.arange(len(items)), columns], scores[columns], rtol=1e-5)
    manual = np.mean([row[c] - np.log(np.exp(row).sum()) for row, c in zip(loo, columns)])
    assert likelihood[user] == pytest.approx(manual)
    assert len(likelihood) == 40 and (likelihood < 0).all()


def test_user_attack_on_the_two_tower_runs_end_to_end():
    train, content = toy_two_tower()

    def fit(frame):
        return privacy.DPTwoTower(noise_multiplier=0.0, clip=math.inf, epochs=3.0,
                                  sampling_rate=1.0, embedding_dim=4,
                                  bias_noise_multiplier=0.0).fit(frame, content)
    result = privacy.user_membership_attack(fit, train, n_references=3, n_bootstrap=20)
    assert result.signals.shape == (4, 40) and np.isfinite(result.signals.to_numpy()).all()
    # exact item counts as biases: a user's views raise their items' biases
    assert result.table.loc["offline", "auc"] > 0.6


def test_bad_input_is_refused():
    train = views(num_users=10)
    fit = recipe()
    with pytest.raises(ParameterError, match="n_references"):
        privacy.user_membership_attack(fit, train, n_references=0, signal=independent_signal)
    with pytest.raises(ParameterError, match="n_references"):
        privacy.user_membership_attack(fit, train, n_references=1, signal=independent_signal)
    with pytest.raises(DataError, match="no rows"):
        privacy.user_membership_attack(fit, train.iloc[:0], signal=independent_signal)
    with pytest.raises(ParameterError, match="fit"):
        privacy.user_membership_attack(None, train, signal=independent_signal)
    with pytest.raises(DataError, match="at least 4"):
        privacy.user_membership_attack(fit, views(num_users=3), signal=independent_signal)
    with pytest.raises(DataError, match="one value per user"):
        privacy.user_membership_attack(fit, train, signal=lambda m, f: pd.Series({"x": 1.0}))
    with pytest.raises(ParameterError, match="leave_one_out_scores"):
        privacy.user_log_likelihood(ScoreFunctionModel(lambda u, i: 0), train)
    with pytest.raises(ParameterError, match="K"):
        privacy.calibrated_membership_scores(np.ones(3), np.ones((0, 3)))
    with pytest.raises(ParameterError, match="shape"):
        privacy.calibrated_membership_scores(np.ones(3), np.ones((2, 4)))
    with pytest.raises(ParameterError, match="reference_in"):
        privacy.calibrated_membership_scores(np.ones(3), np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(DataError, match="no IN"):
        privacy.calibrated_membership_scores(np.ones(3), np.ones((2, 3)), online=True)
    with pytest.raises(DataError, match="no OUT"):
        privacy.calibrated_membership_scores(np.ones(3), np.ones((2, 3)), np.ones((2, 3), bool))
    with pytest.raises(DataError, match="finite"):
        privacy.calibrated_membership_scores(np.array([1.0, np.nan]), np.ones((2, 2)))
    with pytest.raises(DataError, match="both"):
        privacy.attack_metrics(np.ones(4), np.ones(4, bool))
    with pytest.raises(ParameterError, match="fpr"):
        privacy.attack_metrics(np.arange(4.0), np.array([1, 0, 1, 0], bool), fpr=0.0)


def test_two_tower_likelihood_refuses_unknown_items_and_short_histories():
    train, content = toy_two_tower()
    model = privacy.DPTwoTower(noise_multiplier=0.0, clip=math.inf, epochs=1.0,
                               sampling_rate=1.0, embedding_dim=4).fit(train, content)
    with pytest.raises(DataError, match="nope"):
        privacy.user_log_likelihood(model, pd.DataFrame({"user_id": ["a", "a"],
                                                         "item_id": ["i1", "nope"]}))
    with pytest.raises(DataError, match="at least 2"):
        privacy.user_log_likelihood(model, pd.DataFrame({"user_id": ["a"], "item_id": ["i1"]}))


def test_yeom_refuses_overlapping_members_and_non_members():
    frame = views(num_users=5)
    model = ScoreFunctionModel(lambda u, i: 0.0).fit(frame)
    with pytest.raises(DataError, match="both members and non-members"):
        privacy.membership_inference_auc(model, frame, frame.iloc[:3])


def test_attack_from_signals_matches_the_attack_and_refuses_bad_membership():
    result = privacy.user_membership_attack(recipe(), views(), n_references=4,
                                            signal=memorising_signal, seed=1)
    again = privacy.attack_from_signals(result.signals, result.membership, seed=1)
    pd.testing.assert_frame_equal(again.table, result.table)
    uneven = result.membership.copy()
    uneven.iloc[:, 0] = True
    with pytest.raises(DataError, match="same number of models"):
        privacy.attack_from_signals(result.signals, uneven)
    with pytest.raises(ParameterError, match="same shape"):
        privacy.attack_from_signals(result.signals.iloc[:, :5], result.membership)
    with pytest.raises(ParameterError, match="bool"):
        privacy.attack_from_signals(result.signals, result.membership.astype(int))
