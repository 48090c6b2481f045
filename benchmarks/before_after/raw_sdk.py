"""BEFORE: classify reviews through the Batch API with the raw OpenAI SDK.

Usage: python raw_sdk.py reviews.jsonl results.jsonl   (rows: {"id": ..., "text": ...})
Upload, create, poll, download, parse, retry the failed lines once, and survive a restart.
"""

import json
import os
import sys
import time

from openai import OpenAI

client = OpenAI()
MODEL = "gpt-4o-mini"
PROMPT = "Is this review positive or negative? Reply with one word.\n\n"
STATE_FILE = sys.argv[2] + ".state.json"
POLL_SECONDS = float(os.environ.get("POLL_SECONDS", "30"))


def load_state():
    # Without this, a restart after `batches.create` would pay for a second batch.
    if os.path.exists(STATE_FILE):
        with open(STATE_FILE) as f:
            return json.load(f)
    return {}


def save_state(state):
    with open(STATE_FILE, "w") as f:
        json.dump(state, f)


def submit(rows, key, state):
    if key in state:
        return state[key]
    path = f"{sys.argv[2]}.{key}.jsonl"
    with open(path, "w") as f:
        for row in rows:
            request = {
                "custom_id": row["id"],
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "messages": [{"role": "user", "content": PROMPT + row["text"]}],
                    "max_tokens": 3,
                },
            }
            f.write(json.dumps(request) + "\n")
    with open(path, "rb") as f:
        uploaded = client.files.create(file=f, purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    state[key] = batch.id
    save_state(state)
    return batch.id


def wait(batch_id):
    while True:
        batch = client.batches.retrieve(batch_id)
        print(batch.status, batch.request_counts.completed, "/", batch.request_counts.total)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(POLL_SECONDS)


def download(batch):
    results = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id is None:
            continue
        for line in client.files.content(file_id).text.splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            response = record.get("response") or {}
            if record.get("error") is None and response.get("status_code") == 200:
                content = response["body"]["choices"][0]["message"]["content"]
                results[record["custom_id"]] = {"outcome": "succeeded", "content": content}
            else:
                error = record.get("error") or response.get("body", {}).get("error")
                results[record["custom_id"]] = {"outcome": "failed", "error": error}
    return results


def run(rows, key, state):
    batch = wait(submit(rows, key, state))
    if batch.status == "failed":
        raise RuntimeError(f"batch {batch.id} failed: {batch.errors}")
    return download(batch)


with open(sys.argv[1]) as f:
    rows = [json.loads(line) for line in f if line.strip()]
state = load_state()
results = run(rows, "round-1", state)
failed = [row for row in rows if results.get(row["id"], {}).get("outcome") != "succeeded"]
if failed:
    results.update(run(failed, "round-2", state))

with open(sys.argv[2], "w") as f:
    for row in rows:
        outcome = results.get(row["id"], {"outcome": "missing"})
        f.write(json.dumps({"custom_id": row["id"], **outcome}) + "\n")
counts = {}
for r in results.values():
    counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
print("outcomes:", counts, "missing:", len(rows) - len(results))
