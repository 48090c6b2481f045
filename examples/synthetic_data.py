"""Synthetic data: generate support tickets as structured JSON, validated into Pydantic models.

    python examples/synthetic_data.py [--out DIR]            # in-process local Batch API: free
    python examples/synthetic_data.py --openai [--out DIR]   # OpenAI's Batch API (OPENAI_API_KEY)

One request per (product, category, tone) combination; each answer is a `Ticket`. `parse_each` keeps
going past a bad answer (you see which and why); `parse` is the strict variant that raises
`BatchParseError` listing every bad one. The valid tickets are written to `DIR/tickets.jsonl`.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from openai import OpenAI
from pydantic import BaseModel, ConfigDict, Field

from batch_openai import BatchParseError, BatchRequestBuilder
from batch_openai.local import LocalBatchServer


class Ticket(BaseModel):
    """One synthetic customer-support ticket."""

    model_config = ConfigDict(extra="forbid")  # strict structured output needs this

    subject: str = Field(description="Short subject line")
    body: str = Field(description="The customer's message, 2-5 sentences")
    category: Literal["billing", "bug", "feature_request", "account"]
    urgency: Literal["low", "medium", "high"]
    tags: list[str] = Field(description="1-4 lowercase tags")


PRODUCTS = ["a photo-editing app", "a smart thermostat", "an online bank account"]
CATEGORIES = ["billing", "bug", "feature_request", "account"]
TONES = ["polite", "frustrated"]


@contextmanager
def batch_api(use_openai: bool) -> Iterator[tuple[OpenAI, float]]:
    """A client and a poll interval: OpenAI itself, or a local Batch API server inside this process."""
    if use_openai:
        if not os.environ.get("OPENAI_API_KEY"):
            sys.exit("error: --openai needs OPENAI_API_KEY in the environment")
        yield OpenAI(), 60.0
        return
    with LocalBatchServer(step_seconds=0) as server:  # mock answers that follow the JSON schema
        yield server.client(), 0.1


def main() -> int:
    """Generate, validate and save the tickets; print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--openai", action="store_true", help="use OpenAI's Batch API (OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-5.4-mini")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="synthetic-"))
    out.mkdir(parents=True, exist_ok=True)

    builder = BatchRequestBuilder()
    for n, (product, category, tone) in enumerate(itertools.product(PRODUCTS, CATEGORIES, TONES)):
        builder.add(
            messages=[
                {"role": "system", "content": "You write realistic, varied customer-support tickets."},
                {"role": "user", "content": f"Write a {tone} {category} ticket about {product}."},
            ],
            model=args.model,
            custom_id=f"ticket-{n:03d}",
            response_format=Ticket,  # the class itself: the library sends the strict schema
        )

    with batch_api(args.openai) as (client, poll_interval):
        job = builder.submit(client, description="synthetic tickets example")
        print(f"submitted {len(builder)} requests as {job.batch_id}")
        result = job.wait(poll_interval=poll_interval)

    # parse_each never raises: one ParsedItem per request with .value (a Ticket) or .error (why not).
    parsed = result.parse_each(Ticket)
    tickets = [p.value for p in parsed if p.value is not None]
    for p in parsed:
        if not p.ok:
            print(f"skipped {p.custom_id}: {p.error}")

    # parse is all-or-nothing: it raises BatchParseError naming every bad answer (with the good ones
    # in .parsed). Use it when one bad answer should stop the pipeline.
    try:
        strict = result.parse(Ticket)
    except BatchParseError as e:
        print(f"parse(): {len(e.failures)} invalid, first: {e.failures[0]}")
        strict = list(e.parsed)

    path = out / "tickets.jsonl"
    path.write_text("".join(t.model_dump_json() + "\n" for t in tickets), encoding="utf-8")
    by_category = {c: sum(t.category == c for t in tickets) for c in CATEGORIES}
    print(f"example: {tickets[0].subject!r} [{tickets[0].category}/{tickets[0].urgency}]" if tickets else "")
    print(
        f"summary: requests={len(builder)} valid={len(tickets)} strict_parsed={len(strict)} "
        f"by_category={by_category} output={path}"
    )
    return 0 if len(tickets) == len(builder) else 1


if __name__ == "__main__":
    sys.exit(main())
