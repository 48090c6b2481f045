"""Outermost ASGI layer: request ids, per-route statistics, injected faults, and the bearer-key check."""

from __future__ import annotations

import math
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batch_openai.local.errors import APIError
from batch_openai.local.faults import route_of
from batch_openai.local.state import ServerState


class FaultsAndAuth:
    """Outermost ASGI layer: counts calls per route, injects faults, checks the bearer key."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        raw_send = send
        # Like OpenAI: every answer names its request (the SDK's `_request_id`, errors' `request_id`).
        request_id = "req_" + secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        send = _with_request_headers(send, request_id, time.perf_counter())
        route = route_of(scope["method"], scope["path"])
        fault = self.state.faults.hit(route) if route else None
        if fault is not None and fault.kind in ("lost", "truncate"):
            send = _lose_answer(raw_send) if fault.kind == "lost" else _truncate_answer(send, raw_send)
        elif fault is not None:
            if fault.kind == "drop":
                _drop_connection(raw_send)
                return
            if fault.kind == "429":
                ms = fault.retry_after_ms if fault.retry_after_ms is not None else 100
                headers = {"retry-after-ms": str(ms), "retry-after": str(max(1, math.ceil(ms / 1000)))}
                err = APIError(
                    429,
                    "Rate limit reached for requests (injected by the local server). Please try again later.",
                    type="requests",
                    code="rate_limit_exceeded",
                    headers=headers,
                )
            else:
                err = APIError(
                    500,
                    "The server had an error while processing your request. Sorry about that! You can retry "
                    "your request, or contact us through our help center at help.openai.com if the error "
                    f"persists. (Please include the request ID {request_id} in your message.)",
                    type="server_error",
                )
            await _send_error(send, err)
            return
        key = self.state.config.api_key
        if key is not None:
            auth = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if auth != f"Bearer {key}":
                # Never echo the offered key back: secrets stay out of every message.
                msg = "Incorrect API key provided. You can find your API key in your local server settings."
                if not auth:
                    msg = (
                        "You didn't provide an API key. Provide it in the Authorization header (Bearer auth)."
                    )
                await _send_error(send, APIError(401, msg, code="invalid_api_key"))
                return
        await self.app(scope, receive, send)


def _with_request_headers(send: Send, request_id: str, started: float) -> Send:
    """A `send` that adds `x-request-id` and `openai-processing-ms` to the response start."""

    async def stamped(message: Message) -> None:
        if message["type"] == "http.response.start":
            ms = max(1, round((time.perf_counter() - started) * 1000))
            headers = [
                *message.get("headers", []),
                (b"x-request-id", request_id.encode()),
                (b"openai-processing-ms", str(ms).encode()),
                (b"openai-version", b"2020-10-01"),
            ]
            message = {**message, "headers": headers}
        await send(message)

    return stamped


def _lose_answer(send: Send) -> Send:
    """A `send` that lets the handler finish, then closes the socket instead of answering."""

    async def lost(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            _drop_connection(send)

    return lost


def _truncate_answer(send: Send, raw_send: Send) -> Send:
    """A `send` that passes on the first half of the answer's body, then closes the socket."""
    budget: list[int] = []  # bytes still to pass on; set from content-length at response start
    done = False

    async def truncating(message: Message) -> None:
        nonlocal done
        if done:
            return
        if message["type"] == "http.response.start":
            length = dict(message.get("headers", [])).get(b"content-length")
            budget.append(int(length) // 2 if length else -1)
            await send(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        body: bytes = message.get("body", b"")
        if budget[0] < 0:  # no content-length: cut the first chunk in half
            budget[0] = len(body) // 2
        part = body[: budget[0]]
        budget[0] -= len(part)
        if part:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        if budget[0] <= 0 or not message.get("more_body", False):
            done = True
            _drop_connection(raw_send)

    return truncating


def _drop_connection(send: Send) -> None:
    """Close the socket without a response: the client sees a connection error."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("fault injection: dropped connection")
    cycle.disconnected = True  # type: ignore[union-attr]  # keep uvicorn from answering 500 afterwards
    transport.abort()


async def _send_error(send: Send, err: APIError) -> None:
    body = err.body()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in err.headers.items()]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
