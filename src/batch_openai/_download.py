"""Streaming a job's output and error files to disk (the sync half; the async one is in `_async.py`).

Each file is written to a hidden temporary name and renamed once its whole body arrived; a body cut
mid-stream raises the HTTP library's transport error, which `_errors.classify` calls transient, so the
retry policy fetches the file again from the start and no short file is ever left behind.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from batch_openai._job_state import file_pairs
from batch_openai._jsonl import ensure_dir, partial_path
from batch_openai._retry import call

if TYPE_CHECKING:
    from batch_openai._job import BatchJob

__all__ = ["download", "download_file"]


def download_file(job: BatchJob, file_id: str, dest: Path) -> Path:
    """Stream one file to `dest` (whole or not at all), retried under the job's policy."""
    part = partial_path(dest)

    def fetch() -> Path:
        try:
            with (
                job._client.files.with_streaming_response.content(file_id) as response,
                open(part, "wb") as f,
            ):
                for chunk in response.iter_bytes(1 << 20):
                    f.write(chunk)
            os.replace(part, dest)
        finally:
            part.unlink(missing_ok=True)
        return dest

    return call(fetch, policy=job._retry, context=f"downloading {file_id}")


def download(job: BatchJob, directory: str | os.PathLike[str]) -> tuple[Path | None, Path | None]:
    """Stream the output and error files of `job` to `directory`; shards are concatenated into one each."""
    out_dir = ensure_dir(directory)
    paths: list[Path | None] = []
    for kind, index in (("output", 1), ("errors", 2)):
        ids = [pair[index] for pair in file_pairs(job._batches) if pair[index]]
        if not ids:
            paths.append(None)
            continue
        target = out_dir / f"{job.batch_id}_{kind}.jsonl"
        if len(ids) == 1:
            paths.append(download_file(job, ids[0], target))
            continue
        with open(target, "wb") as joined:
            for file_id in ids:
                part = download_file(job, file_id, out_dir / f".{file_id}.part")
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, joined, 1 << 20)
                part.unlink()
        paths.append(target)
    return paths[0], paths[1]
