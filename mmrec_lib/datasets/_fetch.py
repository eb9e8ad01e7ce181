"""Download registry, checksummed downloads and safe archive extraction (chapter 00)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from mmrec_lib.errors import (
    ChecksumError,
    DataError,
    DownloadError,
    ParameterError,
    UnsafeArchiveError,
)
from mmrec_lib.utils import atomic_dir, atomic_path, data_dir, progress

__all__ = [
    "RegistryEntry",
    "registry",
    "fetch",
    "file_checksum",
    "verify_checksum",
    "safe_extract",
    "REGISTRY_PATH",
]

#: The registry file shipped inside the package (tab-separated, see its header).
REGISTRY_PATH = Path(__file__).with_name("registry.tsv")

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RegistryEntry:
    """One downloadable dataset: where it comes from and what it must hash to."""

    name: str
    url: str
    checksum: str
    filename: str
    extract: str | None

    @property
    def algorithm(self) -> str:
        return self.checksum.split(":", 1)[0]

    @property
    def digest(self) -> str:
        return self.checksum.split(":", 1)[1]


def registry(path: str | os.PathLike | None = None) -> dict[str, RegistryEntry]:
    """Read the download registry into ``{name: RegistryEntry}``.

    A missing, unreadable or non-UTF-8 file raises :class:`DataError` naming
    the file. Introduced in chapter 00.
    """
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise DataError(f"registry file {path} does not exist; expected a tab-separated "
                        f"file like {REGISTRY_PATH}") from error
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"registry file {path} cannot be read as UTF-8 text: {error}") from error
    entries: dict[str, RegistryEntry] = {}
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise DataError(f"{path}, line {line_number}: expected 5 tab-separated fields, "
                            f"got {len(fields)}")
        name, url, checksum, filename, extract = fields
        algorithm, _, digest = checksum.partition(":")
        if algorithm not in ("sha256", "md5") or not digest:
            raise DataError(f"{path}, line {line_number}: checksum {checksum!r} must be "
                            "'sha256:<hex>' or 'md5:<hex>'")
        entries[name] = RegistryEntry(name, url, checksum.lower(), filename,
                                      None if extract == "-" else extract)
    return entries


def file_checksum(path: str | os.PathLike, algorithm: Literal["sha256", "md5"] = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    if algorithm not in ("sha256", "md5"):
        raise ParameterError(f"algorithm={algorithm!r} must be 'sha256' or 'md5'")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: str | os.PathLike, checksum: str, *, delete: bool = True) -> None:
    """Raise :class:`ChecksumError` unless ``path`` hashes to ``checksum`` ("algo:hex").

    With ``delete=True`` (default) a mismatching file is removed, so a corrupt
    download never stays in the cache.
    """
    algorithm, _, expected = checksum.partition(":")
    actual = file_checksum(path, algorithm)  # type: ignore[arg-type]
    if actual != expected.lower():
        if delete:
            Path(path).unlink(missing_ok=True)
        raise ChecksumError(
            f"{path} has {algorithm} {actual}, expected {expected}"
            + (" (the file was deleted)" if delete else "")
        )


# A name such as "C:x" or "c:/x" is absolute on Windows even though it is relative on POSIX.
_DRIVE = re.compile(r"^[A-Za-z]:")
# Longer symlink chains than this are refused as loops (Linux stops at 40 as well).
_MAX_LINK_HOPS = 40


def _unsafe(archive: Path, message: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: {message}; refusing to extract")


def _check_member_name(name: str, archive: Path, *, is_dir: bool = False) -> PurePosixPath:
    """Return ``name`` as a relative POSIX path, or raise :class:`UnsafeArchiveError`.

    Backslashes count as separators (an archive made on Windows may use them), so
    ``..\\x`` is caught like ``../x``. Every ``..`` is refused, even one that stays
    inside (``a/../b``): honest archives do not need it. The name ``.`` (the
    archive's root, as ``tar -C dir .`` writes it) is allowed for folders only.
    """
    if not name or "\x00" in name:
        raise _unsafe(archive, f"member {name!r} has an empty or NUL-containing name")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        raise _unsafe(archive, f"member {name!r} has an absolute path")
    member = PurePosixPath(posix)
    if ".." in member.parts:
        raise _unsafe(archive, f"member {name!r} contains '..' and would be written outside "
                               "the target folder")
    if not member.parts and not is_dir:
        raise _unsafe(archive, f"member {name!r} names the target folder itself")
    return member


def _link_parts(linkname: str, member: str, archive: Path) -> tuple[str, ...]:
    """Split a link target into parts; absolute targets always point outside."""
    posix = linkname.replace("\\", "/")
    if not posix or posix.startswith("/") or _DRIVE.match(posix):
        raise _unsafe(archive, f"link {member!r} -> {linkname!r} points outside the target "
                               "folder (absolute or empty target)")
    return PurePosixPath(posix).parts


def _resolve(parts: tuple[str, ...], symlinks: dict[tuple[str, ...], str], archive: Path,
             member: str) -> tuple[str, ...] | None:
    """Follow ``parts`` from the target folder through the archive's own symlinks.

    Returns the resolved parts, or ``None`` when the path leaves the target
    folder. Resolution is component by component, as the operating system does
    it: ``d/link/../x`` with ``link -> ..`` goes two levels up, which a purely
    textual clean-up of the path would miss.
    """
    resolved: list[str] = []
    pending = list(parts)
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        linkname = symlinks.get(tuple(resolved))
        if linkname is not None:
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise _unsafe(archive, f"links starting at {member!r} form a loop or a chain "
                                       f"longer than {_MAX_LINK_HOPS}")
            # A symbolic link is relative to the folder that holds it.
            resolved.pop()
            pending = list(_link_parts(linkname, "/".join(resolved + [part]), archive)) + pending
    return tuple(resolved)


def _check_tar_members(members: list[tarfile.TarInfo], archive: Path) -> None:
    """Refuse absolute or ``..`` names, escaping links (also through chains) and devices."""
    names = [_check_member_name(member.name, archive, is_dir=member.isdir())
             for member in members]
    symlinks = {name.parts: member.linkname
                for name, member in zip(names, members) if member.issym()}
    for name, member in zip(names, members):
        if member.issym() or member.islnk():
            # Hard links name another member from the archive root; symbolic links
            # are relative to their own folder (followed by _resolve itself).
            parts = (name.parts if member.issym()
                     else _link_parts(member.linkname, member.name, archive))
            if _resolve(parts, symlinks, archive, member.name) is None:
                raise _unsafe(archive, f"link {member.name!r} -> {member.linkname!r} points "
                                       "outside the target folder")
        elif not (member.isfile() or member.isdir()):
            raise _unsafe(archive, f"member {member.name!r} is a device or fifo")
        # A file written through a symlinked folder lands where that folder points.
        if _resolve(name.parent.parts, symlinks, archive, member.name) is None:
            raise _unsafe(archive, f"member {member.name!r} would be written through a link "
                                   "that points outside the target folder")


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a zip or tar archive into ``target``, refusing hostile members.

    Every member is checked before anything is written: absolute paths (also
    ``C:`` drive letters and backslash separators), ``..`` components, links
    that point outside ``target`` (also through a chain of links), zip
    symlinks, devices and fifos raise :class:`UnsafeArchiveError`. Tar
    archives are then extracted with tarfile's ``"data"`` filter, whose
    refusals raise :class:`UnsafeArchiveError` as well. Extraction goes to a temporary folder that is
    renamed to ``target`` only when complete. Introduced in chapter 00.

    Returns
    -------
    Path
        ``target``.
    """
    archive = Path(archive)
    target = Path(target)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_member_name(info.filename, archive, is_dir=info.is_dir())
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise _unsafe(archive, f"member {info.filename!r} is a symbolic link")
            with atomic_dir(target) as tmp:
                try:
                    zf.extractall(tmp)
                except (zipfile.BadZipFile, OSError, EOFError) as error:
                    raise DataError(f"{archive} is corrupt: {error}") from error
        return target
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            try:
                members = tf.getmembers()
            except (tarfile.TarError, OSError, EOFError) as error:
                raise DataError(f"{archive} is corrupt: {error}") from error
            _check_tar_members(members, archive)
            with atomic_dir(target) as tmp:
                try:
                    tf.extractall(tmp, filter="data")
                except tarfile.FilterError as error:
                    # tarfile's own "data" filter is a second line of defence: whatever
                    # slipped past the checks above is still an unsafe archive.
                    raise _unsafe(archive, str(error)) from error
                except (tarfile.TarError, OSError, EOFError) as error:
                    raise DataError(f"{archive} is corrupt: {error}") from error
        return target
    raise DataError(f"{archive} is neither a zip nor a tar archive")


def _manual_hint(entry: RegistryEntry, destination: Path) -> str:
    return (f"Download {entry.url} by hand and save it as {destination} "
            f"(it must have {entry.algorithm} {entry.digest})"
            + (f", or unpack it so that {destination.parent / entry.extract} exists."
               if entry.extract else "."))


def _download(entry: RegistryEntry, destination: Path, *, timeout: float) -> None:
    try:
        response = urllib.request.urlopen(entry.url, timeout=timeout)  # noqa: S310
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise DownloadError(f"Could not download {entry.name!r} from {entry.url} "
                            f"({error}). {_manual_hint(entry, destination)}") from error
    total = response.headers.get("Content-Length")
    with response, atomic_path(destination) as tmp, open(tmp, "wb") as out:
        bar = progress(None, total=int(total) if total else None, desc=entry.filename)
        try:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                bar.update(len(chunk))
        except OSError as error:
            raise DownloadError(f"Download of {entry.url} was interrupted ({error}). "
                                f"{_manual_hint(entry, destination)}") from error
        finally:
            bar.close()
        out.flush()
        out.close()
        verify_checksum(tmp, entry.checksum)


def fetch(name: str, *, data_dir_path: str | os.PathLike | None = None,
          timeout: float = 30.0) -> Path:
    """Return the local path of registry dataset ``name``, downloading it once.

    The file is downloaded into the cache (``$MMREC_DATA_DIR``, default
    ``~/.cache/mmrec``) with a progress bar, its checksum verified (a mismatch
    deletes it and raises :class:`ChecksumError`) and, if it is an archive,
    extracted safely. Offline, :class:`DownloadError` names the URL and the
    exact path where the file can be placed by hand. Introduced in chapter 00.

    Returns
    -------
    Path
        The extracted folder for archives, else the downloaded file.
    """
    entries = registry()
    if name not in entries:
        raise ParameterError(f"name={name!r} is not in the registry; known: {sorted(entries)}")
    entry = entries[name]
    root = data_dir(data_dir_path)
    if entry.extract and (root / entry.extract).is_dir():
        return root / entry.extract
    destination = root / entry.filename
    if destination.exists():
        # A file placed by hand is trusted only once its checksum matches.
        verify_checksum(destination, entry.checksum)
    else:
        _download(entry, destination, timeout=timeout)
    if not entry.extract:
        return destination
    extracted = root / f".{entry.name}.unpacked"
    safe_extract(destination, extracted)
    # Archives such as ml-100k.zip hold one top folder named like the dataset.
    inner = extracted / entry.extract
    source = inner if inner.is_dir() else extracted
    os.replace(source, root / entry.extract)
    shutil.rmtree(extracted, ignore_errors=True)
    return root / entry.extract
