"""Library benchmark: this library beside batch-openai 0.4.0, a plain-SDK script and an orjson floor.

    .venv/bin/python benchmarks/bench_library.py [--n 50000] [--lines 1000000] [--repeat 3] [--v040 PYTHON]
        [--phases build,v040,parse,e2e,iterate]

Each figure comes from a fresh process (so peak RSS is that contender's alone), the local Batch API runs
in a process of its own, and each figure is the median of --repeat runs (the machine is shared).
0.4.0 lives in its own venv (`uv venv /tmp/bo040 && uv pip install --python /tmp/bo040 batch-openai==0.4.0`),
never in the project's. Targets (issue 3): build+write <= 2x the orjson floor; submit->wait->parse <= 1.2x
the plain-SDK script; its peak RSS <= 0.45x 0.4.0's; iterating a 1,000,000-line result under 300 MB.
Issue 11, the `v040` phase: add() x N + to_jsonl <= 0.4x 0.4.0's time; result.parse(Model) over the answers
of a structured-output file (5 % of lines failed) <= 0.6x 0.4.0's parse call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONTENDERS = HERE / "library_contenders.py"
OURS = sys.executable


def run(python: str, contender: str, phase: str, repeat: int, **kw: Any) -> dict[str, Any] | None:
    """Median seconds and peak RSS of `repeat` fresh-process runs (None if the contender is unavailable)."""
    if not Path(python).exists():
        return None
    runs = []
    for r in range(repeat):
        cmd = [python, str(CONTENDERS), contender, phase, "--nonce", f"{contender}-{phase}-{r}-{id(runs)}"]
        for key, value in kw.items():
            cmd += [f"--{key.replace('_', '-')}", str(value)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir())
        if proc.returncode != 0:
            print(f"  ! {contender} {phase} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            return None
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "count": runs[0]["count"],
        "all_seconds": [round(r["seconds"], 3) for r in runs],
    }


def review_content(i: int) -> str:
    """A structured-output answer: the JSON of library_contenders' `Review` model."""
    return json.dumps(
        {
            "sentiment": "positive" if i % 4 else "mixed",
            "score": i % 5 + 1,
            "summary": f"Review {i}: quick delivery and helpful support, but a confusing setup.",
            "key_points": ["quick delivery", "helpful support", "confusing instructions"],
        }
    )


def failed(i: int) -> bool:
    """2,535 of every 50,000 requests fail (5 %), so 47,465 of 50,000 answer."""
    return (i * 7919) % 10_000 < 507


