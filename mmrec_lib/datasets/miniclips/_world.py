"""MiniClips world simulator: hidden item attributes, user tastes, interactions and the oracle score."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mmrec_lib.datasets.miniclips._catalogue import _make_catalogue, _next_episode
from mmrec_lib.datasets.miniclips._constants import (
    _TIMELINE_DAYS,
    _TIMELINE_START,
    CATEGORY_NAMES,
    OBJECT_CLASSES,
    SIZES,
)
from mmrec_lib.datasets.miniclips._sessions import _simulate_views
from mmrec_lib.datasets.miniclips._speech import (
    _LEAD_IN_S,
    FORMAT_NAMES,
    _make_script,
    _narration_plan,
    _narration_seconds,
    _script_text,
)
from mmrec_lib.datasets.miniclips._text import _make_text
from mmrec_lib.errors import DataError

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
# Generator 4: the format a narrator announces (only on talked-over clips; only speech says it).
# Generator 5 raised its weight from 1.5 to 5.0 (nothing else changed: same media, only the
# users' views). With 1.5 the term barely mattered on the new releases: the true score without
# it already ranked them almost as well as with it (cold NDCG@10 0.553 vs 0.586, small, seed
# 0), so fusion with speech could not beat fusion without it (0.281 +- 0.020 vs
# 0.283 +- 0.030, 3 seeds). Measured on small, seed 0, 3 split seeds: 2.5, 3.0 and 4.0 gave
# a speech gain of +0.008, +0.018 and +0.023 (two std: 0.041, 0.086, 0.023); 5.0 gave
# 0.402 +- 0.016 vs 0.310 +- 0.015 (+0.092, paired +-0.002; generator 6: 0.398 vs 0.303).
# A side effect: the audio track carries the voice, so audio alone ranked the new releases
# better than text or frames (until generator 6 made the music louder and brighter: musicnn
# hears the voice less under it, and the three single modalities are close on new releases,
# chapter 08).
_W_SPEECH = 5.0

# Per-category knobs of the world: arousal offset and how common the category is. (The
# renderer has its own: hue, root note, object classes.)
_CATEGORY_AROUSAL = np.array([0.1, 0.5, -0.2, 0.3, -0.1, -0.2, -0.4, 0.2, 0.6, -0.6])
_CATEGORY_PRIOR = np.array([0.16, 0.12, 0.10, 0.12, 0.11, 0.08, 0.05, 0.11, 0.09, 0.06])
# How often each category is talked over, relative to the others (news and cooking most,
# music and dance least); exactly half of the clips have a narration.
_CATEGORY_TALK = np.array([0.4, 0.9, 1.6, 1.2, 1.0, 1.4, 2.0, 1.2, 0.4, 0.8])
_SPEECH_SHARE = 0.5
# A narrator uses their creator's usual format this often, otherwise any format.
_CREATOR_FORMAT_SHARE = 0.6
# Speech-free clips last 3.0-5.0 s; a talked-over clip is extended to hold its narration plus
# this tail, in 0.5 s steps, up to _MAX_DURATION_S.
_SPEECH_TAIL_S = 0.3
_MAX_DURATION_S = 6.0


@dataclass
class GroundTruth:
    """The hidden attributes that generated MiniClips, aligned with ``MiniClips.items`` rows.

    Introduced in chapter 01. Attribute arrays have shape ``(n_items,)``; user tastes have
    shape ``(n_users,)`` or ``(n_users, n_categories)`` aligned with ``MiniClips.users``.
    Generator 4 added the narration (``has_speech``, ``format`` (-1 without speech),
    ``narration`` (the exact script, "" without speech), the snippets, pauses, gains and
    where the voice is), the creators' focus, the users' ``user_format_affinity`` and every
    session's hidden ``session_focus`` (aligned with ``session_ids``). Every field is
    described in ``datasets/miniclips.md``.
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
    creator_ids: np.ndarray
    creator_focus: np.ndarray
    creator_format: np.ndarray
    has_speech: np.ndarray
    format: np.ndarray
    format_names: list[str]
    narration: np.ndarray
    narration_snippets: np.ndarray
    narration_pauses: np.ndarray
    voice_gain_db: np.ndarray
    music_duck_db: np.ndarray
    speech_start_s: np.ndarray
    speech_end_s: np.ndarray
    user_format_affinity: np.ndarray
    session_ids: np.ndarray
    session_focus: np.ndarray
    item_ids: np.ndarray = field(repr=False)
    user_ids: np.ndarray = field(repr=False)

    @property
    def energy(self) -> np.ndarray:
        """Alias of ``arousal`` (the clip's energy)."""
        return self.arousal


