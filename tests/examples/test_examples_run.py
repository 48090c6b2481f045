"""Every example in examples/ runs as a user would run it (a subprocess, default options) and does its job.

The examples talk to an in-process local Batch API server through the real `openai` client; the flow
example and the deployment example use the session's Prefect server (instead of ephemeral Prefect, which
would cost each of them a 10-40 s start-up). All run at once, so the whole file costs about the slowest one.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from flows_harness import PrefectServer, wait_until

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TIMEOUT = 240  # seconds per example; they take 3-10 s alone, more on a loaded 2-core machine
SUMMARY = re.compile(r"(\w+)=(\{[^}]*\}|\[[^\]]*\]|'[^']*'|\S+)")


@dataclass
class Ran:
    """A finished example: exit code, output, and its `summary:` line as a dict."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def summary(self) -> dict[str, str]:
        """The key=value pairs of the last `summary:` line (values as printed)."""
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith("summary: ")]
        assert lines, f"{self.name} printed no summary line:\n{self.stdout[-2000:]}\n{self.stderr[-3000:]}"
        return dict(SUMMARY.findall(lines[-1]))


def _env(server: PrefectServer) -> dict[str, str]:
    """The session server's Prefect settings, and no OpenAI key: the examples must need none."""
    env = server.env()
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BATCH_OPENAI_WORK_DIR"):
        env.pop(name, None)
    return env


def run_all(commands: dict[str, list[str]], env: dict[str, str], cwd: Path) -> dict[str, Ran]:
    """Start every command at once, wait for all (each with TIMEOUT), return what each did."""
    started = time.perf_counter()
    procs = {
        name: subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in commands.items()
    }
    done: dict[str, Ran] = {}
    for name, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=max(1.0, TIMEOUT - (time.perf_counter() - started)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"{name} did not finish in {TIMEOUT} s:\n{out[-2000:]}\n{err[-2000:]}")
        done[name] = Ran(name, proc.returncode, out, err, time.perf_counter() - started)
    return done


@pytest.fixture(scope="module")
def ran(examples_prefect: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ran]:
    """Run every example once (in parallel) and keep what they printed."""
    tmp = tmp_path_factory.mktemp("examples")
    ex = str(EXAMPLES)
    commands = {
        "llm_judge": [f"{ex}/llm_judge.py"],
        "synthetic_data": [f"{ex}/synthetic_data.py", "--out", str(tmp / "synthetic")],
        "responses_extraction": [f"{ex}/responses_extraction.py"],
        "embeddings": [f"{ex}/embeddings.py"],
        "document_summarization": [f"{ex}/document_summarization.py", "--out", str(tmp / "summaries")],
        "own_flow": [f"{ex}/own_flow.py", "--out", str(tmp / "own-flow")],
        "scheduled_deployment": [f"{ex}/scheduled_deployment.py", "--apply", "--timezone", "Europe/Paris"],
        "openai_without_key": [f"{ex}/llm_judge.py", "--openai"],
        "before_after": [str(REPO / "benchmarks" / "count_lines.py"), "--run"],
    }
    results = run_all(commands, _env(examples_prefect), tmp)
    for r in results.values():
        print(f"{r.name}: exit {r.returncode} after {r.seconds:.1f} s")
    return results


def _ok(r: Ran) -> dict[str, str]:
    assert r.returncode == 0, f"{r.name} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.summary


def test_every_example_is_listed_and_run() -> None:
    """A new example file must be added to the run above and to examples/README.md."""
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(
        [
            "document_summarization",
            "embeddings",
            "llm_judge",
            "own_flow",
            "responses_extraction",
            "scheduled_deployment",
            "synthetic_data",
        ]
    )
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in scripts:
        assert f"({name}.py)" in readme, f"examples/README.md does not link {name}.py"


