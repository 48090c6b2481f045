"""DataFrame / cost benchmark: what issue 6's additions cost beside the paths they build on.

    .venv/bin/python benchmarks/bench_frames.py [--n 50000] [--repeat 3]

In one process, median CPU seconds of --repeat runs for, at n rows of ~500 characters:
- `from_dataframe` (template) beside the plain `builder.add` loop over the same rows;
- `builder.estimate_cost()` (the token heuristic over every body);
- `result.to_pandas()` over an n-line output file beside plain iteration of the result, and `result.usage`.
No targets were set for these; the figures say what a user pays for the convenience.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from batch_openai import BatchRequestBuilder, BatchResult

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "reviewers"]


def _text(i: int) -> str:
    return " ".join(WORDS[(i + k) % len(WORDS)] for k in range(90))[:500]


def cpu(fn: Callable[[], Any], repeat: int) -> float:
    """Median CPU seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def write_output(path: Path, n: int) -> None:
    """An n-line chat output file of the shape the service returns."""
    with open(path, "wb") as f:
        for i in range(n):
            body = {
                "object": "chat.completion",
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": _text(i)[:200]}}],
                "usage": {"prompt_tokens": 130, "completion_tokens": 45, "total_tokens": 175},
            }
            line = {"custom_id": f"r{i}", "response": {"status_code": 200, "body": body}, "error": None}
            f.write(orjson.dumps(line) + b"\n")


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    n, repeat = args.n, args.repeat
    df = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [_text(i) for i in range(n)]})

    def plain() -> None:
        b = BatchRequestBuilder()
        for cid, text in zip(df["id"], df["text"], strict=True):
            b.add([{"role": "user", "content": f"Summarise: {text}"}], model="gpt-4o-mini", custom_id=cid)

    def framed() -> None:
        BatchRequestBuilder.from_dataframe(
            df, model="gpt-4o-mini", messages="Summarise: {text}", custom_id="id"
        )

    def framed_callable() -> None:
        BatchRequestBuilder.from_dataframe(
            df,
            model="gpt-4o-mini",
            messages=lambda row: [{"role": "user", "content": f"Summarise: {row['text']}"}],
            custom_id="id",
        )

    builder = BatchRequestBuilder.from_dataframe(df, model="gpt-4o-mini", messages="{text}", custom_id="id")
    rows: list[tuple[str, Callable[[], Any]]] = [
        ("builder.add loop (baseline)", plain),
        ("from_dataframe, template", framed),
        ("from_dataframe, callable", framed_callable),
        ("builder.estimate_cost()", builder.estimate_cost),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        write_output(out, n)
        ids = [f"r{i}" for i in range(n)]
        rows += [
            ("iterate result (baseline)", lambda: sum(1 for _ in BatchResult.from_files(out))),
            ("result.usage", lambda: BatchResult.from_files(out).usage),
            ("result.to_pandas()", lambda: BatchResult.from_files(out, expected_ids=ids).to_pandas()),
            (
                "result.join_dataframe(df, on='id')",
                lambda: BatchResult.from_files(out).join_dataframe(df, on="id"),
            ),
        ]
        print(f"n = {n:,} rows of ~500 characters; median CPU s of {repeat}")
        for label, fn in rows:
            print(f"  {label:<38}{cpu(fn, repeat):7.3f}")


if __name__ == "__main__":
    main()
