"""Count the lines of the before/after scripts (docs/before-after.md), and optionally run both.

A counted line is a line of code: not blank, not only a comment, not part of a docstring.

    .venv/bin/python benchmarks/count_lines.py          # counts, and the reduction
    .venv/bin/python benchmarks/count_lines.py --run    # ... then run both scripts on the local server

`--run` gives each script its own local Batch API server (2 of 10 lines answered with a 500, so the
retry round is exercised) and runs it twice (the second run is a restart: it must make no new batch),
then checks one row per input. No network, no key.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import os
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "raw OpenAI SDK": HERE / "before_after" / "raw_sdk.py",
    "batch-openai": HERE / "before_after" / "with_batch_openai.py",
}
IGNORED = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}


def docstring_lines(source: str) -> set[int]:
    """Line numbers taken by docstrings (module, class and function)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if first is not None and isinstance(value, ast.Constant) and isinstance(value.value, str):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def count_code_lines(path: Path) -> int:
    """Non-blank, non-comment, non-docstring lines of a Python file."""
    source = path.read_text(encoding="utf-8")
    skip = docstring_lines(source)
    code: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in IGNORED or tok.type == tokenize.ENDMARKER:
            continue
        code.update(n for n in range(tok.start[0], tok.end[0] + 1) if n not in skip)
    return len(code)


def counts() -> dict[str, int]:
    """Counted lines of each script."""
    return {name: count_code_lines(path) for name, path in SCRIPTS.items()}


def write_reviews(path: Path, n: int = 10) -> list[str]:
    """The first `n` bundled demo reviews as {"id", "text"} rows; returns their ids."""
    import batch_openai.demo as demo

    with Path(demo.__file__).with_name("reviews.csv").open(newline="", encoding="utf-8") as fh:
        reviews = list(csv.DictReader(fh))[:n]
    path.write_text("".join(json.dumps({"id": r["review_id"], "text": r["text"]}) + "\n" for r in reviews))
    return [r["review_id"] for r in reviews]


def run_both(tmp: Path) -> dict[str, dict[str, object]]:
    """Run each script twice on its own local server; report rows, outcomes and batches made."""
    from batch_openai.local import LocalBatchServer

    reviews = tmp / "reviews.jsonl"
    ids = write_reviews(reviews)
    report: dict[str, dict[str, object]] = {}
    for name, script in SCRIPTS.items():
        out = tmp / f"{script.stem}.results.jsonl"
        with LocalBatchServer(step_seconds=0, line_failure_rate=0.2, seed=7) as server:
            env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-local"}
            env["POLL_SECONDS"] = "0.1"
            client = server.client()
            made = []
            for _ in range(2):  # the second run is a restart after the job finished
                proc = subprocess.run(
                    [sys.executable, str(script), str(reviews), str(out)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if proc.returncode != 0:
                    raise SystemExit(f"{script.name} failed:\n{proc.stdout}\n{proc.stderr}")
                made.append(sum(1 for _ in client.batches.list(limit=100)))
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        outcomes: dict[str, int] = {}
        for row in rows:
            outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + 1
        report[name] = {
            "rows_match_inputs": [r["custom_id"] for r in rows] == ids,
            "outcomes": outcomes,
            "batches_after_run_1": made[0],
            "batches_after_restart": made[1],
        }
    return report


def main() -> int:
    """Print the counts (and, with --run, what each script did)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--run", action="store_true", help="also run both scripts on the local server")
    args = parser.parse_args()
    c = counts()
    before, after = c["raw OpenAI SDK"], c["batch-openai"]
    for name, n in c.items():
        print(f"{name:16} {n:4d} lines  ({SCRIPTS[name].relative_to(HERE.parent)})")
    print(f"reduction: {1 - after / before:.0%} ({before} -> {after})")
    if args.run:
        with tempfile.TemporaryDirectory() as tmp:
            for name, r in run_both(Path(tmp)).items():
                print(f"run {name}: {json.dumps(r)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
