"""Start-up costs of the embedded Prefect default (issue 13, item 1). Prints figures, asserts nothing.

In a fresh Prefect home (no PREFECT_API_URL, nothing running), as a newcomer runs it:
- `batch-openai demo` twice: the first starts batch-openai's local Prefect server, the second reuses it
  (target: second ≤ half the first);
- a bare `python -c "import prefect"` against `BatchRegistry().track()` of a batch in a fresh process,
  with the server warm (target: ≤ 3×);
- `batch-openai list` and `batch-openai prefect status` for scale.
The server is stopped at the end (`batch-openai prefect stop`).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 3] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TRACK = """
import time, uuid
from openai.types import Batch
from batch_openai import BatchRegistry
batch = Batch.model_validate({
    "id": "batch_" + uuid.uuid4().hex, "object": "batch", "endpoint": "/v1/chat/completions",
    "input_file_id": "file-x", "completion_window": "24h", "status": "in_progress",
    "created_at": int(time.time()), "request_counts": {"total": 3, "completed": 1, "failed": 0},
    "metadata": {"description": "bench startup"},
})
BatchRegistry().track_batch(batch)
"""


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def median(cmd: list[str], env: dict[str, str], cwd: Path, repeat: int) -> float:
    return statistics.median(timed(cmd, env, cwd) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="reviews in the demo (default: all 300)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    home = work / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OPENAI_", "BATCH_OPENAI_"))}
    env["PREFECT_HOME"] = str(home)
    cli = str(BIN / "batch-openai")
    demo = [cli, "demo", "--workdir", str(work / "demo")]
    if args.limit:
        demo += ["--limit", str(args.limit)]
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(f"fresh Prefect home {home}, nothing running\n")
    try:
        first = timed(demo, env, work)
        second = timed(demo, env, work)
        third = timed(demo, env, work)
        print(f"batch-openai demo, first (starts the Prefect server): {first:6.1f} s")
        print(f"batch-openai demo, second (reuses it):                 {second:6.1f} s")
        print(f"batch-openai demo, third:                              {third:6.1f} s")
        print(f"  second / first = {second / first:.2f}   (target ≤ 0.50)\n")

        bare = median([sys.executable, "-c", "import prefect"], env, work, args.repeat)
        track = median([sys.executable, "-c", TRACK], env, work, args.repeat)
        print(f'python -c "import prefect" (median of {args.repeat}):          {bare:6.2f} s')
        print(f"BatchRegistry().track_batch() in a fresh process (median):  {track:6.2f} s")
        print(f"  track / import prefect = {track / bare:.2f}   (target ≤ 3)\n")

        listing = median([cli, "list"], env, work, args.repeat)
        status = median([cli, "prefect", "status"], env, work, args.repeat)
        print(f"batch-openai list (median):            {listing:6.2f} s")
        print(f"batch-openai prefect status (median):  {status:6.2f} s")
    finally:
        subprocess.run([cli, "prefect", "stop"], env=env, cwd=work)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
