"""The HTTP face: OpenAI's `/v1/files` and `/v1/batches` routes plus the `/_local/` admin API."""

from __future__ import annotations

import math
import shutil
import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from batch_openai.local.admin import add_admin_routes
from batch_openai.local.engine import TERMINAL
from batch_openai.local.errors import APIError, bad_request, error_body, not_found
from batch_openai.local.middleware import FaultsAndAuth
from batch_openai.local.state import ServerState, json_body, json_response
from batch_openai.local.store import BatchRecord, new_id, now
from batch_openai.local.validation import check_create_params
from batch_openai.local.webhooks import add_webhook_routes

FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_BATCH_FILE_TTL = 30 * 86_400


def _int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(
            f"Invalid '{name}': expected an integer.", code="invalid_type", param=name
        ) from None
    if not lo <= value <= hi:
        raise bad_request(
            f"Invalid '{name}': {value} is out of range; use {lo}..{hi}.", code="invalid_value", param=name
        )
    return value


def _page(items: list[dict[str, Any]], after: str | None, limit: int) -> dict[str, Any]:
    if after:
        ids = [i["id"] for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def build_app(state: ServerState) -> ASGIApp:
    """The ASGI application for one server."""
    app = FastAPI(title="batch-openai local Batch API", docs_url=None, redoc_url=None, openapi_url=None)
    store, engine, cfg = state.store, state.engine, state.config

    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError) -> Response:
        return Response(
            exc.body(), status_code=exc.status, media_type="application/json", headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        msg = (
            f"Invalid URL ({request.method} {request.url.path})"
            if exc.status_code in (404, 405)
            else str(exc)
        )
        return Response(
            error_body(msg, type="invalid_request_error"),
            status_code=exc.status_code,
            media_type="application/json",
        )

    # -- files ---------------------------------------------------------------------------------
    @app.post("/v1/files")
    async def create_file(request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        purpose = form.get("purpose")
        if upload is None or isinstance(upload, str):
            raise bad_request(
                "Missing required parameter: 'file'.", code="missing_required_parameter", param="file"
            )
        if not purpose:
            raise bad_request(
                "Missing required parameter: 'purpose'.", code="missing_required_parameter", param="purpose"
            )
        if purpose not in FILE_PURPOSES:
            raise bad_request(
                f"Invalid value for 'purpose': {purpose!r}. Supported: {', '.join(FILE_PURPOSES)}.",
                code="invalid_value",
                param="purpose",
            )
        filename = upload.filename or "upload"
        if purpose == "batch" and not filename.endswith(".jsonl"):
            raise bad_request("Invalid file format for Batch API. Must be .jsonl", code="invalid_file_format")
        created = now()
        expires_at: int | None = created + _BATCH_FILE_TTL if purpose == "batch" else None
        if form.get("expires_after[seconds]") is not None:
            try:
                secs = int(str(form.get("expires_after[seconds]")))
            except ValueError:
                secs = -1
            if form.get("expires_after[anchor]") != "created_at" or not 3600 <= secs <= 2_592_000:
                raise bad_request(
                    "Invalid 'expires_after': use anchor 'created_at' and seconds within 3600..2592000.",
                    code="invalid_value",
                    param="expires_after",
                )
            expires_at = created + secs
        file_id = new_id("file-")
        path = store.file_path(file_id)

        def _save() -> int:
            with open(path, "wb") as fh:
                shutil.copyfileobj(upload.file, fh, 1 << 20)
            return path.stat().st_size

        size = await run_in_threadpool(_save)
        await upload.close()
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": created,
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": expires_at,
            "status_details": None,
        }
        store.add_file(obj)
        return json_response(obj)

    @app.get("/v1/files")
    async def list_files(request: Request) -> Response:
        limit = _int_param(request, "limit", 10_000, 1, 10_000)
        purpose = request.query_params.get("purpose")
        items = store.list_files()
        if purpose:
            items = [f for f in items if f["purpose"] == purpose]
        order = request.query_params.get("order", "desc")
        if order not in ("asc", "desc"):
            raise bad_request(
                f"Invalid value: {order!r}. Supported values are: 'asc' and 'desc'.",
                code="invalid_value",
                param="order",
            )
        if order == "asc":
            items.reverse()
        return json_response(_page(items, request.query_params.get("after"), limit))

    @app.get("/v1/files/{file_id}")
    async def retrieve_file(file_id: str) -> Response:
        obj = store.get_file(file_id)
        if obj is None:
            raise not_found("file", file_id)
        return json_response(obj)

    @app.delete("/v1/files/{file_id}")
    async def delete_file(file_id: str) -> Response:
        if not store.delete_file(file_id):
            raise not_found("file", file_id)
        return json_response({"id": file_id, "object": "file", "deleted": True})

    @app.get("/v1/files/{file_id}/content")
    async def file_content(file_id: str) -> Response:
        obj = store.get_file(file_id)
        if obj is None:
            raise not_found("file", file_id)
        return FileResponse(store.file_path(file_id), media_type="application/octet-stream")

    # -- batches -------------------------------------------------------------------------------
    @app.post("/v1/batches")
    async def create_batch(request: Request) -> Response:
        params = check_create_params(await json_body(request))
        file_obj = store.get_file(params["input_file_id"])
        if file_obj is None:
            raise bad_request(
                f"Invalid 'input_file_id': '{params['input_file_id']}'. File not found; upload it first.",
                code="invalid_value",
                param="input_file_id",
            )
        if file_obj["purpose"] != "batch":
            raise bad_request(
                f"The file {file_obj['id']} has purpose {file_obj['purpose']!r}; "
                "a batch input needs purpose 'batch'.",
                code="invalid_value",
                param="input_file_id",
            )
        created_f = time.time()
        created = int(created_f)
        deadline = created_f + cfg.window_seconds
        obj = {
            "id": new_id("batch_"),
            "object": "batch",
            "endpoint": params["endpoint"],
            "model": None,
            "errors": None,
            "input_file_id": params["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": created,
            "in_progress_at": None,
            "expires_at": created + math.ceil(cfg.window_seconds),
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "usage": {
                "input_tokens": 0,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 0,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 0,
            },
            "metadata": params.get("metadata"),
        }
        extra: dict[str, Any] = {"deadline": deadline, "created_at": created_f}
        if params.get("output_expires_after"):
            extra["output_expires_after"] = params["output_expires_after"]
        rec = BatchRecord(obj=obj, seq=store.next_seq(), extra=extra)
        store.add_batch(rec)
        answer = store.batch_json(rec.id) or b"{}"  # before the worker starts: a create answers validating
        engine.submit(rec.id)
        return Response(answer, media_type="application/json")

    @app.get("/v1/batches")
    async def list_batches(request: Request) -> Response:
        limit = _int_param(request, "limit", 20, 1, 100)
        after = request.query_params.get("after")
        with store.lock:
            records = store.list_batches()
            if after:
                ids = [r.id for r in records]
                records = records[ids.index(after) + 1 :] if after in ids else []
            # Serialise only the page: callers walk every page looking for a metadata fingerprint.
            page = [orjson.loads(orjson.dumps(r.obj)) for r in records[:limit]]
            has_more = len(records) > limit
        return json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": has_more,
            }
        )

    @app.get("/v1/batches/{batch_id}")
    async def retrieve_batch(batch_id: str) -> Response:
        raw = store.batch_json(batch_id)
        if raw is None:
            raise not_found("batch", batch_id)
        return Response(raw, media_type="application/json")

    @app.post("/v1/batches/{batch_id}/cancel")
    async def cancel_batch(batch_id: str) -> Response:
        with store.lock:
            rec = store.get_batch(batch_id)
            if rec is None:
                raise not_found("batch", batch_id)
            if rec.status in TERMINAL:
                raise APIError(
                    409,
                    f"Cannot cancel a batch with status '{rec.status}'.",
                    code="batch_not_cancellable" if rec.status != "cancelled" else "batch_already_cancelled",
                )
            if rec.status != "cancelling":
                rec.cancel_requested = True
                rec.obj["status"] = "cancelling"
                rec.extra["cancelling_at"] = time.time()
                rec.obj["cancelling_at"] = int(rec.extra["cancelling_at"])
                store.save_batch(rec)
            raw = orjson.dumps(rec.obj)
        engine.poke(batch_id)
        return Response(raw, media_type="application/json")

    add_admin_routes(app, state)
    add_webhook_routes(app, state.webhooks, json_body, json_response)
    return FaultsAndAuth(app, state)
