"""MiniClips: a deterministic micro-video platform in miniature, with real mp4 media (chapter 01).

A package of focused modules, all re-exported here (``from mmrec_lib.datasets import
miniclips`` is the one import path):

- ``_constants``: sizes, media format, column names, ``GENERATOR_VERSION``;
- ``_world``: the simulator (hidden attributes, users, interactions) and the oracle score,
  producing a :class:`World`;
- ``_catalogue``: creators (heavy-tailed sizes, category focus) and series of episodes;
- ``_sessions``: the law of the next view (session focus, creator, next episode), shared by
  the simulator and the sequential oracle;
- ``_speech``: narration scripts, the shipped espeak-ng snippets (checksummed) and mixing;
- ``_text``: bilingual titles, descriptions and tags;
- ``_render``: frames, audio, mp4 and cover files of a clip (ffmpeg);
- ``_media``: :func:`read_frames` and :func:`read_audio`, the shared decoder's functions
  (:mod:`mmrec_lib.media`, through ``vision`` and ``audio``) under MiniClips' names;
- ``_reader``: the :class:`MiniClips` object over a built folder;
- ``_build``: :func:`load_miniclips`, :func:`make_miniclips`, caching and the COMPLETE marker.

Two private names stay importable from here because other modules and tests use them:
``_ffmpeg_exe`` (``datasets.video_folder``, tests) and ``_remove_stale_parts`` (tests). The
encoder is deliberately not re-exported: ``make_miniclips`` looks it up as
``_render._encode_mp4`` at call time, so that is where a test patches it.
"""

from mmrec_lib.datasets.miniclips._build import (
    _remove_stale_parts as _remove_stale_parts,
)
from mmrec_lib.datasets.miniclips._build import (
    is_complete,
    load_miniclips,
    make_miniclips,
)
from mmrec_lib.datasets.miniclips._constants import (
    AUDIO_SR,
    CATEGORY_NAMES,
    COMPLETE_MARKER,
    FPS,
    FRAME_SIZE,
    GENERATOR_VERSION,
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    OBJECT_CLASSES,
    SIZES,
    USER_COLUMNS,
)
from mmrec_lib.datasets.miniclips._media import _ffmpeg_exe as _ffmpeg_exe
from mmrec_lib.datasets.miniclips._reader import MiniClips
from mmrec_lib.datasets.miniclips._speech import FORMAT_NAMES
from mmrec_lib.datasets.miniclips._world import ORACLE_TERMS, GroundTruth, World

__all__ = [
    "FPS",
    "FRAME_SIZE",
    "AUDIO_SR",
    "SIZES",
    "CATEGORY_NAMES",
    "OBJECT_CLASSES",
    "FORMAT_NAMES",
    "ORACLE_TERMS",
    "GENERATOR_VERSION",
    "COMPLETE_MARKER",
    "ITEM_COLUMNS",
    "USER_COLUMNS",
    "INTERACTION_COLUMNS",
    "MiniClips",
    "GroundTruth",
    "World",
    "make_miniclips",
    "load_miniclips",
    "is_complete",
    "read_frames",
    "read_audio",
]


def __getattr__(name: str):
    # read_frames / read_audio are the shared decoder's functions, imported on first use.
    if name in ("read_frames", "read_audio"):
        from mmrec_lib.datasets.miniclips._media import alias

        return alias(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
