"""Canary keys: the API key never lands in Prefect's database, result storage, artifacts or logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from flows_harness import PrefectServer, write_requests

from batch_openai.flows import run_batch
from batch_openai.local import LocalBatchServer


def _prefect_bytes(server: PrefectServer) -> bytes:
    """Everything Prefect persisted: the database (with its WAL) and every result/cache record file."""
    blobs = [p.read_bytes() for p in server.home.glob("prefect.db*")]
    blobs += [p.read_bytes() for p in (server.home / "storage").rglob("*") if p.is_file()]
    blobs += [p.read_bytes() for p in server.home.rglob("*.lock") if p.is_file()]
    return b"\n".join(blobs)


def _flow_logs(server: PrefectServer) -> str:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return "\n".join(log.message for log in client.read_logs(limit=200))


def test_canary_key_from_the_environment_is_stored_nowhere(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
):
    canary = "sk-canary-env-7c1f9a2b44d0"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    src = write_requests(tmp_path / "in.jsonl", 5, prefix="canary")
    out = tmp_path / "out.jsonl"
    control = "control-string-passed-as-a-parameter-1b2c"
    with LocalBatchServer(step_seconds=0.0, api_key=canary) as server:
        summary = run_batch(
            src,
            out,
            base_url=server.base_url,
            poll_interval=0.05,
            work_dir=str(tmp_path / "w"),
            description=control,
        )
    assert summary["outcomes"]["succeeded"] == 5  # the key worked...
    assert control.encode() in _prefect_bytes(prefect_api)  # the search finds what a parameter stores
    captured = capfd.readouterr()
    assert canary not in captured.out + captured.err  # ...and was never printed,
    assert canary.encode() not in _prefect_bytes(prefect_api)  # stored by Prefect,
    assert canary not in _flow_logs(prefect_api)  # sent to its logs,
    for path in [out, *(tmp_path / "w").rglob("*")]:  # or written next to the data.
        assert not path.is_file() or canary.encode() not in path.read_bytes()


def test_canary_key_from_a_secret_block_is_stored_nowhere_in_plaintext(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from prefect.blocks.system import Secret

    canary = "sk-canary-block-93e0b1d5f2aa"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here either
    Secret(value=canary).save("openai-canary", overwrite=True)
    src = write_requests(tmp_path / "in.jsonl", 3, prefix="blk")
    with LocalBatchServer(step_seconds=0.0, api_key=canary) as server:
        summary = run_batch(
            src,
            tmp_path / "o.jsonl",
            base_url=server.base_url,
            poll_interval=0.05,
            api_key_block="openai-canary",
        )
    assert summary["outcomes"]["succeeded"] == 3
    # Prefect stores block values encrypted; parameters hold only the block's name.
    assert canary.encode() not in _prefect_bytes(prefect_api)
    assert canary not in _flow_logs(prefect_api)


def test_a_rejected_key_is_not_echoed_in_the_error(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
):
    wrong = "sk-canary-wrong-5d7e6f8a90bc"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    src = write_requests(tmp_path / "in.jsonl", 2, prefix="wrong")
    with LocalBatchServer(step_seconds=0.0, api_key="sk-the-right-one") as server:
        with pytest.raises(Exception) as info:
            run_batch(src, tmp_path / "o.jsonl", base_url=server.base_url, poll_interval=0.05)
        assert server.stats().get("POST /v1/batches", 0) == 0
    assert (
        "BatchAuthError" in type(info.value).__name__ or "401" in str(info.value) or "key" in str(info.value)
    )
    assert wrong not in str(info.value)
    captured = capfd.readouterr()
    assert wrong not in captured.out + captured.err
    assert wrong.encode() not in _prefect_bytes(prefect_api)
    assert not (tmp_path / "o.jsonl").exists()


def test_missing_key_is_a_clear_error_before_anything_is_uploaded(
    prefect_api: PrefectServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from batch_openai.flows.client import MissingAPIKeyError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    src = write_requests(tmp_path / "in.jsonl", 2, prefix="nokey")
    with LocalBatchServer(step_seconds=0.0) as server:
        with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
            run_batch(src, tmp_path / "o.jsonl", base_url=server.base_url, poll_interval=0.05, max_rounds=1)
        assert server.stats().get("POST /v1/files", 0) == 0


def test_one_client_per_process_base_url_and_key_and_the_key_is_not_kept(monkeypatch: pytest.MonkeyPatch):
    from batch_openai.flows import client as client_module

    canary = "sk-canary-client-cache-6a1f"
    monkeypatch.setattr(client_module, "_clients", type(client_module._clients)())
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    first = client_module.build_client("http://127.0.0.1:9/v1")
    assert client_module.build_client("http://127.0.0.1:9/v1") is first  # shared by the process's tasks
    assert client_module.build_client("http://127.0.0.1:10/v1") is not first  # another base URL
    monkeypatch.setenv("OPENAI_API_KEY", canary + "-rotated")
    rotated = client_module.build_client("http://127.0.0.1:9/v1")
    assert rotated is not first and rotated.api_key == canary + "-rotated"  # a new key: a new client
    assert canary not in repr(list(client_module._clients))  # only digests of keys are kept
    for i in range(20):
        client_module.build_client(f"http://127.0.0.1:{100 + i}/v1")
    assert len(client_module._clients) == client_module._CLIENTS_KEPT  # bounded
