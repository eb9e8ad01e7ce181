"""Content-aware SASRec: item tokens embedded from their content vectors, so new releases can be ranked.

TensorFlow is imported only when a model is fitted or loaded, as in
:mod:`mmrec_lib.sequential.neural`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.sequential.neural import SASRecModel, load_saved_state
from mmrec_lib.utils import check_is_fitted

__all__ = ["ContentSASRecModel"]


@functools.cache
def _content_network_class():
    """The Keras network class, defined on first use so that TensorFlow loads lazily."""
    from mmrec_lib._env import import_tensorflow
    from mmrec_lib.sequential._networks import SASRecNetwork, causal_decode

    tf = import_tensorflow()
    keras = tf.keras

    class ContentSASRecNetwork(SASRecNetwork):
        """SASRec whose token table is ``content @ W`` (plus, optionally, an id embedding).

        The same table embeds the input tokens and scores the next item (weight
        tying). Row 0 (padding) has a zero content vector, so its projection is zero.
        """

        def __init__(self, content: np.ndarray, *, use_item_id: bool, **kwargs):
            super().__init__(len(content), **kwargs)
            padded = np.vstack([np.zeros((1, content.shape[1])), content])
            self.content = tf.constant(padded, dtype=tf.float32)
            self.use_item_id = use_item_id
            self.content_projection = keras.layers.Dense(
                self.embedding_dim, use_bias=False, name="content_projection",
                kernel_initializer=keras.initializers.GlorotUniform(seed=kwargs["seed"] + 3))

        def token_table(self):
            """Embedding of every token, shape (n_items + 1, embedding_dim)."""
            table = self.content_projection(self.content)
            if self.use_item_id:
                table = table + self.item_embedding(tf.range(self.num_items + 1))
            return table

        def item_logits(self, hidden):
            return tf.matmul(hidden, self.token_table()[1:], transpose_b=True) \
                + self.item_bias[1:]

        def call(self, tokens, training=None):
            table = self.token_table()
            return causal_decode(self, lambda t: tf.gather(table, t), tokens, training=training)

    return ContentSASRecNetwork


class ContentSASRecModel(SASRecModel):
    """SASRec over content-embedded item tokens: new items are scored from their content alone.

    Introduced in chapter 09. Item ``j``'s token embedding is ``W x_j``, a
    learned linear projection of its content vector ``x_j`` (a row of
    ``item_vectors``), used both to embed the input sequence and, tied, to
    score the next item. With ``use_item_id=True`` a learned per-item id
    embedding is added (more capacity for items seen in training; an item
    added later gets a zero id embedding). The rest is :class:`SASRecModel`:
    same parameters, training, ``fit`` / ``score`` / ``recommend`` contract.

    ``fit(train, item_vectors, *, validation=None)`` requires ``item_vectors``:
    a DataFrame indexed by item id, one row per catalogue item (items of
    ``item_vectors`` absent from ``train`` join the catalogue).
    :meth:`add_items` registers new releases after ``fit``.

    Parameters
    ----------
    use_item_id : bool, default False
        Add a learned id embedding to the content projection. Off by default,
        so that new items are first-class (they differ from trained items only
        in their output bias, the mean of the trained biases).
    **params
        As :class:`SASRecModel`.

    Attributes (after ``fit``)
    --------------------------
    item_vectors_ : ndarray of float32, shape (n_items, content_dim)
        Content vectors in ``item_ids_`` order.
    """

    _needs_item_vectors = True

    def __init__(self, *, use_item_id: bool = False, max_len: int = 50,
                 embedding_dim: int = 64, num_blocks: int = 2, num_heads: int = 1,
                 dropout: float = 0.2, learning_rate: float = 1e-3, epochs: int = 50,
                 batch_size: int = 128, patience: int | None = 5, all_windows: bool = True,
                 seed: int = 0):
        super().__init__(max_len=max_len, embedding_dim=embedding_dim, num_blocks=num_blocks,
                         num_heads=num_heads, dropout=dropout, learning_rate=learning_rate,
                         epochs=epochs, batch_size=batch_size, patience=patience,
                         all_windows=all_windows, seed=seed)
        self.use_item_id = use_item_id

    def _check_params(self):
        super()._check_params()
        if not isinstance(self.use_item_id, bool):
            raise ParameterError(f"use_item_id={self.use_item_id!r} must be True or False")

    def _fit(self, X, vectors, train):
        self.item_vectors_ = np.asarray(vectors, dtype=np.float32)
        super()._fit(X, vectors, train)

    def _network(self, num_items):
        if num_items != len(self.item_vectors_):
            raise ModelError(f"{num_items} items but {len(self.item_vectors_)} content vectors")
        return _content_network_class()(
            self.item_vectors_, use_item_id=self.use_item_id, max_len=self.max_len,
            embedding_dim=self.embedding_dim, num_blocks=self.num_blocks,
            num_heads=self.num_heads, dropout=self.dropout, seed=self.seed)

    # ------------------------------------------------------------------ new items

    def add_items(self, item_vectors: pd.DataFrame) -> ContentSASRecModel:
        """Add new items (not in ``item_ids_``) from their content vectors; returns ``self``.

        Introduced in chapter 09. The catalogue ``item_ids_`` and the item
        columns of the scores grow (re-sorted). The trained weights are kept;
        a new item's output bias is the mean trained bias and, with
        ``use_item_id``, its id embedding is zero.

        Parameters
        ----------
        item_vectors : DataFrame indexed by new item ids, ``content_dim`` columns
        """
        new_ids = self._new_item_ids(item_vectors)
        content_dim = self.item_vectors_.shape[1]
        if item_vectors.shape[1] != content_dim:
            raise DataError(f"item_vectors has {item_vectors.shape[1]} columns; the model was "
                            f"fitted on {content_dim}")
        old_network = self.network_
        remap, added = self._grow_catalogue(new_ids)
        vectors = np.zeros((len(self.item_ids_), content_dim), dtype=np.float32)
        vectors[remap] = self.item_vectors_
        vectors[added] = item_vectors.to_numpy(dtype=np.float32)
        self.item_vectors_ = vectors
        self.network_ = self._build_network(len(self.item_ids_))
        for new, old in zip(self.network_.weights, old_network.weights, strict=True):
            value = old.numpy()
            if new.shape != old.shape:
                # A per-item table (output bias or id embedding): row 0 is padding.
                grown = np.zeros(new.shape, dtype=value.dtype)
                grown[0] = value[0]
                grown[1 + remap] = value[1:]
                if value.ndim == 1:
                    grown[1 + added] = value[1:].mean()
                value = grown
            new.assign(value)
        return self

    # ------------------------------------------------------------------ save / load

    def save(self, path) -> Path:
        """Save to a folder: the SASRec files plus ``item_vectors.npy`` (the content matrix)."""
        from mmrec_lib.utils import atomic_dir

        check_is_fitted(self)
        path = Path(path)
        with atomic_dir(path) as folder:
            super().save(Path(folder) / "network")
            np.save(Path(folder) / "item_vectors.npy", self.item_vectors_)
        return path

    @classmethod
    def load(cls, path) -> ContentSASRecModel:
        """Load a model saved by :meth:`save`; it scores exactly as the saved one."""
        path = Path(path)
        if not (path / "item_vectors.npy").is_file():
            raise ModelError(f"{path} is not a saved {cls.__name__} (no item_vectors.npy)")
        model, config, _ = load_saved_state(cls, path / "network")
        model.best_epoch_ = config["best_epoch"]
        model.item_vectors_ = np.load(path / "item_vectors.npy", allow_pickle=False)
        model.network_ = model._build_network(len(model.item_ids_))
        model.network_.load_weights(str(path / "network" / "network.weights.h5"))
        return model
