"""Two-tower training in one place: the BPR triples pipeline, the networks, the losses.

Both Keras recommenders train here: :class:`mmrec_lib.interest.BPRMFModel`
(chapter 05, ids only, :func:`build_mf_network`) and
:class:`mmrec_lib.models.MultimodalRecommender` (chapter 08, :class:`TwoTower`).
They share :func:`bpr_dataset` (shuffled positive pairs plus uniformly drawn
negatives), :func:`bpr_loss`, :func:`softmax_loss` and :func:`loss_curves`.
:func:`two_tower_settings` holds the training settings that chapter 08 and
``benchmarks/miniclips_ablation.py`` share.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib._env import import_tensorflow
from mmrec_lib._validation import check_int
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.fusion import AttentionFusion, ConcatFusion, GatedFusion, GraphConvolution
from mmrec_lib.models.masking import check_modality_mask

__all__ = [
    "TWO_TOWER_SETTINGS",
    "two_tower_settings",
    "bpr_dataset",
    "bpr_loss",
    "softmax_loss",
    "loss_curves",
    "user_history_matrix",
    "check_item_features",
    "build_mf_network",
    "TwoTower",
]

tf = import_tensorflow()
keras = tf.keras

Fusion = Literal["concat", "attention", "gated"]
FUSIONS = {"concat": ConcatFusion, "attention": AttentionFusion, "gated": GatedFusion}
#: Padding of the user-history matrix (no item).
PAD = -1

#: Training settings of the two-tower models of chapter 08 and the MiniClips ablation,
#: chosen on the validation rows of seed 0 (validation NDCG@10 of text / concat / hybrid,
#: MiniClips generator 3): BPR 0.103 / 0.173 / 0.194, in-batch softmax with the log-q
#: correction 0.137 / 0.215 / 0.225 (dot) and 0.181 / 0.215 / 0.222 (cosine): cosine for
#: content models, dot for the hybrid.
TWO_TOWER_SETTINGS = MappingProxyType({
    "embedding_dim": 32, "epochs": 40, "batch_size": 256, "learning_rate": 0.003,
    "patience": 4, "loss": "softmax", "similarity": "cosine"})


def two_tower_settings(**overrides) -> dict:
    """:data:`TWO_TOWER_SETTINGS` as a new dict, with ``overrides`` applied.

    Introduced in chapter 08: ``MultimodalRecommender(**two_tower_settings(epochs=10))``.
    """
    return {**TWO_TOWER_SETTINGS, **overrides}


def bpr_dataset(users: np.ndarray, items: np.ndarray, negative_pool: np.ndarray, *,
                batch_size: int = 256, seed: int = 0, reshuffle: bool = True,
                negatives: Literal["seeded", "global"] = "seeded"):
    """A ``tf.data`` pipeline of BPR triples: shuffled (user, positive, negative) batches.

    Introduced in chapter 08. Negatives are drawn uniformly from
    ``negative_pool`` (the training items: drawing cold items as negatives
    would teach the model to rank every cold item low), anew each epoch, with
    a fixed seed so that training is reproducible. ``reshuffle=False`` gives the
    same batches every epoch (for validation data, so that its loss curve
    measures the model and not the draw).

    Parameters
    ----------
    users, items : int ndarrays of shape (n_pairs,)
    negative_pool : int ndarray of shape (n_pool,)
    batch_size, seed : int
    reshuffle : bool
    negatives : {"seeded", "global"}
        ``"seeded"``: one seeded random stream, one draw per pair (chapter 08).
        ``"global"``: one ``tf.random.uniform`` draw per batch under the global
        seed of ``keras.utils.set_random_seed`` (chapter 05's BPR-MF, whose
        published numbers come from this stream); always reshuffled.

    Returns
    -------
    tf.data.Dataset of ``((user, positive, negative), dummy_target)`` batches.
    """
    users = np.asarray(users)
    items = np.asarray(items)
    pool = np.asarray(negative_pool)
    if users.ndim != 1 or users.shape != items.shape or users.size == 0:
        raise ParameterError(f"users {users.shape} and items {items.shape} must be non-empty "
                             "1-D arrays of the same length")
    if pool.ndim != 1 or pool.size == 0:
        raise ParameterError(f"negative_pool has shape {pool.shape}; expected a non-empty 1-D array")
    for name, array in (("users", users), ("items", items), ("negative_pool", pool)):
        if array.dtype.kind not in "iu" or (array < 0).any():
            raise ParameterError(f"{name} must hold int indices >= 0")
    batch_size = check_int("batch_size", batch_size)
    seed = check_int("seed", seed, low=0)
    if negatives not in ("seeded", "global"):
        raise ParameterError(f"negatives={negatives!r} must be 'seeded' or 'global'")
    pairs = tf.data.Dataset.from_tensor_slices((users.astype(np.int32), items.astype(np.int32)))
    if negatives == "global":
        return _global_negatives(pairs, len(users), pool, batch_size, seed)
    pool_tensor = tf.constant(pool, dtype=tf.int32)
    pairs = pairs.shuffle(len(users), seed=seed, reshuffle_each_iteration=bool(reshuffle))
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=bool(reshuffle))
    dataset = tf.data.Dataset.zip((pairs, randoms))

    def triple(pair, random):
        user, positive = pair
        negative = tf.gather(pool_tensor, tf.cast(random % pool.size, tf.int32))
        return (user, positive, negative), tf.constant(0.0)

    return dataset.map(triple).batch(batch_size).prefetch(2)


def _global_negatives(pairs, num_pairs: int, pool: np.ndarray, batch_size: int, seed: int):
    # The op order below is chapter 05's: shuffle, batch, then one draw per batch.
    dataset = pairs.shuffle(num_pairs, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    pool_tensor = tf.constant(pool, dtype=tf.int32)

    def add_negatives(user, positive):
        draw = tf.random.uniform(tf.shape(user), 0, tf.shape(pool_tensor)[0], dtype=tf.int32)
        return (user, positive, tf.gather(pool_tensor, draw)), tf.zeros(tf.shape(user))

    return dataset.map(add_negatives).prefetch(2)


def bpr_loss(_, difference):
    """BPR loss of score differences ``s(u, i) - s(u, j)``: the mean of ``-log sigmoid``."""
    # -log sigmoid(x) = softplus(-x), numerically stable.
    return tf.reduce_mean(tf.nn.softplus(-difference))


def softmax_loss(_, logits):
    """In-batch softmax cross-entropy; row b's positive is column b (see :class:`TwoTower`)."""
    labels = tf.range(tf.shape(logits)[0])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


