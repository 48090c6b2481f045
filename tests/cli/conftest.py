"""Fixtures for the CLI tests: `batch-openai` as a subprocess against a local Batch API server.

Registry writes go to the session's shared Prefect server (tests/flows/flows_harness.py), so no CLI
call pays the ephemeral engine's start-up; the test process reads and seeds the same registry.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))

from cli_helpers import API_KEY, CLI
from flows_harness import PrefectServer, shared_prefect_server

from batch_openai import BatchRegistry
from batch_openai.local import LocalBatchServer


@pytest.fixture(scope="session")
def prefect_server() -> PrefectServer:
    """The session's real `prefect server start` subprocess."""
    return shared_prefect_server()


@pytest.fixture(scope="session")
def batch_server() -> Iterator[LocalBatchServer]:
    """A local Batch API server that requires an API key and moves batches along quickly."""
    with LocalBatchServer(step_seconds=0.2, seed=5, api_key=API_KEY) as server:
        yield server


@pytest.fixture
def registry(prefect_server: PrefectServer) -> Iterator[BatchRegistry]:
    """The registry the CLI subprocesses use (the server's), empty at the start of each test."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    updates = {PREFECT_API_URL: prefect_server.api_url, PREFECT_HOME: str(prefect_server.home)}
    registry = BatchRegistry()
    with temporary_settings(updates=updates):
        with registry:
            for record in registry.list():
                registry.delete(record.batch_id)
        yield registry


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(prefect_server: PrefectServer, batch_server: LocalBatchServer, tmp_path: Path) -> RunCli:
    """Run `batch-openai ARGS...` in a subprocess; keyword `env` adds or (with None) removes variables."""

    def run(*args: str, env: dict[str, str | None] | None = None, cwd: Path | None = None):
        full = prefect_server.env(OPENAI_BASE_URL=batch_server.base_url, OPENAI_API_KEY=API_KEY)
        full.pop("OPENAI_BATCH_REGISTRY", None)
        for key, value in (env or {}).items():
            if value is None:
                full.pop(key, None)
            else:
                full[key] = value
        return subprocess.run(
            [CLI, *args], env=full, cwd=cwd or tmp_path, capture_output=True, text=True, timeout=120
        )

    return run
