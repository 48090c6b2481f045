"""LLM as a judge: score answers against a rubric with structured output, then join verdicts to inputs.

    python examples/llm_judge.py            # in-process local Batch API: no key, no cost, seconds
    python examples/llm_judge.py --openai   # OpenAI's Batch API (OPENAI_API_KEY; half the usual price)

The local server's mock answers are deterministic and schema-valid but not *judgements*: run with
`--openai` for real scores. Everything else (files, batch lifecycle, parsing) is the real path.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from openai import OpenAI
from pydantic import BaseModel, ConfigDict, Field

from batch_openai import BatchRequestBuilder, BatchResult
from batch_openai.local import LocalBatchServer


@dataclass(frozen=True)
class Sample:
    """One answer to grade: the question, a reference answer and the candidate's answer."""

    id: str
    question: str
    reference: str
    answer: str


class Verdict(BaseModel):
    """What the judge returns for each sample (sent as a strict JSON schema)."""

    model_config = ConfigDict(extra="forbid")  # strict mode needs additionalProperties: false

    reasoning: str = Field(description="Two sentences at most, before the score")
    score: int = Field(ge=1, le=5, description="1 = wrong, 3 = partly right, 5 = fully right")
    passed: bool


RUBRIC = """You grade answers against a reference.
5: correct and complete. 4: correct, minor omission. 3: partly correct.
2: mostly wrong. 1: wrong or off-topic. `passed` is true for scores of 4 and 5."""

SAMPLES = [
    Sample("q01", "What is the capital of Australia?", "Canberra", "Canberra."),
    Sample("q02", "What is the capital of Australia?", "Canberra", "Sydney, the largest city."),
    Sample("q03", "How many bits are in a byte?", "8", "A byte has eight bits."),
    Sample("q04", "What does HTTP status 404 mean?", "Not Found", "The server could not find the resource."),
    Sample("q05", "What does HTTP status 404 mean?", "Not Found", "The request was unauthorised."),
    Sample("q06", "Boiling point of water at sea level in °C?", "100", "100 degrees Celsius."),
    Sample("q07", "Who wrote 'Pride and Prejudice'?", "Jane Austen", "Charlotte Brontë"),
    Sample("q08", "What is 12 × 12?", "144", "144"),
    Sample("q09", "Which planet is known as the Red Planet?", "Mars", "Mars, because of iron oxide."),
    Sample("q10", "What is the chemical symbol for gold?", "Au", "Ag"),
    Sample("q11", "In Python, what does len([]) return?", "0", "It returns 0."),
    Sample("q12", "What is the largest ocean?", "The Pacific", "The Atlantic Ocean."),
]


@contextmanager
def batch_api(use_openai: bool) -> Iterator[tuple[OpenAI, float]]:
    """A client and a poll interval: OpenAI itself, or a local Batch API server inside this process."""
    if use_openai:
        if not os.environ.get("OPENAI_API_KEY"):
            sys.exit("error: --openai needs OPENAI_API_KEY in the environment")
        yield OpenAI(), 60.0  # real batches take minutes to hours: poll gently
        return
    with LocalBatchServer(step_seconds=0) as server:  # step_seconds=0: batches finish at once
        yield server.client(), 0.1


def judge(client: OpenAI, poll_interval: float, model: str) -> BatchResult:
    """Submit one judging request per sample and wait for the batch."""
    builder = BatchRequestBuilder()
    for s in SAMPLES:
        builder.add(
            messages=[
                {"role": "system", "content": RUBRIC},
                {
                    "role": "user",
                    "content": f"Question: {s.question}\nReference: {s.reference}\nAnswer: {s.answer}",
                },
            ],
            model=model,
            custom_id=f"judge-{s.id}",  # our own ids, so .join() can find each sample's verdict
            response_format=Verdict,  # a Pydantic class: sent as the SDK's strict json_schema
            max_completion_tokens=300,
        )
    job = builder.submit(client, description="llm-judge example")
    print(f"submitted {len(builder)} requests as {job.batch_id}")
    return job.wait(poll_interval=poll_interval, on_progress=lambda b: print(" ", b.status))


def main() -> int:
    """Judge the samples and print a table, then a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--openai", action="store_true", help="use OpenAI's Batch API (OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-5.4-mini")
    args = parser.parse_args()

    with batch_api(args.openai) as (client, poll_interval):
        result = judge(client, poll_interval, args.model)

    # .join() pairs every input with its result by custom_id; output is None if no line came back.
    scores: list[int] = []
    for pair in result.join(SAMPLES, key=lambda s: f"judge-{s.id}"):
        sample, item = pair.input, pair.output
        if item is None or not item.ok:
            reason = "no result" if item is None else f"{item.outcome}: {item.error}"
            print(f"{sample.id}  --  {reason}")
            continue
        verdict = Verdict.model_validate_json(item.content)  # content is the JSON text
        scores.append(verdict.score)
        mark = "pass" if verdict.passed else "FAIL"
        print(f"{sample.id}  {verdict.score}/5 {mark}  {sample.answer[:40]!r}")

    mean = sum(scores) / len(scores) if scores else 0.0
    print(
        f"summary: requests={len(SAMPLES)} judged={len(scores)} mean_score={mean:.2f} "
        f"succeeded={result.counts['succeeded']} tokens={result.usage.get('total_tokens', 0)}"
    )
    return 0 if len(scores) == len(SAMPLES) else 1


if __name__ == "__main__":
    sys.exit(main())
