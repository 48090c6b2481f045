"""A `batch-openai run` that fails at run time (here: the service refuses the key) ends with one clear
error line and no traceback on the terminal, as the command promises for every failure."""

from __future__ import annotations

from pathlib import Path

from flows_harness import PrefectServer
from robust_helpers import fresh_requests, start_run

from batch_openai.local import LocalBatchServer


def test_a_run_refused_by_the_service_prints_one_error_line(robust_prefect: PrefectServer, tmp_path: Path):
    src = fresh_requests(tmp_path / "in.jsonl", 2)
    with LocalBatchServer(api_key="sk-the-right-one") as server:
        proc = start_run(server.base_url, robust_prefect, src, tmp_path / "o.jsonl", "sk-a-wrong-one")
        assert proc.wait(120) != 0
        assert server.stats().get("POST /v1/batches", 0) == 0
    [log] = tmp_path.glob("run-*.log")
    output = log.read_text()  # stdout and stderr of the run, together
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith("error: ")
