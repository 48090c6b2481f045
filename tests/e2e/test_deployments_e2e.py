"""Through a real Prefect server, `prefect deploy`, process workers and `batch-openai local serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import KEY, Stack, runs_executed_by, start_worker
from flows_harness import read_rows, wait_until, write_requests

pytestmark = pytest.mark.e2e


def _batch_count(stack: Stack) -> int:
    from openai import OpenAI

    return sum(1 for _ in OpenAI(api_key=KEY, base_url=stack.base_url).batches.list(limit=100))


def _wait_final(flow_run_id, timeout: float = 150):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        holder = {}

        def final() -> bool:
            holder["run"] = client.read_flow_run(flow_run_id)
            return holder["run"].state is not None and holder["run"].state.is_final()

        assert wait_until(final, timeout=timeout, interval=0.5), holder["run"].state
        return holder["run"]


def test_deployments_are_registered_with_typed_parameters_and_schedules(prefect_client_settings: Stack):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        ui = client.read_deployment_by_name("batch-openai-run/batch-openai-run")
        nightly = client.read_deployment_by_name("batch-openai-run/batch-openai-nightly")
        collector = client.read_deployment_by_name("batch-openai-collector/batch-openai-collector")
    props = ui.parameter_openapi_schema["properties"]
    assert {"input_path", "output_path", "model", "prompt_template", "description", "max_rounds"} <= set(
        props
    )
    assert props["max_rounds"]["type"] == "integer" and props["max_rounds"].get("description")
    assert ui.parameter_openapi_schema["required"] == ["input_path", "output_path"]
    import asyncio

    from prefect.server.schemas.schedules import CronSchedule

    stored = nightly.schedules[0].schedule
    assert (stored.cron, stored.timezone) == ("0 2 * * *", "UTC")
    upcoming = asyncio.run(CronSchedule(cron=stored.cron, timezone="UTC").get_dates(n=2))  # the server's code
    assert [(d.hour, d.minute) for d in upcoming] == [(2, 0), (2, 0)]
    assert (upcoming[1] - upcoming[0]).days == 1
    assert not collector.schedules and ui.work_pool_name == "batch-openai"  # it runs on events


def test_ui_deployment_run_completes_with_its_output(prefect_client_settings: Stack, tmp_path: Path):
    from prefect.deployments import run_deployment

    src = write_requests(tmp_path / "in.jsonl", 10, prefix="e2e")
    out = tmp_path / "out.jsonl"
    before = _batch_count(prefect_client_settings)
    run = run_deployment(
        "batch-openai-run/batch-openai-run",
        parameters={"input_path": str(src), "output_path": str(out), "poll_interval": 0.2, "batch_size": 10},
        timeout=0,
    )
    final = _wait_final(run.id)
    assert final.state.is_completed(), final.state
    rows = read_rows(out)
    assert len(rows) == 10 and {r["outcome"] for r in rows} == {"succeeded"}
    assert _batch_count(prefect_client_settings) - before == 1
    assert KEY not in json.dumps(final.parameters)


def _collector_runs(client, deployment_id) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    )


@pytest.mark.slow  # three flow-run processes on the worker, ~40 s
def test_suspended_run_is_resumed_on_events_without_a_schedule_or_a_second_batch(
    prefect_client_settings: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The collector deployment has no schedule: the run's suspension runs it (the batch is still going,
    so it plans one recheck minutes later), then `batch-openai.batch.ended` (what the webhook receiver
    emits) runs it again and it resumes the run at once; the pending recheck is dropped."""
    import httpx
    from openai import OpenAI
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.events import emit_event

    from batch_openai.flows import collector_flow
    from batch_openai.flows.suspend import RECHECK_TAG

    src = write_requests(tmp_path / "in.jsonl", 6, prefix="sus")
    out = tmp_path / "out.jsonl"
    before = _batch_count(prefect_client_settings)
    admin = prefect_client_settings.base_url.removesuffix("/v1") + "/_local/config"
    # Keep the batch in `finalizing` for up to a minute: long enough for the suspension-triggered
    # collector run to find it still going; lifting the stall below lets it complete at once.
    httpx.post(admin, json={"stall_finalizing_seconds": 60.0}).raise_for_status()
    try:
        run = run_deployment(
            "batch-openai-run/batch-openai-run",
            parameters={
                "input_path": str(src),
                "output_path": str(out),
                "poll_interval": 0.2,
                "wait_mode": "suspend",
            },
            timeout=0,
        )
        with get_client(sync_client=True) as client:
            collector = client.read_deployment_by_name("batch-openai-collector/batch-openai-collector")
            assert not collector.schedules
            states = []

            def paused() -> bool:
                states.append(client.read_flow_run(run.id).state)
                return states[-1].is_paused() or states[-1].is_final()

            assert wait_until(paused, timeout=120, interval=0.5) and states[-1].is_paused(), states[-1]
            # The collector, called here in-process, leaves it alone while the batch runs...
            monkeypatch.setenv("OPENAI_API_KEY", KEY)
            monkeypatch.setenv("OPENAI_BASE_URL", prefect_client_settings.base_url)
            assert collector_flow() == {"resumed": [], "waiting": 1}
            # ...and the suspension event ran the collector deployment, which planned one recheck.
            runs: list = []

            def rechecks() -> bool:
                runs[:] = _collector_runs(client, collector.id)
                return any(r.state.is_completed() for r in runs) and any(RECHECK_TAG in r.tags for r in runs)

            assert wait_until(rechecks, timeout=150, interval=1.0), [(r.name, r.state, r.tags) for r in runs]
            (recheck,) = [r for r in runs if RECHECK_TAG in r.tags]
            assert recheck.state.is_scheduled()
            assert client.read_flow_run(run.id).state.is_paused()
            assert not out.exists()  # suspended: no process holds the wait
    finally:
        httpx.post(admin, json={"stall_finalizing_seconds": 0.0}).raise_for_status()
    batches = OpenAI(api_key=KEY, base_url=prefect_client_settings.base_url).batches
    assert wait_until(lambda: next(iter(batches.list(limit=1))).status == "completed", timeout=90)
    batch_id = next(iter(batches.list(limit=1))).id
    emit_event(  # what flows/webhooks.py emits when OpenAI reports the batch ended
        event="batch-openai.batch.ended",
        resource={"prefect.resource.id": f"batch-openai.batch.{batch_id}"},
        payload={"status": "completed"},
    )
    final = _wait_final(run.id, timeout=240)  # well before the 300 s recheck
    assert final.state.is_completed(), final.state
    assert len(read_rows(out)) == 6
    assert _batch_count(prefect_client_settings) == before + 1
    with get_client(sync_client=True) as client:
        runs = _collector_runs(client, collector.id)
        assert wait_until(
            lambda: not any(r.state.is_scheduled() for r in _collector_runs(client, collector.id)), timeout=60
        ), "the recheck should be dropped once nothing waits"
    assert len(runs) <= 4, [(r.name, r.state.name, r.tags) for r in runs]


