"""E2E fixtures: the session's Prefect server, a process work pool, the deployments, a local Batch API
process, and process workers — all real processes on 127.0.0.1."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))
from flows_harness import (
    REPO,
    VENV_BIN,
    PrefectServer,
    shared_prefect_server,
    stop_process,
    track_process,
    wait_until,
)

KEY = "sk-e2e-canary-0f1e2d3c"
POOL = "batch-openai"


@dataclass
class Stack:
    """Everything an e2e test talks to."""

    prefect: PrefectServer
    base_url: str
    workers: list[subprocess.Popen]
    logs: Path

    def worker_env(self) -> dict[str, str]:
        """What a worker (and so its flow runs) gets: the API key in the environment, never a parameter;
        and a work directory of this session's, not `./.batch_openai/work` of the repository (the flow runs
        start in the directory `prefect deploy` ran in), whose answer store would hand a later session's
        runs their rows without a batch."""
        return self.prefect.env(
            OPENAI_API_KEY=KEY, OPENAI_BASE_URL=self.base_url, BATCH_OPENAI_WORK_DIR=str(self.logs / "work")
        )


def _run(cmd: list[str], env: dict[str, str], timeout: float = 180) -> str:
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def start_worker(stack: Stack, name: str) -> subprocess.Popen:
    """A `prefect worker start` process on the pool, running one flow run at a time."""
    log = open(stack.logs / f"worker-{name}.log", "wb")  # noqa: SIM115 - closed by the OS at exit
    proc = subprocess.Popen(
        [str(VENV_BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", name, "--limit", "1"],
        env=stack.worker_env(),
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    track_process(proc)
    stack.workers.append(proc)
    return proc


def runs_executed_by(logs: dict[str, str], run_ids: list[str]) -> dict[str, list[str]]:
    """Which worker log holds each flow run's own output. A worker that lost the race for a run
    also names its id ("Aborted submission of flow run ..."), so only the run's "View at" line,
    printed by the process that executed it, counts."""
    return {
        run_id: sorted(name for name, text in logs.items() if f"/flow-run/{run_id}" in text)
        for run_id in run_ids
    }


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Prefect server + pool + `prefect deploy` + `batch-openai local serve` + one worker."""
    prefect = shared_prefect_server()
    logs = tmp_path_factory.mktemp("e2e-logs")
    env = prefect.env(PREFECT_CLI_PROMPT="false")
    # Start the slow pieces side by side: the local Batch API boots while the pool is made, and the
    # worker boots while `prefect deploy` runs.
    serve_log = logs / "local-serve.log"
    serve_out = open(serve_log, "wb")  # noqa: SIM115 - lives as long as the server
    serve = subprocess.Popen(
        [
            str(VENV_BIN / "batch-openai"),
            "local",
            "serve",
            "--port",
            "0",
            "--step-seconds",
            "0.2",
            "--state-dir",
            str(logs / "local-state"),
        ],
        env={**env, "BATCH_OPENAI_LOCAL_API_KEY": KEY},
        stdout=serve_out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    track_process(serve)
    _run([str(VENV_BIN / "prefect"), "work-pool", "create", POOL, "--type", "process", "--overwrite"], env)
    found: list[str] = []

    def announced() -> bool:
        m = re.search(r"(http://127\.0\.0\.1:\d+/v1)", serve_log.read_text())
        if m:
            found.append(m.group(1))
        return bool(m)

    assert wait_until(announced, timeout=60), serve_log.read_text()
    stack = Stack(prefect=prefect, base_url=found[0], workers=[], logs=logs)
    start_worker(stack, "worker-a")
    _run(
        [
            str(VENV_BIN / "prefect"),
            "--no-prompt",
            "deploy",
            "--all",
            "--prefect-file",
            "deployments/prefect.yaml",
        ],
        env,
    )
    try:
        yield stack
    finally:
        for proc in [*stack.workers, serve]:
            stop_process(proc, grace=15)


@pytest.fixture(scope="session")
def prefect_client_settings(e2e_stack: Stack) -> Iterator[Stack]:
    """This process's Prefect pointed at the e2e server (for run_deployment and reads)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    home = e2e_stack.prefect.home
    with temporary_settings(
        updates={
            PREFECT_API_URL: e2e_stack.prefect.api_url,
            PREFECT_HOME: str(home),
            PREFECT_LOCAL_STORAGE_PATH: str(home / "storage"),
        }
    ):
        yield e2e_stack
