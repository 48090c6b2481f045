"""Every library code sample of the seed README, run as written against the local server.

`OpenAI()` is the README's own call: OPENAI_BASE_URL / OPENAI_API_KEY point it at the local server.
Where the README forgets something (the `ConfigDict` import, `documents`), the test supplies it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai import OpenAI

from batch_openai.local import LocalBatchServer


@pytest.fixture
def readme_env(server: LocalBatchServer, monkeypatch: pytest.MonkeyPatch) -> LocalBatchServer:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local-readme")
    return server


def test_quick_start(readme_env: LocalBatchServer, capsys: pytest.CaptureFixture[str]) -> None:
    my_documents = [f"readme quick start document number {i}" for i in range(4)]
    # --- README: Quick Start ---
    from openai import OpenAI

    from batch_openai import BatchJobError, BatchRequestBuilder  # noqa: F401

    client = OpenAI()

    builder = BatchRequestBuilder()

    for i, text in enumerate(my_documents):
        builder.add(
            messages=[{"role": "user", "content": f"Summarise this: {text}"}],
            model="gpt-5.4-mini",
            custom_id=f"doc-{i}",  # optional — auto-generated if omitted
        )

    # Upload + create batch in one call
    job = builder.submit(client, description="doc summarisation")
    print(f"Batch submitted: {job.batch_id}")

    # Poll until done (prints progress each tick)
    result = job.wait(
        poll_interval=0.02,
        on_progress=lambda b: print(b.status, b.request_counts.completed),
    )

    print(f"Succeeded: {len(result.succeeded)}  Failed: {len(result.failed)}")

    for item in result.succeeded:
        print(item.custom_id, item.content)

    for item in result.failed:
        print(item.custom_id, item.error)
    # --- end ---
    out = capsys.readouterr().out
    assert f"Batch submitted: {job.batch_id}" in out
    assert "Succeeded: 4  Failed: 0" in out and "completed 4" in out
    assert all(f"doc-{i} " in out for i in range(4))


def test_model_compatibility(readme_env: LocalBatchServer) -> None:
    from batch_openai import BatchRequestBuilder

    builder = BatchRequestBuilder()
    # --- README: Model Compatibility ---
    # gpt-4o family
    builder.add(
        messages=[{"role": "user", "content": "compat a"}],
        model="gpt-4o-mini",
        max_tokens=200,
        temperature=0.7,
    )

    # gpt-5.x family — use max_completion_tokens and omit temperature
    builder.add(
        messages=[{"role": "user", "content": "compat b"}], model="gpt-5.4-mini", max_completion_tokens=200
    )
    # --- end ---
    result = builder.submit(OpenAI()).wait(poll_interval=0.02)
    assert len(result.succeeded) == 2  # two models: two batches, one merged result


def test_structured_output(readme_env: LocalBatchServer) -> None:
    @dataclass
    class Doc:
        id: int
        text: str

    documents = [Doc(i, f"structured readme text {i}") for i in range(3)]
    client = OpenAI()
    # --- README: Structured Output (Pydantic) ---
    from copy import deepcopy

    from pydantic import BaseModel, ConfigDict  # the README forgets ConfigDict

    from batch_openai import BatchRequestBuilder, BatchValidationError

    class Summary(BaseModel):
        # This is required to enable strict mode in the JSON schema,
        # which ensures the model's output matches the schema exactly.
        model_config = ConfigDict(extra="forbid")

        title: str
        key_points: list[str]

    def _strip_titles(obj: object) -> object:
        """Remove 'title' keys from a JSON schema so OpenAI strict mode accepts it."""
        if isinstance(obj, dict):
            return {k: _strip_titles(v) for k, v in obj.items() if k != "title"}
        if isinstance(obj, list):
            return [_strip_titles(v) for v in obj]
        return obj

    schema = _strip_titles(deepcopy(Summary.model_json_schema()))

    SCHEMA = {
        "type": "json_schema",
        "json_schema": {
            "name": "summary",
            "schema": schema,
            "strict": True,
        },
    }

    builder = BatchRequestBuilder()
    # The README's SCHEMA is broken: `_strip_titles` also deletes the *property* named "title" while
    # "required" still lists it, a schema the service rejects in strict mode. The builder says so
    # before anything is uploaded, and names the fix.
    with pytest.raises(
        BatchValidationError, match=r"required but not in properties: \['title'\].*response_format=MyModel"
    ):
        for doc in documents:
            builder.add(
                messages=[{"role": "user", "content": f"Summarise: {doc.text}"}],
                model="gpt-5.4-mini",
                response_format=SCHEMA,
                custom_id=f"doc-{doc.id}",
            )
    assert len(builder) == 0

    # The right thing: pass the model class; the SDK's strict schema is sent. The rest runs as written.
    for doc in documents:
        builder.add(
            messages=[{"role": "user", "content": f"Summarise: {doc.text}"}],
            model="gpt-5.4-mini",
            response_format=Summary,
            custom_id=f"doc-{doc.id}",
        )

    result = builder.submit(client).wait(poll_interval=0.02)

    summaries: list[Summary] = result.parse(Summary)
    for s in summaries:
        print(s.title, s.key_points)
    # --- end ---
    assert len(summaries) == 3 and all(isinstance(s, Summary) for s in summaries)

    # A hand-made strict schema that is right is accepted as is.
    good = {
        "type": "json_schema",
        "json_schema": {
            "name": "summary",
            "strict": True,
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["title", "key_points"],
                "properties": {
                    "title": {"type": "string"},
                    "key_points": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    b2 = BatchRequestBuilder()
    for doc in documents:
        b2.add(
            messages=[{"role": "user", "content": f"Summarise again: {doc.text}"}],
            model="gpt-5.4-mini",
            response_format=good,
            custom_id=f"doc-{doc.id}",
        )
    assert len(b2.submit(client).wait(poll_interval=0.02).parse(Summary)) == 3

    # --- README: Correlating Results with Inputs ---
    joined = result.join(documents, key=lambda doc: f"doc-{doc.id}")

    for item in joined:
        print(item.input.text)  # original document (the README's `.title`)
        if item.output is not None:
            print(item.output.content)  # BatchResultItem for this document
    # --- end ---
    assert [j.input for j in joined] == documents and all(j.output is not None for j in joined)


def test_raw_responses(readme_env: LocalBatchServer) -> None:
    from batch_openai import BatchRequestBuilder

    client = OpenAI()
    builder = BatchRequestBuilder()
    # --- README: Accessing Raw Responses ---
    builder.add(
        messages=[{"role": "user", "content": "Is this review positive? Reply Yes or No."}],
        model="gpt-4o-mini",
        max_tokens=1,
        logprobs=True,
        top_logprobs=5,
    )

    result = builder.submit(client).wait(poll_interval=0.02)

    item = result.succeeded[0]
    top_logprobs = item.raw_response["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    prob_yes = next((lp["logprob"] for lp in top_logprobs if lp["token"] == "Yes"), None)
    # --- end ---
    assert len(top_logprobs) == 5
    assert prob_yes is None or prob_yes <= 0


def test_error_handling(readme_env: LocalBatchServer, capsys: pytest.CaptureFixture[str]) -> None:
    from batch_openai import BatchRequestBuilder

    job = (
        BatchRequestBuilder()
        .add([{"role": "user", "content": "errors"}], model="gpt-4o-mini")
        .submit(OpenAI())
    )
    job.cancel()
    # --- README: Error Handling ---
    from batch_openai import (
        BatchAuthError,  # noqa: F401  # 401 after single retry
        BatchJobError,  # batch ended in failed / expired / cancelled state
        BatchTransientError,  # retries exhausted (429 / 5xx / connection)
        BatchValidationError,  # noqa: F401  # 400 / 422 — bad request, never retried
        OpenAIBatchError,  # base class for all library exceptions
    )

    try:
        result = job.wait(poll_interval=0.02)
    except BatchJobError as e:
        print(f"Batch {e.batch_id} ended with status {e.status!r}")
    except BatchTransientError as e:
        print(f"API unavailable after retries: {e.status_code} {e.request_id}")
    except OpenAIBatchError as e:
        print(f"Unexpected error: {e}")
    # --- end ---
    out = capsys.readouterr().out
    if job.status == "cancelled":
        assert f"Batch {job.batch_id} ended with status 'cancelled'" in out
    else:  # the local server finished it before the cancel arrived
        assert job.status == "completed" and len(result) == 1


REGISTRY_SAMPLE = """
import os
from openai import OpenAI
from batch_openai import BatchRequestBuilder

