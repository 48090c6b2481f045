"""AFTER: the same job with batch-openai.

Usage: python with_batch_openai.py reviews.jsonl results.jsonl   (rows: {"id": ..., "text": ...})
Upload, create, poll, download, parse, retry the failed lines once, and survive a restart.
"""

import json
import os
import sys

from openai import OpenAI

from batch_openai import BatchJobError, BatchRequestBuilder

client = OpenAI()
POLL_SECONDS = float(os.environ.get("POLL_SECONDS", "30"))
PROMPT = "Is this review positive or negative? Reply with one word.\n\n"


def run(rows):
    builder = BatchRequestBuilder()
    for row in rows:
        messages = [{"role": "user", "content": PROMPT + row["text"]}]
        builder.add(messages, model="gpt-4o-mini", custom_id=row["id"], max_tokens=3)
    # Submitting the same requests again finds the batch already made: a restart never pays twice.
    job = builder.submit(client)
    try:
        return {item.custom_id: item for item in job.wait(poll_interval=POLL_SECONDS)}
    except BatchJobError as e:  # expired or cancelled: keep what finished
        return {item.custom_id: item for item in e.result}


with open(sys.argv[1]) as f:
    rows = [json.loads(line) for line in f if line.strip()]
results = run(rows)
failed = [row for row in rows if not results[row["id"]].ok]
if failed:
    results.update(run(failed))

with open(sys.argv[2], "w") as f:
    for row in rows:
        f.write(json.dumps(results[row["id"]].to_dict()) + "\n")
outcomes = [str(item.outcome) for item in results.values()]
print("outcomes:", {o: outcomes.count(o) for o in set(outcomes)})
