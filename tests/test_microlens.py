"""Tests for mmrec_lib.datasets.microlens (MicroLens as published, chapter 01)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from mmrec_lib.datasets import microlens
from mmrec_lib.errors import DataError, DownloadError, ParameterError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "microlens" / "MicroLens-100k"


@pytest.fixture
def cache(tmp_path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "microlens" / "MicroLens-100k")
    return tmp_path


def test_interactions_from_the_csv(cache):
    ds = microlens.load_microlens(cache)
    inter = ds.interactions
    assert list(inter.columns) == ["user_id", "item_id", "timestamp"]
    assert len(inter) == 9
    assert pd.api.types.is_datetime64_any_dtype(inter.timestamp)
    assert inter.timestamp.iloc[0] == pd.Timestamp("2020-03-03 15:15:49")
    assert inter.timestamp.is_monotonic_increasing
    assert isinstance(inter.user_id.iloc[0], str) and set(inter.user_id) == {"1", "2", "3"}


def test_items_have_the_miniclips_columns(cache):
    items = microlens.load_microlens(cache).items
    assert list(items.columns) == microlens.ITEM_COLUMNS
    assert list(items.item_id) == ["1", "3", "7", "12", "25"]


def test_titles_with_commas_are_kept_whole(cache):
    titles = microlens.load_microlens(cache).items.set_index("item_id").title_en
    assert titles["3"] == "Street food tour, part 2"
    assert titles["7"] == "Morning workout, no equipment needed"


def test_item_without_title_is_kept_with_empty_title(cache):
    titles = microlens.load_microlens(cache).items.set_index("item_id").title_en
    assert titles["25"] == ""


def test_cover_paths(cache):
    ds = microlens.load_microlens(cache)
    assert ds.cover_path("1").is_file()
    assert not ds.cover_path("7").exists()


def test_tsv_is_used_when_the_csv_is_absent(cache):
    (cache / "microlens" / "MicroLens-100k" / "MicroLens-100k_pairs.csv").unlink()
    inter = microlens.load_microlens(cache).interactions
    assert len(inter) == 9
    assert inter.timestamp.isna().all()
    assert list(inter[inter.user_id == "3"].sort_values("position").item_id) == ["12", "1", "3", "25"]


def test_alternative_csv_header(cache):
    path = cache / "microlens" / "MicroLens-100k" / "MicroLens-100k_pairs.csv"
    path.write_text("userID,videoID,timestamp\n5,1,1583248549000\n")
    inter = microlens.load_microlens(cache).interactions
    assert inter.iloc[0].user_id == "5" and inter.iloc[0].item_id == "1"


def test_missing_files_say_where_to_get_and_put_them(tmp_path):
    with pytest.raises(DownloadError) as info:
        microlens.load_microlens(tmp_path)
    message = str(info.value)
    assert "https://recsys.westlake.edu.cn/MicroLens-100k-Dataset/" in message
    assert str(tmp_path / "microlens" / "MicroLens-100k") in message


def test_data_dir_defaults_to_the_environment(cache, monkeypatch):
    monkeypatch.setenv("MMREC_DATA_DIR", str(cache))
    assert len(microlens.load_microlens().items) == 5


def test_unknown_variant_is_rejected(tmp_path):
    with pytest.raises(ParameterError, match="variant='1m'"):
        microlens.load_microlens(tmp_path, variant="1m")


def test_csv_without_item_column_is_a_data_error(cache):
    path = cache / "microlens" / "MicroLens-100k" / "MicroLens-100k_pairs.csv"
    path.write_text("user,when\n1,2\n")
    with pytest.raises(DataError, match="lacks the columns"):
        microlens.load_microlens(cache)


def test_non_integer_timestamps_are_a_data_error(cache):
    path = cache / "microlens" / "MicroLens-100k" / "MicroLens-100k_pairs.csv"
    path.write_text("user,item,timestamp\n1,3,yesterday\n")
    with pytest.raises(DataError, match="milliseconds"):
        microlens.load_microlens(cache)


def test_malformed_tsv_is_a_data_error(cache):
    folder = cache / "microlens" / "MicroLens-100k"
    (folder / "MicroLens-100k_pairs.csv").unlink()
    (folder / "MicroLens-100k_pairs.tsv").write_text("1 3 7\n")
    with pytest.raises(DataError, match="line 1"):
        microlens.load_microlens(cache)


def test_title_line_without_title_is_a_data_error(cache):
    (cache / "microlens" / "MicroLens-100k" / "MicroLens-100k_title_en.csv").write_text("1\n")
    with pytest.raises(DataError, match="item>,<title"):
        microlens.load_microlens(cache)
