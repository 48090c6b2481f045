"""Concurrent submitters of the same content: how many live batches are left, and what duplicates cost.

    .venv/bin/python benchmarks/bench_concurrent_submit.py [--trials 10] [--homes 2]

Three kinds of trial against one local Batch API server whose batches stay `validating` for 0.5 s (as
OpenAI's do for a while), each with content no other trial used:
- threads: 10 threads call `builder.submit()` on the same builder at the same moment;
- processes: 4 processes call `submit_file()` on the same file at the same moment;
- homes: two `batch-openai run` on the same input, each with a Prefect home of its own (two machines,
  one OpenAI project): no file lock or task cache is shared between them.
For each trial it prints the batches made, the live ones left (target: 1), what each submitter got back
(target: one id), and the requests that cancelled duplicates answered (target: 0; their other lines are
`batch_cancelled`, never run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

from batch_openai import FINGERPRINT_KEY, BatchRequestBuilder
from batch_openai.local import LocalBatchServer

LIVE = ("validating", "in_progress", "finalizing", "completed")


def _builder(tag: str, n: int = 5) -> BatchRequestBuilder:
    b = BatchRequestBuilder()
    for i in range(n):
        b.add([{"role": "user", "content": f"{tag} request {i}"}], model="gpt-4o-mini", custom_id=f"r{i}")
    return b


def _tally(server: LocalBatchServer, fingerprint: str) -> tuple[int, int, int]:
    """(batches made, live ones, requests run by the cancelled ones) for one fingerprint."""
    client = server.client()
    made = [
        b
        for b in client.batches.list(limit=100).data
        if (b.metadata or {}).get(FINGERPRINT_KEY, "").startswith(fingerprint)
    ]
    live = [b for b in made if b.status in LIVE]
    ran = 0
    for b in made:
        if b.status not in LIVE:
            b = client.batches.retrieve(b.id)
            counts = b.request_counts
            ran += 0 if counts is None else counts.completed  # cancelled lines never ran
    return len(made), len(live), ran


def trial_threads(server: LocalBatchServer) -> tuple[int, int, int, int]:
    builder = _builder(uuid.uuid4().hex)
    start = threading.Barrier(10)
    ids: list[str] = []

    def submit() -> None:
        client = server.client()
        start.wait()
        ids.append(builder.submit(client).batch_id)

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fingerprint = server.client().batches.retrieve(ids[0]).metadata[FINGERPRINT_KEY]
    return (*_tally(server, fingerprint), len(set(ids)))


def trial_processes(server: LocalBatchServer, tmp: Path) -> tuple[int, int, int, int]:
    path = _builder(uuid.uuid4().hex).to_jsonl(tmp / f"{uuid.uuid4().hex}.jsonl")
    at = time.time() + 3.0
    script = textwrap.dedent(
        f"""
        import time
        from openai import OpenAI
        from batch_openai import submit_file
        client = OpenAI(base_url={server.base_url!r}, api_key="sk-local")
        time.sleep(max(0.0, {at!r} - time.time()))
        print(submit_file(client, {str(path)!r}, endpoint="/v1/chat/completions").batch_id)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    ids = [p.communicate()[0].strip() for p in procs]
    fingerprint = server.client().batches.retrieve(ids[0]).metadata[FINGERPRINT_KEY]
    return (*_tally(server, fingerprint), len(set(ids)))


def trial_homes(server: LocalBatchServer, tmp: Path) -> tuple[int, int, int, int]:
    """Two `batch-openai run` with separate Prefect homes and work dirs, started together."""
    src = _builder(uuid.uuid4().hex, 8).to_jsonl(tmp / f"{uuid.uuid4().hex}.jsonl")
    exe = str(Path(sys.executable).with_name("batch-openai"))
    procs, homes = [], []
    for k in range(2):
        home = tmp / f"home-{k}-{uuid.uuid4().hex[:6]}"
        homes.append(home)
        env = {
            **{n: v for n, v in os.environ.items() if not n.startswith(("PREFECT_", "BATCH_OPENAI_"))},
            "PREFECT_HOME": str(home),
            "OPENAI_API_KEY": "sk-local",
        }
        cmd = [exe, "run", str(src), "--output", str(home / "out.jsonl"), "--work-dir", str(home / "work")]
        cmd += ["--base-url", server.base_url, "--poll-interval", "0.2"]
        procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE), env))
    codes = [p.wait(timeout=900) for p, _ in procs]
    for _, env in procs:  # stop the Prefect server each home started
        subprocess.run([exe, "prefect", "stop"], env=env, capture_output=True, timeout=120)
    if any(codes):
        print(f"    runs exited {codes}", file=sys.stderr)
    rows = [
        len((h / "out.jsonl").read_text().splitlines()) if (h / "out.jsonl").exists() else 0 for h in homes
    ]
    (shard,) = BatchRequestBuilder.from_jsonl(src).write_shards(tmp / f"shards-{uuid.uuid4().hex[:6]}")
    made, live, ran = _tally(server, shard.fingerprint)  # the runs' shard: same content, same fingerprint
    print(f"    rows written by each run: {rows}")
    return made, live, ran, 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--homes", type=int, default=2, help="trials of two runs with separate Prefect homes")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-concurrent-") as tmp,
        LocalBatchServer(step_seconds=0.5) as server,
    ):
        for kind, trials in (("threads", args.trials), ("processes", args.trials), ("homes", args.homes)):
            totals = [0, 0, 0]
            bad = 0
            for _ in range(trials):
                if kind == "threads":
                    made, live, ran, answers = trial_threads(server)
                elif kind == "processes":
                    made, live, ran, answers = trial_processes(server, Path(tmp))
                else:
                    made, live, ran, answers = trial_homes(server, Path(tmp))
                totals = [totals[0] + made, totals[1] + live, totals[2] + ran]
                bad += live != 1 or answers > 1
                print(
                    f"  {kind}: made {made}, live {live}, ids returned {answers or '-'}, duplicates ran {ran}"
                )
            print(
                f"{kind}: {trials} trials, {totals[0]} batches made, {totals[1]} live "
                f"(target {trials}), trials with a surviving duplicate: {bad}, "
                f"requests answered by duplicates: {totals[2]}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
