"""Federated averaging, simulated: user vectors stay on the device, the server sees clipped item updates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import ParameterError
from mmrec_lib.interest import InterestModel
from mmrec_lib.privacy.accounting import epsilon_for
from mmrec_lib.privacy.on_device import ridge_user_vector, user_vector_from_history

__all__ = ["FederatedMatrixFactorization", "federated_fit"]


def _client_loss_and_gradient(y: np.ndarray, Q: np.ndarray, l2: float):
    """Squared error of the user's row, with p solved on the device, and its gradient in Q."""
    p = ridge_user_vector(y, Q, l2)
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

    ``learning_rate=None`` (default) is ``1.6 * n_items``: a client's loss is a
    mean over all items, so the gradient of one item row is of order
    ``1 / n_items`` and a fixed rate of 1 barely moves ``Q`` on a catalogue of
    hundreds of clips (measured on MiniClips small: below popularity).
    """

    def __init__(self, *, embedding_dim: int = 16, rounds: int = 50, clients_per_round: int = 32,
                 local_steps: int = 1, learning_rate: float | None = None,
                 clip: float = math.inf,
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
        if self.learning_rate is not None:
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
        learning_rate = 1.6 * num_items if self.learning_rate is None else self.learning_rate
        self.learning_rate_ = learning_rate
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
                    local -= learning_rate * gradient
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
                  learning_rate: float | None = None, embedding_dim: int = 16, l2: float = 1.0,
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