def failed_line(i: int) -> bytes:
    line = {
        "id": f"batch_req_{i:024x}",
        "custom_id": f"doc-{i}",
        "response": {
            "status_code": 500,
            "request_id": f"req_{i:032x}",
            "body": {"error": {"message": "The server had an error", "type": "server_error", "code": None}},
        },
        "error": None,
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def chat_line(i: int, content: str | None = None) -> bytes:
    """One realistic chat-completion output line (~900 bytes, like the real service's)."""
    if content is None:
        content = (
            f"Answer {i}: the review is broadly positive; delivery and support were praised, setup was "
            "not. " * 2
        )
    line = {
        "id": f"batch_req_{i:024x}",
        "custom_id": f"doc-{i}",
        "response": {
            "status_code": 200,
            "request_id": f"req_{i:032x}",
            "body": {
                "id": f"chatcmpl-{i:029x}",
                "object": "chat.completion",
                "created": 1764100000,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": content,
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 131,
                    "completion_tokens": 41,
                    "total_tokens": 172,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_0123456789",
            },
        },
        "error": None,
    }
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def write_output_file(path: Path, n: int) -> Path:
    with open(path, "wb") as f:
        for start in range(0, n, 10_000):
            f.write(b"".join(chat_line(i) for i in range(start, min(n, start + 10_000))))
    return path


def write_structured_file(path: Path, n: int) -> Path:
    """An output file of `Review` JSON answers, 5 % of the lines failed (HTTP 500)."""
    with open(path, "wb") as f:
        for start in range(0, n, 10_000):
            rows = range(start, min(n, start + 10_000))
            f.write(b"".join(failed_line(i) if failed(i) else chat_line(i, review_content(i)) for i in rows))
    return path


def fmt(r: dict[str, Any] | None) -> str:
    if r is None:
        return "      n/a                              "
    return f"{r['seconds']:7.3f} s wall {r['cpu_seconds']:7.3f} s cpu {r['peak_rss_mb']:7.1f} MB"


def ratio(a: dict[str, Any] | None, b: dict[str, Any] | None, key: str) -> float | None:
    return None if a is None or b is None else a[key] / b[key]


def verdict(value: float | None, limit: float, below: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value <= limit if below else value >= limit
    return f"{value:.2f}x (target <= {limit}x) {'PASS' if ok else 'MISS'}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=50_000, help="requests per run")
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the iteration test")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--v040", default="/tmp/bo040/bin/python", help="python of the 0.4.0 venv")
    parser.add_argument("--skip-iterate", action="store_true")
    parser.add_argument(
        "--phases",
        default="build,v040,parse,e2e,iterate",
        help="comma-separated sections to run: build, v040 (the issue-11 ratios), parse, e2e, iterate",
    )
    args = parser.parse_args()
    n, rep, v040 = args.n, args.repeat, args.v040
    phases = set(args.phases.split(","))

    print(f"# batch-openai library benchmark: {n:,} chat requests of ~500 characters, median of {rep}\n")
    if "v040" in phases:
        against_v040(n, rep, v040)
    with tempfile.TemporaryDirectory() as tmp:
        if "build" in phases:
            build_phase(n, rep, v040)
        if "parse" in phases:
            parse_phase(n, rep, v040, Path(tmp))
        if "e2e" in phases:
            e2e_phase(n, rep, v040)
        if "iterate" in phases and not args.skip_iterate:
            iterate_phase(args.lines, Path(tmp))


def against_v040(n: int, rep: int, v040: str) -> None:
    """Issue 11: this library against 0.4.0, CPU seconds (the machine is shared), medians of `rep` runs."""
    print("## against batch-openai 0.4.0 (CPU seconds; wall in brackets)")
    rows = []
    for phase, label in (("add", f"add() x {n:,}"), ("build", f"add() x {n:,} + to_jsonl")):
        ours, theirs = run(OURS, "ours", phase, rep, n=n), run(v040, "v040", phase, rep, n=n)
        rows.append((label, ours, theirs, 0.4 if phase == "build" else None))
    with tempfile.TemporaryDirectory() as tmp:
        structured = write_structured_file(Path(tmp) / "structured.jsonl", n)
        answers = sum(1 for i in range(n) if not failed(i))
        for phase, label in (
            ("parse_call", f"result.parse(Review), {answers:,} answers"),
            ("parse_model", "file -> result.parse(Review)"),
        ):
            ours = run(OURS, "ours", phase, rep, file=structured)
            theirs = run(v040, "v040", phase, rep, file=structured)
            rows.append((label, ours, theirs, 0.6 if phase == "parse_call" else None))
    for label, ours, theirs, target in rows:
        r_cpu = ratio(ours, theirs, "cpu_seconds")
        r_wall = ratio(ours, theirs, "seconds")

        def cell(r: dict[str, Any] | None) -> str:
            return "n/a" if r is None else f"{r['cpu_seconds']:.3f} s ({r['seconds']:.3f})"

        shown = verdict(r_cpu, target) if target is not None else f"{r_cpu or 0:.2f}x"
        print(f"  {label:42} ours {cell(ours):20} 0.4.0 {cell(theirs):20} ratio {shown}", end="")
        print(f"  (wall {r_wall or 0:.2f}x)" if r_wall is not None else "")
    print()


def build_phase(n: int, rep: int, v040: str) -> None:
    print("## build + write JSONL")
    build = {
        c: run(v040 if c == "v040" else OURS, c, "build", rep, n=n)
        for c in ("floor", "plain", "ours", "v040")
    }
    for c, r in build.items():
        print(f"  {c:6} {fmt(r)}")
    # CPU time: the machine is shared, and wall time swings with the neighbours' load.
    print(f"  ours / floor (cpu):  {verdict(ratio(build['ours'], build['floor'], 'cpu_seconds'), 2.0)}")
    print(f"  ours / floor (wall): {verdict(ratio(build['ours'], build['floor'], 'seconds'), 2.0)}\n")


def parse_phase(n: int, rep: int, v040: str, tmp: Path) -> None:
    out50k = write_output_file(tmp / "out50k.jsonl", n)
    print(f"## parse a downloaded {n:,}-line output file ({out50k.stat().st_size / 1e6:.0f} MB)")
    parse = {
        c: run(v040 if c == "v040" else OURS, c, "parse", rep, file=out50k) for c in ("floor", "ours", "v040")
    }
    for c, r in parse.items():
        print(f"  {c:6} {fmt(r)}")
    print(
        f"  ours / floor (cpu): {ratio(parse['ours'], parse['floor'], 'cpu_seconds') or 0:.2f}x, "
        f"0.4.0 / floor (cpu): {ratio(parse['v040'], parse['floor'], 'cpu_seconds') or 0:.2f}x\n"
    )


def e2e_phase(n: int, rep: int, v040: str) -> None:
    print("## submit -> wait -> parse through the local Batch API (server in its own process)")
    server = subprocess.Popen(
        [OURS, str(HERE / "library_server.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
        e2e = {
            c: run(v040 if c == "v040" else OURS, c, "e2e", rep, n=n, base_url=base_url)
            for c in ("plain", "ours", "v040")
        }
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=30)
    for c, r in e2e.items():
        print(f"  {c:6} {fmt(r)}   runs: {r['all_seconds'] if r else '-'}")
    print(f"  ours / plain time (wall): {verdict(ratio(e2e['ours'], e2e['plain'], 'seconds'), 1.2)}")
    print(f"  ours / plain time (cpu):  {verdict(ratio(e2e['ours'], e2e['plain'], 'cpu_seconds'), 1.2)}")
    print(f"  ours / 0.4.0 RSS:  {verdict(ratio(e2e['ours'], e2e['v040'], 'peak_rss_mb'), 0.45)}\n")


def iterate_phase(lines: int, tmp: Path) -> None:
    big = write_output_file(tmp / "out1m.jsonl", lines)
    print(f"## iterate a {lines:,}-line result ({big.stat().st_size / 1e6:.0f} MB) from disk")
    it = run(OURS, "ours", "iterate", 1, file=big)
    it_ids = run(OURS, "ours", "iterate_ids", 1, file=big)
    passed = "PASS" if it and it["peak_rss_mb"] < 300 else "MISS"
    print(f"  streamed            {fmt(it)}   {passed} (< 300 MB)")
    print(f"  + {lines:,} expected ids (input order, missing check) {fmt(it_ids)}")


if __name__ == "__main__":
    main()
