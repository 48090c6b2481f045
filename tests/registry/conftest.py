"""Fixtures for the registry tests: the registry on the ephemeral engine and on a real Prefect server.

The Prefect server is the session's shared one (tests/flows/flows_harness.py), so the suite starts
Prefect once; the ephemeral engine is started once per session for one registry home
(`shared_registry_home`, also used by the library's registry-hook tests).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))

from flows_harness import PrefectServer, shared_prefect_server, shared_registry_home

from batch_openai import BatchRegistry
from batch_openai.local import LocalBatchServer


@pytest.fixture(scope="session")
def prefect_server() -> PrefectServer:
    """The session's real `prefect server start` subprocess."""
    return shared_prefect_server()


@pytest.fixture(scope="session")
def ephemeral_home() -> Iterator[Path]:
    """A registry home served by Prefect's ephemeral engine (one start for the whole session, shared with
    tests/library/test_registry_hook.py)."""
    yield shared_registry_home()
    from batch_openai.flows.registry_store import stop_servers

    stop_servers()  # now, while pytest's log streams are still open


@pytest.fixture
def server_registry(
    prefect_server: PrefectServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BatchRegistry]:
    """The default registry (no path) while Prefect's settings point at the session's server."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    monkeypatch.delenv("OPENAI_BATCH_REGISTRY", raising=False)
    registry = BatchRegistry()
    updates = {PREFECT_API_URL: prefect_server.api_url, PREFECT_HOME: str(prefect_server.home)}
    with temporary_settings(updates=updates):
        _clear(registry)
        yield registry


@pytest.fixture
def home_registry(ephemeral_home: Path) -> BatchRegistry:
    """A registry with a home of its own (`BatchRegistry(path=...)`), on the ephemeral engine."""
    registry = BatchRegistry(ephemeral_home)
    _clear(registry)
    return registry


@pytest.fixture(params=["ephemeral", "server"])
def registry(request: pytest.FixtureRequest) -> BatchRegistry:
    """The same behaviour, checked on both kinds of Prefect state."""
    name = "home_registry" if request.param == "ephemeral" else "server_registry"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def batch_server() -> Iterator[LocalBatchServer]:
    """A local Batch API server that finishes batches at once."""
    with LocalBatchServer(step_seconds=0.0, seed=1) as server:
        yield server


def _clear(registry: BatchRegistry) -> None:
    with registry:
        for record in registry.list():
            registry.delete(record.batch_id)
