"""Structured extraction through the Responses API (`/v1/responses`) with `text_format=`.

    python examples/responses_extraction.py            # in-process local Batch API: free
    python examples/responses_extraction.py --openai   # OpenAI's Batch API (OPENAI_API_KEY)

Each email becomes an `Order` (customer, items, total, currency). `add_response(..., text_format=Order)`
sends the same strict schema `client.responses.parse(text_format=Order)` would; `result.parse_each(Order)`
validates every answer and says why one did not fit (`result.parse(Order)` raises `BatchParseError` instead).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from openai import OpenAI
from pydantic import BaseModel, ConfigDict

from batch_openai import BatchRequestBuilder
from batch_openai.local import LocalBatchServer


class LineItem(BaseModel):
    """One product line of an order."""

    model_config = ConfigDict(extra="forbid")

    product: str
    quantity: int


class Order(BaseModel):
    """What we extract from an order email."""

    model_config = ConfigDict(extra="forbid")  # every object strict: additionalProperties false

    customer: str
    items: list[LineItem]
    total: float
    currency: str


EMAILS = {
    "mail-001": "Hi, Ana Costa here. Please send 2 blue mugs and 1 teapot. I paid 38.50 EUR. Thanks!",
    "mail-002": "Order from Ben Okafor: three notebooks, one fountain pen. Total charged: $27.00.",
    "mail-003": "This is Chen Wei. I'd like 10 packs of printer paper, total 54 GBP.",
    "mail-004": "Dear shop, Dara Singh ordering 1 desk lamp and 4 LED bulbs, 61.20 EUR all in.",
    "mail-005": "Eva Novak — 6 espresso cups please. I've transferred 30 CHF.",
    "mail-006": "Farid Haddad: 1 backpack (59.99 USD). Same address as last time.",
    "mail-007": "Hello, Grace Lee. Two yoga mats and a water bottle; card charged 71.00 CAD.",
    "mail-008": "Hugo Martin wants 3 candles and 1 vase, 44.90 EUR.",
}


@contextmanager
def batch_api(use_openai: bool) -> Iterator[tuple[OpenAI, float]]:
    """A client and a poll interval: OpenAI itself, or a local Batch API server inside this process."""
    if use_openai:
        if not os.environ.get("OPENAI_API_KEY"):
            sys.exit("error: --openai needs OPENAI_API_KEY in the environment")
        yield OpenAI(), 60.0
        return
    with LocalBatchServer(step_seconds=0) as server:
        yield server.client(), 0.1


def main() -> int:
    """Extract an Order from every email and print them, then a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--openai", action="store_true", help="use OpenAI's Batch API (OPENAI_API_KEY)")
    parser.add_argument("--model", default="gpt-5.4-mini")
    args = parser.parse_args()

    builder = BatchRequestBuilder()
    for mail_id, text in EMAILS.items():
        builder.add_response(
            input=[
                {"role": "system", "content": "Extract the order. Quantities as integers."},
                {"role": "user", "content": text},
            ],
            model=args.model,
            custom_id=mail_id,
            text_format=Order,  # strict JSON schema in text.format
        )

    with batch_api(args.openai) as (client, poll_interval):
        job = builder.submit(client, description="responses extraction example")
        print(f"submitted {len(builder)} /v1/responses requests as {job.batch_id} ({job.endpoint})")
        result = job.wait(poll_interval=poll_interval)

    # parse_each: one ParsedItem per request, in input order, with .value (an Order) or .error (why not).
    orders = []
    for p in result.parse_each(Order):
        if p.value is None:
            print(f"{p.custom_id}: could not extract ({p.error})")
            continue
        order = p.value
        orders.append(order)
        n = sum(line.quantity for line in order.items)
        print(f"{p.custom_id}  {order.customer[:24]:24}  {n:3d} items  {order.total:9.2f} {order.currency}")
    print(
        f"summary: requests={len(builder)} extracted={len(orders)} "
        f"failed={len(result.failed)} tokens={result.usage.get('total_tokens', 0)}"
    )
    return 0 if len(orders) == len(EMAILS) else 1


if __name__ == "__main__":
    sys.exit(main())
