"""probe_accuracy: how well a linear classifier reads a categorical attribute (e.g. format) off vectors."""

from __future__ import annotations

import numpy as np

from mmrec_lib._validation import check_int, check_seed
from mmrec_lib.errors import DataError, ParameterError

__all__ = ["probe_accuracy"]


def probe_accuracy(features, labels, *, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic regression from features to a categorical label.

    Introduced in chapter 03b (speech): can the clip's *format*, which only the
    voice-over says, be read off the transcript vectors, and off the title
    vectors? The classifier is a standardised, L2-regularised multinomial logistic
    regression; the items are split into ``folds`` stratified folds (shuffled with
    ``seed``) and the accuracy is pooled over the held-out folds. Compare it with
    chance, the share of the most frequent label (a classifier that ignores the
    features and always says it).

    Parameters
    ----------
    features : array-like of shape (n_items, n_features)
        Finite numbers (drop the items without the modality first).
    labels : array-like of shape (n_items,)
        Class labels (ints or strings); every class needs at least ``folds`` items.
    folds : int, at least 2
    seed : int

    Returns
    -------
    float in [0, 1]

    Raises
    ------
    ParameterError
        Mismatched shapes, fewer than 2 classes, or a class with fewer than ``folds`` items.
    DataError
        NaN or infinite features.

    Examples
    --------
    >>> probe_accuracy(speech_vectors, ds.truth.format[spoken])     # doctest: +SKIP
    0.98
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ParameterError(f"features has shape {X.shape} and labels {y.shape}; expected "
                             "(n, d) and (n,)")
    folds = check_int("folds", folds, low=2)
    seed = check_seed(seed)
    if not np.isfinite(X).all():
        raise DataError("features contain NaN or inf; drop the items without this modality")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ParameterError(f"labels have {len(classes)} class; a probe needs at least 2")
    if counts.min() < folds:
        raise ParameterError(f"label {classes[counts.argmin()]!r} has {counts.min()} item(s), "
                             f"fewer than folds={folds}")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(model, X, y, cv=splitter)
    return float(np.mean(predicted == y))
