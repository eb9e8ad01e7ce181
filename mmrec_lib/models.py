"""The full Keras multimodal recommender: item tower, user tower, BPR training (chapter 08).

Item tower: precomputed modality features (text, audio, visual vectors; a
missing modality is a row of NaN) -> a fusion layer from
:mod:`mmrec_lib.fusion` -> optional item-id embedding -> optional graph
propagation -> item vector. User tower: optional user-id embedding plus the
mean of the item vectors of the user's history, so a new user with a history
and a new item with content are both scored. Score: dot product or cosine.
Training: BPR with ``model.fit`` on a ``tf.data`` pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from mmrec_lib._env import import_tensorflow
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError
from mmrec_lib.fusion import (
    AttentionFusion,
    ConcatFusion,
    GatedFusion,
    GraphConvolution,
    item_item_graph,
    modality_mask,
)
from mmrec_lib.interactions import ITEM_COL, USER_COL, IdEncoder, build_user_item_matrix
from mmrec_lib.interest import InterestModel, _check_int, _check_number
from mmrec_lib.utils import check_is_fitted

__all__ = ["MultimodalRecommender", "ModalityClassifier", "bpr_dataset"]

tf = import_tensorflow()
keras = tf.keras

Fusion = Literal["concat", "attention", "gated"]
_FUSIONS = {"concat": ConcatFusion, "attention": AttentionFusion, "gated": GatedFusion}
_PAD = -1


def bpr_dataset(users: np.ndarray, items: np.ndarray, negative_pool: np.ndarray, *,
                batch_size: int = 256, seed: int = 0, reshuffle: bool = True):
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
    batch_size = _check_int("batch_size", batch_size)
    seed = _check_int("seed", seed, low=0)
    pool_tensor = tf.constant(pool, dtype=tf.int32)
    pairs = tf.data.Dataset.from_tensor_slices((users.astype(np.int32), items.astype(np.int32)))
    pairs = pairs.shuffle(len(users), seed=seed, reshuffle_each_iteration=bool(reshuffle))
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=bool(reshuffle))
    dataset = tf.data.Dataset.zip((pairs, randoms))

    def triple(pair, random):
        user, positive = pair
        negative = tf.gather(pool_tensor, tf.cast(random % pool.size, tf.int32))
        return (user, positive, negative), tf.constant(0.0)

    return dataset.map(triple).batch(batch_size).prefetch(2)


class _TwoTower(keras.Model):
    """Item tower and user tower over constant feature tables; call -> s(u, i) - s(u, j)."""

    def __init__(self, features, mask, history, *, fusion, embedding_dim, num_users,
                 use_user_id, use_item_id, adjacency, graph_layers, similarity, l2,
                 item_bias, loss, temperature, encoders=None, log_q=None):
        super().__init__(name="multimodal_recommender")
        self.feature_tables = [tf.constant(x) for x in features]
        # Trainable branches: encoders[m] turns modality m's raw table (e.g. token
        # ids) into vectors inside the item tower, trained with the rest.
        self.encoders = list(encoders) if encoders is not None else [None] * len(features)
        self.mask_table = tf.constant(mask)
        self.history_table = tf.constant(history)
        self.similarity = similarity
        self.loss_kind = loss
        # log of each item's share of the training pairs: in-batch negatives are drawn
        # in proportion to it, and the softmax logits are corrected by it (Yi et al. 2019).
        self.log_q = None if log_q is None else tf.constant(log_q, tf.float32)
        self.scale = 1.0 / temperature if similarity == "cosine" else 1.0
        num_items = mask.shape[0]
        self.fusion = _FUSIONS[fusion](embedding_dim, name=f"{fusion}_fusion")
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

    def item_vectors(self, training=None, with_bias=False):
        """Vectors of all items (n_items, embedding_dim) [and their biases (n_items,)]."""
        content = self.fusion(self.modality_inputs(training), modality_mask=self.mask_table)
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

    def user_vectors(self, users, item_vectors, history=None, exclude=None):
        """Users' vectors (batch, embedding_dim): id embedding + mean of history item vectors."""
        history = tf.gather(self.history_table, users) if history is None else history
        present = history != _PAD
        if exclude is not None:  # the target item must not describe the user who chose it
            present &= history != exclude[:, None]
        gathered = tf.gather(item_vectors, tf.maximum(history, 0))
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
        items, bias = self.item_vectors(training=False, with_bias=True)
        return self.score_users(self.user_vectors(users, items), items, bias)


def _bpr_loss(_, difference):
    # -log sigmoid(x) = softplus(-x), numerically stable.
    return tf.reduce_mean(tf.nn.softplus(-difference))


def _softmax_loss(_, logits):
    # Row b's positive is column b (see _TwoTower.call).
    labels = tf.range(tf.shape(logits)[0])
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))


