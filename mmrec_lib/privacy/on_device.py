"""On-device scoring: a server-side item index and a user vector computed on the client."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmrec_lib._validation import check_number
from mmrec_lib.errors import DataError, NotFittedError, ParameterError

__all__ = ["ItemIndex", "user_vector_from_history", "ridge_user_vector"]


def ridge_user_vector(row: np.ndarray, item_factors: np.ndarray, l2: float) -> np.ndarray:
    r"""Ridge regression of a user's 0/1 ``row`` (n_items,) on the item factors.

    :math:`p = (Q^\top Q + \lambda I)^{-1} Q^\top y`; the one place this solve is
    written (federated clients and on-device scoring both call it).
    """
    Q = np.asarray(item_factors, dtype=np.float64)
    return np.linalg.solve(Q.T @ Q + l2 * np.eye(Q.shape[1]), Q.T @ row)


def user_vector_from_history(history: Sequence[int], item_factors: np.ndarray, *,
                             l2: float = 1.0) -> np.ndarray:
    """A user's vector from their own history, computed on the device.

    It needs the item table and the user's own history only (:func:`ridge_user_vector`
    of the user's 0/1 row), so a server never stores user vectors.

    Parameters
    ----------
    history : sequence of int
        Row indices into ``item_factors`` of the items the user interacted with.
    item_factors : ndarray of shape (n_items, dim)
    l2 : float > 0

    Returns
    -------
    ndarray of shape (dim,)
    """
    Q = np.asarray(item_factors, dtype=np.float64)
    if Q.ndim != 2:
        raise ParameterError(f"item_factors must be 2-D, got shape {Q.shape}")
    l2 = check_number("l2", l2, low=0.0, low_inclusive=False)
    history = np.asarray(history)
    if history.size and (history.dtype.kind not in "iu" or history.ndim != 1):
        raise ParameterError(f"history must be a 1-D sequence of item indices, got dtype "
                             f"{history.dtype} and shape {history.shape}")
    if history.size and (history.min() < 0 or history.max() >= len(Q)):
        raise DataError(f"history has item indices outside [0, {len(Q) - 1}]")
    row = np.zeros(len(Q))
    row[history.astype(np.int64)] = 1.0
    return ridge_user_vector(row, Q, l2)


class ItemIndex:
    """The server half of on-device scoring: item ids, item vectors and biases, no users.

    Parameters
    ----------
    item_ids : array of shape (n_items,)
    item_factors : ndarray of shape (n_items, dim)
    item_bias : ndarray of shape (n_items,), optional
    """

    def __init__(self, item_ids, item_factors, item_bias=None):
        self.item_ids = np.asarray(item_ids)
        self.item_factors = np.asarray(item_factors, dtype=np.float64)
        if self.item_factors.ndim != 2 or len(self.item_factors) != len(self.item_ids):
            raise ParameterError(f"item_factors must have shape ({len(self.item_ids)}, dim), "
                                 f"got {self.item_factors.shape}")
        self.item_bias = (np.zeros(len(self.item_ids)) if item_bias is None
                          else np.asarray(item_bias, dtype=np.float64))
        self._position = {item: index for index, item in enumerate(self.item_ids.tolist())}

    @classmethod
    def from_model(cls, model) -> ItemIndex:
        """The item side of a fitted factor model (``item_factors_``, optional ``item_bias_``)."""
        if not hasattr(model, "item_factors_"):
            raise NotFittedError(f"{type(model).__name__} has no item_factors_: fit it first "
                                 "(or it is not a factor model)")
        return cls(model.item_ids_, model.item_factors_, getattr(model, "item_bias_", None))

    def user_vector(self, history_item_ids: Sequence, *, l2: float = 1.0) -> np.ndarray:
        """Client side: the user's vector from their own history of item ids."""
        unknown = [item for item in history_item_ids if item not in self._position]
        if unknown:
            raise DataError(f"{len(unknown)} history item(s) are not in the index, "
                            f"e.g. {unknown[:5]}")
        indices = np.array([self._position[item] for item in history_item_ids], dtype=np.int64)
        return user_vector_from_history(indices, self.item_factors, l2=l2)

    def score(self, user_vector: np.ndarray) -> np.ndarray:
        """Client side: scores of every item in the index, shape (n_items,)."""
        user_vector = np.asarray(user_vector, dtype=np.float64)
        if user_vector.shape != (self.item_factors.shape[1],):
            raise ParameterError(f"user_vector must have shape ({self.item_factors.shape[1]},), "
                                 f"got {user_vector.shape}")
        return self.item_factors @ user_vector + self.item_bias
