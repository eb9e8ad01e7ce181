"""The live item index behind the server: top-k by inner product over a growing, shrinking set.

One small interface, three methods (``add``, ``remove``, ``search``), two implementations:

- :class:`ExactIndex` (default): the vectors in one NumPy array; a query is one
  matrix-vector product and an ``argpartition``, no TensorFlow and no Python loop over items;
- :class:`FaissIndex`: a :mod:`mmrec_lib.retrieval` index (``kind="exact"`` is FAISS's
  brute force, ``"hnsw"`` approximate), for catalogues where a full scan per query is too
  slow. (IVF is left out: removing an item from ``retrieval``'s IVF index, an
  ``IndexIDMap`` around ``IndexIVFFlat``, mislabels the remaining items.)

:func:`make_index` picks one by name (``create_app(..., index="exact" | "faiss-exact" | "faiss-hnsw")``).
"""

from __future__ import annotations

import threading
from collections.abc import Collection

import numpy as np

from mmrec_lib._validation import check_choice
from mmrec_lib.errors import DataError, ParameterError

__all__ = ["ExactIndex", "FaissIndex", "make_index", "INDEX_KINDS"]

#: The names :func:`make_index` accepts.
INDEX_KINDS = ("exact", "faiss-exact", "faiss-hnsw")


def _check_vectors(ids, vectors, dim: int) -> tuple[list[str], np.ndarray]:
    vectors = np.asarray(vectors, np.float32)
    ids = [str(i) for i in ids]
    if vectors.shape != (len(ids), dim):
        raise ParameterError(f"vectors of shape {vectors.shape}; expected ({len(ids)}, {dim})")
    if not np.isfinite(vectors).all():
        raise DataError("vectors contain NaN or infinite values")
    return ids, vectors


def _check_query(query, dim: int) -> np.ndarray:
    query = np.asarray(query, np.float32).reshape(-1)
    if query.shape != (dim,):
        raise ParameterError(f"query of shape {query.shape}; expected ({dim},)")
    return query


