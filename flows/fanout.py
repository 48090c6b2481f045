"""Scale out: the shards of one huge job as separate flow runs, so several workers share it.

`shard_fanout_flow` builds the shards, starts one run of a `batch_run_flow` deployment per shard with
`run_deployment` (any worker of the pool may pick it up), waits for them, and merges their rows in input
order. The workers share the work directory: a shared disk, or a URL (`s3://bucket/batch-work`) when they
share no disk (each shard then travels as an object, and each shard run's rows come back as one). Each
shard run is as resumable as a normal run, and rerunning the fan-out re-attaches to the same batches (the
submit cache and the batch-metadata fingerprint key on shard content, not on which worker runs it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from batch_openai.flows.batch_flow import merge_output
from batch_openai.flows.reuse import snapshot_input
from batch_openai.flows.tasks import build_shards
from batch_openai.flows.workspace import Workspace, load_storage_block
from batch_openai.storage import is_url, local_path


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
    storage_block: str | None = None,
    result_storage: str | None = None,
) -> dict[str, Any]:
    """Split a native batch-input JSONL into shards and run each as its own flow run of a deployment.

    Args:
        input_path: A native batch-input JSONL: a path on this worker, or a URL (`s3://...`).
        output_path: Where the merged rows go (JSONL/CSV/Parquet by suffix; a path or a URL), written
            atomically.
        deployment_name: The `flow-name/deployment-name` of a `batch_run_flow` deployment to run per shard.
        batch_size: Most requests per shard (one batch, one flow run each).
        max_bytes: Largest shard file in bytes.
        shard_parameters: Extra parameters for every shard run (e.g. description, max_rounds, poll_interval).
        work_dir: The work directory every worker shares: a shared path, or a URL for workers that share
            no disk (default `$BATCH_OPENAI_WORK_DIR` or `./.batch_openai/work`).
        poll_seconds: How often to check on the shard runs.
        timeout_hours: Give up waiting for the shard runs after this long.
        storage_block: Object-storage credentials block for this run and every shard run (see
            `batch_run_flow`).
        result_storage: The submit cache's storage for every shard run (see `batch_run_flow`).
    """
    from prefect import get_client
    from prefect.deployments import run_deployment
    from prefect.runtime import flow_run

    log = get_run_logger()
    if storage_block:
        load_storage_block(storage_block)
    workspace = Workspace.of(work_dir)
    native, _ = snapshot_input(input_path, workspace.local)  # this run works from a copy
    run_dir = native.parent
    shards = build_shards(str(native), str(run_dir / "fanout" / "shards"), batch_size, max_bytes, round_no=1)
    workspace.push(s["path"] for s in shards)  # shard runs on other machines read them from there
    parent = str(flow_run.id or "")
    shared = {"storage_block": storage_block, "result_storage": result_storage}
    runs: list[tuple[Path, Any]] = []
    for shard in shards:
        rows = run_dir / "fanout" / f"{shard['fingerprint'][:16]}.rows.jsonl"
        params = {
            **(shard_parameters or {}),
            **{k: v for k, v in shared.items() if v},
            "input_path": workspace.url_of(shard["path"]) or shard["path"],
            "output_path": workspace.url_of(rows) or str(rows),
            "output_format": "jsonl",
            "work_dir": workspace.remote or str(workspace.local),
        }
        child = run_deployment(
            deployment_name, parameters=params, timeout=0, idempotency_key=f"{parent}-{shard['fingerprint']}"
        )
        runs.append((rows, child.id))
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
    if not workspace.pull(path for path, _ in runs):
        raise RuntimeError(
            f"a shard run's rows are missing under {workspace.remote}; rerun this flow to resume"
        )
    out = output_path if is_url(output_path) else str(local_path(output_path).resolve())
    merged = merge_output(
        str(native), [[str(path) for path, _ in runs]], str(run_dir / "fanout" / "result.jsonl"), out, ""
    )
    return {
        "output": out,
        "total": merged["total"],
        "outcomes": merged["outcomes"],
        "flow_run_ids": [str(run_id) for _, run_id in runs],
    }
