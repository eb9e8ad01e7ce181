"""MiniClips constants shared by the simulator, the renderer and the reader: sizes, media format, columns."""

from __future__ import annotations

import numpy as np

__all__ = [
    "FPS",
    "FRAME_SIZE",
    "AUDIO_SR",
    "SIZES",
    "CATEGORY_NAMES",
    "OBJECT_CLASSES",
    "GENERATOR_VERSION",
    "COMPLETE_MARKER",
    "ITEM_COLUMNS",
    "USER_COLUMNS",
    "INTERACTION_COLUMNS",
]

#: Video frame rate of every clip, in frames per second.
FPS = 10
#: Frames are square: FRAME_SIZE x FRAME_SIZE pixels (height = width), RGB.
FRAME_SIZE = 96
#: Audio sample rate in Hz (mono AAC track).
AUDIO_SR = 16_000
#: Bumped whenever the generator changes; a cached set built by another version is rebuilt.
GENERATOR_VERSION = 6

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
                "duration_s", "release_time", "creator_id", "series_id", "episode", "has_speech"]
USER_COLUMNS = ["user_id", "signup_time"]
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp", "watch_ratio", "liked", "session_id"]

# The timeline of the platform: the simulator places releases, signups and views on it, and
# MiniClips.exposure_share reads positions back from it.
_TIMELINE_START = np.datetime64("2025-01-01T00:00:00", "s")
_TIMELINE_DAYS = 180
