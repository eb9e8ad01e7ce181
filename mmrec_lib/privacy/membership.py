"""Membership inference as a leakage measure: the score-threshold attack of Yeom et al. (2018)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import ITEM_COL, USER_COL, check_interactions

__all__ = ["membership_inference_auc"]


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
