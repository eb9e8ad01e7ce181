"""Hostile zip and tar archives: safe_extract refuses them and writes nothing anywhere."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from mmrec_lib.datasets import _fetch
from mmrec_lib.errors import DataError, UnsafeArchiveError

FILE = tarfile.REGTYPE
DIR = tarfile.DIRTYPE
SYMLINK = tarfile.SYMTYPE
HARDLINK = tarfile.LNKTYPE


@pytest.fixture
def sandbox(tmp_path) -> Path:
    """A folder ``sandbox/a/b/`` holding the target, so ``../`` and ``../../`` stay inside it.

    An escaping member would land in ``sandbox/a/b``, ``sandbox/a`` or ``sandbox``,
    which the tests list before and after extraction.
    """
    (tmp_path / "a" / "b").mkdir(parents=True)
    return tmp_path


def target_of(sandbox: Path) -> Path:
    return sandbox / "a" / "b" / "target"


def snapshot(sandbox: Path) -> set[str]:
    return {str(path.relative_to(sandbox)) for path in sandbox.rglob("*")}


def make_tar(path: Path, members: list[tuple[str, int, str]]) -> Path:
    """Write ``(name, kind, linkname)`` members; files hold b"payload"."""
    with tarfile.open(path, "w") as tf:
        for name, kind, linkname in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = linkname
            payload = b"payload" if kind == FILE else b""
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload) if kind == FILE else None)
    return path


def make_zip(path: Path, names: list[str]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(zipfile.ZipInfo(name), b"payload")
    return path


def assert_refused(archive: Path, sandbox: Path, match: str | None = None) -> None:
    before = snapshot(sandbox)
    with pytest.raises(UnsafeArchiveError, match=match):
        _fetch.safe_extract(archive, target_of(sandbox))
    assert snapshot(sandbox) == before
    assert not target_of(sandbox).exists()


# --- member names, zip ------------------------------------------------------------

@pytest.mark.parametrize("name", ["../x", "../../x", "a/../../x", "ok/../x"])
def test_zip_member_with_parent_component_is_refused(sandbox, name):
    archive = make_zip(sandbox / "evil.zip", ["ok.txt", name])
    assert_refused(archive, sandbox, match="contains '..'")


def test_zip_member_named_dotdot_is_refused(sandbox):
    archive = make_zip(sandbox / "evil.zip", [".."])
    assert_refused(archive, sandbox, match="contains '..'")


def test_zip_member_with_backslash_parent_is_refused(sandbox):
    archive = make_zip(sandbox / "evil.zip", ["..\\..\\x"])
    assert_refused(archive, sandbox, match="contains '..'")


@pytest.mark.parametrize("name", ["/abs", "/tmp/mmrec-evil-absolute", "\\abs", "C:x", "c:/x",
                                  "\\\\server\\share\\x"])
def test_zip_member_with_absolute_name_is_refused(sandbox, name):
    archive = make_zip(sandbox / "evil.zip", [name])
    assert_refused(archive, sandbox, match="absolute path")
    assert not Path("/tmp/mmrec-evil-absolute").exists()


def test_zip_file_member_named_dot_is_refused(sandbox):
    archive = make_zip(sandbox / "evil.zip", ["."])
    assert_refused(archive, sandbox, match="target folder itself")


def test_zip_symlink_member_is_refused(sandbox):
    archive = sandbox / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../x")
    assert_refused(archive, sandbox, match="symbolic link")


def test_zip_with_dot_slash_folder_is_extracted(sandbox):
    archive = make_zip(sandbox / "ok.zip", ["./", "./data/a.txt"])
    target = _fetch.safe_extract(archive, target_of(sandbox))
    assert (target / "data" / "a.txt").read_bytes() == b"payload"


# --- member names, tar ------------------------------------------------------------

@pytest.mark.parametrize("name", ["../x", "../../x", "a/../../x", "..\\x"])
def test_tar_member_with_parent_component_is_refused(sandbox, name):
    archive = make_tar(sandbox / "evil.tar", [("ok.txt", FILE, ""), (name, FILE, "")])
    assert_refused(archive, sandbox, match="contains '..'")


def test_tar_folder_named_dotdot_is_refused(sandbox):
    archive = make_tar(sandbox / "evil.tar", [("..", DIR, "")])
    assert_refused(archive, sandbox, match="contains '..'")


@pytest.mark.parametrize("name", ["/abs", "C:\\x"])
def test_tar_member_with_absolute_name_is_refused(sandbox, name):
    archive = make_tar(sandbox / "evil.tar", [(name, FILE, "")])
    assert_refused(archive, sandbox, match="absolute path")


def test_tar_file_member_named_dot_is_refused(sandbox):
    archive = make_tar(sandbox / "evil.tar", [(".", FILE, "")])
    assert_refused(archive, sandbox, match="target folder itself")


def test_tar_device_member_is_refused(sandbox):
    archive = make_tar(sandbox / "evil.tar", [("dev", tarfile.CHRTYPE, "")])
    assert_refused(archive, sandbox, match="device or fifo")


def test_tar_fifo_member_is_refused(sandbox):
    archive = make_tar(sandbox / "evil.tar", [("pipe", tarfile.FIFOTYPE, "")])
    assert_refused(archive, sandbox, match="device or fifo")


def test_tar_made_with_dot_root_is_extracted(sandbox):
    archive = make_tar(sandbox / "ok.tar", [("./", DIR, ""), ("./data/a.txt", FILE, "")])
    target = _fetch.safe_extract(archive, target_of(sandbox))
    assert (target / "data" / "a.txt").read_bytes() == b"payload"


# --- links, tar -------------------------------------------------------------------

@pytest.mark.parametrize("linkname", ["..", "../..", "../x", "../../x", "d/../../x",
                                      "..\\..\\x"])
def test_tar_symlink_escaping_the_target_is_refused(sandbox, linkname):
    archive = make_tar(sandbox / "evil.tar", [("d/a.txt", FILE, ""),
                                              ("link", SYMLINK, linkname)])
    assert_refused(archive, sandbox, match="points outside the target")


def test_tar_nested_symlink_escaping_by_two_levels_is_refused(sandbox):
    # From data/sub/ the first ".." stays inside; ../../../x climbs out.
    archive = make_tar(sandbox / "evil.tar", [("data/sub/link", SYMLINK, "../../../x")])
    assert_refused(archive, sandbox, match="points outside the target")


@pytest.mark.parametrize("linkname", ["/etc/passwd", "/", "C:\\Windows"])
def test_tar_symlink_to_absolute_path_is_refused(sandbox, linkname):
    archive = make_tar(sandbox / "evil.tar", [("link", SYMLINK, linkname)])
    assert_refused(archive, sandbox, match="points outside the target")


@pytest.mark.parametrize("linkname", ["../x", "../../x", "/etc/passwd"])
def test_tar_hard_link_escaping_the_target_is_refused(sandbox, linkname):
    archive = make_tar(sandbox / "evil.tar", [("link", HARDLINK, linkname)])
    assert_refused(archive, sandbox, match="points outside the target")


def test_tar_symlink_chain_escaping_at_its_end_is_refused(sandbox):
    # a -> b is harmless on its own; b -> ../../etc is the escape.
    archive = make_tar(sandbox / "evil.tar", [("a", SYMLINK, "b"), ("b", SYMLINK, "../../etc")])
    assert_refused(archive, sandbox, match="points outside the target")


def test_tar_symlink_chain_escaping_only_through_an_earlier_link_is_refused(sandbox):
    # d/up -> .. points at the target itself, and c -> d/up/../x reads as "d/x" textually,
    # but the operating system resolves d/up first: d/up/.. is the target's parent.
    archive = make_tar(sandbox / "evil.tar", [("d/up", SYMLINK, ".."),
                                              ("c", SYMLINK, "d/up/../x")])
    assert_refused(archive, sandbox, match="'c'")


def test_tar_hard_link_through_an_escaping_chain_is_refused(sandbox):
    archive = make_tar(sandbox / "evil.tar", [("d/up", SYMLINK, ".."),
                                              ("hard", HARDLINK, "d/up/../x")])
    assert_refused(archive, sandbox, match="'hard'")


def test_tar_file_written_through_a_symlinked_folder_is_refused(sandbox):
    # The link is listed after the file that uses it: order does not matter to the check.
    archive = make_tar(sandbox / "evil.tar", [("d/up/x", FILE, ""), ("d/up", SYMLINK, "../..")])
    assert_refused(archive, sandbox, match="outside the target")


def test_tar_symlink_loop_is_refused(sandbox):
    archive = make_tar(sandbox / "evil.tar", [("a", SYMLINK, "b"), ("b", SYMLINK, "a")])
    assert_refused(archive, sandbox, match="loop")


def test_tar_symlink_with_empty_target_is_refused(sandbox):
    archive = make_tar(sandbox / "evil.tar", [("link", SYMLINK, "")])
    assert_refused(archive, sandbox, match="empty target")


def test_tar_internal_symlink_chain_is_extracted(sandbox):
    archive = make_tar(sandbox / "ok.tar", [("data/a.txt", FILE, ""),
                                            ("data/sub/up", SYMLINK, ".."),
                                            ("alias", SYMLINK, "data/sub/up/a.txt")])
    target = _fetch.safe_extract(archive, target_of(sandbox))
    assert (target / "alias").read_bytes() == b"payload"


def test_tar_internal_hard_link_is_extracted(sandbox):
    archive = make_tar(sandbox / "ok.tar", [("data/a.txt", FILE, ""),
                                            ("copy.txt", HARDLINK, "data/a.txt")])
    target = _fetch.safe_extract(archive, target_of(sandbox))
    assert (target / "copy.txt").read_bytes() == b"payload"


# --- tarfile's own filter is mapped to UnsafeArchiveError --------------------------

def test_tar_filter_refusal_is_an_unsafe_archive_error(sandbox, monkeypatch):
    # Switch the library's own checks off to show the second line of defence: the
    # escaping link reaches tarfile's "data" filter, which must not look like corruption.
    monkeypatch.setattr(_fetch, "_check_tar_members", lambda members, archive: None)
    archive = make_tar(sandbox / "evil.tar", [("link", SYMLINK, "../../x")])
    (sandbox / "a" / "b").mkdir(exist_ok=True)
    before = snapshot(sandbox)
    with pytest.raises(UnsafeArchiveError, match="outside the destination") as info:
        _fetch.safe_extract(archive, target_of(sandbox))
    assert isinstance(info.value.__cause__, tarfile.FilterError)
    assert snapshot(sandbox) == before


def test_truncated_tar_is_still_a_plain_data_error(sandbox):
    archive = make_tar(sandbox / "ok.tar", [("data/a.txt", FILE, "")])
    with tarfile.open(archive) as tf:
        offset = tf.getmember("data/a.txt").offset_data
    # Keep the header, cut the payload: tarfile reads the member list, then fails.
    archive.write_bytes(archive.read_bytes()[:offset + 2])
    with pytest.raises(DataError) as info:
        _fetch.safe_extract(archive, target_of(sandbox))
    assert not isinstance(info.value, UnsafeArchiveError)
