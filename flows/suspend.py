"""Waiting a day without holding a worker: suspend after submit, and a collector that resumes.

In `wait_mode="suspend"` (deployments only) the flow records its batch ids in a Prefect Variable
(`batch-openai-wait-<flow run id>`, tag `batch-openai-wait`), emits the event `batch-openai.run.suspended`
(resource `batch-openai.run.<flow run id>`) and suspends: no process is left behind. The collector
deployment (`collector_flow`) runs on events, not on a clock: when a run suspends, and when a batch ends
(`batch-openai.batch.ended`, resource `batch-openai.batch.<batch id>`, emitted by the webhook receiver in
`batch_openai.flows.webhooks`). It resumes a run once all its batches have ended; while runs still wait it
schedules one more run of itself `recheck_seconds` later (for services that send no webhooks), and when
nothing waits it deletes that pending recheck, so an idle installation adds no runs at all.
A resumed run starts again from the top, where the cached submit task returns the same batches, so
nothing is paid twice; it then collects as usual.

Trade-off: polling keeps one worker process alive for the whole wait but reacts within one poll interval;
suspending frees the worker, but a run resumes only when the collector next runs (at once on a webhook
event, else at the next recheck) and pays Prefect's start-up again on resume.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batch_openai.lifecycle import TERMINAL

WAIT_TAG = "batch-openai-wait"
SUSPENDED_EVENT = "batch-openai.run.suspended"
BATCH_ENDED_EVENT = "batch-openai.batch.ended"  # emitted by the webhook receiver (flows/webhooks.py)
RECHECK_TAG = "batch-openai-recheck"
VARIABLE_PREFIX = "batch-openai-wait-"
VARIABLE_MAX_CHARS = 4500


def _variable_name(flow_run_id: str) -> str:
    return f"{VARIABLE_PREFIX}{flow_run_id}"


@task(name="check-batches", cache_policy=NO_CACHE)  # live state: never reuse an earlier answer
def check_batches(
    batch_ids: list[str], base_url: str | None = None, api_key_block: str | None = None
) -> dict[str, str]:
    """The current status of each batch (`gone` for one that no longer exists)."""
    from batch_openai import BatchJob, BatchNotFoundError
    from batch_openai.flows.client import build_client

    client = build_client(base_url, api_key_block)
    out: dict[str, str] = {}
    for batch_id in batch_ids:
        try:
            out[batch_id] = BatchJob.from_id(client, batch_id).status
        except BatchNotFoundError:
            out[batch_id] = "gone"
    return out


def wait_by_suspending(batch_ids: list[str], round_no: int, opts: dict[str, Any]) -> None:
    """Suspend the current flow run until the collector sees every batch ended (poll when not deployed)."""
    from prefect.context import FlowRunContext
    from prefect.flow_runs import suspend_flow_run
    from prefect.variables import Variable

    log = get_run_logger()
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None or not ctx.flow_run.deployment_id:
        log.warning("wait_mode='suspend' needs a deployment; this run polls instead")
        return
    run_id = str(ctx.flow_run.id)
    name = _variable_name(run_id)
    check = 0
    while True:
        statuses = check_batches(batch_ids, opts["base_url"], opts["api_key_block"])
        if all(s in TERMINAL or s == "gone" for s in statuses.values()):
            with contextlib.suppress(Exception):
                Variable.unset(name)
            return
        record = {
            "flow_run_id": run_id,
            "batch_ids": batch_ids,
            "base_url": opts["base_url"],
            "api_key_block": opts["api_key_block"],
        }
        if (
            len(json.dumps(record)) > VARIABLE_MAX_CHARS
        ):  # Variables hold <= 5000 chars: spill to the work dir
            spill = Path(opts["run_dir"]) / f"waiting-{run_id}.json"
            spill.write_text(json.dumps(batch_ids))
            record = {**record, "batch_ids": None, "batch_ids_file": str(spill)}
        Variable.set(name, record, tags=[WAIT_TAG], overwrite=True)
        check += 1
        log.info(
            "round %d: %d batch(es) in flight; suspending until the collector resumes this run",
            round_no,
            sum(s not in TERMINAL for s in statuses.values()),
        )
        _announce_suspension(run_id, ctx.flow_run.name, batch_ids)
        # A resumed run re-executes from the top: a used key returns at once, so each check gets its own.
        suspend_flow_run(
            timeout=int(opts["suspend_timeout_hours"] * 3600), key=f"batches-r{round_no}-c{check}"
        )


def _announce_suspension(run_id: str, run_name: str, batch_ids: list[str]) -> None:
    """Emit `batch-openai.run.suspended`: the collector deployment's trigger runs it (never fails a run)."""
    from prefect.events import emit_event

    with contextlib.suppress(Exception):
        emit_event(
            event=SUSPENDED_EVENT,
            resource={"prefect.resource.id": f"batch-openai.run.{run_id}", "prefect.resource.name": run_name},
            related=[
                {"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}
            ],
            payload={"batch_ids": batch_ids[:100], "batches": len(batch_ids)},
        )


def _plan_recheck(client: Any, waiting: int, recheck_seconds: float | None) -> str | None:
    """While runs wait, keep one future run of this collector's deployment; when none wait, drop it.

    Returns when the recheck runs (ISO time), or None. Does nothing outside a deployment.
    """
    from datetime import UTC, datetime, timedelta

    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.runtime import deployment, flow_run
    from prefect.states import Scheduled

    deployment_id = deployment.id
    if not deployment_id:
        return None
    pending = [
        run
        for run in client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
        )
        if str(run.id) != str(flow_run.id)
    ]
    if not waiting or not recheck_seconds:
        for run in pending:
            with contextlib.suppress(Exception):
                client.delete_flow_run(run.id)
        return None
    if pending:
        return min(str(r.expected_start_time) for r in pending)
    when = datetime.now(UTC) + timedelta(seconds=recheck_seconds)
    client.create_flow_run_from_deployment(
        deployment_id,
        state=Scheduled(scheduled_time=when),
        parameters=dict(flow_run.parameters or {}),
        tags=[RECHECK_TAG],
    )
    return when.isoformat()


