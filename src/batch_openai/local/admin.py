"""`/_local/...`: the controls tests use on a server running in another process."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from batch_openai.local.engine import TERMINAL
from batch_openai.local.errors import bad_request, not_found
from batch_openai.local.state import ServerState, json_body, json_response


def add_admin_routes(app: FastAPI, state: ServerState) -> None:
    """`/_local/...`: the test controls, for a server running in another process."""
    faults = state.faults

    @app.get("/_local/health")
    async def health() -> Response:
        return json_response({"ok": True})

    @app.get("/_local/stats")
    async def stats() -> Response:
        return json_response(faults.stats())

    @app.delete("/_local/stats")
    async def reset_stats() -> Response:
        faults.reset_stats()
        return json_response({"ok": True})

    @app.get("/_local/faults")
    async def list_faults() -> Response:
        return json_response({"data": faults.list()})

    @app.post("/_local/faults")
    async def add_fault(request: Request) -> Response:
        body = await json_body(request)
        try:
            fault = faults.add(
                route=body.get("route", "*"),
                kind=str(body.get("kind", "500")),
                nth=body.get("nth"),
                rate=body.get("rate"),
                times=body.get("times"),
                retry_after_ms=body.get("retry_after_ms"),
            )
        except (ValueError, TypeError) as exc:
            raise bad_request(str(exc), code="invalid_value") from None
        return json_response({"id": fault.id})

    @app.delete("/_local/faults")
    async def clear_faults() -> Response:
        faults.clear()
        return json_response({"ok": True})

    @app.post("/_local/batches/{batch_id}/expire")
    async def expire(batch_id: str) -> Response:
        if not expire_batch(state, batch_id):
            raise not_found("batch", batch_id)
        return json_response({"ok": True})

    @app.post("/_local/config")
    async def set_config(request: Request) -> Response:
        body = await json_body(request)
        try:
            update_config(state, body)
        except ValueError as exc:
            raise bad_request(str(exc), code="invalid_value") from None
        return json_response({k: getattr(state.config, k) for k in _TUNABLE})  # models: a list


_TUNABLE = (
    "completion_window_seconds",
    "stall_finalizing_seconds",
    "line_failure_rate",
    "shuffle_output",
    "step_seconds",
    "models",
    "unknown_models",
    "webhook_backoff_seconds",
)


def update_config(state: ServerState, changes: dict[str, Any]) -> None:
    """Change a live setting. Phases under way follow a new step or stall at once; a new completion
    window applies to batches created from now on (each keeps the deadline it was given)."""
    for key in changes:
        if key not in _TUNABLE:
            raise ValueError(f"unknown setting {key!r}: tunable settings are {', '.join(_TUNABLE)}")
    values = {key: tuple(value) if key == "models" else value for key, value in changes.items()}
    dataclasses.replace(state.config, **values).validate()  # a refused change leaves nothing applied
    for key, value in values.items():  # in place: the engine and handlers share this object
        setattr(state.config, key, value)
    state.engine.poke_all()


def expire_batch(state: ServerState, batch_id: str) -> bool:
    """Make a batch's completion window lapse now; False if the id is unknown."""
    with state.store.lock:
        rec = state.store.get_batch(batch_id)
        if rec is None:
            return False
        if rec.status not in TERMINAL:
            rec.expire_requested = True
            state.store.save_batch(rec)
    state.engine.poke(batch_id)
    return True
