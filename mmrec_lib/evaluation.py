"""One-call evaluation of an interest model on a split, with bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import ITEM_COL, USER_COL, check_interactions
from mmrec_lib.metrics import ranking as _metrics
from mmrec_lib.splits import Split
from mmrec_lib.utils import check_is_fitted

__all__ = ["evaluate", "recommend_for_evaluation", "METRICS", "DEFAULT_METRICS"]

#: Every metric name :func:`evaluate` understands.
METRICS = ("precision", "recall", "ndcg", "map", "map_relevant", "hit_rate", "mrr", "auc",
           "coverage", "novelty", "diversity", "arp", "gini", "tied")
#: What :func:`evaluate` reports when ``metrics`` is not given.
DEFAULT_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr", "coverage",
                   "novelty", "gini")

_RANKING_VALUES = {
    "precision": _metrics._precision_values,
    "recall": _metrics._recall_values,
    "ndcg": _metrics._ndcg_values,
    "map": _metrics._map_values,
    "map_relevant": lambda hits, num, k: _metrics._map_values(hits, num, k, "relevant"),
    "hit_rate": _metrics._hit_rate_values,
    "mrr": _metrics._mrr_values,
}


def _as_split(split) -> Split:
    if isinstance(split, Split):
        return split
    if isinstance(split, (tuple, list)) and len(split) in (2, 3):
        frames = list(split)
        for frame in frames:
            check_interactions(frame)
        if len(frames) == 2:
            train, test = frames
            validation = train.iloc[:0]
        else:
            train, validation, test = frames
        return Split(train, validation, test, kind="given")
    raise ParameterError("split must be a mmrec_lib.splits.Split or a (train, test) / "
                         f"(train, validation, test) tuple of DataFrames, got {type(split).__name__}")


def recommend_for_evaluation(
    model,
    split,
    k: int = 10,
    *,
    on: Literal["test", "validation"] = "test",
    remove_seen: bool = True,
    user_block: int = 512,
    with_auc: bool = False,
    candidates: Sequence | None = None,
    tie_break: Literal["random", "index"] = "random",
    seed: int = 0,
) -> dict:
    """Score the evaluated users in blocks and keep their top-``k`` lists.

    Introduced in chapter 06. The evaluated users are those in the target frame
    (``split.test`` or ``split.validation``) that the model knows, as in
    Recommenders (users present in both truth and predictions). With
    ``remove_seen`` the items a user has in ``train`` (and, when evaluating on
    test, in ``validation``) cannot be recommended. With ``candidates`` only
    those item ids can (e.g. the cold items, to rank new releases among
    themselves); target rows of other items are dropped.

    Equal scores are ordered at random (``tie_break="random"``, one random
    permutation per user drawn from ``seed``; the same seed gives the same
    lists), so a model that cannot tell items apart is measured as random,
    not as the catalogue order. A recommended slot is *tied* when another
    allowed item has exactly the same score: the tie, not the model, decided
    what fills it.

    Returns
    -------
    dict with ``users`` (ids, shape (n,)), ``indices`` (int64 (n, k), catalogue
    indices, -1 where fewer than k items were allowed), ``hits`` (bool (n, k)),
    ``num_relevant`` (int (n,)), ``auc`` (float (n,) or None), ``train_items``
    (item id of every training row), ``catalogue`` (model.item_ids_),
    ``tied`` (bool (n, k): the slot's score is shared with another allowed item).
    """
    from mmrec_lib.interactions import IdEncoder, build_user_item_matrix
    from mmrec_lib.similarity import top_k

    check_is_fitted(model)
    split = _as_split(split)
    check_choice("on", on, ("test", "validation"))
    k = check_int("k", k)
    user_block = check_int("user_block", user_block)
    num_items = len(model.item_ids_)
    if k > num_items:
        raise ParameterError(f"k={k} must be in [1, {num_items}] (the catalogue size)")
    target = split.test if on == "test" else split.validation
    check_interactions(target)
    allowed = None
    if candidates is not None:
        candidates = np.asarray(list(candidates))
        allowed = pd.Index(model.item_ids_).isin(candidates)
        if not allowed.any():
            raise DataError("no candidate item is in the model's catalogue")
        if allowed.sum() < k:
            raise ParameterError(f"k={k} is larger than the {int(allowed.sum())} candidate items")
        target = target[target[ITEM_COL].isin(candidates)]
    if target.empty:
        raise DataError(f"split.{on} has no rows to evaluate"
                        + (" among the candidate items" if candidates is not None else ""))
    seen_frames = [split.train] + ([split.validation] if on == "test" else [])
    seen = pd.concat([frame[[USER_COL, ITEM_COL]] for frame in seen_frames], ignore_index=True)
    seen = seen.drop_duplicates()

    known_users = pd.Index(model.user_ids_)
    users = np.unique(target[USER_COL].to_numpy())
    users = users[known_users.get_indexer(users) >= 0]
    if len(users) == 0:
        raise DataError(f"no user of split.{on} is known to the model (fit it on split.train)")
    user_encoder = IdEncoder().fit(users)
    item_encoder = IdEncoder(unknown="ignore").fit(model.item_ids_)
    ignore_users = IdEncoder(unknown="ignore").fit(users)
    target = target[target[USER_COL].isin(users)].drop_duplicates([USER_COL, ITEM_COL])
    num_relevant = target.groupby(USER_COL)[ITEM_COL].size().reindex(users).to_numpy()
    relevant_matrix, _, _ = build_user_item_matrix(
        target, user_encoder=user_encoder, item_encoder=item_encoder)
    seen_matrix, _, _ = build_user_item_matrix(
        seen, user_encoder=ignore_users, item_encoder=item_encoder)

    indices = np.full((len(users), k), -1, dtype=np.int64)
    hits = np.zeros((len(users), k), dtype=bool)
    tied = np.zeros((len(users), k), dtype=bool)
    rng = np.random.default_rng(check_seed(seed))
    auc_values = np.full(len(users), np.nan) if with_auc else None
    for start in range(0, len(users), user_block):
        stop = min(start + user_block, len(users))
        scores = np.asarray(model.score(users[start:stop]))
        if scores.shape != (stop - start, num_items):
            raise DataError(f"model.score returned shape {scores.shape}, expected "
                            f"{(stop - start, num_items)}")
        if allowed is not None:
            scores = np.where(allowed[None, :], scores, -np.inf)
        exclude = seen_matrix[start:stop] if remove_seen else None
        block_indices, block_scores = top_k(scores, k, exclude=exclude, return_scores=True,
                                            tie_break=tie_break, seed=rng)
        block_indices = np.where(np.isfinite(block_scores), block_indices, -1)
        tied[start:stop] = _tied_slots(scores, block_scores, exclude)
        relevant_block = relevant_matrix[start:stop].toarray() != 0
        safe = np.maximum(block_indices, 0)
        hits[start:stop] = np.take_along_axis(relevant_block, safe, axis=1) & (block_indices >= 0)
        indices[start:stop] = block_indices
        if with_auc:
            exclude_dense = seen_matrix[start:stop].toarray() != 0
            if allowed is not None:
                exclude_dense |= ~allowed[None, :]
            auc_values[start:stop] = _metrics.user_auc(scores, relevant_block,
                                                       exclude=exclude_dense, per_user=True)
    return {"users": users, "indices": indices, "hits": hits, "num_relevant": num_relevant,
            "auc": auc_values, "train_items": split.train[ITEM_COL].to_numpy(),
            "catalogue": np.asarray(model.item_ids_), "tied": tied}


def _tied_slots(scores: np.ndarray, top_scores: np.ndarray, exclude) -> np.ndarray:
    """bool (n, k): the slot's score is finite and held by more than one allowed item."""
    allowed = np.asarray(scores, dtype=np.float64)
    if exclude is not None:
        allowed = np.where(exclude.toarray() != 0, -np.inf, allowed)
    counts = np.stack([(allowed == top_scores[:, [slot]]).sum(axis=1)
                       for slot in range(top_scores.shape[1])], axis=1)
    return np.isfinite(top_scores) & (counts > 1)


def evaluate(
    model,
    split,
    k: int = 10,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    on: Literal["test", "validation"] = "test",
    remove_seen: bool = True,
    item_vectors: pd.DataFrame | None = None,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    name: str | None = None,
    user_block: int = 512,
    candidates: Sequence | None = None,
    tie_break: Literal["random", "index"] = "random",
) -> pd.DataFrame:
    """Score, remove seen items, rank, and measure: one tidy row per metric.

    Introduced in chapter 06. The protocol is Microsoft Recommenders': top-``k``
    over the whole catalogue with training items removed, every target item
    relevant, metrics averaged over the target users the model knows (see
    :mod:`mmrec_lib.metrics` for each definition). ``map`` is Recommenders'
    ``map_at_k`` (divides by min(k, #relevant)); ``map_relevant`` is its ``map``
    (divides by #relevant, the MAP column of Recommenders' published table).

    Confidence intervals: the evaluated users are resampled with replacement
    ``n_bootstrap`` times; the interval is the percentile interval of the metric
    over the resamples (``n_bootstrap=0`` gives NaN bounds). They measure
    uncertainty from the choice of users, not from the split or training seed.
    For the set-level metrics (``coverage``, ``gini``) a resample repeats some
    users and drops others, so fewer distinct lists are pooled and the interval
    sits below the full-sample value: read it as a spread, not as a confidence
    interval.

    Parameters
    ----------
    model : fitted InterestModel (anything with ``user_ids_``, ``item_ids_``, ``score``)
    split : Split, or (train, test), or (train, validation, test)
    k : int
    metrics : names from :data:`METRICS`. ``coverage`` = distinct recommended
        items / distinct training items; ``novelty`` = mean -log2 popularity share;
        ``diversity`` = intra-list diversity (needs ``item_vectors``);
        ``arp`` = average recommended popularity; ``gini`` = Gini index of
        exposure over the training items; ``auc`` = mean per-user AUC;
        ``tied`` = share of a user's recommended slots decided by a tie.
    on : {"test", "validation"}
    remove_seen : bool
        Set False only to show what goes wrong without it.
    item_vectors : DataFrame indexed by item id, for ``diversity``.
    n_bootstrap, confidence, seed : bootstrap settings; ``seed`` also orders ties.
    name : label for the ``model`` column (default: the class name).
    candidates : item ids, optional
        Rank only these items (and keep only target rows about them): e.g.
        ``candidates=cold_items`` measures how well new releases are ordered
        among themselves, the cold-start protocol of chapter 08.
    tie_break : {"random", "index"}
        Equal scores are ordered at random from ``seed`` (default, fair), or
        lower catalogue index first (the order of :func:`top_k`'s default),
        which hands a model with constant scores the head of the catalogue.

    Returns
    -------
    DataFrame with columns ``model, metric, k, value, ci_low, ci_high, n_users``.
    ``table.attrs["tied_slots"]`` is the number of recommended slots decided by
    a tie (``table.attrs["slots"]`` the number of recommended slots).
    """
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = tuple(metrics)
    unknown = [metric for metric in metrics if metric not in METRICS]
    if unknown or not metrics:
        raise ParameterError(f"metrics {unknown or metrics} unknown; choose from {METRICS}")
    if "diversity" in metrics and item_vectors is None:
        raise ParameterError("metric 'diversity' needs item_vectors (DataFrame indexed by item id)")
    check_int("n_bootstrap", n_bootstrap, low=0)
    check_number("confidence", confidence, low=0, high=1, low_inclusive=False,
                 high_inclusive=False)
    check_seed(seed)
    result = recommend_for_evaluation(model, split, k, on=on, remove_seen=remove_seen,
                                      user_block=user_block, with_auc="auc" in metrics,
                                      candidates=candidates, tie_break=tie_break, seed=seed)
    hits, num_relevant = result["hits"], result["num_relevant"]
    indices, catalogue = result["indices"], result["catalogue"]
    lists = [catalogue[row[row >= 0]] for row in indices]
    train_items = result["train_items"]

    per_user: dict[str, np.ndarray] = {}
    for metric in metrics:
        if metric in _RANKING_VALUES:
            per_user[metric] = _RANKING_VALUES[metric](hits, num_relevant, k)
        elif metric == "auc":
            per_user[metric] = result["auc"]
        elif metric == "novelty":
            per_user[metric] = _metrics.novelty(lists, train_items, per_user=True)
        elif metric == "diversity":
            per_user[metric] = _metrics.intra_list_diversity(lists, item_vectors, per_user=True)
        elif metric == "tied":
            per_user[metric] = (result["tied"].sum(axis=1)
                                / np.maximum((indices >= 0).sum(axis=1), 1))
        elif metric == "arp":
            per_user[metric] = _metrics.average_recommended_popularity(lists, train_items,
                                                                       per_user=True)

    # Set-level metrics work on catalogue indices so that the bootstrap stays cheap.
    catalogue_index = pd.Index(catalogue)
    train_counts = np.bincount(catalogue_index.get_indexer(train_items), minlength=len(catalogue))
    in_training = train_counts > 0
    with np.errstate(divide="ignore"):
        item_novelty = np.where(in_training, -np.log2(train_counts / train_counts.sum()), 0.0)
    valid = indices >= 0
    slot_novelty = np.where(valid, item_novelty[np.maximum(indices, 0)], 0.0)

    def set_metric(metric: str, rows: np.ndarray) -> float:
        chosen = indices[rows][valid[rows]]
        if metric == "novelty":
            return float(slot_novelty[rows].sum() / max(valid[rows].sum(), 1))
        exposure = np.bincount(chosen, minlength=len(catalogue))
        if metric == "coverage":
            return float((exposure > 0).sum() / in_training.sum())
        return _metrics.gini_index(exposure[in_training])

    num_users = len(result["users"])
    rng = np.random.RandomState(seed)
    samples = rng.randint(0, num_users, size=(n_bootstrap, num_users)) if n_bootstrap else None
    alpha = (1.0 - confidence) / 2.0
    rows = []
    for metric in metrics:
        if metric in ("coverage", "gini") or metric == "novelty":
            # Novelty is averaged over recommendation slots, as in Recommenders.
            value = set_metric(metric, np.arange(num_users))
            draws = (np.array([set_metric(metric, sample) for sample in samples])
                     if n_bootstrap else None)
        else:
            values = per_user[metric]
            if np.isnan(values).all():
                value, draws = np.nan, None
            else:
                value = float(np.nanmean(values))
                draws = np.nanmean(values[samples], axis=1) if n_bootstrap else None
        low, high = ((np.nan, np.nan) if draws is None
                     else tuple(np.quantile(draws, [alpha, 1.0 - alpha])))
        label = metric if metric == "auc" else f"{metric}@{k}"
        rows.append({"model": name or type(model).__name__, "metric": label, "k": k,
                     "value": value, "ci_low": float(low), "ci_high": float(high),
                     "n_users": num_users})
    table = pd.DataFrame(rows, columns=["model", "metric", "k", "value", "ci_low", "ci_high",
                                        "n_users"])
    table.attrs["tied_slots"] = int(result["tied"].sum())
    table.attrs["slots"] = int((indices >= 0).sum())
    return table
