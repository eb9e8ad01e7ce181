"""Tests for the Bayes sequential oracle of MiniClips: the posterior over a session's hidden focus."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmrec_lib.datasets.miniclips import _sessions
from mmrec_lib.errors import ParameterError


def _log_softmax(logits):
    finite = np.isfinite(logits)
    top = logits[finite].max()
    return np.where(finite, logits - top - np.log(np.exp(logits[finite] - top).sum()), -np.inf)


def _mixture_by_hand(preference, category, creator, previous, followed, available, log_post):
    """sum_c posterior(c) * softmax(logits with focus c), one focus at a time."""
    probabilities = sum(
        np.exp(lp) * np.exp(_log_softmax(_sessions._next_item_logits(
            preference, category, creator, c, previous, followed, available)))
        for c, lp in enumerate(log_post))
    return np.where(available, np.log(np.maximum(probabilities, 1e-300)), -np.inf)


def _toy(seed=0, n_items=80, n_cat=5):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1, n_items), rng.integers(0, n_cat, n_items),
            rng.integers(0, 12, n_items), rng.uniform(size=n_items) < 0.1,
            rng.uniform(size=n_items) < 0.8)


def test_focus_likelihood_is_the_per_focus_view_probability():
    preference, category, creator, followed, available = _toy()
    base = _sessions._next_item_logits(preference, category, creator, -1, 3, followed, available)
    chosen = np.flatnonzero(available)[:4]
    loglik = _sessions._focus_log_likelihood(np.tile(base, (4, 1)), category, chosen, 5)
    for c in range(5):
        full = _log_softmax(_sessions._next_item_logits(preference, category, creator, c, 3,
                                                        followed, available))
        np.testing.assert_allclose(loglik[:, c], full[chosen])


def test_focus_mixture_matches_the_mixture_by_hand_and_sums_to_one():
    preference, category, creator, followed, available = _toy(1)
    log_post = np.log(np.random.default_rng(2).dirichlet(np.ones(5)))
    base = _sessions._next_item_logits(preference, category, creator, -1, 7, followed, available)
    mixed = _sessions._focus_mixture(base, category, log_post)
    np.testing.assert_allclose(np.exp(mixed[available]).sum(), 1.0)
    assert not np.isfinite(mixed[~available]).any()
    np.testing.assert_allclose(mixed[available],
                               _mixture_by_hand(preference, category, creator, 7, followed,
                                                available, log_post)[available])


def test_focus_prior_is_the_simulators_law():
    affinity = np.array([[0.2, -0.4, 1.1], [0.0, 0.0, 0.0]])
    expected = np.exp(1.5 * affinity) / np.exp(1.5 * affinity).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.exp(_sessions._focus_log_prior(affinity)), expected)


def test_focus_posterior_concentrates_on_the_true_focus_in_long_sessions():
    rng = np.random.default_rng(0)
    n_items, n_cat = 300, 6
    hits = []
    for _ in range(40):
        preference = rng.normal(0, 1, n_items)
        category = rng.integers(0, n_cat, n_items)
        creator = rng.integers(0, 30, n_items)
        focus = int(rng.integers(n_cat))
        available = np.ones(n_items, dtype=bool)
        none = np.zeros(n_items, dtype=bool)
        bases, chosen = [], []
        for _ in range(12):
            logits = _sessions._next_item_logits(preference, category, creator, focus, -1,
                                                 none, available)
            i = int(rng.choice(n_items, p=np.exp(_log_softmax(logits))))
            bases.append(_sessions._next_item_logits(preference, category, creator, -1, -1,
                                                     none, available))
            chosen.append(i)
            available = available.copy()
            available[i] = False
        posterior = _sessions._focus_log_likelihood(np.array(bases), category,
                                                    np.array(chosen), n_cat).sum(axis=0)
        posterior = np.exp(posterior - posterior.max())
        posterior /= posterior.sum()
        hits.append(posterior[focus])
    # Twelve views with a 2.5 log-weight on the focus: the posterior is sure in most trials.
    assert np.median(hits) > 0.9
    assert np.mean(np.array(hits) > 0.5) > 0.85


def test_posterior_without_earlier_view_in_the_session_is_the_prior(miniclips_tiny):
    ds = miniclips_tiny
    views = ds.interactions[ds.interactions.user_id == "u0003"]
    # The first view of the user's last session: no earlier view of that session.
    last_session = views.session_id.iloc[-1]
    first = int(np.flatnonzero(views.session_id.to_numpy() == last_session)[0])
    history, nxt = views.iloc[:first], views.iloc[first]
    scores = ds.next_item_scores("u0003", history, timestamp=nxt.timestamp,
                                 session_id=nxt.session_id, focus="posterior")
    user = ds.user_index(["u0003"])[0]
    prior = _sessions._focus_log_prior(ds.truth.user_category_affinity[user])
    preference = ds.oracle_scores(["u0003"], ds.items.item_id)[0]
    seen, followed = ds._watch_state(ds.item_index(history.item_id))
    available = (ds.items.release_time <= nxt.timestamp).to_numpy() & ~seen
    expected = _mixture_by_hand(preference, ds.truth.category, ds._creator, -1,
                                followed & ~seen, available, prior)
    finite = np.isfinite(scores)
    np.testing.assert_array_equal(finite, available)
    np.testing.assert_allclose(scores[finite], expected[finite], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.exp(scores[finite]).sum(), 1.0)


def test_posterior_uses_the_sessions_earlier_views(miniclips_tiny):
    ds = miniclips_tiny
    # Sessions with at least 3 views: predict the third from the first two, or (the same
    # history relabelled as another session) from the prior alone. The earlier views move
    # probability mass to the session's true focus category on average.
    sizes = ds.interactions.groupby("session_id").size()
    focus_of = dict(zip(ds.truth.session_ids, ds.truth.session_focus, strict=True))
    with_views, prior_only = [], []
    for session in sizes[sizes >= 3].index[:25]:
        user = session.split("-")[0]
        views = ds.interactions[ds.interactions.user_id == user]
        rows = np.flatnonzero(views.session_id.to_numpy() == session)
        history, nxt = views.iloc[:rows[2]], views.iloc[rows[2]]
        other = history.assign(session_id=np.where(history.session_id == session, "elsewhere",
                                                   history.session_id))
        in_focus = ds.truth.category == focus_of[session]
        for store, frame in ((with_views, history), (prior_only, other)):
            scores = ds.next_item_scores(user, frame, timestamp=nxt.timestamp,
                                         session_id=session, focus="posterior")
            finite = np.isfinite(scores)
            np.testing.assert_allclose(np.exp(scores[finite]).sum(), 1.0)
            store.append(np.exp(scores[finite & in_focus]).sum())
    assert len(with_views) >= 10
    assert np.mean(with_views) > np.mean(prior_only) + 0.05


def test_bayes_oracle_is_reported_and_bad_focus_raises(miniclips_tiny):
    ds = miniclips_tiny
    result = ds.oracle_leave_last_out(k=10)
    assert set(result) == {"sequential", "sequential_bayes", "bag_of_views", "n_users"}
    assert 0.0 < result["sequential_bayes"] <= 1.0
    views = ds.interactions[ds.interactions.user_id == "u0000"]
    last = views.iloc[-1]
    with pytest.raises(ParameterError, match="focus="):
        ds.next_item_scores("u0000", views.iloc[:-1], timestamp=last.timestamp,
                            session_id=last.session_id, focus="oracle")
    with pytest.raises(ParameterError, match="timestamp"):
        ds.next_item_scores("u0000", pd.DataFrame({"item_id": ["i0001"],
                                                   "session_id": [last.session_id]}),
                            timestamp=last.timestamp, session_id=last.session_id,
                            focus="posterior")
