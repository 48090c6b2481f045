"""Scale out: the shards of one huge job as separate flow runs, so several workers share it.

`shard_fanout_flow` builds the shards, starts one run of a `batch_run_flow` deployment per shard with
`run_deployment` (any worker of the pool may pick it up), waits for them, and merges their rows in input
order. Every worker must see the same filesystem for the work directory (shared disk or a mount); each
shard run is as resumable as a normal run, and rerunning the fan-out re-attaches to the same batches (the
submit cache and the batch-metadata fingerprint key on shard content, not on which worker runs it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from batch_openai import fingerprint_file
from batch_openai.flows.batch_flow import merge_output, work_root
from batch_openai.flows.tasks import build_shards


@flow(name="batch-openai-fanout", persist_result=True, result_serializer="json", log_prints=False)
def shard_fanout_flow(
    input_path: str,
    output_path: str,
    deployment_name: str = "batch-openai-run/batch-openai-shard",
    batch_size: int = 50_000,
    max_bytes: int = 209_715_200,
    shard_parameters: dict[str, Any] | None = None,
    work_dir: str | None = None,
    poll_seconds: float = 5.0,
    timeout_hours: float = 30.0,
) -> dict[str, Any]:
    """Split a native batch-input JSONL into shards and run each as its own flow run of a deployment.

    Args:
        input_path: A native batch-input JSONL on storage every worker can read.
        output_path: Where the merged rows go (JSONL/CSV/Parquet by suffix), written atomically.
        deployment_name: The `flow-name/deployment-name` of a `batch_run_flow` deployment to run per shard.
        batch_size: Most requests per shard (one batch, one flow run each).
        max_bytes: Largest shard file in bytes.
        shard_parameters: Extra parameters for every shard run (e.g. description, max_rounds, poll_interval).
        work_dir: Shared work directory (default `$BATCH_OPENAI_WORK_DIR` or `./.batch_openai/work`).
        poll_seconds: How often to check on the shard runs.
        timeout_hours: Give up waiting for the shard runs after this long.
    """
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    log = get_run_logger()
    native = str(Path(input_path).expanduser().resolve())
    run_dir = work_root(work_dir) / fingerprint_file(native)[:16]
    shards = build_shards(native, str(run_dir / "fanout" / "shards"), batch_size, max_bytes, round_no=1)
    parent = str(flow_run.id or "")
    runs: list[tuple[str, Any]] = []
    for shard in shards:
        params = {
            **(shard_parameters or {}),
            "input_path": shard["path"],
            "output_path": str(run_dir / "fanout" / f"{shard['fingerprint'][:16]}.rows.jsonl"),
            "output_format": "jsonl",
            "work_dir": str(work_root(work_dir)),
        }
        child = run_deployment(
            deployment_name, parameters=params, timeout=0, idempotency_key=f"{parent}-{shard['fingerprint']}"
        )
        runs.append((params["output_path"], child.id))
        log.info("shard %s → flow run %s", shard["fingerprint"][:12], child.id)
    deadline = time.monotonic() + timeout_hours * 3600
    with get_client(sync_client=True) as client:
        pending = {run_id for _, run_id in runs}
        while pending:
            for run_id in list(pending):
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    if not state.is_completed():
                        raise RuntimeError(
                            f"shard flow run {run_id} ended {state.name}; rerun this flow to resume"
                        )
                    pending.discard(run_id)
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(pending)} shard run(s) still running after {timeout_hours} h")
                time.sleep(poll_seconds)
    out = str(Path(output_path).expanduser().resolve())
    merged = merge_output(
        native, [[path for path, _ in runs]], str(run_dir / "fanout" / "result.jsonl"), out, ""
    )
    return {
        "output": out,
        "total": merged["total"],
        "outcomes": merged["outcomes"],
        "flow_run_ids": [str(run_id) for _, run_id in runs],
    }
