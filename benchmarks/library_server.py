"""Benchmark helper: serve the local Batch API in its own process and print its base URL.

Run by `bench_library.py`; stops when its stdin closes. Keeping the server out of the measured process
means the peak RSS figures are the client's alone.
"""

from __future__ import annotations

import sys

from batch_openai.local import LocalBatchServer


def main() -> None:
    """Start the server, print the base URL, wait for stdin to close."""
    with LocalBatchServer(step_seconds=0.0, seed=0) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
