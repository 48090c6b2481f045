"""The fan-out over two process workers that share no disk: only an S3 bucket (moto's server) and the
Prefect server. Each worker has its own Prefect home, temp dir and working directory; the shards travel
as objects and each shard run's rows come back as one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
from conftest import KEY, Stack, _run, runs_executed_by
from flows_harness import VENV_BIN, stop_process, track_process, wait_until, write_requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "storage"))
from moto_harness import forget_s3_clients, start_moto

pytestmark = pytest.mark.e2e
POOL = "batch-openai-s3"
DEPLOYMENT = "batch-openai-s3-shard"


def _deploy(stack: Stack, where: Path) -> None:
    """A shard deployment on a pool of its own, so only this test's workers run its flow runs."""
    env = stack.prefect.env(PREFECT_CLI_PROMPT="false")
    _run([str(VENV_BIN / "prefect"), "work-pool", "create", POOL, "--type", "process", "--overwrite"], env)
    (where / "prefect.yaml").write_text(
        "name: batch-openai-s3\nprefect-version: 3.9.1\nbuild: null\npush: null\ndeployments:\n"
        f"  - name: {DEPLOYMENT}\n    entrypoint: batch_openai.flows.batch_flow:batch_run_flow\n"
        f"    work_pool: {{name: {POOL}}}\n"
    )
    subprocess.run(
        [str(VENV_BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", "prefect.yaml"],
        env=env,
        cwd=where,
        check=True,
        capture_output=True,
        timeout=180,
    )


def _worker(stack: Stack, name: str, root: Path, s3_env: dict[str, str]) -> subprocess.Popen:
    home, tmp, cwd = (root / name / d for d in ("prefect-home", "tmp", "cwd"))
    for d in (home, tmp, cwd):
        d.mkdir(parents=True)
    env = {**stack.worker_env(), **s3_env, "PREFECT_HOME": str(home), "TMPDIR": str(tmp)}
    log = open(root / f"{name}.log", "wb")  # noqa: SIM115 - closed by the OS at exit
    proc = subprocess.Popen(
        [str(VENV_BIN / "prefect"), "worker", "start", "--pool", POOL, "--name", name, "--limit", "1"],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return track_process(proc)


@pytest.mark.slow
def test_fanout_spreads_one_job_over_two_workers_sharing_only_a_bucket(
    prefect_client_settings: Stack, tmp_path: Path, monkeypatch
):
    from openai import OpenAI
    from prefect import get_client

    from batch_openai.flows import shard_fanout_flow

    stack = prefect_client_settings
    moto = start_moto(tmp_path)
    forget_s3_clients()  # this process's S3 clients point at this test's moto only
    workers: list[subprocess.Popen] = []
    try:
        bucket = f"s3://{moto.new_bucket()}"
        for key, value in moto.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("BATCH_OPENAI_STAGING_DIR", str(tmp_path / "parent-staging"))
        deploy_dir = tmp_path / "deploy"
        deploy_dir.mkdir()
        _deploy(stack, deploy_dir)
        workers = [_worker(stack, name, tmp_path, moto.env()) for name in ("s3-worker-a", "s3-worker-b")]
        with get_client(sync_client=True) as client:  # both polling before the shards are handed out
            assert wait_until(
                lambda: len(client.read_workers_for_work_pool(POOL)) == 2, timeout=120, interval=1
            )
        local = write_requests(tmp_path / "in.jsonl", 8, prefix="fan-s3")
        fsspec.filesystem("s3").put_file(str(local), f"{bucket}/in.jsonl")
        batches = OpenAI(api_key=KEY, base_url=stack.base_url).batches
        before = sum(1 for _ in batches.list(limit=100))
        summary = shard_fanout_flow(
            f"{bucket}/in.jsonl",
            f"{bucket}/out.jsonl",
            deployment_name=f"batch-openai-run/{DEPLOYMENT}",
            batch_size=4,
            shard_parameters={"poll_interval": 0.2},
            work_dir=f"{bucket}/work",
            poll_seconds=0.5,
            timeout_hours=0.1,
        )
        assert sum(1 for _ in batches.list(limit=100)) - before == 2  # one batch per shard
    finally:
        for proc in workers:
            stop_process(proc, grace=15)
    try:
        with fsspec.open(f"{bucket}/out.jsonl", "rb") as fh:
            rows = [json.loads(line) for line in fh.read().splitlines()]
    finally:
        moto.stop()
        forget_s3_clients()
    assert [r["custom_id"] for r in rows] == [f"fan-s3{i}" for i in range(8)]
    assert {r["outcome"] for r in rows} == {"succeeded"}
    ids = summary["flow_run_ids"]
    with get_client(sync_client=True) as client:
        assert all(client.read_flow_run(i).state.is_completed() for i in ids)
    logs = {p.stem: p.read_text() for p in tmp_path.glob("s3-worker-*.log")}
    ran_by = runs_executed_by(logs, ids)
    assert sorted(tuple(v) for v in ran_by.values()) == [("s3-worker-a",), ("s3-worker-b",)], ran_by
    for name in ("s3-worker-a", "s3-worker-b"):  # nothing of the job on either worker's own disk
        assert not any((tmp_path / name / "cwd").iterdir())
    assert sorted(p.name for p in deploy_dir.iterdir()) == ["prefect.yaml"]
