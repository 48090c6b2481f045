"""Webhook receiver: OpenAI's `batch.*` deliveries wake the flow runs suspended on those batches.

A delivery is verified with the SDK (`client.webhooks.unwrap`, Standard Webhooks signature), then each
`batch.completed|failed|expired|cancelled` event

- is emitted as the Prefect event `batch-openai.batch.ended` with resource
  `{"prefect.resource.id": "batch-openai.batch.<batch_id>"}` (for automations and deployment triggers), and
- resumes every suspended run waiting on that batch (`flows/suspend.py` records them as Prefect Variables
  tagged `batch-openai-wait`) once *all* of that run's batches have ended, checked with the SDK.

Polling stays the default and the fallback: a lost delivery only means the collector resumes the run on its
next schedule. Run it with::

    OPENAI_WEBHOOK_SECRET=whsec_... python -m batch_openai.flows.webhooks --host 127.0.0.1 --port 8765

The receiver uses only the standard library's HTTP server (the Prefect layer does not import FastAPI).
"""

from __future__ import annotations

import argparse
import contextvars
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_openai.flows.suspend import WAIT_TAG, check_batches
from batch_openai.lifecycle import TERMINAL

if TYPE_CHECKING:
    from openai import OpenAI

__all__ = [
    "BATCH_ENDED_EVENT",
    "WebhookReceiver",
    "batch_resource_id",
    "make_receiver_server",
    "resume_waiting_runs",
    "serve_webhook_receiver",
]

_log = logging.getLogger("batch_openai.flows.webhooks")
BATCH_ENDED_EVENT = "batch-openai.batch.ended"
BATCH_EVENT_TYPES = frozenset({"batch.completed", "batch.failed", "batch.expired", "batch.cancelled"})
SECRET_ENV = "OPENAI_WEBHOOK_SECRET"

#: The statuses of a list of batches (`gone` for one that no longer exists), from the SDK.
StatusCheck = Callable[[list[str], dict[str, Any]], dict[str, str]]


def batch_resource_id(batch_id: str) -> str:
    """The Prefect resource id of a batch in `batch-openai.batch.ended` events."""
    return f"batch-openai.batch.{batch_id}"


def _record_batch_ids(record: Mapping[str, Any]) -> list[str]:
    ids = record.get("batch_ids")
    if ids is None and record.get("batch_ids_file"):
        try:
            ids = json.loads(Path(record["batch_ids_file"]).read_text())
        except (OSError, ValueError):
            ids = []
    return [str(i) for i in ids or []]


def _sdk_statuses(client: OpenAI | None) -> StatusCheck:
    """Check statuses with the given client, or with each record's base_url / api_key_block."""

    def check(ids: list[str], record: dict[str, Any]) -> dict[str, str]:
        if client is None:
            return dict(check_batches.fn(ids, record.get("base_url"), record.get("api_key_block")))
        from openai import NotFoundError

        out: dict[str, str] = {}
        for batch_id in ids:
            try:
                out[batch_id] = client.batches.retrieve(batch_id).status
            except NotFoundError:
                out[batch_id] = "gone"
        return out

    return check


def resume_waiting_runs(
    batch_id: str | None = None, *, client: OpenAI | None = None, statuses: StatusCheck | None = None
) -> dict[str, Any]:
    """Resume the suspended runs waiting on `batch_id` (None: on any batch) whose batches have all ended.

    Each waiting run is a Prefect Variable tagged `batch-openai-wait` holding `{"flow_run_id",
    "batch_ids", ...}`. A run is resumed only when it is paused and the SDK says every one of its batches
    is terminal (or gone). Returns `{"resumed": [run ids], "waiting": [run ids], "checked": n}`.
    """
    from prefect import get_client
    from prefect.flow_runs import resume_flow_run

    check = statuses or _sdk_statuses(client)
    resumed: list[str] = []
    waiting: list[str] = []
    checked = 0
    with get_client(sync_client=True) as prefect:
        variables = [v for v in prefect.read_variables(limit=None) if WAIT_TAG in (v.tags or [])]
        for var in variables:
            record = var.value if isinstance(var.value, dict) else {}
            run_id = record.get("flow_run_id")
            ids = _record_batch_ids(record)
            if not run_id or (batch_id is not None and batch_id not in ids):
                continue
            checked += 1
            try:
                run = prefect.read_flow_run(run_id)
            except Exception:
                continue  # gone: the collector tidies its Variable
            if run.state is None or not run.state.is_paused():
                continue  # still running (about to suspend, or already resumed)
            found = check(ids, record)
            if all(s in TERMINAL or s == "gone" for s in found.values()):
                _log.info("resuming flow run %s: its %d batch(es) have ended", run_id, len(ids))
                resume_flow_run(run.id)
                resumed.append(str(run_id))
            else:
                waiting.append(str(run_id))
    return {"resumed": resumed, "waiting": waiting, "checked": checked}


