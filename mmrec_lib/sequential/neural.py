"""Neural next-item models in Keras 2: GRU4Rec and SASRec (a GPT over item tokens), save and load.

TensorFlow is imported only when a model is fitted or loaded, so
``from mmrec_lib import sequential`` stays light.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import sparse

from mmrec_lib._validation import check_choice, check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.interactions import IdEncoder
from mmrec_lib.sequential.base import SequentialModel
from mmrec_lib.sequential.data import pad_sequences
from mmrec_lib.utils import check_is_fitted

__all__ = ["KerasSequentialModel", "GRU4RecModel", "SASRecModel", "training_pairs", "load_saved_state"]


def id_array(values) -> np.ndarray:
    """Ids as an array ``np.savez`` stores without pickling (object arrays of strings -> str)."""
    array = np.asarray(values)
    if array.dtype == object:
        if not all(isinstance(value, str) for value in array):
            raise ModelError("only integer or string ids can be saved; found "
                             f"{type(next(v for v in array if not isinstance(v, str))).__name__}")
        array = array.astype(str)
    return array


def training_pairs(sequences: list[np.ndarray], max_len: int, *, all_windows: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-item targets, both left-padded to ``max_len``.

    Introduced in chapter 09. For a sequence ``t`` the input is ``t[:-1]`` and
    the target ``t[1:]`` (position ``i`` must predict the item after it).
    By default only the most recent ``max_len`` pairs are kept (the original
    SASRec); with ``all_windows`` a longer sequence is cut, from its end, into
    consecutive non-overlapping windows of ``max_len`` pairs, one row each, so
    every event is trained on. Sequences of one item give no pair and are skipped.

    Returns
    -------
    inputs, targets : ndarrays of int32, shape (n_rows, max_len)

    Examples
    --------
    >>> inputs, targets = training_pairs([np.array([1, 2, 3, 4])], 2, all_windows=True)
    >>> inputs.tolist(), targets.tolist()
    ([[2, 3], [0, 1]], [[3, 4], [0, 2]])
    """
    max_len = check_int("max_len", max_len)
    inputs, targets = [], []
    for sequence in sequences:
        end = len(sequence) - 1  # number of (input, target) pairs
        while end > 0:
            start = max(0, end - max_len)
            inputs.append(sequence[start:end])
            targets.append(sequence[start + 1:end + 1])
            end = start if all_windows else 0
    return pad_sequences(inputs, max_len), pad_sequences(targets, max_len)


