"""Keras 2 networks of the neural next-item models (imported only when one is fitted or loaded).

Both networks map a left-padded token matrix (batch, max_len) to one hidden
vector per position (batch, max_len, embedding_dim); the logit of item ``j``
at a position is ``hidden . E[j] + b[j]`` with ``E`` the input item embedding
(weight tying, as in SASRec). Training minimises the full softmax
cross-entropy of the next item at every non-padding position.
"""

from __future__ import annotations

import numpy as np

from mmrec_lib._env import import_tensorflow
from mmrec_lib.sequential.evaluation import next_item_metrics

__all__ = ["NextItemNetwork", "SASRecNetwork", "GRU4RecNetwork", "causal_attention_mask",
           "ValidationRanking", "smoothed_cross_entropy", "fit_with_validation"]

tf = import_tensorflow()
keras = tf.keras


def causal_attention_mask(tokens):
    """Boolean mask (batch, max_len, max_len): query ``t`` may attend to key ``s`` iff ``s <= t``.

    Padding keys are masked too, except that every position may attend to
    itself, so no row is fully masked (a padding row's output is zeroed later).
    """
    length = tf.shape(tokens)[1]
    causal = tf.cast(tf.linalg.band_part(tf.ones((length, length)), -1, 0), tf.bool)
    key_valid = (tokens > 0)[:, None, :]
    itself = tf.cast(tf.eye(length), tf.bool)[None]
    return causal[None] & (key_valid | itself)


def causal_decode(network, token_embedding, tokens, training=None):
    """The decoder's forward pass, shared by SASRec and the semantic-ID generator.

    Scaled token embeddings plus learned positions, input dropout, the causal
    blocks and a final layer norm; padded positions (token 0) stay zero
    throughout. ``network`` provides ``embedding_dim``, ``position_embedding``,
    ``input_dropout``, ``blocks`` and ``final_norm``.
    """
    valid = tf.cast(tokens > 0, tf.float32)[..., None]
    positions = tf.range(tf.shape(tokens)[1])
    x = token_embedding(tokens) * float(np.sqrt(network.embedding_dim))
    x = x + network.position_embedding(positions)[None]
    x = network.input_dropout(x, training=training) * valid
    mask = causal_attention_mask(tokens)
    for block in network.blocks:
        x = block(x, mask, training=training) * valid
    return network.final_norm(x) * valid


def smoothed_cross_entropy(labels, logits, smoothing: float):
    """Softmax cross-entropy against ``(1 - smoothing) * one_hot + smoothing / n_items``.

    Label smoothing (Szegedy et al., 2016): the target keeps ``1 - smoothing`` of
    the probability mass, the rest is spread evenly over the catalogue, which
    keeps the logits from growing without bound on a small data set.
    """
    log_p = tf.nn.log_softmax(logits)
    target = -tf.gather(log_p, labels, batch_dims=1)
    uniform = -tf.reduce_mean(log_p, axis=-1)
    return (1.0 - smoothing) * target + smoothing * uniform


