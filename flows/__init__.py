"""Prefect flows for batch-openai: the resumable build → submit → wait → collect flow and its helpers.

    from batch_openai.flows import batch_run_flow, run_batch
    summary = run_batch("requests.jsonl", "results.jsonl", description="nightly eval")

`batch_run_flow` is the Prefect flow (deploy it, or call it inside your own flow); `run_batch` calls it
with fast settings and returns its summary; `collector_flow` resumes suspended runs; `shard_fanout_flow`
spreads a huge job over several workers; `run_local_demo` runs the flow against an in-process local server.
Names are loaded on first use, so `import batch_openai.flows.output` (used by the CLI to check paths) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch_openai.flows.batch_flow import batch_run_flow
    from batch_openai.flows.fanout import shard_fanout_flow
    from batch_openai.flows.runner import run_batch, run_local_demo
    from batch_openai.flows.suspend import collector_flow
    from batch_openai.flows.tracking import record_batch

_EXPORTS = {
    "batch_run_flow": "batch_openai.flows.batch_flow",
    "collector_flow": "batch_openai.flows.suspend",
    "record_batch": "batch_openai.flows.tracking",
    "run_batch": "batch_openai.flows.runner",
    "run_local_demo": "batch_openai.flows.runner",
    "shard_fanout_flow": "batch_openai.flows.fanout",
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
        raise AttributeError(f"module 'batch_openai.flows' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
