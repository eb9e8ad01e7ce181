"""Tests for the MovieLens-100k loader, on a fixture in the published format."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURES
from mmrec_lib.datasets import load_movielens_100k, movielens
from mmrec_lib.errors import DataError, DownloadError

MINI = FIXTURES / "ml-100k-mini"


@pytest.fixture
def mini_copy(tmp_path):
    target = tmp_path / "ml-100k"
    shutil.copytree(MINI, target)
    return target


def test_fixture_tables_have_the_documented_columns():
    ml = load_movielens_100k(MINI)
    assert list(ml.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert ml.ratings.shape == (19, 4)
    assert pd.api.types.is_datetime64_any_dtype(ml.ratings["timestamp"])
    assert ml.ratings["rating"].between(1, 5).all()
    assert list(ml.items.columns[:5]) == ["item_id", "title", "release_date", "year", "genres"]
    assert list(ml.items.columns[5:]) == movielens.GENRES
    assert list(ml.users.columns) == ["user_id", "age", "gender", "occupation", "zip_code"]


def test_latin1_titles_are_decoded():
    titles = load_movielens_100k(MINI).items["title"].tolist()
    assert "Café Society Blues (1995)" in titles
    assert "Misérables du Nord, Les (1995)" in titles
    assert "Señor Pinto (1996)" in titles


def test_genres_list_matches_one_hot_and_unknown_release_is_nat():
    items = load_movielens_100k(MINI).items
    for _, row in items.iterrows():
        assert row["genres"] == [g for g in movielens.GENRES if row[g] == 1]
    unknown = items[items["item_id"] == 8].iloc[0]
    assert pd.isna(unknown["release_date"]) and pd.isna(unknown["year"])
    assert unknown["genres"] == ["unknown"]
    first = items[items["item_id"] == 1].iloc[0]
    assert first["release_date"] == pd.Timestamp("1991-01-01") and first["year"] == 1991


def test_timestamps_are_unix_seconds():
    ratings = load_movielens_100k(MINI).ratings
    raw = np.loadtxt(MINI / "u.data", dtype=np.int64)
    np.testing.assert_array_equal(ratings["timestamp"].astype("int64") // 10**6
                                  if ratings["timestamp"].dtype == "datetime64[us]"
                                  else ratings["timestamp"].astype("int64") // 10**9, raw[:, 3])


def test_parent_folder_is_accepted(mini_copy):
    assert load_movielens_100k(mini_copy.parent).ratings.shape == (19, 4)


def test_env_cache_folder_is_used(mini_copy, monkeypatch):
    monkeypatch.setenv("MMREC_DATA_DIR", str(mini_copy.parent))
    assert load_movielens_100k().ratings.shape == (19, 4)


def test_truncated_ratings_line_names_file_and_line(mini_copy):
    lines = (mini_copy / "u.data").read_text().splitlines()
    lines[6] = lines[6].rsplit("\t", 2)[0]  # cut mid-record, as a broken copy would
    (mini_copy / "u.data").write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"u\.data, line 7: expected 4 fields"):
        load_movielens_100k(mini_copy)


def test_non_integer_rating_is_reported(mini_copy):
    text = (mini_copy / "u.data").read_text().replace("\t", "\tx", 1)
    (mini_copy / "u.data").write_text(text)
    with pytest.raises(DataError, match="item_id='x"):
        load_movielens_100k(mini_copy)


def test_out_of_range_rating_is_reported(mini_copy):
    lines = (mini_copy / "u.data").read_text().splitlines()
    fields = lines[2].split("\t")
    fields[2] = "9"
    lines[2] = "\t".join(fields)
    (mini_copy / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="rating=9"):
        load_movielens_100k(mini_copy)


def test_ratings_of_missing_items_are_reported(mini_copy):
    lines = (mini_copy / "u.item").read_bytes().splitlines()
    (mini_copy / "u.item").write_bytes(b"\n".join(lines[:2]) + b"\n")
    with pytest.raises(DataError, match="truncated u.item"):
        load_movielens_100k(mini_copy)


def test_missing_everything_offline_names_url_and_path(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(DownloadError) as info:
        load_movielens_100k(tmp_path / "nowhere")
    message = str(info.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in message
    assert str(data_dir / "ml-100k.zip") in message


def test_full_movielens_100k(movielens_100k_dir):
    ml = load_movielens_100k(movielens_100k_dir)
    assert ml.ratings.shape == (100000, 4)
    assert ml.items.shape[0] == 1682 and ml.users.shape[0] == 943
    assert ml.ratings.groupby("user_id").size().min() >= 20
    assert "Misérables, Les (1995)" in set(ml.items["title"])
