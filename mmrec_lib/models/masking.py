"""Scoring a fitted multimodal recommender with some modalities of some items masked.

:class:`MaskedScoringMixin` gives :class:`mmrec_lib.models.MultimodalRecommender`
its :meth:`~MaskedScoringMixin.score_items`; :func:`check_modality_mask` is the
one check of a mask, shared with :meth:`mmrec_lib.models.two_tower.TwoTower.item_vectors`.
Masking never changes the model: the mask is AND-ed with the items' own presence
mask for one call only, so scoring from several threads at once is safe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmrec_lib._env import import_tensorflow
from mmrec_lib.errors import ParameterError
from mmrec_lib.utils import check_is_fitted

__all__ = ["MaskedScoringMixin", "check_modality_mask"]


def check_modality_mask(modality_mask, *, num_modalities: int, num_items: int,
                        modalities: Sequence[str] | None = None) -> np.ndarray:
    """``modality_mask`` as a bool ndarray of shape (num_modalities,) or (num_items, num_modalities).

    With ``modalities`` (the names, in mask order), a list of names is also
    accepted: the modalities to keep (``[]`` keeps none).

    Raises
    ------
    ParameterError
        Not bool, the wrong shape, or an unknown modality name.
    """
    if (modalities is not None and isinstance(modality_mask, (list, tuple))
            and all(isinstance(name, str) for name in modality_mask)):
        unknown = sorted(set(modality_mask) - set(modalities))
        if unknown:
            raise ParameterError(f"modality_mask names unknown modalities {unknown}; the "
                                 f"model's modalities are {list(modalities)}")
        return np.isin(np.asarray(modalities), list(modality_mask))
    if isinstance(modality_mask, str):
        raise ParameterError(f"modality_mask={modality_mask!r} must be a bool array or a list "
                             "of modality names, not one string")
    mask = np.asarray(modality_mask)
    order = f" in the order {list(modalities)}" if modalities is not None else ""
    if mask.dtype != bool:
        raise ParameterError(f"modality_mask must be a bool array{order}, got dtype {mask.dtype}")
    if mask.shape not in ((num_modalities,), (num_items, num_modalities)):
        raise ParameterError(f"modality_mask has shape {mask.shape}; expected ({num_modalities},) "
                             f"or ({num_items}, {num_modalities}){order}")
    return mask


class MaskedScoringMixin:
    """:meth:`score_items` for :class:`mmrec_lib.models.MultimodalRecommender`."""

    def score_items(self, user_ids: Sequence | None = None, item_ids: Sequence | None = None, *,
                    histories: Sequence[Sequence] | None = None,
                    modality_mask=None) -> np.ndarray:
        """Scores of some items for known users or new users' histories, optionally with modalities masked.

        Introduced in chapter 08 (see also :mod:`mmrec_lib.explain`). Without ``modality_mask`` it is
        :meth:`score` (``user_ids``) or :meth:`score_history` (``histories=``)
        restricted to ``item_ids``, to the last bit. With a mask, the listed
        items are scored with only the modalities where the mask is True, through
        the fusion layer's own masking: a masked modality is absent, not zero,
        and an item that already lacks a modality keeps lacking it (masking it
        changes nothing). The user vectors are computed with every modality
        present: the mask is about the scored items' content, not about how
        the user's history looks without it. With graph propagation the listed
        items are masked together and propagate into each other's vectors.
        The model is not changed, so calls from several threads are safe.

        Parameters
        ----------
        user_ids : sequence of n_users ids (or one id), optional
            Users seen in ``fit``.
        item_ids : sequence of n_items ids, optional
            Default: every catalogue item, in the order of ``item_ids_``.
        histories : sequence of n_users item-id lists, optional
            New users (needs ``use_user_id=False``), as in :meth:`score_history`.
            Pass exactly one of ``user_ids`` and ``histories``.
        modality_mask : bool ndarray of shape (n_modalities,) or (n_items, n_modalities), optional
            In the order of ``modalities_``; or a list of the modality names to keep.
            A 2-D mask gives each listed item its own mask.

        Returns
        -------
        float32 ndarray of shape (n_users, n_items)

        Raises
        ------
        ParameterError
            Both or neither of ``user_ids`` and ``histories``; a mask that is not
            bool, of the wrong shape or naming an unknown modality; a 2-D mask with
            repeated item ids.
        DataError
            An unknown user or item id.
        NotFittedError
            Before ``fit``.

        Examples
        --------
        >>> model.score_items(["u0007"], ["c0001", "c0002"], modality_mask=["text"])  # doctest: +SKIP
        array([[ 0.41, -0.13]], dtype=float32)
        """
        check_is_fitted(self)
        if (user_ids is None) == (histories is None):
            raise ParameterError("pass exactly one of user_ids and histories=, got "
                                 f"{'both' if user_ids is not None else 'neither'}")
        if isinstance(user_ids, (str, int, np.integer)):
            user_ids = [user_ids]
        if isinstance(item_ids, str):
            raise ParameterError(f"item_ids={item_ids!r} must be a sequence of item ids")
        columns = (np.arange(len(self.item_ids_)) if item_ids is None
                   else self.item_encoder_.transform(item_ids))
        if modality_mask is None:
            if user_ids is not None:
                return self.score(user_ids, item_ids)
            return self.score_history(histories)[:, columns]
        keep = check_modality_mask(modality_mask, num_modalities=len(self.modalities_),
                                   num_items=len(columns), modalities=self.modalities_)
        if keep.ndim == 2 and len(np.unique(columns)) != len(columns):
            raise ParameterError("item_ids has repeated ids, so a per-item (2-D) modality_mask "
                                 "is ambiguous")
        tf = import_tensorflow()
        network = self.network_
        table = np.ones((len(self.item_ids_), len(self.modalities_)), dtype=bool)
        table[columns] = keep
        items = network.item_vectors(training=False)
        if user_ids is not None:
            users = network.user_vectors(
                self.user_encoder_.transform(user_ids).astype(np.int32), items)
        else:
            rows = self._history_rows(histories)
            users = network.user_vectors(tf.zeros(len(rows), tf.int32), items, histories=rows)
        masked, bias = network.item_vectors(training=False, with_bias=True, modality_mask=table)
        return network.score_users(users, masked, bias).numpy()[:, columns]
