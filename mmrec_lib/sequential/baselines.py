"""Next-item baselines: popularity, EASE on the bag of viewed items, first-order Markov chain."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from mmrec_lib._validation import check_number
from mmrec_lib.interest import EASEModel
from mmrec_lib.sequential.base import SequentialModel

__all__ = ["SequentialPopularityModel", "SequentialEASEModel", "MarkovModel"]


def _item_counts(sequences: list[np.ndarray], num_items: int) -> np.ndarray:
    """Training events per item, shape (num_items,) (tokens are index + 1)."""
    tokens = np.concatenate(sequences) if sequences else np.zeros(0, np.int32)
    return np.bincount(tokens - 1, minlength=num_items).astype(np.float64)


def _bag_matrix(histories: list[np.ndarray], num_items: int) -> sparse.csr_matrix:
    """Binary (n_histories, num_items) matrix: which items each history contains."""
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate(histories) - 1
    matrix = sparse.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                               shape=(len(histories), num_items))
    matrix.data[:] = 1.0  # a repeated item still counts once, as in EASE's training matrix
    return matrix


class SequentialPopularityModel(SequentialModel):
    """Score = number of training events of the item, the same after every history.

    Introduced in chapter 09; the floor every next-item model must clear.
    """

    def _fit_sequences(self, sequences, validation):
        self.item_popularity_ = _item_counts(sequences, len(self.item_ids_)).astype(np.float32)

    def _score_tokens(self, histories):
        return np.tile(self.item_popularity_, (len(histories), 1))


class SequentialEASEModel(SequentialModel):
    """EASE (:class:`mmrec_lib.interest.EASEModel`) on the bag of items of a history.

    Introduced in chapter 09. Order is ignored: the history becomes a binary row
    ``x`` and the scores are ``x B`` with the EASE item-item weights ``B`` fitted
    on the training users. It answers "what goes with everything you watched",
    not "what comes next".

    Parameters
    ----------
    l2 : float > 0
        EASE's ridge penalty.
    """

    def __init__(self, *, l2: float = 500.0):
        self.l2 = l2

    def _check_params(self):
        check_number("l2", self.l2, low=0, low_inclusive=False)

    def _fit_sequences(self, sequences, validation):
        ease = EASEModel(l2=self.l2)
        ease._fit(self.train_matrix_, None, None)
        self.weights_ = ease.weights_

    def _score_tokens(self, histories):
        return np.asarray(_bag_matrix(histories, len(self.item_ids_)) @ self.weights_)


class MarkovModel(SequentialModel):
    r"""First-order Markov chain: the next item depends only on the last one.

    Introduced in chapter 09. With :math:`C_{ij}` the number of times item
    :math:`j` directly followed item :math:`i` in a training sequence and
    :math:`p_j` the share of training events of item :math:`j`,

    .. math::

        P(j \mid i) = \frac{C_{ij} + \alpha\, p_j}{\sum_k C_{ik} + \alpha},

    i.e. additive smoothing towards popularity: an item never followed by
    anything (or a pair never seen) falls back to the popularity ranking.

    Parameters
    ----------
    smoothing : float >= 0
        :math:`\alpha`, in pseudo-transitions.
    """

    def __init__(self, *, smoothing: float = 1.0):
        self.smoothing = smoothing

    def _check_params(self):
        check_number("smoothing", self.smoothing, low=0)

    def _fit_sequences(self, sequences, validation):
        num_items = len(self.item_ids_)
        sources = np.concatenate([s[:-1] for s in sequences]) - 1
        targets = np.concatenate([s[1:] for s in sequences]) - 1
        self.transitions_ = sparse.csr_matrix(
            (np.ones(len(sources), np.float64), (sources, targets)), shape=(num_items, num_items))
        counts = _item_counts(sequences, num_items)
        self.item_share_ = counts / counts.sum()

    def _score_tokens(self, histories):
        last = np.array([h[-1] - 1 for h in histories])
        rows = self.transitions_[last].toarray()
        totals = rows.sum(axis=1, keepdims=True)
        return (rows + self.smoothing * self.item_share_[None, :]) / (totals + self.smoothing
                                                                      + 1e-12)
