"""Your own Prefect flow, built from batch-openai's public tasks: submit, wait, parse.

    python examples/own_flow.py [--out DIR]            # local Batch API, local Prefect (no key)
    python examples/own_flow.py --openai [--out DIR]   # OpenAI's Batch API (OPENAI_API_KEY)

`submit_batch` is cached by content: kill this script after it printed `submitted` and run it again with
the same `--out`, and it re-attaches to the batch it made instead of paying for a second one.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from batch_openai import BatchRequestBuilder

QUESTIONS = {
    "q-capital": "What is the capital of France?",
    "q-boil": "At what temperature in Celsius does water boil at sea level?",
    "q-planets": "How many planets are in the solar system?",
    "q-author": "Who wrote 'Pride and Prejudice'?",
    "q-speed": "Roughly how fast does light travel, in km per second?",
}


class Answer(BaseModel):
    """What each request must answer (strict structured output)."""

    answer: str = Field(description="The short answer")
    confidence: int = Field(description="How sure, 1 to 5")


def main() -> int:
    """Build the requests, then run the flow; print each parsed answer and a summary line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--openai", action="store_true", help="use OpenAI's Batch API (OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="own-flow-"))
    if args.openai and not os.environ.get("OPENAI_API_KEY"):
        sys.exit("error: --openai needs OPENAI_API_KEY in the environment")

    # Imported here because `import batch_openai.flows` loads Prefect (~1 s); the library alone does not.
    from prefect import flow

    from batch_openai.flows import parse_batch, submit_batch, wait_for_batch

    @flow(name="quiz-answers")
    def quiz(base_url: str | None, work_dir: str, poll_interval: float) -> list[dict]:
        builder = BatchRequestBuilder()
        for qid, question in QUESTIONS.items():
            builder.add(
                [{"role": "user", "content": question}],
                model=args.model,
                custom_id=qid,
                response_format=Answer,
            )
        ref = submit_batch(builder, description="own-flow example", base_url=base_url, work_dir=work_dir)
        print(f"submitted {ref.batch_ids}", flush=True)
        done = wait_for_batch(ref, poll_interval=poll_interval)
        parsed = parse_batch(done, Answer)
        return [{"id": p.custom_id, "ok": p.ok, "value": p.value, "error": p.error} for p in parsed]

    if args.openai:
        rows = quiz(None, str(out / "work"), 60.0)  # the key is read from the environment inside each task
    else:
        from batch_openai.local import LocalBatchServer

        # A throwaway key and the server's state in --out: a rerun re-attaches to its batch.
        os.environ.setdefault("OPENAI_API_KEY", "sk-local-example")
        with LocalBatchServer(step_seconds=0.0, state_dir=out / "local-server") as server:
            rows = quiz(server.base_url, str(out / "work"), 0.2)

    for row in rows:
        value = row["value"]
        print(f"{row['id']:10} {value.answer if value else '--'}  ({row['error'] or 'ok'})")
    ok = sum(r["ok"] for r in rows)
    print(f"summary: questions={len(QUESTIONS)} parsed={ok}")
    return 0 if ok == len(QUESTIONS) else 1


if __name__ == "__main__":
    sys.exit(main())
