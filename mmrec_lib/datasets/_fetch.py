"""Download registry, checksummed downloads and safe archive extraction (chapter 00)."""

from __future__ import annotations

import hashlib
import os
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

    Introduced in chapter 00.
    """
    path = Path(path) if path is not None else REGISTRY_PATH
    entries: dict[str, RegistryEntry] = {}
    for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
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


def _check_member_name(name: str, archive: Path) -> PurePosixPath:
    member = PurePosixPath(name.replace("\\", "/"))
    if member.is_absolute() or name.startswith(("/", "\\")) or (
        len(name) > 1 and name[1] == ":"
    ):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing "
                                 "to extract")
    if ".." in member.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} contains '..' and would be "
                                 "written outside the target folder; refusing to extract")
    return member


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a zip or tar archive into ``target``, refusing hostile members.

    Every member name is checked before anything is written: absolute paths,
    ``..`` components and links that point outside ``target`` raise
    :class:`UnsafeArchiveError`. Extraction goes to a temporary folder that is
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
                _check_member_name(info.filename, archive)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a "
                                             "symbolic link; refusing to extract")
            with atomic_dir(target) as tmp:
                try:
                    zf.extractall(tmp)
                except (zipfile.BadZipFile, OSError, EOFError) as error:
                    raise DataError(f"{archive} is corrupt: {error}") from error
        return target
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for member in members:
                name = _check_member_name(member.name, archive)
                if member.issym() or member.islnk():
                    link = PurePosixPath(member.linkname)
                    # Hard links name a member path; symbolic links are relative to
                    # the folder of the link.
                    resolved = link if member.islnk() else name.parent / link
                    if link.is_absolute() or _escapes(resolved):
                        raise UnsafeArchiveError(
                            f"{archive}: link {member.name!r} -> {member.linkname!r} points "
                            "outside the target folder; refusing to extract")
                elif not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device "
                                             "or fifo; refusing to extract")
            with atomic_dir(target) as tmp:
                try:
                    tf.extractall(tmp, filter="data")
                except (tarfile.TarError, OSError, EOFError) as error:
                    raise DataError(f"{archive} is corrupt: {error}") from error
        return target
    raise DataError(f"{archive} is neither a zip nor a tar archive")


def _normalise(path: PurePosixPath) -> PurePosixPath:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            if parts:
                parts.pop()
            else:
                parts.append("..")
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _escapes(path: PurePosixPath) -> bool:
    return _normalise(path).parts[:1] == ("..",)


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
