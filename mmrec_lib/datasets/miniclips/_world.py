"""MiniClips world simulator: hidden item attributes, user tastes, interactions and the oracle score."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmrec_lib.datasets.miniclips._constants import (
    _TIMELINE_DAYS,
    _TIMELINE_START,
    CATEGORY_NAMES,
    OBJECT_CLASSES,
    SIZES,
)
from mmrec_lib.datasets.miniclips._text import _make_text

__all__ = ["GroundTruth", "ORACLE_TERMS", "World", "_true_scores", "_generate_world"]

# Items released in the last 5% of the timeline form the cold-start set.
_COLD_WINDOW = 0.05
_COLD_FRACTION = 0.10

# Weights of the true preference score (see datasets/miniclips.md). Generator 3 raised energy
# and timbre from 1.3 and 1.4 to 2.0: with the old weights, ranking the new releases by the
# true energy and timbre terms alone was barely better than chance (NDCG@10 0.138 vs 0.087),
# so no audio model could beat ids-only MF widely on cold items; now it is 0.186.
_W_CATEGORY = 2.0
_W_ENERGY = 2.0
_W_STYLE = 1.4
_W_TIMBRE = 2.0
_W_APPEAL = 1.0

# Per-category knobs of the world: arousal offset and how common the category is. (The
# renderer has its own: hue, root note, object classes.)
_CATEGORY_AROUSAL = np.array([0.1, 0.5, -0.2, 0.3, -0.1, -0.2, -0.4, 0.2, 0.6, -0.6])
_CATEGORY_PRIOR = np.array([0.16, 0.12, 0.10, 0.12, 0.11, 0.08, 0.05, 0.11, 0.09, 0.06])


@dataclass
class GroundTruth:
    """The hidden attributes that generated MiniClips, aligned with ``MiniClips.items`` rows.

    Introduced in chapter 01. Attribute arrays have shape ``(n_items,)``; user tastes have
    shape ``(n_users,)`` or ``(n_users, n_categories)`` aligned with ``MiniClips.users``.
    """

    category: np.ndarray
    category_names: list[str]
    valence: np.ndarray
    arousal: np.ndarray
    visual_style: np.ndarray
    timbre: np.ndarray
    appeal: np.ndarray
    shot_cuts: dict[str, list[float]]
    boxes: pd.DataFrame
    object_classes: list[str]
    cold_items: np.ndarray
    tempo_bpm: np.ndarray
    user_category_affinity: np.ndarray
    user_energy: np.ndarray
    user_style_weight: np.ndarray
    user_timbre_weight: np.ndarray
    user_activity: np.ndarray
    item_ids: np.ndarray = field(repr=False)
    user_ids: np.ndarray = field(repr=False)

    @property
    def energy(self) -> np.ndarray:
        """Alias of ``arousal`` (the clip's energy)."""
        return self.arousal


#: The terms of the true preference score, see :meth:`MiniClips.oracle_scores`.
ORACLE_TERMS = ("category", "energy", "style", "timbre", "appeal")


def _true_scores(truth: GroundTruth, user_index: np.ndarray, item_index: np.ndarray,
                 terms=ORACLE_TERMS) -> np.ndarray:
    score = np.zeros((len(user_index), len(item_index)))
    if "category" in terms:
        score += _W_CATEGORY * truth.user_category_affinity[user_index][:, truth.category[item_index]]
    if "energy" in terms:
        energy_gap = truth.user_energy[user_index][:, None] - truth.arousal[item_index][None, :]
        score -= _W_ENERGY * energy_gap ** 2
    if "style" in terms:
        score += (_W_STYLE * truth.user_style_weight[user_index][:, None]
                  * truth.visual_style[item_index][None, :])
    if "timbre" in terms:
        score += (_W_TIMBRE * truth.user_timbre_weight[user_index][:, None]
                  * truth.timbre[item_index][None, :])
    if "appeal" in terms:
        score += _W_APPEAL * truth.appeal[item_index][None, :]
    return score



@dataclass(frozen=True)
class World:
    """One generated MiniClips world, before it is written to disk.

    The tables are in memory with native dtypes (``release_time`` etc. are datetimes,
    ``duration_s`` and ``watch_ratio`` floats); the writer formats them for the CSVs. In the
    ``truth`` of a fresh world, ``shot_cuts``, ``boxes`` and ``tempo_bpm`` are still empty:
    they come out of the renderer.

    Attributes
    ----------
    items : DataFrame
        One row per item, the columns of :data:`ITEM_COLUMNS`, item ids in release order.
    users : DataFrame
        One row per user, the columns of :data:`USER_COLUMNS`.
    interactions : DataFrame
        The columns of :data:`INTERACTION_COLUMNS`, sorted by time then user.
    truth : GroundTruth
        The hidden attributes aligned with ``items`` and ``users``.
    seed : int
        The generator seed (the renderer derives each clip's random stream from it).
    """

    items: pd.DataFrame
    users: pd.DataFrame
    interactions: pd.DataFrame
    truth: GroundTruth
    seed: int


# The hidden world: items, users, interactions
def _generate_world(size: str, seed: int) -> World:
    n_items, n_users, median_activity = SIZES[size]
    rng = np.random.default_rng([seed, 20261127])
    n_cat = len(CATEGORY_NAMES)

    # Items: hidden attributes.
    category = rng.choice(n_cat, size=n_items, p=_CATEGORY_PRIOR)
    arousal = np.clip(_CATEGORY_AROUSAL[category] + rng.normal(0, 0.45, n_items), -1, 1)
    valence = np.clip(rng.normal(0, 0.5, n_items) + 0.2 * arousal, -1, 1)
    visual_style = rng.uniform(-1, 1, n_items)
    timbre = rng.uniform(-1, 1, n_items)
    # Appeal: mostly ordinary, a few viral hits (the head of the popularity curve).
    appeal = rng.normal(0, 1, n_items) + 1.5 * (rng.uniform(size=n_items) < 0.03)
    durations = rng.choice([3.0, 3.5, 4.0, 4.5, 5.0], size=n_items)

    # Release times: a back catalogue, a steady flow, and a late wave (the cold-start set).
    n_cold = max(3, int(round(_COLD_FRACTION * n_items)))
    release_frac = rng.uniform(-0.3, 1.0 - _COLD_WINDOW, n_items)
    cold_positions = rng.choice(n_items, size=n_cold, replace=False)
    release_frac[cold_positions] = rng.uniform(1.0 - _COLD_WINDOW, 0.995, n_cold)
    release_frac = np.sort(release_frac)  # item ids follow release order
    release_s = np.round(release_frac * _TIMELINE_DAYS * 86400).astype(np.int64)
    release_time = _TIMELINE_START + release_s.astype("timedelta64[s]")
    item_ids = np.array([f"i{k:04d}" for k in range(n_items)])
    cold_mask = release_frac >= 1.0 - _COLD_WINDOW

    # Users: tastes over the attributes and an activity level.
    user_ids = np.array([f"u{k:04d}" for k in range(n_users)])
    affinity = rng.normal(-0.4, 0.35, (n_users, n_cat))
    n_fav = rng.choice([1, 2, 3], size=n_users, p=[0.3, 0.45, 0.25])
    for u in range(n_users):
        favs = rng.choice(n_cat, size=n_fav[u], replace=False, p=_CATEGORY_PRIOR)
        affinity[u, favs] += rng.uniform(1.0, 1.6, n_fav[u])
    user_energy = np.clip(rng.normal(0, 0.55, n_users), -1, 1)
    # Most users care clearly about style and timbre, one way or the other.
    style_weight = rng.choice([-1.0, 1.0], n_users) * rng.uniform(0.3, 1.0, n_users)
    timbre_weight = rng.choice([-1.0, 1.0], n_users) * rng.uniform(0.3, 1.0, n_users)
    activity = np.clip(np.round(rng.lognormal(np.log(median_activity), 0.75, n_users)),
                       5, n_items // 2).astype(np.int64)
    signup_frac = rng.uniform(-0.2, 0.6, n_users)

    world_truth = GroundTruth(
        category=category, category_names=list(CATEGORY_NAMES), valence=valence,
        arousal=arousal, visual_style=visual_style, timbre=timbre, appeal=appeal,
        shot_cuts={}, boxes=pd.DataFrame(), object_classes=list(OBJECT_CLASSES),
        cold_items=item_ids[cold_mask], tempo_bpm=np.zeros(n_items),
        user_category_affinity=affinity, user_energy=user_energy,
        user_style_weight=style_weight, user_timbre_weight=timbre_weight,
        user_activity=activity, item_ids=item_ids, user_ids=user_ids)
    scores = _true_scores(world_truth, np.arange(n_users), np.arange(n_items))

    # Interactions: each user watches `activity` distinct clips at random times after signup;
    # at time t a clip is picked among those released by t with probability ~ exp(score).
    rows_user, rows_item, rows_time = [], [], []
    for u in range(n_users):
        start = max(signup_frac[u], 0.0)
        times = np.sort(rng.uniform(start, 1.0, activity[u]))
        weights = np.exp(scores[u] - scores[u].max())
        seen = np.zeros(n_items, dtype=bool)
        for t in times:
            available = (release_frac <= t) & ~seen
            w = weights * available
            total = w.sum()
            if total <= 0:
                continue
            i = int(np.searchsorted(np.cumsum(w), rng.uniform(0, total), side="right"))
            i = min(i, n_items - 1)
            seen[i] = True
            rows_user.append(u)
            rows_item.append(i)
            rows_time.append(t)
    rows_user = np.array(rows_user)
    rows_item = np.array(rows_item)
    rows_time = np.array(rows_time)
    # Watch time and likes follow the score relative to the user's average taste.
    centred = scores[rows_user, rows_item] - scores.mean(axis=1)[rows_user]
    centred = centred - np.median(centred)
    watch_ratio = 1 / (1 + np.exp(-(0.9 * centred + 0.6 + rng.normal(0, 0.6, len(rows_user)))))
    watch_ratio = np.round(np.clip(watch_ratio, 0.0, 1.0), 3)
    liked = rng.uniform(size=len(rows_user)) < 1 / (1 + np.exp(-(1.3 * centred - 0.8)))
    timestamp = _TIMELINE_START + np.round(rows_time * _TIMELINE_DAYS * 86400).astype(
        "timedelta64[s]")
    interactions = pd.DataFrame({
        "user_id": user_ids[rows_user], "item_id": item_ids[rows_item],
        "timestamp": timestamp, "watch_ratio": watch_ratio, "liked": liked,
    }).sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
    users = pd.DataFrame({
        "user_id": user_ids,
        "signup_time": _TIMELINE_START + np.round(signup_frac * _TIMELINE_DAYS * 86400).astype(
            "timedelta64[s]"),
    })

    # Text, per item, with its own random stream so that media changes never move the text.
    text_rng = np.random.default_rng([seed, 1])
    texts = [_make_text(text_rng, category[k], arousal[k]) for k in range(n_items)]
    items = pd.DataFrame({
        "item_id": item_ids,
        "title_en": [t[0] for t in texts],
        "title_zh": [t[1] for t in texts],
        "description_en": [t[2] for t in texts],
        "tags": [t[3] for t in texts],
        "duration_s": durations,
        "release_time": release_time,
    })
    return World(items=items, users=users, interactions=interactions, truth=world_truth,
                 seed=seed)
