"""The feature cache: one key, one path, one atomic write, one careful load for all modalities."""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from mmrec_lib.errors import ParameterError
from mmrec_lib.utils import file_lock

__all__ = [
    "CACHE_VERSION",
    "MODALITIES",
    "dataset_key",
    "weights_fingerprint",
    "cache_key",
    "feature_cache_path",
    "load_entry",
    "save_entry",
    "cached_arrays",
    "cached_array",
]

#: Part of every key: bump it when the layout of an entry or a cached computation changes,
#: so that entries written by older code are never read as if they were current.
CACHE_VERSION = 2
#: Sub-folders of ``<cache>/features``, one per modality.
MODALITIES = ("text", "audio", "vision")
#: Name of the item-id array stored in every ``.npz`` entry (checked on load).
ITEM_IDS = "item_ids"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# (resolved path, mtime in ns, size in bytes) -> sha256 hex digest of the file's bytes.
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def dataset_key(dataset) -> str:
    """The readable name of a data set in the cache: ``<parent folder>-<folder>``.

    Introduced in chapter 02 (the first cached features). MiniClips tiny with seed 0
    lives in ``<cache>/miniclips/tiny-seed0`` and is ``"miniclips-tiny-seed0"``; a
    data set without a ``root`` folder (e.g. a bare items table) is ``"items"``; a
    string is taken as the name itself. Which items (and, for text, which texts)
    are cached is part of the :func:`cache_key`, not of this name.
    """
    if isinstance(dataset, str):
        if not _NAME.match(dataset):
            raise ParameterError(f"dataset name {dataset!r} must be letters, digits, '.', '-' "
                                 "and '_'")
        return dataset
    root = getattr(dataset, "root", None)
    if not isinstance(root, (str, os.PathLike)):
        return "items"
    root = Path(root)
    name = f"{root.parent.name}-{root.name}" if root.parent.name else root.name
    return name.replace(os.sep, "_") or "items"


def _file_digest(path: Path) -> str:
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if memo not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_DIGESTS[memo] = digest.hexdigest()
    return _FILE_DIGESTS[memo]


def weights_fingerprint(weights) -> str:
    """A short sha256 of an encoder's weights: files, folders, a Keras model or arrays.

    Introduced in chapter 02. ``weights`` is a path (a file, or a folder whose
    files are all hashed, by relative name and content), a list of paths, a
    Keras model (its ``get_weights()``) or a list of arrays. File digests are
    memoised per path, modification time and size, so a 90 MB checkpoint is
    read once per session and again only when it changes.

    Returns
    -------
    str of 16 hex digits
    """
    digest = hashlib.sha256()
    if hasattr(weights, "get_weights"):
        weights = weights.get_weights()
    if isinstance(weights, (str, os.PathLike)):
        weights = [weights]
    weights = list(weights)
    if not weights:
        raise ParameterError("weights is empty: expected files, a folder, a model or arrays")
    for part in weights:
        if isinstance(part, (str, os.PathLike)):
            path = Path(part)
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file())
                if not files:
                    raise ParameterError(f"weights folder {path} holds no file")
                for file in files:
                    digest.update(f"{file.relative_to(path).as_posix()}\0".encode())
                    digest.update(_file_digest(file).encode())
            elif path.is_file():
                digest.update(_file_digest(path).encode())
            else:
                raise ParameterError(f"weights path {path} does not exist")
        else:
            array = np.ascontiguousarray(part)
            digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def cache_key(dataset, modality: str, kind: str, settings: Mapping, *,
              item_ids: Iterable | None = None, weights: str | None = None) -> str:
    """The hash naming one cache entry: data set, items, settings, code version and weights.

    Introduced in chapter 02. Any change of the data set's name, of the item
    ids (and their order), of a setting, of :data:`CACHE_VERSION`, of the
    encoder's :func:`weights_fingerprint` or of the data set's
    ``generator_version`` (MiniClips: a new generator may render other media
    under the same folder name) gives another key.

    Returns
    -------
    str of 16 hex digits
    """
    if modality not in MODALITIES:
        raise ParameterError(f"modality={modality!r} must be one of {list(MODALITIES)}")
    if not isinstance(settings, Mapping):
        raise ParameterError(f"settings has type {type(settings).__name__}; expected a dict")
    payload = {"version": CACHE_VERSION, "modality": modality, "kind": kind,
               "dataset": dataset_key(dataset), "settings": dict(settings), "weights": weights,
               "items": None if item_ids is None else [str(i) for i in item_ids]}
    version = getattr(dataset, "generator_version", None)
    if version is not None:  # only then, so the keys of other data sets stay as they were
        payload["generator_version"] = version
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def feature_cache_path(dataset, modality: str, kind: str, settings: Mapping, *,
                       item_ids: Iterable | None = None, weights: str | None = None,
                       suffix: str = ".npz", data_dir: str | os.PathLike | None = None) -> Path:
    """Where one entry lives: ``<cache>/features/<modality>/<dataset>/<kind>-<key><suffix>``.

    Introduced in chapter 02. ``<dataset>`` is :func:`dataset_key`, ``<key>``
    is :func:`cache_key`; ``<cache>`` is :func:`mmrec_lib.utils.data_dir`.
    Feature arrays use ``.npz`` (see :func:`save_entry`); trained weights
    use ``suffix=".h5"``.
    """
    from mmrec_lib.utils import data_dir as cache_dir

    if not isinstance(kind, str) or not _NAME.match(kind):
        raise ParameterError(f"kind={kind!r} must be a non-empty name of letters, digits, "
                             "'.', '-' and '_'")
    if not isinstance(suffix, str) or not re.match(r"^\.[A-Za-z0-9]+$", suffix):
        raise ParameterError(f"suffix={suffix!r} must be a file extension such as '.npz'")
    key = cache_key(dataset, modality, kind, settings, item_ids=item_ids, weights=weights)
    return cache_dir(data_dir) / "features" / modality / dataset_key(dataset) / \
        f"{kind}-{key}{suffix}"