#: The terms of the true preference score, see :meth:`MiniClips.oracle_scores`.
ORACLE_TERMS = ("category", "energy", "style", "timbre", "appeal", "speech")


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
    if "speech" in terms:
        talked = truth.has_speech[item_index]
        spoken_format = np.where(talked, truth.format[item_index], 0)
        score += (_W_SPEECH * truth.user_format_affinity[user_index][:, spoken_format]
                  * talked[None, :])
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
    timeline_s = float(_TIMELINE_DAYS * 86400)

    # Items, in "slot" order first: creators (with their category and style focus) and series,
    # then the hidden attributes; everything is reordered by release time below.
    catalogue = _make_catalogue(np.random.default_rng([seed, 3]), n_items, _CATEGORY_PRIOR,
                                len(FORMAT_NAMES), _TIMELINE_DAYS)
    category = catalogue.category
    arousal = np.clip(_CATEGORY_AROUSAL[category] + rng.normal(0, 0.45, n_items), -1, 1)
    valence = np.clip(rng.normal(0, 0.5, n_items) + 0.2 * arousal, -1, 1)
    visual_style = np.clip(catalogue.style_centre + rng.normal(0, 0.4, n_items), -1, 1)
    timbre = rng.uniform(-1, 1, n_items)
    # Appeal: mostly ordinary, a few viral hits (the head of the popularity curve).
    appeal = rng.normal(0, 1, n_items) + 1.5 * (rng.uniform(size=n_items) < 0.03)
    durations = rng.choice([3.0, 3.5, 4.0, 4.5, 5.0], size=n_items)

    # Release times: a back catalogue, a steady flow, and a late wave (the cold-start set);
    # the episodes of a series come out in order, days to weeks apart.
    n_cold = max(3, int(round(_COLD_FRACTION * n_items)))
    release_frac = rng.uniform(-0.3, 1.0 - _COLD_WINDOW, n_items)
    standalone = np.nonzero(catalogue.series < 0)[0]
    cold_positions = rng.choice(standalone, size=n_cold, replace=False)
    release_frac[cold_positions] = rng.uniform(1.0 - _COLD_WINDOW, 0.995, n_cold)
    for s, (start, gaps) in enumerate(zip(catalogue.series_start, catalogue.series_gaps,
                                          strict=True)):
        members = np.nonzero(catalogue.series == s)[0]
        members = members[np.argsort(catalogue.episode[members])]
        release_frac[members] = start + np.concatenate([[0.0], np.cumsum(gaps)])
    order = np.argsort(release_frac, kind="stable")  # item ids follow release order
    (release_frac, category, arousal, valence, visual_style, timbre, appeal, durations) = (
        a[order] for a in (release_frac, category, arousal, valence, visual_style, timbre,
                           appeal, durations))
    creator, series, episode = (catalogue.creator[order], catalogue.series[order],
                                catalogue.episode[order])
    release_s = np.round(release_frac * timeline_s).astype(np.int64)
    release_time = _TIMELINE_START + release_s.astype("timedelta64[s]")
    item_ids = np.array([f"i{k:04d}" for k in range(n_items)])
    creator_ids = np.array([f"c{k:03d}" for k in range(len(catalogue.creator_focus))])
    cold_mask = release_frac >= 1.0 - _COLD_WINDOW
    # Series are numbered by the release of their first episode.
    first_release = {}
    for k in range(n_items):
        if series[k] >= 0:
            first_release.setdefault(int(series[k]), k)
    series_names = {s: f"s{j:03d}" for j, s in enumerate(sorted(first_release,
                                                                key=first_release.get))}
    series_ids = np.array([series_names[int(s)] if s >= 0 else "" for s in series])

    # Narration: half of the clips (more often news or cooking than music or dance) are
    # talked over; each clip's script and its pauses and gains come from its own stream.
    speech_rng = np.random.default_rng([seed, 5])
    talk = _CATEGORY_TALK[category] / _CATEGORY_TALK[category].sum()
    talked = speech_rng.choice(n_items, size=int(round(_SPEECH_SHARE * n_items)), replace=False,
                               p=talk)
    has_speech = np.zeros(n_items, dtype=bool)
    has_speech[talked] = True
    spoken_format = np.full(n_items, -1, dtype=np.int64)
    narration = np.full(n_items, "", dtype=object)
    snippets = np.full(n_items, "", dtype=object)
    pauses = np.full((n_items, 4), np.nan)
    gain_db, duck_db = np.full(n_items, np.nan), np.full(n_items, np.nan)
    speech_start, speech_end = np.full(n_items, np.nan), np.full(n_items, np.nan)
    for k in np.nonzero(has_speech)[0]:
        clip_rng = np.random.default_rng([seed, 5, k])
        usual = catalogue.creator_format[creator[k]]
        spoken_format[k] = (usual if clip_rng.uniform() < _CREATOR_FORMAT_SHARE
                            else clip_rng.integers(0, len(FORMAT_NAMES)))
        names = _make_script(clip_rng, int(spoken_format[k]), float(valence[k]))
        clip_pauses, gain_db[k] = _narration_plan(clip_rng, names)
        duck_db[k] = clip_rng.uniform(-14.0, -10.0)
        end = _narration_seconds(names, clip_pauses)
        durations[k] = max(durations[k], np.ceil((end + _SPEECH_TAIL_S) * 2) / 2)
        if durations[k] > _MAX_DURATION_S:
            raise DataError(f"the narration of {item_ids[k]} lasts {end:.2f} s, too long for a "
                            f"{_MAX_DURATION_S} s clip")
        narration[k], snippets[k] = _script_text(names), "|".join(names)
        pauses[k] = clip_pauses
        speech_start[k], speech_end[k] = _LEAD_IN_S, end

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
    format_affinity = rng.normal(0.0, 0.6, (n_users, len(FORMAT_NAMES)))
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
        user_activity=activity, creator_ids=creator_ids,
        creator_focus=catalogue.creator_focus, creator_format=catalogue.creator_format,
        has_speech=has_speech, format=spoken_format, format_names=list(FORMAT_NAMES),
        narration=narration.astype(str), narration_snippets=snippets.astype(str),
        narration_pauses=pauses, voice_gain_db=gain_db, music_duck_db=duck_db,
        speech_start_s=speech_start, speech_end_s=speech_end,
        user_format_affinity=format_affinity, session_ids=np.array([], dtype=str),
        session_focus=np.array([], dtype=np.int64), item_ids=item_ids, user_ids=user_ids)
    scores = _true_scores(world_truth, np.arange(n_users), np.arange(n_items))

    # Interactions: each user watches `activity` distinct clips in sessions (see _sessions).
    log = _simulate_views(np.random.default_rng([seed, 4]), scores, category, creator,
                          _next_episode(series_ids, episode), release_frac,
                          np.maximum(signup_frac, 0.0), activity, affinity, timeline_s)
    rows_user, rows_item = np.array(log.user), np.array(log.item)
    session_user = np.array(log.session_user, dtype=np.int64)
    session_number = np.zeros(len(session_user), dtype=np.int64)
    for j in range(1, len(session_user)):
        if session_user[j] == session_user[j - 1]:
            session_number[j] = session_number[j - 1] + 1
    session_ids = np.array([f"{user_ids[u]}-{n:03d}" for u, n in
                            zip(session_user, session_number, strict=True)])
    world_truth.session_ids = session_ids
    world_truth.session_focus = np.array(log.session_focus, dtype=np.int64)
    # Watch time and likes follow the score relative to the user's average taste.
    centred = scores[rows_user, rows_item] - scores.mean(axis=1)[rows_user]
    centred = centred - np.median(centred)
    watch_ratio = 1 / (1 + np.exp(-(0.9 * centred + 0.6 + rng.normal(0, 0.6, len(rows_user)))))
    watch_ratio = np.round(np.clip(watch_ratio, 0.0, 1.0), 3)
    liked = rng.uniform(size=len(rows_user)) < 1 / (1 + np.exp(-(1.3 * centred - 0.8)))
    timestamp = _TIMELINE_START + np.round(np.array(log.time)).astype(np.int64).astype(
        "timedelta64[s]")
    interactions = pd.DataFrame({
        "user_id": user_ids[rows_user], "item_id": item_ids[rows_item],
        "timestamp": timestamp, "watch_ratio": watch_ratio, "liked": liked,
        "session_id": session_ids[np.array(log.session)],
    }).sort_values(["timestamp", "user_id"], kind="stable").reset_index(drop=True)
    users = pd.DataFrame({
        "user_id": user_ids,
        "signup_time": _TIMELINE_START + np.round(signup_frac * timeline_s).astype(
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
        "creator_id": creator_ids[creator],
        "series_id": series_ids,
        "episode": pd.array([int(e) if e > 0 else None for e in episode], dtype="Int64"),
        "has_speech": has_speech,
    })
    return World(items=items, users=users, interactions=interactions, truth=world_truth,
                 seed=seed)
