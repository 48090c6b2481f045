"""The seed's `BatchRegistry` API on Prefect state: ephemeral engine and a real Prefect server."""

from __future__ import annotations

import contextvars
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from batch_openai import BatchJob, BatchRecord, BatchRegistry, BatchRequestBuilder
from batch_openai.records import variable_name


def _batch(batch_id: str, status: str = "validating", *, created: int = 1_700_000_000, **extra: Any) -> dict:
    """The fields of an `openai.types.Batch`, as the service returns them."""
    return {
        "id": batch_id,
        "input_file_id": f"file-in-{batch_id}",
        "endpoint": "/v1/chat/completions",
        "status": status,
        "created_at": created,
        "metadata": {"description": f"about {batch_id}"},
        "request_counts": {"total": 10, "completed": 0, "failed": 0},
        **extra,
    }


def test_track_a_real_job_then_get_reconnects(registry: BatchRegistry, batch_server: Any) -> None:
    client = batch_server.client()
    builder = BatchRequestBuilder()
    for i in range(3):
        builder.add(messages=[{"role": "user", "content": f"q{i}"}], model="gpt-4o-mini", custom_id=f"q{i}")
    job = builder.submit(client, description="nightly eval")

    registry.track(job)
    record = registry.get_record(job.batch_id)
    assert isinstance(record, BatchRecord)
    assert (record.batch_id, record.input_file_id, record.description) == (
        job.batch_id,
        job.input_file_id,
        "nightly eval",
    )
    assert record.endpoint == "/v1/chat/completions"
    assert record.status == job.status and record.request_counts == job.request_counts.model_dump()
    assert record.created_at.tzinfo is not None and record.flow_run_id is None

    again = registry.get(job.batch_id, client)
    assert isinstance(again, BatchJob) and again.batch_id == job.batch_id

    # The library's own hook: every batch wait() observes goes to the registry, the terminal one last.
    job.wait(poll_interval=0.05, on_progress=registry.track_batch)
    done = registry.get_record(job.batch_id)
    assert done.status == "completed" and done.output_file_id == job.batches[0].output_file_id
    assert done.model == "gpt-4o-mini"  # the service names the model once it has validated the file
    assert done.request_counts == {"total": 3, "completed": 3, "failed": 0}

    with pytest.raises(KeyError, match="batch_never_tracked"):
        registry.get("batch_never_tracked", client)


def test_list_is_newest_first_and_filters_by_status(registry: BatchRegistry) -> None:
    with registry:  # one client for the burst of writes
        registry.track_batch(_batch("batch_old", "completed", created=1_700_000_000))
        registry.track_batch(_batch("batch_new", "in_progress", created=1_700_000_200))
        registry.track_batch(_batch("batch_mid", "completed", created=1_700_000_100))
    assert [r.batch_id for r in registry.list()] == ["batch_new", "batch_mid", "batch_old"]
    assert [r.batch_id for r in registry.list(status="completed")] == ["batch_mid", "batch_old"]
    assert registry.list(status="failed") == []


def test_observations_never_move_a_record_backwards_but_update_status_is_exact(
    registry: BatchRegistry,
) -> None:
    registry.track_batch(_batch("batch_mono", "in_progress"))
    counts = {"total": 10, "completed": 10}
    registry.track_batch(_batch("batch_mono", "completed", output_file_id="file-out", request_counts=counts))
    stale = registry.track_batch(_batch("batch_mono", "finalizing"))  # a slow poller's older view
    assert stale.status == "completed"
    record = registry.get_record("batch_mono")
    assert record.status == "completed" and record.output_file_id == "file-out"
    assert record.request_counts == {"total": 10, "completed": 10, "failed": 0}
    assert record.description == "about batch_mono"

    registry.update_status("batch_mono", "expired")  # an explicit call is taken as given (seed behaviour)
    assert registry.get_record("batch_mono").status == "expired"
    registry.update_status("batch_unknown", "completed")  # untracked: ignored, as in the seed
    assert "batch_unknown" not in registry


def test_delete_removes_and_tolerates_unknown_ids(registry: BatchRegistry) -> None:
    registry.track_batch(_batch("batch_del"))
    assert "batch_del" in registry
    registry.delete("batch_del")
    assert "batch_del" not in registry and registry.list() == []
    registry.delete("batch_del")  # already gone: no error


def test_any_batch_id_and_an_oversized_description_round_trip(registry: BatchRegistry) -> None:
    odd_id = "batch_MiXeD.Case/42"
    assert variable_name(odd_id) != variable_name(odd_id.lower())
    registry.track_batch(_batch(odd_id, metadata={"description": "d" * 6000}))
    registry.track_batch(_batch(odd_id.lower()))
    record = registry.get_record(odd_id)
    assert record.batch_id == odd_id and record.description is not None
    assert record.description.startswith("d" * 1000) and len(record.description) < 5000
    assert {r.batch_id for r in registry.list()} == {odd_id, odd_id.lower()}


