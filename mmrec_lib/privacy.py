"""Privacy for recommenders: DP-SGD by hand, its epsilon, FedAvg, membership inference, on-device scoring.

Four tools, each small enough to read in one sitting:

* :class:`DPMatrixFactorization` trains BPR matrix factorisation with DP-SGD written
  by hand in TensorFlow (per-example gradients, clipping to L2 norm ``clip``, Gaussian
  noise of standard deviation ``noise_multiplier * clip``, averaging), and
  :func:`epsilon_for` / :func:`noise_for_epsilon` turn its settings into a privacy
  budget with the RDP accountant of ``dp-accounting``.
* :func:`federated_fit` simulates federated averaging: user vectors never leave the
  "device", the server only sees clipped (and optionally noised) item-side updates
  of a sampled cohort of users per round.
* :func:`membership_inference_auc` measures leakage with the score-threshold attack
  of Yeom et al. (2018): how well a model's scores separate training interactions
  from held-out ones (AUC 0.5 = no leakage).
* :class:`ItemIndex` and :func:`user_vector_from_history` split scoring into a
  server-side item index and a user vector computed on the client from the user's
  own history, so the server never needs a user id.

What the guarantees cover
-------------------------
DP-SGD here is **example-level**: one example is one interaction (user, item), and
neighbouring datasets differ in one interaction. A user with 50 interactions is
protected with roughly ``50 * epsilon`` (group privacy), not ``epsilon``. User-level
privacy needs every user's whole contribution clipped together; that is what
:func:`federated_fit` does (one client = one user, its whole update clipped), so its
``epsilon_for(noise, clients_per_round / num_users, rounds, delta)`` is **user-level**,
but only for the item-side parameters that leave the device.

TensorFlow is imported lazily, so ``import mmrec_lib.privacy`` stays light.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import DataError, NotFittedError, ParameterError
from mmrec_lib.interactions import ITEM_COL, USER_COL, check_interactions
from mmrec_lib.interest import InterestModel

__all__ = [
    "clip_and_noise",
    "bpr_per_example_gradients",
    "epsilon_for",
    "noise_for_epsilon",
    "DPMatrixFactorization",
    "FederatedMatrixFactorization",
    "federated_fit",
    "user_vector_from_history",
    "ItemIndex",
    "membership_inference_auc",
]


# --- Privacy accounting ------------------------------------------------------------------

def _check_accounting(noise_multiplier, sampling_rate, steps, delta) -> tuple[float, float, int, float]:
    noise_multiplier = check_number("noise_multiplier", noise_multiplier, low=0.0,
                                    low_inclusive=False)
    sampling_rate = check_number("sampling_rate", sampling_rate, low=0.0, high=1.0,
                                 low_inclusive=False)
    steps = check_int("steps", steps)
    delta = check_number("delta", delta, low=0.0, high=1.0, low_inclusive=False,
                         high_inclusive=False)
    return noise_multiplier, sampling_rate, steps, delta


def epsilon_for(noise_multiplier: float, sampling_rate: float, steps: int, delta: float) -> float:
    """The epsilon of ``steps`` Poisson-sampled Gaussian mechanisms, by the RDP accountant.

    Parameters
    ----------
    noise_multiplier : float > 0
        Noise standard deviation divided by the clipping norm.
    sampling_rate : float in (0, 1]
        Probability that one example (or one user, in federated learning) is in a step.
    steps : int >= 1
    delta : float in (0, 1)
        Usually below ``1 / number of examples``.

    Returns
    -------
    float
        The smallest epsilon the accountant proves for this ``delta``.

    Examples
    --------
    >>> round(epsilon_for(1.1, 0.01, 1000, 1e-5), 1) < 3
    True
    """
    import dp_accounting
    from dp_accounting import rdp

    noise_multiplier, sampling_rate, steps, delta = _check_accounting(
        noise_multiplier, sampling_rate, steps, delta)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sampling_rate,
                                            dp_accounting.GaussianDpEvent(noise_multiplier)),
        steps)
    accountant = rdp.RdpAccountant()
    # For small noise some Renyi orders do not converge; the accountant drops them (the bound
    # stays valid) but warns through absl, which a learner would read as an error.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        accountant.compose(event)
        return float(accountant.get_epsilon(delta))
    finally:
        absl_logger.setLevel(level)


def noise_for_epsilon(target_epsilon: float, sampling_rate: float, steps: int, delta: float, *,
                      low: float = 0.3, high: float = 100.0, tolerance: float = 1e-3) -> float:
    """The smallest noise multiplier whose :func:`epsilon_for` is at most ``target_epsilon``.

    Bisection on ``[low, high]``: epsilon falls as the noise grows. Raises
    ``ParameterError`` when even ``high`` is not enough or ``low`` is already private enough.
    """
    target_epsilon = check_number("target_epsilon", target_epsilon, low=0.0,
                                  low_inclusive=False)
    low = check_number("low", low, low=0.0, low_inclusive=False)
    high = check_number("high", high, low=low, low_inclusive=False)
    tolerance = check_number("tolerance", tolerance, low=0.0, low_inclusive=False)
    _check_accounting(low, sampling_rate, steps, delta)
    if epsilon_for(high, sampling_rate, steps, delta) > target_epsilon:
        raise ParameterError(f"target_epsilon={target_epsilon} needs a noise multiplier above "
                             f"high={high}")
    if epsilon_for(low, sampling_rate, steps, delta) <= target_epsilon:
        return low
    while high - low > tolerance:
        middle = (low + high) / 2
        if epsilon_for(middle, sampling_rate, steps, delta) > target_epsilon:
            low = middle
        else:
            high = middle
    return high


# --- DP-SGD ------------------------------------------------------------------------------

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
    the module docstring). ``noise_multiplier=0`` gives plain clipped SGD
    (``epsilon_ = inf``).

    Parameters
    ----------
    embedding_dim, epochs, batch_size (expected), learning_rate, l2, seed
    clip : float > 0
    noise_multiplier : float >= 0
    delta : float in (0, 1), optional
        Default ``1 / (10 n)``.
    """

    def __init__(self, *, embedding_dim: int = 16, epochs: int = 10, batch_size: int = 256,
                 learning_rate: float = 0.5, l2: float = 0.0, clip: float = 1.0,
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
        check_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)
        check_number("l2", self.l2, low=0.0)
        check_number("clip", self.clip, low=0.0, low_inclusive=False, allow_inf=True)
        check_number("noise_multiplier", self.noise_multiplier, low=0.0)
        if self.delta is not None:
            check_number("delta", self.delta, low=0.0, high=1.0, low_inclusive=False,
                         high_inclusive=False)
        check_seed(self.seed)

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
                variable.assign_sub(self.learning_rate * gradient / expected)
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


