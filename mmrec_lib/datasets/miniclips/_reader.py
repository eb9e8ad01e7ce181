"""MiniClips reader: the ``MiniClips`` object over a built folder (tables, media paths, hidden truth)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_int, check_subset
from mmrec_lib.datasets.miniclips._catalogue import _next_episode
from mmrec_lib.datasets.miniclips._constants import (
    _TIMELINE_DAYS,
    _TIMELINE_START,
    AUDIO_SR,
    COMPLETE_MARKER,
)
from mmrec_lib.datasets.miniclips._media import alias
from mmrec_lib.datasets.miniclips._sessions import (
    _focus_log_likelihood,
    _focus_log_prior,
    _focus_mixture,
    _next_item_logits,
)
from mmrec_lib.datasets.miniclips._world import ORACLE_TERMS, GroundTruth, _true_scores
from mmrec_lib.errors import DataError, ParameterError

__all__ = ["MiniClips"]


class MiniClips:
    """A built MiniClips set: tables, media paths and the hidden ground truth.

    Introduced in chapter 01. Create it with :func:`load_miniclips`.

    Attributes
    ----------
    root : Path
        Folder of the built set (``clips/``, ``covers/``, CSVs, ``ground_truth.npz``).
    items, users, interactions : DataFrame
        The observable tables (see ``datasets/miniclips.md``).
    truth : GroundTruth
        Hidden attributes; never use them as model inputs, only to explain and to score.
    size, seed : str, int
        How the set was generated.
    generator_version : int
        The generator that built it (part of every feature cache key, so features
        of an older build are never read for a newer one).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        root = Path(root)
        marker = root / COMPLETE_MARKER
        if not marker.is_file():
            raise DataError(f"{root} is not a complete MiniClips build (no {COMPLETE_MARKER}); "
                            "rebuild it with make_miniclips(...)")
        meta = json.loads(marker.read_text())
        self.root = root
        self.size: str = meta["size"]
        self.seed: int = meta["seed"]
        self.generator_version: int | None = meta.get("generator_version")
        # Text columns keep "" for empty (series_id too); episode is a nullable Int64.
        self.items = pd.read_csv(root / "items.csv", keep_default_na=False,
                                 dtype={"tags": str, "description_en": str, "series_id": str,
                                        "episode": str, "has_speech": bool},
                                 parse_dates=["release_time"])
        self.items["episode"] = pd.array(
            [int(e) if e else None for e in self.items["episode"]], dtype="Int64")
        self.users = pd.read_csv(root / "users.csv", parse_dates=["signup_time"])
        self.interactions = pd.read_csv(root / "interactions.csv", parse_dates=["timestamp"],
                                        dtype={"liked": bool, "session_id": str})
        self.truth = _load_truth(root / "ground_truth.npz")
        self._item_pos = {item: k for k, item in enumerate(self.items["item_id"])}
        self._user_pos = {user: k for k, user in enumerate(self.users["user_id"])}
        self._session_pos = {s: k for k, s in enumerate(self.truth.session_ids)}
        creator_pos = {c: k for k, c in enumerate(self.truth.creator_ids)}
        self._creator = np.array([creator_pos[c] for c in self.items["creator_id"]])
        self._next_episode = _next_episode(self.items["series_id"].to_numpy(),
                                           self.items["episode"].fillna(0).to_numpy(int))

    def __repr__(self) -> str:
        return (f"MiniClips(size={self.size!r}, seed={self.seed}, items={len(self.items)}, "
                f"users={len(self.users)}, interactions={len(self.interactions)})")

    def clip_path(self, item_id: str) -> Path:
        """Path of ``clips/<item_id>.mp4`` (H.264 video + AAC audio)."""
        self._check_item(item_id)
        return self.root / "clips" / f"{item_id}.mp4"

    def cover_path(self, item_id: str) -> Path:
        """Path of ``covers/<item_id>.jpg`` (a frame of the clip)."""
        self._check_item(item_id)
        return self.root / "covers" / f"{item_id}.jpg"

    def _check_item(self, item_id: str) -> None:
        if item_id not in self._item_pos:
            raise ParameterError(f"item_id={item_id!r} is not in this MiniClips set "
                                 f"(ids run from {self.items.item_id.iloc[0]!r} to "
                                 f"{self.items.item_id.iloc[-1]!r})")

    def item_index(self, item_ids) -> np.ndarray:
        """Row positions in ``items`` of the given item ids, shape ``(n,)``."""
        return self._positions(item_ids, self._item_pos, "item_id")

    def user_index(self, user_ids) -> np.ndarray:
        """Row positions in ``users`` of the given user ids, shape ``(n,)``."""
        return self._positions(user_ids, self._user_pos, "user_id")

    @staticmethod
    def _positions(ids, lookup: dict, name: str) -> np.ndarray:
        if isinstance(ids, str):
            raise ParameterError(f"{name}s must be a list or array of ids, got the string {ids!r}")
        ids = list(ids)
        missing = [i for i in ids if i not in lookup]
        if missing:
            raise ParameterError(f"unknown {name} values: {missing[:5]!r} "
                                 f"({len(missing)} of {len(ids)})")
        return np.array([lookup[i] for i in ids], dtype=np.int64)

    def oracle_scores(self, user_ids, item_ids, *, terms=ORACLE_TERMS,
                      exposure: bool = False) -> np.ndarray:
        """The true preference score that generated the interactions.

        Introduced in chapter 01; ranking by it gives the oracle of every chapter.
        The score is a sum of terms: category affinity, closeness of the clip's
        energy to the user's, visual style and timbre (each liked or disliked by
        the user), and the clip's appeal to everyone. ``terms`` keeps only some of
        them: chapter 08 ranks by one group of terms to measure how much any
        model that sees only those attributes can achieve.

        Preference is not the whole story of who watched what: a clip released
        late in a user's active period had less time to be picked. When the test
        rows are drawn from all of a user's views (not only the last one),
        ``exposure=True`` adds ``log`` of :meth:`exposure_share` to the score,
        which ranks those rows better than preference alone (chapter 08).

        Parameters
        ----------
        user_ids : sequence of str, length n_users
        item_ids : sequence of str, length n_items
        terms : subset of :data:`ORACLE_TERMS`
        exposure : bool
            Add ``log(exposure_share)`` (floored at ``log(1e-9)`` for clips the
            user could never have seen).

        Returns
        -------
        ndarray of shape (n_users, n_items), float64
        """
        terms = check_subset("terms", terms, ORACLE_TERMS)
        users = self.user_index(user_ids)
        items = self.item_index(item_ids)
        scores = _true_scores(self.truth, users, items, terms)
        if exposure:
            scores = scores + np.log(np.maximum(self.exposure_share(user_ids, item_ids), 1e-9))
        return scores

    def next_item_scores(self, user_id: str, history: pd.DataFrame, *, timestamp,
                         session_id: str, focus: str = "true") -> np.ndarray:
        """The sequential oracle: true log-probabilities of the user's next view.

        Introduced in chapter 01. The simulator drew each view from these
        probabilities: the preference score (:meth:`oracle_scores`) plus the
        session's focus category (hidden: ``truth.session_focus``), the creator of
        the previous view in the same session and the next episode of every series
        the user has watched an episode of, over the clips released by
        ``timestamp`` and not watched yet.

        The session's focus is drawn at its start and causes its views, so
        ``focus="true"`` (the default) knows part of what it predicts: it is an
        upper bound, not a predictor. ``focus="posterior"`` is the Bayes-optimal
        predictor given every true parameter and the observed history only: it
        weighs the per-focus laws by the posterior of the focus given the
        session's earlier views (prior: the user's focus law; likelihood: each
        earlier view's probability, with what was available, followed and the
        previous creator at that view), so ``history`` needs a ``timestamp``
        column then.

        Parameters
        ----------
        user_id : str
        history : DataFrame
            The user's earlier views, oldest first, with columns ``item_id`` and
            ``session_id`` (and ``timestamp`` for ``focus="posterior"``; rows of
            :attr:`interactions`).
        timestamp : datetime-like
            Time of the next view.
        session_id : str
            Session of the next view.
        focus : {"true", "posterior"}

        Returns
        -------
        ndarray of shape (n_items,), float64
            Log-probabilities aligned with :attr:`items`; ``-inf`` for clips not
            released yet or already watched.
        """
        if focus not in ("true", "posterior"):
            raise ParameterError(f"focus={focus!r} must be 'true' or 'posterior'")
        user = self.user_index([user_id])[0]
        if session_id not in self._session_pos:
            raise ParameterError(f"session_id={session_id!r} is not in this MiniClips set")
        needed = {"item_id", "session_id"} | ({"timestamp"} if focus == "posterior" else set())
        missing = needed - set(getattr(history, "columns", []))
        if missing:
            raise ParameterError(f"history must be a DataFrame with columns "
                                 f"{', '.join(sorted(needed))}; missing {sorted(missing)}")
        watched = self.item_index(history["item_id"])
        sessions = history["session_id"].to_numpy()
        same_session = len(history) > 0 and sessions[-1] == session_id
        previous = int(self._creator[watched[-1]]) if same_session else -1
        preference = _true_scores(self.truth, np.array([user]), np.arange(len(self.items)))[0]
        if focus == "true":
            seen, followed = self._watch_state(watched)
            released = (self.items["release_time"].to_numpy()
                        <= pd.Timestamp(timestamp).to_datetime64())
            logits = _next_item_logits(
                preference, self.truth.category, self._creator,
                int(self.truth.session_focus[self._session_pos[session_id]]),
                previous, followed & ~seen, released & ~seen)
        else:
            n_categories = len(self.truth.category_names)
            log_posterior = _focus_log_prior(self.truth.user_category_affinity[user])
            start = len(history)
            while start > 0 and sessions[start - 1] == session_id:
                start -= 1
            if start < len(history):  # the session's earlier views
                times = pd.to_datetime(history["timestamp"]).to_numpy()
                base = np.array([self._base_logits(preference, watched[:p], times[p],
                                                   -1 if p == start
                                                   else int(self._creator[watched[p - 1]]),
                                                   chosen=watched[p])
                                 for p in range(start, len(history))])
                log_posterior = log_posterior + _focus_log_likelihood(
                    base, self.truth.category, watched[start:], n_categories).sum(axis=0)
            base = self._base_logits(preference, watched, timestamp, previous)
            if not np.isfinite(base).any():
                return base
            logits = _focus_mixture(base, self.truth.category, log_posterior)
        finite = np.isfinite(logits)
        if not finite.any():
            return logits
        top = logits[finite].max()
        return logits - (top + np.log(np.exp(logits[finite] - top).sum()))

    def _watch_state(self, watched: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Watched clips and the next episodes of their series (both boolean over items)."""
        seen = np.zeros(len(self.items), dtype=bool)
        seen[watched] = True
        followed = np.zeros(len(self.items), dtype=bool)
        following = self._next_episode[watched]
        followed[following[following >= 0]] = True
        return seen, followed

    def _base_logits(self, preference, watched, timestamp, previous, chosen=None):
        """Next-view logits without the focus term after ``watched``, at ``timestamp``.

        ``chosen`` (the clip picked then, when known) is kept available: release times
        and view times are rounded to the second, so a clip picked in the second of its
        release could otherwise look unreleased.
        """
        seen, followed = self._watch_state(watched)
        available = (self.items["release_time"].to_numpy()
                     <= pd.Timestamp(timestamp).to_datetime64()) & ~seen
        if chosen is not None:
            available[chosen] = True
        return _next_item_logits(preference, self.truth.category, self._creator, -1,
                                 previous, followed & ~seen, available)

    def oracle_leave_last_out(self, *, k: int = 10) -> dict[str, float]:
        """NDCG@k of the sequential and the bag-of-views oracles on each user's last view.

        Introduced in chapter 01. Candidates are the clips released by the time of
        the held-out view and not watched before it. The bag-of-views oracle ranks
        them by :meth:`oracle_scores` (preference only, as a model that sees a set
        of views can at best); the sequential oracle by :meth:`next_item_scores`
        with the session's true focus (an upper bound: the focus is drawn before,
        and causes, the held-out view) and ``sequential_bayes`` with the focus
        posterior given the session's earlier views (the best any predictor that
        knows every true parameter but only sees the history can do).

        Returns
        -------
        dict
            ``{"sequential": float, "sequential_bayes": float, "bag_of_views": float,
            "n_users": int}``.
        """
        check_int("k", k)
        names = ("sequential", "sequential_bayes", "bag_of_views")
        gains = {name: [] for name in names}
        item_ids = self.items["item_id"].to_numpy()
        for user_id, views in self.interactions.groupby("user_id", sort=True):
            history, last = views.iloc[:-1], views.iloc[-1]
            sequential = self.next_item_scores(user_id, history, timestamp=last["timestamp"],
                                               session_id=last["session_id"])
            bayes = self.next_item_scores(user_id, history, timestamp=last["timestamp"],
                                          session_id=last["session_id"], focus="posterior")
            candidates = np.isfinite(sequential)
            bag = np.where(candidates, self.oracle_scores([user_id], item_ids)[0], -np.inf)
            target = self._item_pos[last["item_id"]]
            for name, scores in zip(names, (sequential, bayes, bag), strict=True):
                rank = int(np.sum(scores > scores[target]))
                gains[name].append(1.0 / np.log2(rank + 2) if rank < k else 0.0)
        return {**{name: float(np.mean(gains[name])) for name in names},
                "n_users": len(gains["sequential"])}

    def exposure_share(self, user_ids, item_ids) -> np.ndarray:
        """Share of each user's active period during which each clip was already released.

        Introduced in chapter 08. A user is active from signup (or the start of
        the timeline, if later) to its end, and watches at times spread
        uniformly over that period; a clip can be picked only after its release.
        Computed from the observable ``signup_time`` and ``release_time``.

        Returns
        -------
        ndarray of shape (n_users, n_items), values in [0, 1]
        """
        users = self.user_index(user_ids)
        items = self.item_index(item_ids)
        span = np.timedelta64(_TIMELINE_DAYS * 86400, "s")

        def fraction(times) -> np.ndarray:
            """Position on the timeline: 0 at its start, 1 at its end."""
            delta = pd.to_datetime(times).to_numpy().astype("datetime64[s]") - _TIMELINE_START
            return delta / span

        start = np.maximum(fraction(self.users["signup_time"].to_numpy()[users]), 0.0)[:, None]
        release = fraction(self.items["release_time"].to_numpy()[items])[None, :]
        return np.clip((1.0 - np.maximum(release, start)) / (1.0 - start), 0.0, 1.0)

    def read_frames(self, item_id: str) -> np.ndarray:
        """Decoded frames of a clip, uint8 array of shape (n_frames, FRAME_SIZE, FRAME_SIZE, 3)."""
        return alias("read_frames")(self.clip_path(item_id))

    def read_audio(self, item_id: str) -> np.ndarray:
        """Decoded mono audio of a clip at AUDIO_SR, float32 array of shape (n_samples,)."""
        return alias("read_audio")(self.clip_path(item_id), sr=AUDIO_SR)


def _load_truth(path: Path) -> GroundTruth:
    with np.load(path, allow_pickle=False) as z:
        arrays = {key: z[key] for key in z.files}
    item_ids = arrays["item_ids"].astype(str)
    object_classes = [str(c) for c in arrays["object_classes"]]
    boxes = pd.DataFrame({
        "item_id": item_ids[arrays["box_item"]],
        "frame": arrays["box_frame"].astype(np.int64),
        "object_class": np.array(object_classes)[arrays["box_class"]],
        "x0": arrays["box_xyxy"][:, 0].astype(np.int64),
        "y0": arrays["box_xyxy"][:, 1].astype(np.int64),
        "x1": arrays["box_xyxy"][:, 2].astype(np.int64),
        "y1": arrays["box_xyxy"][:, 3].astype(np.int64),
    })
    shot_cuts: dict[str, list[float]] = {str(item): [] for item in item_ids}
    for item, time in zip(arrays["cut_item"], arrays["cut_time"], strict=True):
        shot_cuts[str(item_ids[item])].append(float(time))
    return GroundTruth(
        category=arrays["category"].astype(np.int64),
        category_names=[str(c) for c in arrays["category_names"]],
        valence=arrays["valence"], arousal=arrays["arousal"],
        visual_style=arrays["visual_style"], timbre=arrays["timbre"], appeal=arrays["appeal"],
        shot_cuts=shot_cuts, boxes=boxes, object_classes=object_classes,
        cold_items=arrays["cold_items"].astype(str), tempo_bpm=arrays["tempo_bpm"],
        user_category_affinity=arrays["user_category_affinity"],
        user_energy=arrays["user_energy"], user_style_weight=arrays["user_style_weight"],
        user_timbre_weight=arrays["user_timbre_weight"], user_activity=arrays["user_activity"],
        creator_ids=arrays["creator_ids"].astype(str), creator_focus=arrays["creator_focus"],
        creator_format=arrays["creator_format"], has_speech=arrays["has_speech"].astype(bool),
        format=arrays["format"].astype(np.int64),
        format_names=[str(f) for f in arrays["format_names"]],
        narration=arrays["narration"].astype(str),
        narration_snippets=arrays["narration_snippets"].astype(str),
        narration_pauses=arrays["narration_pauses"], voice_gain_db=arrays["voice_gain_db"],
        music_duck_db=arrays["music_duck_db"], speech_start_s=arrays["speech_start_s"],
        speech_end_s=arrays["speech_end_s"],
        user_format_affinity=arrays["user_format_affinity"],
        session_ids=arrays["session_ids"].astype(str),
        session_focus=arrays["session_focus"].astype(np.int64),
        item_ids=item_ids, user_ids=arrays["user_ids"].astype(str),
    )
