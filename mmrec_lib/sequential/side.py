"""SASRec with side information: item tokens add creator / series / episode embeddings to id and content.

Introduced in chapter 09. On a small catalogue with few views per item an id
embedding cannot learn "the next episode of the series just watched" or "more
from the creator of the last clip": each item-to-item transition is seen a
handful of times. Items carry public side information (``creator_id``,
``series_id``, ``episode``, ...); embedding those categorical values and adding
them to every item token (the idea of FDSA / SASRec with side features) shares
what is learned across all clips of a creator or series. The same token table
scores the next item (weight tying), so "same creator as the last clip" becomes
a dot product the attention can produce. TensorFlow is imported lazily, as in
:mod:`mmrec_lib.sequential.neural`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.interactions import TIMESTAMP_COL, USER_COL
from mmrec_lib.sequential.content import ContentSASRecModel, _content_network_class
from mmrec_lib.sequential.data import sort_interactions
from mmrec_lib.sequential.neural import load_saved_state, training_pairs
from mmrec_lib.utils import check_is_fitted

__all__ = ["SideSASRecModel", "encode_side_features"]


def _is_missing(values: np.ndarray) -> np.ndarray:
    """True where a side value means "none": NaN / None / pd.NA or the empty string."""
    missing = pd.isna(values)
    return missing | np.array([isinstance(v, str) and v == "" for v in values], dtype=bool)


def encode_side_features(item_side: pd.DataFrame, item_ids, vocabularies=None
                         ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Categorical side columns as integer codes, one column per side feature.

    Introduced in chapter 09. Code 0 means "no value" (missing, empty string,
    or, with given ``vocabularies``, a value never seen in training); the other
    values get codes ``1 .. n_values`` in sorted order of their string form.

    Parameters
    ----------
    item_side : DataFrame indexed by item id, one categorical column per feature
    item_ids : sequence of item ids (rows of the result, in this order)
    vocabularies : list of ndarrays of str, optional
        Known values per column (from an earlier call); default: built here.

    Returns
    -------
    codes : ndarray of int32, shape (len(item_ids), n_columns)
    vocabularies : list of ndarrays of str
    """
    if not isinstance(item_side, pd.DataFrame):
        raise ParameterError(f"item_side must be a DataFrame indexed by item id, got "
                             f"{type(item_side).__name__}")
    if item_side.shape[1] == 0:
        raise DataError("item_side has no column")
    if not item_side.index.is_unique:
        raise DataError("item_side has repeated item ids in its index")
    item_ids = np.asarray(item_ids)
    missing = ~np.isin(item_ids, np.asarray(item_side.index))
    if missing.any():
        raise DataError(f"item_side has no row for {int(missing.sum())} item(s), e.g. "
                        f"{item_ids[missing][:5].tolist()}")
    frame = item_side.loc[item_ids]
    if vocabularies is not None and len(vocabularies) != frame.shape[1]:
        raise DataError(f"item_side has {frame.shape[1]} columns; the model was fitted on "
                        f"{len(vocabularies)}")
    codes = np.zeros(frame.shape, dtype=np.int32)
    built = []
    for c, column in enumerate(frame.columns):
        values = frame[column].to_numpy(dtype=object)
        absent = _is_missing(values)
        text = np.array([str(v) for v in values], dtype=str)
        vocab = (np.unique(text[~absent]) if vocabularies is None
                 else np.asarray(vocabularies[c], dtype=str))
        position = np.searchsorted(vocab, text)
        found = (position < len(vocab)) & ~absent
        found[found] = vocab[position[found]] == text[found]
        codes[found, c] = position[found] + 1
        built.append(vocab)
    return codes, built


def split_by_user(ordered: pd.DataFrame, values: np.ndarray) -> list[np.ndarray]:
    """``values`` (one per row of ``sort_interactions``' output) as one array per user, in order."""
    users = ordered[USER_COL].to_numpy()
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    return np.split(np.asarray(values), starts[1:])