def test_llm_judge_joins_a_verdict_to_every_sample(ran: dict[str, Ran]) -> None:
    """Every sample gets a schema-valid verdict with a score in 1..5, through .join()."""
    s = _ok(ran["llm_judge"])
    assert s["requests"] == s["judged"] == s["succeeded"] == "12"
    assert 1.0 <= float(s["mean_score"]) <= 5.0
    assert int(s["tokens"]) > 0
    rows = [ln for ln in ran["llm_judge"].stdout.splitlines() if re.match(r"q\d\d  [1-5]/5 (pass|FAIL)", ln)]
    assert len(rows) == 12


def test_synthetic_data_writes_valid_tickets(ran: dict[str, Ran]) -> None:
    """Every generated ticket parses (parse_each and parse agree) and lands in tickets.jsonl."""
    s = _ok(ran["synthetic_data"])
    assert s["requests"] == s["valid"] == s["strict_parsed"] == "24"
    counts = ast.literal_eval(s["by_category"])
    assert sum(counts.values()) == 24
    lines = Path(s["output"]).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 24
    categories = {"billing", "bug", "feature_request", "account"}
    assert all(json.loads(line)["category"] in categories for line in lines)


def test_responses_extraction_parses_every_email(ran: dict[str, Ran]) -> None:
    """Each /v1/responses answer (text_format=Order) validates into an Order."""
    s = _ok(ran["responses_extraction"])
    assert s["requests"] == s["extracted"] == "8"
    assert s["failed"] == "0"
    assert "(/v1/responses)" in ran["responses_extraction"].stdout


def test_embeddings_gives_every_document_a_vector(ran: dict[str, Ran]) -> None:
    """Every text is embedded with the requested dimensions, and each gets a nearest neighbour."""
    s = _ok(ran["embeddings"])
    assert s["requests"] == s["embedded"] == "16"
    assert s["dims"] == "256"
    assert "neighbour" in ran["embeddings"].stdout


def test_own_flow_parses_every_answer(ran: dict[str, Ran]) -> None:
    summary = _ok(ran["own_flow"])
    assert summary["parsed"] == summary["questions"] == "5"