@flow(name="batch-openai-collector", log_prints=False)
def collector_flow(limit: int = 200, recheck_seconds: float | None = 300.0) -> dict[str, Any]:
    """Resume suspended batch runs whose batches have all ended (its deployment runs it on events).

    Args:
        limit: Most waiting runs to look at per call.
        recheck_seconds: While runs still wait, run this deployment again this many seconds later (for
            services that send no webhooks); none: only events run it.
    """
    from prefect import get_client
    from prefect.flow_runs import resume_flow_run
    from prefect.variables import Variable

    log = get_run_logger()
    resumed: list[str] = []
    waiting = 0
    with get_client(sync_client=True) as client:
        variables = [v for v in client.read_variables(limit=None) if WAIT_TAG in (v.tags or [])][:limit]
        for var in variables:
            record = var.value if isinstance(var.value, dict) else {}
            run_id = record.get("flow_run_id")
            if not run_id:
                continue
            try:
                run = client.read_flow_run(run_id)
            except Exception:
                Variable.unset(var.name)  # the run is gone: nothing to resume
                continue
            state = run.state
            if state is None or state.is_final():
                Variable.unset(var.name)
                continue
            if not state.is_paused():
                waiting += 1  # still running (about to suspend, or resumed): look again later
                continue
            ids = record.get("batch_ids")
            if ids is None:
                ids = json.loads(Path(record["batch_ids_file"]).read_text())
            statuses = check_batches(ids, record.get("base_url"), record.get("api_key_block"))
            if all(s in TERMINAL or s == "gone" for s in statuses.values()):
                log.info("resuming flow run %s: its %d batch(es) have ended", run_id, len(statuses))
                resume_flow_run(run.id)
                resumed.append(str(run_id))
            else:
                waiting += 1
        recheck = _plan_recheck(client, waiting, recheck_seconds)
    if recheck:
        log.info("%d run(s) still waiting; the collector looks again at %s", waiting, recheck)
    return {"resumed": resumed, "waiting": waiting}
