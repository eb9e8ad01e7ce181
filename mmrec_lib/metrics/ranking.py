"""Ranking and beyond-accuracy metrics, defined as in Microsoft Recommenders' python_evaluation.

Every ranking metric takes ``recommended`` (one ranked list of item ids per user,
best first) and ``relevant`` (one collection of relevant item ids per user, the
same users in the same order). Rules shared by all of them, as in Recommenders
(``recommenders/evaluation/python_evaluation.py``):

- only the first ``k`` items of each list count; a list shorter than ``k`` is
  not padded, but precision still divides by ``k``;
- relevance is binary: an item is relevant if it is in the user's test set;
- the mean is over users that have at least one relevant item (Recommenders
  averages over users present in both truth and predictions; a user without
  test items is absent from its truth table). Such users get NaN with
  ``per_user=True``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_int, check_matrix
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import ITEM_COL, PREDICTION_COL, USER_COL, check_interactions

__all__ = [
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "hit_rate_at_k",
    "mrr_at_k",
    "auc",
    "user_auc",
    "catalog_coverage",
    "distributional_coverage",
    "novelty",
    "intra_list_diversity",
    "average_recommended_popularity",
    "gini_index",
    "exposure_gini",
    "lists_from_frames",
]


def _check_lists(recommended, relevant) -> tuple[list, list]:
    if isinstance(recommended, (str, bytes)) or isinstance(relevant, (str, bytes)):
        raise ParameterError("recommended and relevant must be sequences of lists, not strings")
    recommended = list(recommended)
    relevant = list(relevant)
    if len(recommended) != len(relevant):
        raise ParameterError(f"recommended has {len(recommended)} users but relevant has "
                             f"{len(relevant)}; they must be aligned user by user")
    if not recommended:
        raise ParameterError("recommended is empty: there is no user to evaluate")
    return recommended, relevant


def _hit_matrix(recommended, relevant, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean hits of shape (n_users, k) and the number of relevant items per user."""
    recommended, relevant = _check_lists(recommended, relevant)
    hits = np.zeros((len(recommended), k), dtype=bool)
    num_relevant = np.empty(len(recommended), dtype=np.int64)
    for row, (ranked, truth) in enumerate(zip(recommended, relevant, strict=True)):
        truth_set = truth if isinstance(truth, (set, frozenset)) else set(np.asarray(truth).tolist())
        num_relevant[row] = len(truth_set)
        top = np.asarray(ranked)[:k].tolist()
        if len(set(top)) != len(top):
            raise DataError(f"recommended list of user {row} repeats an item: {top}")
        for position, item in enumerate(top):
            hits[row, position] = item in truth_set
    return hits, num_relevant


def _reduce(values: np.ndarray, num_relevant: np.ndarray, per_user: bool):
    values = np.where(num_relevant > 0, values, np.nan)
    if per_user:
        return values
    if not (num_relevant > 0).any():
        raise DataError("no user has a relevant item: the metric is undefined")
    return float(np.nanmean(values))


def precision_at_k(recommended: Sequence, relevant: Sequence[Collection], k: int = 10, *,
                   per_user: bool = False) -> float | np.ndarray:
    """Precision@k = (number of relevant items in the top k) / k, averaged over users.

    Introduced in chapter 06. Matches Recommenders' ``precision_at_k``: the
    denominator is ``k`` even when the list is shorter, so the best reachable
    value can be below 1.

    Parameters
    ----------
    recommended : sequence of n_users ranked sequences of item ids
    relevant : sequence of n_users collections of item ids
    k : int >= 1
    per_user : bool
        Return the ndarray of shape (n_users,) instead of the mean.
    """
    k = check_int("k", k)
    hits, num_relevant = _hit_matrix(recommended, relevant, k)
    return _reduce(_precision_values(hits, num_relevant, k), num_relevant, per_user)


