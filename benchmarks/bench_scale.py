"""Benchmark: a 1,000,000-request run (20 batches of 50,000) through `batch-openai run` and the local
server, end to end. Prints the wall time and the runner's peak RSS (aim: under 1 GB).

Run: `.venv/bin/python benchmarks/bench_scale.py [--requests 1000000] [--batch-size 50000] [--keep]`

The local server (`batch-openai local serve --step-seconds 0`, state on disk) and the runner
(`batch-openai run`, ephemeral Prefect in a temporary PREFECT_HOME) are separate processes; the
runner's peak is its kernel high-water mark (`VmHWM`), read until it exits, so Prefect's temporary
API server (a subprocess of its own) is not counted in it. Afterwards the output is checked: one row
per input, in input order, and 20 batches on the server, none made twice.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from scale_util import check_output, flow_seconds, peak_rss_mb, start_local_serve, watch_peak, write_input

KEY = "sk-bench-scale"


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, default=None, help="work here (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--rss-trace", type=Path, default=None, help="write the runner's RSS over time here")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    try:
        t0 = time.perf_counter()
        src = write_input(root / "in.jsonl", args.requests)
        print(f"input: {args.requests:,} requests, {src.stat().st_size / 1e6:,.0f} MB, "
              f"written in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        serve, url = start_local_serve(root / "server", root / "serve.log", KEY)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_"))}
            # Prefect's engine in a subprocess of the run, gone with it: nothing stays running afterwards.
            env.update(
                OPENAI_API_KEY=KEY, PREFECT_HOME=str(root / "prefect"), BATCH_OPENAI_PREFECT_SERVER="off"
            )
            out = root / "out.jsonl"
            cmd = [str(bin_dir / "batch-openai"), "run", str(src), "-o", str(out), "--base-url", url,
                   "--batch-size", str(args.batch_size), "--poll-interval", "1", "--max-poll-interval", "5",
                   "--work-dir", str(root / "work")]  # fmt: skip
            t1 = time.perf_counter()
            with open(root / "run.log", "wb") as log:
                runner = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
                runner_peak = watch_peak(runner, trace=args.rss_trace)
            wall = time.perf_counter() - t1
            if runner.returncode != 0:
                print((root / "run.log").read_text()[-3000:])
                raise SystemExit(f"the run failed (exit {runner.returncode})")
            server_peak = peak_rss_mb(serve.pid)
            t2 = time.perf_counter()
            counts, batches = check_output(src, out, url, KEY)
            check_s = time.perf_counter() - t2
        finally:
            serve.terminate()
            serve.wait(30)
        print(f"{'run wall time':>28}: {wall:,.1f} s   ({args.requests / wall:,.0f} requests/s, "
              "Prefect start-up included)")  # fmt: skip
        flow_s = flow_seconds((root / "run.log").read_text())
        print(
            f"{'flow run (begin to end)':>28}: {flow_s:,.1f} s   ({args.requests / flow_s:,.0f} requests/s)"
        )
        print(f"{'runner peak RSS':>28}: {runner_peak:,.0f} MB   (aim: < 1,024 MB)")
        print(f"{'local server peak RSS':>28}: {server_peak:,.0f} MB")
        print(f"{'batches on the server':>28}: {batches}   (expected {-(-args.requests // args.batch_size)})")
        print(f"{'outcomes':>28}: {orjson.dumps(counts).decode()}")
        print(f"{'output':>28}: {out.stat().st_size / 1e6:,.0f} MB, checked in {check_s:.1f} s")
        tail = [line for line in (root / "run.log").read_text().splitlines() if "rows" in line][-1:]
        print(f"{'CLI said':>28}: {tail[0] if tail else '?'}")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