client = OpenAI()
builder = BatchRequestBuilder().add([{"role": "user", "content": "registry sample"}], model="gpt-4o-mini")

# --- README: Tracking Jobs Across Sessions ---
from batch_openai import BatchRegistry

registry = BatchRegistry()

# After submitting:
job = builder.submit(client, description="nightly eval")
registry.track(job)
batch_id = job.batch_id

# In a later session — reconnect by batch ID:
job = registry.get(batch_id, client)
result = job.wait(poll_interval=0.02)

# Or reconnect directly without the registry:
from batch_openai import BatchJob
job = BatchJob.from_id(client, batch_id)

# List all tracked batches:
for record in registry.list():
    print(record.batch_id, record.status, record.description)

# Update status after completion:
registry.update_status(job.batch_id, job.status)

# Remove when no longer needed:
registry.delete(batch_id)
# --- end ---
assert len(result) == 1
assert all(r.batch_id != batch_id for r in registry.list())
print("REGISTRY-OK")
"""


@pytest.mark.parametrize(
    "prefect",
    ["a running Prefect server", pytest.param("the embedded default, first use", marks=pytest.mark.slow)],
)
def test_registry_sample(readme_env: LocalBatchServer, tmp_path: Path, prefect: str) -> None:
    """Run in a fresh interpreter, as a user's script: against the Prefect server a user runs (here the
    session's), or with nothing set, where the registry starts batch-openai's own server in a new
    PREFECT_HOME (the slow case: it pays Prefect's first start and database migration, as the demo's
    test does in the default run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["HOME"] = str(tmp_path)
    if prefect == "a running Prefect server":
        from flows_harness import shared_prefect_server

        server = shared_prefect_server()
        env.update(PREFECT_API_URL=server.api_url, PREFECT_HOME=str(server.home))
    else:
        env["PREFECT_HOME"] = str(tmp_path / "prefect")
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REGISTRY_SAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "REGISTRY-OK" in proc.stdout
    assert "nightly eval" in proc.stdout
