"""Next-item evaluation: full ranking over the catalogue (the honest one) and sampled ranking.

Introduced in chapter 09. For each evaluated user there is one target, the
held-out next item. The model scores every catalogue item after the user's
history; the items of the history are removed from the ranking (the target
itself never is, even if it was seen before), and HR@k and NDCG@k are computed
with :mod:`mmrec_lib.metrics` on the resulting top-k lists. A target that is
not in the model's catalogue (an item no training sequence contains) counts as
a miss.

The *sampled* protocol (used by many papers before Krichene & Rendle, 2020)
ranks the target among only ``num_negatives`` sampled items the user has not
seen: drawn uniformly from the catalogue, or in proportion to their number of
training events (``sampling="popularity"``), without replacement. Its numbers
are much higher and can even reorder models; it is here for comparison only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_int, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import ITEM_COL, USER_COL, IdEncoder
from mmrec_lib.metrics import hit_rate_at_k, ndcg_at_k, recall_at_k
from mmrec_lib.sequential.data import SequenceSplit, user_sequences
from mmrec_lib.similarity import top_k
from mmrec_lib.utils import check_is_fitted

__all__ = ["next_item_metrics", "sample_candidates", "evaluation_histories",
           "released_candidates", "evaluate_next_item", "evaluate_session"]

# Index of a target outside the catalogue: never recommended, so always a miss.
_MISSING_TARGET = -2


def next_item_metrics(scores: np.ndarray, targets: np.ndarray, exclude=None, *, k: int = 10,
                      per_user: bool = False) -> dict[str, float | np.ndarray]:
    """HR@k and NDCG@k of one target per row.

    Introduced in chapter 09. Ties rank the lower item index first (as
    :func:`mmrec_lib.similarity.top_k`).

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items)
    targets : ndarray of int, shape (n_users,)
        The target's item index; a negative value means "not in the catalogue" (a miss).
    exclude : optional
        Items removed from each row's ranking: one collection of item indices per
        row, or a boolean array of shape (n_users, n_items) (True = removed).
        Callers must not exclude the target.
    k : int in [1, n_items]
    per_user : bool
        Return arrays of shape (n_users,) instead of means.

    Returns
    -------
    dict with keys ``"hr@k"`` and ``"ndcg@k"`` (``k`` spelt out)
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ParameterError(f"scores must be (n_users, n_items) and targets (n_users,); got "
                             f"{scores.shape} and {targets.shape}")
    k = check_int("k", k, high=scores.shape[1])
    recommended = top_k(scores, k, exclude=exclude)
    relevant = [[int(t)] if t >= 0 else [_MISSING_TARGET] for t in targets]
    return {f"hr@{k}": hit_rate_at_k(list(recommended), relevant, k, per_user=per_user),
            f"ndcg@{k}": ndcg_at_k(list(recommended), relevant, k, per_user=per_user)}


