"""Datasets: the download registry, MovieLens-100k, and MiniClips (chapters 00, 01)."""

import importlib

from mmrec_lib.datasets._fetch import fetch, registry  # noqa: F401
from mmrec_lib.datasets.movielens import MovieLens100k, load_movielens_100k  # noqa: F401

__all__ = ["fetch", "registry", "load_movielens_100k", "MovieLens100k", "miniclips"]


def __getattr__(name: str):
    # MiniClips pulls in media tooling; load it only when asked for.
    if name == "miniclips":
        return importlib.import_module("mmrec_lib.datasets.miniclips")
    raise AttributeError(f"module 'mmrec_lib.datasets' has no attribute {name!r}")
