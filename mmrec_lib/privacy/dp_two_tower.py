"""A content two-tower trained with user-level DP-SGD: the towers share a few parameters, content is public."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from mmrec_lib._validation import (
    check_choice,
    check_int,
    check_item_vectors,
    check_number,
)
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interest import InterestModel
from mmrec_lib.privacy.accounting import epsilon_for
from mmrec_lib.privacy.dp_sgd import _tf, check_dp_settings, clip_and_noise

__all__ = ["public_content_vectors", "DPTwoTower"]


def public_content_vectors(item_features: Mapping[str, pd.DataFrame], *,
                           dim: int | None = 32) -> pd.DataFrame:
    """One public content vector per item: the modalities fused, reduced by PCA, whitened.

    Each modality is centred and its rows L2-normalised (so that no modality
    dominates by its width), the blocks are concatenated, and the result is
    projected on its first ``dim`` principal components, each scaled to unit
    variance. Everything here is a function of the clips' **content** (text,
    audio, frames), which is public: it costs no privacy budget.

    Parameters
    ----------
    item_features : dict {modality: DataFrame (n_items, d)}
        As returned by :func:`mmrec_lib.features.item_features`; same index in every frame.
    dim : int >= 1 or None
        Number of principal components kept (None keeps the fused vectors as they are).

    Returns
    -------
    DataFrame (n_items, dim) indexed by item id.
    """
    if not isinstance(item_features, Mapping) or not item_features:
        raise ParameterError("item_features must be a non-empty dict {modality: DataFrame}")
    frames = [check_item_vectors(frame, name=f"item_features[{name!r}]")
              for name, frame in item_features.items()]
    index = frames[0].index
    for name, frame in zip(item_features, frames):
        if not frame.index.equals(index):
            raise DataError(f"item_features[{name!r}] is not indexed like the first modality")
    blocks = []
    for frame in frames:
        values = frame.to_numpy(np.float64)
        values = values - values.mean(axis=0)
        blocks.append(values / np.maximum(np.linalg.norm(values, axis=1, keepdims=True), 1e-12))
    fused = np.hstack(blocks)
    if dim is not None:
        dim = check_int("dim", dim, high=min(fused.shape))
        fused = fused - fused.mean(axis=0)
        left, singular, _ = np.linalg.svd(fused, full_matrices=False)
        fused = left[:, :dim] * math.sqrt(len(fused))  # unit variance per component
        fused *= np.sign(fused[np.argmax(np.abs(fused), axis=0), np.arange(dim)])  # fixed sign
    columns = [f"content_{j}" for j in range(fused.shape[1])]
    return pd.DataFrame(fused.astype(np.float32), index=index, columns=columns)


class DPTwoTower(InterestModel):
    r"""Two-tower recommender on public content, trained with DP-SGD whose unit is the **user**.

    Item tower :math:`f(x_i) = W^\top x_i` with :math:`x_i` the item's public content
    vector (:func:`public_content_vectors`); user tower :math:`g(u) = V^\top \bar x_u`
    with :math:`\bar x_u` the mean content vector of the user's history, computed
    on the user's device. Score :math:`s(u, i) = g(u) \cdot f(x_i)`. The only trained
    parameters are ``W`` and ``V`` (``content_dim x embedding_dim`` each, about a
    thousand numbers): no per-user or per-item table, so the noise of DP-SGD lands
    on a few shared parameters instead of every user's row.

    Training (DP-SGD by hand, :func:`clip_and_noise`): each step draws a **Poisson**
    sample of users (each independently with probability ``sampling_rate``, the
    sampling the accountant assumes). A sampled user's loss is the mean BPR loss
    :math:`-\log\sigma(s(u,i) - s(u,j))` over up to ``max_positives`` of their
    training items ``i`` (each scored with :math:`\bar x_u` computed **without**
    ``i``, so the model cannot learn "an item is close to itself") and uniform
    negatives ``j``. The gradient of that loss is the user's per-example gradient:
    it is clipped to L2 norm ``clip``, the clipped gradients are summed, Gaussian
    noise of standard deviation ``noise_multiplier * clip`` is added and the sum is
    divided by the expected number of sampled users. Adam (or SGD with momentum,
    ``optimizer``) then takes the step (post-processing: no privacy cost).

    Privacy unit: because a user's whole contribution is clipped together,
    ``epsilon_`` (:func:`epsilon_for` of the run) is **user-level**, which implies
    the same ``(epsilon, delta)`` for one interaction (example-level). The user's
    own history is read on their device to score for them and never enters the
    released parameters except through the clipped, noised gradients.

    What is *not* private: ``history_`` (per-step mean loss and the median / 90th
    percentile of the per-user gradient norms, for choosing ``clip``) is computed on
    the raw data; it is a diagnostic, not part of the released model. The number of
    users (the averaging denominator) and the catalogue (every item with a content
    vector) are treated as public.

    Scores of items already in the user's history are computed from the *rest* of
    the history (the leave-one-out used in training), so a seen item is not
    scored high just because it is an input; unseen items use the whole history.
    Ranking of unseen items is unaffected.

    Parameters
    ----------
    embedding_dim : int
    epochs : float > 0
        Expected passes over the users: ``steps = round(epochs / sampling_rate)``.
    sampling_rate : float in (0, 1]
        Poisson sampling probability of a user per step.
    learning_rate : float > 0
        The optimiser's step size.
    clip : float > 0 (inf for no clipping)
    noise_multiplier : float >= 0
        ``0`` gives non-private training of the same model (``epsilon_ = inf``).
    max_positives : int
        Training items of a user per step (a random subset when the user has more).
    optimizer : {"adam", "momentum"}
        How the noised mean gradient becomes a step (post-processing, no privacy cost).
        Adam divides by a running RMS, so a coordinate whose gradient is mostly noise
        still takes steps of size ``learning_rate``; SGD with momentum steps in
        proportion to the (averaged) noisy gradient.
    momentum : float in [0, 1)
        Momentum of ``optimizer="momentum"``.
    bias_noise_multiplier : float >= 0, optional
        None (default): the item biases are trained by DP-SGD with the other
        parameters. A number: they are instead **released once**, before training,
        as ``log(1 + noisy histogram)`` of per-user-normalised counts (each user adds
        ``1/sqrt(|history|)`` to each of their items: L2 sensitivity 1) with Gaussian
        noise of this multiplier, and kept fixed; DP-SGD then trains only the towers
        and the content bias. ``epsilon_`` composes both Gaussian mechanisms (RDP,
        :func:`epsilon_for` with ``release_noise``). ``0`` releases exact counts
        (not private: ``epsilon_ = inf``).
    delta : float in (0, 1), optional
        Default ``1 / number of training interactions`` (smaller than ``1 / users``).
    seed : int
    """

    _needs_item_vectors = True

    def __init__(self, *, embedding_dim: int = 16, epochs: float = 20.0,
                 sampling_rate: float = 0.2, learning_rate: float = 0.05, clip: float = 1.0,
                 noise_multiplier: float = 1.0, max_positives: int = 64,
                 loss: str = "softmax", item_bias: bool = True, optimizer: str = "adam",
                 momentum: float = 0.9, bias_noise_multiplier: float | None = None,
                 delta: float | None = None, seed: int = 0):
        self.embedding_dim = embedding_dim
        self.epochs = epochs
        self.sampling_rate = sampling_rate
        self.learning_rate = learning_rate
        self.clip = clip
        self.noise_multiplier = noise_multiplier
        self.max_positives = max_positives
        self.loss = loss
        self.item_bias = item_bias
        self.optimizer = optimizer
        self.momentum = momentum
        self.bias_noise_multiplier = bias_noise_multiplier
        self.delta = delta
        self.seed = seed

    def _check_params(self):
        check_int("embedding_dim", self.embedding_dim)
        check_number("epochs", self.epochs, low=0.0, low_inclusive=False)
        check_number("sampling_rate", self.sampling_rate, low=0.0, high=1.0,
                     low_inclusive=False)
        check_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)
        check_number("clip", self.clip, low=0.0, low_inclusive=False, allow_inf=True)
        check_number("noise_multiplier", self.noise_multiplier, low=0.0)
        check_int("max_positives", self.max_positives)
        check_choice("loss", self.loss, ("softmax", "bpr"))
        check_choice("optimizer", self.optimizer, ("adam", "momentum"))
        check_number("momentum", self.momentum, low=0.0, high=1.0, high_inclusive=False)
        if self.bias_noise_multiplier is not None:
            check_number("bias_noise_multiplier", self.bias_noise_multiplier, low=0.0)
            if not self.item_bias:
                raise ParameterError("bias_noise_multiplier needs item_bias=True (it releases "
                                     "the item biases)")
        if not isinstance(self.item_bias, bool):
            raise ParameterError(f"item_bias={self.item_bias!r} must be True or False")
        check_dp_settings(self)

    # ------------------------------------------------------------------ training

    def _fit(self, X, vectors, train):
        tf = _tf()
        num_users, num_items = X.shape
        content = vectors.astype(np.float32)
        dim_in = content.shape[1]
        rng = np.random.default_rng(self.seed)
        generator = tf.random.Generator.from_seed(self.seed)
        scale = 1.0 / math.sqrt(dim_in)
        V = tf.Variable(rng.normal(0, scale, (dim_in, self.embedding_dim)).astype(np.float32))
        W = tf.Variable(rng.normal(0, scale, (dim_in, self.embedding_dim)).astype(np.float32))
        content_bias = tf.Variable(np.zeros(dim_in, np.float32))
        released = self.bias_noise_multiplier is not None
        item_bias = tf.Variable(self._released_biases(X, rng) if released
                                else np.zeros(num_items, np.float32))
        parameters = [V, W, content_bias, item_bias]
        optimizer = (tf.keras.optimizers.Adam(self.learning_rate) if self.optimizer == "adam"
                     else tf.keras.optimizers.SGD(self.learning_rate, momentum=self.momentum))
        content_t = tf.constant(content)
        histories = np.split(X.indices, X.indptr[1:-1])
        sums = np.asarray(X @ content, dtype=np.float32)          # (users, dim_in)
        counts = np.diff(X.indptr)
        rate = float(self.sampling_rate)
        expected = rate * num_users
        steps = max(1, int(round(self.epochs / rate)))
        self.history_ = {"loss": [], "norm_median": [], "norm_p90": [], "clipped_fraction": []}
        for _ in range(steps):
            chosen = np.flatnonzero(rng.random(num_users) < rate)
            chosen = chosen[counts[chosen] >= 2]  # leave-one-out needs a second item
            if len(chosen) == 0:  # an empty Poisson sample: the step is pure noise
                gradients = [tf.zeros_like(p) for p in parameters]
                gradients = [g + (generator.normal(tf.shape(g), stddev=self.noise_multiplier
                                                   * self.clip) if self.noise_multiplier > 0
                                  else 0.0) for g in gradients]
                optimizer.apply_gradients(zip([g / expected for g in gradients], parameters))
                continue
            users, positives, negatives, mask = self._batch(rng, chosen, histories, num_items)
            context = ((sums[users][:, None, :] - content[positives])
                       / (counts[users][:, None, None] - 1.0)).astype(np.float32)  # (B, P, k)
            per_user, losses = _per_user_gradients(
                tf, parameters, tf.constant(context), tf.constant(positives),
                tf.constant(negatives), content_t, tf.constant(mask), self.loss)
            if not self.item_bias or released:  # not trained: not clipped, not noised
                per_user[3] = tf.zeros_like(per_user[3])
            norms = np.sqrt(sum(np.sum(g.numpy().reshape(len(users), -1) ** 2, axis=1)
                                for g in per_user))
            self.history_["loss"].append(float(np.mean(losses)))
            self.history_["norm_median"].append(float(np.median(norms)))
            self.history_["norm_p90"].append(float(np.quantile(norms, 0.9)))
            self.history_["clipped_fraction"].append(float(np.mean(norms > self.clip)))
            noisy = clip_and_noise(per_user, clip=self.clip,
                                   noise_multiplier=self.noise_multiplier,
                                   denominator=expected, generator=generator)
            if not self.item_bias or released:
                noisy[3] = tf.zeros_like(noisy[3])
            optimizer.apply_gradients(zip(noisy, parameters))
        self.user_projection_ = V.numpy()
        self.item_projection_ = W.numpy()
        self.content_ = content
        self.item_factors_ = content @ self.item_projection_   # the item tower, for ItemIndex
        self.item_bias_ = content @ content_bias.numpy() + item_bias.numpy()
        self.steps_ = steps
        self.sampling_rate_ = rate
        self.delta_ = self.delta if self.delta is not None else 1.0 / X.nnz
        private = self.noise_multiplier > 0 and (not released or self.bias_noise_multiplier > 0)
        self.epsilon_ = (math.inf if not private
                         else epsilon_for(self.noise_multiplier, rate, steps, self.delta_,
                                          release_noise=self.bias_noise_multiplier))

    def _released_biases(self, X, rng):
        """Item biases from one Gaussian histogram of per-user-normalised counts.

        User ``u`` adds ``1 / sqrt(|H_u|)`` to each item of their history (their
        vector has L2 norm 1: sensitivity 1 for adding or removing a user); Gaussian
        noise of standard deviation ``bias_noise_multiplier`` is added to every
        item's sum once; the bias is ``log(max(noisy, 0) + 1)``, centred.
        """
        counts = np.diff(X.indptr).astype(np.float64)
        weights = np.repeat(1.0 / np.sqrt(np.maximum(counts, 1.0)), np.diff(X.indptr))
        histogram = np.bincount(X.indices, weights=weights, minlength=X.shape[1])
        if self.bias_noise_multiplier > 0:
            histogram = histogram + rng.normal(0.0, self.bias_noise_multiplier, len(histogram))
        bias = np.log(np.maximum(histogram, 0.0) + 1.0)
        self.released_histogram_ = histogram
        return (bias - bias.mean()).astype(np.float32)

    def _batch(self, rng, chosen, histories, num_items):
        """Padded (users, positives, negatives, mask) for the sampled users."""
        width = min(self.max_positives, int(max(len(histories[u]) for u in chosen)))
        positives = np.zeros((len(chosen), width), np.int64)
        mask = np.zeros((len(chosen), width), np.float32)
        for row, user in enumerate(chosen):
            items = histories[user]
            if len(items) > width:
                items = rng.choice(items, width, replace=False)
            positives[row, :len(items)] = items
            mask[row, :len(items)] = 1.0
        negatives = rng.integers(0, num_items, positives.shape)
        return chosen, positives, negatives, mask

    # ------------------------------------------------------------------ scoring

    def user_vector(self, history: np.ndarray) -> np.ndarray:
        """The user tower on the device: ``V^T`` times the mean content of ``history`` (indices)."""
        history = np.asarray(history, dtype=np.int64)
        if history.size == 0:
            return np.zeros(self.embedding_dim)
        return self.content_[history].mean(axis=0) @ self.user_projection_

    def leave_one_out_scores(self, item_ids) -> np.ndarray:
        """Catalogue scores of a history's items, each from the **rest** of the history.

        Row ``r`` scores every catalogue item for a user whose history is
        ``item_ids`` without its ``r``-th item: the context the model was trained
        with (and what :meth:`score` uses for seen items). It needs only the
        released parameters and the history, so it works for a user the model never
        saw: what a membership attacker holding the model and a candidate user's
        views can compute (:func:`~mmrec_lib.privacy.user_log_likelihood`).

        Parameters
        ----------
        item_ids : sequence of catalogue item ids, at least 2, no repeats

        Returns
        -------
        ndarray of shape (len(item_ids), n_catalogue_items), columns in ``item_ids_`` order.
        """
        from mmrec_lib.utils import check_is_fitted

        check_is_fitted(self)
        history = self.item_encoder_.transform(list(item_ids))
        if len(history) < 2 or len(np.unique(history)) != len(history):
            raise DataError(f"a leave-one-out history needs >= 2 distinct items, got "
                            f"{len(np.unique(history))} distinct of {len(history)}")
        user_side = self.content_[history].astype(np.float64) @ self.user_projection_
        context = (user_side.sum(axis=0)[None, :] - user_side) / (len(history) - 1)
        return context @ self.item_factors_.astype(np.float64).T + self.item_bias_

    def _score(self, user_index):
        items = self.item_factors_.astype(np.float64)                     # (n_items, d)
        user_side = self.content_.astype(np.float64) @ self.user_projection_  # (n_items, d)
        scores = np.empty((len(user_index), len(items)))
        for row, user in enumerate(user_index):
            history = self.train_matrix_[user].indices
            total = user_side[history].sum(axis=0)
            scores[row] = items @ total / max(len(history), 1) + self.item_bias_
            if len(history) >= 2:  # seen items: scored from the rest of the history
                rest = (total[None, :] - user_side[history]) / (len(history) - 1)
                scores[row, history] = (np.sum(rest * items[history], axis=1)
                                        + self.item_bias_[history])
        return scores


def _per_user_gradients(tf, parameters, context, positives, negatives, content, mask, loss):
    """Per-user gradients of the user's masked mean loss, in one backward pass.

    The trick of :func:`~mmrec_lib.privacy.bpr_per_example_gradients` for shared
    parameters: every user reads its **own copy** of each parameter (tiled along
    a batch axis), so the gradient of the summed loss with respect to copy ``b``
    is user ``b``'s gradient alone.

    ``parameters`` = [V (k, d), W (k, d), content bias (k,), item bias (n_items,)];
    ``context`` (B, P, k) the leave-one-out history means, ``positives`` /
    ``negatives`` (B, P) item indices, ``content`` (n_items, k), ``mask`` (B, P).
    """
    batch = tf.shape(context)[0]
    copies = [tf.tile(p[None], tf.concat([[batch], tf.ones(len(p.shape), tf.int32)], 0))
              for p in parameters]
    with tf.GradientTape() as tape:
        tape.watch(copies)
        V, W, content_bias, item_bias = copies
        user = tf.einsum("bpk,bkd->bpd", context, V)
        # item tower and item bias of every item, per copy: (B, n_items, d), (B, n_items)
        items = tf.einsum("nk,bkd->bnd", content, W)
        bias = tf.einsum("nk,bk->bn", content, content_bias) + item_bias
        if loss == "softmax":  # full softmax over the catalogue
            logits = tf.einsum("bpd,bnd->bpn", user, items) + bias[:, None, :]
            per_pair = -tf.gather(tf.nn.log_softmax(logits, axis=-1), positives, batch_dims=2)
        else:  # BPR with one uniform negative per positive
            positive = (tf.reduce_sum(user * tf.gather(items, positives, batch_dims=1), -1)
                        + tf.gather(bias, positives, batch_dims=1))
            negative = (tf.reduce_sum(user * tf.gather(items, negatives, batch_dims=1), -1)
                        + tf.gather(bias, negatives, batch_dims=1))
            per_pair = tf.math.softplus(negative - positive)
        losses = tf.reduce_sum(per_pair * mask, axis=1) / tf.maximum(
            tf.reduce_sum(mask, axis=1), 1.0)
        total = tf.reduce_sum(losses)
    return tape.gradient(total, copies), losses.numpy()
