"""Execute chapters with another seed and fail on the first cell that raises.

The parameters cell of every chapter invites the reader to change ``SEED``; an assert
that holds for seed 0 only would then stop a student's lab. This script rewrites the
``SEED = ...`` line of the cell tagged ``parameters`` (nothing else), executes the
notebook in memory (the file on disk is never written) and reports per chapter how long
it took. ``make seed-check`` runs it on the fast chapters; run it by hand on all of them
after a change to the data generator:

    python tools/run_with_seed.py --seed 1 notebooks/02_text_understanding.ipynb ...

``--jobs 2`` runs two chapters at a time (each in its own process and kernel, with its own
numba cache folder, see ``conftest.py``); the report still lists them in the given order.

Exit status 0 when every chapter ran without an error, 1 otherwise.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

SEED_LINE = re.compile(r"^(SEED\s*=\s*)(\d+)(.*)$", re.MULTILINE)


def with_seed(notebook: nbformat.NotebookNode, seed: int) -> nbformat.NotebookNode:
    """Return the notebook with ``SEED = <seed>`` in its parameters cell.

    Raises ``ValueError`` when the notebook has no parameters cell or that cell sets no
    ``SEED``: the check would silently run the default seed otherwise.
    """
    cells = [cell for cell in notebook.cells
             if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(cells)}")
    cell = cells[0]
    source, count = SEED_LINE.subn(lambda m: f"{m.group(1)}{seed}{m.group(3)}", cell.source)
    if count != 1:
        raise ValueError(f"the parameters cell must set SEED exactly once (found {count})")
    cell.source = source
    return notebook


def run(path: Path, seed: int, timeout: int) -> float:
    """Execute ``path`` with ``seed`` in its own directory; return the wall time in seconds."""
    notebook = with_seed(nbformat.read(path, as_version=4), seed)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            extra_arguments=["--IPKernelApp.capture_fd_output=False"])
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def check(path: Path, seed: int, timeout: int) -> tuple[bool, str]:
    """Run one chapter; return (passed, the report line(s))."""
    try:
        seconds = run(path, seed, timeout)
    except CellExecutionError as error:
        # The first lines name the cell and the assertion; the traceback follows.
        return False, f"FAIL {path.name} (SEED={seed}):\n{str(error)[:3000]}"
    except ValueError as error:
        return False, f"FAIL {path.name}: {error}"
    return True, f"ok   {path.name} (SEED={seed}) in {seconds:.0f} s"


def _own_numba_cache() -> None:
    # Two processes compiling librosa's kernels into one numba cache corrupt it (conftest.py).
    if "NUMBA_CACHE_DIR" not in os.environ:
        folder = Path(tempfile.gettempdir()) / f"mmrec-numba-cache-seed-{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--jobs", type=int, default=1,
                        help="chapters run at once (0 or 1: one after the other)")
    args = parser.parse_args(argv)
    if args.jobs < 0:
        parser.error(f"--jobs must be >= 0, got {args.jobs}")
    failed = []

    def report(path: Path, passed: bool, line: str) -> None:
        print(line, flush=True)
        if not passed:
            failed.append(path.name)

    if args.jobs <= 1:
        for path in args.notebooks:
            report(path, *check(path, args.seed, args.timeout))
    else:
        with concurrent.futures.ProcessPoolExecutor(args.jobs, initializer=_own_numba_cache
                                                    ) as pool:
            futures = [pool.submit(check, path, args.seed, args.timeout)
                       for path in args.notebooks]
            for path, future in zip(args.notebooks, futures, strict=True):
                report(path, *future.result())
    if failed:
        print(f"{len(failed)} chapter(s) failed with SEED={args.seed}: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
