"""Cached text vectors of a dataset's items, keyed by dataset, encoder and settings."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmrec_lib import cache
from mmrec_lib.errors import DataError, ParameterError

__all__ = ["item_texts", "encode_items", "ITEM_TEXT_FIELDS", "ITEM_MAX_LENGTH"]

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


def _encoder_weights(encoder) -> str | None:
    """Fingerprint of the checkpoint files behind ``encoder`` (see :mod:`mmrec_lib.cache`)."""
    from mmrec_lib.text._bert_checkpoint import CONFIG_FILE, VOCAB_FILE, _minilm_source

    checkpoint = getattr(encoder, "checkpoint", None)
    if checkpoint is None:
        # The default encoder converts the MiniLM shipped in its package: hash that source.
        source = _minilm_source()
        return cache.weights_fingerprint([source / "model.safetensors", source / "config.json",
                                          source / VOCAB_FILE])
    path = Path(checkpoint).expanduser()
    folder = path if path.is_dir() else path.parent  # a checkpoint prefix lives in its folder
    if not (folder / CONFIG_FILE).is_file():
        return None  # find_checkpoint will name what is missing when the encoder loads
    return cache.weights_fingerprint(folder)


def encode_items(dataset, *, encoder=None, fields: Sequence[str] = ITEM_TEXT_FIELDS,
                 separator: str = ". ", dataset_name: str | None = None,
                 data_dir: str | os.PathLike | None = None, refresh: bool = False) -> np.ndarray:
    """Text vectors of every item, computed once and cached.

    Introduced in chapter 02; later chapters call ``text.encode_items(ds)`` with the
    defaults and get the vectors chapter 02 cached. The cache file
    ``<cache>/features/text/<dataset>/<model>-<key>.npz`` (:mod:`mmrec_lib.cache`) is
    keyed by the dataset name, the item ids, the encoder's settings
    (:meth:`BertTextEncoder.cache_key`) and a fingerprint of its weight files, the
    fields and a hash of the texts themselves (so edited data never reuses stale
    vectors), and written atomically. An unreadable cache file is reported with a
    warning and recomputed.

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
        Defaults to the dataset's :func:`mmrec_lib.cache.dataset_key` (e.g.
        ``miniclips-small-seed0``; ``items`` for a bare table).
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
    settings = {**encoder.cache_key(), "fields": list(fields), "separator": separator}
    # The texts themselves are part of the key: edited data never reuses stale vectors.
    texts_digest = hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode()).hexdigest()
    path = cache.feature_cache_path(
        dataset_name or dataset, "text", re.sub(r"[^A-Za-z0-9_.-]", "_", str(settings["model"])),
        {**settings, "texts": texts_digest}, item_ids=item_ids,
        weights=_encoder_weights(encoder), data_dir=data_dir)

    def compute():
        return {"vectors": encoder.encode(texts),
                "settings": np.array(json.dumps(settings, sort_keys=True))}

    cached = cache.cached_arrays(path, compute, item_ids=item_ids, recompute=refresh,
                                 shapes={"vectors": (len(item_ids), None)})
    return cached["vectors"]