@functools.cache
def _side_network_class():
    """The Keras network class, defined on first use so that TensorFlow loads lazily."""
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    keras = tf.keras

    class SideSASRecNetwork(_content_network_class()):
        """Token = content projection + id embedding + one embedding per side value.

        With ``mask_training`` the training softmax at each position runs over the
        items the user could pick then: not watched earlier in the window and (with
        release ranks) released by the time of the event.
        """

        def __init__(self, content, side_codes, side_sizes, *, use_content: bool,
                     release_rank, mask_training: bool, **kwargs):
            super().__init__(content, **kwargs)
            seed = kwargs["seed"]
            padded = np.vstack([np.zeros((1, side_codes.shape[1]), np.int32), side_codes])
            self.side_codes = tf.constant(padded, dtype=tf.int32)
            self.use_content = use_content
            self.mask_training = mask_training
            self.release_rank = (None if release_rank is None
                                 else tf.constant(release_rank, dtype=tf.int32))
            self.side_embeddings = [
                keras.layers.Embedding(
                    size + 1, self.embedding_dim, name=f"side_embedding_{c}",
                    embeddings_initializer=keras.initializers.TruncatedNormal(
                        stddev=0.02, seed=seed + 20 + c))
                for c, size in enumerate(side_sizes)]

        def token_table(self):
            """Embedding of every token, shape (n_items + 1, embedding_dim)."""
            table = self.item_embedding(tf.range(self.num_items + 1)) if self.use_item_id \
                else tf.zeros((self.num_items + 1, self.embedding_dim))
            if self.use_content:
                table = table + self.content_projection(self.content)
            for c, embedding in enumerate(self.side_embeddings):
                codes = self.side_codes[:, c]
                present = tf.cast(codes > 0, tf.float32)[:, None]
                table = table + embedding(codes) * present
            return table

        def choice_sets(self, tokens, counts, next_tokens):
            """(batch, positions, n_items): True where an item is a choice at the position.

            Watched at or before the position (within the window) or, with release
            ranks, released after the event (``counts``: 1 + items released by
            then): not a choice. The next token (0: none) always is.
            """
            seen = tf.cumsum(tf.one_hot(tokens, self.num_items + 1), axis=1)[..., 1:]
            allowed = seen <= 0
            if self.release_rank is not None:
                allowed &= self.release_rank[None, None, :] <= (counts - 1)[..., None]
            return allowed | (tf.one_hot(next_tokens - 1, self.num_items) > 0)

        def choice_set_logits(self, logits, tokens, counts, keep, targets):
            """With ``mask_training``: -1e9 for the items not in each kept position's choice set."""
            if not self.mask_training:
                return logits
            allowed = tf.boolean_mask(self.choice_sets(tokens, counts, targets), keep)
            return tf.where(allowed, logits, -1e9)

        def train_step(self, data):
            (tokens, counts), targets = data
            with tf.GradientTape() as tape:
                hidden = self(tokens, training=True)
                keep = targets > 0
                kept = tf.boolean_mask(hidden, keep)
                labels = tf.boolean_mask(targets, keep) - 1
                logits = self.choice_set_logits(self.item_logits(kept), tokens, counts, keep,
                                                targets)
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
            gradients = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

    return SideSASRecNetwork