class NextItemNetwork(keras.Model):
    """Item embedding, output bias and the masked full-softmax training step."""

    def __init__(self, num_items: int, *, embedding_dim: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.num_items = num_items
        self.embedding_dim = embedding_dim
        self.item_embedding = keras.layers.Embedding(
            num_items + 1, embedding_dim, name="item_embedding",
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02, seed=seed))
        self.item_bias = self.add_weight(name="item_bias", shape=(num_items + 1,),
                                         initializer="zeros", trainable=True)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def item_logits(self, hidden):
        """Logits over the catalogue (token 1 .. n_items -> column 0 .. n_items - 1)."""
        table = self.item_embedding.embeddings[1:]
        return tf.matmul(hidden, table, transpose_b=True) + self.item_bias[1:]

    @property
    def metrics(self):
        return [self.loss_tracker]

    def use_sampled_softmax(self, log_q: np.ndarray, num_negatives: int, seed: int) -> None:
        """Train with a sampled softmax: negatives drawn by ``q``, logits corrected by ``-log q``."""
        self.log_q = tf.constant(log_q, tf.float32)
        self.num_negatives = int(num_negatives)
        self.sample_seed = int(seed)

    def _sampled_loss(self, hidden, labels):
        negatives = tf.random.categorical(self.log_q[None], self.num_negatives,
                                          dtype=tf.int32, seed=self.sample_seed)[0]
        table = self.item_embedding.embeddings[1:]
        bias = self.item_bias[1:]
        positive = (tf.reduce_sum(hidden * tf.gather(table, labels), axis=-1)
                    + tf.gather(bias, labels) - tf.gather(self.log_q, labels))
        negative = (tf.matmul(hidden, tf.gather(table, negatives), transpose_b=True)
                    + tf.gather(bias, negatives) - tf.gather(self.log_q, negatives))
        # A drawn negative that is the target itself is not a negative.
        negative = tf.where(negatives[None, :] == labels[:, None], -1e9, negative)
        logits = tf.concat([positive[:, None], negative], axis=1)
        return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.zeros_like(labels), logits)

    def train_step(self, data):
        tokens, targets = data
        with tf.GradientTape() as tape:
            hidden = self(tokens, training=True)
            # Only positions with a next item are trained; gathering them first
            # also skips the logits of the padding.
            keep = targets > 0
            kept = tf.boolean_mask(hidden, keep)
            labels = tf.boolean_mask(targets, keep) - 1
            if getattr(self, "log_q", None) is not None:
                loss = tf.reduce_mean(self._sampled_loss(kept, labels))
            elif getattr(self, "label_smoothing", 0.0) > 0:
                loss = tf.reduce_mean(smoothed_cross_entropy(
                    labels, self.item_logits(kept), self.label_smoothing))
            else:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels, self.item_logits(kept)))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


class _CausalBlock(keras.layers.Layer):
    """Pre-norm transformer decoder block: causal self-attention, then a feed-forward net."""

    def __init__(self, embedding_dim: int, num_heads: int, dropout: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        initializer = keras.initializers.GlorotUniform(seed=seed)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        self.attention = keras.layers.MultiHeadAttention(
            num_heads=num_heads, key_dim=embedding_dim // num_heads, dropout=dropout,
            kernel_initializer=initializer)
        self.feed_forward_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        self.feed_forward = keras.Sequential([
            keras.layers.Dense(embedding_dim, activation="relu", kernel_initializer=initializer),
            keras.layers.Dropout(dropout, seed=seed),
            keras.layers.Dense(embedding_dim, kernel_initializer=initializer),
        ])
        self.dropout = keras.layers.Dropout(dropout, seed=seed + 1)

    def call(self, x, mask, training=None):
        h = self.attention_norm(x)
        x = x + self.dropout(self.attention(h, h, attention_mask=mask, training=training),
                             training=training)
        h = self.feed_forward_norm(x)
        return x + self.dropout(self.feed_forward(h, training=training), training=training)


class SASRecNetwork(NextItemNetwork):
    """SASRec (Kang & McAuley, 2018): a GPT over item tokens.

    Item embedding times sqrt(dim) plus a learned position embedding, dropout,
    ``num_blocks`` causal decoder blocks, a final layer norm; padding positions
    are zeroed after every step.
    """

    def __init__(self, num_items: int, *, max_len: int, embedding_dim: int, num_blocks: int,
                 num_heads: int, dropout: float, seed: int, **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, seed=seed, **kwargs)
        self.position_embedding = keras.layers.Embedding(
            max_len, embedding_dim, name="position_embedding",
            embeddings_initializer=keras.initializers.TruncatedNormal(stddev=0.02,
                                                                      seed=seed + 1))
        self.input_dropout = keras.layers.Dropout(dropout, seed=seed + 2)
        self.blocks = [_CausalBlock(embedding_dim, num_heads, dropout, seed + 10 * (b + 1),
                                    name=f"block_{b}") for b in range(num_blocks)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-6)

    def call(self, tokens, training=None):
        return causal_decode(self, self.item_embedding, tokens, training=training)


class GRU4RecNetwork(NextItemNetwork):
    """GRU4Rec (Hidasi et al., 2016) with full softmax: embedding -> GRU -> projection."""

    def __init__(self, num_items: int, *, embedding_dim: int, dropout: float, seed: int,
                 **kwargs):
        super().__init__(num_items, embedding_dim=embedding_dim, seed=seed, **kwargs)
        self.input_dropout = keras.layers.Dropout(dropout, seed=seed + 1)
        self.gru = keras.layers.GRU(
            embedding_dim, return_sequences=True,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2),
            recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 3))
        self.output_dropout = keras.layers.Dropout(dropout, seed=seed + 4)
        self.projection = keras.layers.Dense(
            embedding_dim, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 5))

    def call(self, tokens, training=None):
        x = self.input_dropout(self.item_embedding(tokens), training=training)
        h = self.gru(x, mask=tokens > 0, training=training)
        return self.projection(self.output_dropout(h, training=training))


