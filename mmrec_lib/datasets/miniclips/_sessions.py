"""MiniClips sessions: users watch in bursts of one interest and follow the series they started.

One function, :func:`_next_item_logits`, gives the log-weights of the next view given the
user's state; the simulator draws every view from it and ``MiniClips.next_item_scores`` (the
sequential oracle) calls it again, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["W_SESSION_FOCUS", "W_SAME_CREATOR", "W_NEXT_EPISODE", "SessionLog",
           "_next_item_logits", "_simulate_views", "_focus_log_prior", "_focus_log_likelihood",
           "_focus_mixture"]

# Log-weights added to the preference score during a session (see datasets/miniclips.md).
#: The session's focus category: short-term interest concentrates on one category.
W_SESSION_FOCUS = 2.5
#: The creator of the previous view in the same session ("more from this creator").
W_SAME_CREATOR = 1.5
#: The next episode of a series the user has watched an episode of, once it is released.
W_NEXT_EPISODE = 5.0

# Sessions hold 2-15 views (the last one of a user may be shorter), 30 s to 6 min apart;
# a user's consecutive sessions are at least 20 minutes apart.
_SESSION_P = 0.22
_VIEW_GAP_S = (30.0, 360.0)
_SESSION_BREAK_S = 1200.0
# How strongly a session's focus follows the user's category tastes.
_FOCUS_TEMPERATURE = 1.5


@dataclass
class SessionLog:
    """The simulated views, one entry per view, in each user's time order."""

    user: list
    item: list
    time: list
    session: list
    session_user: list
    session_focus: list


def _next_item_logits(preference: np.ndarray, category: np.ndarray, creator: np.ndarray,
                      focus: int, previous_creator: int, followed: np.ndarray,
                      available: np.ndarray) -> np.ndarray:
    """Log-weights of the next view over all items; ``-inf`` where it cannot happen.

    Parameters
    ----------
    preference : ndarray of shape (n_items,)
        The user's true preference score (``oracle_scores``).
    category, creator : ndarray of shape (n_items,), int
    focus : int
        The session's focus category; -1 leaves the focus term out (the focus
        posterior adds it itself, see :func:`_focus_mixture`).
    previous_creator : int
        Creator of the previous view in this session, -1 at the start of a session.
    followed : ndarray of shape (n_items,), bool
        Next episodes of series the user has watched an episode of.
    available : ndarray of shape (n_items,), bool
        Released by now and not watched yet.
    """
    logits = preference + W_SESSION_FOCUS * (category == focus)
    if previous_creator >= 0:
        logits = logits + W_SAME_CREATOR * (creator == previous_creator)
    logits = logits + W_NEXT_EPISODE * followed
    return np.where(available, logits, -np.inf)


def _simulate_views(rng: np.random.Generator, scores: np.ndarray, category: np.ndarray,
                    creator: np.ndarray, next_episode: np.ndarray, release_frac: np.ndarray,
                    start_frac: np.ndarray, activity: np.ndarray, affinity: np.ndarray,
                    timeline_s: float) -> SessionLog:
    """Each user's views, session by session, drawn from :func:`_next_item_logits`."""
    n_users, n_items = scores.shape
    log = SessionLog([], [], [], [], [], [])
    for u in range(n_users):
        sizes = []
        while sum(sizes) < activity[u]:
            sizes.append(int(np.clip(1 + rng.geometric(_SESSION_P), 2, 15)))
        sizes[-1] -= sum(sizes) - int(activity[u])
        starts = np.sort(rng.uniform(start_frac[u], 0.999, len(sizes))) * timeline_s
        focus_p = np.exp(_FOCUS_TEMPERATURE * (affinity[u] - affinity[u].max()))
        seen = np.zeros(n_items, dtype=bool)
        followed = np.zeros(n_items, dtype=bool)
        clock = -np.inf
        for j, size in enumerate(sizes):
            focus = int(rng.choice(len(focus_p), p=focus_p / focus_p.sum()))
            session = len(log.session_user)
            log.session_user.append(u)
            log.session_focus.append(focus)
            clock = max(starts[j], clock + _SESSION_BREAK_S)
            previous = -1
            for view in range(size):
                if view:
                    clock += rng.uniform(*_VIEW_GAP_S)
                available = (release_frac * timeline_s <= clock) & ~seen
                if not available.any():
                    continue
                logits = _next_item_logits(scores[u], category, creator, focus, previous,
                                           followed, available)
                weights = np.exp(logits - logits.max())
                cumulative = np.cumsum(weights)
                i = int(np.searchsorted(cumulative, rng.uniform(0, cumulative[-1]),
                                        side="right"))
                i = min(i, n_items - 1)
                seen[i] = True
                followed[i] = False
                if next_episode[i] >= 0 and not seen[next_episode[i]]:
                    followed[next_episode[i]] = True
                previous = int(creator[i])
                log.user.append(u)
                log.item.append(i)
                log.time.append(clock)
                log.session.append(session)
    return log



