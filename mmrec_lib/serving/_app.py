"""The FastAPI app: validated endpoints over a :class:`LiveRecommender`, a bounded ingest queue.

Every request is checked at the edge and answered with a 4xx and a message when it is
wrong; an unexpected exception is logged and answered with a generic 500 (never a
traceback). Uploads go through one worker thread fed by a bounded queue, so a burst of
uploads is refused (503) rather than queued without end; with ``encode_in="process"`` (the
CLI's default) the encoders run in a separate process at a lower CPU priority, so encoding
a clip neither holds this process's interpreter lock nor takes the cores from the queries.
A query itself is NumPy only (see :class:`LiveRecommender`).
"""

from __future__ import annotations

import concurrent.futures
import gc
import itertools
import logging
import os
import queue
import re
import tempfile
import threading
import time
from pathlib import Path

from mmrec_lib._validation import check_choice, check_int, check_number
from mmrec_lib.errors import DataError, MmrecError, ParameterError
from mmrec_lib.serving._index import INDEX_KINDS
from mmrec_lib.serving._state import LiveRecommender

__all__ = ["create_app", "ServingError"]

logger = logging.getLogger("mmrec_lib.serving")

STATIC = Path(__file__).resolve().parent / "static"
_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
_UNSAFE_NAME = re.compile(r"(^[/\\])|(^[A-Za-z]:)|(\.\.)|[\x00-\x1f/\\]")
_MAX_JSON_BYTES = 4096
_MAX_TEXT = {"title": 200, "description": 2000, "tags": 500}


def error(status: int, message: str):
    """The JSON body of every refusal: ``{"error": message, "status": status}``."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "status": status}, status_code=status)


class ServingError(MmrecError):
    """A request the server refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _check_id(name: str, value) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ServingError(422, f"{name}={value!r} must be 1-64 characters of letters, digits, "
                                "'_', '-' or '.' (not starting with '.')")
    return value


def _check_k(value, max_k: int) -> int:
    if isinstance(value, str):
        if not re.fullmatch(r"[+-]?\d{1,12}", value.strip()):
            raise ServingError(422, f"k={value!r} must be an integer in [1, {max_k}]")
        value = int(value)
    try:
        return check_int("k", value, low=1, high=max_k)
    except ParameterError as error:
        raise ServingError(422, str(error)) from None


class _IngestJob:
    def __init__(self, path: Path, title: str, description: str, tags: str):
        self.path, self.title, self.description, self.tags = path, title, description, tags
        self.future: concurrent.futures.Future = concurrent.futures.Future()
        self.queued_at = time.perf_counter()