def emit_batch_ended(event: Any) -> None:
    """Emit `batch-openai.batch.ended` for one verified `batch.*` webhook event."""
    from prefect.events import emit_event

    batch_id = event.data.id
    emit_event(
        event=BATCH_ENDED_EVENT,
        resource={"prefect.resource.id": batch_resource_id(batch_id), "prefect.resource.name": batch_id},
        payload={
            "batch_id": batch_id,
            "webhook_type": event.type,
            "status": event.type.split(".", 1)[1],
            "webhook_event_id": event.id,
            "created_at": event.created_at,
        },
    )


class WebhookReceiver:
    """Verifies one delivery and acts on it; framework-free, so any HTTP server can call `handle`."""

    def __init__(
        self,
        secret: str,
        *,
        client: OpenAI | None = None,
        emit: bool = True,
        resume: bool = True,
        statuses: StatusCheck | None = None,
    ) -> None:
        from openai import OpenAI

        self.secret = secret
        # unwrap needs no network; the client only checks statuses when one is given.
        self._verifier = client or OpenAI(api_key=os.environ.get("OPENAI_API_KEY") or "unused")
        self.client = client
        self.emit = emit
        self.resume = resume
        self.statuses = statuses
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        #: What each accepted delivery led to, newest last (for tests and logs).
        self.handled: list[dict[str, Any]] = []

    def handle(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON answer) for one delivery: 400 if the signature fails, else 200."""
        from openai import InvalidWebhookSignatureError

        try:
            event = self._verifier.webhooks.unwrap(body, dict(headers), secret=self.secret)
        except (InvalidWebhookSignatureError, ValueError) as exc:
            return 400, {"error": f"invalid webhook: {exc}"}
        webhook_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", event.id)
        with self._lock:
            if webhook_id in self._seen:  # a retry of a delivery already handled
                return 200, {"ok": True, "duplicate": True}
            self._seen[webhook_id] = None
            while len(self._seen) > 10_000:
                self._seen.popitem(last=False)
        outcome: dict[str, Any] = {"event_id": event.id, "type": event.type}
        if event.type in BATCH_EVENT_TYPES:
            batch_id = event.data.id
            outcome["batch_id"] = batch_id
            if self.emit:
                try:
                    emit_batch_ended(event)
                    outcome["emitted"] = True
                except Exception as exc:  # polling is the fallback: never fail the delivery for this
                    _log.warning("could not emit %s for %s: %s", BATCH_ENDED_EVENT, batch_id, exc)
            if self.resume:
                try:
                    outcome.update(resume_waiting_runs(batch_id, client=self.client, statuses=self.statuses))
                except Exception as exc:
                    _log.warning("could not resume runs waiting on %s: %s", batch_id, exc)
                    outcome["resume_error"] = str(exc)
        with self._lock:
            self.handled.append(outcome)
        return 200, {"ok": True, **outcome}


def make_receiver_server(
    host: str, port: int, receiver: WebhookReceiver, path: str = "/"
) -> ThreadingHTTPServer:
    """A threaded HTTP server passing every POST under `path` to `receiver` (port 0: a free one).

    Each request runs in a copy of the caller's context, so Prefect settings made active around this
    call (`temporary_settings`, a profile) hold in the server's threads too.
    """
    context = contextvars.copy_context()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not self.path.startswith(path):
                self._answer(404, {"error": "not found"})
                return
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k: v for k, v in self.headers.items()}
            status, answer = context.copy().run(receiver.handle, body, headers)
            self._answer(status, answer)

        def do_GET(self) -> None:
            self._answer(200, {"ok": True, "handled": len(receiver.handled)})

        def _answer(self, status: int, answer: dict[str, Any]) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug(format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_webhook_receiver(host: str = "127.0.0.1", port: int = 8765, secret: str | None = None) -> None:
    """Serve the receiver until interrupted; `secret` defaults to `OPENAI_WEBHOOK_SECRET`."""
    secret = secret or os.environ.get(SECRET_ENV)
    if not secret:
        raise SystemExit(f"no webhook secret: pass secret= or set {SECRET_ENV} (whsec_...)")
    server = make_receiver_server(host, port, WebhookReceiver(secret))
    print(f"batch-openai webhook receiver on http://{host}:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """`python -m batch_openai.flows.webhooks [--host] [--port] [--secret-env NAME]`."""
    parser = argparse.ArgumentParser(description="Receive OpenAI batch webhooks and resume waiting runs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--secret-env", default=SECRET_ENV, help="environment variable holding whsec_...")
    args = parser.parse_args(argv)
    serve_webhook_receiver(args.host, args.port, os.environ.get(args.secret_env))


if __name__ == "__main__":
    main()
