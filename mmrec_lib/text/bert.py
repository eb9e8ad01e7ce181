"""Pretrained BERT through bert4keras: the fast sentence encoder :class:`BertTextEncoder`.

The checkpoint handling lives in ``_bert_checkpoint`` (locating, validating, converting
MiniLM) and the model loading in ``_bert_model``; their public names are re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from mmrec_lib._validation import check_choice, check_int
from mmrec_lib.errors import ParameterError
from mmrec_lib.text._bert_checkpoint import (
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    MINILM_NAME,
    VOCAB_FILE,
    BertCheckpoint,
    convert_minilm,
    find_checkpoint,
    hf_to_google_name,
    write_bert_checkpoint,
)
from mmrec_lib.text._bert_model import _LOCK, Bert, load_bert
from mmrec_lib.text.preprocessing import check_texts
from mmrec_lib.utils import check_is_fitted, progress

__all__ = [
    "CONFIG_FILE",
    "VOCAB_FILE",
    "CHECKPOINT_PREFIX",
    "MINILM_NAME",
    "BertCheckpoint",
    "Bert",
    "hf_to_google_name",
    "write_bert_checkpoint",
    "convert_minilm",
    "find_checkpoint",
    "load_bert",
    "BertTextEncoder",
]

# Encoders of the same model and settings share one traced function (guarded by _LOCK).
_FUNCTIONS: dict[tuple, Any] = {}


class BertTextEncoder(TransformerMixin, BaseEstimator):
    """Sentence vectors from a pretrained BERT: mean pooling, L2-normalised.

    Introduced in chapter 02. ``BertTextEncoder()`` uses the shipped MiniLM-L6
    (384-d) and reproduces sentence-transformers' ``all-MiniLM-L6-v2`` to a cosine
    of 0.9999+. It is fast on CPU: texts are sorted by length, so each batch holds
    texts of similar length and is padded only to its own longest text, and the model
    and the pooling run in one compiled ``tf.function`` whose signature leaves batch
    size and length open: it is traced once, whatever the shapes. (Rounding lengths up
    to buckets would only matter for per-shape compilers such as XLA; here it would
    just add padded work.)

    ``encode`` loads the model on first use; ``fit`` does the same explicitly (the
    pretrained model learns nothing from ``texts``), ``transform`` needs ``fit``.

    Parameters
    ----------
    checkpoint : path, optional
        A Google-format BERT folder (see :func:`load_bert`); None for MiniLM-L6.
    max_length : int
        Maximum number of tokens including [CLS] and [SEP]; longer texts are cut.
    batch_size : int
    pooling : {"mean", "cls"}
        Mean over the real tokens (what sentence-transformers does) or the [CLS] vector.
    normalize : bool
        L2-normalise each vector (cosine similarity = dot product).
    show_progress : bool, optional
        None shows a progress bar for more than 1,000 texts (unless MMREC_PROGRESS=0).
    data_dir : path, optional
        Cache folder for the converted MiniLM.

    Notes
    -----
    Tokenisation is bert4keras's WordPiece and matches Hugging Face's BERT tokenizer
    (lower-casing, accent stripping, CJK characters split, control characters removed,
    words over 100 characters -> [UNK]) with one documented exception: the literal
    text ``[MASK]`` (or ``[CLS]``, ...) in a title is plain text here ("[", "mask",
    "]"), whereas Hugging Face turns it into the special token. User text cannot
    inject special tokens.

    Examples
    --------
    >>> encoder = BertTextEncoder()                                # doctest: +SKIP
    >>> encoder.encode(["cat plays piano", "dog surfs"]).shape     # doctest: +SKIP
    (2, 384)
    """

    def __init__(self, checkpoint: str | os.PathLike | None = None, *, max_length: int = 128,
                 batch_size: int = 64, pooling: Literal["mean", "cls"] = "mean",
                 normalize: bool = True, show_progress: bool | None = None,
                 data_dir: str | os.PathLike | None = None):
        self.checkpoint = checkpoint
        self.max_length = max_length
        self.batch_size = batch_size
        self.pooling = pooling
        self.normalize = normalize
        self.show_progress = show_progress
        self.data_dir = data_dir

    # -- set-up ---------------------------------------------------------------------
    def _check_params(self) -> None:
        # max_length counts [CLS] and [SEP], so it is at least 2.
        check_int("max_length", self.max_length, low=2)
        check_int("batch_size", self.batch_size)
        check_choice("pooling", self.pooling, ("mean", "cls"))

    def fit(self, texts=None, y=None):
        """Load the pretrained model (``texts`` is ignored); return ``self``."""
        self._check_params()
        bert = load_bert(self.checkpoint, data_dir=self.data_dir)
        limit = int(bert.checkpoint.config.get("max_position_embeddings", 512))
        if self.max_length > limit:
            raise ParameterError(
                f"max_length={self.max_length} exceeds the model's "
                f"max_position_embeddings={limit}"
            )
        self.bert_ = bert
        self.tokenizer_ = bert.tokenizer
        self.embedding_dim_ = bert.checkpoint.hidden_size
        self._function = None
        return self

    def _compiled(self):
        function = getattr(self, "_function", None)
        if function is None:
            # Encoders of the same model and settings share one traced function:
            # tracing the whole BERT graph takes seconds.
            key = (id(self.bert_.model), self.pooling, bool(self.normalize))
            with _LOCK:
                if key not in _FUNCTIONS:
                    _FUNCTIONS[key] = _pooling_function(self.bert_.model, self.pooling,
                                                        bool(self.normalize))
                function = self._function = _FUNCTIONS[key]
        return function

    # -- tokenisation ---------------------------------------------------------------
    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of one text as the model sees them (unknown pieces as [UNK]).

        With [CLS] and [SEP], cut at ``max_length``.
        """
        if not isinstance(text, str):
            raise ParameterError(f"text={text!r} has type {type(text).__name__}; expected str")
        if not hasattr(self, "bert_"):
            self.fit()
        ids = self.tokenizer_.encode(text, maxlen=self.max_length)[0]
        return self.tokenizer_.ids_to_tokens(ids)

    def token_ids(self, texts) -> list[list[int]]:
        """Token ids of each text, with [CLS] and [SEP], cut at ``max_length``."""
        texts = check_texts(texts)
        if not hasattr(self, "bert_"):
            self.fit()
        return [self.tokenizer_.encode(t, maxlen=self.max_length)[0] for t in texts]

    # -- encoding -------------------------------------------------------------------
    def encode(self, texts, *, batch_size: int | None = None) -> np.ndarray:
        """Encode texts into sentence vectors.

        Parameters
        ----------
        texts : list of str (or array / Series of str), non-empty
        batch_size : int, optional
            Overrides ``self.batch_size``.

        Returns
        -------
        ndarray of shape (n_texts, hidden_size), float32
            Rows in the order of ``texts``; unit L2 norm if ``normalize``.
            Empty and whitespace-only texts give the vector of "[CLS] [SEP]".
        """
        texts = check_texts(texts)
        if batch_size is None:
            batch_size = self.batch_size
        batch_size = check_int("batch_size", batch_size)
        if not hasattr(self, "bert_"):
            self.fit()
        self._check_params()
        return self._encode(texts, batch_size)

    def transform(self, texts) -> np.ndarray:
        """Same as :meth:`encode`, after ``fit`` (scikit-learn pipelines)."""
        check_is_fitted(self)
        return self.encode(texts)

    def _encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        ids = [self.tokenizer_.encode(t, maxlen=self.max_length)[0] for t in texts]
        lengths = np.array([len(i) for i in ids])
        # Longest first (as sentence-transformers does): the first batch hits the
        # largest shape, so memory peaks early, and neighbours have similar lengths.
        order = np.argsort(-lengths, kind="stable")
        output = np.empty((len(texts), self.embedding_dim_), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        show = self.show_progress
        if show or (show is None and len(texts) > 1000):
            # MMREC_PROGRESS=0 still hides the bar (utils.progress decides).
            starts = progress(starts, total=len(starts), desc="BERT")
        function = self._compiled()
        for start in starts:
            rows = order[start:start + batch_size]
            width = int(lengths[rows].max())
            batch = np.zeros((len(rows), width), dtype=np.int32)
            for r, row in enumerate(rows):
                batch[r, : lengths[row]] = ids[row]
            output[rows] = function(batch).numpy()
        return output

    def cache_key(self) -> dict:
        """Settings that determine the vectors (used to key cached features)."""
        if self.checkpoint is None:
            model = MINILM_NAME
        else:
            info = self.bert_.checkpoint if hasattr(self, "bert_") else \
                find_checkpoint(self.checkpoint)
            digest = hashlib.sha256(json.dumps(info.config, sort_keys=True).encode())
            digest.update(Path(str(info.prefix) + ".index").read_bytes())
            model = f"{info.directory.name}-{digest.hexdigest()[:12]}"
        return {"encoder": "bert", "model": model, "max_length": self.max_length,
                "pooling": self.pooling, "normalize": bool(self.normalize)}


def _pooling_function(model, pooling: str, normalize: bool):
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()

    # One trace for every batch shape: the signature leaves batch and length open.
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def embed(token_ids):
        hidden = model([token_ids, tf.zeros_like(token_ids)], training=False)
        if pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = tf.cast(tf.not_equal(token_ids, 0), hidden.dtype)[:, :, None]
            counts = tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
            vectors = tf.reduce_sum(hidden * mask, axis=1) / counts
        if normalize:
            vectors = tf.math.l2_normalize(vectors, axis=1, epsilon=1e-24)
        return vectors

    return embed
