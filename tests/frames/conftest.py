"""Fixtures for the DataFrame, cost and queue tests: a fast local Batch API server, real `openai` clients.

The flow-side test reuses the session's Prefect server from `tests/flows/flows_harness.py` (that directory
goes on `sys.path`, as the robustness tests do), so one Prefect server serves the whole session.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batch_openai.local import LocalBatchServer

_FLOWS_TESTS = str(Path(__file__).resolve().parents[1] / "flows")
if _FLOWS_TESTS not in sys.path:
    sys.path.insert(0, _FLOWS_TESTS)


@pytest.fixture(scope="module")
def fast_server() -> Iterator[LocalBatchServer]:
    """A local Batch API server that finishes batches as fast as it can (and knows the tests' house model)."""
    with LocalBatchServer(step_seconds=0.0, seed=0, models=["house-model-1"]) as srv:
        yield srv


@pytest.fixture
def fast_client(fast_server: LocalBatchServer) -> Any:
    """A real `openai.OpenAI` pointed at the fast local server."""
    return fast_server.client()


@pytest.fixture
def frames_prefect_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point this process's Prefect at the session's Prefect server; heartbeats off; work in tmp_path."""
    from flows_harness import in_process_prefect, shared_prefect_server

    server = shared_prefect_server()
    monkeypatch.chdir(tmp_path)
    with in_process_prefect(server):
        yield server
