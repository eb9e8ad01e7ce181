"""Interaction tables: column names, id encoders, deduplication and the sparse user-item matrix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._validation import check_choice
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.utils import check_is_fitted

__all__ = [
    "USER_COL",
    "ITEM_COL",
    "RATING_COL",
    "TIMESTAMP_COL",
    "PREDICTION_COL",
    "RANK_COL",
    "WEIGHT_COL",
    "UNKNOWN_INDEX",
    "IdEncoder",
    "check_interactions",
    "deduplicate",
    "build_user_item_matrix",
]

#: Column names used by every interaction table in mmrec (the one place they live).
USER_COL = "user_id"
ITEM_COL = "item_id"
RATING_COL = "rating"
TIMESTAMP_COL = "timestamp"
PREDICTION_COL = "prediction"
RANK_COL = "rank"
WEIGHT_COL = "weight"

#: Index that :class:`IdEncoder` with ``unknown="ignore"`` gives to ids it never saw.
UNKNOWN_INDEX = -1


class IdEncoder(TransformerMixin, BaseEstimator):
    """Map raw ids (strings or ints) to contiguous indices ``0 .. n-1`` and back.

    Introduced in chapter 05. Indices follow the sorted order of the distinct ids
    seen in ``fit``, so the mapping does not depend on row order.

    Parameters
    ----------
    unknown : {"error", "ignore"}
        What ``transform`` does with an id it never saw: ``"error"`` raises
        :class:`~mmrec_lib.errors.DataError` naming the id; ``"ignore"`` maps it to
        :data:`UNKNOWN_INDEX` (-1), which callers must handle.

    Attributes
    ----------
    classes_ : ndarray of shape (n_ids,)
        The distinct ids, sorted; ``classes_[i]`` is the id of index ``i``.

    Examples
    --------
    >>> encoder = IdEncoder().fit(["u2", "u1", "u2"])
    >>> encoder.transform(["u1", "u2"]).tolist()
    [0, 1]
    """

    def __init__(self, *, unknown: Literal["error", "ignore"] = "error"):
        self.unknown = unknown

    def fit(self, ids: Sequence | np.ndarray | pd.Series, y=None) -> IdEncoder:
        """Learn the sorted distinct ids. ``ids`` is 1-D, non-empty, without missing values."""
        check_choice("unknown", self.unknown, ("error", "ignore"))
        values = _as_id_array(ids, "ids")
        if len(values) == 0:
            raise DataError("ids is empty; expected at least one id to fit")
        self.classes_ = np.unique(values)
        self.index_ = pd.Index(self.classes_)
        return self

    @property
    def num_ids(self) -> int:
        """Number of distinct ids learnt in ``fit``."""
        check_is_fitted(self)
        return len(self.classes_)

    def transform(self, ids: Sequence | np.ndarray | pd.Series) -> np.ndarray:
        """Return the int64 indices of ``ids``, shape (n,); no ids give an empty array."""
        check_is_fitted(self)
        values = _as_id_array(ids, "ids")
        if values.dtype.kind != self.classes_.dtype.kind and len(values) and not (
            values.dtype.kind in "iu" and self.classes_.dtype.kind in "iu"
        ):
            # A string id looked up among int ids (or the reverse) is never found:
            # say so plainly rather than reporting every id as unknown.
            if self.unknown == "error":
                raise DataError(
                    f"ids have dtype {values.dtype} but the encoder was fitted on "
                    f"{self.classes_.dtype} ids (e.g. {self.classes_[0]!r})"
                )
        indices = self.index_.get_indexer(values).astype(np.int64)
        missing = indices < 0
        if missing.any() and self.unknown == "error":
            examples = pd.unique(values[missing])[:5].tolist()
            raise DataError(
                f"{int(missing.sum())} id(s) were not seen in fit, e.g. {examples}; "
                "use IdEncoder(unknown='ignore') to map them to UNKNOWN_INDEX (-1)"
            )
        return indices

    def inverse_transform(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Return the ids of ``indices`` (shape (n,)); -1 or out-of-range raises DataError."""
        check_is_fitted(self)
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise ParameterError(f"indices must be a 1-D int array, got {indices.dtype} "
                                 f"with shape {indices.shape}")
        bad = (indices < 0) | (indices >= len(self.classes_))
        if bad.any():
            raise DataError(f"indices {indices[bad][:5].tolist()} are outside "
                            f"[0, {len(self.classes_) - 1}]")
        return self.classes_[indices]