class _Service:
    """State shared by the endpoints: recommender, catalogue metadata, ingest worker."""

    def __init__(self, live: LiveRecommender, dataset, encoder, *, upload_dir: Path,
                 max_upload_bytes: int, queue_size: int, max_k: int, ingest_timeout_s: float,
                 encode_in: str = "thread", encoder_threads: int = 1, encoder_nice: int = 5):
        self.live, self.dataset, self.encoder = live, dataset, encoder
        self.encode_in, self.encoder_threads = encode_in, encoder_threads
        self.encoder_nice = encoder_nice
        self._pool = None
        self._ready: concurrent.futures.Future | None = None
        self.upload_dir = upload_dir
        self.max_upload_bytes, self.max_k = max_upload_bytes, max_k
        self.ingest_timeout_s = ingest_timeout_s
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.titles = dict(zip(dataset.items["item_id"].astype(str),
                               dataset.items["title_en"].astype(str)))
        self.files: dict[str, tuple[Path, Path]] = {}
        self._counter = itertools.count(1)
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._stop = threading.Event()

    # ------------------------------------------------------------------ files

    def item_files(self, item_id: str) -> tuple[Path, Path]:
        if item_id in self.files:
            return self.files[item_id]
        return self.dataset.clip_path(item_id), self.dataset.cover_path(item_id)

    def describe(self, entry: dict) -> dict:
        item_id = entry["item_id"]
        return {**entry, "title": self.titles.get(item_id, item_id),
                "cover": f"/items/{item_id}/cover", "clip": f"/items/{item_id}/clip",
                "live": item_id in self.files}

    # ------------------------------------------------------------------ ingest worker

    def start(self) -> None:
        if self.encode_in == "process" and self._pool is None:
            # spawns the encoding process, which loads and warms up the encoders
            self._ready = self.pool().submit(os.getpid)
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._stop.clear()
                self._worker = threading.Thread(target=self._work, name="mmrec-ingest",
                                                daemon=True)
                self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    @property
    def encoder_ready(self) -> bool:
        """False while the encoding process is still starting."""
        return self.encode_in == "thread" or (self._ready is not None and self._ready.done())

    def pool(self):
        """The one-process pool that encodes clips (created on first use)."""
        if self._pool is None:
            import multiprocessing

            from mmrec_lib.serving._encode import init_process

            first = str(self.dataset.items["item_id"].iloc[0])
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=init_process,
                initargs=(self.encoder, str(self.dataset.clip_path(first)),
                          self.encoder_threads, self.encoder_nice))
        return self._pool

    def encode(self, clip: Path, job: _IngestJob, cover: Path):
        """The clip's modality vectors: in this process (threads) or in the encoding process.

        In a separate process the encoder's Python work does not compete with the queries
        for the interpreter lock, and its TensorFlow uses ``encoder_threads`` threads.
        """
        if self.encode_in == "thread":
            return self.encoder.encode(clip, title=job.title, description=job.description,
                                       tags=job.tags, cover_path=cover)
        from mmrec_lib.serving._encode import encode_in_process

        future = self.pool().submit(encode_in_process, str(clip), job.title, job.description,
                                    job.tags, str(cover))
        try:
            return future.result(timeout=self.ingest_timeout_s)
        except concurrent.futures.process.BrokenProcessPool:
            logger.error("the encoding process died; a new one starts with the next upload")
            self._pool = None
            raise

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(self._ingest(job))
                except BaseException as error:  # handed to the request that waits for it
                    job.future.set_exception(error)
            self.queue.task_done()

    def _ingest(self, job: _IngestJob) -> dict:
        started = time.perf_counter()
        item_id = f"live{next(self._counter):05d}"
        while item_id in self.titles:
            item_id = f"live{next(self._counter):05d}"
        clip = self.upload_dir / f"{item_id}.mp4"
        cover = self.upload_dir / f"{item_id}.jpg"
        job.path.replace(clip)
        try:
            vectors, timings = self.encode(clip, job, cover)
            start = time.perf_counter()
            self.live.add_item(item_id, vectors)
            timings["item_tower_s"] = time.perf_counter() - start
        except BaseException:
            clip.unlink(missing_ok=True)
            cover.unlink(missing_ok=True)
            raise
        self.files[item_id] = (clip, cover)
        self.titles[item_id] = job.title
        done = time.perf_counter()
        timings.update(queued_s=started - job.queued_at, encode_total_s=done - started,
                       total_s=done - job.queued_at)
        logger.info("ingested %s (%r) in %.2f s", item_id, job.title, timings["total_s"])
        return {"item_id": item_id, "title": job.title,
                "timings": {key: round(value, 4) for key, value in timings.items()}}

    def submit(self, job: _IngestJob) -> concurrent.futures.Future:
        self.start()
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            job.path.unlink(missing_ok=True)
            raise ServingError(503, f"the ingest queue is full ({self.queue.maxsize} clips "
                                    "waiting); retry in a few seconds") from None
        return job.future


