"""Content-based interest models that learn from interactions: a linear map of the item vectors.

:class:`ContentProfileModel` (chapter 05) compares a user's mean content vector
with every item's: it never learns which directions of the content space matter
for taste, so on real data (MovieLens-100k, MiniLM vectors of titles) it ranks
far below popularity. :class:`LinearContentModel` learns that map from the
interactions, in closed form like EASE, and has no per-item parameter, so it
scores cold items (never interacted with) exactly like warm ones.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from mmrec_lib._validation import check_number
from mmrec_lib.interest import InterestModel

__all__ = ["LinearContentModel"]


def _standardize_rows(scores: np.ndarray) -> np.ndarray:
    spread = scores.std(axis=1, keepdims=True)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.maximum(spread, 1e-12)


class LinearContentModel(InterestModel):
    r"""EASE in content space: a ridge-regressed ``d x d`` map between content vectors.

    Introduced in chapter 06 ("Does it hold on real data?"). With ``X`` the
    binary user-item matrix (n_users, n_items) and ``V`` the item vectors
    (n_items, d) -- centred on the training items, scaled to unit length, plus a
    constant column -- a user is ``a_u = X_u V`` (the sum of the vectors of the
    items they consumed) and the score of item ``j`` is ``a_u W v_j``, where

    .. math::

        W = \arg\min_W \lVert X - X V W V^\top \rVert_F^2 + \lambda \lVert W \rVert_F^2 .

    The solution is exact and cheap: with :math:`A = XV`,
    :math:`A^\top A = P \operatorname{diag}(\alpha) P^\top` and
    :math:`V^\top V = Q \operatorname{diag}(\beta) Q^\top`,
    :math:`W = P\,[(P^\top A^\top X V Q)_{ij} / (\alpha_i \beta_j + \lambda)]\,Q^\top`.
    ``W`` learns which content directions predict which (the user's history
    says "1970s science fiction", the item says "space opera"); the constant
    column learns which content is popular. No parameter belongs to an item id,
    so a cold item is scored from its vector alone.

    Parameters
    ----------
    l2 : float > 0
        Ridge penalty relative to the data: :math:`\lambda` = ``l2`` times
        mean(:math:`\alpha`) times mean(:math:`\beta`), so one value suits any
        catalogue size and vector length.
    popularity_weight : float >= 0
        Add ``popularity_weight`` times the standardised ``log(1 + count)`` of each
        item's training interactions to the standardised content score (a
        popularity prior; 0 = content only). Cold items have count 0, so the
        prior does not reorder them among themselves.

    Attributes
    ----------
    content_map_ : ndarray of shape (d + 1, d + 1), the map ``W``
    item_features_ : ndarray of shape (n_items, d + 1), the prepared ``V``
    user_features_ : ndarray of shape (n_users, d + 1), ``A = X V``
    item_popularity_ : ndarray of shape (n_items,), training interactions per item

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from mmrec_lib.content_models import LinearContentModel
    >>> train = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11]})
    >>> vectors = pd.DataFrame(np.eye(4), index=[10, 11, 12, 13])  # item 13 is cold
    >>> LinearContentModel().fit(train, item_vectors=vectors).score([1]).shape
    (1, 4)
    """

    _needs_item_vectors = True

    def __init__(self, *, l2: float = 0.1, popularity_weight: float = 0.0):
        self.l2 = l2
        self.popularity_weight = popularity_weight

    def _check_params(self):
        check_number("l2", self.l2, low=0.0, low_inclusive=False)
        check_number("popularity_weight", self.popularity_weight, low=0.0)

    def _fit(self, X: sparse.csr_matrix, vectors: np.ndarray, train) -> None:
        X = X.astype(np.float64)
        features = vectors.astype(np.float64)
        popularity = np.asarray(X.sum(axis=0)).ravel()
        # Centre on the items users actually saw, so that the constant column
        # alone carries "how much this user consumes" and W sees the contrasts.
        features = features - features[popularity > 0].mean(axis=0)
        features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        features = np.hstack([features, np.ones((len(features), 1))])
        users = X @ features
        alpha, P = np.linalg.eigh(users.T @ users)
        beta, Q = np.linalg.eigh(features.T @ features)
        penalty = self.l2 * max(alpha.mean(), 1e-12) * max(beta.mean(), 1e-12)
        target = P.T @ (users.T @ (X @ features)) @ Q
        weights = P @ (target / (np.outer(alpha, beta) + penalty)) @ Q.T
        self.content_map_ = weights.astype(np.float32)
        self.item_features_ = features.astype(np.float32)
        self.user_features_ = users.astype(np.float32)
        self.item_popularity_ = popularity.astype(np.float32)

    def _score(self, user_index):
        scores = (self.user_features_[user_index] @ self.content_map_) @ self.item_features_.T
        if not self.popularity_weight:
            return scores
        prior = np.log1p(self.item_popularity_.astype(np.float64))
        prior = (prior - prior.mean()) / max(prior.std(), 1e-12)
        return _standardize_rows(scores.astype(np.float64)) + self.popularity_weight * prior