# --- Federated averaging ---------------------------------------------------------------

def user_vector_from_history(history: np.ndarray, item_factors: np.ndarray, *,
                             l2: float = 1.0) -> np.ndarray:
    r"""A user's vector from their own history, computed on the device.

    Ridge regression of the user's 0/1 row on the item factors:
    :math:`p = (Q^\top Q + \lambda I)^{-1} Q^\top y`. It needs the item table and
    the user's own history only, so a server never stores user vectors.

    Parameters
    ----------
    history : array of item indices (ints) or a 0/1 vector of length ``n_items``
    item_factors : ndarray of shape (n_items, dim)
    l2 : float > 0
    """
    Q = np.asarray(item_factors, dtype=np.float64)
    l2 = check_number("l2", l2, low=0.0, low_inclusive=False)
    history = np.asarray(history)
    if history.dtype == bool or (history.ndim == 1 and len(history) == len(Q)
                                 and history.dtype.kind == "f"):
        y = history.astype(np.float64)
    else:
        if history.size and (history.min() < 0 or history.max() >= len(Q)):
            raise DataError(f"history has item indices outside [0, {len(Q) - 1}]")
        y = np.zeros(len(Q))
        y[history.astype(np.int64)] = 1.0
    return np.linalg.solve(Q.T @ Q + l2 * np.eye(Q.shape[1]), Q.T @ y)


def _client_loss_and_gradient(y: np.ndarray, Q: np.ndarray, l2: float):
    """Squared error of the user's row, with p solved on the device, and its gradient in Q."""
    p = np.linalg.solve(Q.T @ Q + l2 * np.eye(Q.shape[1]), Q.T @ y)
    residual = Q @ p - y
    loss = float(residual @ residual) / len(y)
    # p is held fixed (it is re-solved next time), as in federated collaborative filtering.
    return loss, 2.0 * np.outer(residual, p) / len(y)


