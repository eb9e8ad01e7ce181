"""Train/validation/test splits of interaction tables: stratified, temporal, cold-start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.interactions import ITEM_COL, TIMESTAMP_COL, USER_COL, check_interactions

__all__ = [
    "Split",
    "stratified_split",
    "random_split",
    "leave_last_out",
    "temporal_split",
    "cold_start_item_split",
    "warm_cold_split",
]


@dataclass
class Split:
    """The three frames of a split, plus what the split was.

    Introduced in chapter 06. ``validation`` is an empty frame (same columns)
    when the split has none; ``cold_items`` lists items held out of ``train``
    entirely (cold-start split only); ``cold_test`` holds their rows
    (:func:`warm_cold_split` only).
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    kind: str = ""
    cold_items: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    cold_test: pd.DataFrame | None = None

    def __iter__(self):
        # `train, validation, test = split` reads naturally.
        return iter((self.train, self.validation, self.test))

    def sizes(self) -> dict[str, int]:
        """Row counts of the three frames."""
        return {"train": len(self.train), "validation": len(self.validation),
                "test": len(self.test)}


def _check_not_empty(data: pd.DataFrame) -> None:
    if data.empty:
        raise DataError("interactions is empty: there are no rows to split")


def _frames(data: pd.DataFrame, masks: list[np.ndarray]) -> list[pd.DataFrame]:
    return [data.loc[mask].reset_index(drop=True) for mask in masks]


def stratified_split(
    interactions: pd.DataFrame,
    *,
    ratio: float = 0.75,
    validation_ratio: float = 0.0,
    by: Literal["user", "item"] = "user",
    min_rating: int = 1,
    seed: int = 42,
) -> Split:
    """Random split that keeps ``ratio`` of each user's (or each item's) rows in train.

    Introduced in chapter 06. Same algorithm, and for the same seed the same rows,
    as Microsoft Recommenders' ``python_stratified_split(filter_by=by)``: every row
    gets a uniform random number (``RandomState(seed).rand``), rows are ordered
    within their group by it, and the row of rank ``r`` (1-based) in a group of
    ``n`` goes to train when ``r <= round(ratio_train * n)``, to validation when
    ``r <= round((ratio_train + validation_ratio) * n)``, else to test (``round``
    halves to even, as NumPy does). Groups with fewer than ``min_rating`` rows are
    dropped first.

    With ``by="item"`` (the Recommenders MovieLens benchmark protocol) every item
    keeps ~75% of its rows in train, so no test item is unknown to the model;
    some users may appear only in test (they are not evaluated).

    Parameters
    ----------
    interactions : DataFrame with ``user_id``, ``item_id``.
    ratio : float in (0, 1)
        Fraction of each group's rows outside test (train + validation).
    validation_ratio : float in [0, ratio)
        Fraction of each group's rows taken from that share into validation.
    by : {"user", "item"}
        Stratify per user or per item.
    min_rating : int >= 1
        Minimum number of rows for a group to be kept.
    seed : int >= 0

    Returns
    -------
    Split with ``kind="stratified_by_<by>"``.
    """
    check_interactions(interactions)
    ratio = check_number("ratio", ratio, low=0.0, high=1.0, low_inclusive=False,
                         high_inclusive=False)
    validation_ratio = check_number("validation_ratio", validation_ratio, low=0.0, high=ratio,
                                    high_inclusive=False)
    check_choice("by", by, ("user", "item"))
    min_rating = check_int("min_rating", min_rating)
    seed = check_seed(seed)
    column = USER_COL if by == "user" else ITEM_COL
    data = interactions.reset_index(drop=True)
    _check_not_empty(data)
    if min_rating > 1:
        counts = data.groupby(column)[column].transform("size")
        data = data.loc[counts >= min_rating].reset_index(drop=True)
    if data.empty:
        raise DataError(f"no rows left to split (min_rating={min_rating})")
    random_key = np.random.RandomState(seed).rand(len(data))
    order = np.lexsort((random_key, data[column].to_numpy()))
    sorted_groups = data[column].to_numpy()[order]
    group_sizes = pd.Series(sorted_groups).groupby(sorted_groups, sort=False).transform("size")
    count = np.empty(len(data), dtype=np.int64)
    rank = np.empty(len(data), dtype=np.int64)
    count[order] = group_sizes.to_numpy()
    rank[order] = pd.Series(sorted_groups).groupby(sorted_groups, sort=False).cumcount() + 1
    train_share = ratio - validation_ratio
    train_cut = np.round(train_share * count)
    validation_cut = np.round(ratio * count)
    in_train = rank <= train_cut
    in_validation = (rank > train_cut) & (rank <= validation_cut)
    in_test = rank > validation_cut
    train, validation, test = _frames(data, [in_train, in_validation, in_test])
    return Split(train, validation, test, kind=f"stratified_by_{by}")


