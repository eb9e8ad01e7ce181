"""Keras 2 (tf-keras) and quiet-logging set-up that must happen before TensorFlow is imported."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator

from mmrec_lib.errors import EnvironmentError

__all__ = ["configure_keras", "import_tensorflow", "filter_native_log"]

_ADVICE = (
    "mmrec_lib needs Keras 2 (the tf-keras package), which bert4keras requires. "
    "TensorFlow was imported before mmrec_lib with Keras 3 active. Import mmrec_lib "
    "first, or set TF_USE_LEGACY_KERAS=1 and TF_KERAS=1 in the environment before "
    "starting Python (in a notebook: restart the kernel and run `import mmrec_lib` "
    "in the first cell)."
)


def configure_keras() -> None:
    """Select tf-keras for TensorFlow and bert4keras, or raise if it is too late.

    Sets ``TF_USE_LEGACY_KERAS=1`` and ``TF_KERAS=1`` unless the user set them.
    When TensorFlow is already imported, checks that ``tf.keras`` is tf-keras.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_KERAS", "1")
    # TensorFlow's C++ logging is noise for learners; users can still override it.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _install_quiet_import()
    if os.environ["TF_USE_LEGACY_KERAS"] not in ("1", "true", "True"):
        raise EnvironmentError(
            f"TF_USE_LEGACY_KERAS={os.environ['TF_USE_LEGACY_KERAS']!r}; mmrec_lib needs it "
            "to be 1 so that tf.keras is Keras 2 (tf-keras). " + _ADVICE
        )
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return
    # tf.keras is resolved lazily on first access: if nobody touched it yet, the
    # variables set above still take effect.
    if not _keras_module_name(tf).startswith("tf_keras"):
        raise EnvironmentError(_ADVICE)


def _keras_module_name(tf) -> str:
    try:
        return tf.keras.__name__
    except Exception:  # pragma: no cover - a broken TF install
        return ""


def import_tensorflow():
    """Import TensorFlow after :func:`configure_keras`; return the module."""
    configure_keras()
    import tensorflow as tf

    return tf


# --- Quiet TensorFlow start-up ------------------------------------------------------
#
# TensorFlow 2.16+ logs through absl, and absl prints everything logged before
# absl::InitializeLog() to stderr whatever TF_CPP_MIN_LOG_LEVEL says: "oneDNN custom
# operations are on", "Could not find cuda drivers", and on a machine without a GPU
# driver "E0000 ... failed call to cuInit: ... CUDA error". A learner reads errors
# where nothing is wrong. These lines come from C++, so only the file descriptor can
# be filtered: while TensorFlow is imported and looks for devices (once), fd 2 goes
# to a temporary file, and what is not start-up noise is written back afterwards.

_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# absl's prefix: severity letter, MMDD, time (before InitializeLog the seconds are not
# wrapped: "00:00:1796168175.33"), thread id, file:line.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] (.*)$")
# The continuation line of cpu_feature_guard's INFO message.
_CPU_FEATURES = re.compile(r"^To enable the following instructions: .* rebuild TensorFlow with "
                           r"the appropriate compiler flags\.$")
_NO_DRIVER = "Could not find cuda drivers on your machine"
_CUINIT = re.compile(r"failed call to cuInit")


def filter_native_log(text: str, *, min_log_level: int = 2) -> str:
    """Drop TensorFlow's start-up noise from captured stderr ``text``; keep the rest.

    With ``min_log_level >= 2`` (the ``TF_CPP_MIN_LOG_LEVEL`` that mmrec_lib sets),
    absl INFO and WARNING lines and absl's "before InitializeLog" banner are
    dropped, as TensorFlow itself would once its logging is set up. The one error
    dropped is "failed call to cuInit" when the same start-up also said there is
    no CUDA driver: the CPU-only case, where it is expected. Every other line
    (errors, Python warnings, tracebacks) is kept. Below level 2 nothing is dropped.
    """
    if min_log_level < 2:
        return text
    no_driver = _NO_DRIVER in text
    kept = []
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        match = _ABSL_LINE.match(stripped)
        if stripped == _ABSL_BANNER or _CPU_FEATURES.match(stripped):
            continue
        if match and match.group(1) in "IW":
            continue
        if match and no_driver and _CUINIT.search(match.group(2)):
            continue
        kept.append(line)
    return "".join(kept)


def _min_log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def _filtered_native_stderr() -> Iterator[None]:
    """Send fd 2 to a temporary file inside the block, then write back what is not noise."""
    if _min_log_level() < 2:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = filter_native_log(capture.read().decode("utf-8", "replace"),
                                     min_log_level=_min_log_level())
            if kept:
                os.write(2, kept.encode("utf-8"))


def _finish_tensorflow_import(tf) -> None:
    # Device discovery runs cuInit; doing it here keeps its message inside the filter.
    # It does not create logical devices, so tf.config.set_visible_devices still works.
    with contextlib.suppress(Exception):
        tf.config.list_physical_devices()


class _QuietLoader(importlib.abc.Loader):
    """Runs TensorFlow's own loader with the start-up noise filtered out."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        # From here on the module looks exactly as if imported without this wrapper.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with _filtered_native_stderr():
            self._loader.exec_module(module)
            _finish_tensorflow_import(module)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Meta-path hook for the first ``import tensorflow`` (also via tf_keras); then removed.

    Notebooks write ``import tensorflow as tf`` themselves, after ``import mmrec_lib``.
    """

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        _uninstall_quiet_import()
        # The other finders locate TensorFlow as usual; only its loader is wrapped.
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _install_quiet_import() -> None:
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def _uninstall_quiet_import() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path
                        if not isinstance(finder, _QuietTensorFlowFinder)]
