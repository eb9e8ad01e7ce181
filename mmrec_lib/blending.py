"""Blending models' scores: ``HybridModel`` and the validation search that learns its weights."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.interactions import ITEM_COL, USER_COL, check_interactions
from mmrec_lib.interest import InterestModel
from mmrec_lib.utils import check_is_fitted

__all__ = ["HybridModel", "simplex_grid", "tune_weights"]


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
    from mmrec_lib.evaluation import recommend_for_evaluation
    from mmrec_lib.metrics import ranking as metrics

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


class HybridModel(InterestModel):
    """Weighted mix of other models' scores, each standardised per user first.

    Introduced in chapter 05. ``score = sum_m weight_m * z_m`` where ``z_m`` is
    model ``m``'s score row minus its mean, divided by its standard deviation
    (``normalize="zscore"``), or rescaled to [0, 1] (``"minmax"``). Typical use:
    a collaborative model plus a content profile, so cold items still get a
    content score. The base models are fitted by ``fit`` (on clones).

    Equal weights are a guess, and a bad one when the members differ in
    quality (EASE + a content profile is below EASE alone on MovieLens). The
    weights can be learned on validation data (chapter 06): call
    :meth:`tune` with a validation frame after ``fit``, or pass
    ``weights="tune"`` and ``fit`` holds out ``validation_ratio`` of every
    user's training rows, fits the members on the rest, tunes, and refits the
    members on all of ``train``. Tuning searches the simplex grid of weights
    (step ``0.1``, every member alone included) for the best NDCG@10 under the
    protocol of :func:`mmrec_lib.evaluate` (seen items removed, ties at random),
    so on the split it tuned on the hybrid is never below its best member.

    Parameters
    ----------
    models : sequence of InterestModel
    weights : sequence of float, "tune", or None (default: equal weights)
    normalize : {"zscore", "minmax"}
    validation_ratio : float in (0, 1)
        Share of each user's training rows held out when ``weights="tune"``.
    seed : int
        Seed of that hold-out and of the random tie order while tuning.

    Attributes
    ----------
    models_ : list of fitted clones of ``models``
    weights_ : ndarray of shape (n_models,), the weights in use
    tuning_results_ : DataFrame (one row per weight vector tried: one column per
        model, ``ndcg``), only after tuning
    """

    def __init__(self, models: Sequence[InterestModel] = (), *,
                 weights: Sequence[float] | Literal["tune"] | None = None,
                 normalize: Literal["zscore", "minmax"] = "zscore",
                 validation_ratio: float = 0.2, seed: int = 0):
        self.models = models
        self.weights = weights
        self.normalize = normalize
        self.validation_ratio = validation_ratio
        self.seed = seed

    def _check_params(self):
        if not self.models:
            raise ParameterError("models must name at least one InterestModel")
        for model in self.models:
            if not isinstance(model, InterestModel):
                raise ParameterError(f"{model!r} is not an InterestModel")
        if isinstance(self.weights, str):
            if self.weights != "tune":
                raise ParameterError(f"weights={self.weights!r} must be a sequence of numbers, "
                                     "'tune' or None")
        elif self.weights is not None:
            if len(self.weights) != len(self.models):
                raise ParameterError(f"weights has {len(self.weights)} entries for "
                                     f"{len(self.models)} models")
            for weight in self.weights:
                check_number("weight", weight)
        if self.normalize not in ("zscore", "minmax"):
            raise ParameterError(f"normalize={self.normalize!r} must be 'zscore' or 'minmax'")
        check_number("validation_ratio", self.validation_ratio, low=0.0, high=1.0,
                     low_inclusive=False, high_inclusive=False)
        check_seed(self.seed)

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None):
        """Fit every base model (clones) on the same data, then this model.

        With ``weights="tune"`` the weights are first learned on a hold-out of
        ``train`` (see the class docstring); ``tuning_results_`` records the search.
        """
        from mmrec_lib.splits import stratified_split

        self._check_params()
        if isinstance(self.weights, str):
            check_interactions(train)
            holdout = stratified_split(train, ratio=1.0 - self.validation_ratio, by="user",
                                       seed=self.seed)
            if holdout.test.empty:
                raise DataError("train is too small to hold out validation rows for tuning")
            self._fit_members(holdout.train, item_vectors)
            self.tune(holdout.test, seed=self.seed)
            weights, results = self.weights_, self.tuning_results_
            self._fit_members(train, item_vectors)
            self.weights_, self.tuning_results_ = weights, results
            return self
        self._fit_members(train, item_vectors)
        return self

    def _fit_members(self, train, item_vectors):
        from sklearn.base import clone

        self.models_ = [clone(model).fit(train, item_vectors) for model in self.models]
        self.weights_ = (np.ones(len(self.models)) if self.weights is None
                         or isinstance(self.weights, str) else np.asarray(self.weights, float))
        super().fit(train, item_vectors)

    def _fit(self, X, vectors, train):
        for model in self.models_:
            if not np.array_equal(model.item_ids_, self.item_ids_):
                raise ModelError(f"{type(model).__name__} ended with a different item catalogue")

    def _normalized_scores(self, user_ids) -> list[np.ndarray]:
        parts = []
        for model in self.models_:
            scores = model.score(user_ids).astype(np.float64)
            if self.normalize == "zscore":
                spread = scores.std(axis=1, keepdims=True)
                scores = (scores - scores.mean(axis=1, keepdims=True)) / np.maximum(spread, 1e-12)
            else:
                low = scores.min(axis=1, keepdims=True)
                span = scores.max(axis=1, keepdims=True) - low
                scores = (scores - low) / np.maximum(span, 1e-12)
            parts.append(scores)
        return parts

    def _score(self, user_index):
        parts = self._normalized_scores(self.user_ids_[user_index])
        return sum(weight * part for weight, part in zip(self.weights_, parts, strict=True))

    def tune(self, validation: pd.DataFrame, *, k: int = 10, step: float = 0.1, seed: int = 0):
        """Learn ``weights_`` on ``validation`` (rows the members did not train on).

        Every weight vector on the simplex grid with spacing ``step`` (each
        member alone included) is scored by NDCG@``k`` with
        :func:`mmrec_lib.evaluation.recommend_for_evaluation` (training items
        removed, ties at random from ``seed``); the best is kept (the first of
        equals, so a member alone wins a tie). Returns ``self``.

        Parameters
        ----------
        validation : DataFrame with user_id, item_id
        k : int >= 1
        step : float in (0, 1], with ``1 / step`` an integer
        seed : int
        """
        from mmrec_lib.blending import tune_weights

        check_is_fitted(self)
        check_interactions(validation)
        users = np.intersect1d(np.unique(validation[USER_COL].to_numpy()), self.user_ids_)
        if len(users) == 0:
            raise DataError("no user of validation is known to the model (fit it on train first)")
        rows, cols = self.train_matrix_.nonzero()
        seen = pd.DataFrame({USER_COL: self.user_ids_[rows], ITEM_COL: self.item_ids_[cols]})
        names = [f"{index}:{type(model).__name__}" for index, model in enumerate(self.models_)]
        self.weights_, self.tuning_results_ = tune_weights(
            self._normalized_scores(users), users, self.item_ids_, seen, validation,
            names=names, k=k, step=step, seed=seed)
        return self
