"""MiniClips catalogue: creators (heavy-tailed sizes, a category and style focus) and series of episodes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Catalogue", "_make_catalogue", "_next_episode"]

# Creator sizes follow a Zipf-like law: the creator of rank r (0 = biggest) gets a share of the
# catalogue proportional to (r + _ZIPF_OFFSET) ** -_ZIPF_EXPONENT, on top of one clip each.
_CLIPS_PER_CREATOR = 10
_ZIPF_EXPONENT = 1.3
_ZIPF_OFFSET = 2.0
# Where a creator's clips come from: their main category, their second one, anything.
_FOCUS_SHARES = (0.65, 0.25)
# Series: about 12% of the clips, 3-6 episodes each, released 3-14 days apart.
_SERIES_SHARE = 0.12
_EPISODE_GAP_DAYS = (3.0, 14.0)


@dataclass(frozen=True)
class Catalogue:
    """Who made each clip, in "slot" order (before the items are sorted by release).

    Attributes
    ----------
    creator : ndarray of shape (n_items,), int
        Creator index of each clip.
    category : ndarray of shape (n_items,), int
        Category of each clip (drawn from its creator's focus).
    style_centre : ndarray of shape (n_items,)
        The creator's visual style, around which the clip's style is drawn.
    series : ndarray of shape (n_items,), int
        Series index (-1 for a clip outside any series).
    episode : ndarray of shape (n_items,), int
        Episode number 1..n within the series (0 outside any series).
    series_start : ndarray of shape (n_series,)
        Release of each series' first episode, as a fraction of the timeline.
    series_gaps : list of ndarray
        Gaps between consecutive episodes of each series, as fractions of the timeline.
    creator_focus : ndarray of shape (n_creators, 2), int
        Main and second category of each creator.
    creator_format : ndarray of shape (n_creators,), int
        The narration format a creator uses most.
    """

    creator: np.ndarray
    category: np.ndarray
    style_centre: np.ndarray
    series: np.ndarray
    episode: np.ndarray
    series_start: np.ndarray
    series_gaps: list
    creator_focus: np.ndarray
    creator_format: np.ndarray


def _make_catalogue(rng: np.random.Generator, n_items: int, category_prior: np.ndarray,
                    n_formats: int, timeline_days: float) -> Catalogue:
    n_cat = len(category_prior)
    n_creators = max(4, n_items // _CLIPS_PER_CREATOR)
    weights = (np.arange(n_creators) + _ZIPF_OFFSET) ** -_ZIPF_EXPONENT
    sizes = 1 + rng.multinomial(n_items - n_creators, weights / weights.sum())
    # Creator ids are not in size order: shuffle which id gets which size.
    sizes = sizes[rng.permutation(n_creators)]
    creator = rng.permutation(np.repeat(np.arange(n_creators), sizes))

    focus = np.empty((n_creators, 2), dtype=np.int64)
    for c in range(n_creators):
        focus[c] = rng.choice(n_cat, size=2, replace=False, p=category_prior)
    style = rng.uniform(-0.8, 0.8, n_creators)
    creator_format = rng.integers(0, n_formats, n_creators)

    roll = rng.uniform(size=n_items)
    category = np.where(roll < _FOCUS_SHARES[0], focus[creator, 0],
                        np.where(roll < sum(_FOCUS_SHARES), focus[creator, 1],
                                 rng.choice(n_cat, size=n_items, p=category_prior)))

    # Series: runs of 3-6 clips of one creator, all in the creator's main category.
    series = np.full(n_items, -1, dtype=np.int64)
    episode = np.zeros(n_items, dtype=np.int64)
    target = int(round(_SERIES_SHARE * n_items))
    starts, gaps = [], []
    in_series = 0
    # Round-robin over the creators in a random order, one series per creator and pass, so
    # that series spread over many creators (big creators can have several).
    order = rng.permutation(n_creators)
    while in_series < target:
        made = False
        for c in order:
            free = np.nonzero((creator == c) & (series < 0))[0]
            if in_series >= target or len(free) < 3:
                continue
            n_episodes = int(min(rng.integers(3, 7), len(free), max(3, target - in_series)))
            members = rng.choice(free, size=n_episodes, replace=False)
            series[members] = len(starts)
            episode[members] = np.arange(1, n_episodes + 1)
            category[members] = focus[c, 0]
            gap = rng.uniform(*_EPISODE_GAP_DAYS, n_episodes - 1) / timeline_days
            # The whole run fits before the end of the timeline.
            starts.append(rng.uniform(-0.1, 0.99 - gap.sum()))
            gaps.append(gap)
            in_series += n_episodes
            made = True
        if not made:
            break
    return Catalogue(creator=creator, category=category.astype(np.int64),
                     style_centre=style[creator], series=series, episode=episode,
                     series_start=np.array(starts), series_gaps=gaps, creator_focus=focus,
                     creator_format=creator_format)


def _next_episode(series_ids: np.ndarray, episodes: np.ndarray) -> np.ndarray:
    """Row of the next episode of each clip's series, -1 if none (last episode, no series).

    ``series_ids`` holds strings ("" outside a series) and ``episodes`` ints (0 outside).
    """
    following = np.full(len(series_ids), -1, dtype=np.int64)
    rows = {(s, int(e)): k for k, (s, e) in enumerate(zip(series_ids, episodes, strict=True))
            if s != ""}
    for (s, e), k in rows.items():
        following[k] = rows.get((s, e + 1), -1)
    return following