def _as_id_array(ids, name: str) -> np.ndarray:
    if isinstance(ids, (str, bytes)):
        raise ParameterError(f"{name} must be a sequence of ids, not the single string {ids!r}")
    values = np.asarray(ids.to_numpy() if isinstance(ids, pd.Series) else ids)
    if values.ndim != 1:
        raise ParameterError(f"{name} must be 1-D, got shape {values.shape}")
    if values.size == 0:
        # np.asarray([]) is float64; an empty list says nothing about the id type.
        return values.astype(object)
    if values.dtype == object or values.dtype.kind == "f":
        if pd.isna(values).any():
            raise DataError(f"{name} contains missing values (NaN/None)")
    if values.dtype.kind == "f":
        raise DataError(f"{name} has float dtype; ids must be ints or strings")
    if values.dtype == object:
        values = values.astype(str)
    return values


def _check_finite_column(interactions: pd.DataFrame, column: str) -> None:
    values = interactions[column].to_numpy()
    if values.dtype.kind not in "biuf":
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(f"column {column!r} must hold numbers, got dtype "
                            f"{interactions[column].dtype}") from None
    if not np.isfinite(values.astype(np.float64)).all():
        raise DataError(f"column {column!r} contains NaN or infinite values")


def check_interactions(
    interactions: pd.DataFrame, *, columns: Sequence[str] = (USER_COL, ITEM_COL)
) -> pd.DataFrame:
    """Check that ``interactions`` is a DataFrame with the given columns and no missing ids.

    Introduced in chapter 05. Returns ``interactions`` unchanged so it can be chained.

    Raises
    ------
    ParameterError
        If ``interactions`` is not a DataFrame.
    DataError
        If a column is missing, or the user/item columns hold missing values.
    """
    if not isinstance(interactions, pd.DataFrame):
        raise ParameterError(
            f"interactions must be a pandas DataFrame, got {type(interactions).__name__}"
        )
    missing = [column for column in columns if column not in interactions.columns]
    if missing:
        raise DataError(
            f"interactions lacks column(s) {missing}; it has {list(interactions.columns)}"
        )
    for column in (USER_COL, ITEM_COL):
        if column in columns and interactions[column].isna().any():
            raise DataError(f"column {column!r} contains missing values")
    return interactions


