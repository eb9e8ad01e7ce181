"""mmrec_lib: the library behind the mmrec notebook series (audio/video recommendation)."""

from mmrec_lib._env import configure_keras as _configure_keras

# This must run before anything imports TensorFlow (see DESIGN.md, Library rules).
_configure_keras()

from mmrec_lib import errors  # noqa: E402
from mmrec_lib.utils import data_dir, set_seed  # noqa: E402

__version__ = "0.1.0"

__all__ = ["errors", "set_seed", "data_dir", "__version__"]
