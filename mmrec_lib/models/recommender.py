"""The full Keras multimodal recommender: item tower, user tower, BPR training (chapter 08).

Item tower: precomputed modality features (text, audio, visual vectors; a
missing modality is a row of NaN) -> a fusion layer from
:mod:`mmrec_lib.fusion` -> optional item-id embedding -> optional graph
propagation -> item vector. User tower: optional user-id embedding plus the
mean of the item vectors of the user's history, so a new user with a history
and a new item with content are both scored. Score: dot product or cosine.
Training: BPR with ``model.fit`` on a ``tf.data`` pipeline (:mod:`.two_tower`);
saving and loading: :mod:`.persistence`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from mmrec_lib._validation import check_choice, check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.fusion import item_item_graph, modality_mask
from mmrec_lib.interactions import ITEM_COL, USER_COL, build_user_item_matrix
from mmrec_lib.interest import InterestModel
from mmrec_lib.models.masking import MaskedScoringMixin
from mmrec_lib.models.two_tower import (
    FUSIONS,
    PAD,
    Fusion,
    TwoTower,
    bpr_dataset,
    bpr_loss,
    check_item_features,
    keras,
    loss_curves,
    softmax_loss,
    tf,
    user_history_matrix,
)
from mmrec_lib.utils import check_is_fitted

__all__ = ["MultimodalRecommender"]


class MultimodalRecommender(MaskedScoringMixin, InterestModel):
    """Two-tower recommender over precomputed modality features, trained with BPR or softmax.

    Introduced in chapter 08. ``fit(train, item_features)`` takes the
    interactions and a dict ``{modality: DataFrame indexed by item id}``; the
    catalogue is every item with features, so cold items (no interactions)
    are scored from their content. It keeps the contract of every
    :class:`~mmrec_lib.interest.InterestModel`, ``fit(train, item_vectors=None)``,
    so it can be a member of :class:`~mmrec_lib.interest.HybridModel`: the
    features can also be given as ``fit(train, item_features=...)`` or at
    construction (``item_features=``); see :meth:`fit`. Missing modalities are rows of NaN (or
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
    item_features : dict {modality: DataFrame indexed by item id}, optional
        The features to use when :meth:`fit` is given none (e.g. inside a
        :class:`~mmrec_lib.interest.HybridModel`, which calls ``fit(train, item_vectors)``).
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
                 encoders: Mapping | None = None, item_features: Mapping | None = None,
                 seed: int = 0):
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
        self.item_features = item_features
        self.seed = seed

    def _check_params(self):
        check_choice("fusion", self.fusion, list(FUSIONS))
        check_choice("similarity", self.similarity, ("dot", "cosine"))
        check_choice("loss", self.loss, ("bpr", "softmax"))
        for name in ("use_user_id", "use_item_id", "item_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name}={getattr(self, name)!r} must be a bool")
        for name in ("embedding_dim", "graph_layers", "max_history", "epochs", "batch_size"):
            check_int(name, getattr(self, name))
        if self.graph_k is not None:
            check_int("graph_k", self.graph_k)
        if self.patience is not None:
            check_int("patience", self.patience)
        if self.encoders is not None and (not isinstance(self.encoders, Mapping) or not all(
                isinstance(layer, keras.layers.Layer) for layer in self.encoders.values())):
            raise ParameterError("encoders must be a dict {modality: keras layer}")
        check_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)
        check_number("temperature", self.temperature, low=0.0, low_inclusive=False)
        check_number("l2", self.l2, low=0.0)
        check_seed(self.seed)

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, item_vectors: Mapping | pd.DataFrame | None = None, *,
            item_features: Mapping[str, pd.DataFrame] | None = None,
            validation: pd.DataFrame | None = None):
        """Fit on ``train`` (user_id, item_id[, timestamp]) and the items' modality features.

        The modality features are the first given of: ``item_features=``;
        ``item_vectors`` if it is a dict (chapter 08's ``fit(train, features)``);
        the constructor's ``item_features``; ``item_vectors`` if it is a
        DataFrame (then one modality named ``"item_vectors"``). A DataFrame
        ``item_vectors`` next to features from elsewhere (how
        :class:`~mmrec_lib.interest.HybridModel` calls its members) only adds its
        index to the catalogue, as it does for every other model; such items
        without features are scored from the fusion of no modality.

        Parameters
        ----------
        train : DataFrame
        item_vectors : dict of modality name -> DataFrame, or DataFrame, optional
        item_features : dict of modality name -> DataFrame indexed by item id, optional
            One numeric row per item; NaN rows or absent items mean "no such modality".
        validation : DataFrame, optional
            Held-out interactions of training users: its loss is reported per
            epoch (``history_["val_loss"]``) and drives early stopping (``patience``).
        """
        self._check_params()
        features, extra_items = self._resolve_features(item_vectors, item_features)
        features, catalogue = check_item_features(features)
        train = self._fit_catalogue(
            train, catalogue if extra_items is None else np.concatenate([catalogue, extra_items]))
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
        self._arrays = {"mask": mask, "user_histories": self._user_histories(train),
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
                              loss=softmax_loss if self.loss == "softmax" else bpr_loss)
        self.history_ = loss_curves(self.network_.fit(
            dataset, epochs=self.epochs, verbose=0, validation_data=validation_data,
            callbacks=callbacks))
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

    def _resolve_features(self, item_vectors, item_features) -> tuple[Mapping, np.ndarray | None]:
        """The modality features of :meth:`fit` and the extra catalogue items (see there)."""
        for name, value in (("item_features", item_features),
                            ("MultimodalRecommender(item_features=...)", self.item_features)):
            if value is not None and not isinstance(value, Mapping):
                raise ParameterError(f"{name} must be a dict {{modality: DataFrame indexed by "
                                     f"item id}}, got {type(value).__name__}")
        if item_features is not None and isinstance(item_vectors, Mapping):
            raise ParameterError("pass the modality features once: either as item_vectors (a "
                                 "dict) or as item_features=, not both")
        if item_vectors is not None and not isinstance(item_vectors, (Mapping, pd.DataFrame)):
            raise ParameterError("item_vectors must be a dict {modality: DataFrame indexed by "
                                 "item id} or a DataFrame indexed by item id, got "
                                 f"{type(item_vectors).__name__}")
        extra = None
        for features in (item_features, item_vectors, self.item_features):
            if isinstance(features, Mapping):
                break
        else:
            if item_vectors is None:
                raise ParameterError("MultimodalRecommender needs modality features: "
                                     "fit(train, {modality: DataFrame}), fit(train, "
                                     "item_features=...) or MultimodalRecommender(item_features=...)")
            return {"item_vectors": item_vectors}, extra
        if isinstance(item_vectors, pd.DataFrame):
            extra = np.asarray(item_vectors.index)
        return features, extra

    def _user_histories(self, train: pd.DataFrame) -> np.ndarray:
        """The training matrix and each user's most recent items, padded with -1."""
        self.train_matrix_, _, _ = build_user_item_matrix(
            train, user_encoder=self.user_encoder_, item_encoder=self.item_encoder_)
        if "timestamp" in train.columns:
            train = train.sort_values(["timestamp", ITEM_COL], kind="stable")
        return user_history_matrix(self.user_encoder_.transform(train[USER_COL]),
                                   self.item_encoder_.transform(train[ITEM_COL]),
                                   num_users=len(self.user_ids_), max_history=self.max_history)

    def _log_q(self) -> np.ndarray | None:
        if self.loss != "softmax":
            return None
        counts = np.asarray(self.train_matrix_.sum(axis=0)).ravel()
        with np.errstate(divide="ignore"):
            return np.where(counts > 0, np.log(counts / counts.sum()), 0.0).astype(np.float32)

    def _build_network(self) -> TwoTower:
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
        network = TwoTower(features, arrays["mask"], arrays["user_histories"], fusion=self.fusion,
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
        rows = np.full((len(histories), self.max_history), PAD, dtype=np.int32)
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
        users = network.user_vectors(tf.zeros(len(rows), tf.int32), items, histories=rows)
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
        vectors = network.user_vectors(tf.zeros(len(rows), tf.int32), items, histories=rows)
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
        from mmrec_lib.models.persistence import save_recommender

        check_is_fitted(self)
        return save_recommender(self, path)

    @classmethod
    def load(cls, path) -> MultimodalRecommender:
        """Load a model saved by :meth:`save`; it scores exactly as the saved one.

        Every file is checked before use: a missing, truncated or edited file
        raises :class:`~mmrec_lib.errors.ModelError` naming the file and the
        problem; encoders are rebuilt only from the library's own layers and
        plain Keras layers (no other module is imported).
        """
        from mmrec_lib.models.persistence import load_recommender

        return load_recommender(cls, path)


def _graph_arrays(adjacency: sparse.csr_matrix) -> dict[str, np.ndarray]:
    coo = adjacency.tocoo()
    return {"graph_rows": coo.row.astype(np.int64), "graph_cols": coo.col.astype(np.int64),
            "graph_values": coo.data.astype(np.float32)}
