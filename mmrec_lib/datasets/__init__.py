"""Datasets: the download registry, MovieLens-100k, and MiniClips (chapters 00, 01)."""

import importlib

from mmrec_lib.datasets._fetch import fetch, registry  # noqa: F401
from mmrec_lib.datasets.movielens import MovieLens100k, load_movielens_100k  # noqa: F401

__all__ = ["fetch", "registry", "load_movielens_100k", "MovieLens100k", "miniclips",
           "microlens", "video_folder", "load_miniclips", "load_microlens", "load_video_folder"]

# Loaded on first use (chapter 01): module name -> module, function name -> its module.
_LAZY_MODULES = {"miniclips", "microlens", "video_folder"}
_LAZY_FUNCTIONS = {"load_miniclips": "miniclips", "load_microlens": "microlens",
                   "load_video_folder": "video_folder"}


def __getattr__(name: str):
    # MiniClips pulls in media tooling; load it only when asked for.
    if name in _LAZY_MODULES:
        return importlib.import_module(f"mmrec_lib.datasets.{name}")
    if name in _LAZY_FUNCTIONS:
        module = importlib.import_module(f"mmrec_lib.datasets.{_LAZY_FUNCTIONS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'mmrec_lib.datasets' has no attribute {name!r}")
