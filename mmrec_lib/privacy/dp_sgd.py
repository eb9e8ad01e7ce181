"""DP-SGD by hand in TensorFlow: per-example gradients, clipping, noise, and a DP matrix factorisation."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import ParameterError
from mmrec_lib.interest import InterestModel
from mmrec_lib.privacy.accounting import epsilon_for

__all__ = ["clip_and_noise", "bpr_per_example_gradients", "DPMatrixFactorization",
           "check_dp_settings"]


def clip_and_noise(per_example_gradients: Sequence, *, clip: float, noise_multiplier: float,
                   denominator: float, seed: int | None = None, generator=None) -> list:
    """DP-SGD's aggregation: clip each example, sum, add N(0, (noise_multiplier*clip)^2), divide.

    Parameters
    ----------
    per_example_gradients : list of tensors of shape (batch, ...)
        One entry per parameter; row ``b`` of every entry is example ``b``'s gradient.
    clip : float > 0
        Each example's gradient (all entries together) is scaled to L2 norm at most ``clip``.
    noise_multiplier : float >= 0
    denominator : float > 0
        The expected batch size under Poisson sampling (a constant, so that the noise
        is not divided by a number that depends on the data).
    seed, generator : optional
        A ``tf.random.Generator`` (or a seed for a new one) for the noise.

    Returns
    -------
    list of tensors, one per parameter, without the batch axis.
    """
    tf = _tf()
    clip = check_number("clip", clip, low=0.0, low_inclusive=False, allow_inf=True)
    noise_multiplier = check_number("noise_multiplier", noise_multiplier, low=0.0)
    denominator = check_number("denominator", denominator, low=0.0, low_inclusive=False)
    gradients = [tf.convert_to_tensor(g, tf.float32) for g in per_example_gradients]
    factors = _clip_factors(tf, gradients, clip)
    summed = [tf.tensordot(factors, g, axes=[[0], [0]]) for g in gradients]
    if noise_multiplier > 0:
        if generator is None:
            generator = tf.random.Generator.from_seed(0 if seed is None else check_seed(seed))
        summed = [s + generator.normal(tf.shape(s), stddev=noise_multiplier * clip)
                  for s in summed]
    return [s / denominator for s in summed]


def _tf():
    from mmrec_lib._env import import_tensorflow

    return import_tensorflow()


def bpr_per_example_gradients(user_factors, item_factors, item_bias, users, positives,
                              negatives, *, l2: float = 0.0):
    r"""Per-example gradients of the BPR loss :math:`-\log\sigma(s_{ui} - s_{uj})` of MF.

    The trick that makes this cheap: each example only reads its own rows
    (``P[u]``, ``Q[i]``, ``Q[j]``, ``b[i]``, ``b[j]``), so the gradient of the *summed*
    loss with respect to the gathered rows is, row by row, each example's own
    gradient. No ``vectorized_map`` is needed, and the rows are scattered back
    into the tables after clipping.

    Returns
    -------
    list of 5 tensors: (batch, dim) for ``P[u]``, ``Q[i]``, ``Q[j]``, (batch,) for ``b[i]``, ``b[j]``.
    """
    tf = _tf()
    p = tf.gather(user_factors, users)
    qi = tf.gather(item_factors, positives)
    qj = tf.gather(item_factors, negatives)
    bi = tf.gather(item_bias, positives)
    bj = tf.gather(item_bias, negatives)
    with tf.GradientTape() as tape:
        tape.watch([p, qi, qj, bi, bj])
        difference = tf.reduce_sum(p * (qi - qj), axis=1) + bi - bj
        losses = -tf.math.log_sigmoid(difference) + l2 * (
            tf.reduce_sum(p ** 2, 1) + tf.reduce_sum(qi ** 2, 1) + tf.reduce_sum(qj ** 2, 1))
        total = tf.reduce_sum(losses)
    return tape.gradient(total, [p, qi, qj, bi, bj])


class DPMatrixFactorization(InterestModel):
    r"""BPR matrix factorisation trained with DP-SGD (example-level privacy).

    Every step draws a **Poisson** sample of the training interactions (each one
    independently with probability ``sampling_rate = batch_size / n``, the sampling
    the accountant assumes), pairs each with a uniformly drawn negative item,
    computes per-example gradients (:func:`bpr_per_example_gradients`), clips
    each to ``clip``, adds Gaussian noise to **every** parameter (noise on all rows,
    not only the touched ones, or the set of touched rows would leak) and takes an
    SGD step. ``epsilon_`` is :func:`epsilon_for` of the run (example-level, see
    :mod:`mmrec_lib.privacy`). ``noise_multiplier=0`` gives plain clipped SGD
    (``epsilon_ = inf``).

    Parameters
    ----------
    embedding_dim, epochs, batch_size (expected), l2, seed
    learning_rate : float > 0, optional
        The summed row gradients are divided by the expected batch size, while a
        row appears in only a few examples of a batch, so the step a row takes is
        about ``learning_rate / batch_size`` per example. The default ``None`` is
        ``0.2 * expected batch size`` (a per-example step of 0.2); a fixed small
        rate such as 0.5 barely moves the rows once batches hold thousands of
        interactions (measured on MiniClips small: NDCG@10 below popularity).
    clip : float > 0
    noise_multiplier : float >= 0
    delta : float in (0, 1), optional
        Default ``1 / (10 n)``.
    """

    def __init__(self, *, embedding_dim: int = 16, epochs: int = 10, batch_size: int = 256,
                 learning_rate: float | None = None, l2: float = 0.0, clip: float = 1.0,
                 noise_multiplier: float = 1.0, delta: float | None = None, seed: int = 0):
        self.embedding_dim = embedding_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.clip = clip
        self.noise_multiplier = noise_multiplier
        self.delta = delta
        self.seed = seed

    def _check_params(self):
        check_int("embedding_dim", self.embedding_dim)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        if self.learning_rate is not None:
            check_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)
        check_number("l2", self.l2, low=0.0)
        check_number("clip", self.clip, low=0.0, low_inclusive=False, allow_inf=True)
        check_number("noise_multiplier", self.noise_multiplier, low=0.0)
        check_dp_settings(self)

    def _fit(self, X, vectors, train):
        tf = _tf()
        num_users, num_items = X.shape
        coo = X.tocoo()
        users = coo.row.astype(np.int32)
        items = coo.col.astype(np.int32)
        n = len(users)
        rng = np.random.default_rng(self.seed)
        generator = tf.random.Generator.from_seed(self.seed)
        scale = 1.0 / math.sqrt(self.embedding_dim)
        P = tf.Variable(rng.normal(0, scale, (num_users, self.embedding_dim)).astype(np.float32))
        Q = tf.Variable(rng.normal(0, scale, (num_items, self.embedding_dim)).astype(np.float32))
        b = tf.Variable(np.zeros(num_items, np.float32))
        pool = np.unique(items)
        rate = min(1.0, self.batch_size / n)
        expected = rate * n
        steps = max(1, int(round(self.epochs / rate)))
        learning_rate = 0.2 * expected if self.learning_rate is None else self.learning_rate
        self.learning_rate_ = learning_rate
        self.history_ = {"loss": []}
        for _ in range(steps):
            chosen = np.flatnonzero(rng.random(n) < rate)
            if len(chosen) == 0:  # an empty Poisson sample: the step is pure noise.
                chosen = np.zeros(0, np.int64)
            negatives = rng.choice(pool, size=len(chosen)).astype(np.int32)
            grads = bpr_per_example_gradients(P, Q, b, users[chosen], items[chosen], negatives,
                                              l2=self.l2)
            # Clipping is per example, so clip on the rows, then scatter (linear) after.
            factors = _clip_factors(tf, grads, self.clip)
            dense = _scatter_rows(tf, [g * tf.reshape(factors, [-1] + [1] * (len(g.shape) - 1))
                                       for g in grads],
                                  users[chosen], items[chosen], negatives, num_users, num_items)
            noisy = [d + (generator.normal(tf.shape(d), stddev=self.noise_multiplier * self.clip)
                          if self.noise_multiplier > 0 else 0.0) for d in dense]
            for variable, gradient in zip((P, Q, b), noisy):
                variable.assign_sub(learning_rate * gradient / expected)
            if len(chosen):
                difference = (tf.reduce_sum(tf.gather(P, users[chosen]) * (
                    tf.gather(Q, items[chosen]) - tf.gather(Q, negatives)), 1)
                    + tf.gather(b, items[chosen]) - tf.gather(b, negatives))
                self.history_["loss"].append(float(tf.reduce_mean(-tf.math.log_sigmoid(difference))))
        self.user_factors_ = P.numpy()
        self.item_factors_ = Q.numpy()
        self.item_bias_ = b.numpy()
        self.steps_ = steps
        self.sampling_rate_ = rate
        self.delta_ = self.delta if self.delta is not None else 1.0 / (10 * n)
        self.epsilon_ = (math.inf if self.noise_multiplier == 0
                         else epsilon_for(self.noise_multiplier, rate, steps, self.delta_))

    def _score(self, user_index):
        return self.user_factors_[user_index] @ self.item_factors_.T + self.item_bias_[None, :]


def _clip_factors(tf, gradients, clip):
    """min(1, C / ||g_b||) per example: inside the ball untouched; 1e-12 guards a zero gradient."""
    batch = tf.shape(gradients[0])[0]
    squared = tf.add_n([tf.reduce_sum(tf.reshape(g, [batch, -1]) ** 2, axis=1) for g in gradients])
    return tf.minimum(1.0, clip / tf.maximum(tf.sqrt(squared), 1e-12))


def _scatter_rows(tf, gradients, users, positives, negatives, num_users, num_items):
    """Per-example row gradients summed into dense (P, Q, b) gradients."""
    gp, gqi, gqj, gbi, gbj = gradients
    dP = tf.math.unsorted_segment_sum(gp, users, num_users)
    dQ = (tf.math.unsorted_segment_sum(gqi, positives, num_items)
          + tf.math.unsorted_segment_sum(gqj, negatives, num_items))
    db = (tf.math.unsorted_segment_sum(gbi, positives, num_items)
          + tf.math.unsorted_segment_sum(gbj, negatives, num_items))
    return [dP, dQ, db]


def check_dp_settings(model) -> None:
    """The checks every DP-SGD model shares: ``delta`` in (0, 1) or None, ``seed``, and a finite
    ``clip`` whenever there is noise (the noise is ``noise_multiplier * clip``)."""
    if model.delta is not None:
        check_number("delta", model.delta, low=0.0, high=1.0, low_inclusive=False,
                     high_inclusive=False)
    check_seed(model.seed)
    if model.noise_multiplier > 0 and math.isinf(model.clip):
        raise ParameterError("noise_multiplier > 0 needs a finite clip (the noise is "
                             "noise_multiplier * clip)")
