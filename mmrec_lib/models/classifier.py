"""The seed article's classifier, made correct: modality vectors -> item category (chapter 08)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mmrec_lib._validation import check_choice, check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.fusion import modality_mask
from mmrec_lib.interactions import ITEM_COL
from mmrec_lib.models.two_tower import FUSIONS, Fusion, check_item_features, keras, loss_curves
from mmrec_lib.utils import check_is_fitted

__all__ = ["ModalityClassifier"]


class ModalityClassifier(BaseEstimator):
    """The seed article's model, made correct: text + audio + image vectors -> category.

    Introduced in chapter 08. One input per modality, a fusion layer from
    :mod:`mmrec_lib.fusion` (per-modality normalisation and projection, masks
    for missing modalities), a hidden layer, dropout and a softmax over the
    classes; trained with ``model.fit`` on cross-entropy, with early stopping
    on a stratified validation share. It answers "which category is this
    clip?", measured by accuracy. That is not a recommender: it says nothing
    about *which user* wants the clip, so chapter 08 turns its class
    probabilities into a content profile and shows what that ranks.

    Parameters
    ----------
    fusion : {"concat", "attention", "gated"}
    embedding_dim, hidden_dim : int
    dropout : float in [0, 1)
    epochs, batch_size, patience : int
    learning_rate : float
    validation_fraction : float in (0, 1)
    seed : int

    Attributes
    ----------
    classes_ : ndarray of the labels, in the order of ``predict_proba``'s columns
    modalities_ : list of str
    network_ : keras.Model
    history_ : dict of per-epoch loss, accuracy, val_loss, val_accuracy
    """

    def __init__(self, *, fusion: Fusion = "concat", embedding_dim: int = 32,
                 hidden_dim: int = 64, dropout: float = 0.2, epochs: int = 60,
                 batch_size: int = 32, learning_rate: float = 0.003, patience: int = 8,
                 validation_fraction: float = 0.2, seed: int = 0):
        self.fusion = fusion
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed

    def _check_params(self) -> None:
        check_choice("fusion", self.fusion, list(FUSIONS))
        for name in ("embedding_dim", "hidden_dim", "epochs", "batch_size", "patience"):
            check_int(name, getattr(self, name))
        check_seed(self.seed)
        check_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)
        check_number("dropout", self.dropout, low=0.0, high=1.0, high_inclusive=False)
        check_number("validation_fraction", self.validation_fraction, low=0.0, high=1.0,
                     low_inclusive=False, high_inclusive=False)

    def _arrays(self, item_features, item_ids=None):
        features, catalogue = check_item_features(item_features)
        if hasattr(self, "modalities_") and list(features) != self.modalities_:
            raise DataError(f"item_features has modalities {list(features)}; the classifier "
                            f"was fitted on {self.modalities_}")
        ids = catalogue if item_ids is None else np.asarray(item_ids)
        arrays = [frame.reindex(ids).to_numpy(np.float32) for frame in features.values()]
        filled, mask = modality_mask(*arrays)
        if not mask.any(axis=1).all():
            missing = ids[~mask.any(axis=1)]
            raise DataError(f"{len(missing)} item(s) have no features in any modality, "
                            f"e.g. {missing[:5].tolist()}")
        return features, ids, filled, mask

    def _build(self, modalities: list[str], dims: list[int], num_classes: int):
        inputs = [keras.Input(shape=(dim,), name=f"{name}_input")
                  for name, dim in zip(modalities, dims, strict=True)]
        mask = keras.Input(shape=(len(dims),), dtype="bool", name="modality_mask")
        fused = FUSIONS[self.fusion](self.embedding_dim, name=f"{self.fusion}_fusion")(
            inputs, modality_mask=mask)
        hidden = keras.layers.Dense(self.hidden_dim, activation="relu", name="hidden")(fused)
        hidden = keras.layers.Dropout(self.dropout, seed=self.seed, name="dropout")(hidden)
        output = keras.layers.Dense(num_classes, activation="softmax", name="category")(hidden)
        return keras.Model([*inputs, mask], output, name="modality_classifier")

    def fit(self, item_features: Mapping[str, pd.DataFrame], labels: pd.Series):
        """Fit on ``{modality: DataFrame indexed by item id}`` and labels indexed by item id."""
        self._check_params()
        if not isinstance(labels, pd.Series) or labels.empty:
            raise ParameterError("labels must be a non-empty Series indexed by item id")
        if labels.isna().any():
            raise DataError(f"labels has {int(labels.isna().sum())} missing value(s)")
        # Refitting starts afresh (a new set of modalities is fine), and a fit that fails
        # leaves the estimator unfitted rather than half-fitted.
        for name in ("modalities_", "classes_", "network_", "history_"):
            self.__dict__.pop(name, None)
        features, ids, filled, mask = self._arrays(item_features, labels.index.to_numpy())
        classes, y = np.unique(labels.to_numpy(), return_inverse=True)
        if len(classes) < 2:
            raise DataError("labels must hold at least two classes")
        rng = np.random.default_rng(self.seed)
        validation = np.zeros(len(y), dtype=bool)
        for label in range(len(classes)):  # stratified validation share
            rows = rng.permutation(np.flatnonzero(y == label))
            validation[rows[: int(round(self.validation_fraction * len(rows)))]] = True
        if validation.all() or not validation.any():
            raise DataError(f"{len(y)} labelled items are too few for a validation share of "
                            f"{self.validation_fraction}")
        keras.utils.set_random_seed(self.seed)
        network = self._build(list(features), [x.shape[1] for x in filled], len(classes))
        network.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                        loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        inputs = [*filled, mask]
        history = loss_curves(network.fit(
            [x[~validation] for x in inputs], y[~validation], epochs=self.epochs,
            batch_size=self.batch_size, verbose=0, shuffle=True,
            validation_data=([x[validation] for x in inputs], y[validation]),
            callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience,
                                                     restore_best_weights=True)]))
        self.modalities_, self.classes_ = list(features), classes
        self.network_, self.history_ = network, history
        return self

    def predict_proba(self, item_features: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """Class probabilities, a DataFrame (n_items, n_classes) indexed by item id."""
        check_is_fitted(self)
        _, ids, filled, mask = self._arrays(item_features)
        probabilities = self.network_.predict([*filled, mask], verbose=0)
        return pd.DataFrame(probabilities, columns=self.classes_,
                            index=pd.Index(ids, name=ITEM_COL))

    def predict(self, item_features: Mapping[str, pd.DataFrame]) -> pd.Series:
        """The most probable class of every item, a Series indexed by item id."""
        probabilities = self.predict_proba(item_features)
        return pd.Series(self.classes_[probabilities.to_numpy().argmax(axis=1)],
                         index=probabilities.index, name="predicted")

    def score(self, item_features: Mapping[str, pd.DataFrame], labels: pd.Series) -> float:
        """Accuracy on the labelled items (the seed's only measure)."""
        if not isinstance(labels, pd.Series) or labels.empty:
            raise ParameterError("labels must be a non-empty Series indexed by item id")
        predicted = self.predict(item_features)
        unknown = labels.index.difference(predicted.index)
        if len(unknown):
            raise DataError(f"{len(unknown)} labelled item(s) have no features, "
                            f"e.g. {unknown[:5].tolist()}")
        return float((predicted.reindex(labels.index).to_numpy() == labels.to_numpy()).mean())
