"""Your own videos: a folder of mp4 files (+ sidecar .txt/.json) as a MiniClips-shaped item table (chapter 01)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec_lib.errors import DataError, ParameterError

__all__ = ["VideoFolder", "load_video_folder", "VIDEO_EXTENSIONS", "ITEM_COLUMNS"]

#: File name endings treated as videos (case-insensitive).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
#: The columns of ``VideoFolder.items``: the same as MiniClips' ``items.csv``.
ITEM_COLUMNS = ["item_id", "title_en", "title_zh", "description_en", "tags", "duration_s",
                "release_time", "creator_id", "series_id", "episode", "has_speech"]
SKIPPED_COLUMNS = ["path", "reason"]


@dataclass
class VideoFolder:
    """Items built from a folder of video files.

    Introduced in chapter 01.

    Attributes
    ----------
    root : Path
        The folder.
    items : DataFrame
        One row per readable video, columns :data:`ITEM_COLUMNS`; ``item_id`` is the file
        name without its extension, ``release_time`` the file's modification time.
        ``creator_id`` and ``series_id`` are ``""``, ``episode`` is ``<NA>`` (``Int64``) and
        ``has_speech`` is ``<NA>`` (``boolean``: not known for your own videos).
    skipped : DataFrame
        ``path`` (relative to ``root``) and ``reason`` of every file that was not used.
    """

    root: Path
    items: pd.DataFrame
    skipped: pd.DataFrame
    _paths: dict[str, Path]

    def clip_path(self, item_id: str) -> Path:
        """Path of the video file of ``item_id``."""
        if item_id not in self._paths:
            raise ParameterError(f"item_id={item_id!r} is not in this folder's items")
        return self._paths[item_id]

    def __repr__(self) -> str:
        return (f"VideoFolder({self.root.name!r}, items={len(self.items)}, "
                f"skipped={len(self.skipped)})")


def load_video_folder(path: str | os.PathLike, *, recursive: bool = False) -> VideoFolder:
    """Read a folder of your own videos into an item table shaped like MiniClips' ``items``.

    Introduced in chapter 01. For ``clip.mp4`` an optional sidecar gives the text:

    - ``clip.json`` with any of ``title`` (or ``title_en``), ``title_zh``, ``description``
      (or ``description_en``) and ``tags`` (a list or a ``|``-separated string);
    - or ``clip.txt``: the first line is the title, the rest the description.

    Without a sidecar the title is the file name. Files that cannot be decoded (no video
    stream, corrupt, truncated, empty), duplicate ids and unreadable sidecars are listed in
    ``skipped`` with the reason; they are neither fatal nor silently dropped. Each video is
    checked by :func:`mmrec_lib.media.scan_video`: every packet is read (not decoded), so a
    file cut short by an interrupted copy is caught, and its first frame is decoded.

    Parameters
    ----------
    path : path of a folder
    recursive : bool
        Also look in sub-folders (item ids then include the relative folder, ``a/clip``).

    Returns
    -------
    VideoFolder

    Raises
    ------
    ParameterError
        ``path`` is not a str or path, or ``recursive`` is not a bool.
    DataError
        The folder does not exist.
    """
    if not isinstance(path, str | os.PathLike):
        raise ParameterError(f"path={path!r} must be the path of a folder (str or Path), not "
                             f"{type(path).__name__}")
    if not isinstance(recursive, bool):
        raise ParameterError(f"recursive={recursive!r} must be True or False")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"video folder {root} does not exist or is not a folder")
    pattern = "**/*" if recursive else "*"
    candidates = sorted(p for p in root.glob(pattern)
                        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    rows, skipped, paths = [], [], {}
    for file in candidates:
        relative = file.relative_to(root)
        item_id = relative.with_suffix("").as_posix()
        if item_id in paths:
            skipped.append((relative.as_posix(), f"duplicate item_id {item_id!r} "
                            f"(already used by {paths[item_id].name})"))
            continue
        duration, problem = _probe(file)
        if problem:
            skipped.append((relative.as_posix(), problem))
            continue
        try:
            text = _read_sidecar(file)
        except DataError as error:
            skipped.append((relative.as_posix(), str(error)))
            continue
        paths[item_id] = file
        mtime = np.datetime64(int(file.stat().st_mtime), "s")
        rows.append({"item_id": item_id, "title_en": text.get("title_en") or file.stem,
                     "title_zh": text.get("title_zh", ""),
                     "description_en": text.get("description_en", ""),
                     "tags": text.get("tags", ""), "duration_s": duration,
                     "release_time": mtime, "creator_id": "", "series_id": ""})
    items = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    items["release_time"] = pd.to_datetime(items["release_time"])
    items["duration_s"] = items["duration_s"].astype(float)
    items["episode"] = pd.array([None] * len(items), dtype="Int64")
    items["has_speech"] = pd.array([None] * len(items), dtype="boolean")
    skipped_frame = pd.DataFrame(skipped, columns=SKIPPED_COLUMNS)
    return VideoFolder(root=root, items=items, skipped=skipped_frame, _paths=paths)


def _probe(file: Path) -> tuple[float, str]:
    """(duration in s, "") for a whole, decodable video, else (nan, reason)."""
    from mmrec_lib import media

    if file.stat().st_size == 0:
        return float("nan"), "empty file"
    try:
        info = media.scan_video(file)
    except DataError as error:
        # The table's path column already names the file: keep only the problem.
        problem = str(error).removeprefix(f"{file}: ").removeprefix(f"{file} ")
        return float("nan"), f"cannot decode: {problem[:200]}"
    return info.duration_s, ""


def _read_sidecar(file: Path) -> dict[str, str]:
    json_path, txt_path = file.with_suffix(".json"), file.with_suffix(".txt")
    if json_path.is_file():
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise DataError(f"sidecar {json_path.name} is not valid UTF-8 JSON: {error}") \
                from error
        if not isinstance(data, dict):
            raise DataError(f"sidecar {json_path.name} must hold a JSON object")
        tags = data.get("tags", "")
        if isinstance(tags, list):
            tags = "|".join(str(t).strip() for t in tags)
        return {"title_en": str(data.get("title_en", data.get("title", "")) or ""),
                "title_zh": str(data.get("title_zh", "") or ""),
                "description_en": str(data.get("description_en", data.get("description", ""))
                                      or ""),
                "tags": str(tags or "")}
    if txt_path.is_file():
        try:
            lines = txt_path.read_text(encoding="utf-8").strip().splitlines()
        except UnicodeDecodeError as error:
            raise DataError(f"sidecar {txt_path.name} is not UTF-8 text") from error
        title = lines[0].strip() if lines else ""
        description = " ".join(line.strip() for line in lines[1:] if line.strip())
        return {"title_en": title, "description_en": description}
    return {}
