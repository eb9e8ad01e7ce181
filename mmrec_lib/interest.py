"""User interest models (the seed's U): content profile, popularity, ItemKNN, EASE, BPR-MF, hybrid.

Every model has the same interface::

    model.fit(train, item_vectors=None)        # train: DataFrame user_id, item_id, ...
    model.score(user_ids, item_ids=None)       # ndarray (len(user_ids), n_items)

``item_vectors`` is a DataFrame indexed by item id, one numeric row per item
(text, audio, visual or fused vectors). The model's catalogue ``item_ids_`` is
the sorted union of training items and the rows of ``item_vectors``, so
content-based models can score cold items that no one has interacted with yet;
collaborative models give such items the score 0 (EASE, ItemKNN, popularity)
or an untrained embedding (BPR-MF).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator

from mmrec_lib._validation import (
    check_choice,
    check_int,
    check_item_vectors,
    check_number,
    check_seed,
)
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import (
    ITEM_COL,
    TIMESTAMP_COL,
    USER_COL,
    IdEncoder,
    build_user_item_matrix,
    check_interactions,
    deduplicate,
)
from mmrec_lib.utils import check_is_fitted

# HybridModel is defined in mmrec_lib.blending and served by __getattr__ at the end of this file.
__all__ = ["InterestModel", "PopularityModel", "ContentProfileModel", "ItemKNNModel",  # noqa: F822
           "EASEModel", "UserEASEModel", "BPRMFModel", "HybridModel", "ScoreFunctionModel"]


def _check_positive(name: str, value) -> float:
    return check_number(name, value, low=0.0, low_inclusive=False)


class InterestModel(BaseEstimator):
    """Base class: encoders, the training matrix and ``score`` bookkeeping.

    Introduced in chapter 05. Subclasses implement ``_fit(X, item_vectors)`` on the
    binary user-item matrix ``X`` (n_users, n_items) and ``_score(user_index,
    item_index)``. Fitted attributes: ``user_encoder_``, ``item_encoder_``,
    ``user_ids_``, ``item_ids_`` (the catalogue), ``train_matrix_`` (csr).
    """

    #: Whether ``fit`` requires ``item_vectors``.
    _needs_item_vectors = False

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None):
        """Fit on ``train`` (user_id, item_id; repeated pairs are collapsed, the latest kept)."""
        self._check_params()
        item_vectors = check_item_vectors(item_vectors)
        if self._needs_item_vectors and item_vectors is None:
            raise ParameterError(f"{type(self).__name__} needs item_vectors (a DataFrame indexed "
                                 "by item id)")
        train = self._fit_catalogue(
            train, None if item_vectors is None else np.asarray(item_vectors.index))
        self.train_matrix_, _, _ = build_user_item_matrix(
            train, user_encoder=self.user_encoder_, item_encoder=self.item_encoder_)
        vectors = None
        if item_vectors is not None:
            missing = np.setdiff1d(self.item_ids_, np.asarray(item_vectors.index))
            if len(missing):
                raise DataError(f"item_vectors has no row for {len(missing)} training item(s), "
                                f"e.g. {missing[:5].tolist()}")
            vectors = item_vectors.loc[self.item_ids_].to_numpy(dtype=np.float32)
        self._fit(self.train_matrix_, vectors, train)
        return self

    def _fit_catalogue(self, train: pd.DataFrame, items: np.ndarray | None = None
                       ) -> pd.DataFrame:
        """Check ``train``, fit the id encoders (catalogue = its items plus ``items``), deduplicate.

        Sets ``user_encoder_``, ``item_encoder_``, ``user_ids_``, ``item_ids_`` (sorted); every
        model, :class:`~mmrec_lib.models.MultimodalRecommender` included, builds its catalogue here.
        """
        check_interactions(train)
        if train.empty:
            raise DataError("train has no rows")
        train = deduplicate(train)
        catalogue = train[ITEM_COL].to_numpy()
        if items is not None:
            catalogue = np.concatenate([catalogue, np.asarray(items)])
        self.user_encoder_ = IdEncoder().fit(train[USER_COL])
        self.item_encoder_ = IdEncoder().fit(catalogue)
        self.user_ids_ = self.user_encoder_.classes_
        self.item_ids_ = self.item_encoder_.classes_
        return train

    def _check_params(self) -> None:  # overridden where there are parameters
        return None

    def _fit(self, X: sparse.csr_matrix, vectors: np.ndarray | None, train: pd.DataFrame) -> None:
        raise NotImplementedError

    def _score(self, user_index: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def score(self, user_ids: Sequence, item_ids: Sequence | None = None) -> np.ndarray:
        """Scores of shape (len(user_ids), len(item_ids)); all catalogue items by default.

        Introduced in chapter 05. Higher is better; training items are NOT
        removed here (see :func:`mmrec_lib.similarity.top_k`'s ``exclude``).
        Unknown user or item ids raise :class:`~mmrec_lib.errors.DataError`.
        """
        check_is_fitted(self)
        user_index = self.user_encoder_.transform(user_ids)
        scores = np.asarray(self._score(user_index), dtype=np.float32)
        if item_ids is not None:
            scores = scores[:, self.item_encoder_.transform(item_ids)]
        return scores

    def recommend(self, user_ids: Sequence, *, k: int = 10, exclude_seen: bool = True
                  ) -> pd.DataFrame:
        """Top-``k`` items per user as a tidy frame (user_id, item_id, prediction, rank).

        Introduced in chapter 05.
        """
        from mmrec_lib.similarity import top_k

        scores = self.score(user_ids)
        exclude = None
        if exclude_seen:
            exclude = self.train_matrix_[self.user_encoder_.transform(user_ids)]
        k = check_int("k", k)
        if k > scores.shape[1]:
            raise ParameterError(f"k={k} must be in [1, {scores.shape[1]}]")
        indices, values = top_k(scores, k, exclude=exclude, return_scores=True)
        frame = pd.DataFrame({
            USER_COL: np.repeat(np.asarray(user_ids), k),
            ITEM_COL: self.item_ids_[indices.ravel()],
            "prediction": values.ravel(),
            "rank": np.tile(np.arange(1, k + 1), len(scores)),
        })
        return frame[np.isfinite(frame["prediction"])].reset_index(drop=True)


class ScoreFunctionModel(InterestModel):
    """Scores from a function ``score_function(user_ids, item_ids) -> (n_users, n_items)``.

    Introduced in chapter 08, where it wraps ``MiniClips.oracle_scores`` so that
    the oracle ceiling is measured by the very same :func:`mmrec_lib.evaluate`
    as every model. The catalogue is ``item_ids`` (default: the training items).

    Parameters
    ----------
    score_function : callable
    item_ids : sequence, optional
    """

    def __init__(self, score_function=None, *, item_ids=None):
        self.score_function = score_function
        self.item_ids = item_ids

    def _check_params(self):
        if not callable(self.score_function):
            raise ParameterError("score_function must be a callable (user_ids, item_ids) -> "
                                 f"scores, got {type(self.score_function).__name__}")

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None):
        """Fit on ``train``; the catalogue is ``item_ids`` (and the training items)."""
        if self.item_ids is not None and item_vectors is None:
            # The base class takes the catalogue from the training items and the index of
            # item_vectors; a one-column placeholder frame carries item_ids into it.
            item_vectors = pd.DataFrame({"placeholder": 0.0},
                                        index=pd.Index(np.asarray(self.item_ids), name=ITEM_COL))
        return super().fit(train, item_vectors)

    def _fit(self, X, vectors, train):
        return None

    def _score(self, user_index):
        scores = np.asarray(self.score_function(self.user_ids_[user_index], self.item_ids_),
                            dtype=np.float64)
        expected = (len(user_index), len(self.item_ids_))
        if scores.shape != expected:
            raise DataError(f"score_function returned shape {scores.shape}, expected {expected}")
        return scores


class PopularityModel(InterestModel):
    """Score = number of training users of the item, the same for every user.

    Introduced in chapter 05. The baseline every model must beat.
    """

    def _fit(self, X, vectors, train):
        self.item_popularity_ = np.asarray(X.sum(axis=0)).ravel().astype(np.float32)

    def _score(self, user_index):
        return np.tile(self.item_popularity_, (len(user_index), 1))


class ContentProfileModel(InterestModel):
    r"""Content profile: a user is the weighted mean of the vectors of the items they consumed.

    Introduced in chapter 05. The seed's :math:`U_u = \sum_i w_{ui} V_i / \sum_i |w_{ui}|`,
    scored against every item by cosine (or dot) similarity.

    Parameters
    ----------
    weight_col : str, optional
        Column of ``train`` with a per-interaction weight (rating, watch ratio).
        Default: every interaction weighs 1.
    half_life : float, optional
        Recency decay in days: an interaction ``d`` days older than the user's
        latest one weighs ``0.5 ** (d / half_life)``. Needs a ``timestamp`` column.
    negative_col : str, optional
        Boolean column marking negative feedback (dislike, skip); those items
        weigh ``-negative_weight`` times their weight and push the profile away.
    negative_weight : float >= 0
    metric : {"cosine", "dot"}
    """

    _needs_item_vectors = True

    def __init__(self, *, weight_col: str | None = None, half_life: float | None = None,
                 negative_col: str | None = None, negative_weight: float = 1.0,
                 metric: Literal["cosine", "dot"] = "cosine"):
        self.weight_col = weight_col
        self.half_life = half_life
        self.negative_col = negative_col
        self.negative_weight = negative_weight
        self.metric = metric

    def _check_params(self):
        check_choice("metric", self.metric, ("cosine", "dot"))
        if self.half_life is not None:
            _check_positive("half_life", self.half_life)
        check_number("negative_weight", self.negative_weight, low=0.0)

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None):
        """Fit on ``train``; ``item_vectors`` is required."""
        columns = [USER_COL, ITEM_COL]
        for column in (self.weight_col, self.negative_col):
            if column is not None:
                columns.append(column)
        if self.half_life is not None:
            columns.append(TIMESTAMP_COL)
        self._check_params()
        check_interactions(train, columns=columns)
        self._check_weight_columns(train)
        self._train_frame = train
        return super().fit(train, item_vectors)

    def _check_weight_columns(self, train: pd.DataFrame) -> None:
        """Refuse non-numeric or missing weights and non-boolean negative flags, naming the column."""
        if self.weight_col is not None:
            column = train[self.weight_col]
            if not pd.api.types.is_numeric_dtype(column):
                raise DataError(f"weight_col {self.weight_col!r} must hold numbers, got dtype "
                                f"{column.dtype}")
            bad = ~np.isfinite(column.to_numpy(dtype=np.float64))
            if bad.any():
                raise DataError(f"weight_col {self.weight_col!r} has {int(bad.sum())} NaN or "
                                "infinite value(s)")
        if self.negative_col is not None:
            column = train[self.negative_col]
            if column.isna().any():
                raise DataError(f"negative_col {self.negative_col!r} has "
                                f"{int(column.isna().sum())} missing value(s)")
            if not (pd.api.types.is_bool_dtype(column)
                    or (pd.api.types.is_numeric_dtype(column) and column.isin([0, 1]).all())):
                raise DataError(f"negative_col {self.negative_col!r} must hold booleans "
                                f"(or 0/1), got dtype {column.dtype}")

    def _interaction_weights(self, train: pd.DataFrame) -> np.ndarray:
        weights = np.ones(len(train))
        if self.weight_col is not None:
            weights = train[self.weight_col].to_numpy(dtype=np.float64)
        if self.half_life is not None:
            times = pd.to_datetime(train[TIMESTAMP_COL])
            latest = times.groupby(train[USER_COL]).transform("max")
            age_days = (latest - times).dt.total_seconds().to_numpy() / 86400.0
            weights = weights * 0.5 ** (age_days / self.half_life)
        if self.negative_col is not None:
            negative = train[self.negative_col].to_numpy(dtype=bool)
            weights = np.where(negative, -self.negative_weight * weights, weights)
        return weights

    def _fit(self, X, vectors, train):
        # Weights come from the raw rows (before deduplication) so that every
        # event counts, e.g. several plays of one item.
        raw = self._train_frame
        del self._train_frame
        weights = self._interaction_weights(raw)
        rows = self.user_encoder_.transform(raw[USER_COL])
        cols = self.item_encoder_.transform(raw[ITEM_COL])
        W = sparse.csr_matrix((weights, (rows, cols)), shape=X.shape)
        totals = np.asarray(abs(W).sum(axis=1)).ravel()
        profiles = (W @ vectors.astype(np.float64)) / np.maximum(totals, 1e-12)[:, None]
        self.user_profiles_ = profiles.astype(np.float32)
        self.item_vectors_ = vectors

    def _score(self, user_index):
        from mmrec_lib.similarity import cosine_similarity, dot_scores

        profiles = self.user_profiles_[user_index]
        if self.metric == "cosine":
            return cosine_similarity(profiles, self.item_vectors_)
        return dot_scores(profiles, self.item_vectors_)


class ItemKNNModel(InterestModel):
    """Item-based nearest neighbours with cosine similarity between item columns.

    Introduced in chapter 05. ``S[i, j]`` = cosine of the user vectors of items
    ``i`` and ``j`` (with ``shrink`` added to the denominator), only the
    ``num_neighbors`` largest per item kept, diagonal zero. Score of user ``u``
    for item ``j``: ``sum_i X[u, i] S[i, j]``.
    """

    def __init__(self, *, num_neighbors: int = 100, shrink: float = 0.0):
        self.num_neighbors = num_neighbors
        self.shrink = shrink

    def _check_params(self):
        check_int("num_neighbors", self.num_neighbors)
        check_number("shrink", self.shrink, low=0.0)

    def _fit(self, X, vectors, train):
        counts = np.asarray(X.power(2).sum(axis=0)).ravel()
        norms = np.sqrt(counts)
        co = (X.T @ X).toarray().astype(np.float64)
        similarity = co / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(similarity, 0.0)
        keep = min(self.num_neighbors, similarity.shape[0] - 1)
        if 0 < keep < similarity.shape[0] - 1:
            # For each item j (a column) keep its `keep` most similar items i
            # (ties: the lower index, as everywhere in mmrec).
            from mmrec_lib.similarity import top_k

            neighbours = top_k(similarity.T, keep)
            mask = np.zeros_like(similarity, dtype=bool)
            mask[neighbours.ravel(), np.repeat(np.arange(similarity.shape[1]), keep)] = True
            similarity[~mask] = 0.0
        self.similarity_ = similarity.astype(np.float32)

    def _score(self, user_index):
        return np.asarray(self.train_matrix_[user_index] @ self.similarity_)


class EASEModel(InterestModel):
    r"""EASE (Steck, 2019): a closed-form linear item-item model.

    Introduced in chapter 05.

    .. math::

        P = (X^\top X + \lambda I)^{-1}, \qquad
        B_{ij} = -P_{ij} / P_{jj} \ (i \ne j), \quad B_{jj} = 0,

    and the scores are :math:`X B`. One matrix inverse of size n_items.

    Parameters
    ----------
    l2 : float > 0
        The ridge penalty :math:`\lambda` (~300-1000 on MovieLens-100k).
    popularity_exponent : float
        Divide item ``j``'s scores by ``popularity_j ** popularity_exponent``
        (0 = plain EASE; > 0 demotes head items, < 0 promotes them).
    user_degree_exponent : float >= 0
        Degree normalisation: the Gram matrix becomes :math:`X^\top D^{-a} X`,
        with :math:`D` the diagonal of user activity, so heavy users weigh less in
        the item-item statistics (0 = plain EASE). ``l2`` is rescaled by
        ``trace(X^T D^-a X) / trace(X^T X)`` so one value of ``l2`` suits every
        exponent.
    """

    def __init__(self, *, l2: float = 500.0, popularity_exponent: float = 0.0,
                 user_degree_exponent: float = 0.0):
        self.l2 = l2
        self.popularity_exponent = popularity_exponent
        self.user_degree_exponent = user_degree_exponent

    def _check_params(self):
        _check_positive("l2", self.l2)
        check_number("popularity_exponent", self.popularity_exponent)
        check_number("user_degree_exponent", self.user_degree_exponent, low=0.0)

    def _fit(self, X, vectors, train):
        X = X.astype(np.float64)
        gram = (X.T @ X).toarray()
        penalty = self.l2
        if self.user_degree_exponent:
            activity = np.maximum(np.asarray(X.sum(axis=1)).ravel(), 1.0)
            weighted = sparse.diags(activity ** -self.user_degree_exponent) @ X
            plain_trace = np.trace(gram)
            gram = (X.T @ weighted).toarray()
            penalty = self.l2 * np.trace(gram) / max(plain_trace, 1e-12)
        gram[np.diag_indices_from(gram)] += penalty
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        np.fill_diagonal(weights, 0.0)
        if self.popularity_exponent:
            popularity = np.asarray(X.sum(axis=0)).ravel()
            weights = weights / np.maximum(popularity, 1.0)[None, :] ** self.popularity_exponent
        self.weights_ = weights.astype(np.float32)

    def _score(self, user_index):
        return np.asarray(self.train_matrix_[user_index] @ self.weights_)


class UserEASEModel(InterestModel):
    r"""The user-user twin of EASE: each user's row is regressed on the other users' rows.

    Introduced in chapter 06 (the benchmark). With
    :math:`P = (X X^\top + \lambda I)^{-1}` and :math:`C_{uv} = -P_{uv}/P_{vv}`
    (zero diagonal), the scores are :math:`C^\top X`. It needs an n_users x n_users
    inverse, so it suits small user sets (MovieLens-100k: 943); blended with
    item EASE in :class:`HybridModel` it adds a neighbourhood view from the
    other side.

    Parameters
    ----------
    l2 : float > 0
    """

    def __init__(self, *, l2: float = 300.0):
        self.l2 = l2

    def _check_params(self):
        _check_positive("l2", self.l2)

    def _fit(self, X, vectors, train):
        if X.shape[0] > 20_000:
            raise ParameterError(f"UserEASEModel needs a {X.shape[0]} x {X.shape[0]} inverse; "
                                 "use it with at most 20,000 users")
        X = X.astype(np.float64)
        gram = (X @ X.T).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / (-np.diag(precision))
        np.fill_diagonal(weights, 0.0)
        self.user_scores_ = np.asarray(weights.T @ X.toarray(), dtype=np.float32)

    def _score(self, user_index):
        return self.user_scores_[user_index]


class BPRMFModel(InterestModel):
    r"""Matrix factorisation trained with Bayesian personalised ranking, in Keras.

    Introduced in chapter 05. The score is :math:`p_u \cdot q_i + b_i`; training
    maximises :math:`\log \sigma(s_{ui} - s_{uj})` for an observed item ``i`` and
    a uniformly sampled item ``j`` (resampled every epoch inside the ``tf.data``
    pipeline; only items with interactions are drawn, so a catalogue item
    nobody has seen keeps its random initial vector: ID-only models rank such
    cold items at random), with L2 penalties on the embeddings. Trained with
    ``model.fit``; the training history is kept in ``history_``.

    Parameters
    ----------
    embedding_dim : int
    epochs : int
    batch_size : int
    learning_rate : float
    l2 : float >= 0
        Penalty on the embeddings of each batch.
    seed : int
    """

    def __init__(self, *, embedding_dim: int = 64, epochs: int = 20, batch_size: int = 1024,
                 learning_rate: float = 0.005, l2: float = 1e-5, seed: int = 0):
        self.embedding_dim = embedding_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.seed = seed

    def _check_params(self):
        check_int("embedding_dim", self.embedding_dim)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        _check_positive("learning_rate", self.learning_rate)
        check_number("l2", self.l2, low=0.0)
        check_seed(self.seed)

    def _fit(self, X, vectors, train):
        # Lazy: the two-tower code imports TensorFlow, which `import mmrec_lib.interest` must not.
        from mmrec_lib.models.two_tower import (
            bpr_dataset,
            bpr_loss,
            build_mf_network,
            keras,
            loss_curves,
        )

        keras.utils.set_random_seed(self.seed)
        num_users, num_items = X.shape
        coo = X.tocoo()
        users = coo.row.astype(np.int32)
        items = coo.col.astype(np.int32)
        # Negatives come from the items with interactions: a catalogue item nobody
        # has seen (a cold item) keeps its initial vector instead of being pushed down.
        dataset = bpr_dataset(users, items, np.unique(items), batch_size=self.batch_size,
                              seed=self.seed, negatives="global")
        model = build_mf_network(num_users, num_items, embedding_dim=self.embedding_dim,
                                 l2=self.l2, seed=self.seed)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=bpr_loss)
        self.history_ = loss_curves(model.fit(dataset, epochs=self.epochs, verbose=0))
        self.user_factors_ = model.get_layer("user_embedding").get_weights()[0]
        self.item_factors_ = model.get_layer("item_embedding").get_weights()[0]
        self.item_bias_ = model.get_layer("item_bias").get_weights()[0].ravel()

    def _score(self, user_index):
        return self.user_factors_[user_index] @ self.item_factors_.T + self.item_bias_[None, :]


def __getattr__(name: str):
    # HybridModel lives with the weight search that tunes it (mmrec_lib.blending), which builds on
    # InterestModel; it is looked up here on first use so that both import paths work.
    if name == "HybridModel":
        from mmrec_lib.blending import HybridModel

        return HybridModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
