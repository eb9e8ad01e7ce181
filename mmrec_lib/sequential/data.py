"""Time-ordered user sequences, item tokens, padding and the leave-one-out split (chapter 09).

Conventions used by every sequential model in :mod:`mmrec_lib.sequential`:

- A user's sequence is their interactions sorted by ``timestamp``, oldest
  first. Ties in ``timestamp`` keep the row order of the input table (a stable
  sort), so the same table always gives the same sequences. Without a
  ``timestamp`` column the row order is the time order.
- Item ids become *tokens* ``1 .. n_items`` (the item's index in the sorted
  catalogue plus one); token ``0`` is padding and never an item.
- Padding goes on the left and truncation keeps the most recent ``max_len``
  items, so the last position of a padded row is always the latest item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import (
    ITEM_COL,
    TIMESTAMP_COL,
    USER_COL,
    IdEncoder,
    check_interactions,
)

__all__ = [
    "PADDING_TOKEN",
    "SequenceSplit",
    "sort_interactions",
    "user_sequences",
    "encode_sequences",
    "pad_sequences",
    "leave_one_out",
    "new_item_split",
    "last_session_split",
]

#: The token that fills the left of short sequences; item tokens start at 1.
PADDING_TOKEN = 0


def sort_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """``interactions`` sorted by user, then time (ties: input row order), index reset.

    Introduced in chapter 09. Uses a stable sort (mergesort), so two rows of a
    user with the same ``timestamp`` stay in the order they had in the input.
    Without a ``timestamp`` column only the user grouping changes.
    """
    check_interactions(interactions)
    order = pd.DataFrame({"user": interactions[USER_COL].to_numpy(),
                          "row": np.arange(len(interactions))})
    keys = ["user", "row"]
    if TIMESTAMP_COL in interactions.columns:
        order["time"] = interactions[TIMESTAMP_COL].to_numpy()
        if order["time"].isna().any():
            raise DataError(f"column {TIMESTAMP_COL!r} contains missing values")
        keys = ["user", "time", "row"]
    positions = order.sort_values(keys, kind="mergesort")["row"].to_numpy()
    return interactions.iloc[positions].reset_index(drop=True)


def user_sequences(interactions: pd.DataFrame) -> pd.Series:
    """Each user's item ids in time order, as a Series of 1-D arrays indexed by user id.

    Introduced in chapter 09. Repeated items are kept (a re-watch is an event).

    Returns
    -------
    Series of length n_users
        ``sequences[user]`` is an ndarray of shape (n_events_of_user,), oldest first;
        users are sorted by id.

    Examples
    --------
    >>> frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [7, 5, 9],
    ...                       "timestamp": [2, 1, 1]})
    >>> user_sequences(frame)[1].tolist()
    [5, 7]
    """
    ordered = sort_interactions(interactions)
    if ordered.empty:
        raise DataError("interactions has no rows: there is no sequence to build")
    users = ordered[USER_COL].to_numpy()
    items = ordered[ITEM_COL].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    parts = np.split(items, starts[1:])
    return pd.Series(parts, index=pd.Index(users[starts], name=USER_COL), name=ITEM_COL)


def encode_sequences(sequences: Sequence[Sequence], item_encoder: IdEncoder, *,
                     unknown: str = "error") -> list[np.ndarray]:
    """Item-id sequences as token arrays (``index + 1``; 0 is padding).

    Introduced in chapter 09.

    Parameters
    ----------
    sequences : sequence of n sequences of item ids
    item_encoder : fitted IdEncoder over the catalogue
    unknown : {"error", "drop"}
        An item the encoder never saw raises :class:`~mmrec_lib.errors.DataError`
        (``"error"``) or is left out of its sequence (``"drop"``).

    Returns
    -------
    list of n int32 ndarrays, each of shape (length of that sequence,)
    """
    if unknown not in ("error", "drop"):
        raise ParameterError(f"unknown={unknown!r} must be 'error' or 'drop'")
    if isinstance(sequences, (str, bytes)):
        raise ParameterError("sequences must be a sequence of item-id sequences, not a string")
    lookup = IdEncoder(unknown="ignore").fit(item_encoder.classes_)
    tokens = []
    for row, sequence in enumerate(sequences):
        if isinstance(sequence, (str, bytes)) or np.ndim(sequence) != 1:
            raise ParameterError(f"sequence {row} must be a 1-D sequence of item ids, "
                                 f"got {sequence!r}")
        values = np.asarray(sequence)
        indices = lookup.transform(values) if len(values) else np.zeros(0, np.int64)
        missing = indices < 0
        if missing.any() and unknown == "error":
            raise DataError(f"sequence {row} has {int(missing.sum())} item(s) not in the "
                            f"catalogue, e.g. {values[missing][:5].tolist()}")
        tokens.append((indices[~missing] + 1).astype(np.int32))
    return tokens


def pad_sequences(token_sequences: Sequence[Sequence[int]], max_len: int) -> np.ndarray:
    """Left-pad with 0 (or keep the most recent ``max_len`` tokens) into a matrix.

    Introduced in chapter 09.

    Parameters
    ----------
    token_sequences : sequence of n sequences of int tokens (>= 1)
    max_len : int >= 1

    Returns
    -------
    ndarray of int32, shape (n, max_len)
        Row ``u`` ends with the last ``min(len, max_len)`` tokens of sequence ``u``.

    Examples
    --------
    >>> pad_sequences([[1, 2, 3], [4]], max_len=2).tolist()
    [[2, 3], [0, 4]]
    """
    max_len = check_int("max_len", max_len)
    padded = np.zeros((len(token_sequences), max_len), dtype=np.int32)
    for row, tokens in enumerate(token_sequences):
        tokens = np.asarray(tokens, dtype=np.int64)[-max_len:]
        if tokens.size and tokens.min() < 1:
            raise DataError(f"sequence {row} contains token {int(tokens.min())}; item tokens "
                            "start at 1 (0 is padding)")
        if tokens.size:
            padded[row, max_len - len(tokens):] = tokens
    return padded


@dataclass
class SequenceSplit:
    """Leave-one-out split: interaction frames of the same columns as the input.

    Attributes
    ----------
    train : DataFrame
        Every interaction except the two latest of each evaluated user (and every
        interaction of users with fewer than ``min_interactions``).
    validation : DataFrame
        One row per evaluated user: the second-latest interaction.
    test : DataFrame
        One row per evaluated user: the latest interaction.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def __iter__(self):
        return iter((self.train, self.validation, self.test))

    def sizes(self) -> dict[str, int]:
        """Number of rows of each part."""
        return {"train": len(self.train), "validation": len(self.validation),
                "test": len(self.test)}


