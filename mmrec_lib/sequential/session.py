"""Session-aware, personal SASRec: time gaps, a user vector and explicit series / creator terms.

Introduced in chapter 09. :class:`~mmrec_lib.sequential.SideSASRecModel` sees
an item sequence and nothing else, which on MiniClips leaves three things it
cannot know or can barely learn:

- **Where sessions start.** A short-video session is a burst of views minutes
  apart; the next burst may be days later with another focus. Which of the
  recent views belong to the session in progress (and whether the request
  starts a new one) is in the timestamps only. Each token here adds a learned
  embedding of the (log-bucketed) gap since the previous view, and of the gap
  to the next event: the request time, which a live system knows (TiSASRec,
  Li et al. 2020, uses time intervals in the attention instead).
- **The user's standing taste.** A learned vector per training user is added
  to the decoder's output (SSE-PT, Wu et al. 2020, adds one to the input), with
  an L2 penalty: the full softmax over the available items then fits it by
  penalised maximum likelihood, as a choice model fits a user's parameters,
  while the decoder keeps the short-term part. A history of an unknown user
  gets the zero vector.
- **Conjunctions over the history.** "The next episode of a series the user has
  watched" (series *and* episode number + 1) and "the creator of the last view,
  within the same session" (creator *and* a short gap) are conjunctions that a
  sum of side embeddings cannot express. They enter the logits as two explicit
  features with learned weights (one per gap bucket for the creator), the
  factorised-Markov idea of FPMC (Rendle et al. 2010) written out for series
  and creators.

Optionally, ``intents=K`` adds a **latent-intent output head**, the mechanism of
:class:`~mmrec_lib.sequential.SessionIntentModel` written into the Transformer.
Attention averages the history; it cannot sum the evidence each view of the
session gives on the session's purpose. The head does it in closed form: each
item belongs softly to ``K`` intents, ``m_j = softmax(e_j A)`` from its token
embedding; under intent ``f`` the next view follows the softmax (over the
position's choice set) of the usual logits plus ``s m_jf``; each earlier view
of the session in progress (views at most 20 minutes apart) multiplies the
intent's prior, read from the decoder's output, by its probability under
that intent (Bayes' rule); the output mixes the ``K`` laws by the posterior.
A request that starts a new session gets the prior alone. The head needs the
view times (without them every view is its own session and only the prior
mixes); it is still one network, trained and served alone.

Optionally, ``fit(..., teacher=model)`` **distils** another fitted model into
the Transformer (Hinton et al. 2015): at every training position the loss
mixes the usual cross-entropy with the cross-entropy from the teacher's
next-view distribution over the same choice set, weighted ``teacher_weight``.
The served model is the Transformer alone. On MiniClips the teacher is
:class:`~mmrec_lib.sequential.SessionIntentModel`, whose full-batch fit of each
user's taste the Transformer's SGD does not match on its own.

The rest (content + side tokens, training over the available items, new
items, save / load) is :class:`SideSASRecModel`'s. TensorFlow loads lazily.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_number
from mmrec_lib.errors import DataError, ModelError, NotFittedError, ParameterError
from mmrec_lib.interactions import TIMESTAMP_COL, IdEncoder
from mmrec_lib.sequential.data import pad_sequences, sort_interactions
from mmrec_lib.sequential.side import SideSASRecModel, _side_network_class, split_by_user
from mmrec_lib.utils import check_is_fitted

__all__ = ["SessionSASRecModel", "gap_buckets", "GAP_EDGES_S", "GAP_LABELS"]

# Above this many (training positions x items) cells the teacher's table would not fit in
# memory (4 bytes each).
_MAX_TEACHER_CELLS = 300_000_000

#: Upper edges (seconds) of the gap buckets: 1, 2, 5, 10, 20 min, 1 h, 4 h, 1, 3, 7, 30 days.
GAP_EDGES_S = (60, 120, 300, 600, 1200, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400,
               30 * 86400)
#: Names of the buckets 1 .. len(GAP_EDGES_S) + 1 (bucket 0: unknown).
GAP_LABELS = ("<=1 min", "<=2 min", "<=5 min", "<=10 min", "<=20 min", "<=1 h", "<=4 h",
              "<=1 day", "<=3 days", "<=7 days", "<=30 days", ">30 days")
# Gap buckets 1 .. this one (at most 20 minutes) continue a session (the intent head).
_CONTINUES_BUCKET = 1 + GAP_EDGES_S.index(1200)


def gap_buckets(gaps_s, edges=GAP_EDGES_S) -> np.ndarray:
    """Bucket of each time gap in seconds: ``1 + number of edges below it``; NaN -> 0 (unknown).

    Introduced in chapter 09. Bucket 0 means "no gap known" (padding, the
    first view, or no timestamps).

    Examples
    --------
    >>> gap_buckets([30, 90, 7200, float("nan")]).tolist()
    [1, 2, 7, 0]
    """
    gaps = np.asarray(gaps_s, dtype=np.float64)
    if np.any(gaps[~np.isnan(gaps)] < 0):
        raise DataError("a time gap is negative: the times of a history must not decrease")
    buckets = 1 + np.searchsorted(np.asarray(edges, dtype=np.float64), gaps, side="left")
    return np.where(np.isnan(gaps), 0, buckets).astype(np.int32)


def _seconds(values) -> np.ndarray:
    """Timestamps (datetime64 or numbers of seconds) as float seconds; NaT / NaN -> NaN."""
    array = np.asarray(values)
    if np.issubdtype(array.dtype, np.datetime64):
        out = array.astype("datetime64[s]").astype(np.int64).astype(np.float64)
        out[np.isnat(array)] = np.nan
        return out
    if array.dtype == object:
        converted = pd.to_datetime(pd.Series(array), errors="coerce")
        if converted.notna().sum() == pd.notna(array).sum():
            return _seconds(converted.to_numpy())
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"times must be datetimes or numbers of seconds, got {array.dtype}"
                        ) from error


def next_episode_rows(series_codes, episodes) -> np.ndarray:
    """Row of the next episode (episode + 1, same series) of each item; -1 if there is none.

    ``series_codes``: int per item, 0 = no series; ``episodes``: int per item, -1 = none.
    """
    keyed = [(int(s), int(e)) for s, e in zip(series_codes, episodes, strict=True)]
    position = {key: k for k, key in enumerate(keyed) if key[0] > 0 and key[1] >= 0}
    out = np.full(len(keyed), -1, np.int64)
    for k, (s, e) in enumerate(keyed):
        if s > 0 and e >= 0:
            out[k] = position.get((s, e + 1), -1)
    return out


def timed_histories(item_ids, user_ids, histories, *, times=None, at=None, users=None,
                    unknown: str = "error") -> tuple[list, list, np.ndarray, np.ndarray]:
    """Checked histories with their view times, request times and users (chapter 09 models).

    Returns ``(indices, stamps, at, user_index)``: per history the catalogue
    indices of its known items and their times in seconds (``None`` without
    ``times``), the request times in seconds (NaN: unknown) and each user's index
    in ``user_ids`` (-1: unknown or not given). Raises
    :class:`~mmrec_lib.errors.ParameterError` / :class:`~mmrec_lib.errors.DataError`
    naming the problem (an empty batch or history, mismatched lengths, unknown items
    with ``unknown="error"``).
    """
    if unknown not in ("error", "drop"):
        raise ParameterError(f"unknown={unknown!r} must be 'error' or 'drop'")
    if isinstance(histories, (str, bytes)) or not isinstance(
            histories, (Sequence, np.ndarray, pd.Series)):
        raise ParameterError("histories must be a sequence of item-id sequences")
    histories = list(histories)
    n = len(histories)
    if n == 0:
        raise ParameterError("histories is empty: there is no history to score")
    times = [None] * n if times is None else list(times)
    if len(times) != n:
        raise ParameterError(f"times has {len(times)} rows for {n} histories")
    at = np.full(n, np.nan) if at is None else _seconds(np.asarray(at))
    if at.shape != (n,):
        raise ParameterError(f"at must hold one request time per history ({n}); got "
                             f"shape {at.shape}")
    user_index = np.full(n, -1)
    if users is not None:
        users = np.asarray(users)
        if users.shape != (n,):
            raise ParameterError(f"users must hold one user id per history ({n})")
        user_index = IdEncoder(unknown="ignore").fit(user_ids).transform(users)
    lookup = IdEncoder(unknown="ignore").fit(item_ids)
    indices, stamps = [], []
    for row, history in enumerate(histories):
        if isinstance(history, (str, bytes)) or np.ndim(history) != 1:
            raise ParameterError(f"history {row} must be a 1-D sequence of item ids")
        index = lookup.transform(np.asarray(history)) if len(history) else np.zeros(0, int)
        if unknown == "error" and (index < 0).any():
            raise DataError(f"history {row} has item(s) outside the catalogue, e.g. "
                            f"{np.asarray(history)[index < 0][:5].tolist()}")
        keep = index >= 0
        if not keep.any():
            raise DataError(f"history {row} is empty (or has no item of the catalogue); "
                            "a next-item model needs at least one known item")
        indices.append(index[keep].astype(np.int64))
        if times[row] is None:
            stamps.append(None)
        else:
            row_times = _seconds(np.asarray(times[row]))
            if len(row_times) != len(history):
                raise ParameterError(f"times[{row}] has {len(row_times)} values for "
                                     f"{len(history)} items")
            stamps.append(row_times[keep])
    return indices, stamps, at, user_index


@functools.cache
def _session_network_class():
    """The Keras network class, defined on first use so that TensorFlow loads lazily."""
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    keras = tf.keras

    class SessionSASRecNetwork(_side_network_class()):
        """Side SASRec + gap embeddings on the tokens, a user vector, explicit terms.

        Input: ``tokens`` alone, or ``(tokens, gap_in, gap_out, users)`` with
        ``users`` = user index + 1 (0: unknown user, zero vector).
        """

        def __init__(self, content, side_codes, side_sizes, *, num_users: int, num_gaps: int,
                     next_item, creator, transitions: bool, intents: int = 0, **kwargs):
            super().__init__(content, side_codes, side_sizes, **kwargs)
            seed = kwargs["seed"]
            normal = keras.initializers.TruncatedNormal
            self.gap_in = keras.layers.Embedding(
                num_gaps, self.embedding_dim, name="gap_in_embedding",
                embeddings_initializer=normal(stddev=0.02, seed=seed + 40))
            self.gap_out = keras.layers.Embedding(
                num_gaps, self.embedding_dim, name="gap_out_embedding",
                embeddings_initializer=normal(stddev=0.02, seed=seed + 41))
            self.user_embedding = keras.layers.Embedding(
                num_users + 1, self.embedding_dim, name="user_embedding",
                embeddings_initializer="zeros")
            self.transitions = transitions
            # Token -> token of its next episode (0: none); token -> creator code (0: none).
            self.next_item = tf.constant(next_item, tf.int32)
            self.creator = tf.constant(creator, tf.int32)
            # Explicit weights, scaled by 10 so that Adam's bounded steps reach weights of a
            # few units within the few hundred steps a small data set gives.
            self.next_weight = self.add_weight(name="next_episode_weight", shape=(),
                                               initializer="zeros")
            self.creator_weight = self.add_weight(name="same_creator_weight",
                                                  shape=(num_gaps,), initializer="zeros")
            # Distillation (set by the model's fit): the teacher's log-probabilities, one row
            # per training position (row 0: none), and the weight of their cross-entropy.
            self.soft_table = None
            self.teacher_weight = 0.0
            self.intents = int(intents)
            if self.intents:
                # The latent-intent head: topic memberships of the items, the intent prior
                # read from the decoder's output, the intent term's scale (1 + 10 * s).
                dim = self.embedding_dim
                self.topic_kernel = self.add_weight(
                    name="intent_topics", shape=(dim, self.intents),
                    initializer=normal(stddev=1.0 / np.sqrt(dim), seed=seed + 50))
                self.prior_kernel = self.add_weight(name="intent_prior_kernel",
                                                    shape=(dim, self.intents),
                                                    initializer="zeros")
                self.prior_bias = self.add_weight(name="intent_prior_bias",
                                                  shape=(self.intents,), initializer="zeros")
                self.intent_scale = self.add_weight(name="intent_scale", shape=(),
                                                    initializer="zeros")

        def _unpack(self, inputs):
            if isinstance(inputs, (tuple, list)):
                return tuple(tf.convert_to_tensor(x, tf.int32) for x in inputs)
            tokens = tf.convert_to_tensor(inputs, tf.int32)
            zeros = tf.zeros_like(tokens)
            return tokens, zeros, zeros, tf.zeros_like(tokens[:, 0])

        def call(self, inputs, training=None):
            from mmrec_lib.sequential._networks import causal_decode

            tokens, gap_in, gap_out, users = self._unpack(inputs)
            table = self.token_table()
            gaps = self.gap_in(gap_in) + self.gap_out(gap_out)

            def embed(t):
                # causal_decode scales the token part by sqrt(dim); the gaps are added as is.
                return tf.gather(table, t) + gaps / float(np.sqrt(self.embedding_dim))

            hidden = causal_decode(self, embed, tokens, training=training)
            known = tf.cast(users > 0, tf.float32)[:, None, None]
            valid = tf.cast(tokens > 0, tf.float32)[..., None]
            return hidden + self.user_embedding(users)[:, None, :] * known * valid

        def context_logits(self, hidden, tokens, gap_out):
            """Logits (batch, positions, n_items) with the explicit terms at every position."""
            logits = self.item_logits(hidden)
            if not self.transitions:
                return logits
            watched_next = tf.gather(self.next_item, tokens)
            followed = tf.cumsum(tf.one_hot(watched_next, self.num_items + 1), axis=1)[..., 1:]
            last_creator = tf.gather(self.creator, tokens)
            same = tf.equal(last_creator[..., None], self.creator[None, None, 1:])
            same &= (last_creator > 0)[..., None]
            return (logits + 10.0 * self.next_weight * tf.cast(followed > 0, tf.float32)
                    + 10.0 * tf.gather(self.creator_weight, gap_out)[..., None]
                    * tf.cast(same, tf.float32))

        def distillation_loss(self, logits, soft_rows):
            """Cross-entropy from the teacher's distribution, renormalised over each choice set.

            ``logits`` are the student's (``-1e9`` outside the choice set); the teacher's
            log-probabilities are gathered by training position.
            """
            allowed = logits > -1e8
            teacher = tf.where(allowed, tf.gather(self.soft_table, soft_rows), -1e9)
            target = tf.nn.softmax(teacher)
            return -tf.reduce_sum(tf.where(allowed, target * tf.nn.log_softmax(logits), 0.0),
                                  axis=-1)

        def intent_memberships(self):
            """(n_items, intents): each item's soft membership of the intents."""
            table = self.token_table()[1:]
            return tf.nn.softmax(tf.matmul(table, self.topic_kernel), axis=-1)

        def mixture_log_probs(self, hidden, tokens, gap_in, gap_out, counts, next_tokens):
            """Log-probabilities (batch, positions, n_items) of the latent-intent head.

            Under intent ``f`` the law at a position is the softmax, over its choice
            set, of the usual logits plus ``scale * m_jf``; the session's earlier views
            (those after the last gap of more than 20 minutes, when the next event
            continues the session) are evidence on ``f`` by Bayes' rule from a prior
            read from the decoder's output; the output mixes the laws by the
            posterior. ``next_tokens`` (the token after each position, 0: none) are
            the evidence and always in their position's choice set; ``counts`` (1 +
            items released by the next event's time) give the rest of it.
            """
            allowed = self.choice_sets(tokens, counts, next_tokens)
            logits = tf.where(allowed, self.context_logits(hidden, tokens, gap_out), -1e9)
            intent = (1.0 + 10.0 * self.intent_scale) * self.intent_memberships()
            top = tf.stop_gradient(tf.reduce_max(logits, axis=-1, keepdims=True))
            # log sum_j exp(logit_j + intent_jf): one normaliser per position and intent.
            normaliser = tf.math.log(tf.einsum("bpn,nk->bpk", tf.exp(logits - top),
                                               tf.exp(intent)) + 1e-30) + top
            padded = tf.concat([tf.zeros((1, self.intents)), intent], axis=0)
            # log P(next token | intent), up to a term that does not depend on the intent.
            evidence = tf.gather(padded, next_tokens) - normaliser
            evidence *= tf.cast((next_tokens > 0) & (tokens > 0), tf.float32)[..., None]
            # Evidence of the view at position s, read from position s - 1.
            evidence = tf.concat([tf.zeros_like(evidence[:, :1]), evidence[:, :-1]], axis=1)
            starts = tf.cast((gap_in == 0) | (gap_in > _CONTINUES_BUCKET), tf.int32)
            session = tf.cumsum(starts, axis=1)
            continues = (gap_out >= 1) & (gap_out <= _CONTINUES_BUCKET)
            length = tokens.shape[1]
            earlier = tf.linalg.band_part(tf.ones((length, length)), -1, 0) > 0
            same = (tf.equal(session[:, :, None], session[:, None, :]) & earlier[None]
                    & continues[:, :, None])
            prior = tf.einsum("btd,dk->btk", hidden, self.prior_kernel) + self.prior_bias
            log_posterior = tf.nn.log_softmax(
                prior + tf.einsum("bts,bsk->btk", tf.cast(same, tf.float32), evidence), axis=-1)
            weights = log_posterior - normaliser
            top_w = tf.stop_gradient(tf.reduce_max(weights, axis=-1, keepdims=True))
            mixed = tf.math.log(tf.einsum("bpk,nk->bpn", tf.exp(weights - top_w),
                                          tf.exp(intent)) + 1e-30) + top_w
            return tf.where(allowed, logits + mixed, -1e9)

        def train_step(self, data):
            (tokens, gap_in, gap_out, users, counts, soft_rows), targets = data
            with tf.GradientTape() as tape:
                hidden = self((tokens, gap_in, gap_out, users), training=True)
                keep = targets > 0
                labels = tf.boolean_mask(targets, keep) - 1
                if self.intents:
                    logits = tf.boolean_mask(self.mixture_log_probs(
                        hidden, tokens, gap_in, gap_out, counts, targets), keep)
                else:
                    logits = self.choice_set_logits(
                        tf.boolean_mask(self.context_logits(hidden, tokens, gap_out), keep),
                        tokens, counts, keep, targets)
                each = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
                if self.soft_table is not None and self.teacher_weight > 0:
                    soft = self.distillation_loss(logits, tf.boolean_mask(soft_rows, keep))
                    each = (1.0 - self.teacher_weight) * each + self.teacher_weight * soft
                loss = tf.reduce_mean(each)
                if self.user_l2 > 0:
                    loss += self.user_l2 * tf.reduce_mean(
                        tf.reduce_sum(self.user_embedding(users) ** 2, axis=-1))
            gradients = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

    return SessionSASRecNetwork


