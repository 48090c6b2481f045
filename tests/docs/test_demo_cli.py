"""`batch-openai demo`, the quick start's first command, run as a user runs it (a subprocess).

On embedded defaults, exactly as a newcomer runs it: no PREFECT_API_URL, a fresh Prefect home (the test's
own, never the user's). The first run starts batch-openai's local Prefect server, the rerun reuses it,
`batch-openai prefect status` shows it and `batch-openai prefect stop` leaves nothing running.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))

import json
import os

from flows_harness import VENV_BIN, wait_until

from batch_openai.demo.job import ReviewFacts


def run_demo(workdir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    options = ["--limit", "6", "--step-seconds", "0", "--workdir", str(workdir)]
    return subprocess.run(
        [sys.executable, "-m", "batch_openai", "demo", *options],
        cwd=workdir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "batch-openai"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def test_demo_runs_the_job_and_a_rerun_reattaches(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "BATCH_OPENAI_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")  # nothing else set
    workdir = tmp_path / "demo"
    state_file = home / "batch_openai_server.json"

    first = run_demo(workdir, env)
    assert first.returncode == 0, first.stderr[-2000:]
    rows = [orjson.loads(line) for line in (workdir / "results.jsonl").read_bytes().splitlines()]
    assert len(rows) == 12 and {r["outcome"] for r in rows} == {"succeeded"}
    extractions = [r for r in rows if r["custom_id"].startswith("extract-")]
    assert len(extractions) == 6
    for row in extractions:
        ReviewFacts.model_validate_json(row["content"])  # the structured output really fits the schema
    assert "structured extractions valid against ReviewFacts: 6 (invalid: 0)" in first.stdout
    assert "at OpenAI batch prices" in first.stdout
    batch_line = next(line for line in first.stdout.splitlines() if line.startswith("batches: "))

    # The first run started one Prefect server, said so, and shows where to see the run and the registry.
    state = json.loads(state_file.read_text())
    assert alive(state["pid"]) and state["started_at"]
    ui = f"http://127.0.0.1:{state['port']}"
    assert f"Prefect UI: {ui}/runs/flow-run/" in first.stdout and f"{ui}/variables" in first.stdout
    assert "batch-openai prefect stop" in first.stdout + first.stderr

    second = run_demo(workdir, env)
    assert second.returncode == 0, second.stderr[-2000:]
    # Same content, same local server state: the rerun re-attaches to the batch instead of making one.
    assert batch_line.split("·")[0] in second.stdout
    assert json.loads(state_file.read_text()) == state  # the same server, reused
    assert f"Prefect UI: {ui}/runs/flow-run/" in second.stdout

    status = cli("prefect", "status", env=env)
    assert status.returncode == 0 and f"pid {state['pid']}" in status.stdout and ui in status.stdout
    stop = cli("prefect", "stop", env=env)
    assert stop.returncode == 0 and "Stopped" in stop.stdout, stop.stderr
    assert wait_until(lambda: not alive(state["pid"]), timeout=30)
    assert not state_file.exists()
    assert "No batch-openai Prefect server is running" in cli("prefect", "status", env=env).stdout
