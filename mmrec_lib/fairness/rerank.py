"""Greedy re-rankers: MMR diversity, Steck calibration, fair exposure (see the package docstring)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from mmrec_lib._validation import check_choice, check_int, check_matrix, check_number
from mmrec_lib.errors import DataError, ParameterError

__all__ = ["mmr_rerank", "calibrated_rerank", "exposure_fair_rerank", "group_shares"]

PositionDiscount = Literal["log", "none"]


# --------------------------------------------------------------------------- shared checks

def _check_scores(scores, exclude=None) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """Scores as a float (n_users, n_items) array, the exclusion mask, and whether input was 1-D."""
    array = np.asarray(scores)
    one_row = array.ndim == 1
    array = check_matrix("scores", array[None, :] if one_row else array).astype(np.float64)
    if array.shape[1] == 0 or array.shape[0] == 0:
        raise ParameterError(f"scores has shape {array.shape}; expected at least one user "
                             "and one item")
    mask = None
    if exclude is not None:
        mask = np.asarray(exclude, dtype=bool)
        mask = mask[None, :] if one_row and mask.ndim == 1 else mask
        if mask.shape != array.shape:
            raise ParameterError(f"exclude has shape {np.asarray(exclude).shape}, expected the "
                                 f"shape of scores {array.shape}")
    return array, mask, one_row


def _check_lambda(lambda_) -> float:
    return check_number("lambda_", lambda_, low=0.0, high=1.0)


def _check_k(k, scores: np.ndarray, mask: np.ndarray | None) -> int:
    allowed = scores.shape[1] if mask is None else int((~mask).sum(axis=1).min())
    return check_int("k", k, high=allowed)


def _check_per_item(name: str, values, num_items: int, *, ndim: int = 1) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != ndim or array.shape[0] != num_items:
        raise ParameterError(f"{name} has shape {array.shape}; expected {num_items} rows, one "
                             "per column of scores")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise DataError(f"{name} contains NaN")
    return array


def _relevance(row: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Min-max scaling of one user's scores to [0, 1] over the available items."""
    low, high = row[available].min(), row[available].max()
    if high == low:
        return np.where(available, 1.0, 0.0)
    return np.where(available, (row - low) / (high - low), 0.0)


def _pick(objective: np.ndarray, relevance: np.ndarray, available: np.ndarray) -> int:
    """Best available item: highest objective, then highest relevance, then lowest index."""
    values = np.where(available, objective, -np.inf)
    best = values.max()
    ties = available & (values >= best - 1e-12)
    return int(np.flatnonzero(ties)[np.argmax(relevance[ties])])


def _greedy(checked, k, lambda_, gain) -> np.ndarray:
    """Shared greedy loop: gain(user, relevance, chosen, available) -> per-item bonus."""
    from mmrec_lib.similarity import top_k

    array, mask, one_row = checked
    k = _check_k(k, array, mask)
    if lambda_ == 0.0:  # the original ranking, exactly
        result = top_k(array, k, exclude=mask)
        return result[0] if one_row else result
    result = np.empty((len(array), k), dtype=np.int64)
    for user, row in enumerate(array):
        available = np.ones(len(row), bool) if mask is None else ~mask[user]
        relevance = _relevance(row, available)
        chosen: list[int] = []
        for _ in range(k):
            objective = (1.0 - lambda_) * relevance + lambda_ * gain(user, relevance, chosen,
                                                                     available)
            item = _pick(objective, row, available)
            chosen.append(item)
            available[item] = False
        result[user] = chosen
    return result[0] if one_row else result


# --------------------------------------------------------------------------- re-rankers

