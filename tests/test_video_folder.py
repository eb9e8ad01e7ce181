"""Tests for mmrec_lib.datasets.video_folder (your own mp4 files, chapter 01)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from mmrec_lib import media
from mmrec_lib.datasets import miniclips, video_folder
from mmrec_lib.errors import DataError, ParameterError


@pytest.fixture
def folder(tmp_path, miniclips_tiny):
    """Three good clips (json, txt and no sidecar) and three bad files."""
    root = tmp_path / "my_videos"
    root.mkdir()
    for name, item in [("beach", "i0000"), ("cat", "i0001"), ("plain", "i0002")]:
        shutil.copy(miniclips_tiny.clip_path(item), root / f"{name}.mp4")
    (root / "beach.json").write_text(json.dumps(
        {"title": "Sunset at the beach", "title_zh": "海边看日落",
         "description": "Waves and a sunset.", "tags": ["travel", "beach"]}), encoding="utf-8")
    (root / "cat.txt").write_text("My cat\nShe sleeps all day.\nReally.\n", encoding="utf-8")
    (root / "broken.mp4").write_bytes(b"this is not a video")
    (root / "empty.mp4").write_bytes(b"")
    (root / "notes.md").write_text("not a video at all")
    return root


def test_items_have_the_miniclips_columns(folder):
    ds = video_folder.load_video_folder(folder)
    assert list(ds.items.columns) == miniclips.ITEM_COLUMNS
    assert list(ds.items.item_id) == ["beach", "cat", "plain"]
    assert pd.api.types.is_datetime64_any_dtype(ds.items.release_time)


def test_json_sidecar(folder):
    row = video_folder.load_video_folder(folder).items.set_index("item_id").loc["beach"]
    assert row.title_en == "Sunset at the beach"
    assert row.title_zh == "海边看日落"
    assert row.description_en == "Waves and a sunset."
    assert row.tags == "travel|beach"


def test_txt_sidecar_and_no_sidecar(folder):
    items = video_folder.load_video_folder(folder).items.set_index("item_id")
    assert items.title_en["cat"] == "My cat"
    assert items.description_en["cat"] == "She sleeps all day. Really."
    assert items.title_en["plain"] == "plain" and items.tags["plain"] == ""


def test_durations_match_the_clips(folder, miniclips_tiny):
    items = video_folder.load_video_folder(folder).items.set_index("item_id")
    expected = miniclips_tiny.items.set_index("item_id").duration_s["i0000"]
    assert abs(items.duration_s["beach"] - expected) < 0.15


def test_bad_files_are_listed_with_reasons(folder):
    skipped = video_folder.load_video_folder(folder).skipped.set_index("path").reason
    assert set(skipped.index) == {"broken.mp4", "empty.mp4"}
    assert skipped["empty.mp4"] == "empty file"
    assert skipped["broken.mp4"].startswith("cannot decode")


def test_bad_sidecar_is_listed(folder):
    (folder / "plain.json").write_text("{not json", encoding="utf-8")
    ds = video_folder.load_video_folder(folder)
    assert "plain" not in set(ds.items.item_id)
    assert "not valid UTF-8 JSON" in ds.skipped.set_index("path").reason["plain.mp4"]


def test_clip_path_and_frames(folder):
    ds = video_folder.load_video_folder(folder)
    frames = miniclips.read_frames(ds.clip_path("cat"))
    assert frames.shape[1:] == (miniclips.FRAME_SIZE, miniclips.FRAME_SIZE, 3)
    assert frames.dtype == np.uint8


def test_recursive_ids_include_the_subfolder(folder):
    (folder / "more").mkdir()
    shutil.copy(folder / "plain.mp4", folder / "more" / "plain.mp4")
    assert "more/plain" not in set(video_folder.load_video_folder(folder).items.item_id)
    ds = video_folder.load_video_folder(folder, recursive=True)
    assert {"plain", "more/plain"} <= set(ds.items.item_id)


def test_empty_folder_gives_empty_tables(tmp_path):
    ds = video_folder.load_video_folder(tmp_path)
    assert ds.items.empty and ds.skipped.empty
    assert list(ds.items.columns) == miniclips.ITEM_COLUMNS


def test_missing_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        video_folder.load_video_folder(tmp_path / "nope")


def test_unknown_item_is_rejected(folder):
    with pytest.raises(ParameterError, match="nope"):
        video_folder.load_video_folder(folder).clip_path("nope")


@pytest.mark.parametrize("percent", [30, 70])
def test_truncated_file_is_listed_with_its_reason(folder, percent):
    data = (folder / "plain.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(data[:len(data) * percent // 100])
    ds = video_folder.load_video_folder(folder)
    assert "cut" not in set(ds.items.item_id)
    reason = ds.skipped.set_index("path").reason["cut.mp4"]
    assert reason.startswith("cannot decode: the video is truncated")


def test_audio_only_file_is_listed_with_its_reason(folder):
    subprocess.run([media.ffmpeg_exe(), "-nostdin", "-y", "-loglevel", "error", "-i",
                    str(folder / "plain.mp4"), "-map", "0:a:0", "-c", "copy",
                    str(folder / "sound.mp4")], check=True)
    reason = video_folder.load_video_folder(folder).skipped.set_index("path").reason
    assert reason["sound.mp4"] == "cannot decode: the file has no video stream"


def test_a_folder_named_like_a_video_is_ignored(folder):
    (folder / "album.mp4").mkdir()
    ds = video_folder.load_video_folder(folder)
    assert "album" not in set(ds.items.item_id)
    assert "album.mp4" not in set(ds.skipped.path)


def test_good_items_keep_the_header_duration(folder):
    items = video_folder.load_video_folder(folder).items.set_index("item_id")
    assert items.duration_s["plain"] == media.probe_video(folder / "plain.mp4").duration_s


@pytest.mark.parametrize("path", [None, 3])
def test_path_of_a_wrong_type_is_a_parameter_error(path):
    with pytest.raises(ParameterError, match="path="):
        video_folder.load_video_folder(path)


def test_recursive_must_be_a_bool(folder):
    with pytest.raises(ParameterError, match="recursive="):
        video_folder.load_video_folder(folder, recursive="yes")


def test_a_file_instead_of_a_folder_is_a_data_error(folder):
    with pytest.raises(DataError, match="not a folder"):
        video_folder.load_video_folder(folder / "plain.mp4")
