"""The webhook receiver: deliveries from the local server verify with the SDK, emit a Prefect event, and
resume a paused run whose batches have all ended (a real run on the session Prefect server)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flows_harness import PrefectServer, wait_until

from batch_openai.flows.suspend import VARIABLE_PREFIX, WAIT_TAG
from batch_openai.flows.webhooks import (
    BATCH_ENDED_EVENT,
    WebhookReceiver,
    batch_resource_id,
    make_receiver_server,
    resume_waiting_runs,
)
from batch_openai.local import LocalBatchServer

LINE = {
    "custom_id": "a",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
}


@pytest.fixture
def local(api_key: str) -> Iterator[LocalBatchServer]:
    with LocalBatchServer(step_seconds=0.0, api_key=api_key, webhook_backoff_seconds=0.2) as server:
        yield server


def _receiver_on(receiver: WebhookReceiver) -> tuple[str, Any]:
    http = make_receiver_server("127.0.0.1", 0, receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{http.server_address[1]}/openai", http


def _batch(client: Any, wait: bool = True) -> Any:
    f = client.files.create(file=("in.jsonl", (json.dumps(LINE) + "\n").encode()), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    if wait:
        assert wait_until(lambda: client.batches.retrieve(b.id).status == "completed", timeout=30)
    return b


def _events(api: PrefectServer, batch_id: str) -> list[dict[str, Any]]:
    body = {
        "filter": {
            "event": {"name": [BATCH_ENDED_EVENT]},
            "resource": {"id": [batch_resource_id(batch_id)]},
            "occurred": {"since": "2020-01-01T00:00:00Z"},
        },
        "limit": 10,
    }
    r = httpx.post(f"{api.api_url}/events/filter", json=body, timeout=10)
    r.raise_for_status()
    return list(r.json().get("events", []))


def test_a_delivery_verifies_and_emits_the_batch_ended_event(
    prefect_api: PrefectServer, local: LocalBatchServer
) -> None:
    client = local.client(max_retries=0)
    receiver = WebhookReceiver("set-below", client=client, resume=False)
    url, http = _receiver_on(receiver)
    try:
        ep = client.webhooks.create(event_types=["batch.completed", "batch.cancelled"], name="t", url=url)
        receiver.secret = ep.signing_secret  # the endpoint's secret exists only once it is created
        batch = _batch(client)
        assert wait_until(lambda: any(h.get("batch_id") == batch.id for h in receiver.handled), timeout=30)
        outcome = next(h for h in receiver.handled if h.get("batch_id") == batch.id)
        assert outcome["type"] == "batch.completed" and outcome["emitted"] is True
        assert wait_until(lambda: bool(_events(prefect_api, batch.id)), timeout=60, interval=0.5)
        event = _events(prefect_api, batch.id)[0]
        assert event["resource"]["prefect.resource.id"] == f"batch-openai.batch.{batch.id}"
        assert event["payload"]["status"] == "completed"

        # A forged delivery is refused; a retried one (same webhook-id) is acknowledged once.
        status, _ = receiver.handle(b'{"id": "evt_x"}', {"webhook-id": "x", "webhook-timestamp": "1"})
        assert status == 400
        assert client.webhooks.test(ep.id, event_type="batch.completed").status_code == 200
    finally:
        http.shutdown()


def test_the_receiver_resumes_a_paused_run_once_all_its_batches_ended(
    prefect_api: PrefectServer, local: LocalBatchServer
) -> None:
    from prefect import flow, get_client
    from prefect.states import Paused
    from prefect.variables import Variable

    @flow(name="batch-openai-webhook-waiter")
    def waiter() -> None:
        return None

    client = local.client(max_retries=0)
    done = _batch(client)
    local.stall_finalizing(60)  # the second batch stays in flight until it is cancelled
    pending = _batch(client, wait=False)
    with get_client(sync_client=True) as prefect:
        run = prefect.create_flow_run(waiter, state=Paused(timeout_seconds=600, pause_key="batches-r1-c1"))
    name = f"{VARIABLE_PREFIX}{run.id}"
    record = {
        "flow_run_id": str(run.id),
        "batch_ids": [done.id, pending.id],
        "base_url": local.base_url,
        "api_key_block": None,  # the key comes from OPENAI_API_KEY, as in a worker
    }
    Variable.set(name, record, tags=[WAIT_TAG], overwrite=True)
    try:
        # One batch still in flight: the run keeps waiting.
        first = resume_waiting_runs(done.id)
        assert first["resumed"] == [] and first["waiting"] == [str(run.id)]

        receiver = WebhookReceiver("placeholder", emit=False)
        url, http = _receiver_on(receiver)
        try:
            ep = client.webhooks.create(event_types=["batch.cancelled"], name="resume", url=url)
            receiver.secret = ep.signing_secret
            client.batches.cancel(pending.id)
            assert wait_until(lambda: client.batches.retrieve(pending.id).status == "cancelled", timeout=30)
            ended = time.monotonic()
            assert wait_until(lambda: any(h.get("resumed") for h in receiver.handled), timeout=30)
            delay = time.monotonic() - ended
        finally:
            http.shutdown()
        outcome = next(h for h in receiver.handled if h.get("resumed"))
        assert outcome["batch_id"] == pending.id and outcome["resumed"] == [str(run.id)]
        with get_client(sync_client=True) as prefect:
            state = prefect.read_flow_run(run.id).state
        assert state is not None and not state.is_paused()
        print(f"resume delay after the batch ended (webhook -> resume_flow_run): {delay:.2f} s")
        assert delay < 15
    finally:
        Variable.unset(name)
