"""Webhooks as OpenAI has them: `/v1/webhook_endpoints` and signed `batch.*` deliveries, retried with backoff.

Endpoints are kept in `STATE/webhooks.json`. When a batch ends (`completed`, `failed`, `expired`,
`cancelled`) every endpoint subscribed to that event type gets a POST of
`{"id": "evt_…", "object": "event", "type": "batch.completed", "created_at": …, "data": {"id": batch_id}}`
signed as Standard Webhooks prescribes (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64>`),
which `client.webhooks.unwrap(body, headers, secret=...)` verifies. A delivery that fails (no answer or a
non-2xx) is retried after `webhook_backoff_seconds`, doubling, up to `webhook_max_attempts` times. Only
loopback URLs are accepted unless `webhook_allow_remote` is set. Pending retries live in memory.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from batch_openai.local.config import ServerConfig
from batch_openai.local.errors import APIError, bad_request
from batch_openai.local.store import new_id, now

_log = logging.getLogger("batch_openai.local.webhooks")

#: The event types the SDK lets an endpoint subscribe to (`WebhookCreateParams.event_types`).
EVENT_TYPES: tuple[str, ...] = (
    "batch.completed",
    "batch.failed",
    "batch.expired",
    "batch.cancelled",
    "response.completed",
    "response.failed",
    "response.cancelled",
    "response.incomplete",
    "eval.run.succeeded",
    "eval.run.failed",
    "eval.run.canceled",
    "fine_tuning.job.succeeded",
    "fine_tuning.job.failed",
    "fine_tuning.job.cancelled",
    "realtime.call.incoming",
    "video.completed",
    "video.failed",
    "agent.environment.ready",
    "agent.environment.failed",
    "agent.environment.suspended",
    "agent.environment.expired",
    "agent.session.created",
    "agent.session.action_required",
    "agent.session.in_progress",
    "agent.session.idle",
    "agent.session.failed",
    "safety.alert.created",
)
BATCH_EVENTS = {
    "completed": "batch.completed",
    "failed": "batch.failed",
    "expired": "batch.expired",
    "cancelled": "batch.cancelled",
}
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_USER_AGENT = "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)"
_OLD_SECRET_SECONDS = 86_400


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64 HMAC-SHA256>` signature of one delivery."""
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_headers(secrets_: list[str], webhook_id: str, body: bytes) -> dict[str, str]:
    """Headers of one delivery attempt, signed with every active secret (space-separated)."""
    ts = int(time.time())
    return {
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(sign(s, webhook_id, ts, body) for s in secrets_),
    }


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    endpoint_id: str = field(compare=False)
    event_id: str = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(default=1, compare=False)


