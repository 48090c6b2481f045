"""Deploy the batch flow on a cron schedule from Python (Prefect), e.g. a nightly evaluation.

    python examples/scheduled_deployment.py                       # build and check it; nothing is sent
    python examples/scheduled_deployment.py --apply               # register it with PREFECT_API_URL's server
    python examples/scheduled_deployment.py --apply --pool NAME   # ... for the workers of a work pool
    python examples/scheduled_deployment.py --serve               # register it and run it here, on schedule

The deployment runs `batch_openai.flows.batch_run_flow` (build → submit → wait → collect, resumable)
every night at 02:00 in the chosen time zone (cron `0 2 * * *`). Its entrypoint is a module path, so a
worker needs only the installed package. The API key is never a parameter: workers read OPENAI_API_KEY
from their environment, or the flow loads the Prefect Secret block named by `api_key_block`. For YAML
instead of Python, see deployments/prefect.yaml (`prefect deploy --all --prefect-file
deployments/prefect.yaml`).

`--apply` and `--serve` need a Prefect server (`prefect server start`, then PREFECT_API_URL): an ephemeral
one lives only as long as this process, so a schedule stored there would never fire.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

DEPLOYMENT = "nightly-summaries"
CRON = "0 2 * * *"  # 02:00 every day

# The flow's own parameters (see docs/flows.md). Paths are read on the worker's machine.
PARAMETERS: dict[str, Any] = {
    "input_path": "/data/nightly/documents.csv",
    "output_path": "/data/nightly/summaries.parquet",
    "prompt_template": "Summarise in one sentence:\n\n{text}",  # template mode: one request per CSV row
    "model": "gpt-5.4-mini",
    "id_field": "doc_id",
    "description": "nightly summaries",
    "max_rounds": 2,  # expired / timed-out lines get one more batch
    "wait_mode": "suspend",  # free the worker while the batch runs; the collector deployment resumes it
}


def nightly_schedule(timezone: str) -> tuple[Any, list[Any]]:
    """The 02:00 schedule, and its next two run times computed by the code Prefect's scheduler runs."""
    from prefect.schedules import Cron
    from prefect.server.schemas.schedules import CronSchedule

    # A bad time zone or cron fails here, not silently on the server at 02:00.
    upcoming = asyncio.run(CronSchedule(cron=CRON, timezone=timezone).get_dates(n=2))
    return Cron(CRON, timezone=timezone), upcoming


def build(schedule: Any, pool: str | None) -> Any:
    """The deployment object: flow, schedule and default parameters (no API call)."""
    from prefect.deployments.runner import EntrypointType

    from batch_openai.flows import batch_run_flow

    # Checked against the flow's signature here, so a typo fails now rather than at 02:00.
    batch_run_flow.validate_parameters(PARAMETERS)
    return batch_run_flow.to_deployment(
        name=DEPLOYMENT,
        schedules=[schedule],
        parameters=PARAMETERS,
        tags=["batch-openai", "nightly"],
        description="Nightly document summaries through the OpenAI Batch API.",
        concurrency_limit=1,  # never two nightly runs at once
        work_pool_name=pool,
        entrypoint_type=EntrypointType.MODULE_PATH,  # workers import it from the installed package
    )


def check_pool(name: str) -> None:
    """Stop with a clear message if the work pool does not exist (Prefect's API answers a bare 500)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            hint = f"prefect work-pool create {name} --type process"
            sys.exit(f"error: no work pool {name!r}: create it with `{hint}`")


def read_back(name: str) -> Any:
    """The deployment as the Prefect server stored it."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def main() -> int:
    """Build the deployment, print what it will do, and optionally register or serve it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--pool", default=None, help="work pool whose workers run it (with --apply)")
    parser.add_argument("--apply", action="store_true", help="register it with the Prefect server")
    parser.add_argument("--serve", action="store_true", help="register it and run it from this process")
    args = parser.parse_args()
    if (args.apply or args.serve) and not os.environ.get("PREFECT_API_URL"):
        sys.exit(
            "error: --apply/--serve need a Prefect server: run `prefect server start`, set PREFECT_API_URL"
        )
    if args.serve and args.pool:
        sys.exit("error: --serve runs the deployment in this process; --pool is for workers (use --apply)")

    if args.apply and args.pool:
        check_pool(args.pool)
    schedule, upcoming = nightly_schedule(args.timezone)
    deployment = build(schedule, args.pool)
    stored_schedule = deployment.schedules[0].schedule
    print(f"deployment: {deployment.flow_name}/{deployment.name} entrypoint={deployment.entrypoint}")
    print(f"schedule: cron {stored_schedule.cron!r} timezone={stored_schedule.timezone}")
    print(f"next runs: {', '.join(d.isoformat() for d in upcoming)}")
    print(f"parameters: {sorted(deployment.parameters)}")

    if args.serve:
        from prefect import serve

        serve(deployment)  # blocks: creates flow runs on schedule and runs them in this process
        return 0
    if args.apply:
        deployment_id = deployment.apply()
        stored = read_back(f"{deployment.flow_name}/{deployment.name}")
        rules = [s.schedule.cron for s in stored.schedules]
        print(f"applied: id={deployment_id} stored_schedules={rules} pool={stored.work_pool_name}")
        print(f"run it now: prefect deployment run '{deployment.flow_name}/{deployment.name}'")
    print(
        f"summary: deployment={deployment.name} kind={type(stored_schedule).__name__} "
        f"timezone={stored_schedule.timezone} next_runs={len(upcoming)} "
        f"parameters={len(deployment.parameters)} applied={args.apply}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
