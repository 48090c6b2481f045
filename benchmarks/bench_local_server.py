"""Benchmark: create -> completed for a 50,000-line mock batch with --step-seconds 0 (aim: < 10 s).

Run: `.venv/bin/python benchmarks/bench_local_server.py [--lines 50000] [--in-process]`
The server runs as a separate `batch-openai local serve` process unless --in-process is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import openai
from local_bench_util import chat_jsonl, process_printing_url, run_batch, serve_args


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--in-process", action="store_true", help="serve from a thread of this process")
    args = parser.parse_args()
    data = chat_jsonl(args.lines)
    print(f"input: {args.lines} lines, {len(data) / 1e6:.1f} MB")
    if args.in_process:
        from batch_openai.local import LocalBatchServer

        with LocalBatchServer(step_seconds=0) as server:
            figures = run_batch(server.client(max_retries=0), data)
    else:
        with process_printing_url(serve_args("--step-seconds", "0")) as url:
            time.sleep(0.2)
            figures = run_batch(openai.OpenAI(api_key="sk-local", base_url=url, max_retries=0), data)
    for key, value in figures.items():
        print(f"{key:>28}: {value:.3f}")
    rate = args.lines / figures["create_to_completed_s"]
    print(f"{'lines per second':>28}: {rate:,.0f}   (aim: 50,000 lines in < 10 s)")


if __name__ == "__main__":
    main()
