"""Semantic IDs (TIGER): residual k-means turns an item's content vector into a short code tuple.

Level 1 clusters the item vectors, level 2 clusters what level 1 left over
(the residuals), and so on: similar items share a code prefix, and the sum of
the chosen centroids reconstructs the vector better at every level. An extra
de-duplication token (0, 1, 2, ... among items with the same code) makes each
item's tuple unique, as in Rajput et al. (2023), so a generator that emits a
code tuple names exactly one item. An item unseen at ``fit`` (a new release)
gets its code from its content vector alone (:meth:`ResidualQuantizer.add`).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from mmrec_lib._validation import check_int, check_matrix, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.utils import check_is_fitted

__all__ = ["ResidualQuantizer", "fuse_modalities"]


class ResidualQuantizer(BaseEstimator):
    """Residual k-means quantiser with a de-duplication suffix.

    Introduced in chapter 09 (generative retrieval).

    Parameters
    ----------
    levels : int >= 1
        Number of k-means levels (code length without the suffix).
    codebook_size : int >= 2
        Clusters per level (fewer when there are fewer distinct vectors).
    seed : int
        Seeds scikit-learn's ``KMeans`` (``n_init=4``): same vectors, same codes.

    Attributes (after ``fit``)
    --------------------------
    centroids_ : list of ``levels`` ndarrays of shape (clusters_l, dim)
    codes_ : ndarray of int64, shape (n_items, levels + 1)
        Codes of the items, last column the de-duplication suffix; items added
        with :meth:`add` are appended.
    item_of_code_ : dict tuple -> int
        The item index (row of ``codes_``) of every full code tuple.

    Examples
    --------
    >>> vectors = np.random.default_rng(0).normal(size=(40, 4))
    >>> quantizer = ResidualQuantizer(levels=2, codebook_size=4).fit(vectors)
    >>> quantizer.codes_.shape, len(quantizer.item_of_code_)
    ((40, 3), 40)
    """

    def __init__(self, *, levels: int = 3, codebook_size: int = 16, seed: int = 0):
        self.levels = levels
        self.codebook_size = codebook_size
        self.seed = seed

    def _check_vectors(self, vectors, name: str = "item_vectors") -> np.ndarray:
        array = check_matrix(name, vectors).astype(np.float64)
        if len(array) == 0:
            raise DataError(f"{name} has no rows")
        if hasattr(self, "centroids_") and array.shape[1] != self.centroids_[0].shape[1]:
            raise ParameterError(f"{name} has {array.shape[1]} columns; the quantizer was "
                                 f"fitted on {self.centroids_[0].shape[1]}")
        return array

    def fit(self, item_vectors) -> ResidualQuantizer:
        """Fit the codebooks on ``item_vectors`` (n_items, dim) and code those items.

        Returns
        -------
        self
        """
        from sklearn.cluster import KMeans

        check_int("levels", self.levels)
        check_int("codebook_size", self.codebook_size, low=2)
        check_seed(self.seed)
        for attribute in ("centroids_", "codes_", "item_of_code_"):
            self.__dict__.pop(attribute, None)
        residual = self._check_vectors(item_vectors)
        centroids = []
        for level in range(self.levels):
            distinct = len(np.unique(np.round(residual, 12), axis=0))
            clusters = min(self.codebook_size, distinct)
            if clusters < 2:
                # Nothing left to split: a single centroid (the mean) keeps the levels uniform.
                center = residual.mean(axis=0, keepdims=True)
            else:
                kmeans = KMeans(n_clusters=clusters, n_init=4, random_state=self.seed + level)
                center = kmeans.fit(residual).cluster_centers_
            centroids.append(center)
            residual = residual - center[_nearest(residual, center)]
        self.centroids_ = centroids
        self.codes_ = np.zeros((0, self.levels + 1), dtype=np.int64)
        self.item_of_code_ = {}
        self.add(item_vectors)
        return self

    def transform(self, vectors) -> np.ndarray:
        """Codes of ``vectors`` (n, dim) without the suffix: int64 array of shape (n, levels)."""
        check_is_fitted(self, "centroids_")
        residual = self._check_vectors(vectors, "vectors")
        codes = np.zeros((len(residual), self.levels), dtype=np.int64)
        for level, center in enumerate(self.centroids_):
            codes[:, level] = _nearest(residual, center)
            residual = residual - center[codes[:, level]]
        return codes

    def reconstruct(self, codes) -> np.ndarray:
        """Sum of the chosen centroids: float array (n, dim); a suffix column is ignored."""
        check_is_fitted(self, "centroids_")
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] not in (self.levels, self.levels + 1) \
                or codes.dtype.kind not in "iu":
            raise ParameterError(f"codes must be an int array of shape (n, {self.levels}) or "
                                 f"(n, {self.levels + 1}), got {codes.dtype} {codes.shape}")
        total = np.zeros((len(codes), self.centroids_[0].shape[1]))
        for level, center in enumerate(self.centroids_):
            if codes[:, level].min(initial=0) < 0 or codes[:, level].max(initial=0) >= len(center):
                raise ParameterError(f"codes of level {level} must be in [0, {len(center)})")
            total += center[codes[:, level]]
        return total

    def add(self, vectors) -> np.ndarray:
        """Code new items from their content and append them (indices ``len(codes_)`` on).

        Returns
        -------
        ndarray of int64, shape (n, levels + 1)
            The full, unique codes of the new items (suffix = number of earlier
            items with the same ``levels`` codes).
        """
        codes = self.transform(vectors)
        counts: dict[tuple, int] = {}
        for row in self.codes_:
            prefix = tuple(int(c) for c in row[:-1])
            counts[prefix] = max(counts.get(prefix, 0), int(row[-1]) + 1)
        full = np.zeros((len(codes), self.levels + 1), dtype=np.int64)
        start = len(self.codes_)
        for row, code in enumerate(codes):
            prefix = tuple(int(c) for c in code)
            suffix = counts.get(prefix, 0)
            counts[prefix] = suffix + 1
            full[row] = (*prefix, suffix)
            self.item_of_code_[(*prefix, suffix)] = start + row
        self.codes_ = np.concatenate([self.codes_, full])
        return full

    def prefix_tree(self) -> dict[tuple, np.ndarray]:
        """Allowed next code after every prefix of an existing code (constrained decoding).

        Returns
        -------
        dict tuple -> sorted int64 ndarray
            Key: a prefix of length 0 .. levels (``()`` is the root); value: the
            codes that continue it towards at least one existing item.
        """
        check_is_fitted(self, "codes_")
        children: dict[tuple, set] = {}
        for row in self.codes_:
            code = tuple(int(c) for c in row)
            for length in range(self.levels + 1):
                children.setdefault(code[:length], set()).add(code[length])
        return {prefix: np.array(sorted(values), dtype=np.int64)
                for prefix, values in children.items()}


def _nearest(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean) of each point: shape (n,)."""
    distances = ((points ** 2).sum(1)[:, None] - 2 * points @ centers.T
                 + (centers ** 2).sum(1)[None])
    return distances.argmin(axis=1)


