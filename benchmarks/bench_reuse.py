"""Incremental reruns: after a finished 1,000-line job, insert, edit or append one line and run again.

    .venv/bin/python benchmarks/bench_reuse.py [--lines 1000]

Each case runs the flow (`batch_openai.flows.run_batch`) against a local Batch API server in this
process, first on the original file, then on the edited one, in a fresh work directory per case, and
prints what the second run reused and submitted, and how many requests the server was sent for it.
Target (issue 12): one line inserted at the top of a finished 1,000-line job submits 1 request.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def _write(path: Path, n: int, tag: str) -> list[str]:
    lines = [
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"{tag} {i}"}]},
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--lines", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-reuse")
    from batch_openai.flows import run_batch
    from batch_openai.local import LocalBatchServer

    with (
        tempfile.TemporaryDirectory(prefix="bench-reuse-") as tmp,
        LocalBatchServer(step_seconds=0.0) as server,
    ):

        def sent() -> int:
            return sum(b.request_counts.total for b in server.client().batches.list(limit=100).data)

        for case in ("insert", "edit", "append"):
            root = Path(tmp) / case
            root.mkdir()
            src = root / "in.jsonl"
            lines = _write(src, args.lines, f"{case}-{time.time_ns()}")
            opts = {"base_url": server.base_url, "poll_interval": 0.05, "work_dir": str(root / "work")}
            first = run_batch(src, root / "out.jsonl", **opts)
            before = sent()
            new = json.loads(lines[0])
            new["custom_id"], new["body"]["messages"][0]["content"] = "new", f"a new line ({case})"
            if case == "insert":
                lines.insert(0, json.dumps(new))
            elif case == "append":
                lines.append(json.dumps(new))
            else:
                edited = json.loads(lines[len(lines) // 2])
                edited["body"]["messages"][0]["content"] = "an edited line"
                lines[len(lines) // 2] = json.dumps(edited)
            src.write_text("\n".join(lines) + "\n")
            started = time.perf_counter()
            again = run_batch(src, root / "out.jsonl", **opts)
            seconds = time.perf_counter() - started
            rows = len((root / "out.jsonl").read_text().splitlines())
            print(
                f"{case:>6}: first run submitted {first['submitted']:,}; rerun reused {again['reused']:,}, "
                f"submitted {again['submitted']:,}; requests sent to the server {sent() - before:,}; "
                f"rows {rows:,}; rerun {seconds:.1f} s"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