class SideSASRecModel(ContentSASRecModel):
    """SASRec whose item tokens sum id, content and side-information embeddings.

    Introduced in chapter 09. Item ``j``'s token is ``e_j + W x_j + sum_c
    S_c[v_c(j)]``: a learned id embedding, the projection of its content vector
    (as :class:`ContentSASRecModel`) and one learned embedding per categorical
    side value (creator, series, episode number, ...; a missing value adds
    nothing). The same table embeds the input and scores the next item. Still
    a SASRec: a causal self-attention decoder over item tokens.

    ``fit(train, item_vectors, *, validation=None, item_side=None,
    release_time=None)``: ``item_side`` is a DataFrame indexed by item id with
    the categorical columns (required); ``release_time`` (Series indexed by
    item id, compared with ``train``'s ``timestamp``) lets the training softmax
    skip items not released at the time of each event (and, when ``validation``
    has a ``timestamp``, the early-stopping ranking then skips the items not
    released by each validation target's time). New items join with
    :meth:`add_items` (their side values, if known from training, carry what was
    learned about them: a new clip of a known creator).

    Parameters
    ----------
    use_item_id : bool, default True
    use_content : bool, default True
        Add the content projection (``item_vectors`` are still required: they
        define the catalogue).
    mask_training : bool, default True
        Train the softmax over the items available at each event only (not
        watched earlier in the training window; released by then when
        ``release_time`` is given), as the user chose among them. Items watched
        before the window of a long sequence are not masked.
    **params
        As :class:`SASRecModel`.

    Attributes (after ``fit``)
    --------------------------
    side_codes_ : ndarray of int32, shape (n_items, n_side_columns)
    side_columns_ : list of str
    side_vocabularies_ : list of ndarrays of str
    """

    def __init__(self, *, use_item_id: bool = True, use_content: bool = True,
                 mask_training: bool = True, max_len: int = 50, embedding_dim: int = 64,
                 num_blocks: int = 2, num_heads: int = 1, dropout: float = 0.2,
                 learning_rate: float = 1e-3, epochs: int = 50, batch_size: int = 128,
                 patience: int | None = 5, all_windows: bool = True, seed: int = 0):
        super().__init__(use_item_id=use_item_id, max_len=max_len, embedding_dim=embedding_dim,
                         num_blocks=num_blocks, num_heads=num_heads, dropout=dropout,
                         learning_rate=learning_rate, epochs=epochs, batch_size=batch_size,
                         patience=patience, all_windows=all_windows, seed=seed)
        self.use_content = use_content
        self.mask_training = mask_training

    def _check_params(self):
        super()._check_params()
        for name in ("use_content", "mask_training"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name}={getattr(self, name)!r} must be True or False")

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None, *,
            validation: pd.DataFrame | None = None, item_side: pd.DataFrame | None = None,
            release_time: pd.Series | None = None):
        """Fit on ``train``; see the class docstring for ``item_side`` and ``release_time``."""
        if item_side is None:
            raise ParameterError("SideSASRecModel needs item_side (a DataFrame of categorical "
                                 "columns indexed by item id)")
        if not isinstance(item_side, pd.DataFrame):
            raise ParameterError(f"item_side must be a DataFrame indexed by item id, got "
                                 f"{type(item_side).__name__}")
        if release_time is not None:
            if not isinstance(release_time, pd.Series):
                raise ParameterError("release_time must be a pandas Series indexed by item id")
            if TIMESTAMP_COL not in train.columns:
                raise DataError(f"release_time needs a {TIMESTAMP_COL!r} column in train")
        self._side_frame, self._release_time = item_side, release_time
        try:
            return super().fit(train, item_vectors, validation=validation)
        finally:
            del self._side_frame, self._release_time

    def _fit(self, X, vectors, train):
        self.side_codes_, self.side_vocabularies_ = encode_side_features(
            self._side_frame, self.item_ids_)
        self.side_columns_ = [str(c) for c in self._side_frame.columns]
        self._counts, self._release_rank, self._validation_counts = None, None, None
        self._release_order = None
        if self._release_time is not None:
            self._prepare_release_counts()
        try:
            super()._fit(X, vectors, train)
        finally:
            del self._counts, self._release_rank, self._validation_counts, self._release_order

    def _prepare_release_counts(self) -> None:
        """Per event: 1 + number of catalogue items released by then; per item: its rank."""
        release = self._release_time.reindex(self.item_ids_)
        if release.isna().any():
            missing = np.asarray(self.item_ids_)[release.isna().to_numpy()][:5].tolist()
            raise DataError(f"release_time has no value for item(s) {missing}")
        release = release.to_numpy()
        order = self._release_order = np.sort(release)
        # rank[j] <= count(t) iff item j is released by t (ties included).
        self._release_rank = np.searchsorted(order, release, side="right").astype(np.int32)
        ordered = sort_interactions(self._raw_train)
        times = ordered[TIMESTAMP_COL].to_numpy()
        try:
            counts = np.searchsorted(order, times, side="right").astype(np.int32) + 1
        except TypeError as error:
            raise DataError("release_time and train's timestamp cannot be compared: "
                            f"{order.dtype} vs {times.dtype}") from error
        self._counts = split_by_user(ordered, counts)
        if self._validation_frame is not None and TIMESTAMP_COL in self._validation_frame:
            # Validation ranks only what was released by each target's time, as the test does.
            self._validation_counts = np.searchsorted(
                order, self._validation_frame[TIMESTAMP_COL].to_numpy(), side="right")

    def _fit_sequences(self, sequences, validation):
        from mmrec_lib._env import import_tensorflow
        from mmrec_lib.sequential import _networks

        tf = import_tensorflow()
        inputs, targets = training_pairs(sequences, self.max_len, all_windows=self.all_windows)
        if len(inputs) == 0:
            raise DataError("no training sequence has two items: there is no next item to learn")
        if self._counts is not None:
            counts = training_pairs(self._counts, self.max_len, all_windows=self.all_windows)[1]
        else:
            counts = np.zeros_like(targets)
        tf.keras.utils.set_random_seed(self.seed)
        self.network_ = self._build_network(len(self.item_ids_), self._release_rank)
        self.network_.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate))
        dataset = (tf.data.Dataset.from_tensor_slices(((inputs, counts), targets))
                   .shuffle(len(inputs), seed=self.seed, reshuffle_each_iteration=True)
                   .batch(self.batch_size))
        _networks.fit_with_validation(self, dataset, sequences, validation, self._score_tokens,
                                      exclude_more=self._unreleased_rule())

    def _unreleased_rule(self):
        """``exclude_more`` for early stopping: the clips released after each validation view."""
        if self._validation_counts is None:
            return None

        def unreleased(exclude, target_tokens):
            return [np.setdiff1d(np.union1d(e, np.flatnonzero(self._release_rank > c)), [t - 1])
                    for e, c, t in zip(exclude, self._validation_counts, target_tokens,
                                       strict=True)]
        return unreleased

    def _build_network(self, num_items, release_rank=None):
        network = self._network(num_items, release_rank)
        network(np.zeros((1, self.max_len), np.int32))  # creates the weights
        return network

    def _network(self, num_items, release_rank=None):
        if num_items != len(self.item_vectors_) or num_items != len(self.side_codes_):
            raise ModelError(f"{num_items} items but {len(self.item_vectors_)} content vectors "
                             f"and {len(self.side_codes_)} side rows")
        return _side_network_class()(
            self.item_vectors_, self.side_codes_, [len(v) for v in self.side_vocabularies_],
            use_content=self.use_content, release_rank=release_rank,
            mask_training=self.mask_training, use_item_id=self.use_item_id,
            max_len=self.max_len, embedding_dim=self.embedding_dim, num_blocks=self.num_blocks,
            num_heads=self.num_heads, dropout=self.dropout, seed=self.seed)

    # ------------------------------------------------------------------ new items

    def add_items(self, item_vectors: pd.DataFrame, item_side: pd.DataFrame | None = None
                  ) -> SideSASRecModel:
        """Add new items from their content vectors and side values; returns ``self``.

        Introduced in chapter 09. A side value seen in training (a known creator)
        brings its learned embedding; an unknown one adds nothing. Without
        ``item_side`` the new items have no side value. Otherwise as
        :meth:`ContentSASRecModel.add_items`.
        """
        check_is_fitted(self)
        new_ids = np.asarray(self._new_item_ids(item_vectors))
        if item_side is None:
            codes = np.zeros((len(new_ids), len(self.side_vocabularies_)), dtype=np.int32)
        else:
            codes, _ = encode_side_features(item_side, new_ids, self.side_vocabularies_)
        self._pending_side = codes
        try:
            return super().add_items(item_vectors)
        finally:
            del self._pending_side

    def _grow_catalogue(self, new_ids):
        remap, added = super()._grow_catalogue(new_ids)
        codes = np.zeros((len(self.item_ids_), self.side_codes_.shape[1]), dtype=np.int32)
        codes[remap] = self.side_codes_
        codes[added] = self._pending_side
        self.side_codes_ = codes
        return remap, added

    # ------------------------------------------------------------------ save / load

    def save(self, path) -> Path:
        """Save to a folder: the content SASRec files plus the side codes and vocabularies."""
        from mmrec_lib.utils import atomic_dir

        check_is_fitted(self)
        path = Path(path)
        with atomic_dir(path) as folder:
            super().save(Path(folder) / "content")
            np.save(Path(folder) / "side_codes.npy", self.side_codes_)
            (Path(folder) / "side.json").write_text(json.dumps(
                {"columns": self.side_columns_,
                 "vocabularies": [v.tolist() for v in self.side_vocabularies_]}))
        return path

    @classmethod
    def load(cls, path) -> SideSASRecModel:
        """Load a model saved by :meth:`save`; it scores exactly as the saved one."""
        model = cls._load_state(path)
        model.network_ = model._build_network(len(model.item_ids_))
        model.network_.load_weights(str(Path(path) / "content" / "network" /
                                        "network.weights.h5"))
        return model

    @classmethod
    def _load_state(cls, path) -> SideSASRecModel:
        """Everything :meth:`save` wrote but the network (a subclass may add state first)."""
        path = Path(path)
        if not (path / "side_codes.npy").is_file() or not (path / "side.json").is_file():
            raise ModelError(f"{path} is not a saved {cls.__name__} (no side_codes.npy)")
        content = path / "content"
        if not (content / "item_vectors.npy").is_file():
            raise ModelError(f"{path} is not a saved {cls.__name__} (no item_vectors.npy)")
        model, config, _ = load_saved_state(cls, content / "network")
        model.best_epoch_ = config["best_epoch"]
        model.item_vectors_ = np.load(content / "item_vectors.npy", allow_pickle=False)
        model.side_codes_ = np.load(path / "side_codes.npy", allow_pickle=False)
        side = json.loads((path / "side.json").read_text())
        model.side_columns_ = side["columns"]
        model.side_vocabularies_ = [np.asarray(v, dtype=str) for v in side["vocabularies"]]
        return model
