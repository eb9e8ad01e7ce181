"""MiniClips: a deterministic micro-video platform in miniature, with real mp4 media (chapter 01)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import os
import re
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib.errors import DataError, EnvironmentError, ParameterError
from mmrec_lib.utils import atomic_dir, data_dir, progress

__all__ = [
    "FPS",
    "FRAME_SIZE",
    "AUDIO_SR",
    "SIZES",
    "CATEGORY_NAMES",
    "OBJECT_CLASSES",
    "ORACLE_TERMS",
    "GENERATOR_VERSION",
    "COMPLETE_MARKER",
    "ITEM_COLUMNS",
    "USER_COLUMNS",
    "INTERACTION_COLUMNS",
    "MiniClips",
    "GroundTruth",
    "make_miniclips",
    "load_miniclips",
    "is_complete",
    "read_frames",
    "read_audio",
]

#: Video frame rate of every clip, in frames per second.
FPS = 10
#: Frames are square: FRAME_SIZE x FRAME_SIZE pixels (height = width), RGB.
FRAME_SIZE = 96
#: Audio sample rate in Hz (mono AAC track).
AUDIO_SR = 16_000
#: Bumped whenever the generator changes; a cached set built by another version is rebuilt.
GENERATOR_VERSION = 3

#: (number of items, number of users, median interactions per user) for each size.
SIZES: dict[str, tuple[int, int, float]] = {
    "tiny": (60, 40, 12.0),
    "small": (600, 500, 30.0),
    "default": (2000, 2000, 40.0),
}

CATEGORY_NAMES = ["music", "sports", "cooking", "gaming", "pets",
                  "travel", "news", "comedy", "dance", "nature"]
OBJECT_CLASSES = ["ball", "block", "tent", "cross", "ring", "diamond"]

COMPLETE_MARKER = "COMPLETE.json"

# Column names live here, once.
ITEM_COLUMNS = ["item_id", "title_en", "title_zh", "description_en", "tags",
                "duration_s", "release_time"]
USER_COLUMNS = ["user_id", "signup_time"]
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "watch_ratio", "liked"]

_TIMELINE_START = np.datetime64("2025-01-01T00:00:00", "s")
_TIMELINE_DAYS = 180
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

# ---------------------------------------------------------------------------------------------
# Per-category rendering knobs: hue of the scene, root note of the music, object-class
# preferences and arousal offset. They give each non-text modality a moderate category signal.
_CATEGORY_HUE = np.arange(10) / 10.0
_CATEGORY_ROOT_MIDI = np.array([60, 55, 62, 57, 64, 59, 53, 65, 58, 52])
_CATEGORY_AROUSAL = np.array([0.1, 0.5, -0.2, 0.3, -0.1, -0.2, -0.4, 0.2, 0.6, -0.6])
_CATEGORY_PRIOR = np.array([0.16, 0.12, 0.10, 0.12, 0.11, 0.08, 0.05, 0.11, 0.09, 0.06])
_CATEGORY_OBJECTS = np.array([
    # ball block tent cross ring diamond
    [0.10, 0.10, 0.05, 0.05, 0.60, 0.10],  # music
    [0.65, 0.10, 0.05, 0.10, 0.05, 0.05],  # sports
    [0.10, 0.50, 0.05, 0.05, 0.25, 0.05],  # cooking
    [0.05, 0.25, 0.05, 0.30, 0.05, 0.30],  # gaming
    [0.40, 0.05, 0.30, 0.05, 0.10, 0.10],  # pets
    [0.05, 0.10, 0.60, 0.05, 0.05, 0.15],  # travel
    [0.05, 0.60, 0.05, 0.20, 0.05, 0.05],  # news
    [0.20, 0.05, 0.05, 0.20, 0.20, 0.30],  # comedy
    [0.15, 0.05, 0.05, 0.10, 0.15, 0.50],  # dance
    [0.05, 0.05, 0.55, 0.05, 0.10, 0.20],  # nature
])

# ---------------------------------------------------------------------------------------------
# Text vocabularies. English nouns come with synonyms; Chinese phrases are written as a native
# uploader would title a clip, not as glosses of the English.
_EN_NOUNS = {
    "music": ["guitar cover", "piano solo", "acoustic session", "new song", "live performance",
              "violin piece", "beat making", "melody", "singing cover", "drum solo"],
    "sports": ["basketball highlights", "football skills", "workout", "training session",
               "match recap", "best goals", "gym routine", "tennis rally", "running vlog",
               "skateboard tricks"],
    "cooking": ["easy recipe", "homemade dumplings", "pasta dinner", "breakfast ideas",
                "street food", "baking bread", "braised pork", "knife skills", "meal prep",
                "noodle soup"],
    "gaming": ["gameplay", "speedrun", "boss fight", "game walkthrough", "esports highlights",
               "ranked match", "new level", "let's play", "pro gamer moves", "retro game"],
    "pets": ["my cat", "puppy", "kitten", "dog bath time", "cute hamster", "my corgi",
             "parrot talking", "cat nap", "doggo", "rescue kitten"],
    "travel": ["road trip", "beach sunset", "city walk", "travel vlog", "mountain hike",
               "old town", "train journey", "island trip", "backpacking", "hotel tour"],
    "news": ["breaking news", "weather report", "tech news", "market update", "daily briefing",
             "press conference", "headlines", "election update", "science news", "news recap"],
    "comedy": ["prank", "funny moments", "stand-up bit", "sketch", "bloopers", "comedy skit",
               "fails compilation", "parody", "jokes", "try not to laugh"],
    "dance": ["dance challenge", "choreography", "hip hop dance", "ballet practice",
              "street dance", "dance cover", "tutorial dance", "jazz dance", "freestyle dance",
              "square dance"],
    "nature": ["forest birdsong", "waterfall", "night sky timelapse", "rain sounds",
               "wildlife documentary", "ocean waves", "flowers blooming", "snowy mountains",
               "river stream", "autumn leaves"],
}
_ZH_PHRASES = {
    "music": ["吉他弹唱", "钢琴独奏", "翻唱经典老歌", "原创音乐分享", "现场演唱会",
              "小提琴演奏", "深夜听歌", "一首好听的歌"],
    "sports": ["篮球比赛精彩瞬间", "足球技巧教学", "健身房训练日常", "跑步打卡",
               "羽毛球对决", "滑板技巧", "进球集锦", "每天练腹肌"],
    "cooking": ["家常菜做法", "红烧肉教程", "十分钟快手早餐", "在家包饺子", "煎牛排",
                "自制面包", "番茄炒蛋", "街头小吃"],
    "gaming": ["王者荣耀五杀", "游戏实况", "通关攻略", "电竞比赛集锦", "新手教程",
               "排位赛上分", "怀旧游戏", "打败最终大魔王"],
    "pets": ["我家猫咪", "小狗洗澡", "猫咪睡觉", "柯基犬的日常", "仓鼠吃东西", "会说话的鹦鹉",
             "领养小奶猫", "狗狗拆家"],
    "travel": ["云南旅行", "海边看日落", "自驾游记录", "古镇漫步", "旅行日记", "爬山看日出",
               "坐火车去西藏", "海岛度假"],
    "news": ["今日新闻速报", "天气预报", "科技新闻", "财经快讯", "新闻发布会", "每日要闻",
             "国际新闻", "新闻回顾"],
    "comedy": ["搞笑段子", "爆笑瞬间", "整蛊朋友", "沙雕日常", "相声小品", "脱口秀片段",
               "翻车现场", "忍住别笑挑战"],
    "dance": ["街舞教学", "广场舞", "爵士舞翻跳", "舞蹈挑战", "芭蕾练习", "跳舞打卡",
              "宅舞翻跳", "即兴舞蹈"],
    "nature": ["森林里的鸟叫", "瀑布风景", "星空延时摄影", "下雨的声音", "野生动物纪录片",
               "海浪的声音", "花开的瞬间", "秋天的落叶"],
}
_EN_TAGS = {
    "music": ["music", "song", "cover", "guitar", "piano", "musician"],
    "sports": ["sports", "fitness", "basketball", "football", "workout", "athlete"],
    "cooking": ["cooking", "food", "recipe", "foodie", "kitchen", "yummy"],
    "gaming": ["gaming", "games", "gamer", "esports", "videogames", "twitch"],
    "pets": ["pets", "cat", "dog", "cute", "animals", "petlover"],
    "travel": ["travel", "wanderlust", "trip", "explore", "vacation", "vlog"],
    "news": ["news", "breaking", "update", "world", "today", "report"],
    "comedy": ["comedy", "funny", "lol", "humor", "prank", "memes"],
    "dance": ["dance", "dancer", "choreo", "dancechallenge", "hiphop", "moves"],
    "nature": ["nature", "relax", "landscape", "wildlife", "outdoors", "asmr"],
}
_GENERIC_EN = ["You won't believe this", "Wait for it...", "My day today", "Part 2",
               "Must watch!!", "Just vibing", "ok this is crazy", "Watch till the end",
               "POV", "New video", "Guess what happened", "Daily vlog #12"]
_GENERIC_ZH = ["今天的日常", "一定要看到最后", "你绝对想不到", "第二集", "分享一下",
               "记录生活", "太真实了", "这是什么操作"]
_GENERIC_TAGS = ["fyp", "viral", "trending", "daily", "foryou", "new"]
_EN_HIGH = ["EPIC", "insane", "intense", "crazy fast", "high energy", "hype"]
_EN_LOW = ["chill", "relaxing", "calm", "slow", "peaceful", "cozy"]
_ZH_HIGH = ["超燃！", "太炸了！", "嗨翻全场"]
_ZH_LOW = ["治愈系", "安静地", "放松一下："]
_EN_SUFFIX = ["", "", "", " (full version)", " | part 1", "!!", " #shorts", " - day 3"]
_ZH_SUFFIX = ["", "", "，太好看了", "（完整版）", "，一定要看到最后", "，第一次尝试"]
_DESC_OPENERS = ["Today I share a", "Here is a short clip of a", "Quick look at a",
                 "Another", "A little", "Check out this"]
_GENERIC_DESC = ["Had fun filming this one.", "Link in bio.", "What do you think?",
                 "Sorry for the bad audio.", "Follow for part 2!", "Just a normal day."]
_DESC_FILLERS = ["Like and follow for more.", "Thanks for watching!",
                 "Comment what you want to see next.", "Filmed on my phone.", "", ""]


# ---------------------------------------------------------------------------------------------
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
        from mmrec_lib.utils import check_subset

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
        return read_frames(self.clip_path(item_id))

    def read_audio(self, item_id: str) -> np.ndarray:
        """Decoded mono audio of a clip at AUDIO_SR, float32 array of shape (n_samples,)."""
        return read_audio(self.clip_path(item_id))


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


# ---------------------------------------------------------------------------------------------
# Public entry points
def _check_size_seed(size, seed) -> None:
    if size not in SIZES:
        raise ParameterError(f"size={size!r} must be one of {sorted(SIZES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r} must be a non-negative int")


def is_complete(root: str | os.PathLike) -> bool:
    """True if ``root`` holds a finished build of the current generator version."""
    marker = Path(root) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("generator_version") == GENERATOR_VERSION


def load_miniclips(*, size: Literal["tiny", "small", "default"] = "small",
                   data_dir: str | os.PathLike | None = None, seed: int = 0) -> MiniClips:
    """Load MiniClips, generating it into the cache folder on first use.

    Introduced in chapter 01. The set lives in
    ``<data_dir>/miniclips/<size>-seed<seed>/`` (``data_dir`` defaults to ``$MMREC_DATA_DIR``).

    Parameters
    ----------
    size : {"tiny", "small", "default"}
        60 items / 40 users (tests), 600 / 500 (the notebooks), 2,000 / 2,000 (full runs).
    data_dir : path, optional
        Cache folder; default ``$MMREC_DATA_DIR`` or ``~/.cache/mmrec``.
    seed : int
        Generator seed; the same seed gives identical tables and decoded media.

    Returns
    -------
    MiniClips

    Examples
    --------
    >>> from mmrec_lib.datasets import miniclips
    >>> ds = miniclips.load_miniclips(size="tiny")          # doctest: +SKIP
    >>> ds.items.shape                                      # doctest: +SKIP
    (60, 7)
    """
    _check_size_seed(size, seed)
    root = _data_dir(data_dir) / "miniclips" / f"{size}-seed{int(seed)}"
    if not is_complete(root):
        # Several processes (notebooks, tests) may ask for the same set at once: one builds,
        # the others wait for it and then load the result.
        with _build_lock(root):
            if not is_complete(root):
                _remove_stale_parts(root)
                make_miniclips(root, size=size, seed=int(seed))
    return MiniClips(root)


def _remove_stale_parts(root: Path, *, older_than_s: float = 3600.0) -> None:
    # A killed build (SIGKILL, power loss) leaves its hidden temporary folder behind.
    import shutil
    import time

    for part in root.parent.glob(f".{root.name}.*.part"):
        if part.is_dir() and time.time() - part.stat().st_mtime > older_than_s:
            shutil.rmtree(part, ignore_errors=True)


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    with open(root.parent / f".{root.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_data_dir = data_dir  # the keyword argument of load_miniclips shadows the helper's name


def make_miniclips(out_dir: str | os.PathLike, *, size: Literal["tiny", "small", "default"],
                   seed: int = 0, workers: int | None = None) -> Path:
    """Generate a MiniClips set into ``out_dir`` (atomically) and return its path.

    Introduced in chapter 01. The folder appears only once complete (it is built in a
    temporary sibling and renamed, with ``COMPLETE.json`` written last), so an interrupted
    build never looks finished. An existing folder is replaced.

    Parameters
    ----------
    out_dir : path
        The folder of the set, e.g. ``<cache>/miniclips/small-seed0``.
    size : {"tiny", "small", "default"}
    seed : int
    workers : int, optional
        Parallel ffmpeg encodes; default ``min(2, os.cpu_count())``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    _check_size_seed(size, seed)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ParameterError(f"workers={workers!r} must be a positive int")
    ffmpeg = _ffmpeg_exe()
    out_dir = Path(out_dir)
    world = _generate_world(size, int(seed))
    with atomic_dir(out_dir) as tmp:
        (tmp / "clips").mkdir()
        (tmp / "covers").mkdir()
        _write_tables(tmp, world)
        n_items = len(world["items"])
        media = [None] * n_items

        def build_one(k: int):
            clip = _render_clip(world, k)
            _encode_mp4(ffmpeg, clip["frames"], clip["audio"],
                        tmp / "clips" / f"{world['items'].item_id[k]}.mp4")
            _write_cover(clip["frames"][clip["cover_frame"]],
                         tmp / "covers" / f"{world['items'].item_id[k]}.jpg")
            return k, clip["boxes"], clip["cuts"], clip["tempo"]

        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(build_one, k) for k in range(n_items)]
            try:
                for future in progress(concurrent.futures.as_completed(futures), total=n_items,
                                       desc=f"MiniClips {size}"):
                    k, boxes, cuts, tempo = future.result()
                    media[k] = (boxes, cuts, tempo)
            except BaseException:
                # Stop quickly on an error or Ctrl-C; atomic_dir then removes the partial folder.
                for future in futures:
                    future.cancel()
                raise
        _write_truth(tmp / "ground_truth.npz", world, media)
        meta = {"generator_version": GENERATOR_VERSION, "size": size, "seed": int(seed),
                "n_items": n_items, "n_users": len(world["users"]),
                "n_interactions": len(world["interactions"]),
                "fps": FPS, "frame_size": FRAME_SIZE, "audio_sr": AUDIO_SR}
        # Written last: its presence means the build finished.
        (tmp / COMPLETE_MARKER).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_dir


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as error:  # pragma: no cover - pinned dependency
        raise EnvironmentError("MiniClips needs imageio-ffmpeg: pip install imageio-ffmpeg") \
            from error
    return imageio_ffmpeg.get_ffmpeg_exe()


