"""The converted MiniLM checkpoint is a cache: a damaged conversion is redone, not loaded."""

from __future__ import annotations

import json

import pytest

from mmrec_lib import text


@pytest.fixture
def converted(tmp_path):
    folder = text.convert_minilm(data_dir=tmp_path)
    return tmp_path, folder


def _data_file(folder):
    return next(folder.glob("bert_model.ckpt.data-*"))


def test_the_stamp_records_every_file_size(converted):
    _, folder = converted
    stamp = json.loads((folder / "SOURCE.json").read_text(encoding="utf-8"))
    assert stamp["files"][_data_file(folder).name] == _data_file(folder).stat().st_size
    assert set(stamp["files"]) == {p.name for p in folder.iterdir()} - {"SOURCE.json"}


def test_a_truncated_checkpoint_is_converted_again_with_one_warning(converted):
    cache, folder = converted
    data = _data_file(folder)
    size = data.stat().st_size
    data.write_bytes(data.read_bytes()[: size // 3])
    with pytest.warns(RuntimeWarning, match="damaged.*bytes"):
        assert text.convert_minilm(data_dir=cache) == folder
    assert _data_file(folder).stat().st_size == size


def test_a_deleted_checkpoint_file_is_converted_again(converted):
    cache, folder = converted
    (folder / "bert_model.ckpt.index").unlink()
    with pytest.warns(RuntimeWarning, match="bert_model.ckpt.index is missing"):
        text.convert_minilm(data_dir=cache)
    assert (folder / "bert_model.ckpt.index").is_file()


def test_an_older_stamp_without_sizes_is_converted_again_silently(converted, recwarn):
    cache, folder = converted
    stamp = json.loads((folder / "SOURCE.json").read_text(encoding="utf-8"))
    del stamp["files"]
    (folder / "SOURCE.json").write_text(json.dumps(stamp), encoding="utf-8")
    text.convert_minilm(data_dir=cache)
    assert "files" in json.loads((folder / "SOURCE.json").read_text(encoding="utf-8"))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_an_intact_conversion_is_reused_without_a_warning(converted, recwarn):
    cache, folder = converted
    before = _data_file(folder).stat().st_mtime_ns
    text.convert_minilm(data_dir=cache)
    assert _data_file(folder).stat().st_mtime_ns == before
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
