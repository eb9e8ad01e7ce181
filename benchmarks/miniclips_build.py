"""Time the MiniClips builds (tiny, small) and the load of a built set; print JSON last."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import _common as common

from mmrec_lib.datasets import miniclips


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mmrec-bench-") as tmp:
        with common.Stopwatch() as tiny_build:
            miniclips.load_miniclips(size="tiny", data_dir=tmp)
        print(f"tiny build: {tiny_build.seconds:.1f} s", flush=True)

        with common.Stopwatch() as small_build:
            small = miniclips.load_miniclips(size="small", data_dir=tmp)
        print(f"small build: {small_build.seconds:.1f} s", flush=True)

        with common.Stopwatch() as load:
            small = miniclips.load_miniclips(size="small", data_dir=tmp)
        print(f"small load: {load.seconds:.2f} s; {small}", flush=True)
        result = {
            "tiny_build_s": round(tiny_build.seconds, 2),
            "small_build_s": round(small_build.seconds, 2),
            "load_s": round(load.seconds, 3),
            "small_cache_mb": round(folder_mb(small.root), 1),
            "cpu_count": os.cpu_count(),
        }
    common.emit(result)


if __name__ == "__main__":
    main()