def loss_curves(keras_history) -> dict[str, list[float]]:
    """``keras.callbacks.History`` -> ``{"loss": [...], "val_loss": [...], ...}`` of floats."""
    return {key: [float(v) for v in values] for key, values in keras_history.history.items()}


def user_history_matrix(users: np.ndarray, items: np.ndarray, *, num_users: int,
                        max_history: int) -> np.ndarray:
    """Each user's last ``max_history`` items (in the given order), padded with :data:`PAD`.

    ``users``, ``items``: int indices of the interactions, oldest first.
    Returns an int32 ndarray of shape (num_users, max_history).
    """
    matrix = np.full((num_users, max_history), PAD, dtype=np.int32)
    for user in range(num_users):
        recent = items[users == user][-max_history:]
        matrix[user, : len(recent)] = recent
    return matrix


def check_item_features(item_features) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
    """Validate ``{modality: DataFrame indexed by item id}``; return it and the sorted catalogue."""
    if not isinstance(item_features, Mapping) or not item_features:
        raise ParameterError("item_features must be a non-empty dict {modality: DataFrame "
                             f"indexed by item id}}, got {type(item_features).__name__}")
    features = {}
    for name, frame in item_features.items():
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise ParameterError(f"item_features[{name!r}] must be a non-empty DataFrame "
                                 "indexed by item id")
        if not frame.index.is_unique:
            raise DataError(f"item_features[{name!r}] has repeated item ids")
        if not all(kind in "fiu" for kind in frame.dtypes.map(lambda d: d.kind)):
            raise DataError(f"item_features[{name!r}] must hold numbers only")
        features[str(name)] = frame
    catalogue = np.unique(np.concatenate([np.asarray(f.index) for f in features.values()]))
    return features, catalogue