def test_concurrent_writers_keep_every_record_and_the_most_advanced_status(registry: BatchRegistry) -> None:
    statuses = ["validating", "in_progress", "finalizing", "completed"] * 2
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            registry.track_batch(_batch(f"batch_c{i}", created=1_700_000_000 + i))
            registry.track_batch(_batch("batch_shared", statuses[i]))  # all race to create the same record
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # Each thread runs in a copy of this context, as Prefect's task runner does (settings are contextvars).
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(write, i)) for i in range(len(statuses))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [r.batch_id for r in registry.list()]
    assert sorted(ids) == sorted([f"batch_c{i}" for i in range(len(statuses))] + ["batch_shared"])
    # Writers of one record take turns and merge: the most advanced observation wins, whatever the order.
    assert registry.get_record("batch_shared").status == "completed"


def test_records_are_prefect_variables_tagged_with_their_status(server_registry: BatchRegistry) -> None:
    from prefect.client.orchestration import get_client

    server_registry.track_batch(_batch("batch_tags", "completed"))
    with get_client(sync_client=True) as client:
        # Named for people: the description's slug and a short id; found by id through its tag.
        variable = client.read_variable_by_name("batch-openai-about-batch-tags-tags")
    assert variable is not None
    assert set(variable.tags) == {"batch-openai", "status:completed", "id:batch_tags"}
    assert variable.value["batch_id"] == "batch_tags"
    assert datetime.fromisoformat(variable.value["created_at"]) == datetime.fromtimestamp(1_700_000_000, UTC)


def test_variables_are_named_for_people_and_found_by_id(server_registry: BatchRegistry) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import VariableCreate

    from batch_openai.records import encode_record, record_from_batch, status_tags

    def names() -> set[str]:
        with get_client(sync_client=True) as client:
            body = {"variables": {"tags": {"all_": ["batch-openai"]}}}
            return {v["name"] for v in client.request("POST", "/variables/filter", json=body).json()}

    eval_id, judge_id = "batch_6790c0cf8a4c8190a0b6c1d8c4a2c8b0", "batch_6790c0cf8a4c8190a0b6c1d8ffff0001"
    server_registry.track_batch(_batch(eval_id, metadata={"description": "Nightly eval: GPT judge v2"}))
    server_registry.track_batch(_batch(judge_id, metadata={}, model="gpt-4o-mini"))
    server_registry.track_batch(
        _batch(eval_id, "completed", metadata={})
    )  # a later observation, no description
    assert {"batch-openai-nightly-eval-gpt-judge-v2-c4a2c8b0", "batch-openai-gpt-4o-mini-ffff0001"} <= names()
    assert server_registry.get_record(eval_id).status == "completed"  # the name was kept; found by id
    assert server_registry.get_record(eval_id).description == "Nightly eval: GPT judge v2"

    # Two batches whose short names collide: the second gets the full id.
    twin = "batch_0000000000000000000000000000c4a2c8b0"
    server_registry.track_batch(_batch(twin, metadata={"description": "Nightly eval: GPT judge v2"}))
    assert f"batch-openai-nightly-eval-gpt-judge-v2-{twin.removeprefix('batch_')}" in names()
    assert server_registry.get_record(twin).batch_id == twin

    # A record written under the old name (`batch-openai-<id>`) stays readable, updatable and deletable.
    old = record_from_batch(_batch("batch_oldname"))
    with get_client(sync_client=True) as client:
        client.create_variable(
            VariableCreate(
                name="batch-openai-batch_oldname", value=encode_record(old), tags=status_tags("validating")
            )
        )
    server_registry.track_batch(_batch("batch_oldname", "in_progress"))
    assert server_registry.get_record("batch_oldname").status == "in_progress"
    assert "batch-openai-batch_oldname" in names()
    server_registry.delete("batch_oldname")
    assert "batch_oldname" not in server_registry


def test_prune_deletes_old_finished_records_only(registry: BatchRegistry) -> None:
    import time

    now = int(time.time())
    registry.track_batch(_batch("batch_old_done", "completed", created=now - 40 * 86400))
    registry.track_batch(_batch("batch_old_failed", "failed", created=now - 40 * 86400))
    registry.track_batch(_batch("batch_old_running", "in_progress", created=now - 40 * 86400))
    registry.track_batch(_batch("batch_new_done", "completed", created=now - 3600))

    planned = registry.prune("30d", dry_run=True)
    assert {r.batch_id for r in planned} == {"batch_old_done", "batch_old_failed"}
    assert "batch_old_done" in registry  # a dry run deletes nothing
    assert [r.batch_id for r in registry.prune("30d", statuses=["failed"])] == ["batch_old_failed"]
    assert {r.batch_id for r in registry.prune("30d")} == {"batch_old_done"}
    assert {r.batch_id for r in registry.list()} == {"batch_old_running", "batch_new_done"}
    with pytest.raises(ValueError, match="30d"):
        registry.prune("a month")


def test_get_reconnects_a_job_that_keeps_the_record_current(
    registry: BatchRegistry, batch_server: Any
) -> None:
    """The seed's pattern (track, later get + wait + update_status) leaves current counts, not 0/3."""
    client = batch_server.client()
    builder = BatchRequestBuilder()
    for i in range(3):
        builder.add(messages=[{"role": "user", "content": f"k{i}"}], model="gpt-4o-mini", custom_id=f"k{i}")
    job = builder.submit(client, description="counts")
    registry.track(job)
    later = registry.get(job.batch_id, client)
    later.wait(poll_interval=0.05)
    registry.update_status(later.batch_id, later.status)
    record = registry.get_record(job.batch_id)
    assert record.status == "completed" and record.request_counts == {"total": 3, "completed": 3, "failed": 0}