def _problem(arrays: dict, item_ids, shapes: Mapping | None) -> str | None:
    """Why loaded ``arrays`` cannot be used, or None when they fit."""
    if item_ids is not None:
        stored = arrays.get(ITEM_IDS)
        expected = np.asarray([str(i) for i in item_ids])
        if stored is None:
            return "it has no item ids"
        if stored.shape != expected.shape or not np.array_equal(stored, expected):
            return "its item ids are not the requested ones"
    for name, shape in (shapes or {}).items():
        if name not in arrays:
            return f"it has no array {name!r}"
        actual = arrays[name].shape
        if len(actual) != len(shape) or any(want is not None and want != got
                                            for want, got in zip(shape, actual, strict=True)):
            wanted = tuple("any" if want is None else want for want in shape)
            return f"{name!r} has shape {actual}, expected {wanted}"
    return None


def load_entry(path: str | os.PathLike, *, item_ids: Iterable | None = None,
               shapes: Mapping[str, tuple] | None = None) -> dict[str, np.ndarray] | None:
    """The arrays of a cache entry, or None when it is missing or unusable.

    Introduced in chapter 02. A ``.npz`` entry gives all its arrays by name; a
    ``.npy`` entry gives ``{"array": ...}``. Pickled objects are never loaded.
    An entry that cannot be used -- truncated, empty, random bytes, item ids
    other than ``item_ids``, or an array whose shape does not match ``shapes``
    (``None`` in a shape matches any length) -- is reported with one
    ``warnings.warn`` naming the file and treated as missing: the caller
    recomputes it and :func:`save_entry` replaces it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        # Open the file here: np.load leaks its handle when the zip directory is broken.
        with open(path, "rb") as handle:
            if path.suffix == ".npz":
                with np.load(handle, allow_pickle=False) as stored:
                    arrays = {name: stored[name] for name in stored.files}
            else:
                arrays = {"array": np.load(handle, allow_pickle=False)}
        problem = _problem(arrays, item_ids, shapes)
    except Exception as error:  # noqa: BLE001 - zip, EOF, value and OS errors all mean "unreadable"
        problem = f"it cannot be read ({type(error).__name__}: {error})"
    if problem is None:
        return arrays
    warnings.warn(f"ignoring the cache file {path}: {problem}; recomputing it",
                  RuntimeWarning, stacklevel=2)
    return None


def save_entry(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], *,
               item_ids: Iterable | None = None) -> None:
    """Write a cache entry atomically (:func:`mmrec_lib.utils.atomic_path`).

    Introduced in chapter 02. ``.npz``: every array by name, plus ``item_ids``
    when given. ``.npy``: the single array ``arrays["array"]``. Readers never
    see a half-written file; a failure leaves the previous entry (or none).
    """
    from mmrec_lib.utils import atomic_path

    path = Path(path)
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    if path.suffix == ".npy":
        if set(arrays) != {"array"}:
            raise ParameterError(f"{path.name}: a .npy entry holds one array named 'array', "
                                 f"got {sorted(arrays)}")
    elif path.suffix == ".npz":
        if item_ids is not None:
            arrays[ITEM_IDS] = np.asarray([str(i) for i in item_ids], dtype=str)
    else:
        raise ParameterError(f"{path.name}: a cache entry must end in .npz or .npy")
    if any(array.dtype == object for array in arrays.values()):
        raise ParameterError(f"{path.name}: object arrays cannot be cached (no pickles)")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            if path.suffix == ".npy":
                np.save(handle, arrays["array"], allow_pickle=False)
            else:
                np.savez(handle, **arrays)


def cached_arrays(path: str | os.PathLike, compute: Callable[[], Mapping], *,
                  item_ids: Iterable | None = None, shapes: Mapping[str, tuple] | None = None,
                  recompute: bool = False) -> dict[str, np.ndarray]:
    """Load the entry at ``path`` (see :func:`load_entry`), else ``compute()`` and save it.

    Introduced in chapter 02. ``compute`` returns a dict of arrays; the result
    is the dict read back from the cache or the one just computed (the arrays
    are the same either way: ``.npz`` stores them exactly). ``recompute=True``
    ignores and overwrites the entry. Processes that miss the same entry at once
    compute it once: the others wait on :func:`mmrec_lib.utils.file_lock` and
    then read it.
    """
    if item_ids is not None:
        item_ids = [str(i) for i in item_ids]
    seen = _state(path)
    if not recompute:
        arrays = _load_values(path, item_ids, shapes)
        if arrays is not None:
            return arrays
    # Another process may be computing the same entry (two notebooks, parallel tests): wait
    # for it, then read what it wrote instead of computing it a second time.
    with file_lock(path):
        if not recompute and _state(path) != seen:
            arrays = _load_values(path, item_ids, shapes)
            if arrays is not None:
                return arrays
        arrays = {name: np.asarray(value) for name, value in compute().items()}
        save_entry(path, arrays, item_ids=item_ids)
    return arrays


def _state(path) -> tuple | None:
    """(mtime in ns, size) of the entry, None when absent: has another process written it?"""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _load_values(path, item_ids, shapes) -> dict[str, np.ndarray] | None:
    arrays = load_entry(path, item_ids=item_ids, shapes=shapes)
    if arrays is not None:
        arrays.pop(ITEM_IDS, None)
    return arrays


def cached_array(path: str | os.PathLike, compute: Callable[[], np.ndarray], *,
                 item_ids: Iterable | None = None, shape: tuple | None = None,
                 recompute: bool = False) -> np.ndarray:
    """:func:`cached_arrays` for one array (``"values"`` in a ``.npz``, or a ``.npy`` file).

    Introduced in chapter 04. ``shape`` is checked on load (``None`` entries
    match any length); with ``item_ids`` (``.npz`` only) the first axis must be
    the items.
    """
    name = "array" if Path(path).suffix == ".npy" else "values"
    if item_ids is not None and name == "array":
        raise ParameterError(f"{Path(path).name}: item_ids need a .npz entry")
    shapes = None if shape is None else {name: tuple(shape)}
    return cached_arrays(path, lambda: {name: compute()}, item_ids=item_ids, shapes=shapes,
                         recompute=recompute)[name]