class _CatchAll:
    """ASGI middleware, the last line of defence: log an unhandled error, answer a plain 500."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not started:  # otherwise the connection just closes
                await error(500, "internal server error (logged on the server)")(
                    scope, receive, send)


def create_app(model, dataset, *, encoder=None, upload_dir: str | os.PathLike | None = None,
               max_upload_mb: float = 20.0, queue_size: int = 4, max_k: int = 100,
               ingest_timeout_s: float = 120.0, encode_in: str = "thread",
               encoder_threads: int = 1, encoder_nice: int = 5, index: str = "exact"):
    """The FastAPI app serving ``model`` over ``dataset`` (see :mod:`mmrec_lib.serving`).

    Parameters
    ----------
    model : MultimodalRecommender or path of a folder saved by its ``save``
    dataset : MiniClips
        The catalogue: titles, clips and covers, and the statistics the encoder needs.
    encoder : ClipEncoder, optional
        Default: :func:`mmrec_lib.serving.encoder_for` the model (settings from its
        ``serving.json`` when the model folder has one).
    upload_dir : path, optional
        Where uploaded clips and their covers are kept (default: a new temporary folder).
    max_upload_mb : float
        Larger uploads are refused with 413.
    queue_size : int
        Uploads waiting to be encoded; one more is refused with 503.
    max_k : int
        The largest ``k`` a query may ask for.
    ingest_timeout_s : float
        An upload not encoded within this time is answered with 504.
    encode_in : {"thread", "process"}
        Encode uploads in a worker thread of this process, or in one separate process
        (started at first use; it keeps the queries' latency low while a clip is encoded).
    encoder_threads : int
        TensorFlow threads of the encoding process.
    encoder_nice : int in [0, 19]
        How much lower the encoding process's CPU priority is (``os.nice``): on a busy
        machine the queries go first and an upload waits a little longer.
    index : str
        The item index, one of :data:`mmrec_lib.serving.INDEX_KINDS` (``"exact"``: NumPy;
        ``"faiss-exact"``, ``"faiss-hnsw"``: :mod:`mmrec_lib.retrieval`).
    """
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from mmrec_lib.serving._model import encoder_for, load_model

    max_upload_mb = check_number("max_upload_mb", max_upload_mb, low=0, low_inclusive=False)
    queue_size = check_int("queue_size", queue_size)
    max_k = check_int("max_k", max_k)
    check_choice("encode_in", encode_in, ("thread", "process"))
    encoder_threads = check_int("encoder_threads", encoder_threads)
    encoder_nice = check_int("encoder_nice", encoder_nice, low=0, high=19)
    check_choice("index", index, INDEX_KINDS)
    ingest_timeout_s = check_number("ingest_timeout_s", ingest_timeout_s, low=0,
                                    low_inclusive=False)
    model_dir = None
    if isinstance(model, (str, os.PathLike)):
        model_dir = Path(model)
        model = load_model(model_dir)
    if encoder is None:
        encoder = encoder_for(model, dataset, model_dir=model_dir)
    live = LiveRecommender(model, index=index)
    folder = Path(upload_dir) if upload_dir is not None else Path(
        tempfile.mkdtemp(prefix="mmrec-uploads-"))
    folder.mkdir(parents=True, exist_ok=True)
    service = _Service(live, dataset, encoder, upload_dir=folder,
                       max_upload_bytes=int(max_upload_mb * 2**20), queue_size=queue_size,
                       max_k=max_k, ingest_timeout_s=ingest_timeout_s, encode_in=encode_in,
                       encoder_threads=encoder_threads, encoder_nice=encoder_nice)
    live.item_tower({})  # traces the item tower once, before the first upload

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):
        service.start()
        # Everything loaded so far (TensorFlow, the model, the catalogue: millions of
        # objects) leaves the garbage collector's generations: a full collection then
        # scans only what requests allocate, instead of pausing every query for ~100 ms.
        gc.collect()
        gc.freeze()
        yield
        service.stop()

    app = FastAPI(title="mmrec live recommender", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.service = service


    @app.exception_handler(ServingError)
    async def serving_error(_request, exc: ServingError):
        return error(exc.status, str(exc))

    @app.exception_handler(ParameterError)
    async def parameter_error(_request, exc):
        return error(422, str(exc))

    @app.exception_handler(DataError)
    async def data_error(_request, exc):
        return error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        messages = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()]
        return error(422, "; ".join(messages) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail))

    app.add_middleware(_CatchAll)

    from mmrec_lib.serving._routes import add_routes

    add_routes(app, service)
    return app
