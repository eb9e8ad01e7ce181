"""Keras 2 network of the semantic-ID generator (imported only when one is fitted).

A GPT over code tokens: a history of items becomes the flat stream of their
semantic-ID tokens (each level has its own token range, so a token also says
its level), and the network predicts every next token. Built from the blocks
of SASRec (:mod:`mmrec_lib.sequential._networks`).
"""

from __future__ import annotations

from mmrec_lib._env import import_tensorflow
from mmrec_lib.sequential._networks import _CausalBlock, causal_decode

__all__ = ["CodeTokenNetwork"]

tf = import_tensorflow()
keras = tf.keras


class CodeTokenNetwork(keras.Model):
    """Token + position embedding, causal decoder blocks, tied output over the code vocabulary.

    ``call(tokens)`` maps a left-padded (batch, max_tokens) int matrix to hidden
    states (batch, max_tokens, embedding_dim); :meth:`token_logits` maps hidden
    states to logits over the ``vocabulary_size`` tokens (0 is padding).
    """

    def __init__(self, vocabulary_size: int, *, max_tokens: int, embedding_dim: int,
                 num_blocks: int, num_heads: int, dropout: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = embedding_dim
        normal = keras.initializers.TruncatedNormal
        self.token_embedding = keras.layers.Embedding(
            vocabulary_size, embedding_dim, name="token_embedding",
            embeddings_initializer=normal(stddev=0.02, seed=seed))
        self.position_embedding = keras.layers.Embedding(
            max_tokens, embedding_dim, name="position_embedding",
            embeddings_initializer=normal(stddev=0.02, seed=seed + 1))
        self.token_bias = self.add_weight(name="token_bias", shape=(vocabulary_size,),
                                          initializer="zeros", trainable=True)
        self.input_dropout = keras.layers.Dropout(dropout, seed=seed + 2)
        self.blocks = [_CausalBlock(embedding_dim, num_heads, dropout, seed + 10 * (b + 1),
                                    name=f"block_{b}") for b in range(num_blocks)]
        self.final_norm = keras.layers.LayerNormalization(epsilon=1e-6)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, tokens, training=None):
        return causal_decode(self, self.token_embedding, tokens, training=training)

    def token_logits(self, hidden):
        """Logits of every token (padding included, never a target): (..., vocabulary_size)."""
        return tf.matmul(hidden, self.token_embedding.embeddings, transpose_b=True) \
            + self.token_bias

    def train_step(self, data):
        tokens, targets = data
        with tf.GradientTape() as tape:
            hidden = self(tokens, training=True)
            keep = targets > 0
            logits = self.token_logits(tf.boolean_mask(hidden, keep))
            labels = tf.boolean_mask(targets, keep)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}
