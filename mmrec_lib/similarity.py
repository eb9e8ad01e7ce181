"""Similarity between user and item vectors, and exact top-K selection, blocked for large catalogues."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import sparse

from mmrec_lib._validation import check_choice, check_int, check_matrix, check_number, check_seed
from mmrec_lib.errors import DataError, ParameterError

__all__ = [
    "normalize_rows",
    "cosine_similarity",
    "dot_scores",
    "top_k",
    "blocked_top_k",
]


def _check_pair(user_vectors, item_vectors) -> tuple[np.ndarray, np.ndarray]:
    users = check_matrix("user_vectors", user_vectors)
    items = check_matrix("item_vectors", item_vectors)
    if users.shape[1] != items.shape[1]:
        raise ParameterError(f"user_vectors have dim {users.shape[1]} but item_vectors "
                             f"have dim {items.shape[1]}")
    return users, items


def normalize_rows(vectors: np.ndarray, *, eps: float = 1e-12) -> np.ndarray:
    """Scale each row to unit L2 norm; all-zero rows stay zero.

    Introduced in chapter 05.

    Parameters
    ----------
    vectors : ndarray of shape (n, dim)

    Returns
    -------
    ndarray of shape (n, dim), float32 unless the input is float64.
    """
    array = check_matrix("vectors", vectors)
    eps = check_number("eps", eps, low=0, low_inclusive=False)
    if array.dtype != np.float64:
        array = array.astype(np.float32)
    with np.errstate(over="ignore"):  # an overflowing norm is handled below
        norms = np.linalg.norm(array, axis=1, keepdims=True)
    normalized = array / np.maximum(norms, eps)
    overflow = np.isinf(norms[:, 0])
    if overflow.any():
        # The squares of entries near the dtype's maximum overflow (1e200 in float64), so the
        # norm is inf and the row would come out as zeros. Dividing such a row by its largest
        # entry first keeps the norm finite; the other rows keep their exact numbers.
        rows = array[overflow]
        rows = rows / np.abs(rows).max(axis=1, keepdims=True)
        normalized[overflow] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalized


def dot_scores(user_vectors: np.ndarray, item_vectors: np.ndarray) -> np.ndarray:
    """Dot-product scores ``S = U V^T``, shape (n_users, n_items).

    Introduced in chapter 05. Unlike cosine, long vectors (often: popular items)
    score higher.
    """
    users, items = _check_pair(user_vectors, item_vectors)
    return users @ items.T


def cosine_similarity(
    user_vectors: np.ndarray, item_vectors: np.ndarray, *, block_size: int = 4096,
) -> np.ndarray:
    """The seed's similarity(V, U) = V . U / (|V| |U|) for every user-item pair.

    Introduced in chapter 05. Computed ``block_size`` users at a time in float32
    (float64 only if both inputs are float64), so the temporary matrices stay
    small; a zero vector has similarity 0 with everything.

    Parameters
    ----------
    user_vectors : ndarray of shape (n_users, dim)
    item_vectors : ndarray of shape (n_items, dim)

    Returns
    -------
    ndarray of shape (n_users, n_items), values in [-1, 1].
    """
    users, items = _check_pair(user_vectors, item_vectors)
    block_size = check_int("block_size", block_size)
    users = normalize_rows(users)
    items = normalize_rows(items)
    dtype = np.result_type(users.dtype, items.dtype)
    result = np.empty((len(users), len(items)), dtype=dtype)
    for start in range(0, len(users), block_size):
        result[start:start + block_size] = users[start:start + block_size] @ items.T
    np.clip(result, -1.0, 1.0, out=result)
    return result


def _exclude_mask(exclude, shape: tuple[int, int]) -> np.ndarray | None:
    """Turn ``exclude`` into a boolean mask of ``shape`` (or None)."""
    if exclude is None:
        return None
    if sparse.issparse(exclude):
        if exclude.shape != shape:
            raise ParameterError(f"exclude has shape {exclude.shape}, scores have shape {shape}")
        return exclude.toarray() != 0
    if isinstance(exclude, np.ndarray) and exclude.dtype == bool:
        if exclude.shape != shape:
            raise ParameterError(f"exclude has shape {exclude.shape}, scores have shape {shape}")
        return exclude
    # A sequence with one collection of item indices per row.
    if len(exclude) != shape[0]:
        raise ParameterError(f"exclude has {len(exclude)} rows, scores have {shape[0]}")
    mask = np.zeros(shape, dtype=bool)
    for row, indices in enumerate(exclude):
        indices = np.asarray(list(indices) if isinstance(indices, (set, frozenset)) else indices,
                             dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= shape[1]):
            raise ParameterError(f"exclude[{row}] holds item indices outside [0, {shape[1] - 1}]")
        mask[row, indices] = True
    return mask


def top_k(
    scores: np.ndarray,
    k: int,
    *,
    exclude=None,
    return_scores: bool = False,
    tie_break: Literal["index", "random"] = "index",
    seed: int | np.random.Generator = 0,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The seed's R = argmax_i S_i generalised to the K best items of each row.

    Introduced in chapter 05. Uses ``np.argpartition`` (linear time per row)
    and then sorts only the K winners. Ties are broken deterministically: among
    equal scores the lower item index ranks first, exactly as a stable sort of
    ``-scores`` would (``tie_break="index"``). With ``tie_break="random"`` tied
    items are ordered by a random permutation of each row drawn from ``seed``,
    so the catalogue order (often: oldest first) cannot leak into a ranking of
    items a model cannot tell apart; the same seed gives the same lists
    (chapter 06, "Fair ties").

    Parameters
    ----------
    scores : ndarray of shape (n_users, n_items) or (n_items,)
    k : int in [1, n_items]
    exclude : optional
        Items that must not be recommended (already seen): a sparse matrix or a
        boolean array of the same shape as ``scores`` (nonzero = excluded), or one
        collection of item indices per row. Excluded items get score ``-inf``; if
        a row has fewer than ``k`` allowed items they fill its last places (check
        the returned scores for ``-inf``).
    return_scores : bool
        Also return the scores of the chosen items.
    tie_break : {"index", "random"}
        How equal scores are ordered: lower item index first, or at random.
    seed : int >= 0 or numpy Generator
        Source of the random order for ``tie_break="random"`` (ignored otherwise).

    Returns
    -------
    indices : ndarray of int64, shape (n_users, k) (or (k,) for 1-D scores)
    top_scores : ndarray, same shape (only with ``return_scores=True``)
    """
    array = np.asarray(scores)
    one_row = array.ndim == 1
    if one_row:
        array = array[None, :]
        if exclude is not None and not sparse.issparse(exclude):
            exclude_array = np.asarray(exclude) if not isinstance(exclude, (set, frozenset)) \
                else np.asarray(sorted(exclude))
            exclude = exclude_array[None, :] if exclude_array.dtype == bool else [exclude_array]
    if array.ndim != 2:
        raise ParameterError(f"scores must be 1-D or 2-D, got shape {array.shape}")
    if array.dtype.kind not in "fiu":
        raise ParameterError(f"scores must be numeric, got dtype {array.dtype}")
    check_int("k", k, high=array.shape[1])
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise DataError("scores contain NaN; a model produced an invalid score")
    check_choice("tie_break", tie_break, ("index", "random"))
    if tie_break == "random" and not isinstance(seed, np.random.Generator):
        seed = check_seed(seed)
    k = int(k)
    mask = _exclude_mask(exclude, array.shape)
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    if mask is not None:
        array = np.where(mask, -np.inf, array)
    if tie_break == "random":
        # Rank a randomly permuted copy of each row (ties go to the lower
        # permuted position, i.e. a random one), then map back to item indices.
        permutation = np.argsort(np.random.default_rng(seed).random(array.shape), axis=1)
        indices, values = _top_k_rows(np.take_along_axis(array, permutation, axis=1), k)
        indices = np.take_along_axis(permutation, indices, axis=1).astype(np.int64)
    else:
        indices, values = _top_k_rows(array, k)
    if one_row:
        indices, values = indices[0], values[0]
    return (indices, values) if return_scores else indices


