"""Flows track every batch they create and keep its record current: one real flow run on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from flows_harness import read_rows, write_requests

from batch_openai import BatchRegistry
from batch_openai.local import LocalBatchServer


def test_a_flow_run_leaves_terminal_records_naming_itself(
    server_registry: BatchRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from batch_openai.flows import run_batch

    monkeypatch.setenv("OPENAI_API_KEY", "sk-registry-flow-test")
    monkeypatch.chdir(tmp_path)
    src = write_requests(tmp_path / "in.jsonl", 6)
    with (
        temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "storage")}),
        LocalBatchServer(step_seconds=0.05, api_key="sk-registry-flow-test") as server,
    ):
        summary = run_batch(
            src, tmp_path / "out.jsonl", base_url=server.base_url, batch_size=4, poll_interval=0.05
        )
    assert len(read_rows(tmp_path / "out.jsonl")) == 6

    records = {r.batch_id: r for r in server_registry.list()}
    assert set(records) == set(summary["batch_ids"]) and len(records) == 2  # 6 requests, 4 a batch
    run_ids = {r.flow_run_id for r in records.values()}
    assert len(run_ids) == 1 and None not in run_ids
    for record in records.values():
        assert record.status == "completed" and record.output_file_id  # the last observation is terminal
        assert record.request_counts is not None and record.request_counts["completed"] in (2, 4)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(next(iter(run_ids)))
    assert flow_run.state is not None and flow_run.state.is_completed()
