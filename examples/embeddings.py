"""Embed a corpus through the Batch API, then find each document's nearest neighbours (numpy + pandas).

    python examples/embeddings.py            # in-process local Batch API: free
    python examples/embeddings.py --openai   # OpenAI's Batch API (OPENAI_API_KEY)

Embeddings cost half price in a batch, and one batch holds up to 50,000 inputs. The local server's mock
vectors are deterministic unit vectors (same text, same vector) but carry no meaning: with `--openai`
the neighbours are semantically close; locally they only prove the plumbing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from openai import OpenAI

from batch_openai import BatchRequestBuilder
from batch_openai.local import LocalBatchServer

CORPUS = [
    "How do I reset my password?",
    "I forgot my login credentials.",
    "The app crashes when I open the camera.",
    "Camera view freezes and the app closes.",
    "Can I get a refund for last month?",
    "I was charged twice this month.",
    "Please add a dark mode.",
    "A night theme would be easier on the eyes.",
    "How do I export my data as CSV?",
    "Is there a way to download all my records?",
    "The delivery arrived two weeks late.",
    "My parcel still hasn't shown up.",
    "Do you ship to Canada?",
    "What countries do you deliver to?",
    "How can I close my account?",
    "Delete my profile and all my data, please.",
]
DIMENSIONS = 256  # text-embedding-3-* can shorten vectors: smaller files, faster maths


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
    """Embed CORPUS, print each text's nearest neighbour, then a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--openai", action="store_true", help="use OpenAI's Batch API (OPENAI_API_KEY)")
    parser.add_argument("--model", default="text-embedding-3-small")
    args = parser.parse_args()

    builder = BatchRequestBuilder()
    for i, text in enumerate(CORPUS):
        # One input per request keeps the custom_id ↔ text mapping trivial; `input` may also be a list.
        builder.add_embedding(text, model=args.model, custom_id=f"doc-{i}", dimensions=DIMENSIONS)

    with batch_api(args.openai) as (client, poll_interval):
        job = builder.submit(client, description="embeddings example")
        print(f"submitted {len(builder)} embedding requests as {job.batch_id}")
        result = job.wait(poll_interval=poll_interval)

    # For /v1/embeddings, item.content is the vector itself. join() keeps the corpus order.
    docs = pd.DataFrame({"custom_id": [f"doc-{i}" for i in range(len(CORPUS))], "text": CORPUS})
    joined = result.join(docs.itertuples(index=False), key=lambda row: row.custom_id)
    ok = [j for j in joined if j.output is not None and j.output.ok]
    docs = pd.DataFrame({"text": [j.input.text for j in ok]})
    vectors = np.array([j.output.content for j in ok], dtype=np.float32)

    # Cosine similarity = dot product of L2-normalised rows; mask the diagonal (a text is its own twin).
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    docs["neighbour"] = [docs["text"].iloc[j] for j in sim.argmax(axis=1)]
    docs["similarity"] = sim.max(axis=1).round(3)
    with pd.option_context("display.max_colwidth", 42, "display.width", 120):
        print(docs.head(6).to_string(index=False))

    print(
        f"summary: requests={len(builder)} embedded={len(ok)} dims={vectors.shape[1]} "
        f"tokens={result.usage.get('total_tokens', 0)}"
    )
    return 0 if len(ok) == len(CORPUS) and vectors.shape[1] == DIMENSIONS else 1


if __name__ == "__main__":
    sys.exit(main())
