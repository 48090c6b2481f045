"""What one small flow run costs beyond its batch: wall time, CPU here and CPU in the Prefect server.

Small runs are the common case in tests, CI jobs and scheduled evals, and there Prefect's bookkeeping,
not the batch, is the cost. This runs `run_batch` on a 10-request job again and again, against the
local Batch API server (in process, 0.1 s steps) and batch-openai's local Prefect server in a fresh
Prefect home, and prints per run: wall time, CPU of this process, CPU of the Prefect server, and how
many `openai` clients were made.

Four ways, in rotation so every way sees the same server and a database of the same size:
- `now`: the product as it is: one `openai` client per process, base URL and key; tags on the flow
  run only;
- `fresh clients`: a new `openai` client at every `build_client` call (as before this change), by
  a client cache that forgets before each lookup;
- `tagged tasks`: the run's tags on every task run too (as before this change), by calling the flow
  inside `prefect.tags(...)`: each task start then asks for tag concurrency slots;
- `before`: both.

    .venv/bin/python benchmarks/bench_run_overhead.py [--runs 6] [--requests 10]

Prints medians and the now/before ratios; asserts nothing. The Prefect server is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_bench_util import chat_jsonl

HOME = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
os.environ["PREFECT_HOME"] = str(HOME)  # before Prefect is imported: a home of its own
for key in ("PREFECT_API_URL", "PREFECT_PROFILE"):
    os.environ.pop(key, None)
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-overhead")

WAYS = ("now", "fresh clients", "tagged tasks", "before")
#: What the flow tags its run with for this job (flows/batch_flow.py).
RUN_TAGS = ("model:gpt-4o-mini", "endpoint:/v1/chat/completions", "mode:requests", "wait:poll")


class Forgetful(OrderedDict):
    """A client cache that forgets everything before each lookup: a new client every call."""

    def get(self, key, default=None):  # type: ignore[override]
        self.clear()
        return default


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="runs of each way (after one warm-up run)")
    parser.add_argument("--requests", type=int, default=10)
    args = parser.parse_args()

    import openai
    from prefect import tags
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    from batch_openai.flows import client as client_module
    from batch_openai.flows import embedded
    from batch_openai.flows.runner import run_batch
    from batch_openai.local import LocalBatchServer

    made = {"clients": 0}
    real_init = openai.OpenAI.__init__

    def counting_init(self, *a, **k):  # copies made by `with_options` share their parent's connections
        if k.get("http_client") is None:
            made["clients"] += 1
        real_init(self, *a, **k)

    openai.OpenAI.__init__ = counting_init  # type: ignore[method-assign]
    shared_cache = client_module._clients
    server = embedded.ensure(HOME)
    assert server is not None, "batch-openai's local Prefect server did not start"
    results: dict[str, list[tuple[float, float, float, int]]] = {way: [] for way in WAYS}
    work = HOME / "jobs"
    work.mkdir()
    try:
        with LocalBatchServer(step_seconds=0.1) as batch_server:

            def one(i: int, way: str) -> None:
                src = work / f"in{i}.jsonl"
                src.write_bytes(chat_jsonl(args.requests, tag=f" (run {i} {time.time()})"))
                fresh = way in ("fresh clients", "before")
                client_module._clients = Forgetful() if fresh else shared_cache
                tagged = tags(*RUN_TAGS) if way in ("tagged tasks", "before") else contextlib.nullcontext()
                made["clients"] = 0
                w0, c0, s0 = time.perf_counter(), time.process_time(), process_cpu(server.pid)
                with tagged:
                    summary = run_batch(
                        src, work / f"out{i}.jsonl", base_url=batch_server.base_url, poll_interval=0.1
                    )
                elapsed = time.perf_counter() - w0
                cpu, srv = time.process_time() - c0, process_cpu(server.pid) - s0
                results[way].append((elapsed, cpu, srv, made["clients"]))
                assert summary["outcomes"].get("succeeded") == args.requests, summary

            one(0, "now")  # warm-up: imports, the flow's registration, the first connections
            results["now"].clear()
            n = 1
            for i in range(args.runs):
                for way in WAYS[i % len(WAYS) :] + WAYS[: i % len(WAYS)]:  # each way leads in turn
                    one(n, way)
                    n += 1
    finally:
        client_module._clients = shared_cache
        openai.OpenAI.__init__ = real_init  # type: ignore[method-assign]
        for service in (APILogWorker, EventsWorker):  # send what is queued while the server is up
            service.drain_all(timeout=10)
        embedded.stop(HOME)

    print(f"\n{args.runs} runs of each way, {args.requests} requests each; medians per run:")
    print(f"{'way':14} {'wall s':>7} {'CPU here s':>11} {'Prefect server CPU s':>21} {'openai clients':>15}")
    med = {way: [statistics.median(col) for col in zip(*rows, strict=True)] for way, rows in results.items()}
    for way in WAYS:
        wall, cpu, srv, clients = med[way]
        print(f"{way:14} {wall:7.2f} {cpu:11.3f} {srv:21.3f} {clients:15.0f}")
    now, before = med["now"], med["before"]
    print(
        f"now/before: wall {now[0] / before[0]:.2f}x, CPU here {now[1] / before[1]:.2f}x, "
        f"Prefect server CPU {now[2] / before[2]:.2f}x"
    )
    walls = {way: [round(row[0], 2) for row in rows] for way, rows in results.items()}
    print("every run's wall s:", walls)


if __name__ == "__main__":
    main()
