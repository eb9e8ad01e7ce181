"""MicroLens (a real micro-video dataset): read the files as published (chapter 01)."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from mmrec_lib.errors import DataError, DownloadError, ParameterError
from mmrec_lib.utils import data_dir as _cache_dir

__all__ = ["MicroLens", "load_microlens", "VARIANTS"]

#: Published file names per variant (https://github.com/westlake-repl/MicroLens).
VARIANTS: dict[str, dict[str, str]] = {
    "50k": {
        "folder": "MicroLens-50k",
        "url": "https://recsys.westlake.edu.cn/MicroLens-50k-Dataset/",
        "pairs_csv": "MicroLens-50k_pairs.csv",
        "pairs_tsv": "MicroLens-50k_pairs.tsv",
        "titles": "MicroLens-50k_titles.csv",
        "covers": "MicroLens-50k_covers",
    },
    "100k": {
        "folder": "MicroLens-100k",
        "url": "https://recsys.westlake.edu.cn/MicroLens-100k-Dataset/",
        "pairs_csv": "MicroLens-100k_pairs.csv",
        "pairs_tsv": "MicroLens-100k_pairs.tsv",
        "titles": "MicroLens-100k_title_en.csv",
        "covers": "MicroLens-100k_covers",
    },
}
ITEM_COLUMNS = ["item_id", "title_en", "title_zh", "description_en", "tags", "duration_s",
                "release_time"]
INTERACTION_COLUMNS = ["user_id", "item_id", "timestamp"]


@dataclass
class MicroLens:
    """MicroLens interactions, English titles and cover images.

    Introduced in chapter 01.

    Attributes
    ----------
    root : Path
        The folder holding the published files.
    variant : str
        ``"50k"`` or ``"100k"``.
    items : DataFrame
        Columns as MiniClips' ``items`` (``item_id``, ``title_en``, ...); MicroLens publishes
        only the English title, so ``title_zh``, ``description_en`` and ``tags`` are empty and
        ``duration_s`` and ``release_time`` are missing (NaN / NaT).
    interactions : DataFrame
        ``user_id``, ``item_id``, ``timestamp`` (datetime64; from the CSV's milliseconds).
        When only the ``.tsv`` sequences are present, ``timestamp`` is NaT and the column
        ``position`` gives the order of each user's views.
    """

    root: Path
    variant: str
    items: pd.DataFrame
    interactions: pd.DataFrame

    def cover_path(self, item_id: str) -> Path:
        """Path of the cover image ``<covers folder>/<item_id>.jpg`` (may be absent)."""
        return self.root / VARIANTS[self.variant]["covers"] / f"{item_id}.jpg"

    def __repr__(self) -> str:
        return (f"MicroLens(variant={self.variant!r}, items={len(self.items)}, "
                f"users={self.interactions.user_id.nunique()}, "
                f"interactions={len(self.interactions)})")


def load_microlens(data_dir: str | os.PathLike | None = None, *,
                   variant: Literal["50k", "100k"] = "100k") -> MicroLens:
    """Load MicroLens from the files you downloaded.

    Introduced in chapter 01. MicroLens is not downloaded automatically (it is large and
    its licence asks users to fetch it from the authors). Put the published files in
    ``<data_dir>/microlens/MicroLens-100k/`` (``data_dir`` defaults to ``$MMREC_DATA_DIR``):
    ``MicroLens-100k_pairs.csv`` (or ``..._pairs.tsv``), ``MicroLens-100k_title_en.csv`` and,
    optionally, the ``MicroLens-100k_covers/`` folder of ``<item>.jpg``.

    Parameters
    ----------
    data_dir : path, optional
        The cache folder (not the MicroLens folder itself).
    variant : {"50k", "100k"}

    Returns
    -------
    MicroLens

    Raises
    ------
    DownloadError
        The files are not there; the message gives the download page and the folder.
    DataError
        A file is there but malformed.
    """
    if variant not in VARIANTS:
        raise ParameterError(f"variant={variant!r} must be one of {sorted(VARIANTS)}")
    spec = VARIANTS[variant]
    root = _cache_dir(data_dir) / "microlens" / spec["folder"]
    pairs_csv, pairs_tsv = root / spec["pairs_csv"], root / spec["pairs_tsv"]
    titles = root / spec["titles"]
    if not (pairs_csv.is_file() or pairs_tsv.is_file()) or not titles.is_file():
        raise DownloadError(
            f"MicroLens-{variant} is not in {root}. Download {spec['pairs_csv']} (or "
            f"{spec['pairs_tsv']}), {spec['titles']} and optionally the {spec['covers']} "
            f"folder from {spec['url']} (see https://github.com/westlake-repl/MicroLens) "
            f"and put them in {root}.")
    interactions = (_read_pairs_csv(pairs_csv) if pairs_csv.is_file()
                    else _read_pairs_tsv(pairs_tsv))
    items = _read_titles(titles)
    unknown = set(interactions.item_id) - set(items.item_id)
    if unknown:
        # Keep every interacted item in the table, with an empty title, as the data has it.
        extra = pd.DataFrame({"item_id": sorted(unknown, key=_natural_key), "title_en": ""})
        items = pd.concat([items, extra], ignore_index=True)
    items = _complete_item_columns(items)
    return MicroLens(root=root, variant=variant, items=items, interactions=interactions)


def _natural_key(item_id: str):
    return (0, int(item_id), "") if item_id.isdigit() else (1, 0, item_id)


def _read_pairs_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str)
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path.name} is not a readable CSV: {error}") from error
    # The published header is "user,item,timestamp"; some copies use "userID,videoID,timestamp".
    rename = {}
    for column in frame.columns:
        key = column.strip().lower()
        if key in ("user", "userid", "user_id"):
            rename[column] = "user_id"
        elif key in ("item", "videoid", "item_id", "video_id"):
            rename[column] = "item_id"
        elif key == "timestamp":
            rename[column] = "timestamp"
    frame = frame.rename(columns=rename)
    missing = [c for c in INTERACTION_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path.name} lacks the columns {missing}; found {list(frame.columns)} "
                        "(expected user,item,timestamp)")
    try:
        milliseconds = pd.to_numeric(frame["timestamp"], errors="raise").astype("int64")
    except (ValueError, TypeError) as error:
        raise DataError(f"{path.name}: timestamps must be integers (milliseconds)") from error
    frame["timestamp"] = pd.to_datetime(milliseconds, unit="ms")
    frame["user_id"] = frame["user_id"].str.strip()
    frame["item_id"] = frame["item_id"].str.strip()
    frame = frame[INTERACTION_COLUMNS].sort_values(["timestamp", "user_id"], kind="stable")
    return frame.reset_index(drop=True)


def _read_pairs_tsv(path: Path) -> pd.DataFrame:
    users, items, positions = [], [], []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"{path.name} line {line_number}: expected 'user<TAB>item item "
                                f"...', got {line[:80]!r}")
            user, sequence = parts[0].strip(), parts[1].split()
            for position, item in enumerate(sequence):
                users.append(user)
                items.append(item)
                positions.append(position)
    frame = pd.DataFrame({"user_id": users, "item_id": items,
                          "timestamp": pd.Series(pd.NaT, index=range(len(users)),
                                                 dtype="datetime64[ns]"),
                          "position": positions})
    return frame


def _read_titles(path: Path) -> pd.DataFrame:
    # Published without a header: "<item>,<title>"; titles may contain commas, quoted or not.
    ids, titles = [], []
    with open(path, encoding="utf-8", newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            if len(row) < 2:
                raise DataError(f"{path.name} line {line_number}: expected '<item>,<title>', "
                                f"got {row!r}")
            item_id = row[0].strip()
            if line_number == 1 and not item_id.isdigit() and item_id.lower() in (
                    "item", "item_id", "videoid", "video_id", "id"):
                continue  # a header some copies carry
            ids.append(item_id)
            titles.append(",".join(row[1:]).strip())
    if not ids:
        raise DataError(f"{path.name} holds no titles")
    return pd.DataFrame({"item_id": ids, "title_en": titles})


def _complete_item_columns(items: pd.DataFrame) -> pd.DataFrame:
    items = items.drop_duplicates("item_id", keep="first").reset_index(drop=True)
    items["title_zh"] = ""
    items["description_en"] = ""
    items["tags"] = ""
    items["duration_s"] = float("nan")
    items["release_time"] = pd.Series(pd.NaT, index=items.index, dtype="datetime64[ns]")
    return items[ITEM_COLUMNS]
