"""Membership inference as a leakage measure: Yeom's score threshold and calibrated user-level attacks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import ITEM_COL, USER_COL, check_interactions

__all__ = [
    "membership_inference_auc",
    "user_log_likelihood",
    "calibrated_membership_scores",
    "attack_metrics",
    "MembershipAttack",
    "user_membership_attack",
    "attack_from_signals",
]


def membership_inference_auc(model, members: pd.DataFrame, non_members: pd.DataFrame) -> float:
    """AUC of the score-threshold membership attack (Yeom et al. 2018).

    The attacker guesses "was in training" when the model's score of the pair
    (user, item) is high; for the losses used here a higher score is a lower loss,
    so this is Yeom's loss-threshold attack. The AUC sweeps every threshold:
    0.5 means the scores say nothing about membership, 1.0 full leakage. One
    global threshold for every pair: a pair that is easy to predict looks like a
    member whether it was one or not (see :func:`user_membership_attack` for the
    calibrated, stronger attack).

    Parameters
    ----------
    model : fitted, with ``score(user_ids, item_ids)`` (any :class:`InterestModel`)
    members, non_members : DataFrames with user_id, item_id
        Training interactions and held-out interactions of users the model knows;
        no (user, item) pair may be in both.
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
    both = pd.MultiIndex.from_frame(members[[USER_COL, ITEM_COL]]).intersection(
        pd.MultiIndex.from_frame(non_members[[USER_COL, ITEM_COL]]))
    if len(both):
        raise DataError(f"{len(both)} (user, item) pair(s) are both members and non-members, "
                        f"e.g. {tuple(both[0])}")
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


# --------------------------------------------------------------------------- user level

def user_log_likelihood(model, interactions: pd.DataFrame) -> pd.Series:
    r"""Per user, the mean leave-one-out log-likelihood of their views under ``model``.

    For user :math:`u` with views :math:`H_u`:
    :math:`t_u = \frac{1}{|H_u|}\sum_{i \in H_u} \log \mathrm{softmax}_j\, s(H_u \setminus i, j)\big|_{j=i}`,
    minus the model's softmax training loss on that user. It needs only the released
    model and the user's views (``model.leave_one_out_scores(item_ids)``, e.g.
    :meth:`~mmrec_lib.privacy.DPTwoTower.leave_one_out_scores`), so it is defined for users
    the model never saw: what an attacker holding the model and a candidate user's
    data can compute.

    Parameters
    ----------
    model : fitted, with ``leave_one_out_scores(item_ids) -> (len, n_items)`` and ``item_encoder_``
    interactions : DataFrame with user_id, item_id
        Every user needs at least 2 distinct items; every item must be in the catalogue.

    Returns
    -------
    Series indexed by user id (sorted).
    """
    if not callable(getattr(model, "leave_one_out_scores", None)):
        raise ParameterError(f"model must have a leave_one_out_scores(item_ids) method (e.g. "
                             f"DPTwoTower), got {type(model).__name__}")
    frame = _check_frame("interactions", interactions).drop_duplicates([USER_COL, ITEM_COL])
    values = {}
    for user, items in frame.groupby(USER_COL, sort=True)[ITEM_COL]:
        if len(items) < 2:
            raise DataError(f"user {user!r} has {len(items)} distinct item(s); the "
                            f"leave-one-out likelihood needs at least 2")
        logits = np.asarray(model.leave_one_out_scores(items.to_numpy()), dtype=np.float64)
        columns = model.item_encoder_.transform(items.to_numpy())
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        values[user] = float(np.mean(logits[np.arange(len(columns)), columns] - log_norm))
    return pd.Series(values, name="log_likelihood", dtype=np.float64)