def test_own_flow_killed_after_submit_reattaches_to_its_batch(
    examples_prefect: PrefectServer, tmp_path: Path
) -> None:
    """A user's own flow SIGKILLed right after `submit_batch`, then run again: the same batch, no second."""
    cmd = [sys.executable, str(EXAMPLES / "own_flow.py"), "--out", str(tmp_path / "run")]
    env = {**_env(examples_prefect), "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    submitted = None
    assert first.stdout is not None
    for line in first.stdout:
        if line.startswith("submitted "):
            submitted = line.split(" ", 1)[1].strip()
            break
    first.kill()
    first.wait(timeout=30)
    assert submitted, "the first run never reached submit_batch"
    second = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    again = [ln.split(" ", 1)[1].strip() for ln in second.stdout.splitlines() if ln.startswith("submitted ")]
    assert again == [submitted]  # re-attached: the same batch id, so nothing was paid twice
    made = sorted(p.stem for p in (tmp_path / "run" / "local-server" / "batches").glob("batch_*.json"))
    assert made == [submitted.strip("[]'")]  # the server holds exactly one batch


def test_summarization_runs_through_the_flow(ran: dict[str, Ran]) -> None:
    """The flow writes one succeeded row per document in one batch; .join() finds every summary."""
    s = _ok(ran["document_summarization"])
    assert s["requests"] == s["summarised"] == "8"
    assert ast.literal_eval(s["outcomes"]) == {
        "succeeded": 8,
        "failed": 0,
        "expired": 0,
        "cancelled": 0,
        "missing": 0,
    }
    assert s["batches"] == "1"
    rows = [json.loads(line) for line in Path(s["output"]).read_text(encoding="utf-8").splitlines()]
    assert [r["custom_id"] for r in rows][:2] == ["rfc-2119", "meeting-0412"]  # input order
    assert all(r["outcome"] == "succeeded" and r["content"] for r in rows)


def test_scheduled_deployment_is_stored_with_its_schedule(
    ran: dict[str, Ran], examples_prefect: PrefectServer
) -> None:
    """--apply stores the deployment: 02:00 daily in the chosen zone, the example's parameters."""
    s = _ok(ran["scheduled_deployment"])
    assert s["applied"] == "True"
    assert s["next_runs"] == "2"
    api = examples_prefect.api_url
    dep = httpx.get(f"{api}/deployments/name/batch-openai-run/nightly-summaries", timeout=10).json()
    assert dep["entrypoint"] == "batch_openai.flows.batch_flow.batch_run_flow"
    assert dep["parameters"]["wait_mode"] == "suspend"
    assert dep["parameters"]["prompt_template"].startswith("Summarise")
    assert (dep.get("global_concurrency_limit") or {}).get("limit") == 1, dep
    (schedule,) = [d["schedule"] for d in dep["schedules"]]
    assert schedule["timezone"] == "Europe/Paris"
    assert schedule["cron"] == "0 2 * * *"


def test_the_scheduler_creates_runs_from_the_cron_deployment(
    ran: dict[str, Ran], examples_prefect: PrefectServer
) -> None:
    """The server's scheduler service (its recent-deployments loop runs every 5 s) turns the example's
    active cron schedule into Scheduled flow runs at 02:00 Paris time, and logs no scheduling error."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    _ok(ran["scheduled_deployment"])
    api = examples_prefect.api_url
    dep = httpx.get(f"{api}/deployments/name/batch-openai-run/nightly-summaries", timeout=10).json()
    query = {"deployments": {"id": {"any_": [dep["id"]]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 5}
    runs: list[dict] = []

    def scheduled() -> bool:
        runs[:] = httpx.post(f"{api}/flow_runs/filter", json=query, timeout=10).json()
        return bool(runs)

    assert wait_until(scheduled, timeout=90, interval=1.0), examples_prefect.home / "server.log"
    paris = ZoneInfo("Europe/Paris")
    starts = [datetime.fromisoformat(r["expected_start_time"]).astimezone(paris) for r in runs]
    assert all((t.hour, t.minute) == (2, 0) for t in starts), starts
    assert {r["state_type"] for r in runs} == {"SCHEDULED"}
    assert all("auto-scheduled" in r["tags"] for r in runs), runs[0]["tags"]
    log = (examples_prefect.home / "server.log").read_text(errors="replace")
    assert "Error scheduling deployment" not in log and "tzinfo must be of type ZoneInfo" not in log


def test_openai_flag_without_a_key_stops_with_a_clear_error(ran: dict[str, Ran]) -> None:
    """--openai with no OPENAI_API_KEY: non-zero exit, one line naming what is missing, no traceback."""
    r = ran["openai_without_key"]
    assert r.returncode != 0
    assert "OPENAI_API_KEY" in r.stderr
    assert "Traceback" not in r.stderr


def test_prefect_server_can_expand_a_cron_schedule() -> None:
    """The code Prefect's scheduler runs gives the next 02:00 of a cron schedule."""
    import asyncio

    from prefect.server.schemas.schedules import CronSchedule

    dates = asyncio.run(CronSchedule(cron="0 2 * * *", timezone="UTC").get_dates(n=2))
    assert [d.hour for d in dates] == [2, 2]


def test_before_after_scripts_do_the_same_job(ran: dict[str, Ran]) -> None:
    """docs/before-after.md's two scripts: one row per input, same outcomes, a retry batch, no new batch
    on restart."""
    r = ran["before_after"]
    assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    runs = dict(re.findall(r"^run (.+?): (\{.*\})$", r.stdout, flags=re.M))
    raw, ours = json.loads(runs["raw OpenAI SDK"]), json.loads(runs["batch-openai"])
    for report in (raw, ours):
        assert report["rows_match_inputs"] is True
        assert report["batches_after_run_1"] == 2  # the first round and the retry round
        assert report["batches_after_restart"] == report["batches_after_run_1"]
        assert sum(report["outcomes"].values()) == 10
    assert raw["outcomes"] == ours["outcomes"]
