"""Generative retrieval (TIGER-style): a transformer writes the next item's semantic ID, token by token.

Each catalogue item gets a semantic ID from its content vector
(:class:`~mmrec_lib.sequential.semantic_ids.ResidualQuantizer`: ``levels``
k-means codes plus a de-duplication suffix). A user's history becomes the flat
stream of its items' code tokens; a causal transformer is trained to predict
every next token (teacher forcing), so after a history it writes the next
item's code one level at a time. Recommendation is a beam search constrained
by the prefix tree of the codes that exist: it can only name real items, and
an item added after training (:meth:`SemanticIDGenerator.add_items`) can be
generated as soon as its content gives it a code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.sequential.base import SequentialModel
from mmrec_lib.sequential.data import encode_sequences, pad_sequences
from mmrec_lib.sequential.neural import id_array, load_saved_state, training_pairs
from mmrec_lib.sequential.semantic_ids import ResidualQuantizer
from mmrec_lib.utils import check_is_fitted

__all__ = ["SemanticIDGenerator"]


class SemanticIDGenerator(SequentialModel):
    """Next-item model that generates semantic IDs with a constrained beam search.

    Introduced in chapter 09. ``fit(train, item_vectors)`` needs one content
    vector per catalogue item. ``score_histories`` returns, for each history,
    the log-probability of the ``beam_width`` generated items (the code's
    probability renormalised at each level over the codes that exist) and
    ``-inf`` for every item the beam did not reach, so ``top_k`` gives the
    beam's order. ``recommend(user_ids, k=...)`` widens the beam to at least
    ``k`` plus the number of seen items, so it returns ``k`` distinct unseen
    items when the catalogue has them.

    Parameters
    ----------
    levels, codebook_size : int
        Semantic-ID shape (see :class:`ResidualQuantizer`).
    max_len : int >= 1
        Items of history read (``max_len * (levels + 1)`` tokens).
    embedding_dim : int, divisible by num_heads
    num_blocks, num_heads : int >= 1
    dropout : float in [0, 1)
    learning_rate : float > 0
    epochs, batch_size : int >= 1
        No early stopping: ``validation`` given to ``fit`` is not used.
    beam_width : int >= 1
    seed : int
        Seeds the quantiser, the weights, dropout and shuffling.

    Attributes (after ``fit``)
    --------------------------
    quantizer_ : ResidualQuantizer
        Its rows are the items of ``row_item_ids_`` (the catalogue at ``fit``,
        then the added items).
    code_tokens_ : ndarray of int64, shape (n_items, levels + 1)
        Token of every level of every catalogue item (``item_ids_`` order);
        level ``l`` code ``c`` is token ``1 + l * codebook_size + c``.
    fitted_rows_ : int
        Items coded at ``fit``; later rows were added (their suffix is scored
        as the best trained suffix of the same prefix, see :meth:`generate`).
    vocabulary_size_ : int
    network_ : keras.Model
    history_ : dict with the per-epoch ``loss``
    """

    _needs_item_vectors = True

    def __init__(self, *, levels: int = 3, codebook_size: int = 16, max_len: int = 20,
                 embedding_dim: int = 64, num_blocks: int = 2, num_heads: int = 2,
                 dropout: float = 0.1, learning_rate: float = 1e-3, epochs: int = 30,
                 batch_size: int = 64, beam_width: int = 20, seed: int = 0):
        self.levels = levels
        self.codebook_size = codebook_size
        self.max_len = max_len
        self.embedding_dim = embedding_dim
        self.num_blocks = num_blocks
        self.num_heads = num_heads
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.beam_width = beam_width
        self.seed = seed

    def _check_params(self):
        check_int("levels", self.levels)
        check_int("codebook_size", self.codebook_size, low=2)
        for name in ("max_len", "embedding_dim", "num_blocks", "num_heads", "epochs",
                     "batch_size", "beam_width"):
            check_int(name, getattr(self, name))
        check_number("dropout", self.dropout, low=0, high=1, high_inclusive=False)
        check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        check_seed(self.seed)
        if self.embedding_dim % self.num_heads:
            raise ParameterError(f"embedding_dim={self.embedding_dim} must be divisible by "
                                 f"num_heads={self.num_heads}")

    @property
    def max_tokens(self) -> int:
        """Length of the token window the network reads."""
        return self.max_len * (self.levels + 1)

    # ------------------------------------------------------------------ codes

    def _fit(self, X, vectors, train):
        self.quantizer_ = ResidualQuantizer(levels=self.levels, codebook_size=self.codebook_size,
                                            seed=self.seed).fit(vectors)
        self.row_item_ids_ = np.asarray(self.item_ids_).copy()
        self.fitted_rows_ = len(self.row_item_ids_)
        largest_suffix = int(self.quantizer_.codes_[:, -1].max())
        # Room for later items that collide with existing codes (add_items).
        self.suffix_size_ = max(self.codebook_size, 2 * (largest_suffix + 1))
        self.vocabulary_size_ = 1 + self.levels * self.codebook_size + self.suffix_size_
        self._update_codes()
        super()._fit(X, vectors, train)

    def _update_codes(self) -> None:
        """Recompute the catalogue-order token table and the prefix tree after a change."""
        offsets = 1 + np.arange(self.levels + 1) * self.codebook_size
        rows = self.item_encoder_.transform(self.row_item_ids_)
        self.code_tokens_ = np.zeros((len(self.item_ids_), self.levels + 1), dtype=np.int64)
        self.code_tokens_[rows] = self.quantizer_.codes_ + offsets
        self._offsets = offsets
        self._item_of_row = rows
        self._tree = self.quantizer_.prefix_tree()

    def add_items(self, item_vectors: pd.DataFrame) -> SemanticIDGenerator:
        """Add new items (not in ``item_ids_``) from their content vectors; returns ``self``.

        Their codes come from :meth:`ResidualQuantizer.add`; the catalogue
        ``item_ids_`` and the item columns of the scores grow (re-sorted).
        Raises :class:`~mmrec_lib.errors.ModelError` if an item collides with
        more existing items than the suffix vocabulary can number.
        """
        new_ids = self._new_item_ids(item_vectors)
        saved = (self.quantizer_.codes_.copy(), dict(self.quantizer_.item_of_code_))
        codes = self.quantizer_.add(item_vectors.to_numpy(dtype=np.float64))
        if codes[:, -1].max() >= self.suffix_size_:
            self.quantizer_.codes_, self.quantizer_.item_of_code_ = saved
            raise ModelError(f"a new item shares its code with {int(codes[:, -1].max())} "
                             f"items; the suffix vocabulary holds {self.suffix_size_}")
        self._grow_catalogue(new_ids)
        self.row_item_ids_ = np.concatenate([self.row_item_ids_, new_ids])
        self._update_codes()
        return self

    # ------------------------------------------------------------------ training

    def _streams(self, histories: list[np.ndarray]) -> list[np.ndarray]:
        return [self.code_tokens_[np.asarray(h, dtype=np.int64) - 1].ravel() for h in histories]

    def _fit_sequences(self, sequences, validation):
        from mmrec_lib._env import import_tensorflow

        tf = import_tensorflow()
        inputs, targets = training_pairs(self._streams(sequences), self.max_tokens,
                                         all_windows=True)
        if len(inputs) == 0:
            raise DataError("no training sequence has an item: there is nothing to learn")
        if not any(len(s) > 1 for s in sequences):
            raise DataError("no training sequence has two items: there is no next item to learn")
        tf.keras.utils.set_random_seed(self.seed)
        self.network_ = self._build_network()
        self.network_.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate))
        dataset = (tf.data.Dataset.from_tensor_slices((inputs, targets))
                   .shuffle(len(inputs), seed=self.seed, reshuffle_each_iteration=True)
                   .batch(self.batch_size))
        history = self.network_.fit(dataset, epochs=self.epochs, verbose=0)
        self.history_ = {"loss": [float(v) for v in history.history["loss"]]}

    def _build_network(self):
        from mmrec_lib.sequential._generative_networks import CodeTokenNetwork

        network = CodeTokenNetwork(
            self.vocabulary_size_, max_tokens=self.max_tokens, embedding_dim=self.embedding_dim,
            num_blocks=self.num_blocks, num_heads=self.num_heads, dropout=self.dropout,
            seed=self.seed)
        network(np.zeros((1, self.max_tokens), np.int32))  # creates the weights
        return network

    # ------------------------------------------------------------------ save / load

    def save(self, path) -> Path:
        """Save to a folder: ``config.json``, ``arrays.npz`` and ``network.weights.h5``.

        Added items are saved too; the loaded model generates exactly as this one.
        """
        from mmrec_lib.utils import atomic_dir

        check_is_fitted(self)
        path = Path(path)
        with atomic_dir(path) as folder:
            folder = Path(folder)
            config = {"class": type(self).__name__, "params": self.get_params(),
                      "history": self.history_, "fitted_rows": self.fitted_rows_,
                      "suffix_size": self.suffix_size_}
            (folder / "config.json").write_text(json.dumps(config, indent=1))
            centroids = {f"centroids_{level}": center
                         for level, center in enumerate(self.quantizer_.centroids_)}
            np.savez(folder / "arrays.npz", user_ids=id_array(self.user_ids_),
                     item_ids=id_array(self.item_ids_),
                     row_item_ids=id_array(self.row_item_ids_), codes=self.quantizer_.codes_,
                     tokens=np.concatenate(self.train_sequences_),
                     lengths=np.array([len(s) for s in self.train_sequences_]), **centroids)
            self.network_.save_weights(str(folder / "network.weights.h5"))
        return path

    @classmethod
    def load(cls, path) -> SemanticIDGenerator:
        """Load a model saved by :meth:`save`."""
        model, config, arrays = load_saved_state(cls, path)
        model.fitted_rows_ = config["fitted_rows"]
        model.suffix_size_ = config["suffix_size"]
        model.vocabulary_size_ = 1 + model.levels * model.codebook_size + model.suffix_size_
        model.row_item_ids_ = arrays["row_item_ids"]
        quantizer = ResidualQuantizer(levels=model.levels, codebook_size=model.codebook_size,
                                      seed=model.seed)
        quantizer.centroids_ = [arrays[f"centroids_{level}"] for level in range(model.levels)]
        quantizer.codes_ = arrays["codes"].astype(np.int64)
        quantizer.item_of_code_ = {tuple(int(c) for c in row): index
                                   for index, row in enumerate(quantizer.codes_)}
        model.quantizer_ = quantizer
        model._update_codes()
        model.network_ = model._build_network()
        model.network_.load_weights(str(Path(path) / "network.weights.h5"))
        return model

    # ------------------------------------------------------------------ decoding

    def _next_log_probabilities(self, streams: list[np.ndarray], batch_size: int = 512
                                ) -> np.ndarray:
        """Log-softmax over the vocabulary after each stream: shape (n, vocabulary_size)."""
        padded = pad_sequences(streams, self.max_tokens)
        parts = []
        for start in range(0, len(padded), batch_size):
            hidden = self.network_(padded[start:start + batch_size], training=False)
            parts.append(self.network_.token_logits(hidden[:, -1, :]).numpy())
        logits = np.concatenate(parts).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def generate(self, histories: list[np.ndarray], *, beam_width: int, candidates=None
                 ) -> list[list[tuple[int, float]]]:
        """Constrained beam search after each token history.

        Parameters
        ----------
        histories : list of n int arrays of item tokens (item index + 1)
        beam_width : int >= 1
        candidates : bool ndarray (n, n_items), optional
            Per history, the items the search may reach (the prefix tree is cut
            to their codes), e.g. only the clips released by then.

        Returns
        -------
        list of n lists of (item index, log-probability), best first
            At most ``beam_width`` distinct existing items each.
        """
        check_is_fitted(self)
        beam_width = check_int("beam_width", beam_width)
        streams = self._streams(histories)
        trees = [self._tree] * len(histories)
        if candidates is not None:
            trees = [self._candidate_tree(row) for row in np.asarray(candidates, dtype=bool)]
        beams: list[list[tuple[tuple, float]]] = [[((), 0.0)] for _ in histories]
        for level in range(self.levels + 1):
            rows = [(h, prefix, score) for h, beam in enumerate(beams) for prefix, score in beam]
            if not rows:
                break
            log_probabilities = self._next_log_probabilities([
                np.concatenate([streams[h], np.asarray(prefix, np.int64)
                                + self._offsets[:level]]) for h, prefix, _ in rows])
            found: list[list[tuple[tuple, float]]] = [[] for _ in histories]
            for row, (h, prefix, score) in enumerate(rows):
                children = trees[h].get(prefix)
                if children is None:  # no candidate at all for this history
                    continue
                values = log_probabilities[row, children + self._offsets[level]]
                if level == self.levels:
                    values = self._suffix_values(prefix, children, values)
                # Renormalised over the codes that exist after this prefix.
                values = values - np.logaddexp.reduce(values)
                found[h].extend(((*prefix, int(c)), score + float(v))
                                for c, v in zip(children, values, strict=True))
            # Stable sort: equal scores keep code order, so the search is deterministic.
            beams = [sorted(pairs, key=lambda pair: -pair[1])[:beam_width] for pairs in found]
        return [[(int(self._item_of_row[self.quantizer_.item_of_code_[code]]), score)
                 for code, score in beam] for beam in beams]

    def generate_session(self, histories: Sequence[Sequence], *, length: int = 10,
                         beam_width: int | None = None, candidates=None,
                         exclude_history: bool = True) -> list[np.ndarray]:
        """List-wise (session) generation: write ``length`` items one after another.

        Introduced in chapter 09, OneRec's session mode in miniature. Next-item
        generation ranks ``length`` items that all continue the same history;
        here item ``n`` continues the history *plus* the items ``1 .. n-1`` the
        model has already written, so the list can move on (the next episode
        after the one just proposed, a creator's next clip) instead of being ten
        alternatives for one slot. Each step is a constrained beam search whose
        best item not yet in the list (nor, with ``exclude_history``, in the
        history) is appended.

        Parameters
        ----------
        histories : sequence of n non-empty sequences of item ids, oldest first
        length : int >= 1
            Items per generated list (at most the number of allowed items).
        beam_width : int, optional
            Beam of each step; default ``beam_width``.
        candidates : bool ndarray (n, n_items), optional
            Items each list may contain.
        exclude_history : bool

        Returns
        -------
        list of n int arrays of catalogue indices (columns of ``item_ids_``), in order
        """
        check_is_fitted(self)
        length = check_int("length", length)
        beam_width = check_int("beam_width", self.beam_width if beam_width is None
                               else beam_width)
        tokens = encode_sequences(list(histories), self.item_encoder_)
        if not tokens:
            raise ParameterError("histories is empty: there is no history to continue")
        for row, history in enumerate(tokens):
            if len(history) == 0:
                raise DataError(f"history {row} is empty; a session needs at least one item")
        allowed = np.ones((len(tokens), len(self.item_ids_)), dtype=bool)
        if candidates is not None:
            candidates = np.asarray(candidates)
            if candidates.dtype != bool or candidates.shape != allowed.shape:
                raise ParameterError(f"candidates must be a boolean array of shape "
                                     f"{allowed.shape}; got {candidates.dtype} "
                                     f"{candidates.shape}")
            allowed &= candidates
        if exclude_history:
            for row, history in enumerate(tokens):
                allowed[row, history - 1] = False
        written: list[list[int]] = [[] for _ in tokens]
        streams = [np.asarray(h, dtype=np.int64) for h in tokens]
        for _ in range(length):
            active = [row for row in range(len(tokens)) if allowed[row].any()]
            if not active:
                break
            beams = self.generate([streams[row] for row in active], beam_width=beam_width,
                                  candidates=allowed[active])
            for row, beam in zip(active, beams, strict=True):
                if not beam:
                    continue
                item = beam[0][0]
                written[row].append(item)
                allowed[row, item] = False
                streams[row] = np.append(streams[row], item + 1)
        return [np.asarray(items, dtype=np.int64) for items in written]

    def _candidate_tree(self, allowed: np.ndarray) -> dict[tuple, np.ndarray]:
        """The prefix tree of the allowed items' codes only."""
        rows = np.flatnonzero(np.isin(self._item_of_row, np.flatnonzero(allowed)))
        children: dict[tuple, set] = {}
        for row in self.quantizer_.codes_[rows]:
            code = tuple(int(c) for c in row)
            for length in range(self.levels + 1):
                children.setdefault(code[:length], set()).add(code[length])
        return {prefix: np.array(sorted(values), dtype=np.int64)
                for prefix, values in children.items()}

    def _score_candidates(self, tokens, candidates):
        scores = np.full(candidates.shape, -np.inf, dtype=np.float32)
        generated = self.generate(tokens, beam_width=self._beam(), candidates=candidates)
        for row, items in enumerate(generated):
            for item, score in items:
                scores[row, item] = score
        return scores

    def _suffix_values(self, prefix: tuple, children: np.ndarray, values: np.ndarray
                       ) -> np.ndarray:
        """Give an item added after training the best suffix score of its code prefix.

        Its suffix token never appeared in training, so the network gives it no
        useful probability; as in TIGER's cold-start setting, the content-based
        prefix decides, and a new item ties with the likeliest trained item
        that shares it (or with the others added, if there is none).
        """
        rows = np.array([self.quantizer_.item_of_code_[(*prefix, int(c))] for c in children])
        added = rows >= self.fitted_rows_
        if not added.any():
            return values
        values = values.copy()
        values[added] = values[~added].max() if (~added).any() else 0.0
        return values

    def _beam(self) -> int:
        return min(getattr(self, "_beam_override", self.beam_width), len(self.item_ids_))

    def _score_tokens(self, histories):
        scores = np.full((len(histories), len(self.item_ids_)), -np.inf, dtype=np.float32)
        for row, generated in enumerate(self.generate(histories, beam_width=self._beam())):
            for item, score in generated:
                scores[row, item] = score
        return scores

    def recommend(self, user_ids: Sequence, *, k: int = 10, exclude_seen: bool = True
                  ) -> pd.DataFrame:
        """Top-``k`` generated items per user (user_id, item_id, prediction, rank).

        The beam is widened to ``max(beam_width, k + seen items)`` so that ``k``
        unseen items remain after the seen ones are removed.
        """
        check_is_fitted(self)
        k = check_int("k", k)
        if k > len(self.item_ids_):
            raise ParameterError(f"k={k} must be in [1, {len(self.item_ids_)}]")
        users = self.user_encoder_.transform(user_ids)
        seen = int(np.diff(self.train_matrix_.indptr)[users].max(initial=0)) if exclude_seen else 0
        self._beam_override = max(self.beam_width, k + seen)
        try:
            return super().recommend(user_ids, k=k, exclude_seen=exclude_seen)
        finally:
            del self._beam_override