def mmr_rerank(scores, item_vectors, k: int = 10, lambda_: float = 0.5, *,
               exclude=None) -> np.ndarray:
    r"""Maximal marginal relevance: relevant items that are unlike the ones already chosen.

    Carbonell & Goldstein (1998), "The use of MMR, diversity-based reranking
    for reordering documents and producing summaries", SIGIR. Greedily, the
    next item is

    .. math:: i^* = \arg\max_{i \notin S} (1 - \lambda)\, r_{ui}
              - \lambda \max_{j \in S} \cos(v_i, v_j),

    with :math:`r_{ui}` the min-max scaled score and the max over an empty
    ``S`` taken as 0. (Carbonell & Goldstein weigh relevance by
    :math:`\lambda`; here :math:`\lambda` weighs diversity so that 0 is the
    original ranking for every re-ranker in this module.)

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items) or (n_items,)
    item_vectors : ndarray of shape (n_items, dim)
        Row i describes column i of ``scores`` (e.g. fused content vectors).
    k : int in [1, n_items]
    lambda_ : float in [0, 1]
    exclude : bool ndarray of the shape of ``scores``, optional
        Items never recommended (already seen).

    Returns
    -------
    ndarray of int64, shape (n_users, k) (or (k,) for 1-D scores): item indices, best first.
    """
    from mmrec_lib.similarity import normalize_rows

    lambda_ = _check_lambda(lambda_)
    checked = _check_scores(scores, exclude)
    num_items = checked[0].shape[1]
    vectors = check_matrix("item_vectors", item_vectors).astype(np.float64)
    if len(vectors) != num_items:
        raise ParameterError(f"item_vectors has {len(vectors)} rows but scores has {num_items} "
                             "items")
    unit = normalize_rows(vectors)

    def penalty(user, relevance, chosen, available):
        # Similarities to the chosen items only: O(n_items * k) memory, not n_items^2.
        if not chosen:
            return np.zeros(num_items)
        return -(unit @ unit[chosen].T).max(axis=1)

    return _greedy(checked, k, lambda_, penalty)


def _category_matrix(item_categories, num_items: int) -> np.ndarray:
    """p(g | i) as a float (n_items, n_categories) matrix with rows summing to 1."""
    array = np.asarray(item_categories)
    if array.ndim == 1:
        array = _check_per_item("item_categories", array, num_items)
        if array.dtype.kind not in "iu" or (array < 0).any():
            raise ParameterError("item_categories as labels must be non-negative ints "
                                 "(category indices)")
        matrix = np.zeros((num_items, int(array.max()) + 1))
        matrix[np.arange(num_items), array] = 1.0
        return matrix
    matrix = check_matrix("item_categories", array).astype(np.float64)
    if len(matrix) != num_items:
        raise ParameterError(f"item_categories has {len(matrix)} rows but there are "
                             f"{num_items} items")
    if (matrix < 0).any() or (matrix.sum(axis=1) <= 0).any():
        raise DataError("item_categories rows must be non-negative with a positive sum")
    return matrix / matrix.sum(axis=1, keepdims=True)


def _history_distribution(history, num_users: int, num_categories: int, *,
                          name: str = "user_history_category_dist",
                          columns: str = "categories") -> np.ndarray:
    """One distribution per user (rows normalised); a 1-D input is one user's."""
    array = np.asarray(history)
    array = check_matrix(name, array[None, :] if array.ndim == 1 else array).astype(np.float64)
    if array.shape != (num_users, num_categories):
        raise ParameterError(f"{name} has shape {array.shape}; expected "
                             f"({num_users}, {num_categories}): one distribution per user "
                             f"over the {columns}")
    if (array < 0).any() or (array.sum(axis=1) <= 0).any():
        raise DataError(f"{name} rows must be non-negative with a positive sum")
    return array / array.sum(axis=1, keepdims=True)