# ---------------------------------------------------------------------------------------------
# The hidden world: items, users, interactions
def _generate_world(size: str, seed: int) -> dict:
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
    return {"items": items, "users": users, "interactions": interactions,
            "truth": world_truth, "seed": seed}


def _make_text(rng: np.random.Generator, category: int, arousal: float) -> tuple:
    """English title, Chinese title, description and tags of one clip."""
    name = CATEGORY_NAMES[category]
    others = [c for c in CATEGORY_NAMES if c != name]

    def energy_word(high: list[str], low: list[str]) -> str:
        # Text says a little about energy: sometimes, and not always rightly.
        if rng.uniform() > 0.3:
            return ""
        correct = rng.uniform() < 0.75
        use_high = (arousal > 0) == correct
        return str(rng.choice(high if use_high else low))

    # English title: 70% on-topic, 18% generic, 12% misleading (another category's words).
    roll = rng.uniform()
    if roll < 0.18:
        title_en = str(rng.choice(_GENERIC_EN))
    else:
        topic = name if roll >= 0.30 else str(rng.choice(others))
        noun = str(rng.choice(_EN_NOUNS[topic]))
        word = energy_word(_EN_HIGH, _EN_LOW)
        title_en = (f"{word} {noun}" if word else noun)
        title_en = title_en[0].upper() + title_en[1:] + str(rng.choice(_EN_SUFFIX))

    # Chinese title: drawn independently (not a translation), same kinds of noise.
    roll = rng.uniform()
    if roll < 0.15:
        title_zh = str(rng.choice(_GENERIC_ZH))
    else:
        topic = name if roll >= 0.25 else str(rng.choice(others))
        phrase = str(rng.choice(_ZH_PHRASES[topic]))
        word = energy_word(_ZH_HIGH, _ZH_LOW)
        title_zh = word + phrase + str(rng.choice(_ZH_SUFFIX))

    # Description: on topic (with synonyms) about two times in three; otherwise empty,
    # generic, or about something else.
    roll = rng.uniform()
    if roll < 0.15:
        description = ""
    elif roll < 0.27:
        description = str(rng.choice(_GENERIC_DESC))
    else:
        topic = name if roll >= 0.37 else str(rng.choice(others))
        nouns = rng.choice(_EN_NOUNS[topic], size=2, replace=False)
        word = energy_word(_EN_HIGH, _EN_LOW)
        description = (f"{rng.choice(_DESC_OPENERS)} {word + ' ' if word else ''}{nouns[0]}, "
                       f"with some {nouns[1]}. {rng.choice(_DESC_FILLERS)}").strip()

    # Tags: a few honest ones, some generic, now and then a wrong one.
    tags = list(rng.choice(_EN_TAGS[name], size=int(rng.integers(0, 3)), replace=False))
    tags += list(rng.choice(_GENERIC_TAGS, size=int(rng.integers(0, 3)), replace=False))
    if rng.uniform() < 0.15:
        tags.append(str(rng.choice(_EN_TAGS[str(rng.choice(others))])))
    return title_en, title_zh, description, "|".join(str(t) for t in tags)