# The Bayes-optimal sequential predictor. The focus of a session is hidden: it is drawn at the
# session's start from softmax(_FOCUS_TEMPERATURE * affinity) and only the session's views
# reveal it. Given the true parameters and the observed history, the best prediction of the next
# view mixes the per-focus next-view laws with the posterior over the focus given the session's
# earlier views. All three helpers take "base" logits: _next_item_logits(..., focus=-1, ...).


def _focus_log_prior(affinity: np.ndarray) -> np.ndarray:
    """Log-probabilities of a session's focus category for users with category ``affinity``.

    ``affinity`` has shape ``(n_categories,)`` or ``(n_users, n_categories)``; the law is the
    one :func:`_simulate_views` draws each session's focus from.
    """
    z = _FOCUS_TEMPERATURE * (affinity - np.max(affinity, axis=-1, keepdims=True))
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _category_sums(base: np.ndarray, category: np.ndarray, n_categories: int):
    """Per row: the max finite logit and sum of exp(base - max) over each category's items."""
    finite = np.isfinite(base)
    top = np.where(finite, base, -np.inf).max(axis=-1, keepdims=True)
    weights = np.where(finite, np.exp(base - top), 0.0)
    sums = weights @ np.eye(n_categories)[category]
    return top, sums


def _focus_log_normaliser(sums: np.ndarray) -> np.ndarray:
    """log Z_c per row: sum over categories of the weights, the focus one boosted."""
    return np.log(sums.sum(axis=-1, keepdims=True) + np.expm1(W_SESSION_FOCUS) * sums)


def _focus_log_likelihood(base: np.ndarray, category: np.ndarray, chosen: np.ndarray,
                          n_categories: int) -> np.ndarray:
    """Log-probability of each observed view under each possible session focus.

    Parameters
    ----------
    base : ndarray of shape (n_views, n_items)
        Logits of each view without the focus term (``-inf`` where not available).
    category : ndarray of shape (n_items,), int
    chosen : ndarray of shape (n_views,), int
        The clip picked at each view (its base logit must be finite).
    n_categories : int

    Returns
    -------
    ndarray of shape (n_views, n_categories)
    """
    base = np.atleast_2d(base)
    top, sums = _category_sums(base, category, n_categories)
    picked = base[np.arange(len(base)), chosen][:, None] - top
    boost = W_SESSION_FOCUS * (category[chosen][:, None] == np.arange(n_categories)[None, :])
    return picked + boost - _focus_log_normaliser(sums)


def _focus_mixture(base: np.ndarray, category: np.ndarray,
                   log_posterior: np.ndarray) -> np.ndarray:
    """Log-probabilities of the next view, mixing the per-focus laws by the focus posterior.

    ``base`` has shape ``(n_items,)`` (the next view's logits without the focus term) or
    ``(n, n_items)`` with ``log_posterior`` of shape ``(n, n_categories)``; the result is
    normalised over the finite entries and ``-inf`` elsewhere.
    """
    single = np.ndim(base) == 1
    base, log_posterior = np.atleast_2d(base), np.atleast_2d(log_posterior)
    n_categories = log_posterior.shape[1]
    top, sums = _category_sums(base, category, n_categories)
    # p(i) = exp(b_i - top) * sum_c post_c exp(W [cat_i == c]) / Z_c
    weight = np.exp(log_posterior - _focus_log_normaliser(sums))
    mixed = weight.sum(axis=1, keepdims=True) + np.expm1(W_SESSION_FOCUS) * weight[:, category]
    out = np.where(np.isfinite(base), base - top + np.log(mixed), -np.inf)
    return out[0] if single else out
