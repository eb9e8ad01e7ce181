"""The live item index behind the server: exact inner-product top-K, one small interface.

``_Index`` holds one vector per item id and answers "the k ids with the largest inner
product with this query". It is exact (:func:`mmrec_lib.similarity.top_k` over all rows);
an approximate index (FAISS, :mod:`mmrec_lib.retrieval`) can replace it behind the same
three methods: ``add``, ``remove``, ``search``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

import numpy as np

from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.similarity import top_k

__all__ = ["_Index"]


class _Index:
    """Exact maximum-inner-product search over a growing, shrinking set of item vectors.

    Rows are kept in a preallocated array that doubles when full; a removed item's row is
    freed (its slot is reused by the next ``add``). Thread-safe: one lock guards writes,
    and searches read a consistent snapshot.
    """

    def __init__(self, dim: int, *, capacity: int = 1024):
        if dim < 1:
            raise ParameterError(f"dim={dim!r} must be >= 1")
        self.dim = int(dim)
        self._vectors = np.zeros((max(int(capacity), 16), self.dim), np.float32)
        self._ids: list[str | None] = []
        self._row: dict[str, int] = {}
        self._free: list[int] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, item_id) -> bool:
        return item_id in self._row

    def add(self, ids, vectors) -> None:
        """Add (or replace) the vectors of ``ids``: shape (len(ids), dim)."""
        vectors = np.asarray(vectors, np.float32)
        ids = [str(i) for i in ids]
        if vectors.shape != (len(ids), self.dim):
            raise ParameterError(f"vectors of shape {vectors.shape}; expected "
                                 f"({len(ids)}, {self.dim})")
        if not np.isfinite(vectors).all():
            raise DataError("vectors contain NaN or infinite values")
        with self._lock:
            for item_id, vector in zip(ids, vectors):
                row = self._row.get(item_id)
                if row is None:
                    row = self._free.pop() if self._free else len(self._ids)
                    if row == len(self._ids):
                        self._ids.append(None)
                    if row >= len(self._vectors):
                        grown = np.zeros((2 * len(self._vectors), self.dim), np.float32)
                        grown[: len(self._vectors)] = self._vectors
                        self._vectors = grown
                self._vectors[row] = vector
                self._ids[row] = item_id
                self._row[item_id] = row

    def remove(self, item_id) -> bool:
        """Remove one item; False if it was not there."""
        with self._lock:
            row = self._row.pop(str(item_id), None)
            if row is None:
                return False
            self._ids[row] = None
            self._vectors[row] = 0.0
            self._free.append(row)
            return True

    def search(self, query, k: int, *, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The (at most) ``k`` best ``(item_id, inner product)`` pairs, best first."""
        query = np.asarray(query, np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise ParameterError(f"query of shape {query.shape}; expected ({self.dim},)")
        with self._lock:
            n = len(self._ids)
            ids = list(self._ids)
            scores = self._vectors[:n] @ query
        allowed = np.array([i is not None and i not in exclude for i in ids], dtype=bool)
        available = int(allowed.sum())
        if available == 0 or k < 1:
            return []
        k = min(int(k), available)
        rows, values = top_k(scores.astype(np.float64), k, exclude=~allowed,
                             return_scores=True)
        return [(ids[row], float(value)) for row, value in zip(rows, values)]
