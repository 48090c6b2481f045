"""Shared helpers of the local-server benchmarks: start processes, write inputs, time a batch."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson


@contextmanager
def process_printing_url(args: list[str]) -> Iterator[str]:
    """Run a command that prints its base URL on the first stdout line; yield that URL."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = next((w for w in line.split() if w.startswith("http://")), None)
        if url is None:
            raise RuntimeError(f"{args[0]} did not print a URL: {line!r}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def serve_args(*flags: str) -> list[str]:
    """Command line of `batch-openai local serve` on a free port with extra flags."""
    code = "from batch_openai.cli import main; main()"
    return [sys.executable, "-c", code, "local", "serve", "--port", "0", *flags]


def chat_jsonl(n: int, model: str = "gpt-4o-mini", tag: str = "") -> bytes:
    """`n` chat-completion batch lines (a `tag` makes their content new, so nothing is reused)."""
    buf = io.BytesIO()
    for i in range(n):
        line = {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [
                    {"role": "user", "content": f"Summarise document number {i} in one sentence.{tag}"}
                ],
                "max_tokens": 60,
            },
        }
        buf.write(orjson.dumps(line) + b"\n")
    return buf.getvalue()


def run_batch(client: Any, data: bytes, poll: float = 0.05) -> dict[str, float]:
    """Upload, create, poll to the end; return timings in seconds and the final counts."""
    t0 = time.perf_counter()
    f = client.files.create(file=("bench.jsonl", io.BytesIO(data)), purpose="batch")
    t_up = time.perf_counter()
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    t_create = time.perf_counter()
    t_progress = None
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(poll)
        batch = client.batches.retrieve(batch.id)
        if t_progress is None and batch.status != "validating":
            t_progress = time.perf_counter()
    t_done = time.perf_counter()
    if batch.status != "completed":
        raise RuntimeError(f"batch ended {batch.status}: {batch.errors}")
    counts = batch.request_counts
    return {
        "upload_s": t_up - t0,
        "create_to_completed_s": t_done - t_create,
        "in_progress_to_completed_s": t_done - (t_progress or t_create),
        "completed": float(counts.completed if counts else 0),
        "failed": float(counts.failed if counts else 0),
    }