class KerasSequentialModel(SequentialModel):
    """Shared fit / score / save / load of the Keras next-item models.

    Introduced in chapter 09. Subclasses set their parameters in ``__init__``
    and build the network in ``_network(num_items)``. ``fit`` trains with Adam on
    the full softmax over the catalogue. With ``validation``, the full-ranking
    NDCG@10 of the validation targets is computed after every epoch
    (``history_["val_ndcg@10"]``), the best epoch's weights are kept
    (``best_epoch_``), and training stops after ``patience`` epochs without
    improvement (``patience=None``: never early).

    Attributes (after ``fit``)
    --------------------------
    network_ : keras.Model
    history_ : dict of lists, per epoch
    best_epoch_ : int (from 1)
    """

    def _check_common(self) -> None:
        check_int("max_len", self.max_len)
        check_int("embedding_dim", self.embedding_dim)
        check_number("dropout", self.dropout, low=0, high=1, high_inclusive=False)
        check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        if self.patience is not None:
            check_int("patience", self.patience)
        check_seed(self.seed)
        if not isinstance(self.all_windows, bool):
            raise ParameterError(f"all_windows={self.all_windows!r} must be True or False")
        check_choice("loss", getattr(self, "loss", "full"), ("full", "sampled"))
        check_int("num_negatives", getattr(self, "num_negatives", 1))
        check_number("weight_decay", getattr(self, "weight_decay", 0.0), low=0)
        check_number("label_smoothing", getattr(self, "label_smoothing", 0.0), low=0, high=1,
                     high_inclusive=False)
        if getattr(self, "label_smoothing", 0.0) > 0 and getattr(self, "loss", "full") != "full":
            raise ParameterError("label_smoothing needs loss='full' (it spreads mass over the "
                                 "whole catalogue)")

    def _network(self, num_items: int):
        raise NotImplementedError

    def _build_network(self, num_items: int):
        network = self._network(num_items)
        network(np.zeros((1, self.max_len), np.int32))  # creates the weights
        return network

    def _fit_sequences(self, sequences, validation):
        from mmrec_lib._env import import_tensorflow
        from mmrec_lib.sequential import _networks

        tf = import_tensorflow()
        inputs, targets = training_pairs(sequences, self.max_len, all_windows=self.all_windows)
        if len(inputs) == 0:
            raise DataError("no training sequence has two items: there is no next item to learn")
        tf.keras.utils.set_random_seed(self.seed)
        self.network_ = self._build_network(len(self.item_ids_))
        if getattr(self, "loss", "full") == "sampled":
            counts = np.bincount(np.concatenate(sequences) - 1,
                                 minlength=len(self.item_ids_)).astype(np.float64) + 1.0
            self.network_.use_sampled_softmax(np.log(counts / counts.sum()),
                                              self.num_negatives, self.seed)
        self.network_.label_smoothing = float(getattr(self, "label_smoothing", 0.0))
        weight_decay = float(getattr(self, "weight_decay", 0.0))
        optimizer = (tf.keras.optimizers.AdamW(self.learning_rate, weight_decay=weight_decay)
                     if weight_decay > 0 else tf.keras.optimizers.Adam(self.learning_rate))
        self.network_.compile(optimizer=optimizer)
        dataset = (tf.data.Dataset.from_tensor_slices((inputs, targets))
                   .shuffle(len(inputs), seed=self.seed, reshuffle_each_iteration=True)
                   .batch(self.batch_size))
        _networks.fit_with_validation(self, dataset, sequences, validation, self._score_tokens)

    def _score_tokens(self, histories, batch_size: int = 512):
        padded = pad_sequences(histories, self.max_len)
        scores = []
        for start in range(0, len(padded), batch_size):
            hidden = self.network_(padded[start:start + batch_size], training=False)
            scores.append(self.network_.item_logits(hidden[:, -1, :]).numpy())
        return np.concatenate(scores)

    def hidden_states(self, histories) -> np.ndarray:
        """The network's output at every position: shape (n, max_len, embedding_dim).

        Introduced in chapter 09 (to inspect the causal mask). ``histories`` are
        item-id sequences, left-padded / truncated to ``max_len``.
        """
        check_is_fitted(self)
        from mmrec_lib.sequential.data import encode_sequences

        tokens = encode_sequences(list(histories), self.item_encoder_)
        return self.network_(pad_sequences(tokens, self.max_len), training=False).numpy()

    # ------------------------------------------------------------------ save / load

    def save(self, path) -> Path:
        """Save to a folder: ``config.json``, ``arrays.npz`` and ``network.weights.h5``."""
        from mmrec_lib.utils import atomic_dir

        check_is_fitted(self)
        path = Path(path)
        with atomic_dir(path) as folder:
            folder = Path(folder)
            config = {"class": type(self).__name__, "params": self.get_params(),
                      "history": self.history_, "best_epoch": self.best_epoch_}
            (folder / "config.json").write_text(json.dumps(config, indent=1))
            np.savez(folder / "arrays.npz", user_ids=id_array(self.user_ids_),
                     item_ids=id_array(self.item_ids_),
                     tokens=np.concatenate(self.train_sequences_),
                     lengths=np.array([len(s) for s in self.train_sequences_]))
            self.network_.save_weights(str(folder / "network.weights.h5"))
        return path

    @classmethod
    def load(cls, path):
        """Load a model saved by :meth:`save`; it scores exactly as the saved one."""
        model, config, _ = load_saved_state(cls, path)
        model.best_epoch_ = config["best_epoch"]
        model.network_ = model._build_network(len(model.item_ids_))
        model.network_.load_weights(str(Path(path) / "network.weights.h5"))
        return model


