"""Fixtures for the examples' tests: the session's Prefect server, shared with the flow tests.

`flows_harness` lives in `tests/flows` and is importable by bare name only from there, so that directory
goes on `sys.path`; in a full run the server is already up and costs nothing here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_FLOWS_TESTS = str(Path(__file__).resolve().parents[1] / "flows")
if _FLOWS_TESTS not in sys.path:
    sys.path.insert(0, _FLOWS_TESTS)

from flows_harness import PrefectServer, shared_prefect_server  # noqa: E402


@pytest.fixture(scope="session")
def examples_prefect() -> PrefectServer:
    """The session's Prefect server (a real `prefect server start` subprocess)."""
    return shared_prefect_server()
