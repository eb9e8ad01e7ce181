"""Beyond-accuracy measures of responsible recommendation: calibration, serendipity, exposure."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_matrix, check_number
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.fairness.rerank import (
    PositionDiscount,
    _category_matrix,
    _check_lambda,
    _check_per_item,
    _discounts,
    _history_distribution,
    _kl,
)

__all__ = [
    "miscalibration_kl",
    "serendipity",
    "creator_exposure",
    "exposure_relevance_gap",
    "user_group_gap",
    "tradeoff_curve",
]


# --------------------------------------------------------------------------- metrics

def _check_recommended(recommended, num_items: int, *, name: str = "recommended"
                       ) -> list[np.ndarray]:
    """One int64 array of item indices in [0, num_items) per user."""
    if isinstance(recommended, (str, bytes)):
        raise ParameterError(f"{name} must be a sequence of lists, not a string")
    lists = [np.asarray(items).ravel() for items in recommended]
    if not lists:
        raise ParameterError(f"{name} is empty: there is no user to evaluate")
    for row, items in enumerate(lists):
        if len(items) == 0:
            lists[row] = items.astype(np.int64)
        elif items.dtype.kind not in "iu" or items.min() < 0 or items.max() >= num_items:
            raise DataError(f"{name} list of user {row} has items outside "
                            f"[0, {num_items - 1}] (item indices): {items[:5].tolist()}")
    return lists


def miscalibration_kl(recommended: Sequence, history_distribution, item_categories, *,
                      alpha: float = 0.01, per_user: bool = False) -> float | np.ndarray:
    r"""Steck's (2018) miscalibration :math:`C_{KL} = \mathrm{KL}(p \,\|\, \tilde q)` of each list.

    :math:`p` is the user's history distribution over categories, :math:`q`
    the mean :math:`p(g|i)` of the recommended items and
    :math:`\tilde q = (1 - \alpha) q + \alpha p`. 0 = perfectly calibrated.
    Users with an empty list get NaN.

    Parameters
    ----------
    recommended : sequence of n_users sequences of item indices
    history_distribution : ndarray of shape (n_users, n_categories)
    item_categories : as in :func:`calibrated_rerank`
    alpha : float in [0, 1)
    per_user : bool
        Return the ndarray of shape (n_users,) instead of the mean.
    """
    alpha = check_number("alpha", alpha, low=0.0, high=1.0, high_inclusive=False)
    categories = _category_matrix(item_categories, len(np.asarray(item_categories)))
    lists = _check_recommended(recommended, len(categories))
    history = _history_distribution(history_distribution, len(lists), categories.shape[1])
    values = np.array([_kl(history[row], categories[items].mean(axis=0), alpha)
                       if len(items) else np.nan for row, items in enumerate(lists)])
    return values if per_user else float(np.nanmean(values))


def serendipity(recommended: Sequence, history: Sequence[Collection], item_vectors, *,
                relevant: Sequence[Collection] | None = None,
                per_user: bool = False) -> float | np.ndarray:
    r"""Serendipity: (relevant) recommendations unlike what the user already watched.

    As Microsoft Recommenders' ``user_item_serendipity`` / ``user_serendipity``
    / ``serendipity`` (``recommenders/evaluation/python_evaluation.py``, with
    ``item_sim_measure="item_feature_vector"``; after Zhang et al. 2012,
    "Auralist", WSDM): for user :math:`u` and recommended item :math:`i`,

    .. math:: \mathrm{ser}(u, i) = \Big(1 - \frac{1}{|H_u|}\sum_{j \in H_u}
              \cos(v_i, v_j)\Big)\, \mathrm{rel}(u, i),

    with :math:`H_u` the training history. :math:`\mathrm{rel}(u, i)` is 1 if
    :math:`i` is in the user's ``relevant`` set, else 0; without ``relevant``
    it is 1 for every item (Recommenders' default when ``reco_df`` has no
    relevance column), which measures unexpectedness alone. A user's value is
    the mean over their list, the global value the mean over users. Users with
    an empty list or history get NaN and are skipped in the mean.

    Parameters
    ----------
    recommended, history : sequences of n_users sequences of item indices
    item_vectors : ndarray of shape (n_items, dim)
    relevant : sequence of n_users collections of item indices, optional
    per_user : bool
    """
    from mmrec_lib.similarity import normalize_rows

    vectors = normalize_rows(check_matrix("item_vectors", item_vectors).astype(np.float64))
    lists = _check_recommended(recommended, len(vectors))
    histories = _check_recommended(history, len(vectors), name="history")
    if relevant is not None and (isinstance(relevant, (str, bytes))
                                 or len(relevant) != len(lists)):
        raise ParameterError(f"relevant must have one collection per user ({len(lists)})")
    if len(histories) != len(lists):
        raise ParameterError(f"recommended has {len(lists)} users but history has "
                             f"{len(histories)}; they must be aligned user by user")
    values = np.full(len(lists), np.nan)
    for row, (items, seen) in enumerate(zip(lists, histories, strict=True)):
        if len(items) == 0 or len(seen) == 0:
            continue
        unexpectedness = 1.0 - (vectors[items] @ vectors[seen].T).mean(axis=1)
        hits = np.ones(len(items)) if relevant is None else np.isin(
            items, np.asarray(list(relevant[row])))
        values[row] = float((unexpectedness * hits).mean())
    if per_user:
        return values
    if np.isnan(values).all():
        raise DataError("no user has both a recommendation list and a history")
    return float(np.nanmean(values))


def creator_exposure(recommended: Sequence, item_groups, *,
                     position_discount: PositionDiscount = "log") -> pd.Series:
    r"""Share of all exposure that each group (creator, creator size class) receives.

    The item at position :math:`p` of a list gets exposure
    :math:`w_p = 1/\log_2(1 + p)` (``"log"``, the attention model of DCG, as
    in Singh & Joachims 2018) or 1 (``"none"``); a group's share is its items'
    exposure summed over all lists, divided by the total.

    Parameters
    ----------
    recommended : sequence of n_users sequences of item indices
    item_groups : ndarray of shape (n_items,)
    position_discount : {"log", "none"}

    Returns
    -------
    Series indexed by every group label (0 for groups never shown), summing to 1.
    """
    groups = np.asarray(item_groups)
    if groups.ndim != 1 or len(groups) == 0:
        raise ParameterError(f"item_groups must be a non-empty 1-D array, got shape "
                             f"{groups.shape}")
    lists = _check_recommended(recommended, len(groups))
    longest = max(len(items) for items in lists)
    if longest == 0:
        raise DataError("every recommendation list is empty: there is no exposure")
    weights = _discounts(longest, position_discount)
    labels, codes = np.unique(groups, return_inverse=True)
    exposure = np.zeros(len(labels))
    for items in lists:
        np.add.at(exposure, codes[items], weights[: len(items)])
    return pd.Series(exposure / exposure.sum(), index=pd.Index(labels, name="group"),
                     name="exposure_share")


def exposure_relevance_gap(recommended: Sequence, relevance, item_groups, *,
                           position_discount: PositionDiscount = "log") -> pd.DataFrame:
    r"""Per group, its share of exposure against its share of relevance.

    Relevance share of group :math:`g`: the mean over users of
    :math:`\sum_{i \in g} \mathrm{rel}_{ui} / \sum_i \mathrm{rel}_{ui}` (users
    whose relevance is all 0 are skipped); every user's list carries the same
    exposure, so each user counts once. Exposure share as in
    :func:`creator_exposure`. A fair system in the sense of Singh & Joachims
    (2018) has ``gap = exposure_share - relevance_share`` near 0 for every
    group; ``frame["gap"].abs().sum() / 2`` (total variation) summarises it.

    Parameters
    ----------
    recommended : sequence of n_users sequences of item indices
    relevance : ndarray of shape (n_users, n_items), non-negative
        E.g. binary test interactions, or model scores min-max scaled per user.
    item_groups : ndarray of shape (n_items,)
    position_discount : {"log", "none"}

    Returns
    -------
    DataFrame indexed by group with columns ``exposure_share``, ``relevance_share``, ``gap``.
    """
    relevance = check_matrix("relevance", relevance).astype(np.float64)
    groups = _check_per_item("item_groups", item_groups, relevance.shape[1])
    if (relevance < 0).any():
        raise DataError("relevance must be non-negative")
    lists = _check_recommended(recommended, relevance.shape[1])
    if len(lists) != len(relevance):
        raise ParameterError(f"recommended has {len(lists)} users but relevance has "
                             f"{len(relevance)} rows")
    exposure = creator_exposure(lists, groups, position_discount=position_discount)
    labels, codes = np.unique(groups, return_inverse=True)
    totals = relevance.sum(axis=1)
    if not (totals > 0).any():
        raise DataError("every user's relevance is 0: relevance shares are undefined")
    per_user = np.stack([np.bincount(codes, weights=row, minlength=len(labels))
                         for row in relevance[totals > 0]]) / totals[totals > 0, None]
    frame = pd.DataFrame({"exposure_share": exposure.to_numpy(),
                          "relevance_share": per_user.mean(axis=0)},
                         index=pd.Index(labels, name="group"))
    frame["gap"] = frame["exposure_share"] - frame["relevance_share"]
    return frame


def user_group_gap(metric_per_user, groups) -> pd.DataFrame:
    """How a per-user metric differs between user groups (e.g. light vs heavy users).

    Parameters
    ----------
    metric_per_user : ndarray of shape (n_users,)
        E.g. ``metrics.ndcg_at_k(..., per_user=True)``; NaN users are skipped.
    groups : ndarray of shape (n_users,)
        Group label of each user, e.g. ``np.where(history_length < 10, "light", "heavy")``.

    Returns
    -------
    DataFrame indexed by group with ``num_users``, ``mean`` and ``gap`` (group mean
    minus the mean over all users); the largest minus the smallest ``mean`` is
    the between-group gap usually reported.
    """
    values = np.asarray(metric_per_user, dtype=np.float64)
    labels = np.asarray(groups)
    if values.ndim != 1 or values.size == 0:
        raise ParameterError(f"metric_per_user must be a non-empty 1-D array, got shape "
                             f"{values.shape}")
    if labels.shape != values.shape:
        raise ParameterError(f"groups has shape {labels.shape}; expected {values.shape}, one "
                             "label per user")
    known = ~np.isnan(values)
    if not known.any():
        raise DataError("metric_per_user is NaN for every user")
    frame = pd.DataFrame({"group": labels[known], "value": values[known]})
    summary = frame.groupby("group")["value"].agg(num_users="size", mean="mean")
    summary["gap"] = summary["mean"] - values[known].mean()
    return summary


def tradeoff_curve(rerank_fn: Callable[[float], np.ndarray], lambdas: Sequence[float], *,
                   relevant: Sequence[Collection],
                   metric: Callable[[np.ndarray], float], metric_name: str = "metric",
                   k: int = 10) -> pd.DataFrame:
    """NDCG@k and a beyond-accuracy metric for each re-ranking weight (the chapter's plot).

    Parameters
    ----------
    rerank_fn : callable ``lambda_ -> ndarray of shape (n_users, >= k)`` of item indices
        E.g. ``lambda lam: fairness.mmr_rerank(scores, vectors, k=10, lambda_=lam)``.
    lambdas : sequence of floats in [0, 1]
    relevant : sequence of n_users collections of relevant item indices
    metric : callable ``recommended -> float``
        E.g. ``lambda rec: metrics.intra_list_diversity(rec, vectors)``.
    metric_name : str
        Column name of the metric.
    k : int

    Returns
    -------
    DataFrame with columns ``lambda``, ``ndcg@{k}`` and ``metric_name``, one row per lambda.
    """
    from mmrec_lib.metrics import ndcg_at_k

    k = check_int("k", k)
    lambdas = [_check_lambda(value) for value in np.atleast_1d(np.asarray(lambdas, dtype=float))]
    if not lambdas:
        raise ParameterError("lambdas is empty")
    rows = []
    for lambda_ in lambdas:
        recommended = np.atleast_2d(np.asarray(rerank_fn(lambda_)))
        rows.append({"lambda": lambda_, f"ndcg@{k}": ndcg_at_k(recommended, relevant, k),
                     metric_name: float(metric(recommended))})
    return pd.DataFrame(rows)
