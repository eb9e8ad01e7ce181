"""MovieLens-100k: the real-data benchmark of chapters 00 and 06."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib.errors import DataError, DownloadError
from mmrec_lib.utils import DATA_DIR_ENV, data_dir

__all__ = ["MovieLens100k", "load_movielens_100k", "GENRES", "REQUIRED_FILES"]

#: The 19 genres of u.genre, in column order of u.item.
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
REQUIRED_FILES = ("u.data", "u.item", "u.user")


@dataclass
class MovieLens100k:
    """The three tables of MovieLens-100k.

    Attributes
    ----------
    ratings : DataFrame
        ``user_id``, ``item_id`` (int), ``rating`` (1-5), ``timestamp`` (datetime64, UTC).
    items : DataFrame
        ``item_id``, ``title``, ``release_date`` (datetime64, NaT when unknown),
        ``year`` (Int64), ``genres`` (list of str), then one 0/1 column per genre.
    users : DataFrame
        ``user_id``, ``age``, ``gender``, ``occupation``, ``zip_code``.
    path : Path
        The folder the files were read from.
    """

    ratings: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    path: Path

    def __repr__(self) -> str:
        return (f"MovieLens100k({len(self.ratings)} ratings, {len(self.users)} users, "
                f"{len(self.items)} items)")


def _read_rows(path: Path, separator: str, num_fields: int, encoding: str) -> list[list[str]]:
    try:
        text = path.read_bytes().decode(encoding)
    except OSError as error:
        raise DataError(f"cannot read {path}: {error}") from error
    rows = []
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(separator)
        if len(fields) != num_fields:
            raise DataError(f"{path}, line {line_number}: expected {num_fields} fields "
                            f"separated by {separator!r}, got {len(fields)}: {line[:80]!r}")
        rows.append(fields)
    if not rows:
        raise DataError(f"{path} is empty")
    return rows


def _to_int(rows: list[list[str]], column: int, path: Path, name: str) -> np.ndarray:
    values = np.empty(len(rows), dtype=np.int64)
    for index, row in enumerate(rows):
        try:
            values[index] = int(row[column])
        except ValueError:
            raise DataError(f"{path}, record {index + 1}: {name}={row[column]!r} is not an "
                            "integer") from None
    return values


def _parse_ratings(path: Path) -> pd.DataFrame:
    rows = _read_rows(path, "\t", 4, "ascii")
    user_id = _to_int(rows, 0, path, "user_id")
    item_id = _to_int(rows, 1, path, "item_id")
    rating = _to_int(rows, 2, path, "rating")
    timestamp = _to_int(rows, 3, path, "timestamp")
    bad = np.flatnonzero((rating < 1) | (rating > 5))
    if bad.size:
        raise DataError(f"{path}, record {bad[0] + 1}: rating={rating[bad[0]]} is not in 1..5")
    return pd.DataFrame({
        "user_id": user_id,
        "item_id": item_id,
        "rating": rating,
        "timestamp": pd.to_datetime(timestamp, unit="s"),
    })


def _parse_items(path: Path) -> pd.DataFrame:
    # u.item is latin-1 ("Misérables, Les (1995)"), not UTF-8.
    rows = _read_rows(path, "|", 5 + len(GENRES), "latin-1")
    item_id = _to_int(rows, 0, path, "item_id")
    flags = np.array([[field == "1" for field in row[5:]] for row in rows], dtype=np.int8)
    release = pd.to_datetime([row[2] or None for row in rows], format="%d-%b-%Y")
    items = pd.DataFrame({
        "item_id": item_id,
        "title": [row[1] for row in rows],
        "release_date": release,
        "year": pd.array(release.year, dtype="Int64"),
        "genres": [[genre for genre, flag in zip(GENRES, flag_row) if flag]
                   for flag_row in flags],
    })
    return pd.concat([items, pd.DataFrame(flags, columns=GENRES)], axis=1)


def _parse_users(path: Path) -> pd.DataFrame:
    rows = _read_rows(path, "|", 5, "latin-1")
    return pd.DataFrame({
        "user_id": _to_int(rows, 0, path, "user_id"),
        "age": _to_int(rows, 1, path, "age"),
        "gender": [row[2] for row in rows],
        "occupation": [row[3] for row in rows],
        "zip_code": [row[4] for row in rows],
    })


def _find_folder(data_dir_path: str | os.PathLike | None) -> Path:
    candidates = []
    if data_dir_path is not None:
        given = Path(data_dir_path).expanduser()
        candidates += [given, given / "ml-100k"]
    if os.environ.get(DATA_DIR_ENV):
        candidates.append(Path(os.environ[DATA_DIR_ENV]).expanduser() / "ml-100k")
    candidates.append(data_dir() / "ml-100k")
    for folder in candidates:
        if all((folder / name).is_file() for name in REQUIRED_FILES):
            return folder
    from mmrec_lib.datasets._fetch import fetch

    try:
        return fetch("ml-100k")
    except DownloadError as error:
        looked = ", ".join(str(folder) for folder in candidates)
        raise DownloadError(f"MovieLens-100k is not on this machine (looked in {looked}). "
                            f"{error}") from error


def load_movielens_100k(data_dir: str | os.PathLike | None = None) -> MovieLens100k:
    """Load MovieLens-100k ratings, items and users.

    Looks in ``data_dir`` (a folder holding ``u.data`` or an ``ml-100k/``
    subfolder), then ``$MMREC_DATA_DIR/ml-100k``, then downloads ``ml-100k.zip``
    from GroupLens into the cache (md5 checked). Introduced in chapter 00.

    Raises
    ------
    DownloadError
        Offline and no local copy: the message names the URL and where to put it.
    DataError
        A file is malformed or truncated: the message names the file and line.

    Examples
    --------
    >>> ml = load_movielens_100k()                         # doctest: +SKIP
    >>> ml.ratings.shape                                   # doctest: +SKIP
    (100000, 4)
    """
    folder = _find_folder(data_dir)
    ratings = _parse_ratings(folder / "u.data")
    items = _parse_items(folder / "u.item")
    users = _parse_users(folder / "u.user")
    unknown_items = np.setdiff1d(ratings["item_id"].unique(), items["item_id"])
    if unknown_items.size:
        raise DataError(f"{folder / 'u.data'} rates item_id={unknown_items[0]} that is not in "
                        f"{folder / 'u.item'} (a truncated u.item?)")
    unknown_users = np.setdiff1d(ratings["user_id"].unique(), users["user_id"])
    if unknown_users.size:
        raise DataError(f"{folder / 'u.data'} has user_id={unknown_users[0]} that is not in "
                        f"{folder / 'u.user'} (a truncated u.user?)")
    return MovieLens100k(ratings=ratings, items=items, users=users, path=folder)
