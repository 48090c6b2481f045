"""Benchmark: `--responder forward` throughput against a loopback upstream answering in 50 ms.

Aim: 500 requests/s or more at --concurrency 64 on a 2-core machine.
Run: `.venv/bin/python benchmarks/bench_forward.py [--lines 5000] [--concurrency 64] [--delay-ms 50]`
Upstream, server and this client run as three processes, all on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openai
from local_bench_util import chat_jsonl, process_printing_url, run_batch, serve_args


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    args = parser.parse_args()
    upstream_cmd = [
        sys.executable,
        str(Path(__file__).with_name("local_upstream.py")),
        "--delay-ms",
        str(args.delay_ms),
    ]
    with process_printing_url(upstream_cmd) as upstream:
        flags = ("--step-seconds", "0", "--responder", "forward", "--upstream", upstream)
        with process_printing_url(serve_args(*flags, "--concurrency", str(args.concurrency))) as url:
            client = openai.OpenAI(api_key="sk-local", base_url=url, max_retries=0)
            figures = run_batch(client, chat_jsonl(args.lines))
    print(f"upstream delay {args.delay_ms:.0f} ms, concurrency {args.concurrency}, {args.lines} lines")
    for key, value in figures.items():
        print(f"{key:>28}: {value:.3f}")
    rate = figures["completed"] / figures["in_progress_to_completed_s"]
    ceiling = args.concurrency / (args.delay_ms / 1000)
    print(f"{'requests per second':>28}: {rate:,.0f}   (aim: >= 500; ceiling at this delay {ceiling:,.0f})")


if __name__ == "__main__":
    main()
