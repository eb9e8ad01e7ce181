"""Helpers shared by the scripts in benchmarks/: set-up, command line, clock, memory, JSON.

Every benchmark imports this module before the library (``import _common as common``):
it hides the progress bars and selects Keras 2 (and quiet start-up) before anything
loads TensorFlow. The scripts run as ``python benchmarks/<name>.py``, which puts this
folder on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Iterable

# Progress bars would interleave with the figures the scripts print.
os.environ.setdefault("MMREC_PROGRESS", "0")

import mmrec_lib  # noqa: E402,F401  (Keras 2 before TensorFlow loads)

__all__ = ["Stopwatch", "emit", "make_parser", "peak_rss_mb"]


def make_parser(doc: str, *, seeds: Iterable[int] | None = None, quick: str | None = None,
                **int_options: int | tuple[int, str]) -> argparse.ArgumentParser:
    """An argument parser described by the first line of the script's docstring ``doc``.

    ``seeds`` adds ``--seeds`` (one or more integers, these by default); ``quick``
    adds a ``--quick`` flag with that help text (each script decides what it
    shortens). Every other keyword adds an integer option: ``batch_size=64`` is
    ``--batch-size`` with default 64, ``clips=(100, "clips per measurement")``
    also has a help text.

    >>> make_parser("Demo.", batch_size=64).parse_args([]).batch_size
    64
    """
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if seeds is not None:
        parser.add_argument("--seeds", type=int, nargs="+", default=list(seeds))
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    for name, spec in int_options.items():
        default, help_text = spec if isinstance(spec, tuple) else (spec, None)
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default,
                            help=help_text)
    return parser


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Stopwatch:
    """Wall-clock and CPU (all threads) seconds, from creation or from entering a block.

    ``with Stopwatch() as clock: work()`` sets ``clock.seconds`` and
    ``clock.cpu_seconds`` when the block ends; ``clock.elapsed()`` reads a running
    clock (for a total over a whole script).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._restart()

    def _restart(self) -> None:
        self._wall_start = time.perf_counter()
        self._cpu_start = time.process_time()

    def elapsed(self) -> float:
        return time.perf_counter() - self._wall_start

    def __enter__(self) -> Stopwatch:
        self._restart()
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds = self.elapsed()
        self.cpu_seconds = time.process_time() - self._cpu_start


def emit(result: dict) -> None:
    """Print ``result`` as one JSON object: the last line of stdout, which tools read."""
    print(json.dumps(result), flush=True)
