"""Keras 2 network of the semantic-ID generator (imported only when one is fitted).

A GPT over the history's items, each embedded as the sum of learned per-level
embeddings of its semantic-ID codes (plus an identity embedding); the next
item's code is written one level at a time, and the last step names the item
among those sharing its full code (the de-duplication level). With the tree
loss every step is read off one energy per item (state . item embedding +
biases: a step's logit is the log-sum-exp of the energies below the code);
with the levels loss (TIGER) a small head per level reads the state plus the
embeddings of the codes already written. Built from the blocks of SASRec
(:mod:`mmrec_lib.sequential._networks`).
"""

from __future__ import annotations

import numpy as np

from mmrec_lib._env import import_tensorflow
from mmrec_lib.sequential._networks import _CausalBlock, causal_decode

__all__ = ["CodeTokenNetwork"]

tf = import_tensorflow()
keras = tf.keras


class CodeTokenNetwork(keras.Model):
    """Item-level causal decoder over semantic-ID embeddings, decoding the next code level by level.

    ``call(tokens)`` maps a left-padded (batch, max_len) matrix of item tokens
    (catalogue index + 1, 0 = padding) to hidden states (batch, max_len,
    embedding_dim). :meth:`level_logits` gives the logits of level ``l``'s codes
    after a prefix of codes; :meth:`item_logits` the logits of items after their
    full code. :meth:`set_items` installs the catalogue's codes (again after new
    items are added: they have codes but no trained identity).
    """

    def __init__(self, *, levels: int, codebook_size: int, num_fitted: int, max_len: int,
                 embedding_dim: int, num_blocks: int, num_heads: int, dropout: float,
                 seed: int, loss: str = "tree", identity_dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.levels = levels
        self.codebook_size = codebook_size
        # (not "self.loss": compile() overwrites that attribute of a keras.Model)
        self.tree_loss = loss == "tree"
        self.identity_dropout = float(identity_dropout)
        self.embedding_dim = embedding_dim
        normal = keras.initializers.TruncatedNormal
        self.code_embeddings = [keras.layers.Embedding(
            codebook_size, embedding_dim, name=f"code_embedding_{level}",
            embeddings_initializer=normal(stddev=0.02, seed=seed + 100 + level))
            for level in range(levels)]
        self.code_bias = self.add_weight(name="code_bias", shape=(levels, codebook_size),
                                         initializer="zeros", trainable=True)
        # Row 0: no identity (padding, or an item added after training).
        self.identity_embedding = keras.layers.Embedding(
            num_fitted + 1, embedding_dim, name="identity_embedding",
            embeddings_initializer=normal(stddev=0.02, seed=seed))
        self.identity_bias = self.add_weight(name="identity_bias", shape=(num_fitted + 1,),
                                             initializer="zeros", trainable=True)
        self.position_embedding = keras.layers.Embedding(
            max_len, embedding_dim, name="position_embedding",
            embeddings_initializer=normal(stddev=0.02, seed=seed + 1))
        self.input_dropout = keras.layers.Dropout(dropout, seed=seed + 2)
        self.blocks = [_CausalBlock(embedding_dim, num_heads, dropout, seed + 10 * (b + 1),
                                    name=f"block_{b}") for b in range(num_blocks)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        initializer = keras.initializers.GlorotUniform(seed=seed + 3)
        # loss="levels": one small residual MLP per step (levels + the item step);
        # loss="tree" reads every step off the item energies and needs none.
        self.heads = [] if loss == "tree" else [keras.Sequential([
            keras.layers.LayerNormalization(epsilon=1e-6),
            keras.layers.Dense(embedding_dim, activation="relu", kernel_initializer=initializer),
            keras.layers.Dense(embedding_dim, kernel_initializer=initializer)],
            name=f"head_{step}") for step in range(levels + 1)]
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def set_items(self, codes: np.ndarray, identity: np.ndarray) -> None:
        """Install the catalogue: ``codes`` (n_items, levels) and ``identity`` (n_items,).

        ``identity[j]`` is the trained-identity row of item ``j`` (1 ..
        num_fitted) or 0 for an item added after training.
        """
        self.codes = tf.constant(np.vstack([np.zeros((1, self.levels)), codes]), tf.int32)
        self.identity = tf.constant(np.concatenate([[0], identity]), tf.int32)
        self.has_identity = tf.cast(self.identity > 0, tf.float32)

    def _identity(self, items, training=None):
        index = tf.gather(self.identity, items)
        known = tf.gather(self.has_identity, items)[..., None]
        if training and self.identity_dropout > 0:
            # Train the code part alone on a share of the items: what a new item has.
            known = known * tf.cast(tf.random.uniform(tf.shape(known)) >= self.identity_dropout,
                                    tf.float32)
        return self.identity_embedding(index) * known, tf.gather(self.identity_bias, index) \
            * known[..., 0]

    def code_sum(self, codes, upto: int):
        """Sum of the embeddings of the first ``upto`` levels of ``codes`` (..., levels)."""
        total = 0.0
        for level in range(upto):
            total = total + self.code_embeddings[level](codes[..., level])
        return total

    def item_table(self, training=None):
        """Input embedding of every token (row 0 padding): code sum plus identity."""
        items = tf.range(tf.shape(self.codes)[0])
        identity, _ = self._identity(items, training)
        return self.code_sum(self.codes, self.levels) + identity

    def call(self, tokens, training=None):
        table = self.item_table(training)
        return causal_decode(self, lambda t: tf.gather(table, t), tokens, training=training)

    def query(self, hidden, prefix_sum, step: int):
        """The head's query for ``step`` after a prefix: ``z + MLP(z)``, ``z = h + prefix``."""
        z = hidden + prefix_sum
        flat = tf.reshape(z, (-1, self.embedding_dim))  # the head was built on rank 2
        return z + tf.reshape(self.heads[step](flat), tf.shape(z))

    def energies(self, hidden, training=None):
        """Tree loss: the energy of every catalogue item, shape (..., n_items).

        ``hidden . (code sum + identity) + bias`` with the same table as the
        input (tied), the bias the item's identity bias plus its codes' biases
        (so an item added after training gets the bias of its codes).
        """
        codes = self.codes[1:]
        identity, bias = self._identity(tf.range(1, tf.shape(self.codes)[0]), training)
        for level in range(self.levels):
            bias = bias + tf.gather(self.code_bias[level], codes[:, level])
        table = self.code_sum(codes, self.levels) + identity
        return tf.tensordot(hidden, table, [[-1], [1]]) + bias

    def level_logits(self, hidden, codes, level: int):
        """Logits over level ``level``'s codebook after ``codes[..., :level]``.

        ``loss="levels"``: the level head's logits. ``loss="tree"``: the
        log-sum-exp of the energies of the items below each code (very
        negative where no item continues the prefix), so that normalising over
        the existing codes gives the exact conditional of the item softmax.
        """
        if self.tree_loss:
            energies = self.energies(hidden)[..., None, :]                # (..., 1, n)
            catalogue = self.codes[1:]
            below = tf.reduce_all(catalogue[:, :level] == codes[..., None, :level], -1)
            one_hot = tf.transpose(tf.one_hot(catalogue[:, level], self.codebook_size)) > 0
            inside = below[..., None, :] & one_hot                       # (..., K, n)
            return tf.reduce_logsumexp(tf.where(inside, energies, -1e9), axis=-1)
        q = self.query(hidden, self.code_sum(codes, level), level)
        return tf.matmul(q, self.code_embeddings[level].embeddings, transpose_b=True) \
            + self.code_bias[level]

    def item_logits(self, hidden, items):
        """Logit of each item (token) in ``items`` after its full code: shape of ``items``.

        ``hidden`` broadcasts against ``items[..., None]``'s embedding.
        """
        codes = tf.gather(self.codes, items)
        identity, bias = self._identity(items)
        target = self.code_sum(codes, self.levels) + identity
        if self.tree_loss:
            for level in range(self.levels):
                bias = bias + tf.gather(self.code_bias[level], codes[..., level])
            return tf.reduce_sum(hidden * target, axis=-1) + bias
        q = self.query(hidden, self.code_sum(codes, self.levels), self.levels)
        return tf.reduce_sum(q * target, axis=-1) + bias

    def train_step(self, data):
        tokens, targets = data
        with tf.GradientTape() as tape:
            hidden = self(tokens, training=True)
            keep = targets > 0
            hidden = tf.boolean_mask(hidden, keep)
            labels = tf.boolean_mask(targets, keep)
            if self.tree_loss:
                # The item's log-probability: the sum of its steps' log-probabilities.
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels - 1, self.energies(hidden, training=True)))
            else:
                loss = self._levels_loss(hidden, labels)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    def _levels_loss(self, hidden, labels):
        """TIGER's loss: the per-level cross-entropies (teacher forcing) plus the in-cell step."""
        codes = tf.gather(self.codes, labels)
        loss = 0.0
        for level in range(self.levels):
            loss += tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                codes[:, level], self.level_logits(hidden, codes, level)))
        # Last step: which item among those with the same full code (teacher forcing).
        all_items = tf.range(1, tf.shape(self.codes)[0])
        same = tf.reduce_all(tf.gather(self.codes, all_items)[None] == codes[:, None], -1)
        same &= tf.gather(self.identity, all_items)[None] > 0
        q = self.query(hidden, self.code_sum(codes, self.levels), self.levels)
        identity, bias = self._identity(all_items)
        table = self.code_sum(tf.gather(self.codes, all_items), self.levels) + identity
        logits = tf.matmul(q, table, transpose_b=True) + bias
        logits = tf.where(same, logits, -1e9)
        loss += tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels - 1, logits))
        return loss