def recall_at_k(recommended: Sequence, relevant: Sequence[Collection], k: int = 10, *,
                per_user: bool = False) -> float | np.ndarray:
    """Recall@k = (number of relevant items in the top k) / (number of relevant items).

    Introduced in chapter 06. Matches Recommenders' ``recall_at_k`` (so a user
    with more than k relevant items cannot reach 1).
    """
    k = check_int("k", k)
    hits, num_relevant = _hit_matrix(recommended, relevant, k)
    return _reduce(_recall_values(hits, num_relevant, k), num_relevant, per_user)


def ndcg_at_k(recommended: Sequence, relevant: Sequence[Collection], k: int = 10, *,
              per_user: bool = False) -> float | np.ndarray:
    r"""NDCG@k with binary relevance, as Recommenders' ``ndcg_at_k`` (score_type="binary").

    Introduced in chapter 06.

    .. math::

        \mathrm{DCG@k} = \sum_{r=1}^{k} \frac{\mathrm{rel}_r}{\log_2(1 + r)}, \qquad
        \mathrm{IDCG@k} = \sum_{r=1}^{\min(k, |R_u|)} \frac{1}{\log_2(1 + r)},

    NDCG@k = DCG@k / IDCG@k. The log base cancels in the ratio (Recommenders
    uses ``ln``, the same value).
    """
    k = check_int("k", k)
    hits, num_relevant = _hit_matrix(recommended, relevant, k)
    return _reduce(_ndcg_values(hits, num_relevant, k), num_relevant, per_user)


def map_at_k(recommended: Sequence, relevant: Sequence[Collection], k: int = 10, *,
             normalize: Literal["min_k", "relevant"] = "min_k",
             per_user: bool = False) -> float | np.ndarray:
    r"""Mean average precision at k.

    Introduced in chapter 06. For a user with relevant set :math:`R_u`,

    .. math::

        \mathrm{AP@k} = \frac{1}{D} \sum_{r=1}^{k} \mathrm{rel}_r \cdot \mathrm{precision@r},

    where ``normalize`` chooses the denominator ``D``:

    - ``"min_k"`` (default): :math:`D = \min(k, |R_u|)` -- Recommenders' current
      ``map_at_k`` (Spark's ``meanAveragePrecisionAt``). This is mmrec's MAP@k.
    - ``"relevant"``: :math:`D = |R_u|` -- Recommenders' ``map`` (before release
      1.2 this was the function called ``map_at_k``, and the MAP column of its
      published MovieLens table uses it). It is smaller whenever users have more
      than k relevant items.
    """
    k = check_int("k", k)
    check_choice("normalize", normalize, ("min_k", "relevant"))
    hits, num_relevant = _hit_matrix(recommended, relevant, k)
    return _reduce(_map_values(hits, num_relevant, k, normalize), num_relevant, per_user)


def hit_rate_at_k(recommended: Sequence, relevant: Sequence[Collection], k: int = 10, *,
                  per_user: bool = False) -> float | np.ndarray:
    """Hit rate@k: the fraction of users with at least one relevant item in the top k.

    Introduced in chapter 06. (Not in Recommenders' python_evaluation; the usual
    definition.)
    """
    k = check_int("k", k)
    hits, num_relevant = _hit_matrix(recommended, relevant, k)
    return _reduce(_hit_rate_values(hits, num_relevant, k), num_relevant, per_user)


def mrr_at_k(recommended: Sequence, relevant: Sequence[Collection], k: int = 10, *,
             per_user: bool = False) -> float | np.ndarray:
    """Mean reciprocal rank@k: 1 / (rank of the first relevant item), 0 if none in the top k.

    Introduced in chapter 06. (Not in Recommenders' python_evaluation; the usual
    definition, truncated at k.)
    """
    k = check_int("k", k)
    hits, num_relevant = _hit_matrix(recommended, relevant, k)
    return _reduce(_mrr_values(hits, num_relevant, k), num_relevant, per_user)


