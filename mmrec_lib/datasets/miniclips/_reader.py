"""MiniClips reader: the ``MiniClips`` object over a built folder (tables, media paths, hidden truth)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_subset
from mmrec_lib.datasets.miniclips._constants import (
    _TIMELINE_DAYS,
    _TIMELINE_START,
    AUDIO_SR,
    COMPLETE_MARKER,
)
from mmrec_lib.datasets.miniclips._media import alias
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
        self.items = pd.read_csv(root / "items.csv", dtype={"tags": str, "description_en": str},
                                 keep_default_na=False, parse_dates=["release_time"])
        self.users = pd.read_csv(root / "users.csv", parse_dates=["signup_time"])
        self.interactions = pd.read_csv(root / "interactions.csv", parse_dates=["timestamp"],
                                        dtype={"liked": bool})
        self.truth = _load_truth(root / "ground_truth.npz")
        self._item_pos = {item: k for k, item in enumerate(self.items["item_id"])}
        self._user_pos = {user: k for k, user in enumerate(self.users["user_id"])}

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
        item_ids=item_ids, user_ids=arrays["user_ids"].astype(str),
    )
