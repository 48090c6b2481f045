"""The flow with everything on S3 (moto's server over HTTP), a real Prefect server, the real openai client
and the local Batch API: input, output and work directory as URLs; a rerun "on another machine" (another
staging directory and another Prefect result storage) re-attaches and pulls instead of collecting again;
credentials from a Prefect block; mistakes as one line before anything is uploaded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest
from flows_harness import count_batches, write_requests
from moto_harness import forget_s3_clients
from pydantic import BaseModel

from batch_openai.flows import batch_run_flow, run_batch
from batch_openai.local import LocalBatchServer


def _rows(url: str) -> list[dict[str, Any]]:
    with fsspec.open(url, "rb") as fh:
        return [json.loads(line) for line in fh.read().splitlines() if line.strip()]


def _upload(local: Path, url: str) -> str:
    fsspec.filesystem("s3").put_file(str(local), url)
    return url


def _objects(prefix: str) -> list[str]:
    return [p.split("/", 1)[1] for p in fsspec.filesystem("s3").find(prefix)]


def test_run_with_input_output_and_work_dir_on_s3(prefect_api, api_key, s3, tmp_path: Path):
    src = _upload(write_requests(tmp_path / "in.jsonl", 25, prefix="s3run"), f"{s3}/evals/requests.jsonl")
    out = f"{s3}/results/rows.jsonl"
    with LocalBatchServer(step_seconds=0.05, api_key=api_key) as server:
        summary = run_batch(
            src, out, base_url=server.base_url, batch_size=10, poll_interval=0.1, work_dir=f"{s3}/work"
        )
        assert count_batches(server.client()) == 3
    rows = _rows(out)
    assert [r["custom_id"] for r in rows] == [f"s3run{i}" for i in range(25)]
    assert {r["outcome"] for r in rows} == {"succeeded"}
    assert summary["output"] == out and summary["work_dir"].startswith(f"{s3}/work/")
    work = _objects(f"{s3}/work")
    assert sum("/round-1/shards/" in p for p in work) == 3
    assert sum(p.endswith(".rows.jsonl") for p in work) == 3
    assert sum(p.endswith(".rows.summary.json") for p in work) == 3
    assert sum(p.endswith("_output.jsonl") for p in work) == 3  # the downloads
    assert sum("/submit-cache/submit-shard-" in p for p in work) == 3  # the submit cache, on the bucket
    assert sum(p.startswith("work/answers/") for p in work) == 1  # this run's answers segment
    assert not Path(".batch_openai").exists()  # nothing went to a local default work dir


def test_rerun_elsewhere_reattaches_and_pulls_rows_instead_of_collecting(
    prefect_api, api_key, s3, tmp_path: Path, monkeypatch
):
    """Machine B: an empty staging dir and a Prefect result storage of its own; only the bucket is shared."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    src = _upload(write_requests(tmp_path / "in.jsonl", 12, prefix="elsewhere"), f"{s3}/in.jsonl")
    with LocalBatchServer(step_seconds=0.05, api_key=api_key) as server:
        first = run_batch(
            src,
            f"{s3}/a.jsonl",
            base_url=server.base_url,
            batch_size=4,
            poll_interval=0.1,
            work_dir=f"{s3}/work",
        )
        stats = dict(server.stats())
        monkeypatch.setenv("BATCH_OPENAI_STAGING_DIR", str(tmp_path / "machine-b-staging"))
        with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(tmp_path / "machine-b-results")}):
            second = run_batch(
                src,
                f"{s3}/b.jsonl",
                base_url=server.base_url,
                batch_size=4,
                poll_interval=0.1,
                work_dir=f"{s3}/work",
            )
        after = server.stats()
        assert count_batches(server.client()) == 3
    assert sorted(second["batch_ids"]) == sorted(first["batch_ids"])
    for route in ("POST /v1/files", "POST /v1/batches", "GET /v1/files/{file_id}/content"):
        assert after.get(route, 0) == stats.get(route, 0), route  # no upload, no create, no download
    assert _rows(f"{s3}/b.jsonl") == _rows(f"{s3}/a.jsonl")
    local_results = tmp_path / "machine-b-results"
    local = [p.name for p in local_results.rglob("*")] if local_results.exists() else []
    assert not [n for n in local if n.startswith("submit-shard")]  # the cache came from the bucket


def test_records_csv_on_s3_with_a_template_and_csv_output(prefect_api, api_key, s3, tmp_path: Path):
    records = tmp_path / "reviews.csv"
    records.write_text("id,text\n1,great phone\n2,broke in a day\n3,fine\n")
    src = _upload(records, f"{s3}/reviews.csv")
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        summary = run_batch(
            src,
            f"{s3}/out/labels.csv",
            base_url=server.base_url,
            poll_interval=0.05,
            work_dir=f"{s3}/work",
            prompt_template="Positive or negative? {text}",
            model="gpt-4o-mini",
        )
    assert summary["outcomes"]["succeeded"] == 3
    with fsspec.open(f"{s3}/out/labels.csv", "r") as fh:
        lines = fh.read().splitlines()
    assert lines[0].startswith("custom_id,outcome") and [line.split(",")[0] for line in lines[1:]] == [
        "1",
        "2",
        "3",
    ]