def leave_one_out(interactions: pd.DataFrame, *, min_interactions: int = 3) -> SequenceSplit:
    """Per user: latest interaction -> test, the one before -> validation, the rest -> train.

    Introduced in chapter 09, the protocol of SASRec and BERT4Rec. Time order is
    that of :func:`sort_interactions` (ties: input row order).

    Parameters
    ----------
    interactions : DataFrame with user_id, item_id (and timestamp)
    min_interactions : int >= 3
        Users with fewer interactions are not evaluated: all their rows go to
        ``train`` (they still teach item-to-item transitions), none to
        validation or test.

    Returns
    -------
    SequenceSplit
        Each frame is sorted by user then time.
    """
    min_interactions = check_int("min_interactions", min_interactions, low=3)
    ordered = sort_interactions(interactions)
    if ordered.empty:
        raise DataError("interactions has no rows")
    users = ordered[USER_COL]
    position_from_end = users.groupby(users, sort=False).cumcount(ascending=False).to_numpy()
    counts = users.map(users.value_counts()).to_numpy()
    evaluated = counts >= min_interactions
    if not evaluated.any():
        raise DataError(f"no user has at least {min_interactions} interactions")
    test = evaluated & (position_from_end == 0)
    validation = evaluated & (position_from_end == 1)
    train = ~(test | validation)
    return SequenceSplit(ordered[train].reset_index(drop=True),
                         ordered[validation].reset_index(drop=True),
                         ordered[test].reset_index(drop=True))


