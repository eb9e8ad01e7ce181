"""The endpoints of the live recommender (see :func:`mmrec_lib.serving.create_app`)."""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path

from fastapi import Request

from mmrec_lib.serving._app import (
    _MAX_JSON_BYTES,
    _MAX_TEXT,
    _UNSAFE_NAME,
    STATIC,
    ServingError,
    _check_id,
    _check_k,
    _IngestJob,
)

__all__ = ["add_routes"]

logger = logging.getLogger("mmrec_lib.serving")

_MP4_BRANDS = (b"ftyp",)
_VIDEO_TYPES = ("video/mp4", "application/octet-stream", "video/quicktime", "")


def _content_type(request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _check_length(request, limit: int, what: str) -> None:
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise ServingError(400, f"Content-Length {length!r} is not a number")
        if int(length) > limit:
            raise ServingError(413, f"{what} of {int(length)} bytes is larger than the limit "
                                    f"of {limit} bytes")


def _text_field(form, name: str, *, required: bool) -> str:
    value = form.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ServingError(422, f"the form field {name!r} is required and must not be "
                                    "empty")
        return ""
    if not isinstance(value, str):
        raise ServingError(422, f"the form field {name!r} must be text, not a file")
    if "\x00" in value:
        raise ServingError(400, f"the form field {name!r} contains a NUL character")
    if len(value) > _MAX_TEXT[name]:
        raise ServingError(422, f"the form field {name!r} has {len(value)} characters; the "
                                f"limit is {_MAX_TEXT[name]}")
    return value.strip()


def _check_filename(name) -> None:
    from urllib.parse import unquote

    if not name:
        raise ServingError(400, "the uploaded file has no file name")
    decoded = unquote(name)  # RFC 7578 lets clients percent-encode the name: check both
    if any(_UNSAFE_NAME.search(n) or n != Path(n).name for n in (name, decoded)):
        raise ServingError(400, f"file name {name!r} is not allowed: give a plain name such "
                                "as clip.mp4 (no folders, '..', absolute paths or control "
                                "characters)")
    if not name.lower().endswith(".mp4"):
        raise ServingError(415, f"file name {name!r}: only .mp4 clips are accepted")


def add_routes(app, service) -> None:
    """Register every endpoint of the service on ``app``."""
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles

    live = service.live
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/health")
    async def health():
        return JSONResponse({"status": "ok", "items": live.num_items,
                             "users": len(live.histories),
                             "ingest_queue": service.queue.qsize(),
                             "ingest_queue_size": service.queue.maxsize,
                             "encoder_ready": service.encoder_ready,
                             "modalities": live.modalities, "parts_exact": live.parts_exact})

    @app.get("/users")
    async def users(limit: str = "50"):
        limit = _check_k(limit, 10_000)
        return JSONResponse({"users": sorted(live.histories)[:limit]})

    @app.get("/recommend")
    async def recommend(user: str | None = None, k: str = "10"):
        if user is None:
            raise ServingError(422, "the query parameter 'user' is required")
        user = _check_id("user", user)
        k = _check_k(k, service.max_k)
        start = time.perf_counter()
        result = live.recommend(user, k)
        result["items"] = [service.describe(entry) for entry in result["items"]]
        return JSONResponse({"user": user, "k": k, **result, "parts_exact": live.parts_exact,
                             "parts_note": live.parts_note,
                             "history": list(live.histories.get(user, []))[-10:],
                             "elapsed_ms": round(1000 * (time.perf_counter() - start), 3)})

    def known_item(item_id) -> str:
        item_id = _check_id("item", item_id)
        if not live.has_item(item_id):
            raise ServingError(404, f"item {item_id!r} is not in the catalogue")
        return item_id

    @app.get("/similar")
    async def similar(item: str | None = None, k: str = "10"):
        if item is None:
            raise ServingError(422, "the query parameter 'item' is required")
        item = known_item(item)
        k = _check_k(k, service.max_k)
        start = time.perf_counter()
        items = [service.describe(entry) for entry in live.similar(item, k)]
        return JSONResponse({"item": service.describe({"item_id": item}), "k": k,
                             "items": items,
                             "elapsed_ms": round(1000 * (time.perf_counter() - start), 3)})

    @app.get("/items/{item_id}")
    async def item_info(item_id: str):
        return JSONResponse(service.describe({"item_id": known_item(item_id)}))

    @app.get("/items/{item_id}/cover")
    async def cover(item_id: str):
        path = service.item_files(known_item(item_id))[1]
        if not path.is_file():
            raise ServingError(404, f"item {item_id!r} has no cover image")
        return FileResponse(path, media_type="image/jpeg")

    @app.get("/items/{item_id}/clip")
    async def clip(item_id: str):
        path = service.item_files(known_item(item_id))[0]
        if not path.is_file():
            raise ServingError(404, f"item {item_id!r} has no clip file")
        return FileResponse(path, media_type="video/mp4")

    @app.delete("/items/{item_id}")
    async def delete(item_id: str):
        item_id = known_item(item_id)
        live.remove_item(item_id)
        logger.info("removed item %s", item_id)
        return JSONResponse({"item_id": item_id, "removed": True, "items": live.num_items})

    @app.post("/view")
    async def view(request: Request):
        if _content_type(request) != "application/json":
            raise ServingError(415, "POST /view takes a JSON body (Content-Type: "
                                    "application/json) such as {\"user\": \"u0001\", "
                                    "\"item\": \"i0002\"}")
        _check_length(request, _MAX_JSON_BYTES, "the JSON body")
        body = await request.body()
        if len(body) > _MAX_JSON_BYTES:
            raise ServingError(413, f"the JSON body is larger than {_MAX_JSON_BYTES} bytes")
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServingError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ServingError(422, "the JSON body must be an object {\"user\": ..., "
                                    "\"item\": ...}")
        unknown = sorted(set(payload) - {"user", "item"})
        if unknown:
            raise ServingError(422, f"unknown field(s) {unknown}; expected 'user' and 'item'")
        for field in ("user", "item"):
            if field not in payload:
                raise ServingError(422, f"the field {field!r} is missing")
        user = _check_id("user", payload["user"])
        item = known_item(payload["item"])
        new = live.add_view(user, item)
        return JSONResponse({"user": user, "item": item, "new_user": new,
                             "history_length": len(live.histories[user])})

    @app.post("/ingest")
    async def ingest(request: Request):
        if _content_type(request) != "multipart/form-data":
            raise ServingError(415, "POST /ingest takes multipart/form-data with a 'file' "
                                    "(an .mp4 clip) and a 'title'")
        _check_length(request, service.max_upload_bytes + 64 * 1024, "the upload")
        try:
            form = await request.form(max_files=1, max_fields=8, max_part_size=64 * 1024)
        except Exception as exc:  # malformed multipart, too many parts
            detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            raise ServingError(400, f"the multipart body cannot be read: {detail}") from None
        try:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ServingError(422, "the form field 'file' (an .mp4 clip) is missing")
            title = _text_field(form, "title", required=True)
            description = _text_field(form, "description", required=False)
            tags = _text_field(form, "tags", required=False)
            _check_filename(upload.filename)
            ctype = (upload.content_type or "").split(";")[0].strip().lower()
            if ctype not in _VIDEO_TYPES:
                raise ServingError(415, f"the file's content type {ctype!r} is not a video; "
                                        "upload an mp4 (video/mp4)")
            size = upload.size if upload.size is not None else 0
            if size > service.max_upload_bytes:
                raise ServingError(413, f"the clip has {size} bytes; the limit is "
                                        f"{service.max_upload_bytes} bytes")
            head = await upload.read(12)
            if not head:
                raise ServingError(400, "the uploaded file is empty")
            if len(head) < 12 or head[4:8] not in _MP4_BRANDS:
                raise ServingError(400, "the uploaded file is not an mp4 (no 'ftyp' box at its "
                                        "start)")
            await upload.seek(0)
            with tempfile.NamedTemporaryFile(dir=service.upload_dir, suffix=".part",
                                             delete=False) as target:
                written = 0
                while chunk := await upload.read(1 << 20):
                    written += len(chunk)
                    if written > service.max_upload_bytes:
                        Path(target.name).unlink(missing_ok=True)
                        raise ServingError(413, "the clip is larger than the limit of "
                                                f"{service.max_upload_bytes} bytes")
                    target.write(chunk)
        finally:
            await form.close()
        job = _IngestJob(Path(target.name), title, description, tags)
        future = service.submit(job)
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future),
                                            timeout=service.ingest_timeout_s)
        except TimeoutError:
            raise ServingError(504, "the clip was not encoded in time; it may still appear "
                                    "later") from None
        except (ServingError, ValueError) as exc:  # DataError / ParameterError: a bad clip
            Path(target.name).unlink(missing_ok=True)
            raise ServingError(400, f"the clip cannot be used: {exc}") from None
        return JSONResponse({**service.describe({"item_id": result["item_id"]}), **result,
                             "recommendable": True})