def sample_candidates(targets: np.ndarray, exclude: list[np.ndarray], num_items: int, *,
                      num_negatives: int = 100,
                      sampling: Literal["uniform", "popularity"] = "uniform",
                      item_counts: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Boolean mask of shape (n_users, num_items): the target plus sampled unseen negatives.

    Introduced in chapter 09. Negatives are drawn without replacement among the
    items that are neither the target nor in ``exclude[u]``, uniformly or in
    proportion to ``item_counts`` (items with count 0 are then never drawn). A
    user with fewer allowed items gets all of them.
    """
    num_negatives = check_int("num_negatives", num_negatives)
    check_choice("sampling", sampling, ("uniform", "popularity"))
    if sampling == "popularity" and item_counts is None:
        raise ParameterError("sampling='popularity' needs item_counts")
    rng = np.random.default_rng(check_seed(seed))
    weights = (np.ones(num_items) if sampling == "uniform"
               else np.asarray(item_counts, dtype=np.float64))
    candidates = np.zeros((len(targets), num_items), dtype=bool)
    for row, target in enumerate(targets):
        allowed = weights.copy()
        allowed[np.asarray(exclude[row], dtype=np.int64)] = 0.0
        if target >= 0:
            allowed[target] = 0.0
            candidates[row, target] = True
        pool = np.flatnonzero(allowed > 0)
        if len(pool) <= num_negatives:
            chosen = pool
        else:
            chosen = rng.choice(pool, size=num_negatives, replace=False,
                                p=allowed[pool] / allowed[pool].sum())
        candidates[row, chosen] = True
    return candidates


def evaluation_histories(split: SequenceSplit, stage: Literal["validation", "test"] = "test"
                         ) -> tuple[list[np.ndarray], pd.DataFrame]:
    """The history before each target of ``stage`` and the target rows.

    Introduced in chapter 09. For ``"validation"`` the history is the user's
    ``train`` sequence; for ``"test"`` it is the ``train`` sequence followed by
    the user's validation item (the model is not refitted, as in SASRec).

    Returns
    -------
    histories : list of n_targets arrays of item ids, oldest first
    targets : DataFrame, the rows of ``split.validation`` or ``split.test``
    """
    check_choice("stage", stage, ("validation", "test"))
    targets = split.validation if stage == "validation" else split.test
    sequences = user_sequences(split.train)
    previous = (split.validation.set_index(USER_COL)[ITEM_COL]
                if stage == "test" else pd.Series(dtype=object))
    histories = []
    for user in targets[USER_COL]:
        history = sequences[user] if user in sequences.index else np.zeros(0, np.int64)
        if user in previous.index:
            history = np.append(history, previous[user])
        histories.append(history)
    return histories, targets


def _history_context(split: SequenceSplit, stage: str, targets: pd.DataFrame) -> dict:
    """For a model that reads time and user: each history's view times, request time, user.

    The histories are those of :func:`evaluation_histories` (same order); the
    request time is the target's timestamp (when the split has one).
    """
    from mmrec_lib.interactions import TIMESTAMP_COL
    from mmrec_lib.sequential.data import sort_interactions

    context = {"users": targets[USER_COL].to_numpy()}
    if TIMESTAMP_COL not in split.train.columns or TIMESTAMP_COL not in targets.columns:
        return context
    ordered = sort_interactions(split.train)
    times = ordered.groupby(USER_COL, sort=True)[TIMESTAMP_COL].apply(
        lambda t: t.to_numpy())
    previous = (split.validation.set_index(USER_COL)[TIMESTAMP_COL]
                if stage == "test" and TIMESTAMP_COL in split.validation.columns else None)
    history_times = []
    for user in targets[USER_COL]:
        row = times[user] if user in times.index else np.zeros(0, "datetime64[ns]")
        if previous is not None and user in previous.index:
            row = np.append(row, np.asarray(previous[user]).astype(row.dtype))
        history_times.append(row)
    context.update(times=history_times, at=targets[TIMESTAMP_COL].to_numpy())
    return context


def released_candidates(release_time: pd.Series, *, only=None,
                        time_col: str = "timestamp") -> Callable:
    """Candidate rule "released by the time of the target" (optionally among ``only`` items).

    Introduced in chapter 09, for catalogues that grow (MiniClips): an item
    released after the held-out event cannot have been watched then, so it is
    not ranked (the protocol of :meth:`MiniClips.oracle_leave_last_out`).

    Parameters
    ----------
    release_time : Series indexed by item id
    only : collection of item ids, optional
        Rank only these (e.g. the new releases of a cold-start test).
    time_col : str
        Column of the target rows holding the event time.

    Returns
    -------
    callable ``(item_ids, targets) -> bool ndarray (n_targets, n_items)`` for
    the ``candidates`` argument of :func:`evaluate_next_item`.
    """
    if not isinstance(release_time, pd.Series):
        raise ParameterError("release_time must be a pandas Series indexed by item id")
    only_set = None if only is None else set(np.asarray(list(only)).tolist())

    def rule(item_ids: np.ndarray, targets: pd.DataFrame) -> np.ndarray:
        if time_col not in targets.columns:
            raise DataError(f"the target rows have no {time_col!r} column")
        released = release_time.reindex(item_ids).to_numpy()
        if pd.isna(released).any():
            missing = np.asarray(item_ids)[pd.isna(released)][:5].tolist()
            raise DataError(f"release_time has no value for item(s) {missing}")
        times = targets[time_col].to_numpy()
        mask = released[None, :] <= times[:, None]
        if only_set is not None:
            mask &= np.isin(item_ids, list(only_set))[None, :]
        return mask

    return rule


def evaluate_next_item(model, split: SequenceSplit, *,
                       stage: Literal["validation", "test"] = "test", k: int = 10,
                       protocol: Literal["full", "sampled"] = "full", num_negatives: int = 100,
                       sampling: Literal["uniform", "popularity"] = "uniform", seed: int = 0,
                       candidates: Callable | None = None,
                       per_user: bool = False) -> dict[str, float | np.ndarray]:
    """HR@k and NDCG@k of a fitted sequential model on the leave-one-out ``split``.

    Introduced in chapter 09. See the module docstring for the protocols.

    Parameters
    ----------
    model : fitted SequentialModel (anything with ``score_histories`` and ``item_ids_``)
    split : SequenceSplit from :func:`~mmrec_lib.sequential.leave_one_out`
    stage : {"validation", "test"}
    k : int
    protocol : {"full", "sampled"}
    num_negatives, sampling, seed
        The sampled protocol's negatives (ignored for ``"full"``).
    candidates : callable, optional
        ``(item_ids, targets) -> bool (n_targets, n_items)``: only True items are
        ranked (full protocol), e.g. :func:`released_candidates`. The model gets
        the mask too, without the history (a generator then searches only among
        the clips that can be shown).
    per_user : bool
        Arrays of shape (n_targets,) instead of means.

    Returns
    -------
    dict with ``"hr@k"``, ``"ndcg@k"`` and ``"num_users"``
    """
    check_is_fitted(model)
    check_choice("protocol", protocol, ("full", "sampled"))
    histories, targets = evaluation_histories(split, stage)
    allowed = None
    if candidates is not None:
        if protocol != "full":
            raise ParameterError("candidates applies to the full protocol only")
        allowed = np.asarray(candidates(np.asarray(model.item_ids_), targets), dtype=bool)
        if allowed.shape != (len(targets), len(model.item_ids_)):
            raise ParameterError(f"candidates returned shape {allowed.shape}; expected "
                                 f"{(len(targets), len(model.item_ids_))}")
    lookup = IdEncoder(unknown="ignore").fit(model.item_ids_)
    target_index = lookup.transform(targets[ITEM_COL])
    target_index = np.where(target_index >= 0, target_index, _MISSING_TARGET)
    exclude = []
    for history, target in zip(histories, target_index, strict=True):
        seen = lookup.transform(history) if len(history) else np.zeros(0, np.int64)
        exclude.append(np.unique(seen[(seen >= 0) & (seen != target)]))
    offered = None
    if allowed is not None:
        # The model is told what can be shown (a generator then spends no beam on the rest).
        offered = allowed.copy()
        for row, items in enumerate(exclude):
            offered[row, items] = False
    # Items of the history outside the catalogue cannot be fed to the model; dropped.
    context = _history_context(split, stage, targets) if getattr(
        model, "_uses_context", False) else {}
    scores = model.score_histories(histories, unknown="drop", candidates=offered, **context)
    if protocol == "sampled":
        train_index = lookup.transform(split.train[ITEM_COL])
        counts = np.bincount(train_index[train_index >= 0],
                             minlength=len(model.item_ids_)).astype(np.float64)
        candidates = sample_candidates(target_index, exclude, len(model.item_ids_),
                                       num_negatives=num_negatives, sampling=sampling,
                                       item_counts=counts, seed=seed)
        exclude = ~candidates
    elif allowed is not None:
        mask = ~allowed
        for row, items in enumerate(exclude):
            mask[row, items] = True
        exclude = mask
    result = next_item_metrics(scores, target_index, exclude, k=k, per_user=per_user)
    result["num_users"] = len(target_index)
    return result


def evaluate_session(model, split: SequenceSplit, *, k: int = 10,
                     mode: Literal["next_item", "session"] = "next_item",
                     candidates: Callable | None = None, beam_width: int | None = None
                     ) -> dict[str, float]:
    """Recall@k and NDCG@k of a list against each user's held-out session (a set of items).

    Introduced in chapter 09, with :func:`~mmrec_lib.sequential.last_session_split`.
    ``mode="next_item"`` ranks by ``score_histories`` (k alternatives for the next
    slot); ``mode="session"`` asks a generator for a whole list
    (:meth:`SemanticIDGenerator.generate_session`). The history is removed in both;
    ``candidates`` (e.g. :func:`released_candidates`) is evaluated at the session's
    first event.
    """
    check_is_fitted(model)
    check_choice("mode", mode, ("next_item", "session"))
    k = check_int("k", k)
    if mode == "session" and not hasattr(model, "generate_session"):
        raise ParameterError(f"{type(model).__name__} cannot generate sessions")
    sequences = user_sequences(split.train)
    firsts = split.test.groupby(USER_COL, sort=True).head(1)
    targets = split.test.groupby(USER_COL, sort=True)[ITEM_COL].apply(list)
    histories = [sequences[user] for user in firsts[USER_COL]]
    item_ids = np.asarray(model.item_ids_)
    lookup = IdEncoder(unknown="ignore").fit(item_ids)
    allowed = (np.ones((len(histories), len(item_ids)), dtype=bool) if candidates is None
               else np.asarray(candidates(item_ids, firsts), dtype=bool))
    for row, history in enumerate(histories):
        seen = lookup.transform(history)
        allowed[row, seen[seen >= 0]] = False
    if mode == "session":
        lists = model.generate_session(histories, length=k, beam_width=beam_width,
                                       candidates=allowed, exclude_history=True)
    else:
        if beam_width is not None and hasattr(model, "beam_width"):
            model = _with_beam(model, beam_width)
        scores = model.score_histories(histories, unknown="drop", candidates=allowed)
        lists = list(top_k(scores, k, exclude=~allowed))
    relevant = [list(dict.fromkeys(int(i) if i >= 0 else _MISSING_TARGET
                                   for i in lookup.transform(items)))
                for items in targets.loc[firsts[USER_COL]]]
    recommended = [np.asarray(items)[:k] for items in lists]
    return {f"recall@{k}": float(recall_at_k(recommended, relevant, k)),
            f"ndcg@{k}": float(ndcg_at_k(recommended, relevant, k)),
            "num_users": len(histories)}


def _with_beam(model, beam_width: int):
    import copy

    clone = copy.copy(model)
    clone.beam_width = beam_width
    return clone