@pytest.mark.slow
def test_fanout_shares_one_job_between_two_workers(prefect_client_settings: Stack, tmp_path: Path):
    from prefect import get_client

    from batch_openai.flows import shard_fanout_flow

    start_worker(prefect_client_settings, "worker-b")
    src = write_requests(tmp_path / "in.jsonl", 8, prefix="fan")
    out = tmp_path / "out.jsonl"
    summary = shard_fanout_flow(
        str(src),
        str(out),
        deployment_name="batch-openai-run/batch-openai-shard",
        batch_size=4,
        shard_parameters={"poll_interval": 0.2},
        work_dir=str(tmp_path / "work"),
        poll_seconds=0.5,
    )
    rows = read_rows(out)
    assert [r["custom_id"] for r in rows] == [f"fan{i}" for i in range(8)]
    assert {r["outcome"] for r in rows} == {"succeeded"}
    ids = summary["flow_run_ids"]
    assert len(ids) == 2
    logs = {p.name: p.read_text() for p in prefect_client_settings.logs.glob("worker-*.log")}
    ran_by = runs_executed_by(logs, ids)
    with get_client(sync_client=True) as client:
        assert all(client.read_flow_run(i).state.is_completed() for i in ids)
    one_each = [("worker-worker-a.log",), ("worker-worker-b.log",)]
    assert sorted(tuple(v) for v in ran_by.values()) == one_each, ran_by
