"""Learning the weights of a score blend on validation data (the search behind ``HybridModel.tune``)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mmrec_lib._validation import check_int, check_number
from mmrec_lib.errors import ParameterError

__all__ = ["simplex_grid", "tune_weights"]


def simplex_grid(num_models: int, *, step: float = 0.1) -> list[np.ndarray]:
    """Every weight vector of ``num_models`` non-negative multiples of ``step`` summing to 1.

    The vectors that give one model all the weight come first, in model order (so that, among
    equally good blends, the search keeps a single model).

    Returns
    -------
    list of ndarray of shape (num_models,)
    """
    num_models = check_int("num_models", num_models)
    step = check_number("step", step, low=0.0, high=1.0, low_inclusive=False)
    num_steps = int(round(1.0 / step))
    if abs(num_steps * step - 1.0) > 1e-9:
        raise ParameterError(f"step={step!r} must divide 1 (0.1, 0.25, 0.5, ...)")
    grid = [np.array(point, dtype=np.float64) / num_steps
            for point in product(range(num_steps + 1), repeat=num_models)
            if sum(point) == num_steps]
    grid.sort(key=lambda weights: (-weights.max(), int(np.argmax(weights))))
    return grid


class _FixedScores(BaseEstimator):
    """A fitted-model stand-in that returns rows of a fixed score matrix."""

    def __init__(self, user_ids=None, item_ids=None, scores=None):
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.scores = scores

    def fit(self):
        self.user_ids_ = np.asarray(self.user_ids)
        self.item_ids_ = np.asarray(self.item_ids)
        self._rows = pd.Index(self.user_ids_)
        # The float32 cast of InterestModel.score, so tuning ranks exactly as evaluate will.
        self._scores = np.asarray(self.scores, dtype=np.float32)
        return self

    def score(self, user_ids):
        return self._scores[self._rows.get_indexer(np.asarray(user_ids))]


def tune_weights(parts: Sequence[np.ndarray], user_ids, item_ids, seen: pd.DataFrame,
                 validation: pd.DataFrame, *, names: Sequence[str] | None = None, k: int = 10,
                 step: float = 0.1, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """The weight vector of :func:`simplex_grid` whose blend ranks ``validation`` best.

    Each blend ``sum_m w_m * parts[m]`` is ranked by
    :func:`mmrec_lib.evaluation.recommend_for_evaluation` (``seen`` items removed,
    ties at random from ``seed``) and scored by NDCG@``k``, exactly as
    :func:`mmrec_lib.evaluate` would score a model returning that blend.

    Parameters
    ----------
    parts : list of ndarray of shape (n_users, n_items), the normalised member scores
    user_ids : ndarray of shape (n_users,); item_ids : ndarray of shape (n_items,)
    seen : DataFrame user_id, item_id (the training rows)
    validation : DataFrame user_id, item_id
    names : one label per part (columns of the returned table)

    Returns
    -------
    weights : ndarray of shape (n_parts,), the best (the first of equals)
    results : DataFrame, one row per weight vector tried: one column per part, ``ndcg``
    """
    from mmrec_lib import metrics
    from mmrec_lib.evaluation import recommend_for_evaluation

    k = check_int("k", k, high=len(item_ids))
    names = list(names) if names is not None else [f"model_{m}" for m in range(len(parts))]
    records = []
    grid = simplex_grid(len(parts), step=step)
    for weights in grid:
        total = sum(weight * part for weight, part in zip(weights, parts, strict=True))
        result = recommend_for_evaluation(_FixedScores(user_ids, item_ids, total).fit(),
                                          (seen, validation), k, seed=seed)
        ndcg = metrics._ndcg_values(result["hits"], result["num_relevant"], k)
        records.append([*weights, float(np.mean(ndcg))])
    results = pd.DataFrame(records, columns=[*names, "ndcg"])
    best = int(np.argmax(results["ndcg"].to_numpy()))
    return grid[best], results