def calibrated_membership_scores(target, references, reference_in=None, *,
                                 online: bool = False) -> np.ndarray:
    r"""Difficulty-calibrated membership scores: the target's signal against reference models'.

    Each candidate :math:`u` has a signal :math:`t_u` in the target model (higher =
    fits better) and in ``K`` reference models trained by the same recipe on data
    with (IN) or without (OUT) the candidate. Some candidates are simply easy
    (popular tastes), so a global threshold on :math:`t_u` mostly detects
    easiness; the reference models measure it per candidate.

    * ``online=False`` (offline, Watson et al. 2022; LiRA-offline of Carlini et al.
      2022 with one shared variance): :math:`t_u - \mu^{out}_u`, the signal minus its
      mean over the OUT reference models. Only OUT models are used.
    * ``online=True`` (LiRA, Carlini et al. 2022): the Gaussian log-likelihood ratio
      :math:`\log N(t_u; \mu^{in}_u, \sigma^2) - \log N(t_u; \mu^{out}_u, \sigma^2)`, with
      per-candidate means over the IN and the OUT models and one variance pooled over
      all candidates (their "fixed variance", advised for few reference models). Needs
      at least one IN and one OUT model per candidate.

    Parameters
    ----------
    target : array (n,)
    references : array (K, n), K >= 1
    reference_in : bool array (K, n), optional
        Whether candidate ``u`` trained reference ``k``; None = all OUT (offline only).
    online : bool

    Returns
    -------
    ndarray (n,): higher = more likely a member.
    """
    target = np.asarray(target, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if target.ndim != 1 or target.size == 0:
        raise ParameterError(f"target must be a non-empty 1-D array, got shape {target.shape}")
    if references.ndim != 2 or references.shape[1] != target.size:
        raise ParameterError(f"references must have shape (K, {target.size}), got "
                             f"{references.shape}")
    check_int("number of reference models K", references.shape[0])
    if not (np.isfinite(target).all() and np.isfinite(references).all()):
        raise DataError("target and references must be finite")
    inside = (np.zeros(references.shape, bool) if reference_in is None
              else np.asarray(reference_in))
    if inside.shape != references.shape or inside.dtype != bool:
        raise ParameterError(f"reference_in must be a bool array of shape {references.shape}, "
                             f"got {inside.dtype} {inside.shape}")
    n_out, n_in = (~inside).sum(axis=0), inside.sum(axis=0)
    if (n_out == 0).any():
        raise DataError(f"{int((n_out == 0).sum())} candidate(s) have no OUT reference model")
    mu_out = np.where(~inside, references, 0.0).sum(axis=0) / n_out
    if not online:
        return target - mu_out
    if (n_in == 0).any():
        raise DataError(f"{int((n_in == 0).sum())} candidate(s) have no IN reference model; "
                        "online calibration needs both (or use online=False)")
    mu_in = np.where(inside, references, 0.0).sum(axis=0) / np.maximum(n_in, 1)
    residual = references - np.where(inside, mu_in, mu_out)
    dof = references.size - 2 * target.size
    if dof <= 0:
        raise ParameterError(f"online calibration with {references.shape[0]} reference "
                             "model(s) leaves no degrees of freedom for the variance; use >= 3")
    variance = max(float((residual ** 2).sum() / dof), 1e-300)
    return ((target - mu_out) ** 2 - (target - mu_in) ** 2) / (2 * variance)


def attack_metrics(scores, is_member, *, groups=None, fpr: float = 0.01,
                   n_bootstrap: int = 200, seed: int = 0) -> dict:
    """AUC (with a bootstrap standard error) and TPR at a low FPR of a membership attack.

    The TPR at a fixed low false-positive rate is the metric Carlini et al. (2022)
    recommend: an attack that confidently finds a few members is a real leak even
    when its AUC is modest.

    Parameters
    ----------
    scores : array (n,), higher = member
    is_member : bool array (n,), both classes present
    groups : array (n,), optional
        Cluster labels for the bootstrap (e.g. the candidate when the same candidate is
        scored against several target models): whole groups are resampled.
    fpr : float in (0, 1)
    n_bootstrap : int >= 0 (0: no standard error, ``auc_se`` is NaN)
    seed : int

    Returns
    -------
    dict with ``auc``, ``auc_se``, ``tpr_at_fpr`` (the largest TPR whose FPR <= ``fpr``), ``fpr``.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(is_member)
    if scores.ndim != 1 or labels.shape != scores.shape or labels.dtype != bool:
        raise ParameterError(f"scores and is_member must be 1-D of the same length (is_member "
                             f"bool), got {scores.shape} and {labels.dtype} {labels.shape}")
    if not np.isfinite(scores).all():
        raise DataError("scores must be finite")
    if labels.all() or not labels.any():
        raise DataError("is_member needs both members and non-members")
    fpr = check_number("fpr", fpr, low=0.0, high=1.0, low_inclusive=False,
                       high_inclusive=False)
    n_bootstrap = check_int("n_bootstrap", n_bootstrap, low=0)
    groups = np.arange(len(scores)) if groups is None else np.asarray(groups)
    if groups.shape != scores.shape:
        raise ParameterError(f"groups must have shape {scores.shape}, got {groups.shape}")
    false_pos, true_pos, _ = roc_curve(labels, scores)
    result = {"auc": float(roc_auc_score(labels, scores)),
              "tpr_at_fpr": float(true_pos[false_pos <= fpr].max()), "fpr": fpr}
    codes, members_of = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(members_of == g) for g in range(len(codes))]
    rng = np.random.default_rng(check_seed(seed))
    aucs = []
    for _ in range(n_bootstrap):
        rows = np.concatenate([rows_of[g] for g in rng.integers(0, len(codes), len(codes))])
        if labels[rows].all() or not labels[rows].any():
            continue
        aucs.append(roc_auc_score(labels[rows], scores[rows]))
    result["auc_se"] = float(np.std(aucs, ddof=1)) if len(aucs) > 1 else float("nan")
    return result


@dataclass
class MembershipAttack:
    """What :func:`user_membership_attack` measured.

    Attributes
    ----------
    table : DataFrame
        One row per attack (``global``: Yeom-style threshold on the raw user signal;
        ``offline``: calibrated by the OUT reference models; ``online``: LiRA with IN
        and OUT), columns ``auc``, ``auc_se``, ``tpr_at_fpr``, pooled over every model
        taken in turn as the target.
    signals : DataFrame (models, users)
        The user signal in each trained model.
    membership : DataFrame (models, users) of bool
        Whether the user's views trained that model.
    scores : dict {attack: ndarray (models, users)}
        Each attack's score of every user when that model is the target.
    auc_per_target : DataFrame (models, attacks)
    """

    table: pd.DataFrame
    signals: pd.DataFrame
    membership: pd.DataFrame
    scores: dict = field(default_factory=dict)
    auc_per_target: pd.DataFrame | None = None

    @property
    def best(self) -> str:
        """The attack with the highest pooled AUC (leakage is measured by the best attack)."""
        return str(self.table["auc"].idxmax())


def user_membership_attack(fit: Callable[[pd.DataFrame], object],
                           interactions: pd.DataFrame, *, n_references: int = 8,
                           signal: Callable | None = None, fpr: float = 0.01,
                           n_bootstrap: int = 200, seed: int = 0) -> MembershipAttack:
    """User-level membership inference with reference models (offline and online LiRA).

    The question matches user-level DP: *were this user's views used to train the
    model?* ``n_references + 1`` models are trained by ``fit``, each on the views of
    about half of the users, the halves balanced so that every user trains
    ``floor((K + 1) / 2)`` of them (Carlini et al. 2022). Each model in turn is the
    **target** and the other ``K`` its reference models: its members are the users
    it trained on, its non-members users held out entirely. The attack scores every
    user with the target's ``signal`` (by default :func:`user_log_likelihood`),
    calibrated by that user's signal in the reference models
    (:func:`calibrated_membership_scores`). The metrics pool every (target, user)
    decision; the standard error resamples users (all of a user's decisions together).

    Parameters
    ----------
    fit : callable(train DataFrame) -> fitted model
        The training recipe (same for target and references; give each call the
        same settings, a fixed seed is fine).
    interactions : DataFrame with user_id, item_id
        The candidates' views (every user needs >= 2 distinct items for the default signal).
    n_references : int >= 2
        K. Each user is calibrated by ``ceil(K / 2) - 1`` IN and ``floor(K / 2)``
        OUT references (the same numbers for members and non-members, see the
        code); ``online`` needs K >= 4.
    signal : callable(model, interactions) -> Series by user id, optional
    fpr : float
        The false-positive rate of ``tpr_at_fpr``.
    n_bootstrap : int >= 0
    seed : int
        Which users train which model.

    Returns
    -------
    MembershipAttack
    """
    if not callable(fit):
        raise ParameterError(f"fit must be callable(train) -> model, got {type(fit).__name__}")
    # a member of the target must have an OUT reference, and so must a non-member: K >= 2
    n_references = check_int("n_references", n_references, low=2)
    frame = _check_frame("interactions", interactions)
    signal = user_log_likelihood if signal is None else signal
    if not callable(signal):
        raise ParameterError(f"signal must be callable(model, interactions), got "
                             f"{type(signal).__name__}")
    users = np.sort(frame[USER_COL].unique())
    if len(users) < 4:
        raise DataError(f"interactions has {len(users)} user(s); the attack needs at least 4")
    count = n_references + 1
    rng = np.random.default_rng(check_seed(seed))
    inside = np.zeros((count, len(users)), dtype=bool)
    for column in range(len(users)):  # each user trains half of the models
        inside[rng.permutation(count)[: count // 2], column] = True
    empty = np.flatnonzero(~inside.any(axis=1))
    if len(empty):
        raise DataError(f"model {empty[0]} would train on no user; use more users")
    signals = np.empty(inside.shape)
    for row in range(count):
        model = fit(frame[frame[USER_COL].isin(users[inside[row]])])
        values = signal(model, frame)
        if not isinstance(values, pd.Series) or not values.index.isin(users).all() \
                or not pd.Index(users).isin(values.index).all():
            raise DataError("signal must return a Series with one value per user of interactions")
        signals[row] = values.reindex(users).to_numpy(dtype=np.float64)
    return attack_from_signals(pd.DataFrame(signals, columns=pd.Index(users, name=USER_COL)),
                               pd.DataFrame(inside, columns=pd.Index(users, name=USER_COL)),
                               fpr=fpr, n_bootstrap=n_bootstrap, seed=seed)


def attack_from_signals(signals: pd.DataFrame, membership: pd.DataFrame, *, fpr: float = 0.01,
                        n_bootstrap: int = 200, seed: int = 0) -> MembershipAttack:
    """The attacks of :func:`user_membership_attack` on signals already computed.

    Use it to try another signal on the same trained models (for example only the
    item biases of a user's items) without retraining.

    Parameters
    ----------
    signals : DataFrame (models, users) of float
        Each user's signal in each model (higher = fits better).
    membership : DataFrame (models, users) of bool, same shape and columns
        Whether the user trained that model; every user must train the same number of
        models, at least one, and not all of them.
    fpr, n_bootstrap, seed
        As in :func:`attack_metrics`.

    Returns
    -------
    MembershipAttack
    """
    if not isinstance(signals, pd.DataFrame) or not isinstance(membership, pd.DataFrame):
        raise ParameterError("signals and membership must be DataFrames (models x users)")
    if signals.shape != membership.shape or not signals.columns.equals(membership.columns):
        raise ParameterError(f"signals {signals.shape} and membership {membership.shape} must "
                             "have the same shape and columns")
    inside = membership.to_numpy()
    if inside.dtype != bool:
        raise ParameterError(f"membership must be bool, got {inside.dtype}")
    values = signals.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataError("signals must be finite")
    count = len(inside)
    trained = inside.sum(axis=0)
    if len(np.unique(trained)) != 1 or not 1 <= trained[0] < count:
        raise DataError("every user must train the same number of models, at least one and "
                        f"not all {count}; got {sorted(set(trained.tolist()))}")
    users = signals.columns
    # Every user trains the same number of models, so among a target's references a member has one
    # IN model fewer than a non-member. Calibrating with those unequal counts would make the
    # scores' spread depend on membership (a bias, not a leak): every user is calibrated with
    # the same numbers of IN and OUT references, the smallest available to all.
    n_in = int(trained[0]) - 1
    n_out = count - int(trained[0]) - 1
    if n_out < 1:
        raise DataError(f"with {count} models and every user in {int(trained[0])}, a target's "
                        "member has no OUT reference model; use more models")
    online = n_in >= 1 and n_in + n_out >= 3
    scores = {name: np.empty(inside.shape)
              for name in ["global", "offline"] + (["online"] if online else [])}
    for row in range(count):
        others = np.flatnonzero(np.arange(count) != row)
        chosen = np.empty((n_in + n_out, len(users)), dtype=np.int64)
        for column in range(len(users)):
            member_of = inside[others, column]
            chosen[:, column] = np.r_[others[member_of][:n_in], others[~member_of][:n_out]]
        references = np.take_along_axis(values, chosen, axis=0)
        reference_in = np.arange(n_in + n_out)[:, None] < n_in
        reference_in = np.repeat(reference_in, len(users), axis=1)
        scores["global"][row] = values[row]
        scores["offline"][row] = calibrated_membership_scores(
            values[row], references[n_in:], reference_in[n_in:])
        if online:
            scores["online"][row] = calibrated_membership_scores(
                values[row], references, reference_in, online=True)
    groups = np.tile(np.arange(len(users)), count)
    table, per_target = {}, {}
    for name, score in scores.items():
        table[name] = attack_metrics(score.ravel(), inside.ravel(), groups=groups, fpr=fpr,
                                     n_bootstrap=n_bootstrap, seed=seed)
        per_target[name] = [attack_metrics(score[row], inside[row], fpr=fpr,
                                           n_bootstrap=0)["auc"] for row in range(count)]
    return MembershipAttack(
        table=pd.DataFrame(table).T[["auc", "auc_se", "tpr_at_fpr"]].astype(float),
        signals=signals, membership=membership,
        scores=scores, auc_per_target=pd.DataFrame(per_target))


def _check_frame(name: str, frame) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ParameterError(f"{name} must be a DataFrame, got {type(frame).__name__}")
    check_interactions(frame)
    if frame.empty:
        raise DataError(f"{name} has no rows")
    return frame