def random_split(
    interactions: pd.DataFrame, *, ratio: float = 0.75, validation_ratio: float = 0.0,
    seed: int = 42,
) -> Split:
    """Plain random split of rows (no stratification).

    Introduced in chapter 06. A fraction ``ratio`` of all rows stays outside test,
    ``validation_ratio`` of all rows of which goes to validation. Users and items
    may end up only in test (cold by accident).
    """
    check_interactions(interactions)
    ratio = check_number("ratio", ratio, low=0.0, high=1.0, low_inclusive=False,
                         high_inclusive=False)
    validation_ratio = check_number("validation_ratio", validation_ratio, low=0.0, high=ratio,
                                    high_inclusive=False)
    seed = check_seed(seed)
    data = interactions.reset_index(drop=True)
    _check_not_empty(data)
    position = np.empty(len(data), dtype=np.int64)
    position[np.random.RandomState(seed).permutation(len(data))] = np.arange(len(data))
    train_cut = round((ratio - validation_ratio) * len(data))
    validation_cut = round(ratio * len(data))
    masks = [position < train_cut, (position >= train_cut) & (position < validation_cut),
             position >= validation_cut]
    return Split(*_frames(data, masks), kind="random")


def leave_last_out(
    interactions: pd.DataFrame, *, validation: bool = True, min_interactions: int | None = None,
) -> Split:
    """Temporal leave-last-out: each user's latest row is test, the one before is validation.

    Introduced in chapter 06. Rows are ordered per user by ``timestamp`` (ties:
    by item id, so the split is deterministic). Users with fewer than
    ``min_interactions`` rows (default 3 with validation, 2 without) keep all their
    rows in train: they have no history left to learn from otherwise.

    Returns
    -------
    Split with ``kind="leave_last_out"``.
    """
    check_interactions(interactions, columns=(USER_COL, ITEM_COL, TIMESTAMP_COL))
    if not isinstance(validation, bool):
        raise ParameterError(f"validation={validation!r} must be True or False")
    needed = 3 if validation else 2
    if min_interactions is None:
        min_interactions = needed
    min_interactions = check_int("min_interactions", min_interactions, low=needed)
    data = interactions.reset_index(drop=True)
    _check_not_empty(data)
    if data[TIMESTAMP_COL].isna().any():
        raise DataError(f"column {TIMESTAMP_COL!r} contains missing values")
    ordered = data.sort_values([USER_COL, TIMESTAMP_COL, ITEM_COL], kind="stable")
    groups = ordered.groupby(USER_COL, sort=False)
    from_end = groups.cumcount(ascending=False).reindex(data.index).to_numpy()
    size = groups[USER_COL].transform("size").reindex(data.index).to_numpy()
    eligible = size >= min_interactions
    in_test = eligible & (from_end == 0)
    in_validation = eligible & (from_end == 1) if validation else np.zeros(len(data), bool)
    in_train = ~(in_test | in_validation)
    return Split(*_frames(data, [in_train, in_validation, in_test]), kind="leave_last_out")


def temporal_split(
    interactions: pd.DataFrame, *, ratio: float = 0.8, validation_ratio: float = 0.0,
) -> Split:
    """Global time split: everything before a cut-off time is train, the rest test.

    Introduced in chapter 06. The cut-offs are the ``ratio - validation_ratio``
    and ``ratio`` quantiles of ``timestamp`` (rows at exactly a cut-off time go to
    the earlier part), so no training row is later than a test row. Test rows of
    users or items absent from train are kept; :func:`mmrec_lib.evaluate` skips
    users the model does not know.
    """
    check_interactions(interactions, columns=(USER_COL, ITEM_COL, TIMESTAMP_COL))
    ratio = check_number("ratio", ratio, low=0.0, high=1.0, low_inclusive=False,
                         high_inclusive=False)
    validation_ratio = check_number("validation_ratio", validation_ratio, low=0.0, high=ratio,
                                    high_inclusive=False)
    data = interactions.reset_index(drop=True)
    _check_not_empty(data)
    times = data[TIMESTAMP_COL]
    if times.isna().any():
        raise DataError(f"column {TIMESTAMP_COL!r} contains missing values")
    ordered = np.sort(times.to_numpy())
    train_end = ordered[max(0, int(np.ceil((ratio - validation_ratio) * len(data))) - 1)]
    validation_end = ordered[max(0, int(np.ceil(ratio * len(data))) - 1)]
    values = times.to_numpy()
    in_train = values <= train_end
    in_validation = (values > train_end) & (values <= validation_end)
    in_test = values > validation_end
    return Split(*_frames(data, [in_train, in_validation, in_test]), kind="temporal")


