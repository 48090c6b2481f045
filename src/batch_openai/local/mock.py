"""The `mock` responder: deterministic, plausible answers for every batch endpoint.

The answer depends only on the seed and the request body (hashed in canonical form), so the same
request always gets the same answer. Usage comes from `tokens.py`, the one documented estimate.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import orjson

from batch_openai.local import mock_endpoints as ep


class MockResponder:
    """Answers a batch request body for an endpoint, deterministically given `seed`."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def rng_for(self, body: dict[str, Any]) -> tuple[random.Random, str]:
        """A random generator and a short hex digest, both fixed by seed + request."""
        digest = hashlib.blake2b(
            orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS),
            digest_size=16,
            key=str(self.seed).encode(),
        ).hexdigest()
        return random.Random(digest), digest

    def respond(self, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Return (status_code, response body) for one request."""
        handler = ep.HANDLERS.get(url)
        if handler is None:
            return 400, ep.error_body(
                f"The local mock does not answer {url}; use --responder forward for it.",
                "unsupported_endpoint",
            )
        rng, digest = self.rng_for(body)
        try:
            return 200, handler(body, rng, digest, self.seed)
        except ep.MockRequestError as exc:
            return 400, ep.error_body(str(exc), exc.code, exc.param)
