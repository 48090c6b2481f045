"""Faults (429 with retry-after-ms, 500, dropped connections) by rule and by HTTP, stats, the API key."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from local_helpers import chat_line, submit, upload

from batch_openai.local import LocalBatchServer


def test_429_carries_retry_after_ms_and_the_sdk_honours_it(server: LocalBatchServer) -> None:
    server.add_fault(route="GET /v1/batches", kind="429", times=2, retry_after_ms=300)
    client = server.client(max_retries=2)
    t0 = time.monotonic()
    client.batches.list()
    assert time.monotonic() - t0 >= 0.55  # two waits of 300 ms, as the header asked
    server.add_fault(route="GET /v1/batches", kind="429", nth=1, retry_after_ms=1234)
    with pytest.raises(openai.RateLimitError) as err:
        server.client(max_retries=0).batches.list()
    assert err.value.response.headers["retry-after-ms"] == "1234"
    assert err.value.code == "rate_limit_exceeded"
    server.clear_faults()


def test_500_and_drop_on_the_nth_call_only(client: Any, server: LocalBatchServer) -> None:
    f = upload(client, [chat_line(1)])
    route = "GET /v1/files/{file_id}"
    server.add_fault(route=route, kind="500", nth=2)
    client.files.retrieve(f.id)
    with pytest.raises(openai.InternalServerError):
        client.files.retrieve(f.id)
    client.files.retrieve(f.id)  # fired once, as asked
    server.add_fault(route="GET /v1/files/{file_id}/content", kind="drop", nth=1, times=2)
    for _ in range(2):
        with pytest.raises(openai.APIConnectionError):
            client.files.content(f.id)
    assert client.files.content(f.id).content


def test_drop_on_create_still_creates_nothing_visible_twice(client: Any, server: LocalBatchServer) -> None:
    f = upload(client, [chat_line(1)])
    before = server.stats().get("POST /v1/batches", 0)
    server.add_fault(route="POST /v1/batches", kind="drop", nth=1)
    with pytest.raises(openai.APIConnectionError):
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert not [
        b for b in client.batches.list(limit=100) if b.input_file_id == f.id
    ]  # dropped before handling
    assert server.stats()["POST /v1/batches"] == before + 1


def test_rate_fires_a_share_of_calls_and_stats_count_every_call(
    client: Any, server: LocalBatchServer
) -> None:
    server.reset_stats()
    server.add_fault(route="GET /v1/batches", kind="500", rate=0.5)
    outcomes = []
    for _ in range(60):
        try:
            client.batches.list(limit=1)
            outcomes.append(True)
        except openai.InternalServerError:
            outcomes.append(False)
    assert 10 <= outcomes.count(False) <= 50
    assert server.stats() == {"GET /v1/batches": 60}
    assert server.faults()[0]["fired"] == outcomes.count(False)


def test_bad_fault_spec_names_the_fix(server: LocalBatchServer) -> None:
    with pytest.raises(ValueError, match="unknown route"):
        server.add_fault(route="GET /v1/batch", kind="500")
    with pytest.raises(ValueError, match="unknown fault kind"):
        server.add_fault(route="GET /v1/batches", kind="503")


def test_admin_api_over_http(client: Any, server: LocalBatchServer) -> None:
    admin = httpx.Client(base_url=server.root_url)
    assert (
        admin.post("/_local/faults", json={"route": "POST /v1/files", "kind": "429", "nth": 1}).status_code
        == 200
    )
    assert admin.get("/_local/faults").json()["data"][0]["route"] == "POST /v1/files"
    with pytest.raises(openai.RateLimitError):
        upload(client, [chat_line(1)])
    assert admin.post("/_local/faults", json={"route": "nope", "kind": "429"}).status_code == 400
    admin.post("/_local/faults", json={"route": "*", "kind": "500"})
    with pytest.raises(openai.InternalServerError):
        client.batches.list()
    assert admin.delete("/_local/faults").status_code == 200
    client.batches.list()
    stats = admin.get("/_local/stats").json()
    assert stats["POST /v1/files"] >= 1 and stats["GET /v1/batches"] >= 2
    batch = submit(client, [chat_line(i) for i in range(2)])
    assert admin.post("/_local/config", json={"stall_finalizing_seconds": 0.0}).status_code == 200
    assert admin.post("/_local/config", json={"nope": 1}).status_code == 400
    assert admin.post(f"/_local/batches/{batch.id}/expire").status_code == 200
    assert admin.post("/_local/batches/batch_unknown/expire").status_code == 404


def test_api_key_is_required_when_set() -> None:
    with LocalBatchServer(step_seconds=0, api_key="sk-right") as srv:
        assert srv.client(max_retries=0).batches.list().data == []
        with pytest.raises(openai.AuthenticationError) as err:
            srv.client(api_key="sk-wrong-secret", max_retries=0).batches.list()
        assert "sk-wrong-secret" not in str(err.value) and "sk-right" not in str(err.value)
        assert err.value.code == "invalid_api_key"
        raw = httpx.get(srv.base_url + "/batches")
        assert raw.status_code == 401 and raw.json()["error"]["type"] == "invalid_request_error"


def test_unknown_route_uses_the_error_envelope(server: LocalBatchServer) -> None:
    resp = httpx.get(server.base_url + "/nothing-here")
    assert resp.status_code == 404 and "Invalid URL" in resp.json()["error"]["message"]