def auc(y_true: Sequence[float], y_score: Sequence[float]) -> float:
    """Global ROC AUC over (label, score) pairs, as Recommenders' ``auc``.

    Introduced in chapter 06. Equal to ``sklearn.metrics.roc_auc_score``: the
    probability that a random positive pair outscores a random negative one
    (ties count one half). All users' pairs are pooled; see :func:`user_auc`
    for the per-user version used with ranking models.
    """
    labels = np.asarray(y_true)
    scores = np.asarray(y_score, dtype=np.float64)
    if labels.ndim != 1 or scores.shape != labels.shape:
        raise ParameterError(f"y_true and y_score must be 1-D of the same length, got "
                             f"{labels.shape} and {scores.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise DataError("y_true must hold binary labels (0/1 or False/True)")
    if np.isnan(scores).any():
        raise DataError("y_score contains NaN")
    positives = labels.astype(bool)
    if positives.all() or not positives.any():
        raise DataError("AUC needs at least one positive and one negative label")
    return _auc_from_scores(scores, positives)


def _auc_from_scores(scores: np.ndarray, positives: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    num_positive = positives.sum()
    num_negative = len(scores) - num_positive
    return float((ranks[positives].sum() - num_positive * (num_positive + 1) / 2)
                 / (num_positive * num_negative))


def user_auc(scores: np.ndarray, relevant_mask: np.ndarray, *, exclude: np.ndarray | None = None,
             per_user: bool = False) -> float | np.ndarray:
    """Per-user AUC over the whole catalogue, averaged over users (sometimes called GAUC).

    Introduced in chapter 06. For each user: the probability that a relevant
    item outscores a non-relevant, non-excluded one (ties count one half). Users
    with no relevant item, or no candidate negative, are skipped (NaN).

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items)
    relevant_mask : bool ndarray of shape (n_users, n_items)
    exclude : bool ndarray of shape (n_users, n_items), optional
        Items to leave out entirely (the training items).
    """
    scores = np.asarray(scores, dtype=np.float64)
    relevant_mask = np.asarray(relevant_mask, dtype=bool)
    if scores.ndim != 2 or relevant_mask.shape != scores.shape:
        raise ParameterError(f"scores and relevant_mask must be 2-D of the same shape, got "
                             f"{scores.shape} and {relevant_mask.shape}")
    if exclude is not None and np.asarray(exclude).shape != scores.shape:
        raise ParameterError(f"exclude has shape {np.asarray(exclude).shape}, expected "
                             f"{scores.shape}")
    if np.isnan(scores).any():
        raise DataError("scores contains NaN")
    values = np.full(len(scores), np.nan)
    for row in range(len(scores)):
        keep = np.ones(scores.shape[1], bool) if exclude is None else ~np.asarray(exclude[row])
        positives = relevant_mask[row][keep]
        if positives.any() and not positives.all():
            values[row] = _auc_from_scores(scores[row][keep], positives)
    if per_user:
        return values
    if np.isnan(values).all():
        raise DataError("no user has both a relevant and a non-relevant candidate item")
    return float(np.nanmean(values))


def _flatten(recommended) -> np.ndarray:
    if isinstance(recommended, (str, bytes)):
        raise ParameterError("recommended must be a sequence of lists, not a string")
    lists = [np.asarray(items).ravel() for items in recommended]
    if not lists:
        raise ParameterError("recommended is empty")
    return np.concatenate(lists) if lists else np.array([])


def catalog_coverage(recommended: Sequence, catalog: Collection) -> float:
    """Share of the catalogue recommended to at least one user.

    Introduced in chapter 06. As Recommenders' ``catalog_coverage``:
    (distinct recommended items) / (distinct items in ``catalog``), where
    Recommenders' catalogue is the set of training items.
    """
    flat = _flatten(recommended)
    catalog_items = np.unique(np.asarray(list(catalog)))
    if len(catalog_items) == 0:
        raise ParameterError("catalog is empty")
    return float(len(np.unique(flat)) / len(catalog_items))


def distributional_coverage(recommended: Sequence) -> float:
    """Entropy (in bits) of how often each item is recommended, as Recommenders'.

    Introduced in chapter 06. ``-sum_i p(i) log2 p(i)`` with ``p(i)`` the share of
    all recommendation slots taken by item ``i``; larger means exposure is spread.
    """
    flat = _flatten(recommended)
    _, counts = np.unique(flat, return_counts=True)
    share = counts / counts.sum()
    return float(-(share * np.log2(share)).sum())


def _item_counts(train_items: Sequence | pd.Series) -> pd.Series:
    values = pd.Series(np.asarray(train_items))
    if values.empty:
        raise ParameterError("train_items is empty")
    return values.value_counts()


def novelty(recommended: Sequence, train_items: Sequence, *, per_user: bool = False
            ) -> float | np.ndarray:
    """Mean novelty ``-log2(count_i / n_train_rows)`` of the recommended items.

    Introduced in chapter 06. As Recommenders' ``novelty`` (Castells et al.,
    item choice model): ``train_items`` is the ``item_id`` column of the training
    interactions (one entry per interaction); an item's novelty is
    ``-log2(its rows / all rows)``. As in Recommenders, an item with no training
    row contributes 0 (it has no estimate) but still counts in the mean. The
    global value is the mean over all recommendation slots; ``per_user=True``
    gives the mean over each user's own list.
    """
    counts = _item_counts(train_items)
    item_novelty = -np.log2(counts / counts.sum())
    lists = [np.asarray(items).ravel() for items in recommended]
    if not lists:
        raise ParameterError("recommended is empty")
    per_user_values = np.array([
        item_novelty.reindex(items).fillna(0.0).mean() if len(items) else np.nan
        for items in lists
    ])
    if per_user:
        return per_user_values
    flat = np.concatenate(lists)
    return float(item_novelty.reindex(flat).fillna(0.0).sum() / len(flat))


def intra_list_diversity(recommended: Sequence, item_vectors: pd.DataFrame | np.ndarray, *,
                         per_user: bool = False) -> float | np.ndarray:
    """Intra-list diversity: 1 - mean pairwise cosine similarity within each list.

    Introduced in chapter 06. As Recommenders' ``diversity`` with
    ``item_sim_measure="item_feature_vector"``: for each user, the mean cosine
    similarity over distinct pairs of recommended items is subtracted from 1;
    the result is averaged over users. Lists with fewer than two items are
    skipped (NaN).

    Parameters
    ----------
    item_vectors : DataFrame indexed by item id (one row per item), or ndarray of
        shape (n_items, dim) when the recommended ids are row indices.
    """
    from mmrec_lib.similarity import normalize_rows

    if isinstance(item_vectors, pd.DataFrame):
        index = item_vectors.index
        vectors = normalize_rows(item_vectors.to_numpy(dtype=np.float64))
    else:
        vectors = normalize_rows(check_matrix("item_vectors",
                                                np.asarray(item_vectors, dtype=np.float64)))
        index = None
    values = []
    for items in recommended:
        items = np.asarray(items).ravel()
        if len(items) < 2:
            values.append(np.nan)
            continue
        if index is not None:
            rows = index.get_indexer(items)
            if (rows < 0).any():
                raise DataError(f"item_vectors has no row for items {items[rows < 0][:5].tolist()}")
        else:
            rows = items.astype(np.int64)
            if rows.min() < 0 or rows.max() >= len(vectors):
                raise DataError(f"item indices must be in [0, {len(vectors) - 1}]")
        block = vectors[rows]
        similarity = block @ block.T
        upper = np.triu_indices(len(rows), k=1)
        values.append(1.0 - similarity[upper].mean())
    values = np.asarray(values, dtype=np.float64)
    if per_user:
        return values
    if np.isnan(values).all():
        raise DataError("no recommendation list has two or more items")
    return float(np.nanmean(values))


def average_recommended_popularity(recommended: Sequence, train_items: Sequence, *,
                                   per_user: bool = False) -> float | np.ndarray:
    """ARP: mean, over users, of the mean training popularity of their recommended items.

    Introduced in chapter 06 (Abdollahpouri et al.). An item's popularity is its
    number of training rows; unseen items count 0.
    """
    counts = _item_counts(train_items)
    values = np.array([
        counts.reindex(np.asarray(items).ravel()).fillna(0).mean() if len(items) else np.nan
        for items in recommended
    ], dtype=np.float64)
    if per_user:
        return values
    return float(np.nanmean(values))


def gini_index(values: Sequence[float]) -> float:
    r"""Gini coefficient of non-negative values: 0 = perfectly equal, -> 1 = concentrated.

    Introduced in chapter 06. With :math:`x_{(1)} \le \dots \le x_{(n)}`,

    .. math:: G = \frac{\sum_{i=1}^{n} (2i - n - 1)\, x_{(i)}}{n \sum_i x_i}.
    """
    array = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if array.size == 0:
        raise ParameterError("values is empty")
    if (array < 0).any() or not np.isfinite(array).all():
        raise DataError("values must be finite and non-negative")
    total = array.sum()
    if total == 0:
        return 0.0
    n = array.size
    weights = 2 * np.arange(1, n + 1) - n - 1
    return float((weights * array).sum() / (n * total))


def exposure_gini(recommended: Sequence, catalog: Collection) -> float:
    """Gini index of how many times each catalogue item is recommended (popularity bias).

    Introduced in chapter 06. Items never recommended count with exposure 0, so
    a system that shows only a few items scores close to 1.
    """
    flat = _flatten(recommended)
    catalog_items = np.unique(np.asarray(list(catalog)))
    if len(catalog_items) == 0:
        raise ParameterError("catalog is empty")
    exposure = pd.Series(flat).value_counts().reindex(catalog_items).fillna(0).to_numpy()
    return gini_index(exposure)


def lists_from_frames(
    truth: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    k: int = 10,
    prediction_col: str = PREDICTION_COL,
) -> tuple[np.ndarray, list[np.ndarray], list[set]]:
    """Turn Recommenders-style frames into (users, recommended, relevant) lists.

    Introduced in chapter 06. ``truth`` has one row per relevant (user, item);
    ``predictions`` one row per scored (user, item) with ``prediction_col``. Only
    users present in both are kept (Recommenders' rule); each user's items are
    ranked by descending prediction (ties: the order of the rows, as pandas'
    stable sort in Recommenders) and cut at ``k``.

    Returns
    -------
    users : ndarray of the common user ids, sorted
    recommended : list of ndarrays of item ids, best first
    relevant : list of sets of item ids
    """
    k = check_int("k", k)
    check_interactions(truth)
    check_interactions(predictions, columns=(USER_COL, ITEM_COL, prediction_col))
    common = np.intersect1d(truth[USER_COL].unique(), predictions[USER_COL].unique())
    if len(common) == 0:
        raise DataError("truth and predictions have no user in common")
    ranked = (predictions[predictions[USER_COL].isin(common)]
              .sort_values([USER_COL, prediction_col], ascending=[True, False], kind="stable")
              .groupby(USER_COL, sort=True).head(k))
    by_user_recommended = ranked.groupby(USER_COL, sort=True)[ITEM_COL].apply(np.asarray)
    by_user_relevant = (truth[truth[USER_COL].isin(common)]
                        .groupby(USER_COL, sort=True)[ITEM_COL].apply(set))
    recommended = [by_user_recommended[user] for user in common]
    relevant = [by_user_relevant[user] for user in common]
    return common, recommended, relevant


# Per-user values from a (n_users, k) hit matrix: mmrec_lib.evaluation builds the
# hits in bulk from integer indices and reuses the exact same formulas.
def _precision_values(hits, num_relevant, k):
    return hits.sum(axis=1) / k


def _recall_values(hits, num_relevant, k):
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits.sum(axis=1) / num_relevant


def _ndcg_values(hits, num_relevant, k):
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal_cumulative = np.concatenate([[0.0], np.cumsum(discounts)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hits @ discounts) / ideal_cumulative[np.minimum(num_relevant, k)]


def _map_values(hits, num_relevant, k, normalize="min_k"):
    hit_number = np.cumsum(hits, axis=1)
    precision_at_hits = np.where(hits, hit_number / np.arange(1, k + 1), 0.0).sum(axis=1)
    denominator = np.minimum(num_relevant, k) if normalize == "min_k" else num_relevant
    with np.errstate(invalid="ignore", divide="ignore"):
        return precision_at_hits / denominator


def _hit_rate_values(hits, num_relevant, k):
    return hits.any(axis=1).astype(float)


def _mrr_values(hits, num_relevant, k):
    first = np.argmax(hits, axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)