def fuse_modalities(features: dict, *, dim_per_modality: int = 32, seed: int = 0):
    """One content vector per item from several modality tables (early fusion for semantic IDs).

    Introduced in chapter 09. Each modality is standardised, reduced by PCA to
    ``dim_per_modality`` dimensions (fewer if it has fewer), scaled to unit mean
    row norm so that no modality dominates the k-means distances, and the
    modalities are concatenated in the order given. Any modality table works
    (text, speech / ASR, audio, visual): pass what
    :func:`mmrec_lib.features.item_features` returns.

    Parameters
    ----------
    features : dict {modality: DataFrame indexed by item id}
        All tables must have the same item index.
    dim_per_modality : int >= 1
    seed : int
        Seeds the (randomised) PCA solver.

    Returns
    -------
    DataFrame indexed by item id, columns ``<modality>_<j>``
    """
    import pandas as pd
    from sklearn.decomposition import PCA

    dim_per_modality = check_int("dim_per_modality", dim_per_modality)
    check_seed(seed)
    if not isinstance(features, dict) or not features:
        raise ParameterError("features must be a non-empty dict {modality: DataFrame}")
    index = None
    parts = []
    for name, frame in features.items():
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(f"features[{name!r}] must be a DataFrame indexed by item id")
        if index is None:
            index = frame.index
        elif not frame.index.equals(index):
            raise DataError(f"features[{name!r}] has a different item index from the first "
                            "modality")
        values = check_matrix(f"features[{name!r}]", frame.to_numpy(np.float64))
        values = (values - values.mean(0)) / np.maximum(values.std(0), 1e-8)
        dim = min(dim_per_modality, *values.shape)
        reduced = PCA(n_components=dim, random_state=seed).fit_transform(values)
        reduced /= max(float(np.linalg.norm(reduced, axis=1).mean()), 1e-12)
        parts.append(pd.DataFrame(reduced, index=index).add_prefix(f"{name}_"))
    return pd.concat(parts, axis=1).astype(np.float32)
