"""Generative retrieval (TIGER-style): a transformer writes the next item's semantic ID, token by token.

Each catalogue item gets a semantic ID from its content vector
(:class:`~mmrec_lib.sequential.semantic_ids.ResidualQuantizer`: ``levels``
k-means codes plus a de-duplication suffix). A causal transformer reads the
history's items, each embedded as the sum of its codes' embeddings (and an
identity embedding); the next item's code is written one level at a time.
With ``loss="tree"`` (default) every step's probabilities are read off one
energy per item (the decoder state against the item's embedding), so the
steps multiply out to an item softmax and training maximises the item's
log-probability along its path; ``loss="levels"`` is TIGER's objective (a
head per level, teacher-forced cross-entropies). Recommendation is a beam search constrained
by the prefix tree of the codes that exist: it can only name real items, and
an item added after training (:meth:`SemanticIDGenerator.add_items`) can be
generated as soon as its content gives it a code. Ranking scores every item
by its log-probability along the tree (the exhaustive beam) in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.sequential.base import SequentialModel
from mmrec_lib.sequential.data import encode_sequences, pad_sequences
from mmrec_lib.sequential.neural import id_array, load_saved_state, training_pairs
from mmrec_lib.sequential.semantic_ids import ResidualQuantizer
from mmrec_lib.utils import check_is_fitted

__all__ = ["SemanticIDGenerator"]


class SemanticIDGenerator(SequentialModel):
    """Next-item model that generates semantic IDs, scored through the prefix tree.

    Introduced in chapter 09. ``fit(train, item_vectors)`` needs one content
    vector per catalogue item; each gets a semantic ID (``levels`` residual
    k-means codes and a de-duplication suffix). A causal transformer reads the
    history's items, each embedded as the sum of learned embeddings of its
    codes plus an identity embedding; the next item's code is then written one
    level at a time, and a last step names the item among those sharing the
    full code. The probability of an item is the product along its path in the
    prefix tree of existing codes (each step normalised over the codes that
    exist there), so only real items can be generated.

    How a step gets its probabilities is ``loss``. ``"tree"`` (default): every
    item has an energy, the decoder state times the item's embedding (the same
    code sum + identity as the input, tied) plus the biases of its identity and
    codes; a step's probability of code ``c`` after a prefix is the softmax
    mass of the items below ``prefix + c`` over the mass below the prefix. The
    chain of steps is then exactly the item softmax, and training maximises
    the item's log-probability (the sum of its steps' log-probabilities). An
    item added after training has no identity: its energy comes from its codes.
    ``"levels"``: TIGER's objective, one small head per step (level ``l`` reads
    the state plus the codes already written), trained with the per-level
    cross-entropies (teacher forcing). Measured on MiniClips ``small``
    (generator 5): ``"levels"`` reached about 0.68 of SASRec's NDCG@10, because
    each head is a separate classifier trained on the true prefix only, so its
    errors multiply along the path; ``"tree"`` trains the product itself.

    ``scoring="full"`` (default) scores every catalogue item by that
    log-probability (what a beam as wide as the catalogue returns, computed for
    all items at once); ``scoring="beam"`` keeps only the ``beam_width`` items
    of a constrained beam search and gives ``-inf`` to the others, and
    ``recommend(user_ids, k=...)`` then widens the beam to at least ``k`` plus
    the number of seen items. :meth:`generate` (beam search) and
    :meth:`generate_session` (list-wise generation) work in both modes.

    Parameters
    ----------
    levels, codebook_size : int
        Semantic-ID shape (see :class:`ResidualQuantizer`).
    max_len : int >= 1
        Items of history read (the latest ``max_len``).
    embedding_dim : int, divisible by num_heads
    num_blocks, num_heads : int >= 1
    dropout : float in [0, 1)
    learning_rate : float > 0
    epochs, batch_size : int >= 1
        Training uses every ``max_len`` window of every sequence.
    patience : int or None
        Early stopping on validation NDCG@10 (full scoring), when ``fit`` gets
        ``validation``; the best epoch's weights are kept.
    beam_width : int >= 1
    scoring : {"full", "beam"}
    loss : {"tree", "levels"}
        The training objective and the steps' probabilities (above).
    identity_dropout : float in [0, 1)
        Share of the items whose identity embedding (and bias) is dropped at
        each training step, so that the code part alone must also predict them,
        as it must for an item added after training. Measured with the tree
        loss on MiniClips ``small`` (benchmark settings), 0.5 against 0: data
        set 1, cold 2.02x vs 1.78x random, warm NDCG@10 0.155 vs 0.158; data
        set 0 (model seed 1), cold 2.03x vs 2.07x, warm 0.156 vs 0.170. Mixed,
        so the default stays 0.
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
        Items coded at ``fit`` (with a trained identity); later rows were added
        and are scored from their codes alone.
    network_ : keras.Model
    history_ : dict with the per-epoch ``loss`` (and ``val_ndcg@10``)
    best_epoch_ : int
    """

    _needs_item_vectors = True

    def __init__(self, *, levels: int = 2, codebook_size: int = 16, max_len: int = 50,
                 embedding_dim: int = 64, num_blocks: int = 2, num_heads: int = 1,
                 dropout: float = 0.2, learning_rate: float = 3e-3, epochs: int = 30,
                 batch_size: int = 32, patience: int | None = 5, beam_width: int = 20,
                 scoring: str = "full", loss: str = "tree", identity_dropout: float = 0.0,
                 seed: int = 0):
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
        self.patience = patience
        self.beam_width = beam_width
        self.scoring = scoring
        self.loss = loss
        self.identity_dropout = identity_dropout
        self.seed = seed

    def _check_params(self):
        check_int("levels", self.levels)
        check_int("codebook_size", self.codebook_size, low=2)
        for name in ("max_len", "embedding_dim", "num_blocks", "num_heads", "epochs",
                     "batch_size", "beam_width"):
            check_int(name, getattr(self, name))
        if self.patience is not None:
            check_int("patience", self.patience)
        check_choice("scoring", self.scoring, ("full", "beam"))
        check_choice("loss", self.loss, ("tree", "levels"))
        check_number("dropout", self.dropout, low=0, high=1, high_inclusive=False)
        check_number("identity_dropout", self.identity_dropout, low=0, high=1,
                     high_inclusive=False)
        check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        check_seed(self.seed)
        if self.embedding_dim % self.num_heads:
            raise ParameterError(f"embedding_dim={self.embedding_dim} must be divisible by "
                                 f"num_heads={self.num_heads}")

    # ------------------------------------------------------------------ codes

    def _fit(self, X, vectors, train):
        self.quantizer_ = ResidualQuantizer(levels=self.levels, codebook_size=self.codebook_size,
                                            seed=self.seed).fit(vectors)
        self.row_item_ids_ = np.asarray(self.item_ids_).copy()
        self.fitted_rows_ = len(self.row_item_ids_)
        self.__dict__.pop("network_", None)
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
        if hasattr(self, "network_"):
            self._install_items(self.network_)

    def add_items(self, item_vectors: pd.DataFrame) -> SemanticIDGenerator:
        """Add new items (not in ``item_ids_``) from their content vectors; returns ``self``.

        Their codes come from :meth:`ResidualQuantizer.add`; the catalogue
        ``item_ids_`` and the item columns of the scores grow (re-sorted).
        A new item has no trained identity: the last step scores it by its
        code embeddings alone against the trained items with the same code.
        """
        new_ids = self._new_item_ids(item_vectors)
        self.quantizer_.add(item_vectors.to_numpy(dtype=np.float64))
        self._grow_catalogue(new_ids)
        self.row_item_ids_ = np.concatenate([self.row_item_ids_, new_ids])
        self._update_codes()
        return self

    # ------------------------------------------------------------------ training

    def _fit_sequences(self, sequences, validation):
        from mmrec_lib._env import import_tensorflow
        from mmrec_lib.sequential._networks import fit_with_validation

        tf = import_tensorflow()
        if not any(len(s) > 1 for s in sequences):
            raise DataError("no training sequence has two items: there is no next item to learn")
        inputs, targets = training_pairs(sequences, self.max_len, all_windows=True)
        tf.keras.utils.set_random_seed(self.seed)
        self.network_ = self._build_network()
        self.network_.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate))
        dataset = (tf.data.Dataset.from_tensor_slices((inputs, targets))
                   .shuffle(len(inputs), seed=self.seed, reshuffle_each_iteration=True)
                   .batch(self.batch_size))
        fit_with_validation(self, dataset, sequences, validation, self._full_scores)

    def _build_network(self):
        from mmrec_lib.sequential._generative_networks import CodeTokenNetwork

        network = CodeTokenNetwork(
            levels=self.levels, codebook_size=self.codebook_size, num_fitted=self.fitted_rows_,
            max_len=self.max_len, embedding_dim=self.embedding_dim, num_blocks=self.num_blocks,
            num_heads=self.num_heads, dropout=self.dropout, seed=self.seed, loss=self.loss,
            identity_dropout=self.identity_dropout)
        self._install_items(network)
        network(np.zeros((1, self.max_len), np.int32))  # creates the weights
        for head in network.heads:
            head(np.zeros((1, self.embedding_dim), np.float32))
        return network

    def _install_items(self, network) -> None:
        """Give the network the catalogue's codes and trained identities (catalogue order)."""
        identity = np.zeros(len(self.item_ids_), dtype=np.int64)
        fitted = self._item_of_row[:self.fitted_rows_]
        identity[fitted] = np.arange(1, self.fitted_rows_ + 1)
        network.set_items(self.code_tokens_[:, :self.levels] - self._offsets[:self.levels],
                          identity)

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
                      "best_epoch": self.best_epoch_}
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
        model.best_epoch_ = config["best_epoch"]
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

    def _hidden(self, histories: list[np.ndarray], batch_size: int = 512) -> np.ndarray:
        """Decoder state after each history of item tokens: shape (n, embedding_dim)."""
        # This model's catalogue (a shallow copy that added items shares the network).
        self._install_items(self.network_)
        padded = pad_sequences(histories, self.max_len)
        parts = [self.network_(padded[start:start + batch_size], training=False)[:, -1, :]
                 .numpy() for start in range(0, len(padded), batch_size)]
        return np.concatenate(parts)

    def _catalogue_codes(self) -> np.ndarray:
        """Codes (without the suffix) of every catalogue item: (n_items, levels)."""
        return self.code_tokens_[:, :self.levels] - self._offsets[:self.levels]

    def _full_scores(self, histories: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
        """Log-probability of generating every catalogue item: (n, n_items).

        The sum of the code log-probabilities along the item's path in the
        prefix tree (each level normalised over the codes that exist after the
        prefix) and of the last step (the item among those with the same code):
        what a beam as wide as the catalogue returns, for every item at once.
        With ``loss="tree"`` that sum is the log-softmax of the item energies.
        """
        hidden = self._hidden(histories)
        if self.loss == "tree":  # the steps multiply out to the softmax of the energies
            energies = np.concatenate([
                self.network_.energies(hidden[start:start + 512]).numpy().astype(np.float64)
                for start in range(0, len(hidden), 512)])
            return energies - np.logaddexp.reduce(energies, axis=1, keepdims=True)
        codes = self._catalogue_codes()
        _, cell_of_item = np.unique(codes, axis=0, return_inverse=True)
        cell_of_item = cell_of_item.ravel()
        total = np.zeros((len(hidden), len(codes)))
        for level in range(self.levels):
            prefixes, prefix_of_item = np.unique(codes[:, :level], axis=0, return_inverse=True)
            prefix_of_item = prefix_of_item.ravel()
            exists = np.zeros((len(prefixes), self.codebook_size), dtype=bool)
            exists[prefix_of_item, codes[:, level]] = True
            padded = np.zeros((len(prefixes), self.levels), dtype=np.int32)
            padded[:, :level] = prefixes
            for start in range(0, len(hidden), batch_size):
                h = hidden[start:start + batch_size, None, :]
                logits = self.network_.level_logits(h, padded[None], level).numpy()
                logits = np.where(exists[None], logits.astype(np.float64), -np.inf)
                logits -= np.logaddexp.reduce(logits, axis=2, keepdims=True)
                total[start:start + batch_size] += logits[:, prefix_of_item, codes[:, level]]
        # Last step: the item among those sharing its full code.
        order = np.argsort(cell_of_item, kind="stable")
        bounds = np.flatnonzero(np.r_[True, np.diff(cell_of_item[order]) != 0])
        items = np.arange(1, len(codes) + 1, dtype=np.int32)
        for start in range(0, len(hidden), batch_size):
            h = hidden[start:start + batch_size, None, :]
            logits = self.network_.item_logits(h, items[None]).numpy().astype(np.float64)
            sorted_logits = logits[:, order]
            peak = np.maximum.reduceat(sorted_logits, bounds, axis=1)
            peak_of_item = np.repeat(peak, np.diff(np.r_[bounds, len(order)]), axis=1)
            norm = np.log(np.add.reduceat(np.exp(sorted_logits - peak_of_item), bounds, axis=1))
            norm_of_item = np.empty_like(logits)
            norm_of_item[:, order] = peak_of_item + np.repeat(
                norm, np.diff(np.r_[bounds, len(order)]), axis=1)
            total[start:start + batch_size] += logits - norm_of_item
        return total

    def generate(self, histories: list[np.ndarray], *, beam_width: int, candidates=None
                 ) -> list[list[tuple[int, float]]]:
        """Constrained beam search after each token history.

        Each step extends every prefix of the beam by the codes that exist after
        it (their probabilities normalised over those codes, as in
        :meth:`_full_scores`), then keeps the ``beam_width`` likeliest prefixes;
        the last step names the item among those sharing the full code.
        With ``loss="tree"`` a step's log-probability is the log-mass of the
        items below the extended prefix minus that below the prefix.

        Parameters
        ----------
        histories : list of n int arrays of item tokens (item index + 1)
        beam_width : int >= 1
        candidates : bool ndarray (n, n_items), optional
            Per history, the items the search may reach (the prefix tree is cut
            to their codes), e.g. only the clips released by then. The
            probabilities stay those of the whole catalogue, so an item's
            log-probability does not depend on which others are candidates.

        Returns
        -------
        list of n lists of (item index, log-probability), best first
            At most ``beam_width`` distinct existing items each.
        """
        check_is_fitted(self)
        beam_width = check_int("beam_width", beam_width)
        hidden = self._hidden([np.asarray(h, dtype=np.int64) for h in histories])
        if self.loss == "tree":  # every step is read off the item log-probabilities
            hidden = self._node_log_mass(self._full_scores(
                [np.asarray(h, dtype=np.int64) for h in histories]))
        trees = [self._tree] * len(histories)
        if candidates is not None:
            trees = [self._candidate_tree(row) for row in np.asarray(candidates, dtype=bool)]
        beams: list[list[tuple[tuple, float]]] = [[((), 0.0)] for _ in histories]
        for level in range(self.levels + 1):
            rows = [(h, prefix, score) for h, beam in enumerate(beams) for prefix, score in beam
                    if trees[h].get(prefix) is not None]
            found: list[list[tuple[tuple, float]]] = [[] for _ in histories]
            if not rows:
                break
            values = self._step_log_probabilities(hidden, rows, level)
            for (h, prefix, score), (codes, logs) in zip(rows, values, strict=True):
                keep = np.isin(codes, trees[h][prefix])
                found[h].extend(((*prefix, int(c)), score + float(v))
                                for c, v in zip(codes[keep], logs[keep], strict=True))
            # Stable sort: equal scores keep code order, so the search is deterministic.
            beams = [sorted(pairs, key=lambda pair: -pair[1])[:beam_width] for pairs in found]
        return [[(int(self._item_of_row[self.quantizer_.item_of_code_[code]]), score)
                 for code, score in beam] for beam in beams]

    def _step_log_probabilities(self, hidden, rows, level):
        """For each (history, prefix, score) row: the codes existing after the prefix and
        their log-probabilities (normalised over them)."""
        children = [self._tree[prefix] for _, prefix, _ in rows]
        if self.loss == "tree":  # hidden is the log-mass of every node of the tree
            node, mass = hidden
            return [(codes, np.array([mass[level + 1][h, node[level + 1][(*prefix, int(c))]]
                                      for c in codes]) - mass[level][h, node[level][prefix]])
                    for (h, prefix, _), codes in zip(rows, children, strict=True)]
        if level < self.levels:
            padded = np.zeros((len(rows), self.levels), dtype=np.int32)
            padded[:, :level] = [prefix for _, prefix, _ in rows]
            logits = self.network_.level_logits(hidden[[h for h, _, _ in rows]], padded,
                                                 level).numpy().astype(np.float64)
            picked = [logits[row, codes] for row, codes in enumerate(children)]
        else:
            items = [self._item_of_row[[self.quantizer_.item_of_code_[(*prefix, int(c))]
                                        for c in codes]] + 1
                     for (_, prefix, _), codes in zip(rows, children, strict=True)]
            width = max(len(i) for i in items)
            padded = np.zeros((len(rows), width), dtype=np.int32)
            for row, tokens in enumerate(items):
                padded[row, :len(tokens)] = tokens
            logits = self.network_.item_logits(hidden[[h for h, _, _ in rows]][:, None, :],
                                                padded).numpy().astype(np.float64)
            picked = [logits[row, :len(tokens)] for row, tokens in enumerate(items)]
        return [(codes, values - np.logaddexp.reduce(values))
                for codes, values in zip(children, picked, strict=True)]

    def _node_log_mass(self, log_probabilities: np.ndarray) -> tuple[list, list]:
        """Log-probability mass below every prefix of the tree, from the items' log-probabilities.

        Returns ``(node, mass)``: for prefix length ``L`` (0 .. levels + 1),
        ``node[L]`` maps a prefix to its column of ``mass[L]`` (n, n_prefixes),
        the log-sum-exp of the log-probabilities of the items below it. A
        step's conditional log-probability is the child's mass minus the
        parent's: the chain of steps multiplies out to the item's probability.
        """
        full = self.code_tokens_ - self._offsets
        node, mass = [], []
        for length in range(self.levels + 2):
            keys, inverse = np.unique(full[:, :length], axis=0, return_inverse=True)
            inverse = inverse.ravel()
            order = np.argsort(inverse, kind="stable")
            bounds = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
            node.append({tuple(int(c) for c in key): k for k, key in enumerate(keys)})
            mass.append(np.logaddexp.reduceat(log_probabilities[:, order], bounds, axis=1))
        return node, mass

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
        if self.scoring == "full":
            return np.where(candidates, self._full_scores(tokens), -np.inf)
        scores = np.full(candidates.shape, -np.inf, dtype=np.float32)
        generated = self.generate(tokens, beam_width=self._beam(), candidates=candidates)
        for row, items in enumerate(generated):
            for item, score in items:
                scores[row, item] = score
        return scores

    def _beam(self) -> int:
        return min(getattr(self, "_beam_override", self.beam_width), len(self.item_ids_))

    def _score_tokens(self, histories):
        if self.scoring == "full":
            return self._full_scores(histories)
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
