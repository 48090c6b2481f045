"""Helpers of `bench_scale.py`: a big input written in a stream, peak RSS, and the output check."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson

PROMPT = "Write one sentence about item {i} of the catalogue, for a product page."


def write_input(path: Path, n: int) -> Path:
    """`n` chat requests as a native batch-input JSONL, written in blocks (never all in memory)."""
    with open(path, "wb", buffering=1 << 22) as fh:
        block: list[bytes] = []
        for i in range(n):
            line = {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": PROMPT.format(i=i)}],
                    "max_tokens": 40,
                },
            }
            block.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            if len(block) == 10_000:
                fh.write(b"".join(block))
                block.clear()
        fh.write(b"".join(block))
    return path


def start_local_serve(state_dir: Path, log: Path, key: str) -> tuple[subprocess.Popen[str], str]:
    """`batch-openai local serve --step-seconds 0` on a free port with its state on disk; (process, URL)."""
    import sys

    serve = subprocess.Popen(
        [str(Path(sys.executable).parent / "batch-openai"), "local", "serve", "--port", "0",
         "--step-seconds", "0", "--state-dir", str(state_dir), "--api-key", key],
        stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,  # noqa: SIM115 - lives as long as the server
    )  # fmt: skip
    line = serve.stdout.readline() if serve.stdout else ""
    return serve, next(w for w in line.split() if w.startswith("http"))


def peak_rss_mb(pid: int) -> float:
    """A live process's peak resident set size (VmHWM) in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    """A live process's current resident set size (VmRSS) in MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def watch_peak(proc: subprocess.Popen[bytes], interval: float = 0.2, trace: Path | None = None) -> float:
    """Wait for `proc`, reading its peak RSS until it exits; returns the last (highest) reading in MB.

    With `trace`, also writes "HH:MM:SS.fff RSS_MB" lines, to line up with the run log's timestamps.
    """
    peak = 0.0
    with open(trace or "/dev/null", "w") as out:
        while proc.poll() is None:
            peak = max(peak, peak_rss_mb(proc.pid))
            if trace is not None:
                out.write(f"{datetime.now():%H:%M:%S.%f} {rss_mb(proc.pid):.0f}\n")
            time.sleep(interval)
    return peak


def check_output(src: Path, out: Path, base_url: str, key: str) -> tuple[dict[str, int], int]:
    """One row per input in input order, and no two batches for one content; returns (outcomes, batches)."""
    from openai import OpenAI

    counts: Counter[str] = Counter()
    with open(src, "rb") as fin, open(out, "rb") as fout:
        for n, (request, row) in enumerate(zip(fin, fout, strict=True), 1):
            cid = orjson.loads(request)["custom_id"]
            got = orjson.loads(row)
            if got["custom_id"] != cid:
                raise SystemExit(f"row {n} is {got['custom_id']!r}, expected {cid!r}")
            counts[got["outcome"]] += 1
    batches = list(OpenAI(api_key=key, base_url=base_url).batches.list(limit=100))
    prints = Counter((b.metadata or {}).get("batch_openai_fingerprint") for b in batches)
    if any(v > 1 for v in prints.values()):
        raise SystemExit(f"a batch was made twice: {prints}")
    return dict(counts), len(batches)


_STAMP = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) \|")


def flow_seconds(log: str) -> float:
    """Seconds from Prefect's "Beginning flow run" line to the flow's final state line in a run log."""
    begin = end = None
    for line in log.splitlines():
        m = _STAMP.match(line)
        if not m:
            continue
        stamp = datetime.strptime(m.group(1), "%H:%M:%S.%f")
        if "Beginning flow run" in line:
            begin = stamp
        elif "Flow run" in line and "Finished in state" in line:
            end = stamp
    if begin is None or end is None:
        return float("nan")
    return (end - begin).total_seconds() % 86_400
