"""pytest set-up shared by the unit tests and nbval (the notebooks): one numba cache per worker.

``make unit`` and ``make nbval`` run in several processes (pytest-xdist). librosa compiles
its beat tracker and other kernels with numba and caches them beside its own code
(``librosa/__pycache__/*.nbi|*.nbc``). Two processes compiling the same function at once
write one index and each other's files: the cache then points at machine code of another
signature, and every later call crashes the process ("Fatal Python error: Segmentation
fault" in ``librosa/beat.py``, seen in CI on a fresh environment). Each worker therefore
gets its own numba cache folder; notebook kernels started by a worker inherit it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def pytest_configure(config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "NUMBA_CACHE_DIR" not in os.environ:
        folder = Path(tempfile.gettempdir()) / f"mmrec-numba-cache-{worker}"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
