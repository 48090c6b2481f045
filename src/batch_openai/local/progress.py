"""Finished lines of a batch: buffered, appended to the work files, counted, and their usage summed."""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from batch_openai.local.store import BatchRecord, Store, new_id

CHUNK = 512  # lines between flushes when running flat out
NOT_RUN = {
    "batch_cancelled": "This request was not executed because the batch was cancelled.",
    "batch_expired": "This request could not be executed before the completion window expired.",
}


def failure_body() -> dict[str, Any]:
    """The body of a line failed on purpose (`line_failure_rate`)."""
    return {
        "error": {
            "message": "The server had an error processing your request (injected by the local server).",
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }
    }


class Progress:
    """Output lines waiting to be written, and the counts and usage so far."""

    def __init__(self, rec: BatchRecord, store: Store) -> None:
        self.rec = rec
        self.store = store
        out_path, err_path = store.work_paths(rec.id)
        self.done, self.completed, self.failed, self.usage = scan_work(out_path, err_path)
        self.out = open(out_path, "ab")  # noqa: SIM115 - closed in close()
        self.err = open(err_path, "ab")  # noqa: SIM115
        self.out_buf: list[bytes] = []
        self.err_buf: list[bytes] = []
        self.last_flush = time.monotonic()

    def add(
        self, custom_id: str, status: int | None, body: dict[str, Any] | None, code: str | None = None
    ) -> None:
        """Record one finished (or never run) request."""
        if status is None:
            rec = {
                "id": new_id("batch_req_"),
                "custom_id": custom_id,
                "response": None,
                "error": {"code": code, "message": NOT_RUN.get(code or "", "not executed")},
            }
        else:
            rec = {
                "id": new_id("batch_req_"),
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": new_id("req_"), "body": body},
                "error": None,
            }
        line = orjson.dumps(rec) + b"\n"
        if status == 200:
            self.out_buf.append(line)
            self.completed += 1
            add_usage(self.usage, (body or {}).get("usage"))
        else:
            self.err_buf.append(line)
            self.failed += 1
        self.done.add(custom_id)

    def flush(self) -> None:
        """Write buffered lines and publish the counts."""
        if self.out_buf:
            self.out.write(b"".join(self.out_buf))
            self.out.flush()
            self.out_buf.clear()
        if self.err_buf:
            self.err.write(b"".join(self.err_buf))
            self.err.flush()
            self.err_buf.clear()
        with self.store.lock:
            counts = self.rec.obj["request_counts"]
            counts["completed"], counts["failed"] = self.completed, self.failed
            self.rec.obj["usage"] = usage_obj(self.usage)
        self.last_flush = time.monotonic()

    def close(self) -> None:
        """Flush and close the work files."""
        self.flush()
        self.out.close()
        self.err.close()


def add_usage(acc: dict[str, int], usage: Any) -> None:
    """Add a response body's `usage` (chat or responses shape) to the running sums."""
    if not isinstance(usage, dict):
        return
    acc["input"] += int(usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0)
    acc["output"] += int(usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0)
    details_in = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    details_out = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    acc["cached"] += int(details_in.get("cached_tokens", 0) or 0)
    acc["reasoning"] += int(details_out.get("reasoning_tokens", 0) or 0)


def usage_obj(acc: dict[str, int]) -> dict[str, Any]:
    """The batch `usage` object from the running sums."""
    return {
        "input_tokens": acc["input"],
        "input_tokens_details": {"cached_tokens": acc["cached"]},
        "output_tokens": acc["output"],
        "output_tokens_details": {"reasoning_tokens": acc["reasoning"]},
        "total_tokens": acc["input"] + acc["output"],
    }


def scan_work(out_path: Any, err_path: Any) -> tuple[set[str], int, int, dict[str, int]]:
    """What a previous run already finished: ids, counts and usage (cuts a torn last line)."""
    done: set[str] = set()
    counts = [0, 0]
    usage = {"input": 0, "output": 0, "cached": 0, "reasoning": 0}
    for k, path in enumerate((out_path, err_path)):
        if not os.path.exists(path):
            continue
        with open(path, "rb+") as fh:
            data = fh.read()
            keep = data.rfind(b"\n") + 1
            if keep != len(data):
                fh.truncate(keep)  # a crash mid-write left half a line: that request reruns
        for raw in data[:keep].splitlines():
            item = orjson.loads(raw)
            done.add(item["custom_id"])
            counts[k] += 1
            if k == 0:
                add_usage(usage, item["response"]["body"].get("usage"))
    return done, counts[0], counts[1], usage
