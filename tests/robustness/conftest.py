"""Fixtures for the robustness tests: the flows' session Prefect server, reused by import.

`flows_harness` lives in `tests/flows` and is importable by bare name only from there, so that
directory goes on `sys.path`; the module (and so the session's one Prefect server) is shared with the
flow tests when both run in one session.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_FLOWS_TESTS = str(Path(__file__).resolve().parents[1] / "flows")
if _FLOWS_TESTS not in sys.path:
    sys.path.insert(0, _FLOWS_TESTS)

from flows_harness import PrefectServer, in_process_prefect, shared_prefect_server  # noqa: E402


@pytest.fixture(scope="session")
def robust_prefect() -> PrefectServer:
    """The session's Prefect server (a real `prefect server start` subprocess)."""
    return shared_prefect_server()


@pytest.fixture
def robust_prefect_api(robust_prefect: PrefectServer) -> Iterator[PrefectServer]:
    """Point this process's Prefect at the session server and its PREFECT_HOME; heartbeats off."""
    with in_process_prefect(robust_prefect):
        yield robust_prefect


@pytest.fixture(autouse=True)
def _robust_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own directory with no stray work dir, base URL or Prefect key."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BATCH_OPENAI_WORK_DIR", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    os.environ.pop("PREFECT_API_KEY", None)