class MultimodalRecommender(InterestModel):
    """Two-tower recommender over precomputed modality features, trained with BPR or softmax.

    Introduced in chapter 08. ``fit(train, item_features)`` takes the
    interactions and a dict ``{modality: DataFrame indexed by item id}``; the
    catalogue is every item with features, so cold items (no interactions)
    are scored from their content. Missing modalities are rows of NaN (or
    items absent from that modality's frame). With ``use_item_id`` and no
    content it would be MF; with ``graph_k`` the fused vectors are propagated
    over the item-item k-NN graph of the raw features (graph fusion).

    The score of user u for item i is ``s(u, i) = <p_u, q_i> + b_i`` (cosine:
    ``cos(p_u, q_i) / temperature + b_i``), where ``q_i`` is the fused item
    vector, ``p_u`` the user's id embedding plus the mean ``q`` of their
    history, and ``b_i`` the item bias (a linear function of the fused content,
    plus an id bias with ``use_item_id``): the part of an item's score that
    does not depend on who is asking, such as its appeal or popularity.

    Parameters
    ----------
    fusion : {"concat", "attention", "gated"}
    embedding_dim : int
    use_user_id, use_item_id : bool
        Add id embeddings to the user / item vectors (hybrid model).
    graph_k : int, optional
        Build a k-NN item graph per modality and propagate over it.
    graph_layers : int
    similarity : {"dot", "cosine"}
    temperature : float
        Divides the cosine (ignored for ``"dot"``).
    item_bias : bool
        Learn ``b_i`` (content part + id part with ``use_item_id``).
    loss : {"bpr", "softmax"}
        BPR on (user, positive, sampled negative) triples, or in-batch sampled
        softmax (the positives of the other users in the batch are the negatives,
        so popular items are drawn more often; the logits are corrected by the
        log of each item's sampling probability, as in Yi et al. 2019).
    encoders : dict {modality: keras layer}, optional
        Trainable branches: that modality's table holds raw inputs (e.g. the
        token ids of :class:`mmrec_lib.text.WordVocabulary`, integer columns)
        and the layer (e.g. :class:`mmrec_lib.text.LstmTextEncoder`) turns them
        into vectors inside the item tower, trained end to end with the rest.
        Default: every table is already a vector (frozen BERT, musicnn, CNN).
    max_history : int
        The most recent training items pooled into a user's vector.
    epochs, batch_size : int
    learning_rate, l2 : float
    patience : int, optional
        With ``validation`` data in :meth:`fit`: stop when the validation loss has
        not improved for ``patience`` epochs and keep the best epoch's weights.
    seed : int

    Attributes
    ----------
    modalities_ : list of str
    network_ : keras.Model
    history_ : dict of per-epoch ``loss`` (and ``val_loss``)
    best_epoch_ : int, the epoch (from 1) whose weights were kept
    """

    def __init__(self, *, fusion: Fusion = "attention", embedding_dim: int = 32,
                 use_user_id: bool = False, use_item_id: bool = False,
                 graph_k: int | None = None, graph_layers: int = 1,
                 similarity: Literal["dot", "cosine"] = "dot", temperature: float = 0.1,
                 item_bias: bool = True, loss: Literal["bpr", "softmax"] = "bpr",
                 max_history: int = 50, epochs: int = 10, batch_size: int = 256,
                 learning_rate: float = 0.005, l2: float = 0.0, patience: int | None = None,
                 encoders: Mapping | None = None, seed: int = 0):
        self.fusion = fusion
        self.embedding_dim = embedding_dim
        self.use_user_id = use_user_id
        self.use_item_id = use_item_id
        self.graph_k = graph_k
        self.graph_layers = graph_layers
        self.similarity = similarity
        self.temperature = temperature
        self.item_bias = item_bias
        self.loss = loss
        self.max_history = max_history
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.patience = patience
        self.encoders = encoders
        self.seed = seed

    def _check_params(self):
        if self.fusion not in _FUSIONS:
            raise ParameterError(f"fusion={self.fusion!r} must be one of {list(_FUSIONS)}")
        if self.similarity not in ("dot", "cosine"):
            raise ParameterError(f"similarity={self.similarity!r} must be 'dot' or 'cosine'")
        if self.loss not in ("bpr", "softmax"):
            raise ParameterError(f"loss={self.loss!r} must be 'bpr' or 'softmax'")
        for name in ("use_user_id", "use_item_id", "item_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name}={getattr(self, name)!r} must be a bool")
        for name in ("embedding_dim", "graph_layers", "max_history", "epochs", "batch_size"):
            _check_int(name, getattr(self, name))
        if self.graph_k is not None:
            _check_int("graph_k", self.graph_k)
        if self.patience is not None:
            _check_int("patience", self.patience)
        if self.encoders is not None and (not isinstance(self.encoders, Mapping) or not all(
                isinstance(layer, keras.layers.Layer) for layer in self.encoders.values())):
            raise ParameterError("encoders must be a dict {modality: keras layer}")
        _check_number("learning_rate", self.learning_rate, positive=True)
        _check_number("temperature", self.temperature, positive=True)
        _check_number("l2", self.l2, low=0.0)
        _check_int("seed", self.seed, low=0)

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, item_features: Mapping[str, pd.DataFrame], *,
            validation: pd.DataFrame | None = None):
        """Fit on ``train`` (user_id, item_id[, timestamp]) and the items' modality features.

        Parameters
        ----------
        train : DataFrame
        item_features : dict of modality name -> DataFrame indexed by item id
            One numeric row per item; NaN rows or absent items mean "no such modality".
        validation : DataFrame, optional
            Held-out interactions of training users: its loss is reported per
            epoch (``history_["val_loss"]``) and drives early stopping (``patience``).
        """
        self._check_params()
        features, catalogue = _check_item_features(item_features)
        self._setup(train, catalogue)
        unknown = np.setdiff1d(np.unique(train[ITEM_COL].to_numpy()), catalogue)
        if len(unknown):
            raise DataError(f"{len(unknown)} training item(s) have no features in any modality, "
                            f"e.g. {unknown[:5].tolist()}")
        self.modalities_ = list(features)
        unknown = sorted(set(self.encoders or {}) - set(self.modalities_))
        if unknown:
            raise ParameterError(f"encoders for {unknown}, which are not in item_features "
                                 f"{self.modalities_}")
        arrays = [frame.reindex(self.item_ids_).to_numpy(np.float32)
                  for frame in features.values()]
        filled, mask = modality_mask(*arrays)
        for m, name in enumerate(self.modalities_):
            if name in (self.encoders or {}) and features[name].dtypes.map(
                    lambda d: d.kind in "iu").all():
                filled[m] = filled[m].astype(np.int32)  # token ids stay integers
        self._arrays = {"mask": mask, "history": self._history(),
                        **{f"feature_{m}": x for m, x in enumerate(filled)}}
        if self.graph_k is not None:
            self._arrays.update(_graph_arrays(item_item_graph(filled, k=self.graph_k, mask=mask)))
        keras.utils.set_random_seed(self.seed)
        self.network_ = self._build_network()
        coo = self.train_matrix_.tocoo()
        pool = np.unique(coo.col)
        dataset = bpr_dataset(coo.row, coo.col, pool, batch_size=self.batch_size, seed=self.seed)
        validation_data = None
        if validation is not None:
            users, items = self._encode_validation(validation)
            validation_data = bpr_dataset(users, items, pool, batch_size=self.batch_size,
                                          seed=self.seed + 1, reshuffle=False)
        elif self.patience is not None:
            raise ParameterError("patience needs validation data: fit(..., validation=frame)")
        callbacks = []
        if validation_data is not None and self.patience is not None:
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, restore_best_weights=True))
        self.network_.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                              loss=_softmax_loss if self.loss == "softmax" else _bpr_loss)
        history = self.network_.fit(dataset, epochs=self.epochs, verbose=0,
                                    validation_data=validation_data, callbacks=callbacks)
        self.history_ = {key: [float(v) for v in values]
                         for key, values in history.history.items()}
        losses = self.history_.get("val_loss") if callbacks else None
        self.best_epoch_ = (int(np.argmin(losses)) + 1 if losses
                            else len(self.history_["loss"]))
        return self

    def _encode_validation(self, validation: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        from mmrec_lib.interactions import check_interactions

        check_interactions(validation)
        if validation.empty:
            raise DataError("validation has no rows")
        for column, known, name in ((USER_COL, self.user_ids_, "users"),
                                    (ITEM_COL, self.item_ids_, "items")):
            values = validation[column].to_numpy()
            unknown = np.setdiff1d(values, known)
            if len(unknown):
                raise DataError(f"validation has {len(unknown)} {name} unknown to the model "
                                f"(not in train / without features), e.g. {unknown[:5].tolist()}")
        return (self.user_encoder_.transform(validation[USER_COL]),
                self.item_encoder_.transform(validation[ITEM_COL]))

    def _setup(self, train: pd.DataFrame, catalogue: np.ndarray) -> None:
        from mmrec_lib.interactions import check_interactions, deduplicate

        check_interactions(train)
        if train.empty:
            raise DataError("train has no rows")
        self._train = deduplicate(train)
        self.user_encoder_ = IdEncoder().fit(self._train[USER_COL])
        self.item_encoder_ = IdEncoder().fit(catalogue)
        self.user_ids_ = self.user_encoder_.classes_
        self.item_ids_ = self.item_encoder_.classes_

    def _history(self) -> np.ndarray:
        """The training matrix and each user's most recent items, padded with -1."""
        train = self._train
        self.train_matrix_, _, _ = build_user_item_matrix(
            train, user_encoder=self.user_encoder_, item_encoder=self.item_encoder_)
        if "timestamp" in train.columns:
            train = train.sort_values(["timestamp", ITEM_COL], kind="stable")
        history = np.full((len(self.user_ids_), self.max_history), _PAD, dtype=np.int32)
        users = self.user_encoder_.transform(train[USER_COL])
        items = self.item_encoder_.transform(train[ITEM_COL])
        for user in range(len(self.user_ids_)):
            recent = items[users == user][-self.max_history:]
            history[user, : len(recent)] = recent
        return history

    def _log_q(self) -> np.ndarray | None:
        if self.loss != "softmax":
            return None
        counts = np.asarray(self.train_matrix_.sum(axis=0)).ravel()
        with np.errstate(divide="ignore"):
            return np.where(counts > 0, np.log(counts / counts.sum()), 0.0).astype(np.float32)

    def _build_network(self) -> _TwoTower:
        arrays = self._arrays
        features = [arrays[f"feature_{m}"] for m in range(len(self.modalities_))]
        adjacency = None
        if "graph_rows" in arrays:
            adjacency = sparse.csr_matrix(
                (arrays["graph_values"], (arrays["graph_rows"], arrays["graph_cols"])),
                shape=(len(self.item_ids_),) * 2)
        # Fresh copies: fitting never trains (or reuses the weights of) the caller's layers.
        encoders = [None if (self.encoders or {}).get(name) is None
                    else type(self.encoders[name]).from_config(self.encoders[name].get_config())
                    for name in self.modalities_]
        network = _TwoTower(features, arrays["mask"], arrays["history"], fusion=self.fusion,
                            embedding_dim=self.embedding_dim, num_users=len(self.user_ids_),
                            use_user_id=self.use_user_id, use_item_id=self.use_item_id,
                            adjacency=adjacency, graph_layers=self.graph_layers,
                            similarity=self.similarity, l2=self.l2, item_bias=self.item_bias,
                            loss=self.loss, temperature=self.temperature, encoders=encoders,
                            log_q=self._log_q())
        probe = np.zeros(1, np.int32)
        network((probe, probe, probe))
        return network

    # ------------------------------------------------------------------ scoring

    def _score(self, user_index):
        return self.network_.score_all(np.asarray(user_index, np.int32)).numpy()

    def item_vectors(self) -> pd.DataFrame:
        """The fused item vectors, a DataFrame (n_items, embedding_dim) indexed by item id."""
        check_is_fitted(self)
        return pd.DataFrame(self.network_.item_vectors(training=False).numpy(),
                            index=pd.Index(self.item_ids_, name=ITEM_COL))

    def item_biases(self) -> pd.Series:
        """The item biases ``b_i`` (zeros without ``item_bias``), a Series indexed by item id."""
        check_is_fitted(self)
        _, bias = self.network_.item_vectors(training=False, with_bias=True)
        return pd.Series(bias.numpy(), index=pd.Index(self.item_ids_, name=ITEM_COL),
                         name="bias")

    def modality_weights(self) -> pd.DataFrame:
        """Attention weights per item and modality (``fusion="attention"`` only)."""
        check_is_fitted(self)
        if self.fusion != "attention":
            raise ModelError(f"modality_weights needs fusion='attention', not {self.fusion!r}")
        _, weights = self.network_.fusion(self.network_.modality_inputs(training=False),
                                          modality_mask=self.network_.mask_table,
                                          return_weights=True)
        return pd.DataFrame(weights.numpy(), columns=self.modalities_,
                            index=pd.Index(self.item_ids_, name=ITEM_COL))

    def _history_rows(self, histories: Sequence[Sequence]) -> np.ndarray:
        """Item indices of new users' histories (n_histories, max_history), padded with -1."""
        if self.use_user_id:
            raise ModelError("new users need use_user_id=False: they have no id embedding")
        if isinstance(histories, str) or not isinstance(histories, Sequence):
            raise ParameterError("histories must be a list of item-id lists, one per user")
        rows = np.full((len(histories), self.max_history), _PAD, dtype=np.int32)
        for row, items in enumerate(histories):
            index = self.item_encoder_.transform(list(items))[-self.max_history:]
            rows[row, : len(index)] = index
        return rows

    def score_history(self, histories: Sequence[Sequence]) -> np.ndarray:
        """Scores (n_histories, n_items) for new users given only their item histories."""
        check_is_fitted(self)
        network = self.network_
        rows = self._history_rows(histories)
        items, bias = network.item_vectors(training=False, with_bias=True)
        users = network.user_vectors(tf.zeros(len(rows), tf.int32), items, history=rows)
        return network.score_users(users, items, bias).numpy()

    def user_vectors(self, user_ids: Sequence | None = None, *,
                     histories: Sequence[Sequence] | None = None) -> pd.DataFrame:
        """The user tower's vectors ``p_u`` of known users or of new users' histories.

        Introduced in chapter 08. ``p_u`` is the user's id embedding (with
        ``use_user_id``) plus the mean item vector of their most recent
        ``max_history`` training items; for a history it is the mean item vector
        of its last ``max_history`` items, the vector :meth:`score_history` uses.
        With ``similarity="dot"``, ``score = user_vectors @ item_vectors.T + item_biases``.

        Parameters
        ----------
        user_ids : sequence of n_users ids (or one id), optional
            Users seen in ``fit``.
        histories : sequence of n_histories item-id lists, optional
            New users (needs ``use_user_id=False``); each list is non-empty.
            Pass exactly one of ``user_ids`` and ``histories``.

        Returns
        -------
        DataFrame of shape (n_users, embedding_dim) indexed by user id, or of
        shape (n_histories, embedding_dim) with index ``0 .. n_histories - 1``.

        Raises
        ------
        ParameterError
            Both or neither of ``user_ids`` and ``histories``; an empty history.
        DataError
            A user id or an item id not seen in ``fit``.
        ModelError
            ``histories`` with ``use_user_id=True``.
        NotFittedError
            Before ``fit``.
        """
        check_is_fitted(self)
        if (user_ids is None) == (histories is None):
            raise ParameterError("pass exactly one of user_ids and histories=, got "
                                 f"{'both' if user_ids is not None else 'neither'}")
        network = self.network_
        items = network.item_vectors(training=False)
        if user_ids is not None:
            if isinstance(user_ids, (str, int, np.integer)):
                user_ids = [user_ids]
            users = self.user_encoder_.transform(user_ids).astype(np.int32)
            vectors = network.user_vectors(users, items)
            return pd.DataFrame(vectors.numpy(), index=pd.Index(user_ids, name=USER_COL))
        if isinstance(histories, Sequence) and not isinstance(histories, str):
            if len(histories) == 0:
                raise ParameterError("histories is empty; expected at least one item-id list")
            for row, items_of_user in enumerate(histories):
                if isinstance(items_of_user, str) or len(items_of_user) == 0:
                    raise ParameterError(f"histories[{row}]={items_of_user!r} must be a "
                                         "non-empty list of item ids")
        rows = self._history_rows(histories)
        vectors = network.user_vectors(tf.zeros(len(rows), tf.int32), items, history=rows)
        return pd.DataFrame(vectors.numpy(), index=pd.RangeIndex(len(rows), name="history"))

    def _check_additive(self) -> None:
        """Raise ParameterError unless the score splits exactly into per-modality parts."""
        reasons = []
        if self.similarity != "dot":
            reasons.append(f"similarity={self.similarity!r} divides each score by |p_u| |q_i|, "
                           "to which every modality contributes")
        if self.fusion != "concat":
            reasons.append(f"fusion={self.fusion!r} weighs each modality by a function of all "
                           "of them")
        if self.graph_k is not None:
            reasons.append(f"graph_k={self.graph_k} mixes each item's vector with its "
                           "neighbours' vectors")
        if reasons:
            raise ParameterError("score_parts needs similarity='dot', fusion='concat' and no "
                                 "graph, so that the score is linear in each modality: "
                                 + "; ".join(reasons))
        clash = {"collaborative", "shared"} & set(self.modalities_)
        if clash:
            raise ModelError(f"modalities {sorted(clash)} clash with score_parts' own columns")

    def score_parts(self, user_id=None, *, history: Sequence | None = None) -> pd.DataFrame:
        """Split one user's score of every item into per-modality parts that add up to it.

        Introduced in chapter 08. With ``similarity="dot"`` the score is
        ``s(u, i) = <p_u, q_i> + b_i`` with ``q_i = c_i + e_i`` (fused content
        plus item-id embedding) and ``b_i = <w, c_i> + b + d_i`` (content bias
        plus id bias). Concat fusion is linear in each modality's (projected)
        slot, so ``c_i = c_empty + sum_m (c_i^m - c_empty)``, where ``c_i^m`` is
        the fusion of item i with only modality m kept and ``c_empty`` the fusion
        with every modality masked (the mixing layer's bias). Hence

        - part of modality m: ``<p_u + w, c_i^m - c_empty>`` (0 if i lacks m),
        - ``collaborative``: ``<p_u, e_i> + d_i`` (0 without ``use_item_id``),
        - ``shared``: ``<p_u + w, c_empty> + b``, the same for every item,

        and the parts add up to :meth:`score` (:meth:`score_history` for
        ``history=``) up to float32 rounding. Trainable ``encoders`` keep the
        split exact: each encoder reads only its own modality.

        Parameters
        ----------
        user_id : str or int, optional
            A user seen in ``fit``.
        history : sequence of item ids, optional
            A new user's history (needs ``use_user_id=False``). Pass exactly one
            of ``user_id`` and ``history``.

        Returns
        -------
        DataFrame of shape (n_items, n_modalities + 2) indexed by ``item_ids_``
        (name ``"item_id"``), columns ``modalities_ + ["collaborative", "shared"]``.

        Raises
        ------
        ParameterError
            ``similarity="cosine"``, ``fusion`` other than ``"concat"`` or
            ``graph_k`` (the split would not be exact); both or neither of
            ``user_id`` and ``history``; an empty history.
        DataError
            An unknown user or item id.
        NotFittedError
            Before ``fit``.

        Examples
        --------
        >>> model = MultimodalRecommender(fusion="concat", use_item_id=True)  # doctest: +SKIP
        >>> model = model.fit(train, {"text": text, "audio": audio})  # doctest: +SKIP
        >>> parts = model.score_parts("u0007")  # doctest: +SKIP
        >>> np.allclose(parts.sum(axis=1), model.score(["u0007"])[0], atol=1e-4)  # doctest: +SKIP
        True
        """
        check_is_fitted(self)
        self._check_additive()
        if (user_id is None) == (history is None):
            raise ParameterError("pass exactly one of user_id and history=, got "
                                 f"{'both' if user_id is not None else 'neither'}")
        if user_id is not None and not isinstance(user_id, (str, int, np.integer)):
            raise ParameterError(f"user_id={user_id!r} must be one id (str or int)")
        if history is not None and (isinstance(history, str)
                                    or not isinstance(history, (Sequence, np.ndarray))
                                    or len(history) == 0):
            raise ParameterError(f"history={history!r} must be a non-empty list of item ids")
        if user_id is not None:
            user = self.user_vectors([user_id]).to_numpy()[0]
        else:
            user = self.user_vectors(histories=[history]).to_numpy()[0]
        user = user.astype(np.float64)
        network = self.network_
        mask = network.mask_table.numpy()
        inputs = network.modality_inputs(training=False)

        def fused(keep: np.ndarray) -> np.ndarray:
            """Fused content vectors (n_items, embedding_dim) with only the modalities in keep."""
            return network.fusion(inputs, modality_mask=keep).numpy().astype(np.float64)

        # The content vector meets the user vector in <p_u, c_i> and the bias weights
        # in <w, c_i>: both are linear in c_i, so each part of c_i is weighted by p_u + w.
        weight, constant = user, 0.0
        if network.content_bias is not None:
            kernel, bias = network.content_bias.get_weights()
            weight, constant = user + kernel[:, 0], float(bias[0])
        empty = fused(np.zeros_like(mask))
        parts = {}
        for m, modality in enumerate(self.modalities_):
            only = np.zeros_like(mask)
            only[:, m] = mask[:, m]
            parts[modality] = (fused(only) - empty) @ weight
        collaborative = np.zeros(len(mask))
        if network.item_embedding is not None:
            collaborative = network.item_embedding.get_weights()[0] @ user
        if network.item_id_bias is not None:
            collaborative = collaborative + network.item_id_bias.get_weights()[0][:, 0]
        parts["collaborative"] = collaborative
        parts["shared"] = np.full(len(mask), empty[0] @ weight + constant)
        return pd.DataFrame(parts, index=pd.Index(self.item_ids_, name=ITEM_COL))

    def recommend(self, user_ids, *, k: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` items of one user id or a list of them (user_id, item_id, prediction, rank)."""
        if isinstance(user_ids, (str, int, np.integer)):
            user_ids = [user_ids]
        return super().recommend(user_ids, k=k, exclude_seen=exclude_seen)

    # ------------------------------------------------------------------ save / load

    def save(self, path) -> Path:
        """Save to a folder: ``config.json``, ``arrays.npz`` and ``model.weights.h5``."""
        from mmrec_lib.utils import atomic_dir

        check_is_fitted(self)
        path = Path(path)
        with atomic_dir(path) as folder:
            folder = Path(folder)
            coo = self.train_matrix_.tocoo()
            params = self.get_params()
            params["encoders"] = None if self.encoders is None else {
                name: keras.utils.serialize_keras_object(layer)
                for name, layer in self.encoders.items()}
            config = {"params": params, "modalities": self.modalities_,
                      "history": self.history_, "best_epoch": self.best_epoch_}
            (folder / "config.json").write_text(json.dumps(config, indent=1))
            np.savez(folder / "arrays.npz", user_ids=self.user_ids_, item_ids=self.item_ids_,
                     train_rows=coo.row, train_cols=coo.col, **self._arrays)
            self.network_.save_weights(str(folder / "model.weights.h5"))
        return path

    @classmethod
    def load(cls, path) -> MultimodalRecommender:
        """Load a model saved by :meth:`save`; it scores exactly as the saved one."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a saved MultimodalRecommender (no config.json)")
        config = json.loads((path / "config.json").read_text())
        params = dict(config["params"])
        if params.get("encoders"):
            import mmrec_lib.text  # noqa: F401  (registers the library's encoder classes)

            params["encoders"] = {name: keras.utils.deserialize_keras_object(layer)
                                  for name, layer in params["encoders"].items()}
        model = cls(**params)
        with np.load(path / "arrays.npz", allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        model.modalities_ = config["modalities"]
        model.history_ = config["history"]
        model.best_epoch_ = config.get("best_epoch", len(model.history_.get("loss", [])))
        model.user_encoder_ = IdEncoder().fit(arrays.pop("user_ids"))
        model.item_encoder_ = IdEncoder().fit(arrays.pop("item_ids"))
        model.user_ids_ = model.user_encoder_.classes_
        model.item_ids_ = model.item_encoder_.classes_
        rows, cols = arrays.pop("train_rows"), arrays.pop("train_cols")
        model.train_matrix_ = sparse.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)),
            shape=(len(model.user_ids_), len(model.item_ids_)))
        model._arrays = arrays
        model.network_ = model._build_network()
        model.network_.load_weights(str(path / "model.weights.h5"))
        return model


def _graph_arrays(adjacency: sparse.csr_matrix) -> dict[str, np.ndarray]:
    coo = adjacency.tocoo()
    return {"graph_rows": coo.row.astype(np.int64), "graph_cols": coo.col.astype(np.int64),
            "graph_values": coo.data.astype(np.float32)}


def _check_item_features(item_features) -> tuple[dict[str, pd.DataFrame], np.ndarray]:
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


class ModalityClassifier:
    """The seed article's model, made correct: text + audio + image vectors -> category.

    Introduced in chapter 08. One input per modality, a fusion layer from
    :mod:`mmrec_lib.fusion` (per-modality normalisation and projection, masks
    for missing modalities), a hidden layer, dropout and a softmax over the
    classes; trained with ``model.fit`` on cross-entropy, with early stopping
    on a stratified validation share. It answers "which category is this
    clip?", measured by accuracy. That is not a recommender: it says nothing
    about *which user* wants the clip, so chapter 08 turns its class
    probabilities into a content profile and shows what that ranks.

    Parameters
    ----------
    fusion : {"concat", "attention", "gated"}
    embedding_dim, hidden_dim : int
    dropout : float in [0, 1)
    epochs, batch_size, patience : int
    learning_rate : float
    validation_fraction : float in (0, 1)
    seed : int

    Attributes
    ----------
    classes_ : ndarray of the labels, in the order of ``predict_proba``'s columns
    modalities_ : list of str
    network_ : keras.Model
    history_ : dict of per-epoch loss, accuracy, val_loss, val_accuracy
    """

    def __init__(self, *, fusion: Fusion = "concat", embedding_dim: int = 32,
                 hidden_dim: int = 64, dropout: float = 0.2, epochs: int = 60,
                 batch_size: int = 32, learning_rate: float = 0.003, patience: int = 8,
                 validation_fraction: float = 0.2, seed: int = 0):
        self.fusion = fusion
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed

    def __repr__(self) -> str:
        return f"ModalityClassifier(fusion={self.fusion!r}, epochs={self.epochs}, seed={self.seed})"

    def _check_params(self) -> None:
        if self.fusion not in _FUSIONS:
            raise ParameterError(f"fusion={self.fusion!r} must be one of {list(_FUSIONS)}")
        for name in ("embedding_dim", "hidden_dim", "epochs", "batch_size", "patience"):
            _check_int(name, getattr(self, name))
        _check_int("seed", self.seed, low=0)
        _check_number("learning_rate", self.learning_rate, positive=True)
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ParameterError(f"dropout={self.dropout!r} must be in [0, 1)")
        if not 0.0 < float(self.validation_fraction) < 1.0:
            raise ParameterError(f"validation_fraction={self.validation_fraction!r} must be "
                                 "in (0, 1)")

    def _arrays(self, item_features, item_ids=None):
        features, catalogue = _check_item_features(item_features)
        if hasattr(self, "modalities_") and list(features) != self.modalities_:
            raise DataError(f"item_features has modalities {list(features)}; the classifier "
                            f"was fitted on {self.modalities_}")
        ids = catalogue if item_ids is None else np.asarray(item_ids)
        arrays = [frame.reindex(ids).to_numpy(np.float32) for frame in features.values()]
        filled, mask = modality_mask(*arrays)
        if not mask.any(axis=1).all():
            missing = ids[~mask.any(axis=1)]
            raise DataError(f"{len(missing)} item(s) have no features in any modality, "
                            f"e.g. {missing[:5].tolist()}")
        return features, ids, filled, mask

    def _build(self, dims: list[int], num_classes: int):
        inputs = [keras.Input(shape=(dim,), name=f"{name}_input")
                  for name, dim in zip(self.modalities_, dims, strict=True)]
        mask = keras.Input(shape=(len(dims),), dtype="bool", name="modality_mask")
        fused = _FUSIONS[self.fusion](self.embedding_dim, name=f"{self.fusion}_fusion")(
            inputs, modality_mask=mask)
        hidden = keras.layers.Dense(self.hidden_dim, activation="relu", name="hidden")(fused)
        hidden = keras.layers.Dropout(self.dropout, seed=self.seed, name="dropout")(hidden)
        output = keras.layers.Dense(num_classes, activation="softmax", name="category")(hidden)
        return keras.Model([*inputs, mask], output, name="modality_classifier")

    def fit(self, item_features: Mapping[str, pd.DataFrame], labels: pd.Series):
        """Fit on ``{modality: DataFrame indexed by item id}`` and labels indexed by item id."""
        self._check_params()
        if not isinstance(labels, pd.Series) or labels.empty:
            raise ParameterError("labels must be a non-empty Series indexed by item id")
        if labels.isna().any():
            raise DataError(f"labels has {int(labels.isna().sum())} missing value(s)")
        if hasattr(self, "modalities_"):  # refitting: accept a new set of modalities
            del self.modalities_
        features, ids, filled, mask = self._arrays(item_features, labels.index.to_numpy())
        self.modalities_ = list(features)
        self.classes_, y = np.unique(labels.to_numpy(), return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError("labels must hold at least two classes")
        rng = np.random.default_rng(self.seed)
        validation = np.zeros(len(y), dtype=bool)
        for label in range(len(self.classes_)):  # stratified validation share
            rows = rng.permutation(np.flatnonzero(y == label))
            validation[rows[: int(round(self.validation_fraction * len(rows)))]] = True
        if validation.all() or not validation.any():
            raise DataError(f"{len(y)} labelled items are too few for a validation share of "
                            f"{self.validation_fraction}")
        keras.utils.set_random_seed(self.seed)
        self.network_ = self._build([x.shape[1] for x in filled], len(self.classes_))
        self.network_.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        inputs = [*filled, mask]
        history = self.network_.fit(
            [x[~validation] for x in inputs], y[~validation], epochs=self.epochs,
            batch_size=self.batch_size, verbose=0, shuffle=True,
            validation_data=([x[validation] for x in inputs], y[validation]),
            callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience,
                                                     restore_best_weights=True)])
        self.history_ = {key: [float(v) for v in values]
                         for key, values in history.history.items()}
        return self

    def predict_proba(self, item_features: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """Class probabilities, a DataFrame (n_items, n_classes) indexed by item id."""
        if not hasattr(self, "network_"):
            raise NotFittedError("ModalityClassifier is not fitted yet; call fit first")
        _, ids, filled, mask = self._arrays(item_features)
        probabilities = self.network_.predict([*filled, mask], verbose=0)
        return pd.DataFrame(probabilities, columns=self.classes_,
                            index=pd.Index(ids, name=ITEM_COL))

    def predict(self, item_features: Mapping[str, pd.DataFrame]) -> pd.Series:
        """The most probable class of every item, a Series indexed by item id."""
        probabilities = self.predict_proba(item_features)
        return pd.Series(self.classes_[probabilities.to_numpy().argmax(axis=1)],
                         index=probabilities.index, name="predicted")

    def score(self, item_features: Mapping[str, pd.DataFrame], labels: pd.Series) -> float:
        """Accuracy on the labelled items (the seed's only measure)."""
        if not isinstance(labels, pd.Series) or labels.empty:
            raise ParameterError("labels must be a non-empty Series indexed by item id")
        predicted = self.predict(item_features)
        unknown = labels.index.difference(predicted.index)
        if len(unknown):
            raise DataError(f"{len(unknown)} labelled item(s) have no features, "
                            f"e.g. {unknown[:5].tolist()}")
        return float((predicted.reindex(labels.index).to_numpy() == labels.to_numpy()).mean())
