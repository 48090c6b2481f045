"""Never lose a paid row, never pay twice for one (issue 12): snapshots, incremental reruns, same-file."""

from __future__ import annotations

import contextvars
import json
import threading
from pathlib import Path

import pytest
from flows_harness import read_rows, wait_until, write_requests

from batch_openai.flows import run_batch
from batch_openai.local import LocalBatchServer


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _submitted(server: LocalBatchServer) -> int:
    """Requests the server was given in batch input files (every line of every batch)."""
    return sum(b.request_counts.total for b in server.client().batches.list(limit=100).data)


@pytest.mark.parametrize("edit", ["insert", "edit", "append"])
def test_a_rerun_after_an_edit_submits_only_the_new_or_changed_requests(
    prefect_api, api_key, tmp_path: Path, edit: str
) -> None:
    src = write_requests(tmp_path / "in.jsonl", 40, prefix=f"reuse-{edit}-")
    out, work = tmp_path / "out.jsonl", str(tmp_path / "work")
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        first = run_batch(src, out, base_url=server.base_url, poll_interval=0.05, work_dir=work)
        assert first["outcomes"]["succeeded"] == 40 and first["reused"] == 0
        before = _submitted(server)
        lines = _lines(src)
        new = json.loads(lines[0])
        new["custom_id"] = "fresh"
        new["body"]["messages"][0]["content"] = f"a new question ({edit})"
        if edit == "insert":
            lines.insert(0, json.dumps(new))
        elif edit == "append":
            lines.append(json.dumps(new))
        else:  # one request's prompt changes, under its old id
            changed = json.loads(lines[7])
            changed["body"]["messages"][0]["content"] = "an edited question"
            lines[7] = json.dumps(changed)
        src.write_text("\n".join(lines) + "\n")
        again = run_batch(src, out, base_url=server.base_url, poll_interval=0.05, work_dir=work)
        assert _submitted(server) - before == 1  # only the new or edited request was paid for
    expect_reused = 39 if edit == "edit" else 40
    assert (again["reused"], again["submitted"]) == (expect_reused, 1)
    rows = read_rows(out)
    ids = [json.loads(line)["custom_id"] for line in _lines(src)]
    assert [r["custom_id"] for r in rows] == ids  # one row per input, in the new input's order
    assert {r["outcome"] for r in rows} == {"succeeded"}
    assert sum(bool(r.get("reused")) for r in rows) == expect_reused


def test_no_reuse_submits_everything_again(prefect_api, api_key, tmp_path: Path) -> None:
    src = write_requests(tmp_path / "in.jsonl", 10, prefix="noreuse-")
    out, work = tmp_path / "out.jsonl", str(tmp_path / "work")
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        run_batch(src, out, base_url=server.base_url, poll_interval=0.05, work_dir=work)
        copy = tmp_path / "copy.jsonl"  # another file, the same requests
        copy.write_bytes(src.read_bytes())
        before = _submitted(server)
        again = run_batch(copy, out, base_url=server.base_url, poll_interval=0.05, work_dir=work, reuse=False)
        assert again["reused"] == 0 and _submitted(server) - before in (0, 10)  # 0: re-attached by content


def test_editing_the_input_while_the_run_waits_loses_no_paid_row(
    prefect_api, api_key, tmp_path: Path
) -> None:
    src = write_requests(tmp_path / "in.jsonl", 30, prefix="midrun-")
    original_ids = [json.loads(line)["custom_id"] for line in _lines(src)]
    out, work = tmp_path / "out.jsonl", str(tmp_path / "work")
    with LocalBatchServer(step_seconds=0.3, api_key=api_key) as server:
        server.stall_finalizing(3.0)  # keep the batch busy while the input is rewritten
        result: dict = {}
        # The thread runs in this context, so it sees `prefect_api`'s settings (context variables) and
        # uses the session's Prefect server instead of starting an embedded one of its own.
        runner = threading.Thread(
            target=contextvars.copy_context().run,
            args=(
                lambda: result.update(
                    run_batch(src, out, base_url=server.base_url, poll_interval=0.05, work_dir=work)
                ),
            ),
        )
        runner.start()
        assert wait_until(lambda: len(server.client().batches.list(limit=10).data) > 0, timeout=120)
        write_requests(src, 15, prefix="other-")  # the input is replaced mid-run
        server.stall_finalizing(0)  # replaced: the batch may finish now
        runner.join(timeout=240)
    rows = read_rows(out)
    assert [r["custom_id"] for r in rows] == original_ids  # the rows of what was submitted, all of them
    assert {r["outcome"] for r in rows} == {"succeeded"} and result["total"] == 30


def test_an_output_that_is_the_input_is_refused_before_anything_runs(
    prefect_api, api_key, tmp_path: Path
) -> None:
    src = write_requests(tmp_path / "in.jsonl", 3, prefix="same-")
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        for target in (src, link):
            with pytest.raises(Exception, match="is the input file"):
                run_batch(
                    src, target, base_url=server.base_url, poll_interval=0.05, work_dir=str(tmp_path / "w")
                )
        assert server.stats().get("POST /v1/files", 0) == 0
    assert len(_lines(src)) == 3  # untouched