class SessionSASRecModel(SideSASRecModel):
    """SideSASRec that knows the clock, the user and which series / creators were watched.

    Introduced in chapter 09 (see the module docstring for the three parts).
    Every token ``t`` gets ``E[gap since the previous view] + F[gap to the next
    event]`` added; the decoder's output gets the user's vector ``p_u`` added
    (L2 penalty ``user_l2``); the logit of item ``j`` after position ``t`` is
    ``(h_t + p_u) . e_j + b_j + w_ep [j is the next episode of a watched
    series] + w_cr(gap) [j has the creator of the view at t]``. With
    ``intents`` the output is instead a mixture of ``intents`` such softmaxes,
    each with an intent term added, weighted by the posterior of the session's
    intent given its earlier views (the module docstring has the head).

    ``fit(train, item_vectors, *, validation=None, item_side, release_time=None,
    teacher=None)`` as :class:`SideSASRecModel`; ``train`` (and ``validation``,
    for the gap to each validation target) need a ``timestamp`` column;
    ``item_side`` must hold the ``creator_column`` and ``series_columns`` when
    ``transitions`` is on. With a ``teacher`` (a fitted sequential model that
    knows every item) the loss at each training position is
    ``(1 - teacher_weight) * CE(view) + teacher_weight * CE(teacher's
    distribution)``, both over the position's choice set; the teacher scores each
    training user's views (with their times and user, when it reads them) once,
    before training: a table of (training views) x (items) floats.

    Scoring: :meth:`score_histories` takes the views' ``times``, the request time
    ``at`` and the ``users`` (all optional: without them the gaps are "unknown"
    and the user vector is zero);
    :func:`~mmrec_lib.sequential.evaluate_next_item` passes them from the split.

    Parameters
    ----------
    use_item_id : bool, default False
        A learned id embedding per item. Off by default: on a few views per
        item it mostly overfits (content + side values carry the item).
    user_vector : bool, default True
    user_l2 : float >= 0
        L2 penalty on the user vectors (mean squared norm per training row).
    time_gaps : bool, default True
    transitions : bool, default True
    creator_column : str
    series_columns : (str, str)
        Series id and episode number columns of ``item_side``.
    dropout : float, default 0.5
    teacher_weight : float in [0, 1], default 0.95
        Weight of the teacher's cross-entropy when ``fit`` gets a ``teacher``
        (ignored otherwise). MiniClips small: 0.95 beat 0.7, 0.9 and 1.0 (the
        observed views still matter).
    intents : int >= 0, default 0
        Latent intents of the output head (0: no head, one softmax). MiniClips
        small: 10 raise the plain model by 0.010-0.021 NDCG@10 per seed, not a
        distilled one (``benchmarks/sequential_distillation.py``). Scoring and
        training cost grow with ``intents`` x items per position.
    **params
        As :class:`SideSASRecModel`.

    Attributes (after ``fit``)
    --------------------------
    train_times_ : list of float64 arrays (seconds), one per training user
    release_rank_, release_order_s_ : int array per item, sorted release times (s)
        With ``intents`` and a ``release_time``: the head's choice sets at the
        history's views (None otherwise; a clip added later counts as released).
    """

    _uses_context = True

    def __init__(self, *, use_item_id: bool = False, use_content: bool = True,
                 mask_training: bool = True, user_vector: bool = True, user_l2: float = 1e-2,
                 time_gaps: bool = True, transitions: bool = True,
                 creator_column: str = "creator_id",
                 series_columns: tuple = ("series_id", "episode"), max_len: int = 50,
                 embedding_dim: int = 64, num_blocks: int = 2, num_heads: int = 1,
                 dropout: float = 0.5, learning_rate: float = 3e-3, epochs: int = 60,
                 batch_size: int = 32, patience: int | None = 8, all_windows: bool = True,
                 teacher_weight: float = 0.95, intents: int = 0, seed: int = 0):
        super().__init__(use_item_id=use_item_id, use_content=use_content,
                         mask_training=mask_training, max_len=max_len,
                         embedding_dim=embedding_dim, num_blocks=num_blocks,
                         num_heads=num_heads, dropout=dropout, learning_rate=learning_rate,
                         epochs=epochs, batch_size=batch_size, patience=patience,
                         all_windows=all_windows, seed=seed)
        self.user_vector = user_vector
        self.user_l2 = user_l2
        self.teacher_weight = teacher_weight
        self.intents = intents
        self.time_gaps = time_gaps
        self.transitions = transitions
        self.creator_column = creator_column
        # A tuple either way (a saved model's JSON gives a list back).
        self.series_columns = (tuple(series_columns) if isinstance(series_columns, list)
                               else series_columns)

    def _check_params(self):
        super()._check_params()
        for name in ("user_vector", "time_gaps", "transitions"):
            if not isinstance(getattr(self, name), bool):
                raise ParameterError(f"{name}={getattr(self, name)!r} must be True or False")
        check_number("user_l2", self.user_l2, low=0)
        check_number("teacher_weight", self.teacher_weight, low=0, high=1)
        check_int("intents", self.intents, low=0)
        if not isinstance(self.creator_column, str):
            raise ParameterError("creator_column must be a column name (str)")
        if isinstance(self.series_columns, str) or len(self.series_columns) != 2 or not all(
                isinstance(c, str) for c in self.series_columns):
            raise ParameterError("series_columns must be two column names: (series, episode)")

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None, *,
            validation: pd.DataFrame | None = None, item_side: pd.DataFrame | None = None,
            release_time: pd.Series | None = None, teacher=None):
        """Fit on ``train`` (with a ``timestamp`` column); see the class docstring."""
        if teacher is not None:
            if not callable(getattr(teacher, "score_histories", None)):
                raise ParameterError("teacher must be a fitted sequential model (with "
                                     f"score_histories), got {type(teacher).__name__}")
            if not hasattr(teacher, "item_ids_"):
                raise NotFittedError(f"the teacher ({type(teacher).__name__}) is not fitted: "
                                     "fit it before the student")
        if TIMESTAMP_COL not in train.columns:
            raise DataError(f"SessionSASRecModel needs a {TIMESTAMP_COL!r} column in train "
                            "(the time gaps)")
        if validation is not None and TIMESTAMP_COL not in validation.columns:
            raise DataError(f"validation needs a {TIMESTAMP_COL!r} column (the gap to each "
                            "validation target)")
        if self.transitions and item_side is not None:
            missing = [c for c in (self.creator_column, *self.series_columns)
                       if c not in item_side.columns]
            if missing:
                raise DataError(f"item_side has no column {missing}: transitions=True needs "
                                f"creator_column and series_columns (or transitions=False)")
        self._item_side_full, self._teacher = item_side, teacher
        try:
            return super().fit(train, item_vectors, validation=validation, item_side=item_side,
                               release_time=release_time)
        finally:
            del self._item_side_full, self._teacher

    def _fit(self, X, vectors, train):
        ordered = sort_interactions(self._raw_train)
        times = _seconds(ordered[TIMESTAMP_COL].to_numpy())
        if np.isnan(times).any():
            raise DataError("train has missing timestamps")
        self.train_times_ = split_by_user(ordered, times)
        self.creator_vocabulary_, self.series_vocabulary_ = [], []
        self.creator_codes_, self.series_codes_, self.episodes_ = self._transition_columns(
            self._item_side_full, self.item_ids_)
        self.release_rank_, self.release_order_s_ = None, None
        super()._fit(X, vectors, train)

    def _prepare_release_counts(self) -> None:
        super()._prepare_release_counts()
        if self.intents:
            # Kept for scoring: the intent head's choice sets at the history's views.
            self.release_rank_ = self._release_rank.copy()
            self.release_order_s_ = _seconds(self._release_order)

    def _transition_columns(self, item_side, item_ids):
        """Per item: creator code, series code (0: none) and episode number (-1: none).

        Codes index ``creator_vocabulary_`` / ``series_vocabulary_`` (+1); a value
        not seen before is appended, so a new clip of a known creator keeps its code.
        """
        n = len(item_ids)
        creator, series = np.zeros(n, np.int32), np.zeros(n, np.int32)
        episodes = np.full(n, -1, np.int64)
        if not self.transitions or item_side is None:
            return creator, series, episodes
        frame = item_side.reindex(item_ids)
        creator = self._encode(frame[self.creator_column], self.creator_vocabulary_)
        series = self._encode(frame[self.series_columns[0]], self.series_vocabulary_)
        episode = pd.to_numeric(frame[self.series_columns[1]], errors="coerce").to_numpy(
            dtype=np.float64)
        episodes = np.where(np.isnan(episode), -1, episode).astype(np.int64)
        return creator, series, episodes

    @staticmethod
    def _encode(values: pd.Series, vocabulary: list) -> np.ndarray:
        """Codes ``1 + index in vocabulary`` (grown in place); missing / empty -> 0."""
        index = {value: k for k, value in enumerate(vocabulary)}
        codes = np.zeros(len(values), np.int32)
        for row, value in enumerate(values.to_numpy(dtype=object)):
            if pd.isna(value) or (isinstance(value, str) and value == ""):
                continue
            key = str(value)
            if key not in index:
                index[key] = len(vocabulary)
                vocabulary.append(key)
            codes[row] = index[key] + 1
        return codes

    def _next_tokens(self) -> np.ndarray:
        """Token -> token of the next episode of its series (0: none), row 0 padding."""
        out = np.zeros(len(self.item_ids_) + 1, np.int32)
        if not self.transitions:
            return out
        following = next_episode_rows(self.series_codes_, self.episodes_)
        out[1:] = np.where(following >= 0, following + 1, 0)
        return out

    def _windows(self, sequences, times, users):
        """Training rows: tokens, gap buckets in / out, user (index + 1), targets."""
        rows = {"tokens": [], "gap_in": [], "gap_out": [], "users": [], "targets": [],
                "index": []}
        for user, (sequence, stamps) in enumerate(zip(sequences, times, strict=True)):
            gaps = np.r_[np.nan, np.diff(stamps)]
            end = len(sequence) - 1
            while end > 0:
                start = max(0, end - self.max_len)
                rows["tokens"].append(sequence[start:end])
                rows["targets"].append(sequence[start + 1:end + 1])
                rows["gap_in"].append(gaps[start:end])
                rows["gap_out"].append(gaps[start + 1:end + 1])
                rows["users"].append(users[user])
                rows["index"].append((user, start, end))
                end = start if self.all_windows else 0
        return rows

    def _gap_matrix(self, gaps_list) -> np.ndarray:
        """Gap buckets, left-padded with 0 and cut to the last ``max_len`` as the tokens."""
        out = np.zeros((len(gaps_list), self.max_len), np.int32)
        if self.time_gaps:
            for row, gaps in enumerate(gaps_list):
                buckets = gap_buckets(np.asarray(gaps, np.float64)[-self.max_len:])
                if len(buckets):
                    out[row, self.max_len - len(buckets):] = buckets
        return out

    def _fit_sequences(self, sequences, validation):
        from mmrec_lib._env import import_tensorflow
        from mmrec_lib.sequential import _networks

        tf = import_tensorflow()
        user_tokens = (np.arange(1, len(sequences) + 1) if self.user_vector
                       else np.zeros(len(sequences), np.int64))
        rows = self._windows(sequences, self.train_times_, user_tokens)
        if not rows["tokens"]:
            raise DataError("no training sequence has two items: there is no next item to learn")
        tokens = pad_sequences(rows["tokens"], self.max_len)
        targets = pad_sequences(rows["targets"], self.max_len)
        gap_in, gap_out = self._gap_matrix(rows["gap_in"]), self._gap_matrix(rows["gap_out"])
        users = np.asarray(rows["users"], np.int32)
        if self._counts is not None:
            counts = pad_sequences([self._counts[u][s + 1:e + 1] for u, s, e in rows["index"]],
                                   self.max_len)
        else:
            counts = np.zeros_like(targets)
        soft_rows, soft_table = np.zeros_like(targets), None
        teacher = getattr(self, "_teacher", None)
        if teacher is not None:
            soft_table, first_row = self._teacher_log_probs(teacher, sequences)
            soft_rows = pad_sequences([first_row[u] + np.arange(s, e) for u, s, e in rows["index"]],
                                      self.max_len)
        tf.keras.utils.set_random_seed(self.seed)
        self.network_ = self._build_network(len(self.item_ids_), self._release_rank)
        self.network_.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate))
        if soft_table is not None:
            self.network_.soft_table = tf.constant(soft_table)
            self.network_.teacher_weight = float(self.teacher_weight)
        dataset = (tf.data.Dataset.from_tensor_slices(
            ((tokens, gap_in, gap_out, users, counts, soft_rows), targets))
                   .shuffle(len(tokens), seed=self.seed, reshuffle_each_iteration=True)
                   .batch(self.batch_size))
        score = None
        if validation is not None:
            val_users, _ = validation
            frame = self._validation_frame.reset_index(drop=True)
            at = _seconds(frame[TIMESTAMP_COL].to_numpy())
            val_histories = [sequences[u] for u in val_users]
            val_times = [self.train_times_[u] for u in val_users]
            context = self._context(val_histories, val_times, at, user_tokens[val_users])

            def score(_histories):
                return self._score_context(*context)
        try:
            _networks.fit_with_validation(self, dataset, sequences, validation,
                                          score or self._score_tokens,
                                          exclude_more=self._unreleased_rule())
        finally:
            self.network_.soft_table = None  # the table is for training only

    def _teacher_log_probs(self, teacher, sequences, chunk: int = 250):
        """The teacher's next-view log-probabilities at every training position.

        Returns ``(table, first_row)``: ``table`` has one row per position (row 0
        unused; -1e9 where the teacher gives -inf), columns in this model's item
        order; user ``u``'s position ``k >= 1`` (the view predicted from the
        ``k`` before it) is row ``first_row[u] + k - 1``. The teacher scores ``chunk``
        histories at a time (MiniClips small, intent teacher: 250 peaks at 1.7 GB and takes
        14 s, 2,000 at 2.9 GB and 18 s; the intent model builds a row per earlier view).
        """
        from mmrec_lib.utils import progress

        ids = np.asarray(self.item_ids_)
        order = pd.Index(teacher.item_ids_).get_indexer(ids)
        if (order < 0).any():
            raise DataError(f"the teacher does not know {int((order < 0).sum())} training "
                            f"item(s), e.g. {ids[order < 0][:5].tolist()}: fit it on the same "
                            "catalogue")
        lengths = np.array([max(len(s) - 1, 0) for s in sequences])
        if lengths.sum() * len(ids) > _MAX_TEACHER_CELLS:
            raise DataError(f"a teacher table of {lengths.sum():,} positions x {len(ids):,} "
                            "items is too large to hold in memory")
        first_row = 1 + np.r_[0, np.cumsum(lengths)[:-1]]
        jobs = [(u, k) for u, n in enumerate(lengths) for k in range(1, n + 1)]
        table = np.zeros((len(jobs) + 1, len(ids)), np.float32)
        context = getattr(teacher, "_uses_context", False)
        for start in progress(range(0, len(jobs), chunk), desc="teacher",
                              total=-(-len(jobs) // chunk)):
            part = jobs[start:start + chunk]
            histories = [ids[sequences[u][:k] - 1] for u, k in part]
            extra = ({"times": [self.train_times_[u][:k] for u, k in part],
                      "at": np.array([self.train_times_[u][k] for u, k in part]),
                      "users": [self.user_ids_[u] for u, _ in part]} if context else {})
            scores = np.asarray(teacher.score_histories(histories, **extra), np.float64)
            if scores.shape != (len(part), len(teacher.item_ids_)):
                raise ModelError(f"the teacher returned scores of shape {scores.shape} for "
                                 f"{len(part)} histories and {len(teacher.item_ids_)} items")
            scores = scores[:, order]
            table[1 + start:1 + start + len(part)] = np.where(np.isfinite(scores), scores, -1e9)
        return table, first_row

    def _network(self, num_items, release_rank=None):
        if release_rank is None and self.intents:
            # A loaded or grown model: the intent head reads the release ranks at scoring.
            release_rank = getattr(self, "release_rank_", None)
        if num_items != len(self.item_vectors_) or num_items != len(self.side_codes_):
            raise ModelError(f"{num_items} items but {len(self.item_vectors_)} content vectors "
                             f"and {len(self.side_codes_)} side rows")
        network = _session_network_class()(
            self.item_vectors_, self.side_codes_, [len(v) for v in self.side_vocabularies_],
            num_users=len(self.user_ids_), num_gaps=len(GAP_EDGES_S) + 2,
            next_item=self._next_tokens(), creator=np.r_[0, self.creator_codes_],
            transitions=self.transitions, intents=self.intents, use_content=self.use_content,
            release_rank=release_rank, mask_training=self.mask_training,
            use_item_id=self.use_item_id, max_len=self.max_len,
            embedding_dim=self.embedding_dim, num_blocks=self.num_blocks,
            num_heads=self.num_heads, dropout=self.dropout, seed=self.seed)
        network.user_l2 = float(self.user_l2) if self.user_vector else 0.0
        return network

    def transition_weights(self) -> dict:
        """The learned explicit terms: next-episode weight; same-creator weight per gap bucket.

        Introduced in chapter 09. Returns ``{"next_episode": float, "same_creator":
        Series indexed by GAP_LABELS}`` (logit units; 0 with ``transitions=False``).
        """
        check_is_fitted(self)
        network = self.network_
        return {"next_episode": 10.0 * float(network.next_weight.numpy()),
                "same_creator": pd.Series(10.0 * network.creator_weight.numpy()[1:],
                                          index=list(GAP_LABELS), name="same_creator")}

    # ------------------------------------------------------------------ scoring

    def _context(self, histories, times, at, users):
        """Padded model inputs for token histories, their times (s), request times, users.

        The fifth array is each position's release count (1 + items released by the
        next event; with ``intents`` and release times only, else "all released").
        """
        tokens = pad_sequences(histories, self.max_len)
        everything = len(self.item_ids_) + 1
        counts = np.full(tokens.shape, everything, np.int32)
        order = getattr(self, "release_order_s_", None) if self.intents else None
        gap_in, gap_out = [], []
        for row, (history, stamps, now) in enumerate(zip(histories, times, at, strict=True)):
            stamps = (np.full(len(history), np.nan) if stamps is None
                      else np.asarray(stamps, np.float64))
            gap_in.append(np.r_[np.nan, np.diff(stamps)])
            gap_out.append(np.r_[stamps[1:], now] - stamps)
            if order is not None and len(history):
                following = np.r_[stamps[1:], now][-self.max_len:]
                known = np.searchsorted(order, following, side="right") + 1
                counts[row, self.max_len - len(following):] = np.where(
                    np.isnan(following), everything, known)
        return (tokens, self._gap_matrix(gap_in), self._gap_matrix(gap_out),
                np.asarray(users, np.int32), counts)

    def _score_context(self, tokens, gap_in, gap_out, users, counts, batch_size: int = 256):
        following = np.zeros_like(tokens)
        following[:, :-1] = np.where(tokens[:, :-1] > 0, tokens[:, 1:], 0)
        scores = []
        for start in range(0, len(tokens), batch_size):
            part = slice(start, start + batch_size)
            hidden = self.network_((tokens[part], gap_in[part], gap_out[part], users[part]),
                                   training=False)
            if self.intents:
                logits = self.network_.mixture_log_probs(
                    hidden, *(a[part] for a in (tokens, gap_in, gap_out, counts, following)))
            else:
                logits = self.network_.context_logits(hidden, tokens[part], gap_out[part])
            scores.append(logits[:, -1, :].numpy())
        return np.concatenate(scores)

    def _score_tokens(self, histories, batch_size: int = 256):
        # No times, no user: gaps unknown, zero user vector.
        n = len(histories)
        return self._score_context(*self._context(
            histories, [None] * n, np.full(n, np.nan), np.zeros(n, np.int32)),
            batch_size=batch_size)

    def _score(self, user_index):
        """After each training user's train sequence, their times and vector; no request time."""
        user_index = np.asarray(user_index)
        return self._score_context(*self._context(
            [self.train_sequences_[u] for u in user_index],
            [self.train_times_[u] for u in user_index], np.full(len(user_index), np.nan),
            user_index + 1 if self.user_vector else np.zeros(len(user_index), np.int32)))

    def score_histories(self, histories: Sequence[Sequence], *, times=None, at=None,
                        users=None, unknown: str = "error", candidates=None) -> np.ndarray:
        """Next-item scores after each history, with its times, the request time and the user.

        Introduced in chapter 09. As :meth:`SequentialModel.score_histories`, plus:

        Parameters
        ----------
        times : sequence of n sequences of timestamps, optional
            The time of every view of each history (same lengths; datetimes or
            seconds). Without them the gaps are "unknown".
        at : sequence of n timestamps, optional
            The request time of each history (the gap after its last view).
        users : sequence of n user ids, optional
            A training user gets their vector; another id (or None) the zero vector.
        """
        check_is_fitted(self)
        if times is None and at is None and users is None:
            return super().score_histories(histories, unknown=unknown, candidates=candidates)
        indices, stamps, at, user_index = timed_histories(
            self.item_ids_, self.user_ids_, histories, times=times, at=at, users=users,
            unknown=unknown)
        tokens = [(index + 1).astype(np.int32) for index in indices]
        user_tokens = (np.where(user_index >= 0, user_index + 1, 0).astype(np.int32)
                       if self.user_vector else np.zeros(len(tokens), np.int32))
        scores = self._score_context(*self._context(tokens, stamps, at, user_tokens))
        if candidates is None:
            return scores.astype(np.float32)
        candidates = np.asarray(candidates)
        if candidates.dtype != bool or candidates.shape != scores.shape:
            raise ParameterError(f"candidates must be a boolean array of shape {scores.shape}")
        return np.where(candidates, scores, -np.inf).astype(np.float32)

    # ------------------------------------------------------------------ new items, save, load

    def add_items(self, item_vectors: pd.DataFrame, item_side: pd.DataFrame | None = None
                  ) -> SessionSASRecModel:
        """Add new items from their content and side values; returns ``self``.

        Introduced in chapter 09. As :meth:`SideSASRecModel.add_items`; with
        ``transitions``, a new clip's creator, series and episode join the explicit
        terms (a new episode of a watched series is boosted at once).
        """
        self._pending_side_full = item_side
        try:
            return super().add_items(item_vectors, item_side)
        finally:
            del self._pending_side_full

    def _grow_catalogue(self, new_ids):
        remap, added = super()._grow_catalogue(new_ids)
        n = len(self.item_ids_)
        grown = (np.zeros(n, np.int32), np.zeros(n, np.int32), np.full(n, -1, np.int64))
        new = self._transition_columns(self._pending_side_full, new_ids)
        for table, old, fresh in zip(grown, (self.creator_codes_, self.series_codes_,
                                             self.episodes_), new, strict=True):
            table[remap] = old
            table[added] = fresh
        self.creator_codes_, self.series_codes_, self.episodes_ = grown
        if getattr(self, "release_rank_", None) is not None:
            # A new item's release time is unknown: the intent head treats it as released.
            rank = np.zeros(n, np.int32)
            rank[remap] = self.release_rank_
            self.release_rank_ = rank
        return remap, added

    def save(self, path) -> Path:
        """Save to a folder: the side SASRec files plus times and the explicit-term tables."""
        from mmrec_lib.utils import atomic_dir

        check_is_fitted(self)
        path = Path(path)
        with atomic_dir(path) as folder:
            super().save(Path(folder) / "side")
            release = ({} if getattr(self, "release_rank_", None) is None else
                       {"release_rank": self.release_rank_,
                        "release_order": self.release_order_s_})
            np.savez(Path(folder) / "session.npz",
                     times=np.concatenate(self.train_times_),
                     lengths=np.array([len(t) for t in self.train_times_]),
                     creator=self.creator_codes_, series=self.series_codes_,
                     episodes=self.episodes_, **release)
            (Path(folder) / "session.json").write_text(json.dumps(
                {"creator_vocabulary": self.creator_vocabulary_,
                 "series_vocabulary": self.series_vocabulary_}))
        return path

    @classmethod
    def load(cls, path) -> SessionSASRecModel:
        """Load a model saved by :meth:`save`; it scores exactly as the saved one."""
        path = Path(path)
        if not (path / "session.npz").is_file() or not (path / "session.json").is_file():
            raise ModelError(f"{path} is not a saved {cls.__name__} (no session.npz)")
        side = path / "side"
        model = cls._load_state(side)
        vocabularies = json.loads((path / "session.json").read_text())
        model.creator_vocabulary_ = vocabularies["creator_vocabulary"]
        model.series_vocabulary_ = vocabularies["series_vocabulary"]
        with np.load(path / "session.npz", allow_pickle=False) as data:
            model.train_times_ = np.split(data["times"], np.cumsum(data["lengths"])[:-1])
            model.creator_codes_ = data["creator"]
            model.series_codes_ = data["series"]
            model.episodes_ = data["episodes"]
            model.release_rank_, model.release_order_s_ = (
                (data["release_rank"], data["release_order"]) if "release_rank" in data.files
                else (None, None))
        model.network_ = model._build_network(len(model.item_ids_))
        model.network_.load_weights(str(side / "content" / "network" / "network.weights.h5"))
        return model

