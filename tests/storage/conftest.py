"""Fixtures for the object-storage tests: one moto S3 server per test process, a fresh bucket per test,
and the session's Prefect server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flows_harness import PrefectServer, in_process_prefect, shared_prefect_server
from moto_harness import MotoServer, forget_s3_clients, start_moto


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real S3 API on loopback (moto's server, a subprocess)."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """`s3://<fresh bucket>`, with this process's S3 credentials and endpoint in the environment (where
    a user's would be), and a staging directory of this test's own."""
    forget_s3_clients()  # made by an earlier test, perhaps for another endpoint
    for key, value in moto.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BATCH_OPENAI_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.chdir(tmp_path)
    yield f"s3://{moto.new_bucket()}"
    forget_s3_clients()


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[PrefectServer]:
    """This process's Prefect pointed at the session's real Prefect server."""
    with in_process_prefect(shared_prefect_server()) as server:
        yield server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The local Batch API's key, given to the tasks through the environment only."""
    key = "sk-storage-test-key"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    os.environ.pop("BATCH_OPENAI_WORK_DIR", None)
    return key
