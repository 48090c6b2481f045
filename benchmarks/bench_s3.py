"""Benchmark: one `batch-openai run` with input, output and work directory on S3, against the same run on
local disk, back to back. Prints wall time, flow time and the runner's peak RSS of each, and the ratios.

Run: `.venv/bin/python benchmarks/bench_s3.py [--requests 50000] [--batch-size 50000] [--repeat 1]`

S3 is moto's server (`python -m moto.server`, a real S3 API over HTTP on loopback; needs the dev
dependencies), so the figures measure this project's streaming, staging and publishing plus an
HTTP round trip per object, not a real bucket's bandwidth or latency. Each run gets a fresh local Batch
API server (`batch-openai local serve --step-seconds 0`) and a fresh Prefect home (ephemeral Prefect,
`BATCH_OPENAI_PREFECT_SERVER=off`, as bench_scale.py), so neither run re-attaches to the other's
batches. The runner's peak is its kernel high-water mark (VmHWM). Each output is checked: one row per
input, in input order.
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
from scale_util import check_output, flow_seconds, start_local_serve, watch_peak, write_input

KEY = "sk-bench-s3"
BIN = Path(sys.executable).parent
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [str(BIN / "python"), "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=open(root / "moto.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            return proc, endpoint
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("moto server did not start")


def _run(label: str, root: Path, src: str, out: str, work: str, env_extra: dict[str, str], args) -> dict:
    """One `batch-openai run` against a fresh local Batch API server; its figures."""
    root.mkdir(parents=True)
    serve, url = start_local_serve(root / "server", root / "serve.log", KEY)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "AWS_"))}
        env.update(
            OPENAI_API_KEY=KEY,
            PREFECT_HOME=str(root / "prefect"),
            BATCH_OPENAI_PREFECT_SERVER="off",
            BATCH_OPENAI_STAGING_DIR=str(root / "staging"),
            **env_extra,
        )
        cmd = [str(BIN / "batch-openai"), "run", src, "-o", out, "--base-url", url,
               "--batch-size", str(args.batch_size), "--poll-interval", "0.5", "--max-poll-interval", "2",
               "--work-dir", work]  # fmt: skip
        t0 = time.perf_counter()
        with open(root / "run.log", "wb") as log:
            runner = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            peak = watch_peak(runner)
        wall = time.perf_counter() - t0
        text = (root / "run.log").read_text()
        if runner.returncode != 0:
            print(text[-3000:])
            raise SystemExit(f"{label}: the run failed (exit {runner.returncode})")
        return {"wall": wall, "flow": flow_seconds(text), "peak": peak, "url": url, "serve": serve}
    except BaseException:
        serve.terminate()
        raise


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs (local, then S3)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    moto, endpoint = _start_moto(root)
    try:
        src = write_input(root / "in.jsonl", args.requests)
        import fsspec

        s3_env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
        fs = fsspec.filesystem("s3", key=S3_ENV["AWS_ACCESS_KEY_ID"], secret=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                               client_kwargs={"endpoint_url": endpoint})  # fmt: skip
        fs.mkdir("bench")
        fs.put_file(str(src), "bench/in.jsonl")
        print(f"input: {args.requests:,} requests, {src.stat().st_size / 1e6:,.1f} MB")
        rows: list[tuple[str, dict]] = []
        for i in range(args.repeat):
            local = _run(f"local {i}", root / f"local-{i}", str(src), str(root / f"local-{i}.jsonl"),
                         str(root / f"local-{i}" / "work"), {}, args)  # fmt: skip
            check_output(src, root / f"local-{i}.jsonl", local["url"], KEY)
            local["serve"].terminate()
            remote = _run(f"s3 {i}", root / f"s3-{i}", "s3://bench/in.jsonl", f"s3://bench/out-{i}.jsonl",
                          f"s3://bench/work-{i}", s3_env, args)  # fmt: skip
            fs.get_file(f"bench/out-{i}.jsonl", str(root / f"s3-{i}.jsonl"))
            check_output(src, root / f"s3-{i}.jsonl", remote["url"], KEY)
            remote["serve"].terminate()
            objects = fs.find(f"bench/work-{i}")
            rows += [("local disk", local), ("everything on S3", remote)]
            print(f"pair {i + 1}: {len(objects)} objects under s3://bench/work-{i}")
        print(f"{'':>18} {'wall s':>8} {'flow s':>8} {'peak RSS MB':>12}")
        for name, r in rows:
            print(f"{name:>18} {r['wall']:8.1f} {r['flow']:8.1f} {r['peak']:12.0f}")
        for i in range(0, len(rows), 2):
            (_, a), (_, b) = rows[i], rows[i + 1]
            print(
                f"ratio S3/local (pair {i // 2 + 1}): wall {b['wall'] / a['wall']:.2f}x, "
                f"flow {b['flow'] / a['flow']:.2f}x, peak RSS {b['peak'] / a['peak']:.2f}x"
            )
        print(orjson.dumps({"requests": args.requests, "batch_size": args.batch_size}).decode())
    finally:
        moto.terminate()
        moto.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
