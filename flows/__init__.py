"""The Prefect layer of batch-openai: the library's steps as public tasks, and the resumable flow.

    from batch_openai.flows import submit_batch, wait_for_batch, parse_batch  # compose your own flow
    from batch_openai.flows import batch_run_flow, run_batch
    summary = run_batch("requests.jsonl", "results.jsonl", description="nightly eval")

`build_shards`, `submit_batch`, `wait_for_batch`, `collect_batch` and `parse_batch` are the tasks (see
docs/flows.md); `batch_run_flow` is the flow composed of them (deploy it, or call it in your own flow);
`run_batch` calls it with fast settings and returns its summary; `collector_flow` resumes suspended
runs; `shard_fanout_flow` spreads a huge job over several workers; `run_local_demo` runs the flow
against an in-process local server.
Names are loaded on first use, so `import batch_openai.flows.output` (the CLI's path checks) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batch_openai.flows.batch_flow import batch_run_flow
    from batch_openai.flows.fanout import shard_fanout_flow
    from batch_openai.flows.runner import run_batch, run_local_demo
    from batch_openai.flows.suspend import collector_flow
    from batch_openai.flows.tasks import (
        BatchRef,
        build_shards,
        collect_batch,
        parse_batch,
        submit_batch,
        wait_for_batch,
    )
    from batch_openai.flows.tracking import record_batch

_EXPORTS = {
    **dict.fromkeys(
        ["BatchRef", "build_shards", "collect_batch", "parse_batch", "submit_batch", "wait_for_batch"],
        "batch_openai.flows.tasks",
    ),
    "batch_run_flow": "batch_openai.flows.batch_flow",
    "collector_flow": "batch_openai.flows.suspend",
    "record_batch": "batch_openai.flows.tracking",
    "run_batch": "batch_openai.flows.runner",
    "run_local_demo": "batch_openai.flows.runner",
    "shard_fanout_flow": "batch_openai.flows.fanout",
}

__all__ = [
    "BatchRef",
    "batch_run_flow",
    "build_shards",
    "collect_batch",
    "collector_flow",
    "parse_batch",
    "record_batch",
    "run_batch",
    "run_local_demo",
    "shard_fanout_flow",
    "submit_batch",
    "wait_for_batch",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'batch_openai.flows' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
