"""What a person sees of a run on a real Prefect server: its name, tags, state message, task names, logs and
artifacts; and a user's mistake as a Failed run with one line that names the fix, without a traceback."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flows_harness import free_port, write_requests

from batch_openai.flows import batch_run_flow
from batch_openai.flows.runner import fast_flow_calls
from batch_openai.local import LocalBatchServer


def _run_logs(flow_run_id: Any, want: str | None = None, timeout: float = 20.0) -> list[Any]:
    """The run's logs as the server stored them (Prefect ships logs in the background: wait for `want`)."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            if want is None or any(want in log.message for log in logs) or time.monotonic() > deadline:
                return logs
            time.sleep(0.3)


def _artifacts(flow_run_id: Any) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )


def _records(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("review_id,text\nr1,great\nr2,awful\nr3,fine\n")
    return path


MISTAKES = {
    "missing input": (dict(input_path="nope/requests.jsonl"), ["does not exist", "worker"]),
    "template field the records lack": (
        dict(input_path="CSV", prompt_template="Rate: {body}", model="gpt-4o-mini", id_field="review_id"),
        ["record 1 has no field(s) ['body']", "fields present"],
    ),
    "csv without a template": (dict(input_path="CSV"), ["CSV of records", "prompt_template"]),
    "dead base url": (dict(base_url="DEAD"), ["cannot reach the Batch API", "base_url"]),
    "refused key": (dict(api_key="sk-wrong-key-for-the-story"), ["refused the API key", "OPENAI_API_KEY"]),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_users_mistake_fails_the_run_with_one_line_and_no_traceback(
    case: str, prefect_api, api_key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from prefect import get_client

    options, needles = MISTAKES[case]
    params: dict[str, Any] = {
        "input_path": str(write_requests(tmp_path / "in.jsonl", 3, prefix="m")),
        "output_path": str(tmp_path / "out.jsonl"),
        "poll_interval": 0.05,
        "max_rounds": 1,
    }
    params.update({k: v for k, v in options.items() if k != "api_key"})
    if params["input_path"] == "CSV":
        params["input_path"] = str(_records(tmp_path))
    if "api_key" in options:
        monkeypatch.setenv("OPENAI_API_KEY", options["api_key"])
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        params["base_url"] = (
            f"http://127.0.0.1:{free_port()}/v1" if params.get("base_url") else server.base_url
        )
        with fast_flow_calls():
            state = batch_run_flow(**params, return_state=True)
        assert server.stats().get("POST /v1/files", 0) == 0  # nothing uploaded
    assert state.is_failed(), state
    message = state.message or ""
    assert "\n" not in message and all(n in message for n in needles), message
    run_id = state.state_details.flow_run_id
    logs = _run_logs(run_id, want="Finished in state")
    text = "\n".join(log.message for log in logs)
    assert "Finished in state Failed" in text, text
    assert "Traceback" not in text, text
    assert not [a.key for a in _artifacts(run_id) if a.key]  # the checks come before any artifact
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(run_id).state.message == message


def test_a_bug_still_logs_its_traceback(prefect_api, api_key, tmp_path: Path, monkeypatch):
    """Only a user's mistake is a one-liner: an unexpected error keeps Prefect's traceback."""
    import batch_openai.flows.batch_flow as batch_flow

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(batch_flow, "check_service", broken)
    src = write_requests(tmp_path / "in.jsonl", 2, prefix="bug")
    with fast_flow_calls():
        state = batch_run_flow(str(src), str(tmp_path / "o.jsonl"), return_state=True)
    assert state.is_failed()
    logs = _run_logs(state.state_details.flow_run_id, want="Traceback")
    assert any("Traceback" in log.message for log in logs)


def test_a_run_tells_its_story(prefect_api, api_key, tmp_path: Path):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    records = tmp_path / "reviews.csv"
    records.write_text("review_id,text\n" + "".join(f"r{i},review number {i}\n" for i in range(6)))
    out = tmp_path / "labels.jsonl"
    with (
        LocalBatchServer(step_seconds=0.2, api_key=api_key, line_failure_rate=0.3, seed=3) as server,
        fast_flow_calls(),
    ):
        state = batch_run_flow(
            str(records),
            str(out),
            prompt_template="Label: {text}",
            model="gpt-4o-mini",
            id_field="review_id",
            batch_size=3,
            max_rounds=1,
            poll_interval=0.05,
            max_poll_interval=0.1,
            base_url=server.base_url,
            return_state=True,
        )
    assert state.is_completed(), state
    summary = state.result()
    assert summary["total"] == 6 and summary["output"] == str(out)  # what run_batch callers get
    ok, failed = summary["outcomes"]["succeeded"], summary["outcomes"]["failed"]
    assert failed, "the seeded line failures should leave some rows failed"
    assert state.message == f"6 rows: {ok} succeeded, {failed} failed"
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    assert run.name == "reviews.csv · gpt-4o-mini"
    assert {"model:gpt-4o-mini", "endpoint:/v1/chat/completions", "mode:template", "wait:poll"} <= set(
        run.tags
    )
    assert run.state.message == state.message
    names = {t.name for t in tasks}
    assert {"render requests from reviews.csv", "submit shard 1/2", "submit shard 2/2"} <= names, names
    assert {"create batch for shard 1/2", "write labels.jsonl"} <= names, names
    assert sum(n.startswith("wait for shard ") for n in names) == 2, names
    assert sum(n.startswith("collect shard ") for n in names) == 2, names
    # One log line per status change, not per poll: no status line repeats for a batch.
    logs = _run_logs(run_id, want="done:")
    status_lines = [log.message for log in logs if log.message.startswith("batch ") and "done" in log.message]
    assert status_lines and len(status_lines) == len(set(status_lines)), status_lines
    assert len(status_lines) <= 2 * 6, status_lines  # at most a handful of statuses per batch
    arts = {a.key: a for a in _artifacts(run_id)}
    report = arts["batch-openai-report"].data
    assert state.message in report and str(out) in report
    assert all(b in report for b in summary["batch_ids"])
    assert "gpt-4o-mini" in report and "First" in report and "| failed |" in report
    progress = arts["batch-openai-progress"]
    assert float(progress.data) == 100.0
    assert "| shard 1/2 |" in progress.description and "completed" in progress.description


def test_the_form_flow_has_sections_titles_and_examples():
    """The form's schema: three sections (pydantic models) whose fields carry real titles and examples, and
    the input path says it is read on the worker; the flat flow keeps its parameters."""
    from batch_openai.flows.batch_flow import batch_form_flow

    schema = batch_form_flow.parameters.model_dump()
    assert list(schema["properties"]) == ["job", "template", "advanced"]
    defs = schema["definitions"]
    assert {defs[name]["title"] for name in defs} >= {
        "Job",
        "Prompt template (records in, one request each)",
        "Advanced settings",
    }
    job = defs["FormJob"]["properties"]
    assert job["input_path"]["title"] == "Input file (a path on the worker)"
    assert "worker" in job["input_path"]["description"] and job["input_path"]["examples"]
    assert defs["FormTemplate"]["properties"]["model"]["examples"] == ["gpt-4o-mini"]
    assert schema["required"] == ["job"]
    flat = batch_run_flow.parameters.model_dump()
    assert flat["required"] == ["input_path", "output_path"]
    assert "worker" in flat["properties"]["input_path"]["description"]
    assert flat["properties"]["model"]["examples"] == ["gpt-4o-mini"]


def test_the_form_flow_runs_the_same_job(prefect_api, api_key, tmp_path: Path):
    from batch_openai.flows.batch_flow import FormAdvanced, FormJob, FormTemplate, batch_form_flow

    out = tmp_path / "out.jsonl"
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server, fast_flow_calls():
        state = batch_form_flow(
            job=FormJob(input_path=str(_records(tmp_path)), output_path=str(out), description="form run"),
            template=FormTemplate(prompt_template="Say: {text}", model="gpt-4o-mini", id_field="review_id"),
            advanced=FormAdvanced(poll_interval=0.05, base_url=server.base_url, max_rounds=1),
            return_state=True,
        )
    assert state.is_completed() and state.message == "3 rows: 3 succeeded, 0 failed"
    assert state.result()["total"] == 3
    from prefect import get_client

    with get_client(sync_client=True) as client:
        assert client.read_flow_run(state.state_details.flow_run_id).name == "form run · gpt-4o-mini"


def test_a_run_that_fails_midway_says_so_on_its_progress_artifact(
    prefect_api, api_key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import batch_openai.flows.batch_flow as batch_flow

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the service went away for good")

    monkeypatch.setattr(batch_flow, "_run_rounds", broken)
    src = write_requests(tmp_path / "in.jsonl", 2, prefix="mid")
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server, fast_flow_calls():
        state = batch_run_flow(
            str(src), str(tmp_path / "o.jsonl"), base_url=server.base_url, return_state=True
        )
    assert state.is_failed()
    (progress,) = [a for a in _artifacts(state.state_details.flow_run_id) if a.key == "batch-openai-progress"]
    assert "**Failed**: the service went away for good" in progress.description