class FederatedMatrixFactorization(InterestModel):
    r"""Matrix factorisation trained by simulated federated averaging (user-level clipping).

    One client is one user. Each round the server samples ``clients_per_round``
    users without replacement, sends them the item table ``Q``; each client
    solves its own user vector (:func:`user_vector_from_history`, it never leaves
    the device), takes ``local_steps`` gradient steps on its own squared-error
    loss over all items and returns ``Q_local - Q``. The server clips every
    client's update to L2 norm ``clip`` (the user's whole contribution: user-level),
    sums, adds N(0, (noise_multiplier * clip)^2) per coordinate, divides by the
    cohort size and adds the result to ``Q``. ``metrics_`` has one row per round.
    The score of a user is :math:`p_u \cdot q_i` with :math:`p_u` re-computed from the
    user's training row, exactly what the device computes (see :class:`ItemIndex`).
    """

    def __init__(self, *, embedding_dim: int = 16, rounds: int = 50, clients_per_round: int = 32,
                 local_steps: int = 1, learning_rate: float = 1.0, clip: float = math.inf,
                 noise_multiplier: float = 0.0, l2: float = 1.0, seed: int = 0):
        self.embedding_dim = embedding_dim
        self.rounds = rounds
        self.clients_per_round = clients_per_round
        self.local_steps = local_steps
        self.learning_rate = learning_rate
        self.clip = clip
        self.noise_multiplier = noise_multiplier
        self.l2 = l2
        self.seed = seed

    def _check_params(self):
        check_int("embedding_dim", self.embedding_dim)
        check_int("rounds", self.rounds)
        check_int("clients_per_round", self.clients_per_round)
        check_int("local_steps", self.local_steps)
        check_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)
        check_number("clip", self.clip, low=0.0, low_inclusive=False, allow_inf=True)
        check_number("noise_multiplier", self.noise_multiplier, low=0.0)
        check_number("l2", self.l2, low=0.0, low_inclusive=False)
        check_seed(self.seed)

    def _fit(self, X, vectors, train):
        num_users, num_items = X.shape
        if self.clients_per_round > num_users:
            raise ParameterError(f"clients_per_round={self.clients_per_round} must be in "
                                 f"[1, {num_users}] (the number of users)")
        if self.noise_multiplier > 0 and math.isinf(self.clip):
            raise ParameterError("noise_multiplier > 0 needs a finite clip (the noise is "
                                 "noise_multiplier * clip)")
        rng = np.random.default_rng(self.seed)
        Q = rng.normal(0, 1.0 / math.sqrt(self.embedding_dim),
                       (num_items, self.embedding_dim))
        rows = X.toarray().astype(np.float64)
        metrics = []
        for round_index in range(self.rounds):
            cohort = np.sort(rng.choice(num_users, size=self.clients_per_round, replace=False))
            total = np.zeros_like(Q)
            losses, norms = [], []
            for user in cohort:
                local = Q.copy()
                for step in range(self.local_steps):
                    loss, gradient = _client_loss_and_gradient(rows[user], local, self.l2)
                    if step == 0:
                        losses.append(loss)
                    local -= self.learning_rate * gradient
                update = local - Q
                norm = float(np.linalg.norm(update))
                norms.append(norm)
                total += update * min(1.0, self.clip / max(norm, 1e-12))
            if self.noise_multiplier > 0:
                total += rng.normal(0, self.noise_multiplier * self.clip, Q.shape)
            Q = Q + total / len(cohort)
            metrics.append({"round": round_index + 1, "client_loss": float(np.mean(losses)),
                            "update_norm": float(np.mean(norms)),
                            "clipped_fraction": float(np.mean(np.asarray(norms) > self.clip))})
        self.item_factors_ = Q.astype(np.float32)
        self.item_bias_ = np.zeros(num_items, np.float32)
        self.metrics_ = pd.DataFrame(metrics)
        self.sampling_rate_ = self.clients_per_round / num_users
        self.epsilon_ = (math.inf if self.noise_multiplier == 0 else epsilon_for(
            self.noise_multiplier, self.sampling_rate_, self.rounds, 1.0 / (10 * num_users)))

    def _score(self, user_index):
        users = np.stack([user_vector_from_history(self.train_matrix_[u].indices,
                                                   self.item_factors_, l2=self.l2)
                          for u in user_index])
        return users @ self.item_factors_.T.astype(np.float64)


def federated_fit(train: pd.DataFrame, *, rounds: int = 50, clients_per_round: int = 32,
                  local_steps: int = 1, clip: float = math.inf, noise: float = 0.0,
                  learning_rate: float = 1.0, embedding_dim: int = 16, l2: float = 1.0,
                  seed: int = 0) -> tuple[FederatedMatrixFactorization, pd.DataFrame]:
    """Train :class:`FederatedMatrixFactorization`; return the model and its per-round metrics.

    ``noise`` is the noise multiplier (standard deviation ``noise * clip``).
    The metrics frame has columns round, client_loss, update_norm, clipped_fraction.
    """
    model = FederatedMatrixFactorization(
        embedding_dim=embedding_dim, rounds=rounds, clients_per_round=clients_per_round,
        local_steps=local_steps, learning_rate=learning_rate, clip=clip, noise_multiplier=noise,
        l2=l2, seed=seed).fit(train)
    return model, model.metrics_