def test_credentials_from_a_secret_block_never_reach_parameters_or_logs(
    prefect_api, api_key, moto, tmp_path, monkeypatch
):
    from moto_harness import CREDENTIALS
    from prefect import get_client
    from prefect.blocks.system import Secret
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    bucket = moto.new_bucket()
    src = write_requests(tmp_path / "in.jsonl", 3, prefix="blk")
    fsspec.filesystem(
        "s3",
        key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": moto.endpoint},
    ).put_file(str(src), f"{bucket}/in.jsonl")
    options = {
        "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"endpoint_url": moto.endpoint},
    }
    Secret(value={"s3": options}).save("moto-s3-credentials", overwrite=True)
    import os

    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)  # only the block knows the credentials
    monkeypatch.setattr(fsspec.config, "conf", {})
    monkeypatch.setenv("BATCH_OPENAI_STAGING_DIR", str(tmp_path / "staging"))
    with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
        state = batch_run_flow(
            f"s3://{bucket}/in.jsonl",
            f"s3://{bucket}/out.jsonl",
            base_url=server.base_url,
            poll_interval=0.05,
            work_dir=f"s3://{bucket}/work",
            storage_block="secret/moto-s3-credentials",
            return_state=True,
        )
    assert state.is_completed(), state.message
    run_id = state.state_details.flow_run_id
    secret = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        deadline = time.monotonic() + 20
        while True:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
            if any("Finished in state" in log.message for log in logs) or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        blocks = client.read_block_documents()
    assert secret not in json.dumps(run.parameters, default=str)
    assert logs and not any(secret in log.message for log in logs)
    cache_blocks = [b for b in blocks if b.name.startswith("batch-openai-cache-")]
    assert cache_blocks and not any(secret in json.dumps(b.data, default=str) for b in cache_blocks)
    assert len(_objects_with(options, f"{bucket}/work")) > 0


def _objects_with(options: dict[str, Any], prefix: str) -> list[str]:
    return fsspec.filesystem("s3", **options).find(prefix)


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ("input", "names no object"),
        ("output", "does not exist or these credentials cannot see it"),
        ("credentials", "Unable to locate credentials; check the storage credentials"),
    ],
)
def test_a_missing_object_bucket_or_credential_fails_in_one_line_before_any_upload(
    prefect_api, api_key, s3, tmp_path: Path, monkeypatch, where: str, needle: str
):
    src = _upload(write_requests(tmp_path / "in.jsonl", 2, prefix="miss"), f"{s3}/in.jsonl")
    input_path = f"{s3}/absent.jsonl" if where == "input" else src
    output_path = "s3://no-such-bucket-here/out.jsonl" if where == "output" else f"{s3}/out.jsonl"
    if where == "credentials":  # no key anywhere S3 clients look
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(key)
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        forget_s3_clients()  # a client made earlier holds the old key
    try:
        with LocalBatchServer(step_seconds=0.0, api_key=api_key) as server:
            state = batch_run_flow(
                input_path, output_path, base_url=server.base_url, work_dir=f"{s3}/work", return_state=True
            )
            assert server.stats().get("POST /v1/files", 0) == 0
    finally:
        forget_s3_clients()
    assert state.is_failed() and "\n" not in (state.message or "") and needle in state.message, state.message


class _AwsCredentialsFields(BaseModel):
    endpoint_url: str | None = None


def _aws_credentials_block() -> type:
    """A block with the fields of prefect-aws 0.7's `AwsCredentials` (`aws_access_key_id`,
    `aws_secret_access_key` as a secret, `aws_client_parameters.endpoint_url`): prefect-aws itself is not
    a dependency (installed, Prefect imports it with boto3 at every server and worker start)."""
    from prefect.blocks.core import Block
    from pydantic import SecretStr

    class AwsCredentialsLike(Block):
        _block_type_slug = "batch-openai-test-aws-credentials"
        aws_access_key_id: str | None = None
        aws_secret_access_key: SecretStr | None = None
        aws_session_token: str | None = None
        region_name: str | None = None
        aws_client_parameters: _AwsCredentialsFields = _AwsCredentialsFields()

    return AwsCredentialsLike


@pytest.mark.parametrize("kind", ["aws-credentials", "remote-file-system"])
def test_storage_blocks_give_the_credentials(prefect_api, moto, tmp_path, monkeypatch, kind):
    """An AWS credentials block or Prefect's RemoteFileSystem, saved on the server and named by
    `<type>/<name>`, is all the S3 client gets: no AWS_* variables."""
    import os

    from moto_harness import CREDENTIALS
    from prefect.filesystems import RemoteFileSystem

    from batch_openai import storage
    from batch_openai.flows.workspace import load_storage_block

    bucket = moto.new_bucket()
    name = f"moto-{kind}"
    if kind == "aws-credentials":
        block = _aws_credentials_block()(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_client_parameters=_AwsCredentialsFields(endpoint_url=moto.endpoint),
        )
        block.save(name, overwrite=True)
        slug = f"{block.get_block_type_slug()}/{name}"
    else:
        settings = {"key": CREDENTIALS["AWS_ACCESS_KEY_ID"], "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    "client_kwargs": {"endpoint_url": moto.endpoint}}  # fmt: skip
        RemoteFileSystem(basepath=f"s3://{bucket}", settings=settings).save(name, overwrite=True)
        slug = f"remote-file-system/{name}"
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(fsspec.config, "conf", {})
    assert load_storage_block(slug) == ["s3"]
    local = tmp_path / "x.jsonl"
    local.write_bytes(b'{"a": 1}\n')
    storage.publish(local, f"s3://{bucket}/x.jsonl")
    assert storage.fetch(f"s3://{bucket}/x.jsonl", tmp_path / "back.jsonl").read_bytes() == b'{"a": 1}\n'


def test_an_unknown_storage_block_is_one_line_naming_the_form(prefect_api):
    from batch_openai import BatchStorageError
    from batch_openai.flows.workspace import load_storage_block

    with pytest.raises(
        BatchStorageError, match=r"storage_block 'secret/no-such-block'.*'<block type>/<block name>'"
    ):
        load_storage_block("secret/no-such-block")
