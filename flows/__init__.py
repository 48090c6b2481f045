"""Prefect flows for batch-openai: the resumable build → submit → wait → collect flow and its helpers.

    from flows import batch_run_flow, run_batch
    summary = run_batch("requests.jsonl", "results.jsonl", description="nightly eval")

`batch_run_flow` is the Prefect flow (deploy it, or call it inside your own flow); `run_batch` calls it
with fast settings and returns its summary; `collector_flow` resumes suspended runs; `shard_fanout_flow`
spreads a huge job over several workers; `run_local_demo` runs the flow against an in-process local server.
"""

from flows.batch_flow import batch_run_flow
from flows.fanout import shard_fanout_flow
from flows.runner import run_batch, run_local_demo
from flows.suspend import collector_flow
from flows.tracking import record_batch

__all__ = [
    "batch_run_flow",
    "collector_flow",
    "record_batch",
    "run_batch",
    "run_local_demo",
    "shard_fanout_flow",
]
