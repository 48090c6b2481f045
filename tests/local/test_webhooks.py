"""Webhooks as OpenAI has them: the SDK's `client.webhooks` API, signed batch.* deliveries, retries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from local_helpers import chat_line, submit, wait

from batch_openai.local import LocalBatchServer


class Receiver:
    """A loopback HTTP endpoint that records deliveries and fails the first `fail` of them."""

    def __init__(self, fail: int = 0) -> None:
        self.got: list[tuple[bytes, dict[str, str], float]] = []
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                outer.got.append((body, dict(self.headers.items()), time.monotonic()))
                status = 503 if outer.fail > 0 else 200
                outer.fail -= 1
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hooks/openai"

    def wait_for(self, n: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < n:
            assert time.monotonic() < deadline, f"{len(self.got)} of {n} deliveries arrived"
            time.sleep(0.02)


@pytest.fixture
def hooked() -> Iterator[tuple[LocalBatchServer, Any]]:
    with LocalBatchServer(step_seconds=0.0, webhook_backoff_seconds=0.1) as srv:
        yield srv, srv.client(max_retries=0)


def test_endpoints_are_managed_through_the_sdk(hooked: tuple[LocalBatchServer, Any]) -> None:
    _server, client = hooked
    rx = Receiver()
    ep = client.webhooks.create(event_types=["batch.completed"], name="first", url=rx.url)
    assert ep.object == "webhook_endpoint" and ep.signing_secret.startswith("whsec_")
    assert ep.signing_secret_hint and ep.signing_secret[-4:] in ep.signing_secret_hint
    second = client.webhooks.create(event_types=["batch.failed", "batch.expired"], name="second", url=rx.url)
    assert [e.id for e in client.webhooks.list()] == [second.id, ep.id]  # newest first
    assert [e.id for e in client.webhooks.list(limit=1, after=second.id)] == [ep.id]
    got = client.webhooks.retrieve(ep.id)
    assert got.name == "first" and not hasattr(got, "signing_secret")
    same = client.webhooks.update(ep.id, name="first")
    assert same.updated_at == ep.updated_at  # an unchanged update does not advance it
    renamed = client.webhooks.update(
        ep.id, name="renamed", event_types=["batch.completed", "batch.cancelled"]
    )
    assert renamed.name == "renamed" and renamed.event_types == ["batch.completed", "batch.cancelled"]
    rotated = client.webhooks.rotate_secret(ep.id)
    assert rotated.signing_secret != ep.signing_secret
    result = client.webhooks.test(ep.id, event_type="batch.completed")
    assert result.success is True and result.status_code == 200 and result.webhook_endpoint_id == ep.id
    event = client.webhooks.unwrap(rx.got[-1][0], rx.got[-1][1], secret=rotated.signing_secret)
    assert event.type == "batch.completed"
    assert "batch.cancelled" in client.webhooks.event_types.list().data
    deleted = client.webhooks.delete(second.id)
    assert deleted.deleted is True and deleted.object == "webhook_endpoint.deleted"
    with pytest.raises(openai.NotFoundError):
        client.webhooks.retrieve(second.id)


def test_bad_endpoints_are_refused_naming_the_param(hooked: tuple[LocalBatchServer, Any]) -> None:
    _server, client = hooked
    cases = [
        ({"event_types": ["batch.completed"], "name": "x", "url": "https://example.com/hook"}, "url"),
        ({"event_types": ["batch.exploded"], "name": "x", "url": "http://127.0.0.1:9/h"}, "event_types[0]"),
        ({"event_types": [], "name": "x", "url": "http://127.0.0.1:9/h"}, "event_types"),
    ]
    for params, param in cases:
        with pytest.raises(openai.BadRequestError) as info:
            client.webhooks.create(**params)
        assert info.value.body["param"] == param
    with pytest.raises(openai.BadRequestError) as info:
        client.webhooks.create(
            event_types=["batch.completed"], name="x", url="http://127.0.0.1:9/h", extra_body={"bogus": 1}
        )
    assert info.value.body["code"] == "unknown_parameter"


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled", "expired"])
def test_each_batch_end_is_delivered_signed(hooked: tuple[LocalBatchServer, Any], final: str) -> None:
    server, client = hooked
    rx = Receiver()
    ep = client.webhooks.create(event_types=[f"batch.{final}"], name=final, url=rx.url)
    lines: Any = [chat_line(1)] if final != "failed" else b"not json\n"
    if final == "cancelled":
        server.stall_finalizing(30)
    elif final == "expired":  # the window lapses only while validating or in progress: stay there
        server.set_step_seconds(30)
    batch = submit(client, lines)
    if final == "cancelled":
        client.batches.cancel(batch.id)
    elif final == "expired":
        server.expire(batch.id)
    assert wait(client, batch.id).status == final
    rx.wait_for(1)
    body, headers, _at = rx.got[0]
    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= {k.lower() for k in headers}
    event = client.webhooks.unwrap(body, headers, secret=ep.signing_secret)
    assert event.type == f"batch.{final}" and event.data.id == batch.id and event.object == "event"
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(body, headers, secret="whsec_" + "A" * 44)


def test_a_failing_receiver_gets_retries_with_backoff(hooked: tuple[LocalBatchServer, Any]) -> None:
    server, client = hooked
    rx = Receiver(fail=3)
    ep = client.webhooks.create(event_types=["batch.completed"], name="flaky", url=rx.url)
    batch = wait(client, submit(client, [chat_line(1)]).id)
    rx.wait_for(4)
    time.sleep(0.3)
    assert len(rx.got) == 4  # three 503s, then one success, then no more
    ids = {h["webhook-id"] for _b, h, _t in rx.got}
    assert len(ids) == 1  # one event, retried with the same id
    gaps = [b[2] - a[2] for a, b in zip(rx.got, rx.got[1:], strict=False)]
    # Backoff 0.1 s, doubling: lower bounds only (a busy machine only adds to them).
    assert all(gap >= 0.1 * 2**i * 0.9 for i, gap in enumerate(gaps)), gaps
    for body, headers, _t in rx.got:  # each attempt signed afresh
        assert client.webhooks.unwrap(body, headers, secret=ep.signing_secret).data.id == batch.id
    attempts = [a for a in server.webhook_deliveries() if a["endpoint_id"] == ep.id]
    assert [a["status_code"] for a in attempts] == [503, 503, 503, 200]


def test_the_old_secret_keeps_verifying_for_a_day_if_asked(hooked: tuple[LocalBatchServer, Any]) -> None:
    _server, client = hooked
    rx = Receiver()
    ep = client.webhooks.create(event_types=["batch.completed"], name="rot", url=rx.url)
    new = client.webhooks.rotate_secret(ep.id, keep_old_secret_active_for_24_hours=True)
    wait(client, submit(client, [chat_line(1)]).id)
    rx.wait_for(1)
    body, headers, _ = rx.got[0]
    client.webhooks.unwrap(body, headers, secret=ep.signing_secret)
    client.webhooks.unwrap(body, headers, secret=new.signing_secret)