def _write_tables(folder: Path, world: dict) -> None:
    def fmt_time(series: pd.Series) -> pd.Series:
        return series.dt.strftime("%Y-%m-%dT%H:%M:%S")

    items = world["items"].copy()
    items["release_time"] = fmt_time(items["release_time"])
    items["duration_s"] = items["duration_s"].map(lambda x: f"{x:.1f}")
    items[ITEM_COLUMNS].to_csv(folder / "items.csv", index=False, lineterminator="\n")
    users = world["users"].copy()
    users["signup_time"] = fmt_time(users["signup_time"])
    users[USER_COLUMNS].to_csv(folder / "users.csv", index=False, lineterminator="\n")
    inter = world["interactions"].copy()
    inter["timestamp"] = fmt_time(inter["timestamp"])
    inter["watch_ratio"] = inter["watch_ratio"].map(lambda x: f"{x:.3f}")
    inter[INTERACTION_COLUMNS].to_csv(folder / "interactions.csv", index=False,
                                      lineterminator="\n")


def _write_truth(path: Path, world: dict, media: list) -> None:
    truth: GroundTruth = world["truth"]
    box_item, box_frame, box_class, box_xyxy = [], [], [], []
    cut_item, cut_time = [], []
    for k, (boxes, cuts, _tempo) in enumerate(media):
        for frame, cls, x0, y0, x1, y1 in boxes:
            box_item.append(k)
            box_frame.append(frame)
            box_class.append(cls)
            box_xyxy.append((x0, y0, x1, y1))
        for time in cuts:
            cut_item.append(k)
            cut_time.append(time)
    np.savez_compressed(
        path,
        item_ids=truth.item_ids, user_ids=truth.user_ids,
        category=truth.category.astype(np.int64),
        category_names=np.array(truth.category_names),
        valence=truth.valence, arousal=truth.arousal, visual_style=truth.visual_style,
        timbre=truth.timbre, appeal=truth.appeal,
        tempo_bpm=np.array([m[2] for m in media], dtype=np.float64),
        cold_items=truth.cold_items,
        object_classes=np.array(truth.object_classes),
        box_item=np.array(box_item, dtype=np.int32), box_frame=np.array(box_frame, dtype=np.int32),
        box_class=np.array(box_class, dtype=np.int8),
        box_xyxy=np.array(box_xyxy, dtype=np.int16).reshape(-1, 4),
        cut_item=np.array(cut_item, dtype=np.int32), cut_time=np.array(cut_time, dtype=np.float64),
        user_category_affinity=truth.user_category_affinity,
        user_energy=truth.user_energy, user_style_weight=truth.user_style_weight,
        user_timbre_weight=truth.user_timbre_weight, user_activity=truth.user_activity,
    )


