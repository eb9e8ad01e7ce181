"""Explanations: which modality, which watched clip, and what changes without it.

Most functions here take a scoring function over a modality mask,
``score_fn(mask) -> scores``, where ``mask`` is a bool ndarray of shape
``(n_modalities,)`` (True = present) and ``scores`` an ndarray of shape
``(n_items,)`` (or a float): any model that can score with modalities masked
can be explained, and :func:`modality_score_fn` builds one for
:class:`mmrec_lib.models.MultimodalRecommender`. TensorFlow is imported only
by :func:`integrated_gradients` and :func:`modality_score_fn`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_int, check_number
from mmrec_lib.errors import DataError, ParameterError

__all__ = [
    "shapley_values",
    "integrated_gradients",
    "history_attribution",
    "counterfactual_rank",
    "deletion_test",
    "explain_text",
    "modality_score_fn",
    "history_score_fn",
]

MAX_MODALITIES = 6
MAX_EXACT_HISTORY = 10


def _check_modalities(modalities) -> list[str]:
    if isinstance(modalities, str):
        modalities = [modalities]
    names = list(modalities)
    if not names:
        raise ParameterError("modalities is empty; expected 1 to 6 modality names")
    if len(names) > MAX_MODALITIES:
        raise ParameterError(f"{len(names)} modalities need 2^{len(names)} scorings; exact "
                             f"Shapley values are limited to {MAX_MODALITIES}")
    if len(set(names)) != len(names):
        raise ParameterError(f"modalities {names} repeat a name")
    return names


def _exact_shapley(game: Callable[[np.ndarray], np.ndarray], count: int
                   ) -> tuple[np.ndarray, dict[tuple, np.ndarray]]:
    """Shapley values (count, *score_shape) of a game scored once on each of the 2^count subsets."""
    values = {subset: game(np.array(subset, dtype=bool))
              for subset in itertools.product((False, True), repeat=count)}
    phi = np.zeros((count, *np.shape(values[(False,) * count])))
    for m in range(count):
        for subset, value in values.items():
            if subset[m]:
                continue
            size = sum(subset)
            weight = (math.factorial(size) * math.factorial(count - size - 1)
                      / math.factorial(count))
            phi[m] += weight * (values[subset[:m] + (True,) + subset[m + 1:]] - value)
    return phi, values


def shapley_values(score_fn: Callable[[np.ndarray], np.ndarray], modalities: Sequence[str],
                   ) -> pd.DataFrame | pd.Series:
    r"""Exact Shapley values of each modality for every scored item.

    Shapley (1953); for feature attribution, Lundberg & Lee (2017), "A unified
    approach to interpreting model predictions", NeurIPS. With
    :math:`v(S)` the score when only the modalities in :math:`S` are present,

    .. math:: \phi_m = \sum_{S \subseteq M \setminus \{m\}}
              \frac{|S|!\,(|M| - |S| - 1)!}{|M|!}\,\big(v(S \cup \{m\}) - v(S)\big).

    All :math:`2^{|M|}` subsets are scored once each. The values add up to
    :math:`v(M) - v(\emptyset)` (efficiency); a modality that never changes the
    score gets 0 (dummy); two interchangeable modalities get the same value
    (symmetry). For a score that is a sum of per-modality parts (concat fusion,
    ``MultimodalRecommender.score_parts``) they equal those parts.

    Parameters
    ----------
    score_fn : callable ``mask -> scores``
        ``mask`` is a bool ndarray of shape (n_modalities,); ``scores`` an ndarray
        of shape (n_items,) or a float, the same shape for every mask.
    modalities : sequence of 1 to 6 names, in the order of the mask

    Returns
    -------
    DataFrame of shape (n_items, n_modalities) (Series of shape (n_modalities,)
    for a scalar score) with the modalities as columns (index), plus
    ``.attrs["full"]`` and ``.attrs["empty"]``: the scores with all and no modalities
    (arrays: ``pd.concat`` of several results fails on them, so concatenate
    ``pd.DataFrame(values.to_numpy(), columns=values.columns)``).

    Examples
    --------
    >>> weights = np.array([1.0, 2.0, 0.0])
    >>> shapley_values(lambda mask: float(weights @ mask), ["text", "audio", "visual"]).tolist()
    [1.0, 2.0, 0.0]
    """
    names = _check_modalities(modalities)
    shapes = set()

    def game(mask: np.ndarray) -> np.ndarray:
        values = np.asarray(score_fn(mask.copy()), dtype=np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"score_fn returned NaN or infinite scores for mask {mask.tolist()}")
        shapes.add(values.shape)
        if len(shapes) > 1 or values.ndim > 1:
            raise DataError(f"score_fn must return one float or one 1-D array of the same "
                            f"shape for every mask, got shapes {sorted(shapes)}")
        return values

    phi, values = _exact_shapley(game, len(names))
    if phi.ndim == 1:
        result = pd.Series(phi, index=pd.Index(names, name="modality"), name="shapley")
    else:
        result = pd.DataFrame(phi.T, columns=pd.Index(names, name="modality"))
    result.attrs["full"] = values[(True,) * len(names)]
    result.attrs["empty"] = values[(False,) * len(names)]
    return result


def integrated_gradients(model_fn: Callable, inputs, baseline=None, steps: int = 50
                         ) -> np.ndarray | list[np.ndarray]:
    r"""Integrated gradients of a differentiable model's output with respect to its inputs.

    Sundararajan, Taly & Yan (2017), "Axiomatic attribution for deep networks",
    ICML. For input :math:`x`, baseline :math:`x'` and output :math:`F`,

    .. math:: \mathrm{IG}_j(x) = (x_j - x'_j) \int_0^1
              \frac{\partial F(x' + \alpha (x - x'))}{\partial x_j}\, d\alpha,

    approximated by the trapezoidal rule on ``steps`` intervals. Completeness:
    :math:`\sum_j \mathrm{IG}_j \approx F(x) - F(x')`, closer with more steps.
    Summing a modality's columns gives that modality's attribution.
    The baseline must be a point where :math:`F` is smooth along the path:
    a zero vector fed into an L2 normalisation (the fusion layers normalise
    each modality) makes :math:`F(\alpha x)` constant for :math:`\alpha > 0`
    and discontinuous at 0, so completeness fails; use e.g. the mean input.

    Parameters
    ----------
    model_fn : callable
        Maps a tensor (or a list of tensors, one per modality) of shape
        (batch, dim_m) to outputs of shape (batch,) or (batch, 1): e.g. a
        Keras model or a fusion layer followed by a dot product with a user vector.
    inputs : ndarray of shape (batch, dim) or list of them
    baseline : same structure as ``inputs``, optional
        Default: zeros.
    steps : int >= 1

    Returns
    -------
    ndarray (or list of ndarrays) of the shapes of ``inputs``.
    """
    from mmrec_lib._env import import_tensorflow

    tf = import_tensorflow()
    steps = check_int("steps", steps)
    as_list = isinstance(inputs, (list, tuple))
    xs = [np.asarray(x, dtype=np.float32) for x in (inputs if as_list else [inputs])]
    if baseline is None:
        bases = [np.zeros_like(x) for x in xs]
    else:
        bases = [np.asarray(b, dtype=np.float32) for b in (baseline if as_list else [baseline])]
    if len(bases) != len(xs) or any(b.shape != x.shape for b, x in zip(bases, xs)):
        raise ParameterError(f"baseline shapes {[b.shape for b in bases]} must match inputs "
                             f"shapes {[x.shape for x in xs]}")
    for x in xs + bases:
        if not np.isfinite(x).all():
            raise DataError("inputs and baseline must be finite")
    totals = [np.zeros_like(x, dtype=np.float64) for x in xs]
    for step in range(steps + 1):
        alpha = step / steps
        weight = 0.5 if step in (0, steps) else 1.0  # trapezoidal rule
        points = [tf.constant(b + alpha * (x - b)) for x, b in zip(xs, bases)]
        with tf.GradientTape() as tape:
            tape.watch(points)
            output = model_fn(points if as_list else points[0])
            output = tf.reduce_sum(output)  # the batch's items are independent
        grads = tape.gradient(output, points)
        for total, grad in zip(totals, grads):
            if grad is not None:  # None: the output does not depend on it (attribution 0)
                total += weight * grad.numpy() / steps
    result = [(x - b) * total for x, b, total in zip(xs, bases, totals)]
    return result if as_list else result[0]


def history_attribution(user_history: Sequence, item, score_fn: Callable[[list, object], float],
                        *, method: Literal["leave_one_out", "shapley"] = "leave_one_out",
                        ) -> pd.Series:
    r"""How much each watched item contributes to the score of ``item`` ("because you watched X").

    ``"leave_one_out"``: :math:`a_j = s(H, i) - s(H \setminus \{j\}, i)`
    (``|H| + 1`` scorings). ``"shapley"``: exact Shapley values over the
    history items (:math:`2^{|H|}` scorings, at most 10 items), which add up to
    :math:`s(H, i) - s(\emptyset, i)`. For a model whose user vector is the mean
    of the history's item vectors both are cheap; the Shapley values also split
    interactions between history items fairly.

    Parameters
    ----------
    user_history : sequence of item ids (distinct)
    item : the item id being explained
    score_fn : callable ``(history_items: list, item) -> float``
    method : {"leave_one_out", "shapley"}

    Returns
    -------
    Series indexed by history item, sorted from the largest attribution down.
    """
    check_choice("method", method, ("leave_one_out", "shapley"))
    if isinstance(user_history, str):
        raise ParameterError("user_history must be a sequence of item ids, not a string")
    history = list(user_history)
    if not history:
        raise ParameterError("user_history is empty: there is nothing to attribute")
    if len(set(history)) != len(history):
        raise DataError(f"user_history repeats an item: {history}")

    def score(items: list) -> float:
        value = np.asarray(score_fn(items, item), dtype=np.float64)
        if value.size != 1 or not np.isfinite(value).all():
            raise DataError(f"score_fn must return one finite float, got {value!r}")
        return float(value)

    if method == "leave_one_out":
        full = score(history)
        values = [full - score(history[:j] + history[j + 1:]) for j in range(len(history))]
    else:
        if len(history) > MAX_EXACT_HISTORY:
            raise ParameterError(f"exact Shapley values over {len(history)} history items need "
                                 f"2^{len(history)} scorings; use method='leave_one_out' or "
                                 f"the last {MAX_EXACT_HISTORY} items")
        values, _ = _exact_shapley(
            lambda mask: score([h for h, keep in zip(history, mask) if keep]), len(history))
    result = pd.Series(np.asarray(values, dtype=np.float64),
                       index=pd.Index(history, name="history_item"), name="attribution")
    return result.sort_values(ascending=False, kind="stable")


def counterfactual_rank(scores_without, scores_with, item) -> dict:
    """Where ``item`` ranks with and without a change ("without its audio: #2 -> #14").

    Ranks count from 1 and break ties as :func:`mmrec_lib.similarity.top_k`
    does (among equal scores the lower position ranks first).

    Parameters
    ----------
    scores_without, scores_with : ndarray of shape (n_items,), or Series indexed by item id
        One user's scores of every candidate, without and with the modality (or
        history item, or any change).
    item : int index (arrays) or item id (Series)

    Returns
    -------
    dict with ``rank_with``, ``rank_without`` and ``change`` (``rank_without -
    rank_with``: positive means the item falls without the change).
    """
    ranks = []
    for name, scores in (("scores_with", scores_with), ("scores_without", scores_without)):
        if isinstance(scores, pd.Series):
            if item not in scores.index:
                raise DataError(f"item {item!r} is not in the index of {name}")
            position = int(scores.index.get_loc(item))
            values = scores.to_numpy(dtype=np.float64)
        else:
            values = np.asarray(scores, dtype=np.float64)
            if values.ndim != 1 or values.size == 0:
                raise ParameterError(f"{name} must be a non-empty 1-D array, got shape "
                                     f"{values.shape}")
            position = check_int("item", item, low=0, high=values.size - 1)
        if np.isnan(values).any():
            raise DataError(f"{name} contains NaN")
        ranks.append((values, position))
    (with_values, with_position), (without_values, without_position) = ranks
    if with_values.shape != without_values.shape:
        raise ParameterError(f"scores_with has shape {with_values.shape} but scores_without "
                             f"has {without_values.shape}")
    rank_with = _rank(with_values, with_position)
    rank_without = _rank(without_values, without_position)
    return {"rank_with": rank_with, "rank_without": rank_without,
            "change": rank_without - rank_with}


def _rank(values: np.ndarray, position: int) -> int:
    score = values[position]
    return int((values > score).sum() + (values[:position] == score).sum() + 1)


def deletion_test(score_fn: Callable[[np.ndarray], np.ndarray], attributions: pd.DataFrame,
                  *, per_item: bool = False) -> float | np.ndarray:
    r"""Does removing the top-attributed modality hurt more than removing another one?

    A faithfulness check in the spirit of the deletion metric of Petsiuk, Das &
    Saenko (2018), "RISE", BMVC. For every item, the drop
    :math:`d_m = v(M) - v(M \setminus \{m\})` of removing each modality is
    measured; the item is a win if the drop of its top-attributed modality
    exceeds the drop of a uniformly random other modality. The value returned is
    the expected win rate over that random choice (computed exactly, so no
    seed; ties count one half): 1.0 when the attribution always names the
    modality the score depends on most, about 0.5 for a random attribution.

    Parameters
    ----------
    score_fn : callable ``mask -> scores`` of shape (n_items,), as in :func:`shapley_values`
    attributions : DataFrame of shape (n_items, n_modalities)
        Columns in the order of the mask, e.g. the result of :func:`shapley_values`.
    per_item : bool
        Return the ndarray of shape (n_items,) of expected wins instead of the mean.
    """
    if not isinstance(attributions, pd.DataFrame):
        raise ParameterError("attributions must be a DataFrame (n_items, n_modalities), e.g. "
                             "the result of shapley_values")
    count = attributions.shape[1]
    if count < 2 or attributions.empty:
        raise ParameterError(f"attributions has shape {attributions.shape}; the test needs at "
                             "least one item and two modalities")
    values = attributions.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise DataError("attributions contains NaN or infinite values")
    full = np.asarray(score_fn(np.ones(count, dtype=bool)), dtype=np.float64).reshape(-1)
    if full.shape != (len(values),):
        raise ParameterError(f"score_fn returns {full.shape[0]} scores but attributions has "
                             f"{len(values)} rows")
    drops = np.empty((len(values), count))
    for m in range(count):
        mask = np.ones(count, dtype=bool)
        mask[m] = False
        drops[:, m] = full - np.asarray(score_fn(mask), dtype=np.float64).reshape(-1)
    if not np.isfinite(drops).all():
        raise DataError("score_fn returned NaN or infinite scores")
    top = np.argmax(values, axis=1)
    top_drop = drops[np.arange(len(values)), top][:, None]
    tolerance = 1e-9 * max(1.0, float(np.abs(drops).max()))
    wins = np.where(top_drop > drops + tolerance, 1.0,
                    np.where(np.abs(top_drop - drops) <= tolerance, 0.5, 0.0))
    wins[np.arange(len(values)), top] = 0.0
    expected = wins.sum(axis=1) / (count - 1)
    return expected if per_item else float(expected.mean())


_MODALITY_WORDS = {
    "en": {"text": "text", "audio": "audio", "visual": "visuals", "speech": "speech"},
    "zh": {"text": "文字", "audio": "音频", "visual": "画面", "speech": "语音"},
}


def explain_text(attributions, language: Literal["en", "zh"] = "en", *,
                 item_name: str | None = None, min_share: float = 0.1,
                 close_ratio: float = 0.8) -> str:
    """A one-sentence explanation that claims no more than the attributions support.

    Only modalities whose attribution is positive and at least ``min_share`` of
    the total absolute attribution are named; a modality near 0 or negative is
    never mentioned as a reason. When the second modality's attribution is at
    least ``close_ratio`` times the first's, the sentence names both as about
    equal instead of picking a winner; when no modality qualifies it says so.

    Parameters
    ----------
    attributions : Series or dict ``{modality: value}`` for one item
    language : {"en", "zh"}
    item_name : str, optional
        The clip's title, used as the subject of the sentence.
    min_share : float in [0, 1]
    close_ratio : float in (0, 1]

    Examples
    --------
    >>> explain_text({"text": 0.1, "audio": 2.0, "visual": -0.5})
    'This clip is recommended mainly for its audio.'
    >>> explain_text({"text": 1.0, "audio": 0.95}, language="zh")
    '推荐这个视频主要是因为它的文字和音频，两者作用相近。'
    """
    check_choice("language", language, ("en", "zh"))
    min_share = check_number("min_share", min_share, low=0.0, high=1.0)
    close_ratio = check_number("close_ratio", close_ratio, low=0.0, high=1.0,
                               low_inclusive=False)
    series = pd.Series(attributions, dtype=np.float64) if not isinstance(
        attributions, pd.Series) else attributions.astype(np.float64)
    if series.empty:
        raise ParameterError("attributions is empty")
    if not np.isfinite(series.to_numpy()).all():
        raise DataError("attributions contains NaN or infinite values")
    total = float(series.abs().sum())
    supported = series[(series > 0) & (series >= min_share * total)].sort_values(
        ascending=False, kind="stable") if total > 0 else series.iloc[:0]
    words = _MODALITY_WORDS[language]
    named = [words.get(str(name), str(name)) for name in supported.index[:2]]
    if language == "en":
        subject = f"“{item_name}”" if item_name else "This clip"
        if not named:
            return ("No single modality clearly explains why "
                    f"{subject if item_name else 'this clip'} is recommended.")
        if len(named) == 2 and supported.iloc[1] >= close_ratio * supported.iloc[0]:
            return (f"{subject} is recommended for its {named[0]} and {named[1]}, which "
                    "mattered about equally.")
        if len(named) == 2:
            return (f"{subject} is recommended mainly for its {named[0]}, and to a lesser "
                    f"extent its {named[1]}.")
        return f"{subject} is recommended mainly for its {named[0]}."
    subject = f"《{item_name}》" if item_name else "这个视频"
    if not named:
        return f"没有哪一种模态能明确解释为什么推荐{subject}。"
    if len(named) == 2 and supported.iloc[1] >= close_ratio * supported.iloc[0]:
        return f"推荐{subject}主要是因为它的{named[0]}和{named[1]}，两者作用相近。"
    if len(named) == 2:
        return f"推荐{subject}主要是因为它的{named[0]}，其次是{named[1]}。"
    return f"推荐{subject}主要是因为它的{named[0]}。"


def modality_score_fn(model, user_id, item_ids: Sequence) -> Callable[[np.ndarray], np.ndarray]:
    """A ``score_fn(mask)`` for a fitted :class:`mmrec_lib.models.MultimodalRecommender`.

    The returned function scores ``item_ids`` for ``user_id`` with only the
    modalities where ``mask`` is True (in the order of ``model.modalities_``)
    present for those items, through the fusion layer's own masking (a masked
    modality is absent, not zero; an item already missing a modality keeps
    it missing, so that modality gets attribution 0). The user's vector is
    computed once with every modality present: the explanation is about the
    item's content, not about how the user's history looks without it. Works
    for every fusion (concat, attention, gated) and with graph propagation;
    with a graph, the listed items are masked together and propagate into each
    other's vectors, so explain one item at a time for a clean attribution.

    It is :meth:`mmrec_lib.models.MultimodalRecommender.score_items` with
    ``modality_mask=mask``: the model is never changed, so it is safe to call
    from several threads. All modalities present gives
    ``model.score([user_id], item_ids)[0]`` (up to float32 rounding).

    Returns
    -------
    callable ``mask (bool ndarray of shape (n_modalities,)) -> ndarray of shape (n_items,)``
    """
    from mmrec_lib.utils import check_is_fitted

    check_is_fitted(model)
    if isinstance(item_ids, str) or len(item_ids) == 0:
        raise ParameterError("item_ids must be a non-empty sequence of item ids")
    item_ids = list(item_ids)
    # Unknown ids fail here, not at the first call.
    model.user_encoder_.transform([user_id])
    model.item_encoder_.transform(item_ids)
    count = len(model.modalities_)

    def score_fn(mask) -> np.ndarray:
        keep = np.asarray(mask)
        if keep.shape != (count,) or keep.dtype != bool:
            raise ParameterError(f"mask must be a bool array of shape ({count},) in the order "
                                 f"{list(model.modalities_)}, got {keep!r}")
        scores = model.score_items([user_id], item_ids, modality_mask=keep)
        return scores[0].astype(np.float64)

    return score_fn


def history_score_fn(model) -> Callable[[list, object], float]:
    """A ``score_fn(history_items, item)`` for :func:`history_attribution` from a fitted model.

    Scores ``item`` for a user described only by ``history_items`` with
    :meth:`mmrec_lib.models.MultimodalRecommender.score_history` (so the model
    needs ``use_user_id=False``). The empty history gives the user vector 0,
    i.e. the item's bias alone: the baseline the Shapley values start from.

    Returns
    -------
    callable ``(history_items: list of item ids, item id) -> float``
    """
    from mmrec_lib.errors import ModelError
    from mmrec_lib.utils import check_is_fitted

    check_is_fitted(model)
    if getattr(model, "use_user_id", False):
        raise ModelError("history_score_fn needs a model fitted with use_user_id=False: a "
                         "user's id embedding is not a function of their history")

    def score_fn(history_items: list, item) -> float:
        column = model.item_encoder_.transform([item])[0]
        return float(model.score_history([list(history_items)])[0, column])

    return score_fn
