"""Shared helpers: seeding, the cache folder, atomic writes, progress bars."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mmrec_lib._validation import check_seed, check_subset

__all__ = [
    "set_seed",
    "data_dir",
    "atomic_path",
    "atomic_dir",
    "file_lock",
    "progress",
    "check_is_fitted",
    "check_subset",
    "DATA_DIR_ENV",
]

#: Environment variable naming the cache folder for datasets, weights and features.
DATA_DIR_ENV = "MMREC_DATA_DIR"


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and (if installed) TensorFlow, for repeatable runs.

    Introduced in chapter 00. With TensorFlow on CPU this gives bit-identical
    training runs (``tf.keras.utils.set_random_seed``).

    Parameters
    ----------
    seed : int
        A non-negative integer.
    """
    seed = check_seed(seed)
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if "tensorflow" in sys.modules or _tensorflow_installed():
        from mmrec_lib._env import import_tensorflow

        tf = import_tensorflow()
        tf.keras.utils.set_random_seed(seed)


def _tensorflow_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Return the cache folder (created if needed).

    ``path`` if given, else ``$MMREC_DATA_DIR``, else ``~/.cache/mmrec``.
    """
    if path is None:
        path = os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "mmrec"
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to ``target``; rename it over ``target`` on success.

    If the block raises, the temporary file is removed and ``target`` is untouched,
    so a reader never sees a half-written file.

    Examples
    --------
    >>> with atomic_path(tmp / "x.npy") as tmp_file:          # doctest: +SKIP
    ...     np.save(tmp_file, array)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part" + target.suffix,
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; rename it to ``target`` on success.

    An existing ``target`` is replaced only after the new one is complete. If the
    block raises (or the process dies), no folder named ``target`` appears.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def file_lock(target: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``target`` across processes while the block runs.

    Several processes (two notebooks, parallel test workers) may want to build the same
    cache entry at once: the first builds it, the others wait here and then find it
    built. The lock is ``.<name>.lock`` beside ``target`` (left in place, empty); the
    operating system releases it when the block ends or the process dies. Where
    ``fcntl`` is missing (Windows) the block runs unlocked.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    with open(target.parent / f".{target.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def progress(iterable: Iterable, *, total: int | None = None, desc: str | None = None,
             disable: bool | None = None):
    """Wrap ``iterable`` in a tqdm progress bar.

    The bar is hidden when ``disable`` is true, or by default when
    ``MMREC_PROGRESS=0`` is set (the notebooks' stored outputs stay clean).
    """
    if disable is None:
        disable = os.environ.get("MMREC_PROGRESS", "1") == "0"
    if disable:
        # tqdm.auto warns on stderr in Jupyter without ipywidgets, even for a hidden bar,
        # which would leak into stored notebook outputs.
        from tqdm import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False)


def check_is_fitted(estimator, attributes: str | list[str] | None = None) -> None:
    """Raise :class:`mmrec_lib.errors.NotFittedError` if ``estimator`` was not fitted.

    Same rule as scikit-learn's ``check_is_fitted`` (trailing-underscore
    attributes), but the error is mmrec's and names the estimator.
    """
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.utils.validation import check_is_fitted as sklearn_check_is_fitted

    from mmrec_lib.errors import NotFittedError

    try:
        sklearn_check_is_fitted(estimator, attributes)
    except SklearnNotFittedError as error:
        raise NotFittedError(
            f"This {type(estimator).__name__} is not fitted yet: call fit(...) before using it."
        ) from error
