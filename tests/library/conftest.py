"""Fixtures for the library tests: one local Batch API server per session, real `openai` clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from batch_openai.local import LocalBatchServer


@pytest.fixture(scope="session")
def server() -> Iterator[LocalBatchServer]:
    """A local Batch API server that finishes batches as fast as it can."""
    with LocalBatchServer(step_seconds=0.0, seed=0) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        srv = request.getfixturevalue("server")
        srv.clear_faults()
        srv.stall_finalizing(0)
        srv.set_line_failure_rate(0.0)


@pytest.fixture
def client(server: LocalBatchServer) -> Any:
    """A real `openai.OpenAI` pointed at the local server (SDK retries left at their default on purpose)."""
    return server.client()


@pytest.fixture
def async_client(server: LocalBatchServer) -> Any:
    """A real `openai.AsyncOpenAI` pointed at the local server."""
    return server.async_client()