def deduplicate(
    interactions: pd.DataFrame,
    *,
    keep: Literal["last", "first", "max", "sum"] = "last",
    value_col: str = RATING_COL,
) -> pd.DataFrame:
    """Collapse repeated (user, item) pairs into one row.

    Introduced in chapter 06. The rule, by ``keep``:

    - ``"last"`` (default): keep the most recent row of the pair, by
      ``timestamp`` when the column exists, else by row order. A re-rating
      replaces the old rating, as on MovieLens.
    - ``"first"``: keep the earliest row (first contact with the item).
    - ``"max"``: keep the row with the largest ``value_col`` (ties: the latest).
    - ``"sum"``: keep the latest row, with ``value_col`` replaced by the sum
      over the pair (play counts, watch time).

    For ``"max"`` and ``"sum"``, ``value_col`` must hold finite numbers: a NaN
    raises :class:`~mmrec_lib.errors.DataError` (pandas would sum it as 0, or
    keep it as the "max").

    Rows come back sorted by user, item (stable), with a fresh RangeIndex.

    Parameters
    ----------
    interactions : DataFrame with columns ``user_id``, ``item_id`` (and ``value_col``
        for ``"max"`` / ``"sum"``).

    Returns
    -------
    DataFrame with one row per distinct (user, item) pair.
    """
    check_choice("keep", keep, ("last", "first", "max", "sum"))
    columns = [USER_COL, ITEM_COL] + ([value_col] if keep in ("max", "sum") else [])
    check_interactions(interactions, columns=columns)
    if keep in ("max", "sum"):
        # A NaN would be summed as 0 by pandas, or sorted last and kept as the "max".
        _check_finite_column(interactions, value_col)
    frame = interactions.reset_index(drop=True)
    order = np.arange(len(frame))
    sort_columns = [USER_COL, ITEM_COL]
    if keep == "max":
        sort_columns.append(value_col)
    if TIMESTAMP_COL in frame.columns:
        sort_columns.append(TIMESTAMP_COL)
    frame = frame.assign(_order=order).sort_values(sort_columns + ["_order"], kind="stable")
    pair = [USER_COL, ITEM_COL]
    if keep == "first":
        result = frame.drop_duplicates(pair, keep="first")
    else:
        result = frame.drop_duplicates(pair, keep="last")
    if keep == "sum":
        totals = frame.groupby(pair, sort=False)[value_col].sum()
        result = result.set_index(pair)
        result[value_col] = totals.reindex(result.index).to_numpy()
        result = result.reset_index()[frame.columns]
    return result.drop(columns="_order").reset_index(drop=True)


def build_user_item_matrix(
    interactions: pd.DataFrame,
    *,
    user_encoder: IdEncoder | None = None,
    item_encoder: IdEncoder | None = None,
    value_col: str | None = None,
    dtype: type = np.float32,
) -> tuple[sparse.csr_matrix, IdEncoder, IdEncoder]:
    """Build the sparse user-item matrix ``X`` of shape (n_users, n_items).

    Introduced in chapter 05. ``X[u, i]`` is 1 for an observed pair (implicit
    feedback) or the value in ``value_col``; repeated pairs must be removed first
    (:func:`deduplicate`) and raise :class:`~mmrec_lib.errors.DataError` otherwise.

    Parameters
    ----------
    interactions : DataFrame with ``user_id``, ``item_id`` (and ``value_col``).
    user_encoder, item_encoder : fitted IdEncoder, optional
        Fix the rows/columns (e.g. the catalogue of a model). When omitted they are
        fitted on ``interactions``. Rows whose id the encoder maps to -1
        (``unknown="ignore"``) are dropped.
    value_col : str, optional
        Column holding the matrix values; ``None`` gives a binary matrix.

    Returns
    -------
    X : csr_matrix of shape (n_users, n_items)
    user_encoder, item_encoder : IdEncoder
    """
    columns = [USER_COL, ITEM_COL] + ([value_col] if value_col is not None else [])
    check_interactions(interactions, columns=columns)
    if user_encoder is None:
        user_encoder = IdEncoder().fit(interactions[USER_COL])
    if item_encoder is None:
        item_encoder = IdEncoder().fit(interactions[ITEM_COL])
    rows = user_encoder.transform(interactions[USER_COL])
    cols = item_encoder.transform(interactions[ITEM_COL])
    if value_col is None:
        values = np.ones(len(interactions), dtype=dtype)
    else:
        values = interactions[value_col].to_numpy(dtype=dtype)
        if not np.isfinite(values).all():
            raise DataError(f"column {value_col!r} contains NaN or infinite values")
    known = (rows >= 0) & (cols >= 0)
    rows, cols, values = rows[known], cols[known], values[known]
    shape = (user_encoder.num_ids, item_encoder.num_ids)
    pairs = rows * shape[1] + cols
    if len(np.unique(pairs)) != len(pairs):
        raise DataError("interactions has repeated (user_id, item_id) pairs; "
                        "call mmrec_lib.interactions.deduplicate first")
    matrix = sparse.csr_matrix((values, (rows, cols)), shape=shape, dtype=dtype)
    matrix.sort_indices()
    return matrix, user_encoder, item_encoder
