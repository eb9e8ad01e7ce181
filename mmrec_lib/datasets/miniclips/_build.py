"""MiniClips build and cache: ``load_miniclips``, ``make_miniclips``, the table writers and the COMPLETE marker."""

from __future__ import annotations

import concurrent.futures
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mmrec_lib._validation import check_choice, check_seed
from mmrec_lib.datasets.miniclips import _render
from mmrec_lib.datasets.miniclips._constants import (
    AUDIO_SR,
    COMPLETE_MARKER,
    FPS,
    FRAME_SIZE,
    GENERATOR_VERSION,
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    SIZES,
    USER_COLUMNS,
)
from mmrec_lib.datasets.miniclips._media import _ffmpeg_exe
from mmrec_lib.datasets.miniclips._reader import MiniClips
from mmrec_lib.datasets.miniclips._world import World, _generate_world
from mmrec_lib.errors import ParameterError
from mmrec_lib.utils import atomic_dir, data_dir, file_lock, progress

__all__ = ["make_miniclips", "load_miniclips", "is_complete", "_remove_stale_parts"]


def _check_size_seed(size, seed) -> None:
    check_choice("size", size, sorted(SIZES))
    check_seed(seed)


def is_complete(root: str | os.PathLike) -> bool:
    """True if ``root`` holds a finished build of the current generator version."""
    marker = Path(root) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("generator_version") == GENERATOR_VERSION


def load_miniclips(*, size: Literal["tiny", "small", "default"] = "small",
                   data_dir: str | os.PathLike | None = None, seed: int = 0) -> MiniClips:
    """Load MiniClips, generating it into the cache folder on first use.

    Introduced in chapter 01. The set lives in
    ``<data_dir>/miniclips/<size>-seed<seed>/`` (``data_dir`` defaults to ``$MMREC_DATA_DIR``).

    Parameters
    ----------
    size : {"tiny", "small", "default"}
        60 items / 40 users (tests), 600 / 500 (the notebooks), 2,000 / 2,000 (full runs).
    data_dir : path, optional
        Cache folder; default ``$MMREC_DATA_DIR`` or ``~/.cache/mmrec``.
    seed : int
        Generator seed; the same seed gives identical tables and decoded media.

    Returns
    -------
    MiniClips

    Examples
    --------
    >>> from mmrec_lib.datasets import miniclips
    >>> ds = miniclips.load_miniclips(size="tiny")          # doctest: +SKIP
    >>> ds.items.shape                                      # doctest: +SKIP
    (60, 7)
    """
    _check_size_seed(size, seed)
    root = _data_dir(data_dir) / "miniclips" / f"{size}-seed{int(seed)}"
    if not is_complete(root):
        # Several processes (notebooks, tests) may ask for the same set at once: one builds,
        # the others wait for it and then load the result.
        with file_lock(root):
            if not is_complete(root):
                _remove_stale_parts(root)
                make_miniclips(root, size=size, seed=int(seed))
    return MiniClips(root)


def _remove_stale_parts(root: Path, *, older_than_s: float = 3600.0) -> None:
    # A killed build (SIGKILL, power loss) leaves its hidden temporary folder behind.
    import shutil
    import time

    for part in root.parent.glob(f".{root.name}.*.part"):
        if part.is_dir() and time.time() - part.stat().st_mtime > older_than_s:
            shutil.rmtree(part, ignore_errors=True)


_data_dir = data_dir  # the keyword argument of load_miniclips shadows the helper's name


def make_miniclips(out_dir: str | os.PathLike, *, size: Literal["tiny", "small", "default"],
                   seed: int = 0, workers: int | None = None) -> Path:
    """Generate a MiniClips set into ``out_dir`` (atomically) and return its path.

    Introduced in chapter 01. The folder appears only once complete (it is built in a
    temporary sibling and renamed, with ``COMPLETE.json`` written last), so an interrupted
    build never looks finished. An existing folder is replaced.

    Parameters
    ----------
    out_dir : path
        The folder of the set, e.g. ``<cache>/miniclips/small-seed0``.
    size : {"tiny", "small", "default"}
    seed : int
    workers : int, optional
        Parallel ffmpeg encodes; default ``min(2, os.cpu_count())``.

    Returns
    -------
    Path
        ``out_dir``.
    """
    _check_size_seed(size, seed)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        # Not check_int: its wording ("an int >= 1") would change this documented message.
        raise ParameterError(f"workers={workers!r} must be a positive int")
    ffmpeg = _ffmpeg_exe()
    out_dir = Path(out_dir)
    world = _generate_world(size, int(seed))
    with atomic_dir(out_dir) as tmp:
        (tmp / "clips").mkdir()
        (tmp / "covers").mkdir()
        _write_tables(tmp, world)
        n_items = len(world.items)
        media = [None] * n_items

        def build_one(k: int):
            # Looked up on the module at call time, so that a test can patch the encoder.
            clip = _render._render_clip(world, k)
            _render._encode_mp4(ffmpeg, clip["frames"], clip["audio"],
                                tmp / "clips" / f"{world.items.item_id[k]}.mp4")
            _render._write_cover(clip["frames"][clip["cover_frame"]],
                                 tmp / "covers" / f"{world.items.item_id[k]}.jpg")
            return k, clip["boxes"], clip["cuts"], clip["tempo"]

        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(build_one, k) for k in range(n_items)]
            try:
                for future in progress(concurrent.futures.as_completed(futures), total=n_items,
                                       desc=f"MiniClips {size}"):
                    k, boxes, cuts, tempo = future.result()
                    media[k] = (boxes, cuts, tempo)
            except BaseException:
                # Stop quickly on an error or Ctrl-C; atomic_dir then removes the partial folder.
                for future in futures:
                    future.cancel()
                raise
        _write_truth(tmp / "ground_truth.npz", world, media)
        meta = {"generator_version": GENERATOR_VERSION, "size": size, "seed": int(seed),
                "n_items": n_items, "n_users": len(world.users),
                "n_interactions": len(world.interactions),
                "fps": FPS, "frame_size": FRAME_SIZE, "audio_sr": AUDIO_SR}
        # Written last: its presence means the build finished.
        (tmp / COMPLETE_MARKER).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_dir


