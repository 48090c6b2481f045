"""Shared helpers for the flow and e2e tests: one real Prefect server per test session, request files.

The Prefect server is started once (lazily) and reused by every flow test and the e2e tests, in this
process and in the `batch-openai run` subprocesses, so the suite pays Prefect's start-up once (once per
pytest-xdist worker: each worker process has its own, on a free port with its own PREFECT_HOME).
Every process started here is tracked and stopped at exit, also after Ctrl-C or SIGTERM (`reap`).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_requests(
    path: Path, n: int, *, prefix: str = "r", model: str = "gpt-4o-mini", start: int = 0
) -> Path:
    """A native batch-input JSONL with `n` chat requests (custom_ids `{prefix}{i}`); the prefix is in the
    prompt too, so files of different prefixes share no request content (answers are reused by content)."""
    with open(path, "w") as fh:
        for i in range(start, start + n):
            body = {
                "model": model,
                "messages": [{"role": "user", "content": f"Say something about {prefix} item {i}."}],
            }
            line = {
                "custom_id": f"{prefix}{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body,
            }
            fh.write(json.dumps(line) + "\n")
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON rows of a JSONL file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.1) -> bool:
    """Poll `predicate` until true or `timeout`; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@dataclass
class PrefectServer:
    """A `prefect server start` subprocess on 127.0.0.1 with its own PREFECT_HOME."""

    home: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def api_url(self) -> str:
        """The server's API URL."""
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def database(self) -> Path:
        """The server's SQLite database file."""
        return self.home / "prefect.db"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a subprocess that should use this server and this PREFECT_HOME."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_RUNNER_POLL_FREQUENCY="2",
            PREFECT_WORKER_QUERY_SECONDS="2",
            PREFECT_WORKER_PREFETCH_SECONDS="2",
        )
        env.update(extra)
        return env

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        stop_process(self.process, grace=20)


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop a child and its process group (it may have started its own session): SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            proc.send_signal(sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


_children: list[subprocess.Popen[Any]] = []


def _pid_dir() -> Path | None:
    root = os.environ.get("BATCH_OPENAI_TEST_ROOT")
    return Path(root) / "pids" if root else None


def track_process(proc: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Stop `proc` when the test process exits, however it exits (see `reap`).

    Its pid is also written under the session directory, so the xdist controller stops it if this
    worker dies first (tests/conftest.py).
    """
    _children.append(proc)
    pids = _pid_dir()
    if pids is not None:
        pids.mkdir(parents=True, exist_ok=True)
        (pids / str(proc.pid)).touch()
    return proc


def reap() -> None:
    """Stop every tracked child still running (atexit, and the root conftest's session end / signals)."""
    pids = _pid_dir()
    while _children:
        proc = _children.pop()
        stop_process(proc)
        if pids is not None:
            (pids / str(proc.pid)).unlink(missing_ok=True)


atexit.register(reap)


def start_prefect_server(home: Path, timeout: float = 180.0) -> PrefectServer:
    """Start `prefect server start` on a free port and wait for /api/health (retried once on a lost port)."""
    try:
        return _start_prefect_server(home, timeout)
    except RuntimeError as exc:
        if "address already in use" not in str(exc).lower():
            raise
        return _start_prefect_server(home, timeout)  # another xdist worker took the port meanwhile


def _start_prefect_server(home: Path, timeout: float) -> PrefectServer:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false")
    log = open(home / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches pytest, which stops it (reap), not the server first
    )
    track_process(proc)
    server = PrefectServer(home=home, port=port, process=proc)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}")
        try:
            return httpx.get(f"{server.api_url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_until(healthy, timeout=timeout, interval=0.25):
        server.stop()
        raise RuntimeError("prefect server did not become healthy")
    return server


_shared: PrefectServer | None = None


def shared_prefect_server() -> PrefectServer:
    """The session's one Prefect server (started on first use, stopped at exit)."""
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        home = Path(
            tempfile.mkdtemp(prefix="batch-openai-prefect-", dir=os.environ.get("BATCH_OPENAI_TEST_ROOT"))
        )
        _shared = start_prefect_server(home)
    return _shared


_registry_home: Path | None = None


def shared_registry_home() -> Path:
    """The session's one registry home on Prefect's ephemeral engine (`BatchRegistry(path)`), started on
    first use: the engine is a Prefect server of its own, so the registry tests and the library's registry
    hook share one per test process (tests/conftest.py schedules them onto one worker). Stop it with
    `batch_openai.flows.registry_store.stop_servers()`; a later call starts it again."""
    global _registry_home
    from batch_openai import BatchRegistry

    if _registry_home is None:
        _registry_home = Path(
            tempfile.mkdtemp(prefix="batch-openai-registry-", dir=os.environ.get("BATCH_OPENAI_TEST_ROOT"))
        )
    BatchRegistry(_registry_home).delete("batch_warmup")  # starts the engine (if stopped) and the database
    return _registry_home


@contextmanager
def in_process_prefect(server: PrefectServer) -> Iterator[PrefectServer]:
    """Point this process's Prefect at `server` and its PREFECT_HOME, heartbeats off, for the block."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_URL: server.api_url,
            PREFECT_HOME: str(server.home),
            PREFECT_LOCAL_STORAGE_PATH: str(server.home / "storage"),
            "flows.heartbeat_frequency": None,  # type: ignore[dict-item]
        }
    ):
        yield server


def batch_openai_cmd(*args: str) -> list[str]:
    """The `batch-openai` console script of this venv with arguments."""
    return [str(VENV_BIN / "batch-openai"), *args]


def count_batches(client: Any) -> int:
    """Batches the server holds (all pages)."""
    return sum(1 for _ in client.batches.list(limit=100))
