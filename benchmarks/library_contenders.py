"""Benchmark helper: run ONE contender for ONE phase in this process and print a JSON line of figures.

    python library_contenders.py CONTENDER PHASE [--n N] [--base-url URL] [--file PATH] [--nonce S]

CONTENDER: ours | v040 (batch-openai 0.4.0, run with its own venv's python) | plain (hand-written SDK
script) | floor (orjson only, no validation). PHASE: build | add (the add() loop alone) | e2e | parse |
parse_model (from the file to `result.parse(Review)`) | parse_call (`result.parse(Review)` alone, on a
result already loaded: 0.4.0 loads every line first; ours is lazy, so its figure still reads the file) |
iterate | iterate_ids.
It imports only what its contender needs, so the same file runs under the 0.4.0 venv.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

TEXT = (
    "Summarise the following customer review in one sentence and say whether it is positive. "
    "The delivery was quick and the packaging intact, but the instructions were confusing and "
    "the app kept asking me to log in again. Support answered within a day and walked me through "
    "the setup; since then it has worked every morning without a hitch. Battery life is better "
    "than advertised, the screen is bright, and the price was fair for what you get overall. "
)  # ~500 characters per request, as the issue specifies
MODEL = "gpt-4o-mini"


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prompt(nonce: str, i: int) -> str:
    return f"[{nonce}] #{i} {TEXT}"


# ---------------------------------------------------------------- build + write


def build_ours(n: int, nonce: str, out: Path) -> None:
    from batch_openai import BatchRequestBuilder

    b = BatchRequestBuilder()
    for i in range(n):
        b.add(messages=[{"role": "user", "content": prompt(nonce, i)}], model=MODEL, custom_id=f"doc-{i}")
    b.to_jsonl(out)


def build_v040(n: int, nonce: str, out: Path) -> None:
    from batch_openai import BatchRequestBuilder

    b = BatchRequestBuilder()
    for i in range(n):
        b.add(messages=[{"role": "user", "content": prompt(nonce, i)}], model=MODEL, custom_id=f"doc-{i}")
    b.to_jsonl(out)


def add_ours(n: int, nonce: str) -> None:
    from batch_openai import BatchRequestBuilder

    b = BatchRequestBuilder()
    for i in range(n):
        b.add(messages=[{"role": "user", "content": prompt(nonce, i)}], model=MODEL, custom_id=f"doc-{i}")


add_v040 = add_ours  # the same calls; the 0.4.0 venv imports its own batch_openai


def build_floor(n: int, nonce: str, out: Path) -> None:
    import orjson

    with open(out, "wb") as f:
        for i in range(n):
            line = {
                "custom_id": f"doc-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": MODEL, "messages": [{"role": "user", "content": prompt(nonce, i)}]},
            }
            f.write(orjson.dumps(line) + b"\n")


def build_plain(n: int, nonce: str, out: Path) -> None:
    with open(out, "w", encoding="utf-8") as f:
        for i in range(n):
            line = {
                "custom_id": f"doc-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": MODEL, "messages": [{"role": "user", "content": prompt(nonce, i)}]},
            }
            f.write(json.dumps(line) + "\n")


# ---------------------------------------------------------------- submit -> wait -> parse


def e2e_ours(n: int, nonce: str, base_url: str) -> int:
    import openai

    from batch_openai import BatchRequestBuilder

    client = openai.OpenAI(api_key="sk-local", base_url=base_url)
    b = BatchRequestBuilder()
    for i in range(n):
        b.add(messages=[{"role": "user", "content": prompt(nonce, i)}], model=MODEL, custom_id=f"doc-{i}")
    result = b.submit(client, description="bench").wait(poll_interval=0.1)
    return sum(1 for item in result.succeeded if item.content)


def e2e_v040(n: int, nonce: str, base_url: str) -> int:
    import openai

    from batch_openai import BatchRequestBuilder

    client = openai.OpenAI(api_key="sk-local", base_url=base_url)
    b = BatchRequestBuilder()
    for i in range(n):
        b.add(messages=[{"role": "user", "content": prompt(nonce, i)}], model=MODEL, custom_id=f"doc-{i}")
    result = b.submit(client, description="bench").wait(poll_interval=0.1)
    return sum(1 for item in result.succeeded if item.content)


def e2e_plain(n: int, nonce: str, base_url: str) -> int:
    """What a careful user writes with the SDK alone: JSONL, upload, create, poll, download, parse."""
    import openai

    client = openai.OpenAI(api_key="sk-local", base_url=base_url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.jsonl"
        build_plain(n, nonce, path)
        with open(path, "rb") as f:
            uploaded = client.files.create(file=f, purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"description": "bench"},
    )
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    text = client.files.content(batch.output_file_id).text
    contents = {}
    for row in text.splitlines():
        if row:
            line = json.loads(row)
            contents[line["custom_id"]] = line["response"]["body"]["choices"][0]["message"]["content"]
    return sum(1 for c in contents.values() if c)


# ---------------------------------------------------------------- parse / iterate a downloaded file


def parse_ours(path: Path) -> int:
    from batch_openai import BatchResult

    result = BatchResult.from_files(path)
    return sum(1 for item in result.succeeded if item.content)


def parse_v040(path: Path) -> int:
    from batch_openai._result import BatchResult

    lines = [json.loads(row) for row in path.read_text(encoding="utf-8").strip().splitlines() if row]
    result = BatchResult._from_jsonl_lines(lines)
    return sum(1 for item in result.succeeded if item.content)


def parse_floor(path: Path) -> int:
    import orjson

    count = 0
    with open(path, "rb") as f:
        for row in f:
            body = orjson.loads(row)["response"]["body"]
            if body["choices"][0]["message"]["content"]:
                count += 1
    return count


def review_model() -> type:
    """The structured answer `parse_model` validates (the output file holds it as JSON content)."""
    from pydantic import BaseModel

    class Review(BaseModel):
        sentiment: str
        score: int
        summary: str
        key_points: list[str]

    return Review


def parse_model_ours(path: Path) -> int:
    from batch_openai import BatchParseError, BatchResult

    result = BatchResult.from_files(path)
    try:
        return len(result.parse(review_model()))
    except BatchParseError as exc:  # not expected: every succeeded line holds a valid Review
        sys.exit(f"parse failed: {exc}")


def parse_model_v040(path: Path) -> int:
    from batch_openai._result import BatchResult

    lines = [json.loads(row) for row in path.read_text(encoding="utf-8").strip().splitlines() if row]
    return len(BatchResult._from_jsonl_lines(lines).parse(review_model()))


def load_ours(path: Path) -> object:
    from batch_openai import BatchResult

    return BatchResult.from_files(path)  # lazy: parse reads the file


def load_v040(path: Path) -> object:
    from batch_openai._result import BatchResult

    lines = [json.loads(row) for row in path.read_text(encoding="utf-8").strip().splitlines() if row]
    return BatchResult._from_jsonl_lines(lines)


def iterate_ours(path: Path, with_ids: bool) -> int:
    from batch_openai import BatchResult, Outcome

    ids = None
    if with_ids:
        with open(path, "rb") as f:
            ids = [f"doc-{i}" for i, _ in enumerate(f)]
    result = BatchResult.from_files(path, expected_ids=ids)
    return sum(1 for item in result if item.outcome is Outcome.SUCCEEDED and item.content)


def warm_up(contender: str, phase: str) -> None:
    """Import what the contender needs before the clock starts: we time the work, not `import openai`."""
    if contender != "v040":
        import orjson  # noqa: F401
    if phase == "e2e" or contender == "v040":
        import openai  # noqa: F401
    if contender in ("ours", "v040"):
        import batch_openai  # noqa: F401
    if phase == "parse_model":
        import pydantic  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("contender")
    parser.add_argument("phase")
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--base-url")
    parser.add_argument("--file")
    parser.add_argument("--nonce", default=str(os.getpid()))
    args = parser.parse_args()
    warm_up(args.contender, args.phase)
    loaded = model = None
    if args.phase == "parse_call":  # set up before the clock: only the parse call is timed
        loaded, model = globals()[f"load_{args.contender}"](Path(args.file)), review_model()
    started, cpu_started = time.perf_counter(), time.process_time()
    count: int | None = None
    if args.phase == "parse_call":
        count = len(loaded.parse(model))  # type: ignore[attr-defined]
    elif args.phase == "build":
        with tempfile.TemporaryDirectory() as tmp:
            globals()[f"build_{args.contender}"](args.n, args.nonce, Path(tmp) / "input.jsonl")
        count = args.n
    elif args.phase == "e2e":
        count = globals()[f"e2e_{args.contender}"](args.n, args.nonce, args.base_url)
    elif args.phase == "add":
        globals()[f"add_{args.contender}"](args.n, args.nonce)
        count = args.n
    elif args.phase in ("parse", "parse_model"):
        count = globals()[f"{args.phase}_{args.contender}"](Path(args.file))
    elif args.phase in ("iterate", "iterate_ids"):
        count = iterate_ours(Path(args.file), args.phase == "iterate_ids")
    else:
        sys.exit(f"unknown phase {args.phase!r}")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "contender": args.contender,
                "phase": args.phase,
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_mb": peak_rss_mb(),
                "count": count,
            }
        )
    )


if __name__ == "__main__":
    main()
