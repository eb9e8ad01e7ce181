"""The live recommender: a fitted model's towers, unrolled into arrays that can grow.

The item tower runs once per item (the catalogue at start, one clip per upload); the user
tower is the mean of the history's item vectors (plus the id embedding), so a view updates a
user without retraining. Ranking goes through two :class:`_Index` objects: one over
``[q_i, b_i]`` (the model's score as one inner product) and one over unit ``q_i`` (similar
items).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

import numpy as np

from mmrec_lib.errors import DataError, ModelError
from mmrec_lib.serving._index import _Index

__all__ = ["LiveRecommender"]

logger = logging.getLogger(__name__)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class LiveRecommender:
    """A fitted :class:`~mmrec_lib.models.MultimodalRecommender` that takes new items and views.

    Parameters
    ----------
    model : MultimodalRecommender, fitted, without ``graph_k`` or trainable ``encoders``
        (a new item could not be propagated over the graph / has no raw encoder input).
    """

    def __init__(self, model):
        from mmrec_lib.utils import check_is_fitted

        check_is_fitted(model)
        if model.graph_k is not None:
            raise ModelError("a graph model (graph_k) cannot take new items without rebuilding "
                             "its item graph; serve a model without graph_k")
        if model.encoders:
            raise ModelError("a model with trainable encoders cannot be served live yet")
        import tensorflow as tf

        self._tf = tf
        self.model = model
        network = model.network_
        self.network = network
        self.modalities = list(model.modalities_)
        self.dims = [int(t.shape[1]) for t in network.feature_tables]
        self.dot = model.similarity == "dot"
        self.scale = float(network.scale)
        self.max_history = int(model.max_history)
        q, b = network.item_vectors(training=False, with_bias=True)
        q, b = q.numpy().astype(np.float32), b.numpy().astype(np.float32)
        self.dim = q.shape[1]
        try:
            model._check_additive()
            self.parts_exact, self.parts_note = True, (
                "exact: the parts add up to the score (concat fusion, dot product)")
        except Exception as error:  # ParameterError / ModelError: say why, serve anyway
            self.parts_exact, self.parts_note = False, f"no exact per-modality split: {error}"
        self._lock = threading.RLock()
        self._tower = None
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._q = np.zeros((0, self.dim), np.float32)
        self._b = np.zeros(0, np.float32)
        self._parts = np.zeros((0, len(self.modalities), self.dim), np.float32)
        self._collab = np.zeros((0, self.dim), np.float32)
        self._id_bias = np.zeros(0, np.float32)
        self.rank_index = _Index(self.dim + 1, capacity=2 * len(q) + 64)
        self.similar_index = _Index(self.dim, capacity=2 * len(q) + 64)
        self._weight = np.zeros(self.dim, np.float32)  # content-bias kernel w
        self._constant = 0.0
        if network.content_bias is not None:
            kernel, bias = network.content_bias.get_weights()
            self._weight, self._constant = kernel[:, 0].astype(np.float32), float(bias[0])
        ids = [str(i) for i in model.item_ids_]
        parts = self._part_vectors(network.modality_inputs(training=False),
                                   network.mask_table.numpy())
        collab = (network.item_embedding.get_weights()[0] if network.item_embedding is not None
                  else np.zeros_like(q))
        id_bias = (network.item_id_bias.get_weights()[0][:, 0]
                   if network.item_id_bias is not None else np.zeros(len(q), np.float32))
        self._append(ids, q, b, parts, collab, id_bias)
        # Users: id embeddings, recent histories (oldest first) and everything seen.
        self._user_embedding = (network.user_embedding.get_weights()[0]
                                if network.user_embedding is not None else None)
        self._user_row = {str(u): r for r, u in enumerate(model.user_ids_)}
        history = model._arrays["user_histories"]
        self.histories: dict[str, list[str]] = {
            str(u): [ids[i] for i in history[r] if i >= 0] for r, u in enumerate(model.user_ids_)}
        matrix = model.train_matrix_.tocsr()
        self.seen: dict[str, set[str]] = {
            str(u): {ids[i] for i in matrix.indices[matrix.indptr[r]: matrix.indptr[r + 1]]}
            for r, u in enumerate(model.user_ids_)}
        self.popularity = dict(zip(ids, np.asarray(matrix.sum(axis=0)).ravel().astype(int)))

    # ------------------------------------------------------------------ items

    def _part_vectors(self, inputs, mask: np.ndarray) -> np.ndarray:
        """Per-modality content parts ``c_i^m - c_empty`` (n, n_modalities, dim)."""
        if not self.parts_exact:
            return np.zeros((len(mask), len(self.modalities), self.dim), np.float32)
        fusion = self.network.fusion
        empty = fusion(inputs, modality_mask=np.zeros_like(mask)).numpy()
        self._empty = empty[0].astype(np.float32)
        parts = []
        for m in range(len(self.modalities)):
            only = np.zeros_like(mask)
            only[:, m] = mask[:, m]
            parts.append(fusion(inputs, modality_mask=only).numpy() - empty)
        return np.stack(parts, axis=1).astype(np.float32)

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
        """Item vector, bias and parts of one new item from its modality vectors."""
        tf = self._tf
        inputs, present = [], []
        for modality, dim in zip(self.modalities, self.dims):
            vector = vectors.get(modality)
            if vector is None:
                inputs.append(tf.zeros((1, dim), tf.float32))
                present.append(False)
                continue
            vector = np.asarray(vector, np.float32).reshape(1, -1)
            if vector.shape[1] != dim:
                raise ModelError(f"the {modality} vector has {vector.shape[1]} dimensions; the "
                                 f"model was trained on {dim} (encoder settings differ)")
            if not np.isfinite(vector).all():
                raise DataError(f"the {modality} vector of the clip is not finite")
            inputs.append(tf.constant(vector))
            present.append(True)
        # One batch through the fusion layer: the item with its modalities, with none, and
        # with each one alone (the last rows give the parts of score_parts).
        mask = np.array(present, dtype=bool)
        masks = np.zeros((len(mask) + 2, len(mask)), dtype=bool)
        masks[0] = mask
        masks[2:][np.diag_indices(len(mask))] = mask
        if self._tower is None:
            self._tower = tf.function(self._tower_batch, reduce_retracing=True)
        content, bias, fused = (x.numpy().astype(np.float32)
                                for x in self._tower(inputs, tf.constant(masks)))
        parts = (fused[2:] - fused[1])[None] if self.parts_exact else np.zeros(
            (1, len(mask), self.dim), np.float32)
        return content, bias, parts  # a new item has no id embedding and no id bias yet

    def _tower_batch(self, inputs, masks):
        tf = self._tf
        rows = tf.shape(masks)[0]
        fused = self.network.fusion([tf.repeat(x, rows, axis=0) for x in inputs],
                                    modality_mask=masks)
        content = fused[:1]
        bias = tf.zeros((1,), fused.dtype)
        if self.network.content_bias is not None:
            bias = self.network.content_bias(content)[:, 0]
        return content, bias, fused

    def add_item(self, item_id: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Run the item tower on a new clip and make it recommendable."""
        q, b, parts = self.item_tower(vectors)
        self._append([item_id], q, b, parts, np.zeros_like(q), np.zeros(1, np.float32))
        with self._lock:
            self.popularity[item_id] = 0

    def remove_item(self, item_id: str) -> bool:
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
        with self._lock:
            rows = [self._row[i] for i in self.histories.get(user, [])]
            vector = (self._q[rows].mean(axis=0) if rows
                      else np.zeros(self.dim, np.float32))
            row = self._user_row.get(user)
            if self._user_embedding is not None and row is not None:
                vector = vector + self._user_embedding[row]
        return vector.astype(np.float32)

    def add_view(self, user: str, item_id: str) -> bool:
        """Append ``item_id`` to ``user``'s history; True if the user is new."""
        with self._lock:
            new = user not in self.histories
            history = self.histories.setdefault(user, [])
            if item_id in history:
                history.remove(item_id)
            history.append(item_id)
            del history[: -self.max_history]
            self.seen.setdefault(user, set()).add(item_id)
            self.popularity[item_id] = self.popularity.get(item_id, 0) + 1
            return new

    # ------------------------------------------------------------------ queries

    def recommend(self, user: str, k: int) -> dict:
        """Top-k of a known user, or the cold-start fallback for an unknown one."""
        if self.has_user(user):
            p = self.user_vector(user)
            query_head = p if self.dot else _unit(p[None])[0]
            with self._lock:
                seen = set(self.seen.get(user, ()))
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
                "items": [self._explain(item_id, score, p) for item_id, score in hits]}

    def similar(self, item_id: str, k: int) -> list[dict]:
        with self._lock:
            query = _unit(self._q[self._row[item_id]][None])[0]
        hits = self.similar_index.search(query, k, exclude={item_id})
        return [{"item_id": i, "score": s} for i, s in hits]

    def _explain(self, item_id: str, score: float, p: np.ndarray) -> dict:
        result = {"item_id": item_id, "score": float(score), "parts": None}
        if not self.parts_exact:
            return result
        with self._lock:
            row = self._row[item_id]
            weight = p + self._weight
            parts = {m: float(self._parts[row, j] @ weight)
                     for j, m in enumerate(self.modalities)}
            parts["collaborative"] = float(self._collab[row] @ p + self._id_bias[row])
            parts["shared"] = float(self._empty @ weight + self._constant)
        result["parts"] = parts
        return result