class ValidationRanking(keras.callbacks.Callback):
    """After each epoch: full-ranking NDCG@10 of the validation targets; early stopping.

    Keeps the best epoch's weights and puts them back when training ends.
    """

    def __init__(self, score, targets, exclude, *, patience: int | None, k: int = 10):
        super().__init__()
        self.score = score
        self.targets = targets
        self.exclude = exclude
        self.patience = patience
        self.k = k
        self.values: list[float] = []
        self.best_epoch = 0
        self._best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = float(next_item_metrics(self.score(), self.targets, self.exclude,
                                        k=self.k)[f"ndcg@{self.k}"])
        self.values.append(value)
        if logs is not None:
            logs[f"val_ndcg@{self.k}"] = value
        if self._best_weights is None or value > max(self.values[:-1]):
            self.best_epoch = epoch + 1
            self._best_weights = self.model.get_weights()
        elif self.patience is not None and epoch + 1 - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            self.model.set_weights(self._best_weights)


def fit_with_validation(model, dataset, sequences, validation, score, *, exclude_more=None):
    """Fit ``model.network_`` on ``dataset``; early stopping on validation NDCG@10 if given.

    The one training loop of the neural next-item models (SASRec, GRU4Rec, the side-feature
    SASRec, the semantic-ID generator). ``validation`` is ``(users, target_tokens)`` or None;
    ``score(histories)`` returns the model's scores of every catalogue item for those token
    histories; ``exclude_more(exclude, target_tokens)`` may add items a validation target is
    not ranked against (e.g. clips not yet released). Sets ``model.history_`` (``loss`` and,
    with validation, ``val_ndcg@10``) and ``model.best_epoch_``.
    """
    callbacks = []
    if validation is not None:
        users, target_tokens = validation
        histories = [sequences[u] for u in users]
        exclude = [np.setdiff1d(np.unique(h - 1), [t - 1]) for h, t in
                   zip(histories, target_tokens, strict=True)]
        if exclude_more is not None:
            exclude = exclude_more(exclude, target_tokens)
        callbacks.append(ValidationRanking(
            lambda: score(histories), target_tokens.astype(np.int64) - 1,
            exclude, patience=model.patience))
    history = model.network_.fit(dataset, epochs=model.epochs, verbose=0, callbacks=callbacks)
    model.history_ = {"loss": [float(v) for v in history.history["loss"]]}
    model.best_epoch_ = len(model.history_["loss"])
    if callbacks:
        model.history_["val_ndcg@10"] = callbacks[0].values
        model.best_epoch_ = callbacks[0].best_epoch
