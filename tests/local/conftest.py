"""Fixtures of the local server tests (helpers live in local_helpers.py)."""

from local_helpers import client, server

__all__ = ["client", "server"]