class ExactIndex:
    """Exact maximum-inner-product search in NumPy.

    Rows live in a preallocated array that doubles when full; a removed item's row is
    marked dead and reused by the next ``add``. A search is ``vectors @ query``, dead and
    excluded rows set to ``-inf``, then ``argpartition``: O(n_items * dim) arithmetic and
    O(k log k + len(exclude)) Python. One lock guards writes against searches.
    """

    def __init__(self, dim: int, *, capacity: int = 1024):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ParameterError(f"dim={dim!r} must be an int >= 1")
        self.dim = int(dim)
        size = max(int(capacity), 16)
        self._vectors = np.zeros((size, self.dim), np.float32)
        self._alive = np.zeros(size, bool)
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
        ids, vectors = _check_vectors(ids, vectors, self.dim)
        with self._lock:
            for item_id, vector in zip(ids, vectors):
                row = self._row.get(item_id)
                if row is None:
                    row = self._free.pop() if self._free else len(self._ids)
                    if row == len(self._ids):
                        self._ids.append(None)
                    if row >= len(self._vectors):
                        self._grow()
                self._vectors[row] = vector
                self._alive[row] = True
                self._ids[row] = item_id
                self._row[item_id] = row

    def _grow(self) -> None:
        size = 2 * len(self._vectors)
        vectors = np.zeros((size, self.dim), np.float32)
        vectors[: len(self._vectors)] = self._vectors
        alive = np.zeros(size, bool)
        alive[: len(self._alive)] = self._alive
        self._vectors, self._alive = vectors, alive

    def remove(self, item_id) -> bool:
        """Remove one item; False if it was not there."""
        with self._lock:
            row = self._row.pop(str(item_id), None)
            if row is None:
                return False
            self._ids[row] = None
            self._alive[row] = False
            self._vectors[row] = 0.0
            self._free.append(row)
            return True

    def search(self, query, k: int, *, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The (at most) ``k`` best ``(item_id, inner product)`` pairs, best first."""
        query = _check_query(query, self.dim)
        with self._lock:
            n = len(self._ids)
            scores = self._vectors[:n] @ query
            scores[~self._alive[:n]] = -np.inf
            rows = [self._row[i] for i in exclude if i in self._row]
            ids = self._ids  # read below only at rows alive now (ids are set before alive)
            if rows:
                scores[rows] = -np.inf
            available = len(self._row) - len(rows)
            k = min(int(k), available)
            if k < 1:
                return []
            top = (np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n))
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(ids[row], float(scores[row])) for row in top]


class FaissIndex:
    """The same interface over a :mod:`mmrec_lib.retrieval` FAISS index.

    ``kind="exact"`` (``IndexFlatIP``) removes items for real; ``"hnsw"``
    cannot, so a removed item is only hidden (filtered out of results) until a rebuild.
    A search asks FAISS for ``k + len(exclude) + hidden`` candidates and filters them.
    """

    def __init__(self, dim: int, *, kind: str = "exact", **options):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ParameterError(f"dim={dim!r} must be an int >= 1")
        self.dim = int(dim)
        self.kind = check_choice("kind", kind, ("exact", "hnsw"))
        self.options = options
        self._index = None
        self._ids: list[str] = []  # FAISS label -> item id
        self._label: dict[str, int] = {}  # item id -> its live label
        self._hidden = 0  # labels still inside FAISS but removed (hnsw)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._label)

    def __contains__(self, item_id) -> bool:
        return item_id in self._label

    def add(self, ids, vectors) -> None:
        """Add the vectors of ``ids`` (an id already present is replaced)."""
        from mmrec_lib.retrieval import build_index

        ids, vectors = _check_vectors(ids, vectors, self.dim)
        with self._lock:
            for item_id in ids:
                if item_id in self._label:
                    self._drop(item_id)
            if self._index is None:
                self._index = build_index(vectors, kind=self.kind, metric="ip",
                                          num_threads=1, **self.options)
                labels = range(len(ids))
            else:
                labels = self._index.add(vectors).tolist()
            for item_id, label in zip(ids, labels):
                if label != len(self._ids):
                    raise DataError(f"FAISS gave label {label}; expected {len(self._ids)}")
                self._ids.append(item_id)
                self._label[item_id] = label

    def _drop(self, item_id: str) -> None:
        label = self._label.pop(item_id)
        if self.kind == "hnsw":
            self._hidden += 1
        else:
            self._index.remove([label])

    def remove(self, item_id) -> bool:
        """Remove one item; False if it was not there."""
        with self._lock:
            if str(item_id) not in self._label:
                return False
            self._drop(str(item_id))
            return True

    def search(self, query, k: int, *, exclude: Collection[str] = ()) -> list[tuple[str, float]]:
        """The (at most) ``k`` best ``(item_id, inner product)`` pairs, best first."""
        query = _check_query(query, self.dim)
        with self._lock:
            if self._index is None or not self._label:
                return []
            wanted = min(len(self._index), int(k) + len(exclude) + self._hidden)
            if wanted < 1:
                return []
            scores, labels = self._index.search(query, wanted)
            hits = []
            for score, label in zip(scores.tolist(), labels.tolist()):
                if label < 0:
                    continue
                item_id = self._ids[label]
                if self._label.get(item_id) != label or item_id in exclude:
                    continue
                hits.append((item_id, float(score)))
                if len(hits) == k:
                    break
            return hits


def make_index(kind: str, dim: int, *, capacity: int = 1024):
    """An empty index of ``kind`` in :data:`INDEX_KINDS` for vectors of ``dim``."""
    check_choice("index", kind, INDEX_KINDS)
    if kind == "exact":
        return ExactIndex(dim, capacity=capacity)
    return FaissIndex(dim, kind=kind.removeprefix("faiss-"))