def group_shares(seen, item_groups, *, smoothing: float = 1e-3) -> np.ndarray:
    """Each user's share of views per group: the ``merit`` of :func:`exposure_fair_rerank`.

    Parameters
    ----------
    seen : bool ndarray of shape (n_users, n_items) (or (n_items,))
        The items each user has interacted with (e.g. the training views).
    item_groups : ndarray of shape (n_items,)
    smoothing : float >= 0
        Added to every count, so that a user with no views gets the uniform share.

    Returns
    -------
    ndarray of shape (n_users, n_groups), rows summing to 1, columns in the order
    of ``np.unique(item_groups)``.
    """
    array = np.asarray(seen)
    array = array[None, :] if array.ndim == 1 else array
    if array.dtype != bool or array.ndim != 2:
        raise ParameterError(f"seen must be a 2-D boolean matrix, got dtype {array.dtype} "
                             f"and shape {array.shape}")
    groups = _check_per_item("item_groups", item_groups, array.shape[1])
    smoothing = check_number("smoothing", smoothing, low=0.0)
    _, codes = np.unique(groups, return_inverse=True)
    counts = array.astype(np.float64) @ np.eye(codes.max() + 1)[codes] + smoothing
    totals = counts.sum(axis=1, keepdims=True)
    if (totals <= 0).any():
        raise DataError("a user has no views and smoothing is 0: the shares are undefined")
    return counts / totals


def _kl(p: np.ndarray, q: np.ndarray, alpha: float) -> np.ndarray:
    r"""KL(p || (1 - alpha) q + alpha p) along the last axis; 0 log 0 = 0."""
    smoothed = (1.0 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / smoothed), 0.0)
    return terms.sum(axis=-1)


def calibrated_rerank(scores, item_categories, user_history_category_dist, k: int = 10,
                      lambda_: float = 0.5, *, alpha: float = 0.01,
                      exclude=None) -> np.ndarray:
    r"""Calibrated recommendations: the list's category mix follows the user's history.

    Steck (2018), "Calibrated recommendations", RecSys. With :math:`p(g|u)`
    the user's history distribution over categories and
    :math:`q(g|u) = \frac{1}{|S|}\sum_{i \in S} p(g|i)` the list's, the greedy
    step adds the item maximising

    .. math:: (1 - \lambda) \sum_{i \in S} r_{ui} - \lambda\,
              \mathrm{KL}\big(p \,\|\, \tilde q\big), \qquad
              \tilde q = (1 - \alpha)\, q + \alpha\, p,

    where the smoothing :math:`\alpha` keeps the KL finite when the list has
    no item of a history category. Steck's rank weights are taken as uniform
    and his relevance sum uses min-max scaled scores (see the module notes).

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items) or (n_items,)
    item_categories : int ndarray of shape (n_items,) of category indices, or
        ndarray of shape (n_items, n_categories) of ``p(g|i)`` (rows are normalised)
    user_history_category_dist : ndarray of shape (n_users, n_categories) or (n_categories,)
    k : int in [1, n_items]
    lambda_ : float in [0, 1]
    alpha : float in [0, 1)
    exclude : bool ndarray of the shape of ``scores``, optional

    Returns
    -------
    ndarray of int64, shape (n_users, k) (or (k,) for 1-D scores).
    """
    lambda_ = _check_lambda(lambda_)
    alpha = check_number("alpha", alpha, low=0.0, high=1.0, high_inclusive=False)
    checked = _check_scores(scores, exclude)
    num_users, num_items = checked[0].shape
    categories = _category_matrix(item_categories, num_items)
    history = _history_distribution(user_history_category_dist, num_users,
                                    categories.shape[1])

    def calibration(user, relevance, chosen, available):
        # The objective's relevance term is a sum over the list; adding item i adds
        # r_ui, which the shared loop already weighs, so only the KL is needed here.
        counts = categories[chosen].sum(axis=0) if chosen else np.zeros(categories.shape[1])
        q = (counts[None, :] + categories) / (len(chosen) + 1)
        return -_kl(history[user][None, :], q, alpha)

    return _greedy(checked, k, lambda_, calibration)


