"""Benchmark: the Prefect flow against the plain library for the same job, through the local server.

Aim: flow wall time <= 1.3x the library's, plus Prefect's fixed start-up.
Prints: wall time and peak RSS of each (each runs in its own process; the local Batch API runs in a
third, so its memory is not counted), and Prefect's fixed start-up cost (ephemeral server + first flow
call, then a second flow call) measured separately.

Run: `.venv/bin/python benchmarks/bench_flow.py [--requests 50000] [--poll 0.5]`
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_bench_util import chat_jsonl, process_printing_url, serve_args

KEY = "sk-bench"


def library_job(src: str, out: str, base_url: str, poll: float) -> dict:
    """The same job with the library alone: validate, shard, submit, wait, write one row per input."""
    import orjson
    from openai import OpenAI

    from batch_openai import BatchJob, BatchRequestBuilder, submit_file

    client = OpenAI(api_key=KEY, base_url=base_url)
    work = Path(out).with_suffix(".libwork")
    builder = BatchRequestBuilder.from_jsonl(src)
    shards = builder.write_shards(work)
    jobs = [submit_file(client, s.path, endpoint=s.endpoint, fingerprint=s.fingerprint) for s in shards]
    ids = [j.batch_id for j in jobs]
    job = BatchJob.from_ids(client, ids, expected_ids=builder.custom_ids)
    while not job.is_terminal:
        time.sleep(poll)
        job.refresh()
    counts: dict[str, int] = {}
    with open(out, "wb") as fh:
        for item in job.result():
            row = {
                "custom_id": item.custom_id,
                "outcome": str(item.outcome),
                "content": item.content,
                "error": item.error,
                "status_code": item.status_code,
                "usage": item.usage,
            }
            counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
            fh.write(orjson.dumps(row) + b"\n")
    return counts


def flow_job(src: str, out: str, base_url: str, poll: float) -> dict:
    """The same job through `batch_run_flow` (ephemeral Prefect unless PREFECT_API_URL is set).

    A no-op flow is called first so Prefect's fixed start-up (import, ephemeral server) is measured in
    this same process and kept apart from the job's own time.
    """
    t0 = time.perf_counter()
    from batch_openai.flows import run_batch

    startup = startup_probe()
    t1 = time.perf_counter()
    rss_startup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    os.environ["OPENAI_API_KEY"] = KEY
    summary = run_batch(
        src,
        out,
        base_url=base_url,
        poll_interval=poll,
        max_poll_interval=poll,
        work_dir=str(Path(out).with_suffix(".flowwork")),
    )
    return {
        "outcomes": summary["outcomes"],
        "fixed_s": t1 - t0,
        "work_s": time.perf_counter() - t1,
        "rss_after_startup_mb": rss_startup,
        **startup,
    }


def startup_probe() -> dict:
    """Prefect's fixed cost: import, ephemeral server + first flow call, then a second flow call."""
    t0 = time.perf_counter()
    from prefect import flow
    from prefect.settings import temporary_settings

    t_import = time.perf_counter()

    @flow
    def noop() -> int:
        return 1

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):  # type: ignore[dict-item]
        noop()
        t_first = time.perf_counter()
        noop()
        t_second = time.perf_counter()
    return {
        "import_s": t_import - t0,
        "first_flow_call_s": t_first - t_import,
        "next_flow_call_s": t_second - t_first,
    }


def child(mode: str, src: str, out: str, base_url: str, poll: float) -> None:
    """Run one mode in this process and print its figures as JSON."""
    t0 = time.perf_counter()
    if mode == "flow":
        figures = flow_job(src, out, base_url, poll)
    else:
        counts = library_job(src, out, base_url, poll)
        figures = {"wall_s": time.perf_counter() - t0, "counts": counts}
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("FIGURES " + json.dumps(figures))


def run_child(mode: str, src: str, out: str, base_url: str, poll: float, home: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=home,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="90",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--src",
            src,
            "--out",
            out,
            "--base-url",
            base_url,
            "--poll",
            str(poll),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("FIGURES ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("FIGURES "))


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--child")
    parser.add_argument("--src")
    parser.add_argument("--out")
    parser.add_argument("--base-url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.src, args.out, args.base_url, args.poll)
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    src = tmp / "requests.jsonl"
    src.write_bytes(chat_jsonl(args.requests))
    print(f"{args.requests:,} requests through the local Batch API; poll {args.poll}s")
    figures = {}
    for mode in ("library", "flow"):
        # A fresh server each: the same content would otherwise re-attach to the other mode's batch.
        with process_printing_url(serve_args("--step-seconds", "0", "--api-key", KEY)) as url:
            out = str(tmp / f"{mode}.jsonl")
            figures[mode] = run_child(mode, str(src), out, url, args.poll, str(tmp / f"home-{mode}"))
    lib, flo = figures["library"], figures["flow"]
    w = 34
    imported = flo["fixed_s"] - flo["first_flow_call_s"] - flo["next_flow_call_s"]
    print(f"{'import batch_openai.flows (and prefect)':>{w}}: {imported:.2f} s")
    print(f"{'ephemeral server + no-op flow':>{w}}: {flo['first_flow_call_s']:.2f} s")
    print(f"{'next flow call':>{w}}: {flo['next_flow_call_s']:.2f} s")
    print(
        f"{'fixed start-up, all included':>{w}}: {flo['fixed_s']:.2f} s, "
        f"RSS {flo['rss_after_startup_mb']:.0f} MB"
    )
    print(
        f"{'library alone':>{w}}: {lib['wall_s']:.2f} s, peak RSS {lib['peak_rss_mb']:.0f} MB  "
        f"{lib['counts']}"
    )
    print(f"{'flow after start-up':>{w}}: {flo['work_s']:.2f} s, peak RSS {flo['peak_rss_mb']:.0f} MB")
    print(f"{'flow outcomes':>{w}}: {flo['outcomes']}")
    print(
        f"{'flow / library':>{w}}: {flo['work_s'] / lib['wall_s']:.2f}x "
        "(aim <= 1.3x, plus the fixed start-up)"
    )


if __name__ == "__main__":
    main()