# --- On-device scoring ------------------------------------------------------------------

class ItemIndex:
    """The server half of on-device scoring: item ids, item vectors and biases, no users.

    Parameters
    ----------
    item_ids : array of shape (n_items,)
    item_factors : ndarray of shape (n_items, dim)
    item_bias : ndarray of shape (n_items,), optional
    """

    def __init__(self, item_ids, item_factors, item_bias=None):
        self.item_ids = np.asarray(item_ids)
        self.item_factors = np.asarray(item_factors, dtype=np.float64)
        if self.item_factors.ndim != 2 or len(self.item_factors) != len(self.item_ids):
            raise ParameterError(f"item_factors must have shape ({len(self.item_ids)}, dim), "
                                 f"got {self.item_factors.shape}")
        self.item_bias = (np.zeros(len(self.item_ids)) if item_bias is None
                          else np.asarray(item_bias, dtype=np.float64))
        self._position = {item: index for index, item in enumerate(self.item_ids.tolist())}

    @classmethod
    def from_model(cls, model) -> ItemIndex:
        """The item side of a fitted factor model (``item_factors_``, optional ``item_bias_``)."""
        if not hasattr(model, "item_factors_"):
            raise NotFittedError(f"{type(model).__name__} has no item_factors_: fit it first "
                                 "(or it is not a factor model)")
        return cls(model.item_ids_, model.item_factors_, getattr(model, "item_bias_", None))

    def user_vector(self, history_item_ids: Sequence, *, l2: float = 1.0) -> np.ndarray:
        """Client side: the user's vector from their own history of item ids."""
        unknown = [item for item in history_item_ids if item not in self._position]
        if unknown:
            raise DataError(f"{len(unknown)} history item(s) are not in the index, "
                            f"e.g. {unknown[:5]}")
        indices = np.array([self._position[item] for item in history_item_ids], dtype=np.int64)
        return user_vector_from_history(indices, self.item_factors, l2=l2)

    def score(self, user_vector: np.ndarray) -> np.ndarray:
        """Client side: scores of every item in the index, shape (n_items,)."""
        user_vector = np.asarray(user_vector, dtype=np.float64)
        if user_vector.shape != (self.item_factors.shape[1],):
            raise ParameterError(f"user_vector must have shape ({self.item_factors.shape[1]},), "
                                 f"got {user_vector.shape}")
        return self.item_factors @ user_vector + self.item_bias


# --- Membership inference -----------------------------------------------------------------

def membership_inference_auc(model, members: pd.DataFrame, non_members: pd.DataFrame) -> float:
    """AUC of the score-threshold membership attack (Yeom et al. 2018).

    The attacker guesses "was in training" when the model's score of the pair
    (user, item) is high; for the losses used here a higher score is a lower loss,
    so this is Yeom's loss-threshold attack. The AUC sweeps every threshold:
    0.5 means the scores say nothing about membership, 1.0 full leakage.

    Parameters
    ----------
    model : fitted, with ``score(user_ids, item_ids)`` (any :class:`InterestModel`)
    members, non_members : DataFrames with user_id, item_id
        Training interactions and held-out interactions of users the model knows.
    """
    from sklearn.metrics import roc_auc_score

    if not callable(getattr(model, "score", None)):
        raise ParameterError(f"model must have a score(user_ids, item_ids) method, got "
                             f"{type(model).__name__}")
    for name, frame in (("members", members), ("non_members", non_members)):
        if not isinstance(frame, pd.DataFrame):
            raise ParameterError(f"{name} must be a DataFrame, got {type(frame).__name__}")
        check_interactions(frame)
        if frame.empty:
            raise DataError(f"{name} has no rows")
    signals = [_pair_scores(model, members), _pair_scores(model, non_members)]
    labels = np.r_[np.ones(len(signals[0])), np.zeros(len(signals[1]))]
    return float(roc_auc_score(labels, np.r_[signals[0], signals[1]]))


def _pair_scores(model, frame: pd.DataFrame) -> np.ndarray:
    """The model's score of each (user_id, item_id) row, one user at a time."""
    scores = np.empty(len(frame))
    users = frame[USER_COL].to_numpy()
    items = frame[ITEM_COL].to_numpy()
    for user in pd.unique(users):
        rows = np.flatnonzero(users == user)
        scores[rows] = np.asarray(model.score([user], items[rows]), dtype=np.float64)[0]
    return scores
