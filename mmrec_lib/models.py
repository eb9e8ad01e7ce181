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
from mmrec_lib.errors import DataError, ModelError, ParameterError
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

__all__ = ["MultimodalRecommender", "bpr_dataset"]

tf = import_tensorflow()
keras = tf.keras

Fusion = Literal["concat", "attention", "gated"]
_FUSIONS = {"concat": ConcatFusion, "attention": AttentionFusion, "gated": GatedFusion}
_PAD = -1


def bpr_dataset(users: np.ndarray, items: np.ndarray, negative_pool: np.ndarray, *,
                batch_size: int = 256, seed: int = 0):
    """A ``tf.data`` pipeline of BPR triples: shuffled (user, positive, negative) batches.

    Introduced in chapter 08. Negatives are drawn uniformly from
    ``negative_pool`` (the training items: drawing cold items as negatives
    would teach the model to rank every cold item low), anew each epoch, with
    a fixed seed so that training is reproducible.

    Parameters
    ----------
    users, items : int ndarrays of shape (n_pairs,)
    negative_pool : int ndarray of shape (n_pool,)
    batch_size, seed : int

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
    pairs = pairs.shuffle(len(users), seed=seed, reshuffle_each_iteration=True)
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    dataset = tf.data.Dataset.zip((pairs, randoms))

    def triple(pair, random):
        user, positive = pair
        negative = tf.gather(pool_tensor, tf.cast(random % pool.size, tf.int32))
        return (user, positive, negative), tf.constant(0.0)

    return dataset.map(triple).batch(batch_size).prefetch(2)


class _TwoTower(keras.Model):
    """Item tower and user tower over constant feature tables; call -> s(u, i) - s(u, j)."""

    def __init__(self, features, mask, history, *, fusion, embedding_dim, num_users,
                 use_user_id, use_item_id, adjacency, graph_layers, similarity, l2):
        super().__init__(name="multimodal_recommender")
        self.feature_tables = [tf.constant(x) for x in features]
        self.mask_table = tf.constant(mask)
        self.history_table = tf.constant(history)
        self.similarity = similarity
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

    def item_vectors(self, training=None):
        """Vectors of all items, shape (n_items, embedding_dim)."""
        vectors = self.fusion(self.feature_tables, modality_mask=self.mask_table)
        if self.item_embedding is not None:
            vectors = vectors + self.item_embedding(tf.range(tf.shape(self.mask_table)[0]))
        if self.graph is not None:
            vectors = self.graph(vectors)
        return vectors

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

    def _score(self, user_vectors, item_vectors):
        if self.similarity == "cosine":
            user_vectors = tf.math.l2_normalize(user_vectors, axis=-1)
            item_vectors = tf.math.l2_normalize(item_vectors, axis=-1)
        return tf.reduce_sum(user_vectors * item_vectors, axis=-1)

    def call(self, inputs, training=None):
        users, positives, negatives = inputs
        items = self.item_vectors(training=training)
        user_vectors = self.user_vectors(users, items, exclude=positives)
        return (self._score(user_vectors, tf.gather(items, positives))
                - self._score(user_vectors, tf.gather(items, negatives)))

    def score_all(self, users):
        items = self.item_vectors(training=False)
        user_vectors = self.user_vectors(users, items)
        if self.similarity == "cosine":
            user_vectors = tf.math.l2_normalize(user_vectors, axis=-1)
            items = tf.math.l2_normalize(items, axis=-1)
        return tf.matmul(user_vectors, items, transpose_b=True)


def _bpr_loss(_, difference):
    # -log sigmoid(x) = softplus(-x), numerically stable.
    return tf.reduce_mean(tf.nn.softplus(-difference))


class MultimodalRecommender(InterestModel):
    """Two-tower recommender over precomputed modality features, trained with BPR.

    Introduced in chapter 08. ``fit(train, item_features)`` takes the
    interactions and a dict ``{modality: DataFrame indexed by item id}``; the
    catalogue is every item with features, so cold items (no interactions)
    are scored from their content. Missing modalities are rows of NaN (or
    items absent from that modality's frame). With ``use_item_id`` and no
    content it would be MF; with ``graph_k`` the fused vectors are propagated
    over the item-item k-NN graph of the raw features (graph fusion).

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
    max_history : int
        The most recent training items pooled into a user's vector.
    epochs, batch_size : int
    learning_rate, l2 : float
    seed : int

    Attributes
    ----------
    modalities_ : list of str
    network_ : keras.Model
    history_ : dict of training losses per epoch
    """

    def __init__(self, *, fusion: Fusion = "attention", embedding_dim: int = 32,
                 use_user_id: bool = False, use_item_id: bool = False,
                 graph_k: int | None = None, graph_layers: int = 1,
                 similarity: Literal["dot", "cosine"] = "dot", max_history: int = 50,
                 epochs: int = 10, batch_size: int = 256, learning_rate: float = 0.005,
                 l2: float = 0.0, seed: int = 0):
        self.fusion = fusion
        self.embedding_dim = embedding_dim
        self.use_user_id = use_user_id
        self.use_item_id = use_item_id
        self.graph_k = graph_k
        self.graph_layers = graph_layers
        self.similarity = similarity
        self.max_history = max_history
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.seed = seed

    def _check_params(self):
        if self.fusion not in _FUSIONS:
            raise ParameterError(f"fusion={self.fusion!r} must be one of {list(_FUSIONS)}")
        if self.similarity not in ("dot", "cosine"):
            raise ParameterError(f"similarity={self.similarity!r} must be 'dot' or 'cosine'")
        for name in ("use_user_id", "use_item_id"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name}={getattr(self, name)!r} must be a bool")
        for name in ("embedding_dim", "graph_layers", "max_history", "epochs", "batch_size"):
            _check_int(name, getattr(self, name))
        if self.graph_k is not None:
            _check_int("graph_k", self.graph_k)
        _check_number("learning_rate", self.learning_rate, positive=True)
        _check_number("l2", self.l2, low=0.0)
        _check_int("seed", self.seed, low=0)

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, item_features: Mapping[str, pd.DataFrame]):
        """Fit on ``train`` (user_id, item_id[, timestamp]) and the items' modality features.

        Parameters
        ----------
        train : DataFrame
        item_features : dict of modality name -> DataFrame indexed by item id
            One numeric row per item; NaN rows or absent items mean "no such modality".
        """
        self._check_params()
        features, catalogue = _check_item_features(item_features)
        self._setup(train, catalogue)
        unknown = np.setdiff1d(np.unique(train[ITEM_COL].to_numpy()), catalogue)
        if len(unknown):
            raise DataError(f"{len(unknown)} training item(s) have no features in any modality, "
                            f"e.g. {unknown[:5].tolist()}")
        arrays = [frame.reindex(self.item_ids_).to_numpy(np.float32)
                  for frame in features.values()]
        self.modalities_ = list(features)
        filled, mask = modality_mask(*arrays)
        self._arrays = {"mask": mask, "history": self._history(),
                        **{f"feature_{m}": x for m, x in enumerate(filled)}}
        if self.graph_k is not None:
            self._arrays.update(_graph_arrays(item_item_graph(filled, k=self.graph_k, mask=mask)))
        keras.utils.set_random_seed(self.seed)
        self.network_ = self._build_network()
        coo = self.train_matrix_.tocoo()
        dataset = bpr_dataset(coo.row, coo.col, np.unique(coo.col),
                              batch_size=self.batch_size, seed=self.seed)
        self.network_.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                              loss=_bpr_loss)
        history = self.network_.fit(dataset, epochs=self.epochs, verbose=0)
        self.history_ = {key: [float(v) for v in values]
                         for key, values in history.history.items()}
        return self

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

    def _build_network(self) -> _TwoTower:
        arrays = self._arrays
        features = [arrays[f"feature_{m}"] for m in range(len(self.modalities_))]
        adjacency = None
        if "graph_rows" in arrays:
            adjacency = sparse.csr_matrix(
                (arrays["graph_values"], (arrays["graph_rows"], arrays["graph_cols"])),
                shape=(len(self.item_ids_),) * 2)
        network = _TwoTower(features, arrays["mask"], arrays["history"], fusion=self.fusion,
                            embedding_dim=self.embedding_dim, num_users=len(self.user_ids_),
                            use_user_id=self.use_user_id, use_item_id=self.use_item_id,
                            adjacency=adjacency, graph_layers=self.graph_layers,
                            similarity=self.similarity, l2=self.l2)
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

    def modality_weights(self) -> pd.DataFrame:
        """Attention weights per item and modality (``fusion="attention"`` only)."""
        check_is_fitted(self)
        if self.fusion != "attention":
            raise ModelError(f"modality_weights needs fusion='attention', not {self.fusion!r}")
        _, weights = self.network_.fusion(self.network_.feature_tables,
                                          modality_mask=self.network_.mask_table,
                                          return_weights=True)
        return pd.DataFrame(weights.numpy(), columns=self.modalities_,
                            index=pd.Index(self.item_ids_, name=ITEM_COL))

    def score_history(self, histories: Sequence[Sequence]) -> np.ndarray:
        """Scores (n_histories, n_items) for new users given only their item histories."""
        check_is_fitted(self)
        if self.use_user_id:
            raise ModelError("score_history needs use_user_id=False: new users have no id "
                             "embedding")
        if isinstance(histories, str) or not isinstance(histories, Sequence):
            raise ParameterError("histories must be a list of item-id lists, one per user")
        rows = np.full((len(histories), self.max_history), _PAD, dtype=np.int32)
        for row, items in enumerate(histories):
            index = self.item_encoder_.transform(list(items))[-self.max_history:]
            rows[row, : len(index)] = index
        network = self.network_
        items = network.item_vectors(training=False)
        users = network.user_vectors(tf.zeros(len(rows), tf.int32), items, history=rows)
        if self.similarity == "cosine":
            users = tf.math.l2_normalize(users, axis=-1)
            items = tf.math.l2_normalize(items, axis=-1)
        return tf.matmul(users, items, transpose_b=True).numpy()

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
            config = {"params": self.get_params(), "modalities": self.modalities_,
                      "history": self.history_}
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
        model = cls(**config["params"])
        with np.load(path / "arrays.npz", allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        model.modalities_ = config["modalities"]
        model.history_ = config["history"]
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
