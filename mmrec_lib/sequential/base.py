"""The contract every sequential model shares: InterestModel plus histories in, next-item scores out.

A sequential model is an :class:`~mmrec_lib.interest.InterestModel` whose
``fit`` also reads the time order of ``train`` and accepts ``validation``
(held-out next items, for early stopping), and which can score *any*
history, not only the training users'::

    model.fit(train, item_vectors=None, *, validation=None)
    model.score(user_ids)              # (n_users, n_items): after each user's train sequence
    model.score_histories(histories)   # (n_histories, n_items): after each given sequence

So the baselines of chapter 05 and the sequence models of chapter 09 are
compared by the same functions (:func:`mmrec_lib.evaluate` and
:func:`mmrec_lib.sequential.evaluate_next_item`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.interactions import ITEM_COL, USER_COL, IdEncoder, check_interactions
from mmrec_lib.interest import InterestModel
from mmrec_lib.sequential.data import encode_sequences, sort_interactions, user_sequences
from mmrec_lib.utils import check_is_fitted

__all__ = ["SequentialModel", "refit_with_validation"]


class SequentialModel(InterestModel):
    """Base class of the next-item models.

    Introduced in chapter 09. Subclasses implement ``_fit_sequences(sequences,
    validation)`` and ``_score_tokens(histories)``, where a sequence or history is
    an int array of item tokens (``item index + 1``, see
    :mod:`mmrec_lib.sequential.data`) and ``validation`` is ``None`` or a pair
    ``(user_index, target_token)`` of int arrays (token 0: the target is not in
    the catalogue). ``_score_tokens`` returns scores of shape
    (n_histories, n_items) over the catalogue ``item_ids_``.

    Attributes (after ``fit``)
    --------------------------
    train_sequences_ : list of n_users int32 arrays
        Each training user's tokens, oldest first (ties: input row order).
    """

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None, *,
            validation: pd.DataFrame | None = None):
        """Fit on the time-ordered ``train`` (user_id, item_id[, timestamp]).

        Parameters
        ----------
        train : DataFrame
            Every row is an event; repeated (user, item) pairs stay in the sequences.
        item_vectors : DataFrame, optional
            Only widens the catalogue (no model here reads the vectors).
        validation : DataFrame, optional
            The next item(s) of training users (e.g. ``leave_one_out(...).validation``);
            models with early stopping rank them after each epoch.
        """
        check_interactions(train)
        if train.empty:
            raise DataError("train has no rows")
        if validation is not None:
            check_interactions(validation)
            if validation.empty:
                raise DataError("validation has no rows")
        self._raw_train = train
        self._validation_frame = validation
        try:
            super().fit(train, item_vectors)
        finally:
            del self._raw_train, self._validation_frame
        return self

    def _fit(self, X, vectors, train):
        sequences = user_sequences(self._raw_train)
        if not np.array_equal(sequences.index.to_numpy(), self.user_ids_):
            raise ModelError("user order of the sequences differs from the user encoder")
        self.train_sequences_ = encode_sequences(sequences.to_list(), self.item_encoder_)
        validation = None
        if self._validation_frame is not None:
            validation = self._encode_validation(self._validation_frame)
        self._fit_sequences(self.train_sequences_, validation)

    def _encode_validation(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        users = self.user_encoder_.transform(frame[USER_COL])
        items = IdEncoder(unknown="ignore").fit(self.item_ids_).transform(frame[ITEM_COL])
        # An item the model never saw gets token 0: a miss whatever the model ranks.
        return users, np.where(items >= 0, items + 1, 0).astype(np.int32)

    def _fit_sequences(self, sequences: list[np.ndarray],
                       validation: tuple[np.ndarray, np.ndarray] | None) -> None:
        raise NotImplementedError

    def _score_tokens(self, histories: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _score(self, user_index):
        return self._score_tokens([self.train_sequences_[u] for u in user_index])

    def score_histories(self, histories: Sequence[Sequence], *,
                        unknown: str = "error", candidates=None) -> np.ndarray:
        """Next-item scores after each history (a sequence of item ids, oldest first).

        Introduced in chapter 09. Items seen in a history are not removed here.

        Parameters
        ----------
        histories : sequence of n non-empty sequences of item ids
        unknown : {"error", "drop"}
            An item outside the catalogue raises :class:`~mmrec_lib.errors.DataError`
            or is left out of its history. A history that is (or becomes) empty
            raises :class:`~mmrec_lib.errors.DataError`.
        candidates : bool ndarray of shape (n, n_items), optional
            Only True items may be recommended; the others score ``-inf``
            (a generative model searches only among the candidates).

        Returns
        -------
        ndarray of float32, shape (n, n_items)
            Column ``j`` is item ``item_ids_[j]``; higher is better.
        """
        check_is_fitted(self)
        if isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence) \
                and not isinstance(histories, (np.ndarray, pd.Series)):
            raise ParameterError("histories must be a sequence of item-id sequences")
        tokens = encode_sequences(list(histories), self.item_encoder_, unknown=unknown)
        if not tokens:
            raise ParameterError("histories is empty: there is no history to score")
        for row, history in enumerate(tokens):
            if len(history) == 0:
                raise DataError(f"history {row} is empty (or has no item of the catalogue); "
                                "a next-item model needs at least one known item")
        if candidates is None:
            return np.asarray(self._score_tokens(tokens), dtype=np.float32)
        candidates = np.asarray(candidates)
        if candidates.dtype != bool or candidates.shape != (len(tokens), len(self.item_ids_)):
            raise ParameterError(f"candidates must be a boolean array of shape "
                                 f"{(len(tokens), len(self.item_ids_))}; got "
                                 f"{candidates.dtype} {candidates.shape}")
        return np.asarray(self._score_candidates(tokens, candidates), dtype=np.float32)

    def _score_candidates(self, tokens: list[np.ndarray], candidates: np.ndarray) -> np.ndarray:
        scores = np.asarray(self._score_tokens(tokens), dtype=np.float32)
        return np.where(candidates, scores, -np.inf)

    # ------------------------------------------------------------------ new items

    def _new_item_ids(self, item_vectors: pd.DataFrame) -> np.ndarray:
        """The ids of ``item_vectors`` (checked), refusing any already in the catalogue."""
        from mmrec_lib._validation import check_item_vectors

        check_is_fitted(self)
        item_vectors = check_item_vectors(item_vectors)
        new_ids = np.asarray(item_vectors.index)
        known = np.isin(new_ids, self.item_ids_)
        if known.any():
            raise DataError(f"{int(known.sum())} item(s) are already in the catalogue, e.g. "
                            f"{new_ids[known][:5].tolist()}")
        return new_ids

    def _grow_catalogue(self, new_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add ``new_ids`` to the (re-sorted) catalogue; re-index sequences and training matrix.

        Returns ``(remap, added)``: the new catalogue index of every old item and of
        every new one.
        """
        from scipy import sparse

        old_ids = self.item_ids_
        self.item_encoder_ = IdEncoder().fit(np.concatenate([old_ids, new_ids]))
        self.item_ids_ = self.item_encoder_.classes_
        remap = self.item_encoder_.transform(old_ids)
        self.train_sequences_ = [(remap[s - 1] + 1).astype(np.int32)
                                 for s in self.train_sequences_]
        matrix = self.train_matrix_.tocoo()
        self.train_matrix_ = sparse.csr_matrix(
            (matrix.data, (matrix.row, remap[matrix.col])),
            shape=(matrix.shape[0], len(self.item_ids_)))
        return remap, self.item_encoder_.transform(new_ids)