def _write_tables(folder: Path, world: World) -> None:
    def fmt_time(series: pd.Series) -> pd.Series:
        return series.dt.strftime("%Y-%m-%dT%H:%M:%S")

    items = world.items.copy()
    items["release_time"] = fmt_time(items["release_time"])
    items["duration_s"] = items["duration_s"].map(lambda x: f"{x:.1f}")
    items["episode"] = [str(int(e)) if pd.notna(e) else "" for e in items["episode"]]
    items[ITEM_COLUMNS].to_csv(folder / "items.csv", index=False, lineterminator="\n")
    users = world.users.copy()
    users["signup_time"] = fmt_time(users["signup_time"])
    users[USER_COLUMNS].to_csv(folder / "users.csv", index=False, lineterminator="\n")
    inter = world.interactions.copy()
    inter["timestamp"] = fmt_time(inter["timestamp"])
    inter["watch_ratio"] = inter["watch_ratio"].map(lambda x: f"{x:.3f}")
    inter[INTERACTION_COLUMNS].to_csv(folder / "interactions.csv", index=False,
                                      lineterminator="\n")


def _write_truth(path: Path, world: World, media: list) -> None:
    truth = world.truth
    box_item, box_frame, box_class, box_xyxy = [], [], [], []
    cut_item, cut_time = [], []
    for k, (boxes, cuts, _tempo) in enumerate(media):
        for frame, cls, x0, y0, x1, y1 in boxes:
            box_item.append(k)
            box_frame.append(frame)
            box_class.append(cls)
            box_xyxy.append((x0, y0, x1, y1))
        for time in cuts:
            cut_item.append(k)
            cut_time.append(time)
    np.savez_compressed(
        path,
        item_ids=truth.item_ids, user_ids=truth.user_ids,
        category=truth.category.astype(np.int64),
        category_names=np.array(truth.category_names),
        valence=truth.valence, arousal=truth.arousal, visual_style=truth.visual_style,
        timbre=truth.timbre, appeal=truth.appeal,
        tempo_bpm=np.array([m[2] for m in media], dtype=np.float64),
        cold_items=truth.cold_items,
        object_classes=np.array(truth.object_classes),
        box_item=np.array(box_item, dtype=np.int32), box_frame=np.array(box_frame, dtype=np.int32),
        box_class=np.array(box_class, dtype=np.int8),
        box_xyxy=np.array(box_xyxy, dtype=np.int16).reshape(-1, 4),
        cut_item=np.array(cut_item, dtype=np.int32), cut_time=np.array(cut_time, dtype=np.float64),
        user_category_affinity=truth.user_category_affinity,
        user_energy=truth.user_energy, user_style_weight=truth.user_style_weight,
        user_timbre_weight=truth.user_timbre_weight, user_activity=truth.user_activity,
        creator_ids=truth.creator_ids, creator_focus=truth.creator_focus.astype(np.int64),
        creator_format=truth.creator_format.astype(np.int64),
        has_speech=truth.has_speech.astype(bool), format=truth.format.astype(np.int64),
        format_names=np.array(truth.format_names), narration=truth.narration.astype(str),
        narration_snippets=truth.narration_snippets.astype(str),
        narration_pauses=truth.narration_pauses, voice_gain_db=truth.voice_gain_db,
        music_duck_db=truth.music_duck_db, speech_start_s=truth.speech_start_s,
        speech_end_s=truth.speech_end_s, user_format_affinity=truth.user_format_affinity,
        session_ids=truth.session_ids.astype(str),
        session_focus=truth.session_focus.astype(np.int64),
    )
