"""`batch-openai` as a user runs it: a subprocess, a real local Batch API, a real Prefect registry."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from cli_helpers import API_KEY, assert_one_line_error, submit

from batch_openai import BatchJob, BatchRegistry
from batch_openai.local import LocalBatchServer


def test_list_shows_full_ids_counts_and_filters_without_an_api_key(
    cli, registry: BatchRegistry, batch_server
):
    done = submit(batch_server, 3, description="finished one")
    done.wait(poll_interval=0.05)
    registry.track(done)
    running = submit(batch_server, 2, description="just submitted")
    registry.track(running)

    table = cli("list", env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None})
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert set(rows) == {done.batch_id, running.batch_id}  # full ids, nothing truncated
    assert "completed" in rows[done.batch_id] and "3/3" in rows[done.batch_id]
    assert "finished one" in rows[done.batch_id] and "just submitted" in rows[running.batch_id]

    as_json = json.loads(cli("list", "--json", "--status", "completed").stdout)
    assert [r["batch_id"] for r in as_json] == [done.batch_id]
    assert as_json[0]["request_counts"] == {"total": 3, "completed": 3, "failed": 0}

    assert_one_line_error(cli("list", "--status", "done"), "unknown status 'done'")


def test_list_refresh_brings_unfinished_records_up_to_date(cli, registry: BatchRegistry, batch_server):
    job = submit(batch_server, 3, description="seen only at submit")
    registry.track(job)  # recorded while validating, then nobody watched it
    job.wait(poll_interval=0.05)
    stale = cli("list", env={"OPENAI_API_KEY": None})
    assert "validating" in stale.stdout and "0/0" in stale.stdout  # what was last observed

    fresh = cli("list", "--refresh")
    assert fresh.returncode == 0, fresh.stderr
    row = next(line for line in fresh.stdout.splitlines() if line.startswith(job.batch_id))
    assert "completed" in row and "3/3" in row
    assert "refreshed 1 unfinished batch" in fresh.stderr
    assert registry.get_record(job.batch_id).request_counts == {"total": 3, "completed": 3, "failed": 0}
    registry.track(submit(batch_server, 1, description="another"))  # unfinished: refreshing needs the API
    assert_one_line_error(cli("list", "--refresh", env={"OPENAI_API_KEY": None}), "OPENAI_API_KEY")


def test_prune_removes_old_finished_records(cli, registry: BatchRegistry, batch_server):
    import time

    now = int(time.time())
    for batch_id, status, age in (("batch_p_old", "completed", 40), ("batch_p_new", "completed", 1)):
        registry.track_batch(
            {"id": batch_id, "input_file_id": "f", "status": status, "created_at": now - age * 86400}
        )
    dry = cli("prune", "--older-than", "30d", "--dry-run", env={"OPENAI_API_KEY": None})
    assert dry.returncode == 0, dry.stderr
    assert "would delete batch_p_old" in dry.stdout and "batch_p_new" not in dry.stdout
    assert "batch_p_old" in registry
    done = cli("prune", "--older-than", "30d", env={"OPENAI_API_KEY": None})
    assert done.returncode == 0 and "1 record(s) older than 30d pruned" in done.stdout, done.stderr
    assert "batch_p_old" not in registry and "batch_p_new" in registry
    assert_one_line_error(cli("prune", "--older-than", "soon"), "not an age")
    assert_one_line_error(cli("prune", "--older-than", "1d", "--status", "done"), "unknown status 'done'")


def test_status_is_live_and_brings_the_record_up_to_date(cli, registry: BatchRegistry, batch_server):
    job = submit(batch_server, 2, description="status check")
    registry.track(job)  # recorded while validating
    job.wait(poll_interval=0.05)  # finished without anyone updating the registry (the seed's bug)
    assert registry.get_record(job.batch_id).status != "completed"

    result = cli("status", job.batch_id)
    assert result.returncode == 0, result.stderr
    assert "completed" in result.stdout and "2 total, 2 completed, 0 failed" in result.stdout
    assert "status check" in result.stdout
    record = registry.get_record(job.batch_id)
    assert record.status == "completed" and record.output_file_id == job.batches[0].output_file_id

    as_json = json.loads(cli("status", job.batch_id, "--json").stdout)
    assert as_json["id"] == job.batch_id and as_json["status"] == "completed"


def test_wait_shows_progress_and_leaves_the_record_terminal(cli, registry: BatchRegistry, batch_server):
    job = submit(batch_server, 5, description="wait for me")
    registry.track(job)
    result = cli("wait", job.batch_id, "--poll-interval", "0.1")
    assert result.returncode == 0, result.stderr
    assert f"Batch {job.batch_id} completed: 5 completed, 0 failed of 5" in result.stdout
    assert "5/5" in result.stderr  # the progress bar, on stderr so stdout stays clean
    assert registry.get_record(job.batch_id).status == "completed"


def test_wait_timeout_and_cancel_on_a_slow_batch(cli, registry: BatchRegistry, prefect_server):
    with LocalBatchServer(step_seconds=30, api_key=API_KEY) as slow:
        job = submit(slow, 2, description="slow")
        registry.track(job)
        env = {"OPENAI_BASE_URL": slow.base_url}
        timed_out = cli("wait", job.batch_id, "--poll-interval", "0.1", "--timeout", "0.5", env=env)
        assert_one_line_error(timed_out, "still 'validating'", "keeps running")

        cancelled = cli("cancel", job.batch_id, env=env)
        assert cancelled.returncode == 0, cancelled.stderr
        assert "cancel requested" in cancelled.stdout
        live = BatchJob.from_id(slow.client(), job.batch_id)
        assert live.status in ("cancelling", "cancelled")
        assert registry.get_record(job.batch_id).status == live.status

        refused = cli("download", job.batch_id, env=env)
        if refused.returncode != 0:  # still cancelling: refused with the fix named
            assert_one_line_error(refused, "not finished", f"batch-openai wait {job.batch_id}")
        else:  # on a busy machine the cancel may have finished meanwhile: then download is right to work
            assert BatchJob.from_id(slow.client(), job.batch_id).status == "cancelled"
            assert "batch_cancelled" in refused.stdout


def test_download_merges_output_and_error_files_as_valid_jsonl(cli, batch_server, tmp_path: Path):
    batch_server.set_line_failure_rate(0.4)
    try:
        job = submit(batch_server, 12, prefix="d")
        job.wait(poll_interval=0.05)
    finally:
        batch_server.set_line_failure_rate(0.0)
    counts = job.request_counts
    assert counts.failed > 0 and counts.completed > 0  # both files exist

    out = tmp_path / "merged.jsonl"
    written = cli("download", job.batch_id, "--output", str(out))
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == f"Wrote 12 records to {out}"
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["custom_id"] for r in lines) == sorted(f"d{i}" for i in range(12))
    assert sum(1 for r in lines if r["response"] and r["response"]["status_code"] == 200) == counts.completed

    piped = cli("download", job.batch_id)
    assert piped.returncode == 0 and piped.stdout == out.read_text()

    cancel_done = cli("cancel", job.batch_id)
    assert_one_line_error(cancel_done, "already 'completed'")


def test_results_one_outcome_row_per_request_in_three_formats(cli, batch_server, tmp_path: Path):
    import pyarrow.parquet as pq

    batch_server.set_line_failure_rate(0.3)
    try:
        job = submit(batch_server, 10, prefix="o")
        result = job.wait(poll_interval=0.05)
    finally:
        batch_server.set_line_failure_rate(0.0)
    expected = {item.custom_id: item.outcome.value for item in result}

    jsonl = cli("results", job.batch_id)
    assert jsonl.returncode == 0, jsonl.stderr
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert {r["custom_id"]: r["outcome"] for r in rows} == expected and len(rows) == 10
    ok = next(r for r in rows if r["outcome"] == "succeeded")
    assert ok["status_code"] == 200 and ok["content"] and ok["total_tokens"] > 0
    bad = next(r for r in rows if r["outcome"] != "succeeded")
    assert bad["error_code"] or bad["error_message"] or bad["status_code"] != 200

    csv_out = cli("results", job.batch_id, "--format", "csv")
    assert {r["custom_id"]: r["outcome"] for r in csv.DictReader(io.StringIO(csv_out.stdout))} == expected

    parquet = tmp_path / "rows.parquet"
    wrote = cli("results", job.batch_id, "--format", "parquet", "--output", str(parquet))
    assert wrote.returncode == 0, wrote.stderr
    table = pq.read_table(parquet).to_pylist()
    assert {r["custom_id"]: r["outcome"] for r in table} == expected

    assert_one_line_error(cli("results", job.batch_id, "--format", "xml"), "unknown format 'xml'")
    assert_one_line_error(cli("results", job.batch_id, "--format", "parquet"), "--output")


def test_errors_are_one_line_unless_debug_and_the_key_can_come_from_dotenv(cli, batch_server, tmp_path: Path):
    missing = cli("status", "batch_does_not_exist")
    assert_one_line_error(missing, "batch_does_not_exist", "404")
    debug = cli("--debug", "status", "batch_does_not_exist")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "BatchNotFoundError" in debug.stderr

    no_key = cli("status", "batch_x", env={"OPENAI_API_KEY": None})
    assert_one_line_error(no_key, "OPENAI_API_KEY is not set", ".env")

    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text(f"OPENAI_API_KEY={API_KEY}\n")
    job = submit(batch_server, 1)
    from_dotenv = cli("status", job.batch_id, env={"OPENAI_API_KEY": None}, cwd=project)
    assert from_dotenv.returncode == 0, from_dotenv.stderr
    assert job.batch_id in from_dotenv.stdout
