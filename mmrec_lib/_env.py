"""Keras 2 (tf-keras) set-up that must happen before TensorFlow is first imported."""

from __future__ import annotations

import os
import sys

from mmrec_lib.errors import EnvironmentError

__all__ = ["configure_keras", "import_tensorflow"]

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
