"""Load test of the live recommender on 127.0.0.1: query latency while clips are ingested.

Run: ``python benchmarks/serving.py [--queries 20000 --concurrency 8 --ingests 10]``.

Starts ``python -m mmrec_lib.serving`` (MiniClips tiny, text + musicnn audio + hand-made
visual features, concat fusion; trained once into the cache) as a subprocess on a free
localhost port, then uploads ``--ingests`` MiniClips clips one after the other and, for as
long as they are being ingested, keeps ``--concurrency`` GET requests in flight (closed
loop: each of the ``--concurrency`` clients sends its next request when the previous answer
arrives; /recommend for known and unknown users, /similar). Every measured query overlaps
an upload. Before the uploads, ``--baseline-queries`` of the same mix warm the server up
(not measured); after them, as many run again with no upload (``no_ingest_p99_ms``): what
the machine gives when nothing else runs in the service. Everything is bounded: at most ``--queries`` requests, a 10 s timeout per
request and ``--max-seconds`` for the whole load phase; the server is stopped at the end.

The queries go over plain keep-alive HTTP/1.1 connections (a few lines of asyncio, not an
HTTP library), so the client's own CPU cost, which shares the two cores with the server,
stays small; ``--client httpx`` uses httpx instead, for comparison.

An upload's time is from sending it to the answer; the answer comes after the clip is in
the live index, so it is the time until the clip is recommendable (checked with /similar).
``server_compute_p99_ms`` is the time spent inside the query handlers (ranking and score
parts), which separates the model's cost from HTTP and from waiting for a busy CPU.

The last line of stdout is one JSON object with ``p50_ms``, ``p99_ms`` (query latency
under load), ``requests_per_s``, ``ingest_p50_s``, ``ingest_p95_s``, the load settings,
the counts of errors, ``cpu_count`` and the load average before and after (other jobs may
share the cores: the figures are then upper bounds).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

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


class RawClient:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads ``Content-Length`` bodies."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def get(self, path: str, params: dict) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        target = f"{path}?{urlencode(params)}"
        self.writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next(int(line.split(":", 1)[1]) for line in lines[1:]
                      if line.lower().startswith("content-length:"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run(args, base_url: str, process, clips: list[Path]) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=args.concurrency + 2)
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits) as client:
        await wait_ready(client, process, time.monotonic() + args.startup_seconds)
        users = (await client.get("/users", params={"limit": 1000})).json()["users"]
        items = (await client.get("/health")).json()["items"]
        rng = np.random.default_rng(0)
        plan = []
        for n in range(args.queries):
            kind = rng.random()
            if kind < 0.7:
                plan.append(("/recommend", {"user": users[rng.integers(len(users))], "k": 10}))
            elif kind < 0.8:
                plan.append(("/recommend", {"user": f"cold{n}", "k": 10}))
            else:
                plan.append(("/similar", {"item": f"i{rng.integers(min(items, 60)):04d}",
                                          "k": 10}))
        latencies: list[float] = []
        server_ms: list[float] = []
        errors = {"query": 0, "ingest": 0, "not_recommendable": 0}
        queue: asyncio.Queue = asyncio.Queue()
        for request in plan:
            queue.put_nowait(request)

        def baseline_queue() -> asyncio.Queue:
            baseline: asyncio.Queue = asyncio.Queue()
            for request in plan[: args.baseline_queries]:
                baseline.put_nowait(request)
            return baseline
        stop_at = time.monotonic() + args.max_seconds
        ingest_done = asyncio.Event()
        host, port = base_url.removeprefix("http://").split(":")

        async def query_worker(queue, latencies, server_ms, until: asyncio.Event):
            raw = RawClient(host, int(port)) if args.client == "raw" else None
            try:
                while not queue.empty() and not until.is_set() and time.monotonic() < stop_at:
                    path, params = queue.get_nowait()
                    start = time.perf_counter()
                    try:
                        if raw is not None:
                            status, body = await asyncio.wait_for(raw.get(path, params), 10.0)
                        else:
                            response = await client.get(path, params=params)
                            status, body = response.status_code, response.content
                        ok = status == 200
                    except (TimeoutError, OSError, ValueError, httpx.HTTPError):
                        ok, raw = False, (RawClient(host, int(port)) if raw else None)
                    latencies.append(time.perf_counter() - start)
                    errors["query"] += not ok
                    if ok:
                        server_ms.append(json.loads(body)["elapsed_ms"])
            finally:
                if raw is not None:
                    raw.close()

        ingest_times: list[float] = []
        server_times: list[float] = []
        steps: list[dict] = []

        async def ingest_worker():
            try:
                await ingest_all()
            finally:
                ingest_done.set()

        async def ingest_all():
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

        async def load(queue, latencies, server_ms, until) -> float:
            """Closed loop of ``concurrency`` clients; the seconds until the last answer."""
            started = time.perf_counter()
            await asyncio.gather(*[query_worker(queue, latencies, server_ms, until)
                                   for _ in range(args.concurrency)])
            return time.perf_counter() - started

        # Warm-up, not measured: the first ~1000 queries after start are several times
        # slower (p50 26 ms against 4 ms later, measured with no upload running).
        await load(baseline_queue(), [], [], asyncio.Event())
        stop_at = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        wall, _ = await asyncio.gather(load(queue, latencies, server_ms, ingest_done),
                                       ingest_worker())
        ingest_wall = time.perf_counter() - started
        # The same closed loop with no upload running: what the machine (and the other jobs
        # on it) give when the service does nothing else.
        stop_at = time.monotonic() + args.max_seconds
        idle, idle_server = [], []
        await load(baseline_queue(), idle, idle_server, asyncio.Event())
    ms = np.array(latencies) * 1000
    idle_ms = np.array(idle) * 1000
    return {
        "queries": len(latencies), "concurrency": args.concurrency, "ingests": len(ingest_times),
        "client": args.client, "max_queries": args.queries, "max_seconds": args.max_seconds,
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
        "max_ms": round(float(ms.max()), 2) if len(ms) else None,
        "requests_per_s": round(len(latencies) / wall, 1),
        # the same query mix and concurrency with no upload running
        "no_ingest_queries": len(idle),
        "no_ingest_p50_ms": round(float(np.percentile(idle_ms, 50)), 2) if len(idle) else None,
        "no_ingest_p99_ms": round(float(np.percentile(idle_ms, 99)), 2) if len(idle) else None,
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
        "errors": errors, "wall_s": round(wall, 2), "ingest_wall_s": round(ingest_wall, 2), "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = common.make_parser(__doc__, queries=20_000, concurrency=8, ingests=10,
                                max_seconds=(120, "cap on the load phase"),
                                startup_seconds=(900, "cap on server start (first run trains)"),
                                encoder_nice=(5, "os.nice of the encoding process"),
                                baseline_queries=(1000, "warm-up queries, and as many with "
                                                        "no upload after the uploads"))
    parser.add_argument("--client", default="raw", choices=["raw", "httpx"],
                        help="the query client: plain asyncio HTTP/1.1 (default) or httpx")
    parser.add_argument("--index", default="exact",
                        choices=["exact", "faiss-exact", "faiss-hnsw"])
    args = parser.parse_args()
    if not (1 <= args.queries <= 50_000 and 1 <= args.concurrency <= 32
            and 1 <= args.ingests <= 100 and 1 <= args.max_seconds <= 600
            and 0 <= args.encoder_nice <= 19 and 0 <= args.baseline_queries <= 20_000):
        parser.error("keep the load bounded: queries <= 50000, concurrency <= 32, "
                     "1 <= ingests <= 100, max-seconds <= 600, encoder-nice in [0, 19]")
    from mmrec_lib.datasets.miniclips import load_miniclips
    from mmrec_lib.utils import data_dir

    dataset = load_miniclips(size="tiny")
    clips = [dataset.clip_path(i) for i in dataset.items["item_id"][:10]]
    port = free_port()
    model_dir = data_dir() / "serving" / "miniclips-tiny-model"
    with tempfile.TemporaryDirectory(prefix="mmrec-bench-uploads-") as uploads:
        command = [sys.executable, "-m", "mmrec_lib.serving", "--model-dir", str(model_dir),
                   "--port", str(port), "--upload-dir", uploads,
                   "--queue-size", str(max(2, args.ingests)), "--index", args.index,
                   "--encoder-nice", str(args.encoder_nice)]
        log = Path(uploads) / "server.log"
        with open(log, "w") as server_log:
            process = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONPATH": str(
                                           Path(__file__).resolve().parents[1])})
            load_before = os.getloadavg()
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
          f"{result['requests_per_s']} req/s (no upload running: p99 "
          f"{result['no_ingest_p99_ms']} ms); {result['ingests']} uploads: "
          f"p50 {result['ingest_p50_s']} s, p95 {result['ingest_p95_s']} s")
    result["targets_met"] = {
        "query_p99_below_50ms": result["p99_ms"] is not None and result["p99_ms"] < 50,
        "ingest_p95_below_2s": result["ingest_p95_s"] is not None
        and result["ingest_p95_s"] < 2}
    result.update(index=args.index, encoder_nice=args.encoder_nice,
                  load_avg_1min_before=round(load_before[0], 2),
                  load_avg_1min_after=round(os.getloadavg()[0], 2))
    result["peak_rss_mb"] = round(common.peak_rss_mb(), 1)
    common.emit(result)


if __name__ == "__main__":
    main()
