"""The live recommender: a fitted model's towers exported to NumPy arrays that can grow.

At start the model's towers are exported once (:meth:`TwoTower.export_item_tower`,
:meth:`TwoTower.export_user_tower`); from then on a query is NumPy only: the user's vector
(the mean of their history's item vectors plus their id embedding, cached until their next
view), one matrix-vector product and an ``argpartition`` in the index. TensorFlow runs only
when a clip is ingested (:meth:`TwoTower.item_vectors_for`, once per upload). Ranking goes
through two indexes (:mod:`mmrec_lib.serving._index`): one over ``[q_i, b_i]`` (the model's
score as one inner product) and one over unit ``q_i`` (similar items).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import numpy as np

from mmrec_lib.errors import DataError, ModelError
from mmrec_lib.serving._index import make_index

__all__ = ["LiveRecommender"]

logger = logging.getLogger(__name__)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _additive(model) -> tuple[bool, str]:
    """Whether every score splits exactly into per-modality parts (like ``score_parts``)."""
    reasons = []
    if model.similarity != "dot":
        reasons.append(f"similarity={model.similarity!r}")
    if model.fusion != "concat":
        reasons.append(f"fusion={model.fusion!r}")
    if {"collaborative", "shared"} & set(model.modalities_):
        reasons.append("a modality is named 'collaborative' or 'shared'")
    if reasons:
        return False, ("no exact per-modality split (needs similarity='dot' and "
                       "fusion='concat'): " + ", ".join(reasons))
    return True, "exact: the parts add up to the score (concat fusion, dot product)"


class LiveRecommender:
    """A fitted :class:`~mmrec_lib.models.MultimodalRecommender` that takes new items and views.

    Parameters
    ----------
    model : MultimodalRecommender, fitted, without ``graph_k`` or trainable ``encoders``
        (a new item could not be propagated over the graph / has no raw encoder input).
    index : str
        One of :data:`mmrec_lib.serving.INDEX_KINDS`: ``"exact"`` (NumPy, default) or a
        FAISS index (``"faiss-exact"``, ``"faiss-hnsw"``).
    """

    def __init__(self, model, *, index: str = "exact"):
        from mmrec_lib.utils import check_is_fitted

        check_is_fitted(model)
        if model.graph_k is not None:
            raise ModelError("a graph model (graph_k) cannot take new items without rebuilding "
                             "its item graph; serve a model without graph_k")
        if model.encoders:
            raise ModelError("a model with trainable encoders cannot be served live yet")
        self.model = model
        self.network = network = model.network_
        self.modalities = list(model.modalities_)
        tower = network.export_item_tower()
        users = network.export_user_tower()
        self.dims = tower["feature_dims"]
        self.dot = tower["similarity"] == "dot"
        self.scale = tower["scale"]
        self.max_history = int(model.max_history)
        self.parts_exact, self.parts_note = _additive(model)
        q, b = tower["vectors"], tower["bias"]
        self.dim = q.shape[1]
        self._lock = threading.RLock()
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._q = np.zeros((0, self.dim), np.float32)
        self._b = np.zeros(0, np.float32)
        self._parts = np.zeros((0, len(self.modalities), self.dim), np.float32)
        self._collab = np.zeros((0, self.dim), np.float32)
        self._id_bias = np.zeros(0, np.float32)
        self.index_kind = index
        self.rank_index = make_index(index, self.dim + 1, capacity=2 * len(q) + 64)
        self.similar_index = make_index(index, self.dim, capacity=2 * len(q) + 64)
        self._weight = tower["content_bias_kernel"]  # b_i = <w, c_i> + constant + d_i
        self._constant = tower["content_bias_constant"]
        self._empty = np.zeros(self.dim, np.float32)
        ids = [str(i) for i in model.item_ids_]
        self._append(ids, q, b, self._catalogue_parts(tower["id_embedding"]), tower["id_embedding"],
                     tower["id_bias"])
        # Users: id embeddings, recent histories (oldest first) and everything seen.
        self._user_embedding = users["user_embedding"]
        self._user_row = {str(u): r for r, u in enumerate(model.user_ids_)}
        self._user_cache: dict[str, np.ndarray] = {}
        self.histories: dict[str, list[str]] = {
            str(u): [ids[i] for i in users["histories"][r] if i >= 0]
            for r, u in enumerate(model.user_ids_)}
        matrix = model.train_matrix_.tocsr()
        self.seen: dict[str, set[str]] = {
            str(u): {ids[i] for i in matrix.indices[matrix.indptr[r]: matrix.indptr[r + 1]]}
            for r, u in enumerate(model.user_ids_)}
        self.popularity = dict(zip(ids, np.asarray(matrix.sum(axis=0)).ravel().astype(int)))

    # ------------------------------------------------------------------ items

    def _catalogue_parts(self, id_embedding: np.ndarray) -> np.ndarray:
        """Per-modality content parts ``c_i^m - c_empty`` (n, n_modalities, dim).

        ``item_vectors(modality_mask=...)`` adds the same id embedding to every variant,
        so it cancels in the differences.
        """
        if not self.parts_exact:
            return np.zeros((len(id_embedding), len(self.modalities), self.dim), np.float32)
        count = len(self.modalities)

        def vectors(keep) -> np.ndarray:
            return self.network.item_vectors(training=False, modality_mask=keep).numpy()

        empty = vectors(np.zeros(count, bool))
        self._empty = (empty[0] - id_embedding[0]).astype(np.float32)
        return np.stack([vectors(np.eye(count, dtype=bool)[m]) - empty for m in range(count)],
                        axis=1).astype(np.float32)

    def _append(self, ids, q, b, parts, collab, id_bias) -> None:
        with self._lock:
            start = len(self._ids)
            self._ids.extend(ids)
            for offset, item_id in enumerate(ids):
                self._row[item_id] = start + offset
            self._q = np.concatenate([self._q, q])
            self._b = np.concatenate([self._b, b])
            self._parts = np.concatenate([self._parts, parts])
            self._collab = np.concatenate([self._collab, collab])
            self._id_bias = np.concatenate([self._id_bias, id_bias])
            self.rank_index.add(ids, self._rank_vectors(q, b))
            self.similar_index.add(ids, _unit(q))

    def _rank_vectors(self, q: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``[q_i, b_i]`` (dot) or ``[scale * q_i / |q_i|, b_i]`` (cosine)."""
        head = q if self.dot else self.scale * _unit(q)
        return np.concatenate([head, b[:, None]], axis=1).astype(np.float32)

    def item_tower(self, vectors: Mapping[str, np.ndarray]):
        """Item vector (1, dim), bias (1,) and parts (1, n_modalities, dim) of one new item.

        One batch through the model's item tower: the item with its modalities, with none,
        and with each one alone (the differences are the parts of ``score_parts``).
        """
        rows, present = [], []
        for modality, dim in zip(self.modalities, self.dims):
            vector = vectors.get(modality)
            if vector is None:
                rows.append(np.zeros(dim, np.float32))
                present.append(False)
                continue
            vector = np.asarray(vector, np.float32).reshape(-1)
            if vector.shape[0] != dim:
                raise ModelError(f"the {modality} vector has {vector.shape[0]} dimensions; the "
                                 f"model was trained on {dim} (encoder settings differ)")
            if not np.isfinite(vector).all():
                raise DataError(f"the {modality} vector of the clip is not finite")
            rows.append(vector)
            present.append(True)
        mask = np.array(present, dtype=bool)
        masks = np.zeros((len(mask) + 2, len(mask)), dtype=bool)
        masks[0] = mask
        masks[2:][np.diag_indices(len(mask))] = mask
        features = [np.repeat(row[None], len(masks), axis=0) for row in rows]
        fused, bias = self.network.item_vectors_for(features, masks)
        parts = (fused[2:] - fused[1])[None] if self.parts_exact else np.zeros(
            (1, len(mask), self.dim), np.float32)
        return fused[:1], bias[:1], parts  # a new item has no id embedding and no id bias yet

    def add_item(self, item_id: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Run the item tower on a new clip and make it recommendable."""
        q, b, parts = self.item_tower(vectors)
        self._append([item_id], q, b, parts, np.zeros_like(q), np.zeros(1, np.float32))
        with self._lock:
            self.popularity[item_id] = 0

    def remove_item(self, item_id: str) -> bool:
        """Take an item out of both indexes (its row stays for the histories that hold it)."""
        with self._lock:
            removed = self.rank_index.remove(item_id)
            self.similar_index.remove(item_id)
            self.popularity.pop(item_id, None)
            return removed

    def has_item(self, item_id: str) -> bool:
        return item_id in self.rank_index

    @property
    def num_items(self) -> int:
        return len(self.rank_index)

    # ------------------------------------------------------------------ users

    def has_user(self, user: str) -> bool:
        return user in self.histories

    def user_vector(self, user: str) -> np.ndarray:
        """``p_u``: the mean of the history's item vectors plus the id embedding (cached)."""
        with self._lock:
            vector = self._user_cache.get(user)
            if vector is not None:
                return vector
            rows = [self._row[i] for i in self.histories.get(user, [])]
            vector = (self._q[rows].mean(axis=0) if rows
                      else np.zeros(self.dim, np.float32))
            row = self._user_row.get(user)
            if self._user_embedding is not None and row is not None:
                vector = vector + self._user_embedding[row]
            vector = vector.astype(np.float32)
            self._user_cache[user] = vector
            return vector

    def add_view(self, user: str, item_id: str) -> bool:
        """Append ``item_id`` to ``user``'s history (their vector follows); True if new."""
        with self._lock:
            new = user not in self.histories
            history = self.histories.setdefault(user, [])
            if item_id in history:
                history.remove(item_id)
            history.append(item_id)
            del history[: -self.max_history]
            self.seen.setdefault(user, set()).add(item_id)
            self.popularity[item_id] = self.popularity.get(item_id, 0) + 1
            self._user_cache.pop(user, None)
            return new

    # ------------------------------------------------------------------ queries

    def recommend(self, user: str, k: int) -> dict:
        """Top-k of a known user, or the cold-start fallback for an unknown one."""
        if self.has_user(user):
            p = self.user_vector(user)
            query_head = p if self.dot else _unit(p[None])[0]
            with self._lock:
                seen = frozenset(self.seen.get(user, ()))
            hits = self.rank_index.search(np.append(query_head, 1.0), k, exclude=seen)
            fallback = None
        else:
            p = np.zeros(self.dim, np.float32)
            if self.model.item_bias:
                hits = self.rank_index.search(np.append(p, 1.0), k)
                fallback = "item_bias"
            else:
                with self._lock:
                    counts = sorted(self.popularity.items(), key=lambda kv: (-kv[1], kv[0]))
                hits = [(i, float(c)) for i, c in counts[:k]]
                fallback = "popularity"
        return {"cold_start": fallback is not None, "fallback": fallback,
                "items": self._explain(hits, p)}

    def similar(self, item_id: str, k: int) -> list[dict]:
        with self._lock:
            query = _unit(self._q[self._row[item_id]][None])[0]
        hits = self.similar_index.search(query, k, exclude={item_id})
        return [{"item_id": i, "score": s} for i, s in hits]

    def _explain(self, hits: list[tuple[str, float]], p: np.ndarray) -> list[dict]:
        """Each hit with its score parts: ``<parts_m, p + w>`` per modality (vectorised)."""
        results = [{"item_id": item_id, "score": score, "parts": None}
                   for item_id, score in hits]
        if not self.parts_exact or not hits:
            return results
        with self._lock:
            rows = [self._row[item_id] for item_id, _ in hits]
            weight = p + self._weight
            modal = (self._parts[rows] @ weight).tolist()  # (k, n_modalities)
            collab = (self._collab[rows] @ p + self._id_bias[rows]).tolist()
        shared = float(self._empty @ weight + self._constant)
        for result, values, c in zip(results, modal, collab):
            result["parts"] = {**dict(zip(self.modalities, values)), "collaborative": c,
                               "shared": shared}
        return results
