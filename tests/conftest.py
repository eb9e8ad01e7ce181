"""Shared pytest fixtures for the mmrec_lib unit tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import mmrec_lib  # noqa: F401  (sets the Keras 2 environment before any TensorFlow import)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_ML100K = REPO.parent / "shared" / "datasets" / "ml-100k"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """An empty, writable MMREC_DATA_DIR for one test."""
    folder = tmp_path / "mmrec-cache"
    folder.mkdir()
    monkeypatch.setenv("MMREC_DATA_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def movielens_100k_dir(tmp_path_factory) -> Path:
    """A writable copy of the full MovieLens-100k folder, or skip when it is absent.

    Looks in $MMREC_DATA_DIR/ml-100k, then ../shared/datasets/ml-100k (read-only in CI,
    so it is copied, never used in place).
    """
    candidates = []
    if os.environ.get("MMREC_DATA_DIR"):
        candidates.append(Path(os.environ["MMREC_DATA_DIR"]) / "ml-100k")
    candidates.append(SHARED_ML100K)
    for source in candidates:
        if (source / "u.data").is_file():
            target = tmp_path_factory.mktemp("ml") / "ml-100k"
            shutil.copytree(source, target)
            return target
    pytest.skip("MovieLens-100k is not available on this machine")


@pytest.fixture(scope="session")
def miniclips_tiny(tmp_path_factory):
    """MiniClips ``size="tiny"`` (60 items, 40 users), built once per session in a temp cache.

    The environment is not changed: the set is built with ``data_dir=<temp folder>``; its
    folder is ``ds.root``.
    """
    from mmrec_lib.datasets import miniclips

    folder = tmp_path_factory.mktemp("miniclips-cache")
    return miniclips.load_miniclips(size="tiny", data_dir=folder, seed=0)


@pytest.fixture(scope="module")
def tiny_multimodal():
    """Six users, twelve items with text and audio vectors; item i03 has no audio.

    Returns ``(train, {"text": ..., "audio": ...}, item_ids)``.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    item_ids = [f"i{i:02d}" for i in range(12)]
    text = pd.DataFrame(rng.normal(size=(12, 4)), index=item_ids)
    audio = pd.DataFrame(rng.normal(size=(12, 3)), index=item_ids)
    audio.iloc[3] = np.nan  # i03 has no audio
    rows = [(f"u{u}", item_ids[(u + j) % 12]) for u in range(6) for j in range(4)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id"])
    return train, {"text": text, "audio": audio}, item_ids