def new_item_split(interactions: pd.DataFrame, new_items, *, min_history: int = 2
                   ) -> SequenceSplit:
    """Cold-start split: each user's first view of a new item is the test target.

    Introduced in chapter 09 (new releases). For every user whose first event
    on one of ``new_items`` comes after at least ``min_history`` other events,
    that event is the test row and only the events before it are kept; the
    other users keep all their events. No event on a new item is left in
    ``train`` (so no model has seen one), and ``validation`` is empty: the test
    history is the user's whole ``train`` sequence. For early stopping, fit on
    ``leave_one_out(split.train)``.

    Parameters
    ----------
    interactions : DataFrame with user_id, item_id (and timestamp)
    new_items : collection of item ids
    min_history : int >= 1

    Returns
    -------
    SequenceSplit
    """
    min_history = check_int("min_history", min_history)
    ordered = sort_interactions(interactions)
    if ordered.empty:
        raise DataError("interactions has no rows")
    new_items = np.asarray(list(new_items))
    if len(new_items) == 0:
        raise ParameterError("new_items is empty")
    is_new = ordered[ITEM_COL].isin(new_items).to_numpy()
    users = ordered[USER_COL]
    position = users.groupby(users, sort=False).cumcount().to_numpy()
    # Position of each user's first new-item event (a large number if none).
    first_new = pd.Series(np.where(is_new, position, np.iinfo(np.int64).max)) \
        .groupby(users.to_numpy()).transform("min").to_numpy()
    test = is_new & (position == first_new) & (position >= min_history)
    keep = position < first_new
    train = keep & ~is_new
    if not test.any():
        raise DataError(f"no user views a new item after {min_history} other events")
    empty = ordered.iloc[:0]
    return SequenceSplit(ordered[train].reset_index(drop=True), empty.reset_index(drop=True),
                         ordered[test].reset_index(drop=True))


def last_session_split(interactions: pd.DataFrame, *, session_col: str = "session_id",
                       min_history: int = 2, min_session: int = 2) -> SequenceSplit:
    """Session split: each user's last session is the test (a set of targets), the rest train.

    Introduced in chapter 09 to compare next-item and list-wise (session)
    generation on one protocol. Users whose last session has at least
    ``min_session`` events and comes after at least ``min_history`` events give
    all the rows of that session to ``test``; every other row is ``train``.
    ``validation`` is empty.
    """
    min_history = check_int("min_history", min_history)
    min_session = check_int("min_session", min_session)
    if session_col not in interactions.columns:
        raise DataError(f"interactions has no {session_col!r} column")
    ordered = sort_interactions(interactions)
    if ordered.empty:
        raise DataError("interactions has no rows")
    users = ordered[USER_COL].to_numpy()
    last_session = ordered.groupby(USER_COL, sort=False)[session_col].transform("last")
    in_last = (ordered[session_col] == last_session).to_numpy()
    session_size = pd.Series(in_last).groupby(users).transform("sum").to_numpy()
    before = pd.Series(~in_last).groupby(users).transform("sum").to_numpy()
    test = in_last & (session_size >= min_session) & (before >= min_history)
    if not test.any():
        raise DataError(f"no user has a last session of {min_session}+ events after "
                        f"{min_history}+ others")
    return SequenceSplit(ordered[~test].reset_index(drop=True), ordered.iloc[:0].reset_index(drop=True),
                         ordered[test].reset_index(drop=True))
