"""Injected faults (429, 500, dropped connections) and per-route call counts."""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

#: Every route of the API, as "METHOD /v1/template"; faults and stats name routes this way.
ROUTES: tuple[str, ...] = (
    "POST /v1/files",
    "GET /v1/files",
    "GET /v1/files/{file_id}",
    "DELETE /v1/files/{file_id}",
    "GET /v1/files/{file_id}/content",
    "POST /v1/batches",
    "GET /v1/batches",
    "GET /v1/batches/{batch_id}",
    "POST /v1/batches/{batch_id}/cancel",
    "POST /v1/webhook_endpoints",
    "GET /v1/webhook_endpoints",
    "GET /v1/webhook_endpoints/{webhook_endpoint_id}",
    "POST /v1/webhook_endpoints/{webhook_endpoint_id}",
    "DELETE /v1/webhook_endpoints/{webhook_endpoint_id}",
    "POST /v1/webhook_endpoints/{webhook_endpoint_id}/rotate_secret",
    "POST /v1/webhook_endpoints/{webhook_endpoint_id}/test",
    "GET /v1/webhook_event_types",
)
#: `lost`: the call is handled, then the connection closes before the answer (a create whose answer
#: never arrived). `truncate`: the call is handled and half of its answer is sent (a torn download).
FAULT_KINDS = ("429", "500", "drop", "lost", "truncate")
_SPLIT_ROUTES = [(r.split(" ", 1)[0], r.split(" ", 1)[1].strip("/").split("/"), r) for r in ROUTES]


def route_of(method: str, path: str) -> str | None:
    """The route template a request matches, e.g. `GET /v1/batches/{batch_id}`; None if none."""
    parts = path.strip("/").split("/")
    for m, tmpl, name in _SPLIT_ROUTES:
        if m != method or len(tmpl) != len(parts):
            continue
        if all(t == p or (t.startswith("{") and p) for t, p in zip(tmpl, parts, strict=True)):
            return name
    return None


@dataclass
class Fault:
    """One rule: on `route` (or "*"), answer `kind` on the `nth` call or at `rate`, `times` times."""

    id: int
    route: str
    kind: str
    nth: int | None = None
    rate: float | None = None
    times: int | None = None
    retry_after_ms: int | None = None
    seen: int = 0
    fired: int = 0

    def _budget(self) -> int | None:
        # The Nth call alone by default; a rate or an always-on rule fires until told otherwise.
        if self.times is not None:
            return self.times
        return 1 if self.nth is not None else None

    def consider(self, rng: random.Random) -> bool:
        """Count one matching call and say whether this rule fires on it."""
        self.seen += 1
        budget = self._budget()
        if budget is not None and self.fired >= budget:
            return False
        if self.nth is not None and self.seen < self.nth:
            return False
        if self.rate is not None and rng.random() >= self.rate:
            return False
        self.fired += 1
        return True


def check_fault_spec(route: str, kind: str, nth: int | None, rate: float | None, times: int | None) -> None:
    """Raise ValueError naming the problem when a fault rule cannot work."""
    if route != "*" and route not in ROUTES:
        raise ValueError(f"unknown route {route!r}: use '*' or one of {', '.join(ROUTES)}")
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}: use one of {', '.join(FAULT_KINDS)}")
    if nth is not None and nth < 1:
        raise ValueError("nth counts calls from 1")
    if rate is not None and not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be within 0..1")
    if times is not None and times < 0:
        raise ValueError("times must be >= 0")


class FaultBoard:
    """Thread-safe set of fault rules plus per-route call statistics."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []
        self._stats: dict[str, int] = {}

    def add(
        self,
        route: str = "*",
        kind: str = "500",
        nth: int | None = None,
        rate: float | None = None,
        times: int | None = None,
        retry_after_ms: int | None = None,
    ) -> Fault:
        """Add a rule; see `Fault`."""
        check_fault_spec(route, kind, nth, rate, times)
        with self._lock:
            fault = Fault(next(self._ids), route, kind, nth, rate, times, retry_after_ms)
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        """The rules with how often each matched and fired."""
        with self._lock:
            return [asdict(f) for f in self._faults]

    def hit(self, route: str) -> Fault | None:
        """Record a call on `route`; return the rule that fires on it, if any."""
        with self._lock:
            self._stats[route] = self._stats.get(route, 0) + 1
            chosen = None
            for fault in self._faults:
                if fault.route not in ("*", route):
                    continue
                if chosen is None:
                    chosen = fault if fault.consider(self._rng) else None
                else:
                    fault.seen += 1  # a call already answered by an earlier rule still counts
            return chosen

    def stats(self) -> dict[str, int]:
        """Calls per route since start (or the last reset)."""
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        """Zero the call counters."""
        with self._lock:
            self._stats.clear()
