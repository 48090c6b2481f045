"""`batch-openai demo`, the quick start's first command, run as a user runs it (a subprocess).

It uses the session's Prefect server instead of an ephemeral one only to spare the suite a second
Prefect start-up; the job, the flow and the in-process local server are the demo's own.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flows"))

from flows_harness import shared_prefect_server

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


def test_demo_runs_the_job_and_a_rerun_reattaches(tmp_path: Path) -> None:
    env = shared_prefect_server().env()
    env.pop("OPENAI_API_KEY", None)  # the demo needs no key of the user's
    workdir = tmp_path / "demo"

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

    second = run_demo(workdir, env)
    assert second.returncode == 0, second.stderr[-2000:]
    # Same content, same local server state: the rerun re-attaches to the batch instead of making one.
    assert batch_line.split("·")[0] in second.stdout