# ---------------------------------------------------------------------------------------------
# Media rendering
def _shape_mask(cls: int, size: int) -> np.ndarray:
    """Boolean mask (size, size) of an object class."""
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    x, y = (xx - c) / (size / 2), (yy - c) / (size / 2)
    r = np.hypot(x, y)
    name = OBJECT_CLASSES[cls]
    if name == "ball":
        return r <= 1.0
    if name == "block":
        return np.ones((size, size), dtype=bool)
    if name == "tent":
        return (y >= -1) & (np.abs(x) <= (y + 1) / 2)
    if name == "cross":
        return (np.abs(x) <= 0.3) | (np.abs(y) <= 0.3)
    if name == "ring":
        return (r <= 1.0) & (r >= 0.55)
    return np.abs(x) + np.abs(y) <= 1.0  # diamond


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i])


def _render_clip(world: dict, k: int) -> dict:
    """Frames (n, S, S, 3) uint8, audio (n_samples,) float32, boxes, cuts of item k."""
    truth: GroundTruth = world["truth"]
    rng = np.random.default_rng([world["seed"], 2, k])
    duration = float(world["items"].duration_s[k])
    n_frames = int(round(duration * FPS))
    cat = int(truth.category[k])
    arousal, style = float(truth.arousal[k]), float(truth.visual_style[k])

    # Shots: about a third of the clips have one or two hard cuts.
    n_cuts = int(rng.choice([0, 1, 2], p=[0.62, 0.28, 0.10]))
    cuts: list[int] = []
    candidates = list(range(FPS, n_frames - FPS + 1))
    while len(cuts) < n_cuts and candidates:
        f = int(rng.choice(candidates))
        cuts.append(f)
        candidates = [c for c in candidates if abs(c - f) >= FPS]
    cuts.sort()
    shot_starts = [0, *cuts]

    S = FRAME_SIZE
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64) / (S - 1)
    frames = np.empty((n_frames, S, S, 3), dtype=np.uint8)
    boxes = []
    # Energy shows moderately in the frames: brightness and motion speed.
    brightness = float(np.clip(0.55 + 0.18 * arousal + rng.normal(0, 0.08), 0.2, 0.95))
    speed = (0.6 + 1.6 * (arousal + 1) / 2) * rng.uniform(0.7, 1.3)
    # Visual style: saturation and the contrast of a fine stripe texture (only in frames).
    saturation = 0.25 + 0.55 * (style + 1) / 2
    stripe_amp = 0.02 + 0.16 * (style + 1) / 2
    for s, start in enumerate(shot_starts):
        end = shot_starts[s + 1] if s + 1 < len(shot_starts) else n_frames
        hue = (_CATEGORY_HUE[cat] + rng.normal(0, 0.06) + (0.12 * s if s else 0)) % 1.0
        base = _hsv_to_rgb(hue, saturation, brightness)
        second = _hsv_to_rgb((hue + 0.08) % 1.0, saturation, brightness * 0.7)
        angle = rng.uniform(0, np.pi)
        ramp = (np.cos(angle) * xx + np.sin(angle) * yy)
        ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
        period = rng.uniform(3.5, 6.0)
        stripe_angle = rng.uniform(0, np.pi)
        stripes = np.sin(2 * np.pi * (np.cos(stripe_angle) * xx + np.sin(stripe_angle) * yy)
                         * (S - 1) / period)
        background = (base[None, None, :] * (1 - ramp[..., None])
                      + second[None, None, :] * ramp[..., None]
                      + stripe_amp * stripes[..., None])
        # Objects of category-dependent classes move and bounce.
        n_obj = int(rng.integers(1, 4))
        objects = []
        for _ in range(n_obj):
            cls = int(rng.choice(len(OBJECT_CLASSES), p=_CATEGORY_OBJECTS[cat]))
            size = int(rng.integers(14, 27))
            pos = rng.uniform(0, S - size, 2)
            direction = rng.uniform(0, 2 * np.pi)
            vel = speed * np.array([np.cos(direction), np.sin(direction)]) * rng.uniform(0.8, 1.5)
            color = _hsv_to_rgb(rng.uniform(0, 1), 0.9, rng.choice([0.15, 1.0]))
            mask = _shape_mask(cls, size)
            ys, xs = np.nonzero(mask)
            extent = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            objects.append([cls, size, pos, vel, color, mask, extent])
        for f in range(start, end):
            frame = background.copy()
            for obj in objects:
                cls, size, pos, vel, color, mask, extent = obj
                x0, y0 = int(round(pos[0])), int(round(pos[1]))
                region = frame[y0:y0 + size, x0:x0 + size]
                region[mask] = color
                boxes.append((f, cls, x0 + extent[0], y0 + extent[1],
                              x0 + extent[2], y0 + extent[3]))
                pos += vel
                for d in range(2):
                    if pos[d] < 0 or pos[d] > S - size:
                        vel[d] = -vel[d]
                        pos[d] = np.clip(pos[d], 0, S - size)
            frames[f] = np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)

    audio, tempo = _render_audio(rng, truth, k, duration)
    cover = min(n_frames - 1, (shot_starts[1] if len(shot_starts) > 1 else n_frames) // 2)
    return {"frames": frames, "audio": audio, "boxes": boxes,
            "cuts": [c / FPS for c in cuts], "cover_frame": cover, "tempo": tempo}


def _render_audio(rng: np.random.Generator, truth: GroundTruth, k: int,
                  duration: float) -> tuple[np.ndarray, float]:
    """A short piece: arpeggiated chord with a timbre, percussion on the beat."""
    cat = int(truth.category[k])
    arousal, valence, timbre = (float(truth.arousal[k]), float(truth.valence[k]),
                                float(truth.timbre[k]))
    n = int(round(duration * AUDIO_SR))
    t = np.arange(n) / AUDIO_SR
    # Energy: tempo, loudness and mode (major if positive valence, minor otherwise).
    tempo = float(np.clip(95 + 45 * arousal + rng.normal(0, 6), 50, 170))
    beat = 60.0 / tempo
    loudness = 0.12 + 0.22 * (arousal + 1) / 2
    # Category: the root note is usually the category's own.
    root = int(_CATEGORY_ROOT_MIDI[cat]) if rng.uniform() < 0.65 else int(rng.integers(50, 68))
    third = 4 if valence >= 0 else 3
    pattern = np.array([0, third, 7, 12])
    beat_index = np.floor(t / beat).astype(np.int64)
    order = rng.permutation(4) if rng.uniform() < 0.5 else np.arange(4)
    midi = root + pattern[order][beat_index % 4]
    freq = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    phase = 2 * np.pi * np.cumsum(freq) / AUDIO_SR
    # Timbre: harmonic roll-off; bright (many strong harmonics) or mellow (nearly sine).
    rolloff = 2.6 - 1.9 * (timbre + 1) / 2
    tone = np.zeros(n)
    for h in range(1, 9):
        tone += h ** -rolloff * np.sin(h * phase)
    tone /= np.sum(np.arange(1, 9) ** -rolloff)
    since_beat = t - beat_index * beat
    tone *= 0.35 + 0.65 * np.exp(-since_beat * (3 + 4 * (arousal + 1)))
    # Percussion: a decaying low thump plus a short noise click on every beat.
    thump = np.sin(2 * np.pi * 60 * since_beat) * np.exp(-since_beat * 25)
    click = rng.normal(0, 1, n) * np.exp(-since_beat * 80)
    drums = (0.5 + 0.5 * (arousal + 1) / 2) * (0.8 * thump + 0.25 * click)
    signal = 0.7 * tone + 0.5 * drums + rng.normal(0, 0.01, n)
    signal = loudness * signal / max(np.abs(signal).max(), 1e-9)
    # Fade in/out to avoid clicks at the clip edges.
    fade = min(n // 2, int(0.02 * AUDIO_SR))
    envelope = np.ones(n)
    envelope[:fade] = np.linspace(0, 1, fade)
    envelope[-fade:] = np.linspace(1, 0, fade)
    return (signal * envelope).astype(np.float32), tempo


def _wav_bytes(audio: np.ndarray) -> bytes:
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_SR)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _encode_mp4(ffmpeg: str, frames: np.ndarray, audio: np.ndarray, path: Path) -> None:
    """Encode frames + audio to H.264/AAC mp4 with pinned, bit-exact settings."""
    wav = path.with_suffix(".wav")
    wav.write_bytes(_wav_bytes(audio))
    n, h, w, _ = frames.shape
    command = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS),
        "-i", "pipe:0", "-i", str(wav),
        "-map", "0:v:0", "-map", "1:a:0",
        "-c:v", "libx264", "-preset", "medium", "-crf", "20", "-pix_fmt", "yuv420p",
        "-g", str(10 * FPS), "-threads", "1",
        "-x264-params", "threads=1:lookahead-threads=1:sliced-threads=0:scenecut=40",
        "-c:a", "aac", "-b:a", "48k", "-ac", "1", "-ar", str(AUDIO_SR),
        "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:v", "+bitexact",
        "-flags:a", "+bitexact", "-movflags", "+faststart", str(path),
    ]
    try:
        result = subprocess.run(command, input=frames.tobytes(), capture_output=True,
                                check=False)
    finally:
        wav.unlink(missing_ok=True)
    if result.returncode != 0:
        raise DataError(f"ffmpeg failed to encode {path.name}: "
                        f"{result.stderr.decode(errors='replace')[-500:]}")