class Webhooks:
    """The endpoint registry, the event fan-out and the retrying delivery worker of one server."""

    def __init__(self, config: ServerConfig, state_dir: Path) -> None:
        self.config = config
        self.path = Path(state_dir) / "webhooks.json"
        self.lock = threading.RLock()
        self.endpoints: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self.endpoints = orjson.loads(self.path.read_bytes())
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._wake = threading.Condition(self.lock)
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: Every attempt, newest last: {event_id, endpoint_id, type, attempt, status_code, error, at}.
        self.attempts: list[dict[str, Any]] = []

    # -- the registry --------------------------------------------------------------------------
    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(self.endpoints))
        tmp.replace(self.path)

    @staticmethod
    def public(ep: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
        """The API's `webhook_endpoint` object (the secret only at create and rotate)."""
        secret = ep["secret"]
        obj = {
            "id": ep["id"],
            "object": "webhook_endpoint",
            "created_at": ep["created_at"],
            "updated_at": ep["updated_at"],
            "event_types": list(ep["event_types"]),
            "name": ep["name"],
            "url": ep["url"],
            "signing_secret_hint": f"whsec_...{secret[-4:]}",
        }
        if with_secret:
            obj["signing_secret"] = secret
        return obj

    def active_secrets(self, ep: dict[str, Any]) -> list[str]:
        """The current secret, and the previous one while it is kept valid after a rotation."""
        out = [ep["secret"]]
        if ep.get("old_secret") and (ep.get("old_secret_until") or 0) > time.time():
            out.append(ep["old_secret"])
        return out

    def check_url(self, url: Any) -> str:
        """A deliverable URL, or a 400 naming `url`."""
        if not isinstance(url, str) or not url:
            raise bad_request("Invalid type for 'url': expected a string.", code="invalid_type", param="url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad_request(
                f"Invalid 'url': {url!r} is not an HTTPS URL.", code="invalid_value", param="url"
            )
        if not self.config.webhook_allow_remote and parts.hostname not in _LOOPBACK:
            raise bad_request(
                f"Invalid 'url': the local server delivers only to 127.0.0.1, localhost or ::1, not "
                f"{parts.hostname!r} (set webhook_allow_remote to deliver elsewhere).",
                code="invalid_value",
                param="url",
            )
        return url

    @staticmethod
    def check_event_types(value: Any) -> list[str]:
        """A non-empty list of known event types, or a 400 naming the bad entry."""
        if not isinstance(value, list):
            raise bad_request(
                "Invalid type for 'event_types': expected an array of strings.",
                code="invalid_type",
                param="event_types",
            )
        if not value:
            raise bad_request(
                "Invalid 'event_types': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead.",
                code="empty_array",
                param="event_types",
            )
        for i, item in enumerate(value):
            if item not in EVENT_TYPES:
                raise bad_request(
                    f"Invalid value: {item!r}. Supported values are: "
                    + ", ".join(repr(t) for t in EVENT_TYPES)
                    + ".",
                    code="invalid_value",
                    param=f"event_types[{i}]",
                )
        return list(dict.fromkeys(value))

    def create(self, name: str, url: str, event_types: list[str]) -> dict[str, Any]:
        """Register an endpoint; returns the stored record."""
        ts = now()
        ep = {
            "id": new_id("we_"),
            "created_at": ts,
            "updated_at": ts,
            "event_types": event_types,
            "name": name,
            "url": url,
            "secret": new_secret(),
            "seq": len(self.endpoints),
        }
        with self.lock:
            ep["seq"] = max((e.get("seq", 0) for e in self.endpoints.values()), default=-1) + 1
            self.endpoints[ep["id"]] = ep
            self._save()
        return ep

    def get(self, endpoint_id: str) -> dict[str, Any]:
        """The endpoint, or a 404."""
        ep = self.endpoints.get(endpoint_id)
        if ep is None:
            raise APIError(404, f"No such webhook endpoint: '{endpoint_id}'.", param="webhook_endpoint_id")
        return ep

    def update(self, endpoint_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change name / url / event_types; `updated_at` moves only when something changed."""
        with self.lock:
            ep = self.get(endpoint_id)
            changed = {k: v for k, v in changes.items() if ep.get(k) != v}
            if changed:
                ep.update(changed)
                ep["updated_at"] = now()
                self._save()
            return ep

    def delete(self, endpoint_id: str) -> None:
        """Remove an endpoint (pending retries to it are dropped)."""
        with self.lock:
            self.get(endpoint_id)
            del self.endpoints[endpoint_id]
            self._queue = [d for d in self._queue if d.endpoint_id != endpoint_id]
            heapq.heapify(self._queue)
            self._save()

    def rotate(self, endpoint_id: str, keep_old: bool) -> dict[str, Any]:
        """A new signing secret; the old one stays valid for 24 h if asked."""
        with self.lock:
            ep = self.get(endpoint_id)
            ep["old_secret"] = ep["secret"] if keep_old else None
            ep["old_secret_until"] = time.time() + _OLD_SECRET_SECONDS if keep_old else None
            ep["secret"] = new_secret()
            ep["updated_at"] = now()
            self._save()
            return ep

    def listing(self) -> list[dict[str, Any]]:
        """Endpoints, newest first."""
        with self.lock:
            return sorted(
                self.endpoints.values(), key=lambda e: (e["created_at"], e.get("seq", 0)), reverse=True
            )

    # -- events and deliveries -----------------------------------------------------------------
    @staticmethod
    def event(event_type: str, object_id: str) -> tuple[str, bytes]:
        """(event id, JSON body) of one event."""
        event_id = new_id("evt_")
        body = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created_at": now(),
            "data": {"id": object_id},
        }
        return event_id, orjson.dumps(body)

    def batch_ended(self, batch: dict[str, Any]) -> None:
        """Queue a `batch.<status>` event for every endpoint subscribed to it."""
        event_type = BATCH_EVENTS.get(batch.get("status", ""))
        if event_type is None:
            return
        with self.lock:
            targets = [ep["id"] for ep in self.endpoints.values() if event_type in ep["event_types"]]
            if not targets:
                return
            event_id, body = self.event(event_type, batch["id"])
            for ep_id in targets:
                heapq.heappush(self._queue, _Delivery(time.time(), next(self._seq), ep_id, event_id, body))
            self._ensure_worker()
            self._wake.notify_all()

    def send_once(self, ep: dict[str, Any], event_id: str, body: bytes) -> tuple[int | None, str | None]:
        """POST one signed delivery: (status code, None) or (None, connection error)."""
        headers = signed_headers(self.active_secrets(ep), event_id, body)
        try:
            with httpx.Client(timeout=10.0, trust_env=False) as client:
                r = client.post(ep["url"], content=body, headers=headers)
            return r.status_code, None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="batch-openai-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the delivery worker (pending retries are dropped)."""
        with self.lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self._stopping and (not self._queue or self._queue[0].due > time.time()):
                    timeout = self._queue[0].due - time.time() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                item = heapq.heappop(self._queue)
                ep = self.endpoints.get(item.endpoint_id)
            if ep is None:
                continue
            status, error = self.send_once(ep, item.event_id, item.body)
            ok = status is not None and 200 <= status < 300
            record = {
                "event_id": item.event_id,
                "endpoint_id": item.endpoint_id,
                "type": orjson.loads(item.body)["type"],
                "attempt": item.attempt,
                "status_code": status,
                "error": error,
                "at": time.time(),
            }
            with self.lock:
                self.attempts.append(record)
                del self.attempts[:-1000]
                if not ok and item.attempt < self.config.webhook_max_attempts:
                    delay = self.config.webhook_backoff_seconds * 2 ** (item.attempt - 1)
                    item.due, item.attempt = time.time() + delay, item.attempt + 1
                    heapq.heappush(self._queue, item)
            if not ok:
                _log.info("webhook %s to %s failed (%s)", item.event_id, item.endpoint_id, status or error)


_CREATE = frozenset({"event_types", "name", "url"})
_ROTATE = frozenset({"keep_old_secret_active_for_24_hours"})


def _unknown(body: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in body:
        if name not in allowed:
            raise bad_request(f"Unknown parameter: '{name}'.", code="unknown_parameter", param=name)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise bad_request("Invalid type for 'name': expected a string.", code="invalid_type", param="name")
    return value


def add_webhook_routes(app: FastAPI, hooks: Webhooks, json_body: Any, json_response: Any) -> None:
    """The routes the SDK's `client.webhooks` drives."""

    async def body_of(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.", code="invalid_type")
        return body

    @app.post("/v1/webhook_endpoints")
    async def create_endpoint(request: Request) -> Response:
        body = await body_of(request)
        _unknown(body, _CREATE)
        for name in ("event_types", "name", "url"):
            if body.get(name) is None:
                raise bad_request(
                    f"Missing required parameter: '{name}'.", code="missing_required_parameter", param=name
                )
        ep = hooks.create(
            _name(body["name"]), hooks.check_url(body["url"]), hooks.check_event_types(body["event_types"])
        )
        return json_response(hooks.public(ep, with_secret=True))

    @app.get("/v1/webhook_endpoints")
    async def list_endpoints(request: Request) -> Response:
        raw = request.query_params.get("limit", "20")
        try:
            limit = int(raw)
        except ValueError:
            raise bad_request(
                "Invalid 'limit': expected an integer.", code="invalid_type", param="limit"
            ) from None
        if not 1 <= limit <= 100:
            raise bad_request(
                f"Invalid 'limit': {limit} is out of range; use 1..100.", code="invalid_value", param="limit"
            )
        items = [hooks.public(e) for e in hooks.listing()]
        after = request.query_params.get("after")
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        return json_response(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )

    @app.get("/v1/webhook_endpoints/{endpoint_id}")
    async def retrieve_endpoint(endpoint_id: str) -> Response:
        return json_response(hooks.public(hooks.get(endpoint_id)))

    @app.post("/v1/webhook_endpoints/{endpoint_id}")
    async def update_endpoint(endpoint_id: str, request: Request) -> Response:
        body = await body_of(request)
        _unknown(body, _CREATE)
        changes: dict[str, Any] = {}
        if body.get("name") is not None:
            changes["name"] = _name(body["name"])
        if body.get("url") is not None:
            changes["url"] = hooks.check_url(body["url"])
        if body.get("event_types") is not None:
            changes["event_types"] = hooks.check_event_types(body["event_types"])
        hooks.get(endpoint_id)
        return json_response(hooks.public(hooks.update(endpoint_id, changes)))

    @app.delete("/v1/webhook_endpoints/{endpoint_id}")
    async def delete_endpoint(endpoint_id: str) -> Response:
        hooks.delete(endpoint_id)
        return json_response({"id": endpoint_id, "object": "webhook_endpoint.deleted", "deleted": True})

    @app.post("/v1/webhook_endpoints/{endpoint_id}/rotate_secret")
    async def rotate_secret(endpoint_id: str, request: Request) -> Response:
        body = await body_of(request)
        _unknown(body, _ROTATE)
        keep = body.get("keep_old_secret_active_for_24_hours", False)
        if not isinstance(keep, bool):
            raise bad_request(
                "Invalid type for 'keep_old_secret_active_for_24_hours': expected a boolean.",
                code="invalid_type",
                param="keep_old_secret_active_for_24_hours",
            )
        return json_response(hooks.public(hooks.rotate(endpoint_id, keep), with_secret=True))

    @app.post("/v1/webhook_endpoints/{endpoint_id}/test")
    async def test_endpoint(endpoint_id: str, request: Request) -> Response:
        body = await body_of(request)
        _unknown(body, frozenset({"event_type"}))
        event_type = body.get("event_type")
        if event_type is None:
            raise bad_request(
                "Missing required parameter: 'event_type'.",
                code="missing_required_parameter",
                param="event_type",
            )
        if event_type not in EVENT_TYPES:
            raise bad_request(
                f"Invalid value: {event_type!r}. Supported values are: "
                + ", ".join(repr(t) for t in EVENT_TYPES)
                + ".",
                code="invalid_value",
                param="event_type",
            )
        ep = hooks.get(endpoint_id)
        sample = {"batch": "batch_test", "response": "resp_test", "fine_tuning": "ftjob_test"}
        object_id = sample.get(event_type.split(".", 1)[0], "obj_test") + secrets.token_hex(6)
        event_id, payload = hooks.event(event_type, object_id)
        status, error = await run_in_threadpool(hooks.send_once, ep, event_id, payload)
        if status is None:
            raise bad_request(
                f"The webhook endpoint could not be reached ({error}).",
                code="webhook_unreachable",
                param="url",
            )
        return json_response(
            {
                "object": "webhook_endpoint.test",
                "event_type": event_type,
                "status_code": status,
                "success": True,
                "webhook_endpoint_id": endpoint_id,
            }
        )

    @app.get("/v1/webhook_event_types")
    async def event_types() -> Response:
        return json_response({"object": "list", "data": list(EVENT_TYPES)})

    @app.get("/_local/webhooks/deliveries")
    async def deliveries() -> Response:
        with hooks.lock:
            return json_response({"data": list(hooks.attempts)})
