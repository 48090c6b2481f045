"""Fixtures for the flow tests: the session's real Prefect server, used in-process via settings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from flows_harness import PrefectServer, in_process_prefect, shared_prefect_server


@pytest.fixture(scope="session")
def prefect_server() -> PrefectServer:
    """The session's Prefect server (a real `prefect server start` subprocess)."""
    return shared_prefect_server()


@pytest.fixture(scope="session")
def prefect_api(prefect_server: PrefectServer) -> Iterator[PrefectServer]:
    """Point this process's Prefect at the session server and its PREFECT_HOME; heartbeats off."""
    with in_process_prefect(prefect_server):
        yield prefect_server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """An API key the local server requires, reaching the tasks only through the environment."""
    key = "sk-flows-test-key"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return key


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory, so default work dirs never collide."""
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("BATCH_OPENAI_WORK_DIR", raising=False)
    os.environ.pop("PREFECT_API_KEY", None)