def _write_cover(frame: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(frame).save(path, format="JPEG", quality=90)


# ---------------------------------------------------------------------------------------------
# Decoding helpers (also used by chapters 03 and 04)
def read_frames(path: str | os.PathLike, *, size: int | None = None) -> np.ndarray:
    """Decode all video frames of an mp4 file.

    Introduced in chapter 01.

    Parameters
    ----------
    path : path of a video file
    size : int, optional
        If given, frames are scaled to ``size`` x ``size``; default: the file's own size.

    Returns
    -------
    ndarray of shape (n_frames, height, width, 3), uint8
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"video file {path} does not exist")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ParameterError(f"size={size!r} must be a positive int (pixels) or None")
    # One ffmpeg process: frames on stdout, stream description (with the size) on stderr.
    command = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-threads", "1", "-i", str(path),
               "-map", "0:v:0"]
    if size is not None:
        command += ["-vf", f"scale={size}:{size}"]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    result = subprocess.run(command, capture_output=True, check=False)
    log = result.stderr.decode(errors="replace")
    if result.returncode != 0:
        raise DataError(f"cannot decode video of {path}: {log[-300:]}")
    # The "Video: rawvideo" line describes the decoded output stream.
    sizes = re.findall(r"Video: rawvideo.*?, (\d{1,5})x(\d{1,5})\b", log)
    if not sizes:
        raise DataError(f"{path} has no readable video stream")
    width, height = (int(v) for v in sizes[-1])
    data = np.frombuffer(result.stdout, dtype=np.uint8)
    frame_bytes = width * height * 3
    if data.size == 0 or data.size % frame_bytes:
        raise DataError(f"{path} decoded to {data.size} bytes, not whole {width}x{height} frames")
    return data.reshape(-1, height, width, 3).copy()


def read_audio(path: str | os.PathLike, *, sr: int = AUDIO_SR) -> np.ndarray:
    """Decode the audio track of a media file to mono float32 at ``sr`` Hz.

    Introduced in chapter 01.

    Returns
    -------
    ndarray of shape (n_samples,), float32 in [-1, 1]
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"media file {path} does not exist")
    if isinstance(sr, bool) or not isinstance(sr, int) or sr <= 0:
        raise ParameterError(f"sr={sr!r} must be a positive int (Hz)")
    command = [_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-threads", "1",
               "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(sr),
               "-f", "f32le", "pipe:1"]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0 or not result.stdout:
        raise DataError(f"cannot decode audio of {path}: "
                        f"{result.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(result.stdout, dtype="<f4").copy()
