"""Transitional, types only: the name the library's `registry=` annotations still import.

`BatchRegistry` lives in the Prefect layer (`batch_openai.flows.registry`); the core needs only something
it can call `track_batch` on, `batch_openai.records.BatchTracker`. Delete this module once `_async.py`,
`_builder.py`, `_builder_submit.py`, `_job.py`, `_queue.py`, `_submit.py` and `_tracking.py` annotate with
`BatchTracker` (they import this under `TYPE_CHECKING` only).
"""

from batch_openai.records import BatchTracker as BatchRegistry

__all__ = ["BatchRegistry"]
