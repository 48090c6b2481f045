"""Prefect flows for batch-openai: the resumable build → submit → wait → collect flow and its helpers.

    from flows import batch_run_flow, run_batch
    summary = run_batch("requests.jsonl", "results.jsonl", description="nightly eval")

`batch_run_flow` is the Prefect flow (deploy it, or call it inside your own flow); `run_batch` calls it
with fast settings and returns its summary; `collector_flow` resumes suspended runs; `shard_fanout_flow`
spreads a huge job over several workers; `run_local_demo` runs the flow against an in-process local server.
Names are loaded on first use, so `import flows.output` (used by the CLI to check paths) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.batch_flow import batch_run_flow
    from flows.fanout import shard_fanout_flow
    from flows.runner import run_batch, run_local_demo
    from flows.suspend import collector_flow
    from flows.tracking import record_batch

_EXPORTS = {
    "batch_run_flow": "flows.batch_flow",
    "collector_flow": "flows.suspend",
    "record_batch": "flows.tracking",
    "run_batch": "flows.runner",
    "run_local_demo": "flows.runner",
    "shard_fanout_flow": "flows.fanout",
}

__all__ = [
    "batch_run_flow",
    "collector_flow",
    "record_batch",
    "run_batch",
    "run_local_demo",
    "shard_fanout_flow",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flows' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
