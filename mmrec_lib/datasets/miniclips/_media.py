"""MiniClips' media functions: the shared decoder (:mod:`mmrec_lib.media`) under MiniClips' names.

``miniclips.read_frames`` is :func:`mmrec_lib.vision.read_frames` and ``miniclips.read_audio`` is
:func:`mmrec_lib.audio.load_audio` (16 kHz mono by default, MiniClips' ``AUDIO_SR``): one decoder,
one set of checks for damaged files. They are looked up on first use, so that importing MiniClips
does not import the vision and audio stacks.
"""

from __future__ import annotations

# The renderer encodes with the same ffmpeg binary that the decoder finds.
from mmrec_lib.media import ffmpeg_exe as _ffmpeg_exe  # noqa: F401

__all__ = ["alias"]

_ALIASES = {
    "read_frames": ("mmrec_lib.vision._io", "read_frames"),
    "read_audio": ("mmrec_lib.audio._io", "load_audio"),
}


def alias(name: str):
    """The shared decoding function that MiniClips exposes as ``name``."""
    import importlib

    module, attribute = _ALIASES[name]
    return getattr(importlib.import_module(module), attribute)