def _discounts(k: int, position_discount: str) -> np.ndarray:
    check_choice("position_discount", position_discount, ("log", "none"))
    if position_discount == "none":
        return np.ones(k)
    return 1.0 / np.log2(np.arange(2, k + 2))


def exposure_fair_rerank(scores, item_groups, k: int = 10, lambda_: float = 0.5, *,
                         position_discount: PositionDiscount = "log",
                         merit=None, exclude=None) -> np.ndarray:
    r"""Give each provider group a share of exposure proportional to its share of relevance.

    The target follows Singh & Joachims (2018), "Fairness of exposure in
    rankings", KDD (exposure proportional to merit), applied greedily per user
    as a re-ranker. For a user, group :math:`g` has relevance share
    :math:`\rho_g = \sum_{i \in g} r_{ui} / \sum_i r_{ui}` (min-max scaled
    scores of the available items) and, after the positions filled so far,
    exposure :math:`E_g = \sum_{\text{positions } p \text{ of } g} w_p` with
    :math:`w_p = 1/\log_2(1 + p)` (``"log"``) or 1 (``"none"``). The item at
    the next position maximises

    .. math:: (1 - \lambda)\, r_{ui} + \lambda
              \Big(\rho_{g(i)} - \frac{E_{g(i)}}{\sum_{p=1}^{k} w_p}\Big),

    so a group that has received less than its share of the list's exposure
    (often the small creators, whose items score a little lower) is boosted
    until it catches up. Measure the result with :func:`exposure_relevance_gap`.

    The relevance shares :math:`\rho_g` are an estimate of where the user's
    relevant items lie, and the re-ranker is only as fair as that estimate.
    Min-max scaled scores over a whole catalogue give every item a sizeable
    share, so :math:`\rho` drifts towards the catalogue's composition (on
    MiniClips small: large / medium / small creators 0.60 / 0.31 / 0.10 of
    the clips, 0.57 / 0.33 / 0.10 of the test views) and a strong weight
    pushes the list past the users' real shares. ``merit`` replaces the
    estimate, e.g. by each user's history over the groups
    (:func:`group_shares`), the maximum-likelihood estimate of the same
    quantity; measured in ``benchmarks/responsible.py``.

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items) or (n_items,)
    item_groups : ndarray of shape (n_items,)
        Group label of each item (e.g. its creator, or the creator's size class).
    k : int in [1, n_items]
    lambda_ : float in [0, 1]
    position_discount : {"log", "none"}
    merit : ndarray of shape (n_users, n_groups) or (n_groups,), optional
        Each user's relevance share per group, columns in the sorted order of
        the group labels (``np.unique(item_groups)``); rows are normalised.
        Default: from the min-max scaled scores, as above.
    exclude : bool ndarray of the shape of ``scores``, optional

    Returns
    -------
    ndarray of int64, shape (n_users, k) (or (k,) for 1-D scores).
    """
    lambda_ = _check_lambda(lambda_)
    checked = _check_scores(scores, exclude)
    num_users, num_items = checked[0].shape
    groups = _check_per_item("item_groups", item_groups, num_items)
    _, codes = np.unique(groups, return_inverse=True)
    num_groups = codes.max() + 1
    weights = _discounts(check_int("k", k), position_discount)
    total = weights.sum()
    shares = (None if merit is None else
              _history_distribution(merit, num_users, num_groups, name="merit",
                                    columns="groups"))

    def boost(user, relevance, chosen, available):
        if shares is not None:
            relevance_share = shares[user]
        else:
            relevance_share = np.bincount(codes, weights=relevance, minlength=num_groups)
            relevance_share = relevance_share / max(relevance_share.sum(), 1e-12)
        exposure = np.bincount(codes[chosen], weights=weights[: len(chosen)],
                               minlength=num_groups) if chosen else np.zeros(num_groups)
        return (relevance_share - exposure / total)[codes]

    return _greedy(checked, k, lambda_, boost)
