"""Cached text vectors of a dataset's items, keyed by dataset, encoder and settings."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmrec_lib import utils
from mmrec_lib.errors import DataError, ParameterError

__all__ = ["item_texts", "encode_items", "FEATURES_SUBDIR", "ITEM_TEXT_FIELDS",
           "ITEM_MAX_LENGTH"]

#: Sub-folder of the cache that holds text features.
FEATURES_SUBDIR = Path("features") / "text"
#: The text of a MiniClips item, as chapter 02 encodes it (and later chapters load it).
ITEM_TEXT_FIELDS = ("title_en", "description_en", "tags")
#: Token limit of the default item encoder: MiniClips item texts have at most 45 tokens.
ITEM_MAX_LENGTH = 64


def _items_table(dataset):
    import pandas as pd

    # A DataFrame has an .items() method, so test for the table itself first.
    items = dataset if isinstance(dataset, pd.DataFrame) else getattr(dataset, "items", None)
    if not isinstance(items, pd.DataFrame):
        raise ParameterError(
            f"dataset has type {type(dataset).__name__}; expected a dataset with an .items "
            "DataFrame (e.g. MiniClips) or an items DataFrame"
        )
    return items


def item_texts(dataset, *, fields: Sequence[str] = ITEM_TEXT_FIELDS,
               separator: str = ". ") -> list[str]:
    """One text per item: the chosen columns joined by ``separator``, empty parts skipped.

    Introduced in chapter 02. ``dataset`` is a dataset with an ``.items`` DataFrame
    (MiniClips, MovieLens) or the DataFrame itself. Missing values count as empty.

    Examples
    --------
    >>> item_texts(ds, fields=["title_en", "description_en"])[0]     # doctest: +SKIP
    'Try not to laugh | part 1. Today I share a chill prank, ...'
    """
    items = _items_table(dataset)
    if isinstance(fields, str) or not isinstance(fields, Sequence) or len(fields) == 0:
        raise ParameterError(f"fields={fields!r} must be a non-empty list of column names")
    missing = [f for f in fields if f not in items.columns]
    if missing:
        raise ParameterError(
            f"fields {missing} are not columns of the items table; available: "
            f"{list(items.columns)}"
        )
    columns = [items[f].fillna("").astype(str).str.strip() for f in fields]
    return [separator.join(part for part in parts if part) for parts in zip(*columns)]


def _dataset_name(dataset) -> str:
    root = getattr(dataset, "root", None)
    if root is not None:
        parent = Path(root).parent.name
        return f"{parent}-{Path(root).name}" if parent else Path(root).name
    return "items"


def encode_items(dataset, *, encoder=None, fields: Sequence[str] = ITEM_TEXT_FIELDS,
                 separator: str = ". ", dataset_name: str | None = None,
                 data_dir: str | os.PathLike | None = None, refresh: bool = False) -> np.ndarray:
    """Text vectors of every item, computed once and cached.

    Introduced in chapter 02; later chapters call ``text.encode_items(ds)`` with the
    defaults and get the vectors chapter 02 cached. The cache file
    ``<cache>/features/text/<dataset>-<model>-<hash>.npz`` is keyed by the dataset
    name, the encoder's settings (:meth:`BertTextEncoder.cache_key`), the fields and
    a hash of the texts themselves (so edited data never reuses stale vectors), and
    written atomically.

    Parameters
    ----------
    dataset : MiniClips, other dataset with ``.items``, or an items DataFrame
        The table must have an ``item_id`` column.
    encoder : BertTextEncoder, optional
        Default ``BertTextEncoder(max_length=ITEM_MAX_LENGTH)`` (MiniLM-L6, mean pooling).
    fields : list of str
        Columns joined into one text per item (see :func:`item_texts`); default
        :data:`ITEM_TEXT_FIELDS` (title, description, tags).
    dataset_name : str, optional
        Defaults to the dataset's folder name (e.g. ``miniclips-small-seed0``).
    refresh : bool
        Recompute even if cached.

    Returns
    -------
    ndarray of shape (n_items, hidden_size), float32
        Rows aligned with ``dataset.items``.
    """
    from mmrec_lib.text.bert import BertTextEncoder

    items = _items_table(dataset)
    if "item_id" not in items.columns:
        raise ParameterError("the items table has no item_id column")
    if len(items) == 0:
        raise DataError("the items table is empty: nothing to encode")
    if encoder is None:
        encoder = BertTextEncoder(max_length=ITEM_MAX_LENGTH)
    if not hasattr(encoder, "cache_key") or not hasattr(encoder, "encode"):
        raise ParameterError(
            f"encoder has type {type(encoder).__name__}; expected a BertTextEncoder"
        )
    texts = item_texts(items, fields=fields, separator=separator)
    item_ids = np.array(items["item_id"].astype(str).tolist(), dtype=str)
    name = dataset_name or _dataset_name(dataset)
    settings = {**encoder.cache_key(), "fields": list(fields), "separator": separator}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(json.dumps([list(item_ids), texts], ensure_ascii=False).encode())
    file_name = f"{name}-{settings['model']}-{digest.hexdigest()[:16]}.npz"
    path = utils.data_dir(data_dir) / FEATURES_SUBDIR / file_name
    if path.is_file() and not refresh:
        try:
            with np.load(path, allow_pickle=False) as cached:
                if np.array_equal(cached["item_ids"], item_ids):
                    return cached["vectors"]
        except (OSError, ValueError, KeyError):
            pass  # an unreadable cache file is recomputed
    vectors = encoder.encode(texts)
    with utils.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, vectors=vectors, item_ids=item_ids,
                     settings=np.array(json.dumps(settings, sort_keys=True)))
    return vectors