def build_mf_network(num_users: int, num_items: int, *, embedding_dim: int, l2: float,
                     seed: int):
    """Chapter 05's BPR-MF as a functional Keras model: (user, positive, negative) -> s_ui - s_uj.

    Layers ``user_embedding``, ``item_embedding`` (random normal, std 0.01) and
    ``item_bias`` (zeros); ``s_ui = <p_u, q_i> + b_i``.
    """
    initializer = keras.initializers.RandomNormal(stddev=0.01, seed=seed)
    regularizer = keras.regularizers.l2(l2) if l2 else None
    user = keras.Input(shape=(), dtype="int32", name="user")
    positive = keras.Input(shape=(), dtype="int32", name="positive")
    negative = keras.Input(shape=(), dtype="int32", name="negative")
    user_embedding = keras.layers.Embedding(num_users, embedding_dim, name="user_embedding",
                                            embeddings_initializer=initializer,
                                            embeddings_regularizer=regularizer)
    item_embedding = keras.layers.Embedding(num_items, embedding_dim, name="item_embedding",
                                            embeddings_initializer=initializer,
                                            embeddings_regularizer=regularizer)
    item_bias = keras.layers.Embedding(num_items, 1, name="item_bias",
                                       embeddings_initializer="zeros")
    user_vector = user_embedding(user)

    def item_score(item):
        dot = keras.layers.Dot(axes=1)([user_vector, item_embedding(item)])
        return keras.layers.Add()([dot, item_bias(item)])

    difference = keras.layers.Subtract(name="difference")([item_score(positive),
                                                          item_score(negative)])
    difference = keras.layers.Reshape(())(difference)
    return keras.Model([user, positive, negative], difference, name="bpr_mf")


