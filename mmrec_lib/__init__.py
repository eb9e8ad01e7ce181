"""mmrec_lib: the library behind the mmrec notebook series (audio/video recommendation)."""

from mmrec_lib._env import configure_keras as _configure_keras

# This must run before anything imports TensorFlow: it selects Keras 2 (tf-keras) for
# bert4keras and quiets TensorFlow's start-up logs (mmrec_lib/_env.py; README, "Using
# it in JupyterLab" and "Troubleshooting").
_configure_keras()

import importlib  # noqa: E402

from mmrec_lib import errors  # noqa: E402
from mmrec_lib.utils import data_dir, set_seed  # noqa: E402

__version__ = "0.1.0"

# Stage modules load on first use (`mm.text`, `mm.metrics`, ...), so that
# `import mmrec_lib` stays fast and does not import TensorFlow.
_SUBMODULES = {
    "datasets", "text", "audio", "vision", "interactions", "splits", "interest",
    "similarity", "metrics", "evaluation", "fusion", "features", "models", "utils",
    "cache", "media", "retrieval", "blending", "content_models", "fairness", "explain", "sequential", "serving", "privacy", "inference",
}
_LAZY_FUNCTIONS = {"evaluate": "evaluation"}

__all__ = ["errors", "set_seed", "data_dir", "evaluate", "__version__", *sorted(_SUBMODULES)]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"mmrec_lib.{name}")
    if name in _LAZY_FUNCTIONS:
        module = importlib.import_module(f"mmrec_lib.{_LAZY_FUNCTIONS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'mmrec_lib' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES | set(_LAZY_FUNCTIONS))
