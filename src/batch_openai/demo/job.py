"""The demo job: product reviews → a one-word sentiment and a structured extraction per review.

It is the main job on embedded defaults: the resumable Prefect flow (ephemeral Prefect unless
`PREFECT_API_URL` is set) against the in-process local Batch API with its mock responder, or, when
asked, against OpenAI itself with `OPENAI_API_KEY`.
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from batch_openai import BatchRequestBuilder

DATASET = Path(__file__).with_name("reviews.csv")
DEMO_MODEL = "gpt-4o-mini"
SENTIMENT_PROMPT = "Is this review positive, negative or mixed? Reply with one word.\n\nReview: {text}"
EXTRACT_PROMPT = "Extract the facts of this product review.\n\nProduct: {product}\nReview: {text}"


class ReviewFacts(BaseModel):
    """What the structured-extraction request asks the model for."""

    model_config = ConfigDict(extra="forbid")

    sentiment: Literal["positive", "negative", "mixed"]
    aspects: list[Literal["quality", "delivery", "price", "usability", "durability", "support", "other"]]
    would_recommend: bool
    stars: int = Field(ge=1, le=5, description="The star rating the text suggests")


@dataclass
class DemoReport:
    """What a demo run produced, for the summary printed at the end."""

    output: Path
    summary: dict[str, Any]
    seconds: float
    sentiments: Counter[str] = field(default_factory=Counter)
    extracted: int = 0
    invalid_extractions: list[str] = field(default_factory=list)
    aspects: Counter[str] = field(default_factory=Counter)


def load_reviews(path: Path = DATASET, limit: int | None = None) -> list[dict[str, str]]:
    """The bundled reviews (or another CSV with `review_id`, `product` and `text` columns)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows[:limit] if limit else rows


def build_requests(reviews: list[dict[str, str]], path: Path, model: str = DEMO_MODEL) -> Path:
    """Write the demo's native batch input: two requests per review, validated before anything runs."""
    builder = BatchRequestBuilder()
    for review in reviews:
        rid = review["review_id"]
        builder.add(
            messages=[{"role": "user", "content": SENTIMENT_PROMPT.format(**review)}],
            model=model,
            custom_id=f"sentiment-{rid}",
            max_tokens=3,
            temperature=0,
        )
        builder.add(
            messages=[{"role": "user", "content": EXTRACT_PROMPT.format(**review)}],
            model=model,
            custom_id=f"extract-{rid}",
            response_format=ReviewFacts,
            max_tokens=200,
        )
    return builder.to_jsonl(path)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The flow's output rows (JSONL)."""
    with path.open("rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def summarise(output: Path, summary: dict[str, Any], seconds: float) -> DemoReport:
    """Read the output rows back: sentiment counts, and the extractions validated into `ReviewFacts`."""
    report = DemoReport(output=output, summary=summary, seconds=seconds)
    for row in read_rows(output):
        if row["outcome"] != "succeeded":
            continue
        if row["custom_id"].startswith("sentiment-"):
            word = (row.get("content") or "").strip().strip(".").lower() or "(empty)"
            report.sentiments[word] += 1
            continue
        try:
            facts = ReviewFacts.model_validate_json(row.get("content") or "")
        except ValueError:
            report.invalid_extractions.append(row["custom_id"])
            continue
        report.extracted += 1
        report.aspects.update(facts.aspects)
    return report


def run_demo(
    workdir: Path,
    *,
    use_openai: bool = False,
    limit: int | None = None,
    step_seconds: float = 0.2,
) -> DemoReport:
    """Run the demo job end to end and return what it produced."""
    from batch_openai.flows.runner import run_batch, run_local_demo

    workdir.mkdir(parents=True, exist_ok=True)
    requests = build_requests(load_reviews(limit=limit), workdir / "requests.jsonl")
    output = workdir / "results.jsonl"
    started = time.perf_counter()
    if use_openai:
        if not os.environ.get("OPENAI_API_KEY"):
            raise RuntimeError("--openai needs OPENAI_API_KEY in the environment or a .env file")
        summary = run_batch(
            requests,
            output,
            description="batch-openai demo: review sentiment + extraction",
            work_dir=str(workdir / "work"),
            poll_interval=30.0,
        )
    else:
        summary = run_local_demo(
            output,
            input_path=requests,
            work_dir=workdir / "work",
            step_seconds=step_seconds,
            # A persistent server state lets a rerun re-attach to the batches it already made.
            server_options={"state_dir": str(workdir / "local-server")},
            description="batch-openai demo: review sentiment + extraction",
        )
    return summarise(output, summary, time.perf_counter() - started)