# The fitted attribute that records the training length chosen on validation -> the
# parameter that sets it: epochs for the Keras models, full-batch steps for the intent model.
_CHOSEN_LENGTH = (("best_epoch_", "epochs"), ("best_step_", "steps"))


def refit_with_validation(model: SequentialModel, split, item_vectors=None, **fit_kwargs):
    """A copy of ``model`` fitted on ``split.train`` + ``split.validation`` at its chosen length.

    Introduced in chapter 09. Early stopping spends each user's second-latest view
    on choosing the training length; once it is chosen, that view can teach too,
    as in the final fit of a cross-validated model. The copy has ``model``'s
    parameters with ``epochs`` (Keras models) or ``steps`` (the intent model) set
    to the length ``model`` chose on validation (``best_epoch_`` / ``best_step_``),
    and is fitted on the training and validation rows together (sorted by user
    then time), without validation. ``model`` is left as it was.

    Parameters
    ----------
    model : SequentialModel
        Fitted with ``validation=split.validation``.
    split : SequenceSplit
        The split ``model`` was fitted and validated on; ``split.test`` is not read.
    item_vectors : DataFrame, optional
        As for ``model.fit``.
    **fit_kwargs
        Passed to ``fit`` (``item_side``, ``release_time``, ``teacher`` ...).

    Returns
    -------
    SequentialModel
        A new fitted model of the same class.
    """
    check_is_fitted(model)
    for attribute, parameter in _CHOSEN_LENGTH:
        if hasattr(model, attribute) and parameter in model.get_params():
            break
    else:
        raise ModelError(f"{type(model).__name__} chooses no training length on validation "
                         "(no epochs or steps): there is nothing to refit at")
    if getattr(model, "history_", {}).get("val_ndcg@10") in (None, []):
        raise ModelError(f"{type(model).__name__} was fitted without validation: its "
                         f"{attribute[:-1]} was not chosen on validation")
    if "validation" in fit_kwargs:
        raise ParameterError("refit_with_validation fits without validation; "
                             "do not pass validation=")
    train, validation = split.train, split.validation
    if len(validation) == 0:
        raise DataError("split.validation has no rows: there is nothing to add to train")
    missing = [c for c in train.columns if c not in validation.columns]
    if missing:
        raise DataError(f"split.validation lacks the train columns {missing}")
    rows = sort_interactions(pd.concat([train, validation[list(train.columns)]],
                                       ignore_index=True))
    copy = type(model)(**{**model.get_params(), parameter: int(getattr(model, attribute))})
    return copy.fit(rows, item_vectors, **fit_kwargs)
