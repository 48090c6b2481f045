"""Benchmark the batch registry: `batch-openai list` with 1,000 records, fast paths against Prefect's API.

    .venv/bin/python benchmarks/bench_registry.py [--records 1000] [--repeat 5] [--no-server]

Prints wall-clock figures (median of `--repeat` runs, each a fresh process as a user would run it):
- writing the records through Prefect's API (ephemeral engine on a registry home),
- `batch-openai --registry HOME list` (read-only SQLite path; target: under 2 s for 1,000 records),
- `batch-openai list` with `PREFECT_HOME` (the default registry, same path),
- `BatchRegistry(HOME).list()` in a fresh interpreter, and the same through Prefect's API (what the fast
  path avoids: the ephemeral engine's start-up),
- with a Prefect server (unless `--no-server`): `batch-openai list` over plain httpx, and through
  Prefect's client.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
CLI = str(VENV_BIN / "batch-openai")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_"))}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)
    return env


def _timed(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float, str]:
    """(median, min) seconds of `repeat` runs of `cmd`; the last run's stdout."""
    times = []
    out = ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr}")
        out = done.stdout
    return statistics.median(times), min(times), out


def _seed(home: Path, n: int) -> float:
    """Write `n` records through Prefect's API in a child process; seconds spent writing (after start-up)."""
    code = f"""
import time
from batch_openai import BatchRegistry
reg = BatchRegistry({str(home)!r})
reg.delete("batch_warmup")  # start the ephemeral engine first: not part of the write figure
start = time.perf_counter()
statuses = ["completed", "in_progress", "failed", "validating", "expired"]
with reg:
    for i in range({n}):
        reg.track_batch({{
            "id": f"batch_{{i:024x}}", "input_file_id": f"file-{{i}}", "endpoint": "/v1/chat/completions",
            "status": statuses[i % 5], "created_at": 1_700_000_000 + i, "model": "gpt-4o-mini",
            "metadata": {{"description": f"nightly evaluation run number {{i}} of the benchmark"}},
            "request_counts": {{"total": 50000, "completed": i, "failed": i % 7}},
        }})
print(time.perf_counter() - start)
"""
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return float(done.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_figures(home: Path, n: int, repeat: int) -> None:
    """Start `prefect server start` on a copy of the seeded database and time `list` against it."""
    import httpx

    server_home = home.parent / "server-home"
    server_home.mkdir()
    for name in ("prefect.db", "prefect.db-wal"):  # the WAL holds writes not yet checkpointed
        if (home / name).exists():
            shutil.copy(home / name, server_home / name)
    port = _free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=_env(PREFECT_HOME=str(server_home)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            raise SystemExit("prefect server did not start")
        env = _env(PREFECT_API_URL=api, PREFECT_HOME=str(server_home))
        med, low, out = _timed([CLI, "list"], env, repeat)
        assert len(out.splitlines()) == n + 1, "the table should have one row per record"
        print(f"  batch-openai list, Prefect server, plain httpx   : {med:6.2f} s median ({low:.2f} min)")
        code = "from batch_openai import BatchRegistry as R; print(len(R()._api().list()))"
        med, low, out = _timed([sys.executable, "-c", code], env, repeat)
        assert out.strip() == str(n)
        print(f"  same records through Prefect's client (import it): {med:6.2f} s median ({low:.2f} min)")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-server", action="store_true", help="skip the Prefect server figures")
    args = parser.parse_args()
    n, repeat = args.records, args.repeat

    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        home = Path(tmp) / "home"
        cpus = os.cpu_count()
        print(f"batch registry benchmark: {n} records, median of {repeat} fresh processes, {cpus} CPUs")
        wrote = _seed(home, n)
        each = wrote / n * 1000
        print(f"  write {n} records via Prefect's API (one client) : {wrote:6.2f} s ({each:.1f} ms each)")

        med, low, out = _timed([CLI, "--registry", str(home), "list"], _env(), repeat)
        assert len(out.splitlines()) == n + 1, "the table should have one row per record"
        print(
            f"  batch-openai --registry HOME list (table)      : {med:6.2f} s median ({low:.2f} min)  < 2 s?"
        )
        med, low, _ = _timed([CLI, "--registry", str(home), "list", "--json"], _env(), repeat)
        print(f"  batch-openai --registry HOME list --json       : {med:6.2f} s median ({low:.2f} min)")
        med, low, _ = _timed([CLI, "list"], _env(PREFECT_HOME=str(home)), repeat)
        print(f"  batch-openai list (PREFECT_HOME, no server)    : {med:6.2f} s median ({low:.2f} min)")
        med, low, _ = _timed([CLI, "--help"], _env(), repeat)
        print(f"  batch-openai --help (start-up floor)           : {med:6.2f} s median ({low:.2f} min)")

        code = f"from batch_openai import BatchRegistry as R; print(len(R({str(home)!r}).list()))"
        med, low, out = _timed([sys.executable, "-c", code], _env(), repeat)
        assert out.strip() == str(n)
        print(f"  BatchRegistry(HOME).list(), fresh process      : {med:6.2f} s median ({low:.2f} min)")
        code = f"from batch_openai import BatchRegistry as R\nprint(len(R({str(home)!r})._api().list()))"
        med, low, out = _timed([sys.executable, "-c", code], _env(), 1)
        assert out.strip() == str(n)
        print(f"  same, through Prefect's API (ephemeral start)  : {med:6.2f} s (1 run: the cost avoided)")

        if not args.no_server:
            _server_figures(home, n, repeat)


if __name__ == "__main__":
    main()