def cold_start_item_split(
    interactions: pd.DataFrame,
    *,
    ratio: float = 0.2,
    validation_ratio: float = 0.0,
    items: list | np.ndarray | None = None,
    seed: int = 0,
) -> Split:
    """Hold items out entirely: every row of a cold item goes to test (or validation).

    Introduced in chapter 06 (and used for cold start in chapter 08). Either give
    the cold ``items`` (e.g. MiniClips' late releases) or a ``ratio`` of the
    distinct items drawn at random with ``seed``. Only content-based models can
    score cold items: they never appear in train.

    Returns
    -------
    Split with ``kind="cold_start_items"`` and ``cold_items`` set (test items, then
    validation items).
    """
    check_interactions(interactions)
    seed = check_seed(seed)
    data = interactions.reset_index(drop=True)
    _check_not_empty(data)
    distinct = np.unique(data[ITEM_COL].to_numpy())
    rng = np.random.RandomState(seed)
    if items is not None:
        cold_test = np.asarray(items)
        unknown = np.setdiff1d(cold_test, distinct)
        if len(unknown):
            raise DataError(f"items {unknown[:5].tolist()} do not occur in interactions")
        if len(cold_test) == 0 or len(cold_test) >= len(distinct):
            raise ParameterError(f"items must name between 1 and {len(distinct) - 1} items, "
                                 f"got {len(cold_test)}")
        remaining = np.setdiff1d(distinct, cold_test)
        validation_ratio = check_number("validation_ratio", validation_ratio, low=0.0, high=1.0,
                                        high_inclusive=False)
        num_validation = int(round(validation_ratio * len(distinct)))
        cold_validation = rng.permutation(remaining)[:num_validation]
    else:
        ratio = check_number("ratio", ratio, low=0.0, high=1.0, low_inclusive=False,
                             high_inclusive=False)
        validation_ratio = check_number("validation_ratio", validation_ratio, low=0.0,
                                        high=1.0 - ratio, high_inclusive=False)
        shuffled = rng.permutation(distinct)
        num_test = max(1, int(round(ratio * len(distinct))))
        num_validation = int(round(validation_ratio * len(distinct)))
        if num_test + num_validation >= len(distinct):
            raise ParameterError(f"ratio={ratio} and validation_ratio={validation_ratio} "
                                 f"leave no item for train ({len(distinct)} items)")
        cold_test = shuffled[:num_test]
        cold_validation = shuffled[num_test:num_test + num_validation]
    item_values = data[ITEM_COL].to_numpy()
    in_test = np.isin(item_values, cold_test)
    in_validation = np.isin(item_values, cold_validation)
    in_train = ~(in_test | in_validation)
    split = Split(*_frames(data, [in_train, in_validation, in_test]), kind="cold_start_items")
    split.cold_items = np.concatenate([np.sort(cold_test), np.sort(cold_validation)])
    return split


def warm_cold_split(
    interactions: pd.DataFrame,
    cold_items,
    *,
    ratio: float = 0.8,
    validation_ratio: float = 0.1,
    seed: int = 0,
) -> Split:
    """Warm and cold-start evaluation at once: the protocol of chapter 08.

    Introduced in chapter 08. The rows of ``cold_items`` (e.g. MiniClips' late
    releases) are held out entirely into ``cold_test``, never seen in training;
    the remaining (warm) rows are split per user with :func:`stratified_split`
    (``ratio`` outside test, ``validation_ratio`` of the rows into validation).
    Cold rows of users who have no training row are dropped (nobody can be
    recommended anything from an empty history).

    Returns
    -------
    Split with ``train``, ``validation``, ``test`` (warm items), ``cold_test``
    and ``cold_items`` (every given cold item, sorted, including those nobody
    interacted with: they are still candidates, and dropping them would tell
    the evaluation which new releases turned out to be watched), kind
    ``"warm_cold"``.
    """
    check_interactions(interactions)
    if isinstance(cold_items, str) or len(cold_items) == 0:
        raise ParameterError("cold_items must be a non-empty list of item ids")
    present = np.unique(interactions[ITEM_COL].to_numpy())
    cold = present[np.isin(present, np.asarray(list(cold_items)))]
    if len(cold) == 0:
        raise DataError("none of the cold_items occurs in interactions")
    held_out = cold_start_item_split(interactions, items=cold, seed=seed)
    warm = stratified_split(held_out.train, ratio=ratio, validation_ratio=validation_ratio,
                            seed=seed)
    cold_test = held_out.test[held_out.test[USER_COL].isin(warm.train[USER_COL])]
    split = Split(warm.train, warm.validation, warm.test, kind="warm_cold",
                  cold_items=np.unique(np.asarray(list(cold_items))),
                  cold_test=cold_test.reset_index(drop=True))
    return split
