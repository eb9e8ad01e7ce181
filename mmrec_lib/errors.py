"""Exceptions raised by mmrec_lib: one hierarchy, so callers can catch them all."""

__all__ = [
    "MmrecError",
    "ParameterError",
    "DataError",
    "DownloadError",
    "ChecksumError",
    "UnsafeArchiveError",
    "ModelError",
    "NotFittedError",
    "EnvironmentError",
]


class MmrecError(Exception):
    """Base class of every error that mmrec_lib raises on purpose."""


class ParameterError(MmrecError, ValueError):
    """An argument has a wrong value, type or shape."""


class DataError(MmrecError, ValueError):
    """A data file or in-memory dataset is missing, corrupt or malformed."""


class DownloadError(MmrecError, OSError):
    """A dataset could not be downloaded; the message says where to put it by hand."""


class ChecksumError(DownloadError):
    """A downloaded or cached file does not match the checksum in the registry."""


class UnsafeArchiveError(DataError):
    """An archive member would be written outside the extraction folder."""


class ModelError(MmrecError, RuntimeError):
    """A model or checkpoint cannot be loaded or used as asked."""


class NotFittedError(MmrecError, AttributeError):
    """An estimator was used before ``fit``."""


class EnvironmentError(MmrecError, RuntimeError):  # noqa: A001 - the name is part of the API
    """The Python environment is set up in a way mmrec_lib cannot work with."""
