"""Tests for the download registry, checksums and safe extraction."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from mmrec_lib.datasets import _fetch
from mmrec_lib.errors import (
    ChecksumError,
    DataError,
    DownloadError,
    ParameterError,
    UnsafeArchiveError,
)


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return path


def write_registry(tmp_path: Path, monkeypatch, url: str, checksum: str,
                   filename="thing.zip", extract="thing") -> None:
    registry = tmp_path / "registry.tsv"
    registry.write_text(f"# header\nthing\t{url}\t{checksum}\t{filename}\t{extract}\n")
    monkeypatch.setattr(_fetch, "REGISTRY_PATH", registry)


def sha256(payload: bytes) -> str:
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def test_shipped_registry_lists_movielens_with_published_md5():
    entry = _fetch.registry()["ml-100k"]
    assert entry.url.endswith("ml-100k.zip")
    assert entry.checksum == "md5:0e33842e24a9c977be4e0107933c0723"
    assert entry.extract == "ml-100k"


def test_registry_rejects_bad_checksum_field(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("x\thttp://example.org/x\tcrc32:abc\tx.zip\tx\n")
    with pytest.raises(DataError, match="line 1"):
        _fetch.registry(path)


def test_registry_rejects_wrong_field_count(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("x\thttp://example.org/x\n")
    with pytest.raises(DataError, match="5 tab-separated fields"):
        _fetch.registry(path)


def test_unknown_dataset_name_is_a_parameter_error(data_dir):
    with pytest.raises(ParameterError, match="not in the registry"):
        _fetch.fetch("no-such-dataset")


def test_file_checksum_known_values(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert _fetch.file_checksum(path, "md5") == "900150983cd24fb0d6963f7d28e17f72"
    assert _fetch.file_checksum(path) == hashlib.sha256(b"abc").hexdigest()


def test_checksum_mismatch_raises_and_deletes(tmp_path):
    path = tmp_path / "download.zip"
    path.write_bytes(b"not what we expected")
    with pytest.raises(ChecksumError, match="expected 0000"):
        _fetch.verify_checksum(path, "sha256:" + "0" * 64)
    assert not path.exists()


def test_download_with_wrong_checksum_leaves_no_file(tmp_path, data_dir, monkeypatch):
    archive = make_zip(tmp_path / "thing.zip", {"thing/a.txt": b"hello"})
    write_registry(tmp_path, monkeypatch, archive.as_uri(), "sha256:" + "1" * 64)
    with pytest.raises(ChecksumError):
        _fetch.fetch("thing")
    assert sorted(os.listdir(data_dir)) == []


def test_download_verifies_and_extracts(tmp_path, data_dir, monkeypatch):
    archive = make_zip(tmp_path / "thing.zip", {"thing/a.txt": b"hello", "thing/b/c.txt": b"x"})
    write_registry(tmp_path, monkeypatch, archive.as_uri(), sha256(archive.read_bytes()))
    folder = _fetch.fetch("thing")
    assert folder == data_dir / "thing"
    assert (folder / "a.txt").read_bytes() == b"hello"
    assert (folder / "b" / "c.txt").read_bytes() == b"x"
    # The second call uses the cache: removing the source changes nothing.
    archive.unlink()
    assert _fetch.fetch("thing") == folder
    assert not [name for name in os.listdir(data_dir) if name.endswith(".part")]


def test_hand_placed_file_is_used_after_its_checksum_matches(tmp_path, data_dir, monkeypatch):
    payload_zip = make_zip(tmp_path / "src.zip", {"thing/a.txt": b"by hand"})
    write_registry(tmp_path, monkeypatch, "http://127.0.0.1:9/thing.zip",
                   sha256(payload_zip.read_bytes()))
    (data_dir / "thing.zip").write_bytes(payload_zip.read_bytes())
    assert (_fetch.fetch("thing") / "a.txt").read_bytes() == b"by hand"


def test_hand_placed_file_with_wrong_checksum_is_refused(tmp_path, data_dir, monkeypatch):
    write_registry(tmp_path, monkeypatch, "http://127.0.0.1:9/thing.zip", "sha256:" + "2" * 64)
    (data_dir / "thing.zip").write_bytes(b"corrupt")
    with pytest.raises(ChecksumError):
        _fetch.fetch("thing")
    assert not (data_dir / "thing.zip").exists()


def test_offline_error_names_url_and_manual_path(tmp_path, data_dir, monkeypatch):
    # Port 9 (discard) on loopback refuses connections: the download is impossible.
    url = "http://127.0.0.1:9/datasets/thing.zip"
    write_registry(tmp_path, monkeypatch, url, "sha256:" + "3" * 64)
    with pytest.raises(DownloadError) as info:
        _fetch.fetch("thing", timeout=5)
    message = str(info.value)
    assert url in message
    assert str(data_dir / "thing.zip") in message
    assert not (data_dir / "thing.zip").exists()


def test_zip_with_parent_traversal_is_refused(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"ok.txt": b"fine", "../evil.txt": b"pwned"})
    target = tmp_path / "out" / "target"
    with pytest.raises(UnsafeArchiveError, match=r"\.\./evil\.txt"):
        _fetch.safe_extract(archive, target)
    assert not (tmp_path / "out" / "evil.txt").exists()
    assert not target.exists()


def test_zip_with_absolute_path_is_refused(tmp_path):
    archive = tmp_path / "abs.zip"
    # zipfile.writestr strips nothing, so the absolute name stays in the archive.
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("/tmp/mmrec-evil-absolute.txt")
        zf.writestr(info, b"pwned")
    with pytest.raises(UnsafeArchiveError, match="absolute path"):
        _fetch.safe_extract(archive, tmp_path / "target")
    assert not Path("/tmp/mmrec-evil-absolute.txt").exists()
    assert not (tmp_path / "target").exists()


def test_fetch_refuses_hostile_archive_and_keeps_cache_clean(tmp_path, data_dir, monkeypatch):
    archive = make_zip(tmp_path / "thing.zip", {"thing/a.txt": b"x", "../../evil": b"pwned"})
    write_registry(tmp_path, monkeypatch, archive.as_uri(), sha256(archive.read_bytes()))
    with pytest.raises(UnsafeArchiveError):
        _fetch.fetch("thing")
    assert not (data_dir / "thing").exists()
    assert not (tmp_path / "evil").exists()


def add_tar_member(tf: tarfile.TarFile, name: str, payload: bytes = b"", *,
                   kind=tarfile.REGTYPE, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(payload) if kind == tarfile.REGTYPE else 0
    tf.addfile(info, io.BytesIO(payload) if kind == tarfile.REGTYPE else None)


def test_tar_with_escaping_symlink_is_refused(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        add_tar_member(tf, "data/a.txt", b"ok")
        add_tar_member(tf, "data/link", kind=tarfile.SYMTYPE, linkname="../../etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="outside the target"):
        _fetch.safe_extract(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_tar_with_internal_symlink_is_extracted(tmp_path):
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tf:
        add_tar_member(tf, "data/a.txt", b"ok")
        add_tar_member(tf, "data/alias", kind=tarfile.SYMTYPE, linkname="a.txt")
    target = _fetch.safe_extract(archive, tmp_path / "target")
    assert (target / "data" / "alias").read_bytes() == b"ok"


def test_non_archive_is_a_data_error(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"plain text")
    with pytest.raises(DataError, match="neither a zip nor a tar"):
        _fetch.safe_extract(path, tmp_path / "target")


def test_missing_registry_file_is_a_data_error_naming_it(tmp_path):
    path = tmp_path / "missing.tsv"
    with pytest.raises(DataError, match=r"missing\.tsv does not exist"):
        _fetch.registry(path)


def test_registry_given_a_folder_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot be read"):
        _fetch.registry(tmp_path)


def test_registry_that_is_not_utf8_is_a_data_error(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_bytes(b"\xff\xfe not text")
    with pytest.raises(DataError, match=r"r\.tsv cannot be read as UTF-8"):
        _fetch.registry(path)
