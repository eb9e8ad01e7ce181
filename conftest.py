"""pytest set-up shared by the unit tests and nbval (the notebooks): one numba cache per worker.

``make unit`` and ``make nbval`` run in several processes (pytest-xdist). librosa compiles
its beat tracker and other kernels with numba and caches them beside its own code
(``librosa/__pycache__/*.nbi|*.nbc``). Two processes compiling the same function at once
write one index and each other's files: the cache then points at machine code of another
signature, and every later call crashes the process ("Fatal Python error: Segmentation
fault" in ``librosa/beat.py``, seen in CI on a fresh environment). Each worker therefore
gets its own numba cache folder; notebook kernels started by a worker inherit it.

An nbval session also gets the Makefile's output settings (no progress bars, no TensorFlow C++
logs, a fixed hash seed) when they are not set, so that ``pytest --nbval notebooks/X.ipynb``
run by hand compares as ``make nbval`` does: without them, every cell that shows a progress
bar reports an unexpected output.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: What the Makefile exports for stored notebook outputs (see its comment).
NBVAL_ENVIRONMENT = {"MMREC_PROGRESS": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}


def pytest_configure(config) -> None:
    if config.getoption("nbval", default=False) or config.getoption("nbval_lax", default=False):
        for name, value in NBVAL_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "NUMBA_CACHE_DIR" not in os.environ:
        folder = Path(tempfile.gettempdir()) / f"mmrec-numba-cache-{worker}"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)
