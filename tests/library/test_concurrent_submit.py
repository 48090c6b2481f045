"""Concurrent submitters of the same content end with one live batch (issue 12, item 1).

Each submitter looks for the fingerprint before uploading, and all of them miss it when they start at
the same moment; after its create, each compares every live batch carrying the fingerprint, the oldest
survives, and the others are cancelled at once by the one that made them. Real clients, a real local
server whose batches stay `validating` for a while, as OpenAI's do.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

from library_helpers import chat_builder

from batch_openai import FINGERPRINT_KEY, submit_file
from batch_openai.local import LocalBatchServer


def _by_fingerprint(client: Any, fingerprint: str) -> list[Any]:
    return [
        b
        for b in client.batches.list(limit=100).data
        if (b.metadata or {}).get(FINGERPRINT_KEY) == fingerprint
    ]


def _requests_run(batch: Any) -> int:
    counts = batch.request_counts
    return 0 if counts is None else counts.completed  # its failed lines are batch_cancelled: never ran


def test_ten_threads_submitting_the_same_builder_pay_for_one_batch() -> None:
    # Every batch stays validating for the test's life (the server's clock, not the submitters' speed,
    # keeps a duplicate from running before it is cancelled: with a 0.5 s step, one ran on a busy run).
    with LocalBatchServer(step_seconds=30.0, seed=1) as server:
        builder = chat_builder(5, prefix="race-threads")
        start = threading.Barrier(10)
        ids: list[str] = []
        errors: list[BaseException] = []

        def submit() -> None:
            try:
                client = server.client()
                start.wait()
                ids.append(builder.submit(client).batch_id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=submit) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len(ids) == 10 and len(set(ids)) == 1  # every submitter returned the survivor
        client = server.client()
        fingerprint = client.batches.retrieve(ids[0]).metadata[FINGERPRINT_KEY]
        made = _by_fingerprint(client, fingerprint)
        live = [b for b in made if b.status not in ("cancelling", "cancelled")]
        assert [b.id for b in live] == [ids[0]]
        duplicates = [b for b in made if b.id != ids[0]]
        # The duplicates were cancelled while validating: none of their requests ran.
        for dup in duplicates:
            dup = client.batches.retrieve(dup.id)
            assert dup.status in ("cancelling", "cancelled")
            assert _requests_run(dup) == 0, dup
        result = client.batches.retrieve(ids[0])
        assert result.status != "cancelled"


def test_processes_submitting_one_file_at_once_share_one_batch(tmp_path: Path) -> None:
    path = chat_builder(4, prefix="race-procs").to_jsonl(tmp_path / "requests.jsonl")
    with LocalBatchServer(step_seconds=0.5, seed=2) as server:
        script = textwrap.dedent(
            f"""
            import time
            from openai import OpenAI
            from batch_openai import submit_file
            client = OpenAI(base_url={server.base_url!r}, api_key="sk-local")
            time.sleep(max(0.0, {__import__("time").time() + 4.0!r} - time.time()))  # start together
            print(submit_file(client, {str(path)!r}, endpoint="/v1/chat/completions").batch_id)
            """
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        ids = [p.communicate(timeout=120)[0].strip() for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert len(set(ids)) == 1, ids
        client = server.client()
        fingerprint = client.batches.retrieve(ids[0]).metadata[FINGERPRINT_KEY]
        live = [
            b for b in _by_fingerprint(client, fingerprint) if b.status not in ("cancelling", "cancelled")
        ]
        assert [b.id for b in live] == ids[:1]
        again = submit_file(client, path, endpoint="/v1/chat/completions")
        assert again.batch_id == ids[0]  # a later submitter simply finds it