class TwoTower(keras.Model):
    """Item tower and user tower over constant feature tables; call -> s(u, i) - s(u, j).

    ``user_histories`` is the (n_users, max_history) matrix of
    :func:`user_history_matrix`; see :class:`mmrec_lib.models.MultimodalRecommender`.
    """

    def __init__(self, features, mask, user_histories, *, fusion, embedding_dim, num_users,
                 use_user_id, use_item_id, adjacency, graph_layers, similarity, l2,
                 item_bias, loss, temperature, encoders=None, log_q=None):
        super().__init__(name="multimodal_recommender")
        self.feature_tables = [tf.constant(x) for x in features]
        # Trainable branches: encoders[m] turns modality m's raw table (e.g. token
        # ids) into vectors inside the item tower, trained with the rest.
        self.encoders = list(encoders) if encoders is not None else [None] * len(features)
        self.mask_table = tf.constant(mask)
        self.user_history_table = tf.constant(user_histories)
        self.similarity = similarity
        self.loss_kind = loss
        # log of each item's share of the training pairs: in-batch negatives are drawn
        # in proportion to it, and the softmax logits are corrected by it (Yi et al. 2019).
        self.log_q = None if log_q is None else tf.constant(log_q, tf.float32)
        self.scale = 1.0 / temperature if similarity == "cosine" else 1.0
        num_items = mask.shape[0]
        self.fusion = FUSIONS[fusion](embedding_dim, name=f"{fusion}_fusion")
        regularizer = keras.regularizers.l2(l2) if l2 else None
        # Zero initial id embeddings: an item nobody has interacted with keeps
        # exactly its content vector, a new user exactly its history.
        self.item_embedding = keras.layers.Embedding(
            num_items, embedding_dim, embeddings_initializer="zeros",
            embeddings_regularizer=regularizer, name="item_id_embedding") if use_item_id else None
        self.user_embedding = keras.layers.Embedding(
            num_users, embedding_dim, embeddings_initializer="zeros",
            embeddings_regularizer=regularizer, name="user_id_embedding") if use_user_id else None
        self.graph = None if adjacency is None else GraphConvolution(
            adjacency, num_layers=graph_layers, combine="residual", name="graph")
        # Item bias: how much everyone likes an item, whoever they are (its appeal).
        # The content part generalises to cold items; the id part is learnt from
        # interactions and stays 0 for an item nobody has seen.
        self.content_bias = keras.layers.Dense(1, name="content_bias") if item_bias else None
        self.item_id_bias = keras.layers.Embedding(
            num_items, 1, embeddings_initializer="zeros", name="item_id_bias") \
            if item_bias and use_item_id else None

    def modality_inputs(self, training=None):
        """The fusion layer's inputs: each feature table, through its encoder if it has one."""
        return [table if encoder is None else encoder(table, training=training)
                for table, encoder in zip(self.feature_tables, self.encoders, strict=True)]

    def item_vectors(self, training=None, with_bias=False, modality_mask=None):
        """Vectors of all items (n_items, embedding_dim) [and their biases (n_items,)].

        ``modality_mask``: an optional bool ndarray of shape (n_modalities,) or
        (n_items, n_modalities), AND-ed with the items' own presence mask for this
        call only (no state changes; see :func:`.masking.check_modality_mask`).
        """
        mask = self.mask_table
        if modality_mask is not None:
            num_items, num_modalities = mask.shape
            keep = check_modality_mask(modality_mask, num_modalities=num_modalities,
                                       num_items=num_items)
            mask = tf.logical_and(mask, tf.constant(np.broadcast_to(keep, mask.shape)))
        content = self.fusion(self.modality_inputs(training), modality_mask=mask)
        vectors = content
        ids = tf.range(tf.shape(self.mask_table)[0])
        if self.item_embedding is not None:
            vectors = vectors + self.item_embedding(ids)
        if self.graph is not None:
            vectors = self.graph(vectors)
        if not with_bias:
            return vectors
        bias = tf.zeros(tf.shape(vectors)[:1], vectors.dtype)
        if self.content_bias is not None:
            bias = bias + self.content_bias(content)[:, 0]
        if self.item_id_bias is not None:
            bias = bias + self.item_id_bias(ids)[:, 0]
        return vectors, bias

    def user_vectors(self, users, item_vectors, histories=None, exclude=None):
        """Users' vectors (batch, embedding_dim): id embedding + mean of history item vectors."""
        if histories is None:
            histories = tf.gather(self.user_history_table, users)
        present = histories != PAD
        if exclude is not None:  # the target item must not describe the user who chose it
            present &= histories != exclude[:, None]
        gathered = tf.gather(item_vectors, tf.maximum(histories, 0))
        weights = tf.cast(present, gathered.dtype)
        pooled = tf.math.divide_no_nan(tf.reduce_sum(weights[:, :, None] * gathered, axis=1),
                                       tf.reduce_sum(weights, axis=1, keepdims=True))
        if self.user_embedding is not None:
            pooled = pooled + self.user_embedding(users)
        return pooled

    def _normalize(self, vectors):
        if self.similarity == "cosine":
            return tf.math.l2_normalize(vectors, axis=-1)
        return vectors

    def call(self, inputs, training=None):
        users, positives, negatives = inputs
        items, bias = self.item_vectors(training=training, with_bias=True)
        user_vectors = self._normalize(self.user_vectors(users, items, exclude=positives))
        positive_vectors = self._normalize(tf.gather(items, positives))
        if self.loss_kind == "softmax":
            # In-batch sampled softmax: the other users' positives are this user's
            # negatives; a repeated positive is not a negative of itself.
            logits = (self.scale * tf.matmul(user_vectors, positive_vectors, transpose_b=True)
                      + tf.gather(bias, positives)[None, :])
            if self.log_q is not None:
                logits -= tf.gather(self.log_q, positives)[None, :]
            repeated = tf.equal(positives[:, None], positives[None, :])
            repeated &= ~tf.cast(tf.eye(tf.shape(positives)[0]), tf.bool)
            return tf.where(repeated, tf.constant(-1e9, logits.dtype), logits)
        negative_vectors = self._normalize(tf.gather(items, negatives))
        positive = (self.scale * tf.reduce_sum(user_vectors * positive_vectors, axis=-1)
                    + tf.gather(bias, positives))
        negative = (self.scale * tf.reduce_sum(user_vectors * negative_vectors, axis=-1)
                    + tf.gather(bias, negatives))
        return positive - negative

    def score_users(self, user_vectors, items, bias):
        """Scores (n_users, n_items) of given user vectors against all items."""
        return (self.scale * tf.matmul(self._normalize(user_vectors), self._normalize(items),
                                       transpose_b=True) + bias[None, :])

    def score_all(self, users):
        """Scores (n_users, n_items) of known user indices against all items."""
        items, bias = self.item_vectors(training=False, with_bias=True)
        return self.score_users(self.user_vectors(users, items), items, bias)

    # -- Export for serving (chapter 10): the towers as NumPy arrays, new items' content.

    def export_item_tower(self) -> dict:
        """The fitted item tower as NumPy arrays, for ranking without TensorFlow.

        Keys: ``vectors`` (n_items, dim) = ``q_i``, ``bias`` (n_items,) = ``b_i``,
        ``content`` (n_items, dim) = the fused content ``c_i``, ``id_embedding`` and
        ``id_bias`` (zeros without ids), ``content_bias_kernel`` (dim,) and
        ``content_bias_constant`` (float) with ``b_i = <w, c_i> + b + d_i``, ``feature_dims``
        (one width per modality), ``scale`` and ``similarity`` (the score is
        ``scale * <p_u, q_i> + b_i`` on unit vectors when ``similarity == "cosine"``).
        """
        vectors, bias = self.item_vectors(training=False, with_bias=True)
        content = self.fusion(self.modality_inputs(False), modality_mask=self.mask_table)
        vectors, content = vectors.numpy().astype(np.float32), content.numpy().astype(np.float32)
        n, dim = vectors.shape
        kernel, constant = np.zeros(dim, np.float32), 0.0
        if self.content_bias is not None:
            weights = self.content_bias.get_weights()
            kernel, constant = weights[0][:, 0].astype(np.float32), float(weights[1][0])
        return {"vectors": vectors, "bias": bias.numpy().astype(np.float32), "content": content,
                "id_embedding": (self.item_embedding.get_weights()[0].astype(np.float32)
                                 if self.item_embedding is not None
                                 else np.zeros((n, dim), np.float32)),
                "id_bias": (self.item_id_bias.get_weights()[0][:, 0].astype(np.float32)
                            if self.item_id_bias is not None else np.zeros(n, np.float32)),
                "content_bias_kernel": kernel, "content_bias_constant": constant,
                "feature_dims": [int(t.shape[1]) for t in self.feature_tables],
                "scale": float(self.scale), "similarity": self.similarity}

    def export_user_tower(self) -> dict:
        """``user_embedding`` (n_users, dim) or None, ``histories`` (n_users, max_history; PAD -1).

        A user's vector is the mean of their history's item vectors plus their id embedding
        (:meth:`user_vectors`), so a server updates it from a new view without retraining.
        """
        return {"user_embedding": (self.user_embedding.get_weights()[0].astype(np.float32)
                                   if self.user_embedding is not None else None),
                "histories": self.user_history_table.numpy()}

    def item_vectors_for(self, features, modality_mask) -> tuple[np.ndarray, np.ndarray]:
        """Fused content vectors (n, dim) and content biases (n,) of items from their features.

        ``features``: one (n, width) array per modality, like the training tables;
        ``modality_mask``: bool (n, n_modalities), which of them each row has. This is the
        item tower of a new item, which has no id embedding or id bias yet (both start at 0).
        """
        if self.graph is not None or any(e is not None for e in self.encoders):
            raise ParameterError("item_vectors_for needs a model without a graph or trainable "
                                 "encoders (a new item has no graph neighbours or raw input)")
        widths = [int(t.shape[1]) for t in self.feature_tables]
        features = [np.asarray(x, np.float32) for x in features]
        mask = np.asarray(modality_mask, bool)
        if len(features) != len(widths) or mask.ndim != 2 or mask.shape[1] != len(widths):
            raise ParameterError(f"expected {len(widths)} feature arrays and a mask of shape "
                                 f"(n, {len(widths)}); got {len(features)} and {mask.shape}")
        for x, width in zip(features, widths):
            if x.shape != (len(mask), width):
                raise DataError(f"a feature array of shape {x.shape}; expected "
                                f"({len(mask)}, {width})")
        content = self.fusion([tf.constant(x) for x in features],
                              modality_mask=tf.constant(mask))
        bias = (self.content_bias(content)[:, 0].numpy() if self.content_bias is not None
                else np.zeros(len(mask), np.float32))
        return content.numpy().astype(np.float32), bias.astype(np.float32)