def _top_k_rows(array: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k per row with ties to the lower index; ``array`` is float 2-D."""
    num_rows, num_items = array.shape
    if k < num_items:
        # The k largest, in arbitrary order, without copying the scores.
        indices = np.argpartition(array, num_items - k, axis=1)[:, num_items - k:]
        kth = np.take_along_axis(array, indices, axis=1).min(axis=1, keepdims=True)
        # argpartition picks an arbitrary subset of the items tied at the k-th
        # value. Rows where more items are tied than places are left get their
        # tied items re-chosen as the lowest indices (rare with real scores).
        num_above = (array > kth).sum(axis=1)
        num_tied = (array == kth).sum(axis=1)
        ambiguous = np.flatnonzero(num_tied > k - num_above)
        if len(ambiguous):
            rows = array[ambiguous]
            row_kth = kth[ambiguous]
            tied = rows == row_kth
            still_needed = (k - num_above[ambiguous])[:, None]
            chosen = (rows > row_kth) | (tied & (np.cumsum(tied, axis=1) <= still_needed))
            indices[ambiguous] = np.nonzero(chosen)[1].reshape(len(ambiguous), k)
    else:
        indices = np.broadcast_to(np.arange(num_items), (num_rows, num_items)).copy()
    values = np.take_along_axis(array, indices, axis=1)
    # Sort the k winners by score (descending), then by index (ascending).
    order = np.lexsort((indices, -values), axis=1)
    indices = np.take_along_axis(indices, order, axis=1).astype(np.int64)
    values = np.take_along_axis(values, order, axis=1)
    return indices, values


def blocked_top_k(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    k: int,
    *,
    metric: Literal["cosine", "dot"] = "cosine",
    exclude: sparse.spmatrix | None = None,
    user_block: int = 1024,
    item_block: int = 32768,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-K items for every user without building the full score matrix.

    Introduced in chapter 05. Scores are computed in float32 tiles of
    ``user_block x item_block``; each tile's top-K is merged into a running
    top-K per user, so peak extra memory is about ``user_block * (item_block + 2k)``
    float32 values, whatever the catalogue size. Results (including ties: lower
    item index first) equal :func:`top_k` on the full matrix, except that a
    user with fewer than ``k`` allowed items gets index -1 (score ``-inf``) in
    the empty places. After the first tile, only scores above a user's current
    k-th best are merged, so most of the work is the matrix product.

    Parameters
    ----------
    user_vectors : ndarray of shape (n_users, dim)
    item_vectors : ndarray of shape (n_items, dim)
    k : int in [1, n_items]
    metric : {"cosine", "dot"}
    exclude : sparse matrix of shape (n_users, n_items), optional
        Nonzero entries are excluded (already-seen items).
    user_block, item_block : int
        Tile sizes.

    Returns
    -------
    indices : ndarray of int64, shape (n_users, k)
    scores : ndarray of float32, shape (n_users, k)
    """
    users, items = _check_pair(user_vectors, item_vectors)
    check_choice("metric", metric, ("cosine", "dot"))
    num_users, num_items = len(users), len(items)
    check_int("k", k, high=num_items)
    user_block = check_int("user_block", user_block)
    item_block = check_int("item_block", item_block)
    if exclude is not None:
        if not sparse.issparse(exclude):
            raise ParameterError("exclude must be a scipy sparse matrix for blocked_top_k")
        if exclude.shape != (num_users, num_items):
            raise ParameterError(f"exclude has shape {exclude.shape}, expected "
                                 f"{(num_users, num_items)}")
        exclude = sparse.csr_matrix(exclude)
    if metric == "cosine":
        users, items = normalize_rows(users), normalize_rows(items)
    users = users.astype(np.float32, copy=False)
    items = items.astype(np.float32, copy=False)
    k = int(k)
    all_indices = np.empty((num_users, k), dtype=np.int64)
    all_scores = np.empty((num_users, k), dtype=np.float32)
    for user_start in range(0, num_users, user_block):
        user_stop = min(user_start + user_block, num_users)
        block_users = users[user_start:user_stop]
        rows_in_block = user_stop - user_start
        # Running top-k per user; placeholders (index past the catalogue, score
        # -inf) lose every tie against real items and become -1 at the end.
        best_indices = np.broadcast_to(num_items + np.arange(k), (rows_in_block, k)).copy()
        best_scores = np.full((rows_in_block, k), -np.inf, dtype=np.float32)
        for item_start in range(0, num_items, item_block):
            item_stop = min(item_start + item_block, num_items)
            tile = block_users @ items[item_start:item_stop].T
            if exclude is not None:
                seen = exclude[user_start:user_stop, item_start:item_stop].tocoo()
                tile[seen.row, seen.col] = -np.inf
            if item_start == 0:
                tile_k = min(k, item_stop - item_start)
                first_indices, first_scores = _top_k_rows(tile, tile_k)
                # Excluded items (-inf) never enter: they keep the placeholders.
                allowed = first_scores > -np.inf
                best_indices[:, :tile_k] = np.where(allowed, first_indices,
                                                    best_indices[:, :tile_k])
                best_scores[:, :tile_k] = first_scores
                continue
            # Later tiles only matter where they beat the current k-th best score
            # (a tie loses: earlier items have lower indices). After the first
            # tile few entries pass, so this is one cheap comparison per tile.
            rows, cols = np.nonzero(tile > best_scores[:, -1:])
            if len(rows) == 0:
                continue
            best_indices, best_scores = _merge_candidates(
                best_indices, best_scores, rows, cols + item_start, tile[rows, cols], k)
        best_indices[best_indices >= num_items] = -1
        all_indices[user_start:user_stop] = best_indices
        all_scores[user_start:user_stop] = best_scores
    return all_indices, all_scores


def _merge_candidates(best_indices, best_scores, rows, indices, scores, k):
    """Merge (row, index, score) candidates into the running (n, k) top-k."""
    num_rows = len(best_indices)
    all_rows = np.concatenate([np.repeat(np.arange(num_rows), k), rows])
    all_indices = np.concatenate([best_indices.ravel(), indices])
    all_scores = np.concatenate([best_scores.ravel(), scores.astype(best_scores.dtype)])
    order = np.lexsort((all_indices, -all_scores, all_rows))
    sorted_rows = all_rows[order]
    row_start = np.searchsorted(sorted_rows, np.arange(num_rows))
    rank = np.arange(len(order)) - row_start[sorted_rows]
    keep = order[rank < k]
    return all_indices[keep].reshape(num_rows, k), all_scores[keep].reshape(num_rows, k)
