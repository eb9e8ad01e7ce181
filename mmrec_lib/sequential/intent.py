"""A choice model of each view with a latent session intent, fitted full batch.

Introduced in chapter 09. SessionSASRec learns a user's standing taste by
minibatch SGD through a shared network, and on MiniClips it loses most where
that taste explains the view (``benchmarks/sequential_breakdown.py``). This
model writes the choice down instead, as a conditional logit (McFadden's
multinomial choice model) over the clips the user could pick at that moment,
with a **latent intent** per session (the idea of mixture / latent-class choice
models and of session-intent recommenders):

- each clip ``j`` belongs softly to ``topics`` learned topics,
  ``m_j = softmax(V x_j)``, where ``x_j`` is its (standardised) content vector;
- its taste features are ``z_j = [W x_j, topic_scale * m_j] + C[creator_j]``;
- a session has one intent ``f`` (a topic), unobserved. Under intent ``f`` the
  logit of clip ``j`` at a view of user ``u`` is::

      theta_u . z_j + b_j + w_f m_jf + w_ep [j is the next episode of a series u watched]
                      + [the view continues a session] w_cr [creator_j = creator of the previous view]

- the intent's prior is ``softmax(phi_0 + phi_u + tau * theta_u[topics])``: a
  user who likes a topic also opens sessions on it;
- a session's earlier views are evidence on its intent (Bayes' rule), and the
  next view's probability mixes the per-intent laws by that posterior.

Every parameter is fitted at once on the exact likelihood of all training
views (each view's probability given the earlier views of its session), full
batch with Adam. Every user's vector moves at every step, under an L2 penalty
(``theta_l2``, ``intent_l2``) that acts as a Gaussian prior; the step with the
best validation NDCG@10 is kept. A session is a run of views less than
``session_gap_s`` apart (observable from the timestamps).

Memory and time grow with (training views) x (catalogue items): the fit holds a
few dense arrays of that shape (MiniClips small: 19k views x 600 clips, about
1 min on 2 cores). It is a model for catalogues of thousands, not millions.

:class:`GeometricMix` combines it with another sequential model (SessionSASRec)
as a weighted product of their probabilities, the weight chosen on validation:
the two err differently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ModelError, ParameterError
from mmrec_lib.interactions import ITEM_COL, TIMESTAMP_COL
from mmrec_lib.sequential.base import SequentialModel
from mmrec_lib.sequential.data import sort_interactions
from mmrec_lib.sequential.evaluation import next_item_metrics
from mmrec_lib.sequential.session import _seconds, next_episode_rows, timed_histories
from mmrec_lib.sequential.side import split_by_user
from mmrec_lib.utils import check_is_fitted

__all__ = ["SessionIntentModel", "GeometricMix", "SESSION_GAP_S"]

# Views less than this apart belong to one session (MiniClips: within a session at most
# 6 minutes, between sessions at least 20).
SESSION_GAP_S = 1200.0
# Above this many (views x items) cells a full-batch fit would not fit in memory.
_MAX_CELLS = 300_000_000


def _log_softmax_rows(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax over the ``allowed`` entries; ``-inf`` elsewhere."""
    scores = np.where(allowed, scores, -np.inf)
    top = np.max(scores, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        norm = np.log(np.exp(scores - top).sum(axis=1, keepdims=True))
    return np.where(allowed, scores - top - norm, -np.inf)


class _Views:
    """Every view (and request) the network reads, as flat arrays over rows.

    ``item`` is the chosen item's index (-1 for a request: a row to score, not
    evidence). ``earlier`` holds (row, earlier row of the same session) pairs.
    """

    def __init__(self, user, item, continues, previous_creator, available, followed, earlier):
        self.user = np.asarray(user, np.int32)
        self.item = np.asarray(item, np.int64)
        self.continues = np.asarray(continues, np.float32)
        self.previous_creator = np.asarray(previous_creator, np.int32)
        self.available = available
        self.followed = followed
        self.earlier = np.asarray(earlier, np.int64).reshape(-1, 2)


class SessionIntentModel(SequentialModel):
    """Conditional-logit choice model with standing taste, a latent session intent and transitions.

    Introduced in chapter 09; the module docstring has the model. ``fit(train,
    item_vectors, *, validation=None, item_side=None, release_time=None)``:

    - ``train`` (and ``validation``) need a ``timestamp`` column (the sessions);
    - ``item_vectors`` (required): content vectors indexed by item id, every
      catalogue item;
    - ``item_side`` (optional): the ``creator_column`` and ``series_columns``
      (series id, episode number) for the same-creator and next-episode terms;
    - ``release_time`` (optional, Series indexed by item id): a view chooses among
      the items released by then (and, with ``exclude_seen``, not watched before).

    Scoring: :meth:`score_histories` takes each history's view ``times``, the
    request time ``at`` and the ``users``, as SessionSASRec's;
    :func:`~mmrec_lib.sequential.evaluate_next_item` passes them. A history
    without times is one session that the request continues; without ``at`` the
    request continues the last view's session. An unknown user gets the prior
    mean (zero taste). The scores are log-probabilities over the allowed items:
    ``candidates`` when given, else the items released by ``at`` (when known)
    and, with ``exclude_seen``, not in the history.

    Parameters
    ----------
    topics : int >= 1
        Number of soft topics (the intents).
    rank : int >= 0
        Dimensions of the linear content projection beside the topics.
    topic_scale : float > 0
        Scale of the topic memberships in the taste features.
    theta_l2, intent_l2 : float >= 0
        L2 penalties on each user's taste and intent-prior vectors (sums, not means:
        a Gaussian prior whose weight does not grow with the user's views).
    weight_l2 : float >= 0
        L2 penalty (per training view) on the shared weights W, C and (x 0.01) V.
    learning_rate : float > 0
    steps : int
        Full-batch Adam steps; the best on validation is kept (checked every
        ``eval_every`` steps).
    session_gap_s : float > 0
    exclude_seen : bool
        A user does not pick an item twice (MiniClips, MovieLens); with False,
        repeats are part of the choice set.
    creator_column : str
    series_columns : (str, str)
    seed : int

    Attributes (after ``fit``)
    --------------------------
    best_step_ : int
    history_ : dict with ``"step"`` and ``"val_ndcg@10"`` lists
    weights_ : dict of the fitted arrays
    """

    _uses_context = True
    _needs_item_vectors = True

    def __init__(self, *, topics: int = 10, rank: int = 8, topic_scale: float = 3.0,
                 theta_l2: float = 20.0, intent_l2: float = 1.0, weight_l2: float = 1e-3,
                 learning_rate: float = 0.02, steps: int = 600, eval_every: int = 50,
                 session_gap_s: float = SESSION_GAP_S, exclude_seen: bool = True,
                 creator_column: str = "creator_id",
                 series_columns: tuple = ("series_id", "episode"), seed: int = 0):
        self.topics = topics
        self.rank = rank
        self.topic_scale = topic_scale
        self.theta_l2 = theta_l2
        self.intent_l2 = intent_l2
        self.weight_l2 = weight_l2
        self.learning_rate = learning_rate
        self.steps = steps
        self.eval_every = eval_every
        self.session_gap_s = session_gap_s
        self.exclude_seen = exclude_seen
        self.creator_column = creator_column
        self.series_columns = (tuple(series_columns) if isinstance(series_columns, list)
                               else series_columns)
        self.seed = seed

    def _check_params(self):
        check_int("topics", self.topics)
        check_int("rank", self.rank, low=0)
        check_number("topic_scale", self.topic_scale, low=0, low_inclusive=False)
        for name in ("theta_l2", "intent_l2", "weight_l2"):
            check_number(name, getattr(self, name), low=0)
        check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        check_int("steps", self.steps)
        check_int("eval_every", self.eval_every)
        check_number("session_gap_s", self.session_gap_s, low=0, low_inclusive=False)
        if not isinstance(self.exclude_seen, bool):
            raise ParameterError(f"exclude_seen={self.exclude_seen!r} must be True or False")
        if not isinstance(self.creator_column, str):
            raise ParameterError("creator_column must be a column name (str)")
        if isinstance(self.series_columns, str) or len(self.series_columns) != 2 or not all(
                isinstance(c, str) for c in self.series_columns):
            raise ParameterError("series_columns must be two column names: (series, episode)")
        check_seed(self.seed)

    # ------------------------------------------------------------------ fit

    def fit(self, train: pd.DataFrame, item_vectors: pd.DataFrame | None = None, *,
            validation: pd.DataFrame | None = None, item_side: pd.DataFrame | None = None,
            release_time: pd.Series | None = None):
        """Fit on ``train`` (with a ``timestamp`` column); see the class docstring."""
        if not isinstance(train, pd.DataFrame) or TIMESTAMP_COL not in train.columns:
            raise DataError(f"SessionIntentModel needs a {TIMESTAMP_COL!r} column in train "
                            "(the sessions)")
        if validation is not None and (not isinstance(validation, pd.DataFrame)
                                       or TIMESTAMP_COL not in validation.columns):
            raise DataError(f"validation needs a {TIMESTAMP_COL!r} column")
        if item_side is not None:
            if not isinstance(item_side, pd.DataFrame):
                raise ParameterError("item_side must be a DataFrame indexed by item id")
            missing = [c for c in (self.creator_column, *self.series_columns)
                       if c not in item_side.columns]
            if missing:
                raise DataError(f"item_side has no column {missing} (creator_column and "
                                "series_columns)")
        if release_time is not None and not isinstance(release_time, pd.Series):
            raise ParameterError("release_time must be a pandas Series indexed by item id")
        self._item_side, self._release = item_side, release_time
        try:
            return super().fit(train, item_vectors, validation=validation)
        finally:
            del self._item_side, self._release

    def _fit(self, X, vectors, train):
        content = np.asarray(vectors, np.float64)   # finite: checked by check_item_vectors
        self.item_vectors_ = np.asarray(vectors, np.float32)
        self.content_mean_ = content.mean(axis=0)
        self.content_scale_ = content.std(axis=0) + 1e-6
        self._set_items(self._item_side, self._release, self.item_ids_)
        ordered = sort_interactions(self._raw_train)
        times = _seconds(ordered[TIMESTAMP_COL].to_numpy())
        if np.isnan(times).any():
            raise DataError("train has missing timestamps")
        self.train_times_ = split_by_user(ordered, times)
        super()._fit(X, vectors, train)

    def _set_items(self, item_side, release, item_ids):
        """Per item: creator code (-1 none), next episode's index (-1 none), release (s, NaN)."""
        n = len(item_ids)
        self.creator_ = np.full(n, -1, np.int32)
        self.next_episode_ = np.full(n, -1, np.int64)
        if item_side is not None:
            frame = item_side.reindex(item_ids)
            creators = frame[self.creator_column]
            known = creators.notna().to_numpy() & (creators.astype(str) != "").to_numpy()
            self.creator_[known] = pd.factorize(creators[known].astype(str))[0]
            series = frame[self.series_columns[0]]
            in_series = series.notna().to_numpy() & (series.astype(str) != "").to_numpy()
            codes = np.zeros(n, np.int64)
            codes[in_series] = pd.factorize(series[in_series].astype(str))[0] + 1
            episode = pd.to_numeric(frame[self.series_columns[1]], errors="coerce").to_numpy()
            self.next_episode_ = next_episode_rows(
                codes, np.where(np.isnan(episode), -1, episode).astype(np.int64))
        self.release_s_ = np.full(n, np.nan)
        if release is not None:
            values = release.reindex(item_ids)
            if values.isna().any():
                missing = np.asarray(item_ids)[values.isna().to_numpy()][:5].tolist()
                raise DataError(f"release_time has no value for item(s) {missing}")
            self.release_s_ = _seconds(values.to_numpy())

    def _views(self, sequences, times, users, requests=None, candidates=None) -> _Views:
        """Rows for every view of each sequence (item index arrays), then one request row each.

        ``times``: per sequence, float seconds or None (one session, gaps unknown);
        ``requests``: per sequence the request time (NaN: continues) or None (no request rows).
        """
        n_items = len(self.item_ids_)
        n_rows = sum(len(s) for s in sequences) + (0 if requests is None else len(sequences))
        if n_rows * n_items > _MAX_CELLS:
            raise ParameterError(f"{n_rows} views x {n_items} items is too large for a "
                                 "full-batch choice model; subsample the users")
        available = np.zeros((n_rows, n_items), bool)
        followed = np.zeros((n_rows, n_items), bool)
        user, item, continues, previous, earlier = [], [], [], [], []
        released_known = not np.isnan(self.release_s_).any()
        row = 0
        for k, sequence in enumerate(sequences):
            stamps = times[k]
            seen = np.zeros(n_items, bool)
            follow = np.zeros(n_items, bool)
            session: list[int] = []
            last_time = np.nan
            steps = list(sequence) + ([] if requests is None else [-1])
            for position, chosen in enumerate(steps):
                now = (stamps[position] if chosen >= 0 and stamps is not None
                       else requests[k] if chosen < 0 else np.nan)
                if position == 0:
                    goes_on = False
                elif np.isnan(now) or np.isnan(last_time):
                    goes_on = True           # gaps unknown: one session
                else:
                    goes_on = now - last_time < self.session_gap_s
                if not goes_on:
                    session = []
                offered = ~seen if self.exclude_seen else np.ones(n_items, bool)
                if released_known and not np.isnan(now):
                    offered &= self.release_s_ <= now + 0.5
                if chosen >= 0:
                    offered[chosen] = True
                elif candidates is not None:
                    offered = candidates[k].copy()
                available[row] = offered
                followed[row] = follow & offered
                user.append(users[k])
                item.append(chosen)
                continues.append(float(goes_on))
                previous.append(self.creator_[steps[position - 1]] if goes_on else -1)
                earlier.extend((row, r) for r in session)
                if chosen >= 0:
                    seen[chosen] = True
                    session.append(row)
                    if self.next_episode_[chosen] >= 0:
                        follow[self.next_episode_[chosen]] = True
                    last_time = now
                row += 1
        return _Views(user, item, continues, previous, available, followed, earlier)

    def _fit_sequences(self, sequences, validation):
        from mmrec_lib._env import import_tensorflow

        tf = import_tensorflow()
        indices = [np.asarray(s, np.int64) - 1 for s in sequences]
        times = list(self.train_times_)
        roles = [np.zeros(len(s), np.int8) for s in indices]
        if validation is not None:
            val_users, val_tokens = validation
            at = _seconds(self._validation_frame[TIMESTAMP_COL].to_numpy())
            for user, token, when in zip(val_users, val_tokens, at, strict=True):
                if user < 0 or token <= 0 or np.isnan(when):
                    continue         # an unknown user or item: no validation row
                indices[user] = np.r_[indices[user], token - 1]
                times[user] = np.r_[times[user], when]
                roles[user] = np.r_[roles[user], 1]
        roles = np.concatenate(roles)
        if not (roles == 0).any():
            raise DataError("train has no view to fit")
        views = self._views(indices, times, np.arange(len(indices)))
        network = _IntentNetwork(self, tf, views, len(self.user_ids_))
        train_rows = np.flatnonzero(roles == 0)
        val_rows = np.flatnonzero(roles == 1)
        self.history_ = {"step": [], "val_ndcg@10": []}
        best, best_values = -1.0, None
        for step in range(1, self.steps + 1):
            network.step(train_rows)
            if step % self.eval_every == 0 or step == self.steps:
                if len(val_rows) == 0:
                    best_values, self.best_step_ = network.values(), step
                    continue
                value = next_item_metrics(network.log_probs(val_rows), views.item[val_rows],
                                          k=10)["ndcg@10"]
                self.history_["step"].append(step)
                self.history_["val_ndcg@10"].append(round(value, 6))
                if value > best:
                    best, best_values, self.best_step_ = value, network.values(), step
        self.weights_ = best_values

    # ------------------------------------------------------------------ scoring

    def _score_rows(self, indices, times, users, requests, candidates=None) -> np.ndarray:
        from mmrec_lib._env import import_tensorflow

        tf = import_tensorflow()
        views = self._views(indices, times, users, requests, candidates)
        network = _IntentNetwork(self, tf, views, len(self.user_ids_), self.weights_)
        rows = np.flatnonzero(views.item < 0)
        return network.log_probs(rows)

    def _score_tokens(self, histories):
        n = len(histories)
        return self._score_rows([np.asarray(h, np.int64) - 1 for h in histories], [None] * n,
                                np.full(n, -1), np.full(n, np.nan))

    def _score(self, user_index):
        user_index = np.asarray(user_index)
        return self._score_rows([np.asarray(self.train_sequences_[u], np.int64) - 1
                                 for u in user_index],
                                [self.train_times_[u] for u in user_index], user_index,
                                np.full(len(user_index), np.nan))

    def score_histories(self, histories: Sequence[Sequence], *, times=None, at=None,
                        users=None, unknown: str = "error", candidates=None) -> np.ndarray:
        """Log-probabilities of the next view after each history, at ``at``, for ``users``.

        Introduced in chapter 09. As :meth:`SessionSASRecModel.score_histories`;
        entries outside the allowed items (see the class docstring) are ``-inf``.
        """
        indices, stamps, user_index, at, candidates = self._prepare(
            histories, times, at, users, unknown, candidates)
        return self._score_rows(indices, stamps, user_index, at, candidates).astype(np.float32)

    def intent_posterior(self, histories: Sequence[Sequence], *, times=None, at=None,
                         users=None, unknown: str = "error") -> np.ndarray:
        """P(intent | the session so far) at each request: shape (n_histories, topics).

        Introduced in chapter 09, to watch the posterior move as a session goes on.
        Arguments as :meth:`score_histories`; a request that opens a new session
        gets the user's prior.
        """
        from mmrec_lib._env import import_tensorflow

        indices, stamps, user_index, at, _ = self._prepare(histories, times, at, users,
                                                           unknown, None)
        views = self._views(indices, stamps, user_index, at)
        network = _IntentNetwork(self, import_tensorflow(), views, len(self.user_ids_),
                                 self.weights_)
        return np.exp(network.log_posterior(np.flatnonzero(views.item < 0)))

    def _prepare(self, histories, times, at, users, unknown, candidates):
        """Checked inputs: item indices, view times (s) or None, user indices, request times."""
        check_is_fitted(self)
        indices, stamps, at, user_index = timed_histories(
            self.item_ids_, self.user_ids_, histories, times=times, at=at, users=users,
            unknown=unknown)
        if candidates is not None:
            candidates = np.asarray(candidates)
            if candidates.dtype != bool or candidates.shape != (len(indices),
                                                                len(self.item_ids_)):
                raise ParameterError(f"candidates must be a boolean array of shape "
                                     f"{(len(indices), len(self.item_ids_))}")
        return indices, stamps, user_index, at, candidates

    def topic_memberships(self) -> pd.DataFrame:
        """Each item's soft topic memberships ``m_j`` (rows: ``item_ids_``)."""
        check_is_fitted(self)
        x = (self.item_vectors_ - self.content_mean_) / self.content_scale_
        logits = x @ self.weights_["V"]
        logits = logits - logits.max(axis=1, keepdims=True)
        m = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return pd.DataFrame(m, index=pd.Index(self.item_ids_, name=ITEM_COL),
                            columns=[f"topic_{k}" for k in range(self.topics)])

    def transition_weights(self) -> dict:
        """The fitted scalar terms: intent boost, same creator, next episode, prior tie."""
        check_is_fitted(self)
        return {name: float(self.weights_[name]) for name in ("w_intent", "w_creator",
                                                              "w_episode", "tau")}

    # ------------------------------------------------------------------ save, load

    def save(self, path) -> Path:
        """Save to a folder: ``config.json`` and ``arrays.npz`` (catalogue, sequences, weights)."""
        from mmrec_lib.sequential.neural import id_array
        from mmrec_lib.utils import atomic_dir

        check_is_fitted(self)
        path = Path(path)
        with atomic_dir(path) as folder:
            folder = Path(folder)
            params = self.get_params()
            params["series_columns"] = list(self.series_columns)
            config = {"class": type(self).__name__, "params": params,
                      "history": self.history_, "best_step": int(self.best_step_)}
            (folder / "config.json").write_text(json.dumps(config, indent=1))
            np.savez(folder / "arrays.npz", user_ids=id_array(self.user_ids_),
                     item_ids=id_array(self.item_ids_),
                     tokens=np.concatenate(self.train_sequences_),
                     lengths=np.array([len(s) for s in self.train_sequences_]),
                     times=np.concatenate(self.train_times_), item_vectors=self.item_vectors_,
                     content_mean=self.content_mean_, content_scale=self.content_scale_,
                     creator=self.creator_, next_episode=self.next_episode_,
                     release=self.release_s_,
                     **{f"w_{name}": value for name, value in self.weights_.items()})
        return path

    @classmethod
    def load(cls, path) -> SessionIntentModel:
        """Load a model saved by :meth:`save`; it scores exactly as the saved one."""
        from mmrec_lib.sequential.neural import load_saved_state

        model, config, arrays = load_saved_state(cls, path)
        model.train_times_ = np.split(arrays["times"], np.cumsum(arrays["lengths"])[:-1])
        model.item_vectors_ = arrays["item_vectors"]
        model.content_mean_, model.content_scale_ = arrays["content_mean"], arrays["content_scale"]
        model.creator_, model.next_episode_ = arrays["creator"], arrays["next_episode"]
        model.release_s_ = arrays["release"]
        model.weights_ = {key[2:]: value for key, value in arrays.items() if key.startswith("w_")}
        model.best_step_ = config["best_step"]
        return model


class _IntentNetwork:
    """The model's TensorFlow graph over one set of views (training or scoring)."""

    _NAMES = ("W", "V", "C", "theta", "phi", "phi_0", "b", "w_creator", "w_episode",
              "w_intent", "tau")

    def __init__(self, model: SessionIntentModel, tf, views: _Views, n_users: int,
                 values: dict | None = None):
        self.tf, self.model = tf, model
        x = (model.item_vectors_ - model.content_mean_) / model.content_scale_
        n_items, d = x.shape
        self.x = tf.constant(x, tf.float32)
        topics, rank = model.topics, model.rank
        width = rank + topics
        n_creators = int(max(model.creator_.max(), -1)) + 2      # row 0: no creator
        self.creator = tf.constant(model.creator_ + 1, tf.int32)
        if values is None:
            rng = np.random.default_rng(model.seed)
            values = {"W": rng.normal(0, 1 / np.sqrt(d), (d, rank)),
                      "V": rng.normal(0, 1 / np.sqrt(d), (d, topics)),
                      "C": np.zeros((n_creators, width)), "theta": np.zeros((n_users, width)),
                      "phi": np.zeros((n_users, topics)), "phi_0": np.zeros(topics),
                      "b": np.zeros(n_items), "w_creator": 0.0, "w_episode": 0.0,
                      "w_intent": 1.0, "tau": 0.0}
        self.vars = {name: tf.Variable(np.asarray(values[name], np.float32), name=name)
                     for name in self._NAMES}
        n = len(views.item)
        # Unknown users (-1) read row n_users: zeros, never trained.
        self.user = tf.constant(np.where(views.user >= 0, views.user, n_users), tf.int32)
        self.item = tf.constant(np.maximum(views.item, 0), tf.int32)
        self.continues = tf.constant(views.continues[:, None])
        self.previous = tf.constant(views.previous_creator + 1, tf.int32)
        self.mask = tf.constant(views.available)
        self.followed = tf.constant(views.followed.astype(np.float32))
        self.evidence = tf.constant((views.item >= 0).astype(np.float32)[:, None])
        earlier = views.earlier
        self.earlier = tf.sparse.reorder(tf.sparse.SparseTensor(
            earlier.astype(np.int64), np.ones(len(earlier), np.float32), (n, n)))
        self.items = views.item
        self.available = views.available
        self.optimizer = None

    def values(self) -> dict:
        return {name: variable.numpy().copy() for name, variable in self.vars.items()}

    def _per_user(self, table):
        tf = self.tf
        padded = tf.concat([table, tf.zeros((1, table.shape[1]))], axis=0)
        return tf.gather(padded, self.user)

    def parts(self):
        """Topic memberships, base logits, per-intent log normalisers, evidence, log posterior."""
        tf, v, model = self.tf, self.vars, self.model
        m = tf.nn.softmax(self.x @ v["V"], axis=-1)
        z = tf.concat([self.x @ v["W"], model.topic_scale * m], 1) + tf.gather(
            v["C"], self.creator)
        theta = self._per_user(v["theta"])
        same_creator = tf.cast(tf.equal(self.previous[:, None], self.creator[None, :])
                               & (self.previous[:, None] > 0), tf.float32)
        base = (theta @ tf.transpose(z) + v["b"][None] + v["w_episode"] * self.followed
                + self.continues * v["w_creator"] * same_creator)
        base = tf.where(self.mask, base, -1e9)
        top = tf.stop_gradient(tf.reduce_max(base, axis=1, keepdims=True))
        normaliser = tf.math.log(tf.exp(base - top) @ tf.exp(v["w_intent"] * m)) + top
        picked = (tf.gather(base, self.item, batch_dims=1)[:, None]
                  + v["w_intent"] * tf.gather(m, self.item))
        evidence = (picked - normaliser) * self.evidence           # log P(view | intent)
        prior = (v["phi_0"][None] + self._per_user(v["phi"])
                 + v["tau"] * theta[:, model.rank:])
        log_posterior = tf.nn.log_softmax(
            prior + tf.sparse.sparse_dense_matmul(self.earlier, evidence), axis=1)
        return m, base, normaliser, evidence, log_posterior

    def step(self, rows):
        tf, v, model = self.tf, self.vars, self.model
        if self.optimizer is None:
            self.optimizer = tf.keras.optimizers.Adam(model.learning_rate)
            rows_t = tf.constant(rows, tf.int32)
            n = float(len(rows))
            variables = list(v.values())

            @tf.function(autograph=False)   # no Python control flow to convert
            def step():
                with tf.GradientTape() as tape:
                    _, _, _, evidence, log_posterior = self.parts()
                    log_lik = tf.reduce_logsumexp(log_posterior + evidence, axis=1)
                    nll = -tf.reduce_sum(tf.gather(log_lik, rows_t))
                    shared = (tf.reduce_sum(v["W"] ** 2) + 0.01 * tf.reduce_sum(v["V"] ** 2)
                              + tf.reduce_sum(v["C"] ** 2))
                    penalty = (model.theta_l2 * tf.reduce_sum(v["theta"] ** 2)
                               + model.intent_l2 * tf.reduce_sum(v["phi"] ** 2)
                               + model.weight_l2 * n * shared)
                    loss = (nll + penalty) / n
                grads = tape.gradient(loss, variables)
                self.optimizer.apply_gradients(zip(grads, variables, strict=True))

            self._step = step
        self._step()

    def log_posterior(self, rows):
        return self.tf.gather(self.parts()[4], rows).numpy()

    def log_probs(self, rows) -> np.ndarray:
        """log sum_f P(f | session) P(j | f) for each row, ``-inf`` outside its choice set."""
        tf = self.tf
        m, base, normaliser, _, log_posterior = self.parts()
        base, normaliser, log_posterior = (tf.gather(t, rows) for t in
                                           (base, normaliser, log_posterior))
        out = tf.reduce_logsumexp(log_posterior[:, None, :] + base[:, :, None]
                                  + self.vars["w_intent"] * m[None] - normaliser[:, None, :],
                                  axis=2).numpy()
        return np.where(self.available[rows], out, -np.inf)


class GeometricMix(SequentialModel):
    """Two fitted sequential models, mixed as ``(1 - w) log p_first + w log p_second``.

    Introduced in chapter 09. Each model's scores are turned into
    log-probabilities over the allowed items (the ``candidates``, else every
    item) and mixed with weight ``w``: a weighted product of experts. Where the
    two err differently (SessionSASRec's decoder reads the session, the intent
    model's full-batch fit estimates the standing taste), the product beats both.
    :meth:`fit_weight` picks ``w`` on the split's validation targets.

    Parameters
    ----------
    first, second : fitted sequential models over the same catalogue
    weight : float in [0, 1], optional
        Set here or by :meth:`fit_weight`.
    """

    def __init__(self, first, second, *, weight: float | None = None):
        check_is_fitted(first)
        check_is_fitted(second)
        if not np.array_equal(np.asarray(first.item_ids_), np.asarray(second.item_ids_)):
            raise ModelError("the two models have different catalogues (item_ids_)")
        self.first, self.second = first, second
        self.weight = None if weight is None else check_number("weight", weight, low=0,
                                                               high=1)
        self.item_ids_ = first.item_ids_
        self.item_encoder_ = first.item_encoder_
        self.user_ids_ = first.user_ids_
        self.user_encoder_ = first.user_encoder_
        self.train_sequences_ = first.train_sequences_
        self.train_matrix_ = first.train_matrix_
        self._uses_context = bool(getattr(first, "_uses_context", False)
                                  or getattr(second, "_uses_context", False))

    def fit(self, *args, **kwargs):
        raise ModelError("GeometricMix mixes two fitted models: fit them, then call fit_weight")

    def fit_weight(self, split, *, candidates=None, grid: int = 11, k: int = 10
                   ) -> GeometricMix:
        """Choose the weight with the best validation NDCG@k on a grid of ``grid`` values."""
        from mmrec_lib.sequential.evaluation import evaluate_next_item

        grid = check_int("grid", grid, low=2)
        self.weights_ = np.round(np.linspace(0.0, 1.0, grid), 6)
        # Every call below scores the same validation rows: the models score them once.
        self._cached_parts = None
        try:
            self.validation_ndcg_ = []
            for w in self.weights_:
                self.weight = float(w)
                self.validation_ndcg_.append(float(evaluate_next_item(
                    self, split, stage="validation", k=k, candidates=candidates)[f"ndcg@{k}"]))
        finally:
            del self._cached_parts
        self.weight = float(self.weights_[int(np.argmax(self.validation_ndcg_))])
        return self

    def _parts(self, histories, unknown, candidates, context):
        """Both models' log-probabilities over the allowed items (cached inside fit_weight)."""
        if getattr(self, "_cached_parts", None) is not None:
            return self._cached_parts
        n = len(histories)
        allowed = (np.ones((n, len(self.item_ids_)), bool) if candidates is None
                   else np.asarray(candidates, bool))
        parts = []
        for model in (self.first, self.second):
            extra = context if getattr(model, "_uses_context", False) else {}
            scores = model.score_histories(histories, unknown=unknown, candidates=candidates,
                                           **extra)
            parts.append(_log_softmax_rows(np.asarray(scores, np.float64),
                                           allowed & np.isfinite(scores)))
        if hasattr(self, "_cached_parts"):
            self._cached_parts = parts
        return parts

    def score_histories(self, histories, *, unknown: str = "error", candidates=None,
                        **context) -> np.ndarray:
        """``(1 - w) log p_first + w log p_second`` over the allowed items; -inf elsewhere."""
        if self.weight is None:
            raise ModelError("GeometricMix has no weight: call fit_weight(split) or set weight")
        first, second = self._parts(histories, unknown, candidates, context)
        w = self.weight
        finite = np.isfinite(first) & np.isfinite(second)
        mixed = np.where(finite, (1 - w) * np.where(finite, first, 0.0)
                         + w * np.where(finite, second, 0.0), -np.inf)
        return mixed.astype(np.float32)

    def _score(self, user_index):
        raise ModelError("GeometricMix scores histories (score_histories), not training users")
