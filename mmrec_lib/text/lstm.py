"""A word vocabulary and a Keras LSTM text encoder trained from scratch (chapter 02)."""

from __future__ import annotations

from collections import Counter
from typing import Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._env import import_tensorflow
from mmrec_lib._validation import check_int, check_number
from mmrec_lib.text.preprocessing import check_texts, tokenize_words
from mmrec_lib.utils import check_is_fitted

__all__ = ["PAD_ID", "OOV_ID", "WordVocabulary", "LstmTextEncoder"]

tf = import_tensorflow()
keras = tf.keras

#: Id 0 pads (and is masked by the LSTM); id 1 stands for words not in the vocabulary.
PAD_ID = 0
OOV_ID = 1


class WordVocabulary(TransformerMixin, BaseEstimator):
    """Texts -> padded word ids, for :class:`LstmTextEncoder`.

    Introduced in chapter 02. ``fit`` keeps the ``max_words`` most frequent words
    seen at least ``min_count`` times (ties broken alphabetically); ids start at 2
    (0 pads, 1 is out-of-vocabulary). Words come from
    :func:`mmrec_lib.text.tokenize_words` (jieba for Chinese), stop words kept:
    an LSTM reads word order, so "not" and "no" matter.

    Parameters
    ----------
    max_words : int
    max_length : int
        Sequences are cut or right-padded to this length.
    min_count : int
    language : {"auto", "en", "zh"}

    Attributes
    ----------
    vocabulary_ : dict of str -> int
    vocab_size_ : int
        ``len(vocabulary_) + 2`` (the size of the embedding table).
    """

    def __init__(self, *, max_words: int = 20000, max_length: int = 32, min_count: int = 1,
                 language: Literal["auto", "en", "zh"] = "auto"):
        self.max_words = max_words
        self.max_length = max_length
        self.min_count = min_count
        self.language = language

    def fit(self, texts, y=None):
        check_int("max_words", self.max_words)
        check_int("max_length", self.max_length)
        check_int("min_count", self.min_count)
        counts = Counter(w for t in check_texts(texts)
                         for w in tokenize_words(t, language=self.language))
        kept = sorted((w for w, c in counts.items() if c >= self.min_count),
                      key=lambda w: (-counts[w], w))[: self.max_words]
        self.vocabulary_ = {w: k + 2 for k, w in enumerate(kept)}
        self.vocab_size_ = len(self.vocabulary_) + 2
        return self

    def transform(self, texts) -> np.ndarray:
        """Return an int32 ndarray of shape (n_texts, max_length)."""
        check_is_fitted(self)
        texts = check_texts(texts)
        ids = np.full((len(texts), self.max_length), PAD_ID, dtype=np.int32)
        for row, text in enumerate(texts):
            words = tokenize_words(text, language=self.language)[: self.max_length]
            ids[row, : len(words)] = [self.vocabulary_.get(w, OOV_ID) for w in words]
        return ids


@keras.utils.register_keras_serializable(package="mmrec")
class LstmTextEncoder(keras.Model):
    """Word ids -> a text vector: embedding, (bidirectional) LSTM, optional projection.

    Introduced in chapter 02 (the seed article's text branch), reused as the text
    tower of the chapter 08 model. Padding (id 0) is masked, so the LSTM reads only
    the real words. Train it inside a larger model with ``model.fit``.

    Parameters
    ----------
    vocab_size : int
        Size of the embedding table (``WordVocabulary.vocab_size_``).
    embedding_dim : int
    units : int
        LSTM units (per direction).
    bidirectional : bool
    output_dim : int, optional
        Add a ``Dense(output_dim, tanh)`` projection.
    dropout : float
        Dropout on the embeddings while training.

    Call
    ----
    token_ids : int tensor of shape (batch, length)
        returns float tensor of shape (batch, output_dim or units * (2 if bidirectional)).

    Examples
    --------
    >>> encoder = LstmTextEncoder(vocab_size=1000, units=32)           # doctest: +SKIP
    >>> encoder(np.ones((2, 8), "int32")).shape                         # doctest: +SKIP
    TensorShape([2, 64])
    """

    def __init__(self, vocab_size: int, *, embedding_dim: int = 64, units: int = 64,
                 bidirectional: bool = True, output_dim: int | None = None,
                 dropout: float = 0.0, **kwargs):
        check_int("vocab_size", vocab_size, low=2)
        check_int("embedding_dim", embedding_dim)
        check_int("units", units)
        if output_dim is not None:
            check_int("output_dim", output_dim)
        check_number("dropout", dropout, low=0.0, high=1.0, high_inclusive=False)
        kwargs.setdefault("name", "lstm_text_encoder")
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.embedding_dim = int(embedding_dim)
        self.units = int(units)
        self.bidirectional = bool(bidirectional)
        self.output_dim = None if output_dim is None else int(output_dim)
        self.dropout = float(dropout)
        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim,
                                                mask_zero=True, name="word_embedding")
        self.embedding_dropout = keras.layers.Dropout(self.dropout, name="embedding_dropout")
        lstm = keras.layers.LSTM(self.units, name="lstm")
        self.lstm = keras.layers.Bidirectional(lstm, name="bilstm") if self.bidirectional \
            else lstm
        self.projection = None if self.output_dim is None else keras.layers.Dense(
            self.output_dim, activation="tanh", name="projection")
        self.vector_dim = self.output_dim or self.units * (2 if self.bidirectional else 1)

    def call(self, token_ids, training=None):
        x = self.embedding(token_ids)
        x = self.embedding_dropout(x, training=training)
        x = self.lstm(x, mask=self.embedding.compute_mask(token_ids), training=training)
        if self.projection is not None:
            x = self.projection(x)
        return x

    def get_config(self) -> dict:
        return {"vocab_size": self.vocab_size, "embedding_dim": self.embedding_dim,
                "units": self.units, "bidirectional": self.bidirectional,
                "output_dim": self.output_dim, "dropout": self.dropout, "name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        vocab_size = config.pop("vocab_size")
        return cls(vocab_size, **config)