def load_saved_state(cls, path):
    """The state every saved sequential network shares: ids, sequences, training matrix.

    Reads ``config.json`` and ``arrays.npz`` of a folder written by ``save``; returns
    ``(model, config, arrays)`` with the encoders, ``train_sequences_``,
    ``train_matrix_`` and ``history_`` set (the network is the caller's to build).
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a saved {cls.__name__} (no config.json)")
    config = json.loads((path / "config.json").read_text())
    if config.get("class") != cls.__name__:
        raise ModelError(f"{path} holds a {config.get('class')}, not a {cls.__name__}")
    model = cls(**config["params"])
    with np.load(path / "arrays.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    model.history_ = config["history"]
    model.user_encoder_ = IdEncoder().fit(arrays["user_ids"])
    model.item_encoder_ = IdEncoder().fit(arrays["item_ids"])
    model.user_ids_ = model.user_encoder_.classes_
    model.item_ids_ = model.item_encoder_.classes_
    model.train_sequences_ = np.split(arrays["tokens"].astype(np.int32),
                                      np.cumsum(arrays["lengths"])[:-1])
    rows = np.repeat(np.arange(len(model.user_ids_)), arrays["lengths"])
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32),
                               (rows, arrays["tokens"].astype(np.int64) - 1)),
                               shape=(len(model.user_ids_), len(model.item_ids_)))
    matrix.data[:] = 1.0
    model.train_matrix_ = matrix
    return model, config, arrays


class SASRecModel(KerasSequentialModel):
    """SASRec (Kang & McAuley, 2018): causal self-attention over the item sequence.

    Introduced in chapter 09. A decoder-only transformer, the GPT recipe applied
    to item tokens: learned position embeddings, a causal mask (position ``t``
    sees items ``<= t`` only), ``num_blocks`` pre-norm blocks with dropout and
    layer norm, tied input/output item embeddings. Trained on every position
    with the full softmax cross-entropy over the catalogue (cheap for a few
    thousand items), as in Klenitskiy & Vasilev (2023), which beats the
    original one-negative binary loss.

    Parameters
    ----------
    max_len : int >= 1
        Positions seen; longer histories keep their latest ``max_len`` items.
    embedding_dim : int, divisible by num_heads
    num_blocks : int >= 1
    num_heads : int >= 1
    dropout : float in [0, 1)
    learning_rate : float > 0
    epochs : int
    batch_size : int
    patience : int or None
        Early stopping on validation NDCG@10 (only when ``fit`` gets ``validation``).
    all_windows : bool
        Train on every ``max_len`` window of a long sequence (see
        :func:`training_pairs`), not only the latest one: more data per epoch
        for the same attention cost.
    seed : int
        Seeds weights, dropout and shuffling: same seed, same scores (on CPU).
    loss : {"full", "sampled"}
        ``"full"``: softmax cross-entropy over the whole catalogue. ``"sampled"``:
        softmax over the target and ``num_negatives`` items drawn (per batch) in
        proportion to their training frequency ``q``, every logit corrected by
        ``- log q`` (the log-q correction of Yi et al., 2019, which makes the
        sampled softmax an unbiased stand-in for the full one); accidental hits
        are masked. For catalogues too large for the full softmax.
    num_negatives : int >= 1
        Negatives per batch of the sampled loss.
    weight_decay : float >= 0
        Decoupled weight decay (AdamW, Loshchilov & Hutter, 2019); 0: plain Adam.
    label_smoothing : float in [0, 1)
        Share of the target's probability spread evenly over the catalogue
        (``loss="full"`` only); 0: plain cross-entropy.
    """

    def __init__(self, *, max_len: int = 50, embedding_dim: int = 64, num_blocks: int = 2,
                 num_heads: int = 1, dropout: float = 0.2, learning_rate: float = 1e-3,
                 epochs: int = 50, batch_size: int = 128, patience: int | None = 5,
                 all_windows: bool = True, seed: int = 0, loss: str = "full",
                 num_negatives: int = 256, weight_decay: float = 0.0,
                 label_smoothing: float = 0.0):
        self.max_len = max_len
        self.embedding_dim = embedding_dim
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.all_windows = all_windows
        self.seed = seed
        self.loss = loss
        self.num_negatives = num_negatives
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing

    def _check_params(self):
        self._check_common()
        check_int("num_blocks", self.num_blocks)
        check_int("num_heads", self.num_heads)
        if self.embedding_dim % self.num_heads:
            raise ParameterError(f"embedding_dim={self.embedding_dim} must be divisible by "
                                 f"num_heads={self.num_heads}")

    def _network(self, num_items):
        from mmrec_lib.sequential._networks import SASRecNetwork

        return SASRecNetwork(num_items, max_len=self.max_len, embedding_dim=self.embedding_dim,
                             num_blocks=self.num_blocks, num_heads=self.num_heads,
                             dropout=self.dropout, seed=self.seed)


class GRU4RecModel(KerasSequentialModel):
    """GRU4Rec (Hidasi et al., 2016): a recurrent network reads the sequence item by item.

    Introduced in chapter 09. Embedding -> dropout -> GRU -> dropout -> linear
    projection, scored against the tied item embeddings with the same full
    softmax loss as :class:`SASRecModel` (so the comparison is about the
    sequence encoder). Parameters as :class:`SASRecModel`, without the
    attention ones and the sampled loss.
    """

    def __init__(self, *, max_len: int = 50, embedding_dim: int = 64, dropout: float = 0.2,
                 learning_rate: float = 1e-3, epochs: int = 50, batch_size: int = 128,
                 patience: int | None = 5, all_windows: bool = True, seed: int = 0,
                 weight_decay: float = 0.0, label_smoothing: float = 0.0):
        self.max_len = max_len
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.all_windows = all_windows
        self.seed = seed
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing

    def _check_params(self):
        self._check_common()

    def _network(self, num_items):
        from mmrec_lib.sequential._networks import GRU4RecNetwork

        return GRU4RecNetwork(num_items, embedding_dim=self.embedding_dim,
                              dropout=self.dropout, seed=self.seed)
