"""Time the MiniClips builds (tiny, small) and the load of a built set; print JSON last."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MMREC_PROGRESS", "0")

from mmrec_lib.datasets import miniclips  # noqa: E402


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mmrec-bench-") as tmp:
        start = time.perf_counter()
        miniclips.load_miniclips(size="tiny", data_dir=tmp)
        tiny_build = time.perf_counter() - start
        print(f"tiny build: {tiny_build:.1f} s", flush=True)

        start = time.perf_counter()
        small = miniclips.load_miniclips(size="small", data_dir=tmp)
        small_build = time.perf_counter() - start
        print(f"small build: {small_build:.1f} s", flush=True)

        start = time.perf_counter()
        small = miniclips.load_miniclips(size="small", data_dir=tmp)
        load = time.perf_counter() - start
        print(f"small load: {load:.2f} s; {small}", flush=True)
        result = {
            "tiny_build_s": round(tiny_build, 2),
            "small_build_s": round(small_build, 2),
            "load_s": round(load, 3),
            "small_cache_mb": round(folder_mb(small.root), 1),
            "cpu_count": os.cpu_count(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
