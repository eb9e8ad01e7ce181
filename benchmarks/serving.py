"""Load test of the live recommender on 127.0.0.1: query latency while clips are ingested.

Run: ``python benchmarks/serving.py [--queries 2000 --concurrency 8 --ingests 10]``.

Starts ``python -m mmrec_lib.serving`` (MiniClips tiny, text + musicnn audio + hand-made
visual features, concat fusion; trained once into the cache) as a subprocess on a free
localhost port, then sends ``--queries`` GET requests (/recommend for known and unknown
users, /similar; ``--concurrency`` at a time) while uploading ``--ingests`` MiniClips clips
one after the other. Everything is bounded: the request count, a 10 s timeout per request
and ``--max-seconds`` for the whole run; the server is stopped at the end.

An upload's time is from sending it to the answer; the answer comes after the clip is in
the live index, so it is the time until the clip is recommendable (checked with /similar).
``server_compute_p99_ms`` is the time spent inside the query handlers (ranking and score
parts), which separates the model's cost from HTTP and from waiting for a busy CPU.

The last line of stdout is one JSON object with ``p50_ms``, ``p99_ms`` (query latency
under load), ``requests_per_s``, ``ingest_p50_s``, ``ingest_p95_s``, the counts of
errors, and ``cpu_count`` (other jobs may share the cores: the figures are upper bounds).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import numpy as np

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


async def wait_ready(client, process, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            response = await client.get("/health")
            if response.status_code == 200 and response.json()["encoder_ready"]:
                return
        except Exception:  # not listening yet
            pass
        await asyncio.sleep(0.5)
    raise SystemExit("the server did not start in time")


async def run(args, base_url: str, process, clips: list[Path]) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=args.concurrency + 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits) as client:
        await wait_ready(client, process, time.monotonic() + args.startup_seconds)
        users = (await client.get("/users", params={"limit": 1000})).json()["users"]
        rng = np.random.default_rng(0)
        plan = []
        for n in range(args.queries):
            kind = rng.random()
            if kind < 0.7:
                plan.append(("/recommend", {"user": users[rng.integers(len(users))], "k": 10}))
            elif kind < 0.8:
                plan.append(("/recommend", {"user": f"cold{n}", "k": 10}))
            else:
                plan.append(("/similar", {"item": f"i{rng.integers(60):04d}", "k": 10}))
        latencies: list[float] = []
        server_ms: list[float] = []
        errors = {"query": 0, "ingest": 0, "not_recommendable": 0}
        queue: asyncio.Queue = asyncio.Queue()
        for request in plan:
            queue.put_nowait(request)
        stop_at = time.monotonic() + args.max_seconds

        async def query_worker():
            while not queue.empty() and time.monotonic() < stop_at:
                path, params = queue.get_nowait()
                start = time.perf_counter()
                try:
                    response = await client.get(path, params=params)
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors["query"] += not ok
                if ok:
                    server_ms.append(response.json()["elapsed_ms"])

        ingest_times: list[float] = []
        server_times: list[float] = []
        steps: list[dict] = []

        async def ingest_worker():
            await asyncio.sleep(0.2)  # let the queries start first
            for n in range(args.ingests):
                if time.monotonic() >= stop_at:
                    break
                clip = clips[n % len(clips)]
                start = time.perf_counter()
                try:
                    response = await client.post(
                        "/ingest", files={"file": (clip.name, clip.read_bytes(), "video/mp4")},
                        data={"title": f"benchmark upload {n}", "tags": "benchmark"},
                        timeout=60.0)
                except httpx.HTTPError as exc:
                    errors["ingest"] += 1
                    print(f"upload {n}: {type(exc).__name__} {exc}")
                    continue
                elapsed = time.perf_counter() - start
                if response.status_code != 200:
                    errors["ingest"] += 1
                    print(f"upload {n}: {response.status_code} {response.text[:200]}")
                    continue
                body = response.json()
                similar = await client.get("/similar", params={"item": body["item_id"], "k": 5})
                errors["not_recommendable"] += similar.status_code != 200
                ingest_times.append(elapsed)
                server_times.append(body["timings"]["total_s"])
                steps.append(body["timings"])

        started = time.perf_counter()
        await asyncio.gather(ingest_worker(), *[query_worker() for _ in range(args.concurrency)])
        wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "queries": len(latencies), "concurrency": args.concurrency, "ingests": len(ingest_times),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        "requests_per_s": round(len(latencies) / wall, 1),
        # the handler's own compute (ranking, explanation), without HTTP and waiting for CPU
        "server_compute_p50_ms": (round(float(np.percentile(server_ms, 50)), 3)
                                  if server_ms else None),
        "server_compute_p99_ms": (round(float(np.percentile(server_ms, 99)), 3)
                                  if server_ms else None),
        "ingest_p50_s": round(float(np.percentile(ingest_times, 50)), 3) if ingest_times else None,
        "ingest_p95_s": round(float(np.percentile(ingest_times, 95)), 3) if ingest_times else None,
        "ingest_server_p95_s": (round(float(np.percentile(server_times, 95)), 3)
                                if server_times else None),
        # mean seconds of each step of an upload, measured by the server
        "ingest_steps_mean_s": {key: round(float(np.mean([t[key] for t in steps])), 3)
                                for key in (steps[0] if steps else {})},
        "errors": errors, "wall_s": round(wall, 2), "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = common.make_parser(__doc__, queries=2000, concurrency=8, ingests=10,
                                max_seconds=(300, "cap on the load phase"),
                                startup_seconds=(900, "cap on server start (first run trains)"))
    args = parser.parse_args()
    if not (1 <= args.queries <= 20_000 and 1 <= args.concurrency <= 32
            and 0 <= args.ingests <= 100):
        parser.error("keep the load bounded: queries <= 20000, concurrency <= 32, ingests <= 100")
    from mmrec_lib.datasets.miniclips import load_miniclips
    from mmrec_lib.utils import data_dir

    dataset = load_miniclips(size="tiny")
    clips = [dataset.clip_path(i) for i in dataset.items["item_id"][:10]]
    port = free_port()
    model_dir = data_dir() / "serving" / "miniclips-tiny-model"
    with tempfile.TemporaryDirectory(prefix="mmrec-bench-uploads-") as uploads:
        command = [sys.executable, "-m", "mmrec_lib.serving", "--model-dir", str(model_dir),
                   "--port", str(port), "--upload-dir", uploads,
                   "--queue-size", str(max(2, args.ingests))]
        log = Path(uploads) / "server.log"
        with open(log, "w") as server_log:
            process = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONPATH": str(
                                           Path(__file__).resolve().parents[1])})
            try:
                result = asyncio.run(run(args, f"http://{HOST}:{port}", process, clips))
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        lines = log.read_text().splitlines()
        tail = [line for line in lines if "ERROR" in line or "Error" in line][:10] + lines[-2:]
    print("server log tail:", *tail, sep="\n  ")
    print(f"{result['queries']} queries at concurrency {result['concurrency']}: "
          f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
          f"{result['requests_per_s']} req/s; {result['ingests']} uploads: "
          f"p50 {result['ingest_p50_s']} s, p95 {result['ingest_p95_s']} s")
    result["targets_met"] = {
        "query_p99_below_50ms": result["p99_ms"] is not None and result["p99_ms"] < 50,
        "ingest_p95_below_2s": result["ingest_p95_s"] is not None
        and result["ingest_p95_s"] < 2}
    result["peak_rss_mb"] = round(common.peak_rss_mb(), 1)
    common.emit(result)


if __name__ == "__main__":
    main()
