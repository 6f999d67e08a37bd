"""What a component's calls add up to: messages by kind, failures by cause, latency, fuel.

Counted where the calls happen, as plain numbers (a list of bucket counts, two dicts, a fuel
meter): one call costs a ``bisect`` and three increments here, far less than the export call.
The calls of one component run one at a time (on the loop's thread or one worker thread), so
nothing here takes a lock; readers (the metrics endpoint) copy the numbers on the loop's thread.
The counters outlive restarts: they belong to the component, not to one of its instances.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from wactor.errors import (
    ComponentError,
    ComponentFault,
    ExecutionTimeoutError,
    GuestError,
    InvalidMessageError,
    MessagingError,
    ResourceLimitError,
    SecurityError,
    StorageError,
    UnhealthyError,
    WactorError,
)
from wactor.wasm import FuelMeter

__all__ = ["LATENCY_BUCKETS", "CallMetrics", "CallMetricsSnapshot", "failure_cause"]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Upper bounds (seconds) of the call latency histogram's buckets; a last one takes the rest.

From 25 µs (a short call on the loop's thread) to 10 s (past the longest default timeout)."""


@dataclass(frozen=True, slots=True)
class CallMetricsSnapshot:
    """A component's counters at one moment."""

    # per envelope kind (request, send, callback …): the count of calls per latency bucket
    # (not cumulative; the last one past the last bound) and their total time in seconds
    latency: dict[str, tuple[tuple[int, ...], float]]
    failures: dict[str, int]  # by cause (see failure_cause)
    fuel_used: int

    @property
    def messages(self) -> dict[str, int]:
        """Messages handled, by kind."""
        return {kind: sum(buckets) for kind, (buckets, _) in self.latency.items()}


class CallMetrics:
    """The counters of one component, updated by its actor as its calls end."""

    __slots__ = ("_failures", "_kinds", "fuel")

    def __init__(self) -> None:
        # kind -> calls per latency bucket, then (last item) their total time in seconds
        self._kinds: dict[str, list[float]] = {}
        self._failures: dict[str, int] = {}
        self.fuel = FuelMeter()  # given to every instance of the component

    def called(self, kind: str, seconds: float) -> None:
        """Count one message of ``kind`` whose export call took ``seconds`` (wall clock)."""
        counts = self._kinds.get(kind)
        if counts is None:
            counts = self._kinds[kind] = [0] * (len(LATENCY_BUCKETS) + 2)
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def failed(self, exc: BaseException) -> None:
        """Count one failed message (or health check) by its cause."""
        cause = failure_cause(exc)
        self._failures[cause] = self._failures.get(cause, 0) + 1

    def snapshot(self) -> CallMetricsSnapshot:
        """Copy the counters (on the loop's thread; a call on a worker may be counting)."""
        latency = {
            kind: (tuple(int(n) for n in counts[:-1]), counts[-1])
            for kind, counts in list(self._kinds.items())
        }
        return CallMetricsSnapshot(latency, dict(self._failures), self.fuel.used)


def failure_cause(exc: BaseException) -> str:
    """One word for why a message failed, as the ``cause`` label of the failures counter.

    ``trap``, ``timeout``, ``memory``/``fuel`` (a resource limit), ``unhealthy`` (health checks
    in a row), ``guest-error`` (the guest answered ``err``), ``invalid-message`` (a reply over
    the payload limit, say), ``denied`` (security), ``messaging``, ``storage``, ``component``
    (a lifecycle error), ``error`` for any other error of wactor's, ``internal`` for the rest.
    """
    if isinstance(exc, UnhealthyError):
        return "unhealthy"
    if isinstance(exc, ExecutionTimeoutError):
        return "timeout"
    if isinstance(exc, ResourceLimitError):
        return exc.limit if exc.limit in ("memory", "fuel") else "resource-limit"
    if isinstance(exc, ComponentFault):  # a trap, or a fault of another kind
        return "trap"
    if isinstance(exc, GuestError):
        return "guest-error"
    if isinstance(exc, InvalidMessageError):
        return "invalid-message"
    if isinstance(exc, SecurityError):
        return "denied"
    if isinstance(exc, MessagingError):
        return "messaging"
    if isinstance(exc, StorageError):
        return "storage"
    if isinstance(exc, ComponentError):
        return "component"
    if isinstance(exc, WactorError):
        return "error"
    return "internal"
