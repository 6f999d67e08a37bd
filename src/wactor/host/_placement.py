"""Where a component's export calls run: on the host loop's own thread, or on a worker thread.

A thread hand-off costs more on a small machine (~165 µs for a bare ``run_in_executor`` round
trip) than a short guest call (~10 µs of wasm), so a component whose calls are short runs them on
the loop's thread ("inline") and one whose calls are long runs them on worker threads (where the
binding releases the GIL, so long computations of several components overlap).

The choice is made per component from measured call times, and bounded, because a call cannot
be moved once it has started:

* every component starts on workers; after :data:`PROMOTE_AFTER` calls in a row that each took
  at most half the slice, it runs inline (a worker call is timed in CPU time: on a busy host a
  worker waits for the GIL, which the same call on the loop's thread would not; a call that
  waits for something else, a WASI sleep say, then shows as an overstay once it is inline);
* an inline call that takes more than half the slice sends the component back to workers (it
  must earn inline again); one that takes more than the whole slice and either computed for
  half of it or blocked (slept, waited for a disk or a lock) *overstays*: the component is also
  kept on workers for ``BACK_OFF_BASE * 2**(n-1)`` seconds after its n-th overstay (at most
  :data:`BACK_OFF_MAX`), and at least :data:`STALL_RATIO` times as long as that call held
  the loop, so a guest alternating fast and slow calls stalls the loop ever more rarely and
  never for more than about 1 % of the time, however long its slow calls;
  :data:`FORGIVE_AFTER` inline calls in a row within the slice forgive one overstay (a busy
  machine sometimes stretches a short call: that must not, over days, keep a well-behaved
  component off the loop for good; for the same reason a call stretched by the operating
  system preempting it, neither computing nor blocking, is not an overstay: it only pauses
  inlining for :data:`PREEMPTED_RATIO` times its length);
* a guest that calls ``sleep-millis`` once is never inlined again (that first sleep, if it
  was inline, is an overstay like any other);
* a manifest may ask for ``execution = "worker"`` (never inline); the operator's
  ``[limits] inline-slice-us = 0`` turns inlining off for every component; a component whose
  host functions may have to wait for I/O on the loop is never inlined (see
  :class:`~wactor.host.ComponentRuntime`).

The object is touched from the loop's thread and, for worker calls, from one worker thread at a
time (a component runs one call at a time); its fields are plain counters.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

__all__ = [
    "BACK_OFF_BASE",
    "BACK_OFF_MAX",
    "FORGIVE_AFTER",
    "PREEMPTED_RATIO",
    "PROMOTE_AFTER",
    "STALL_RATIO",
    "CallPlacement",
    "InlineClock",
    "PlacementStats",
]

PROMOTE_AFTER = 4
"""Consecutive short calls (each at most half the slice) before a component runs inline."""
BACK_OFF_BASE = 0.05
"""Seconds on workers after the first overstay; doubled for each further one."""
BACK_OFF_MAX = 60.0
STALL_RATIO = 100
"""An overstay keeps the component on workers at least this many times the time it held the loop."""
PREEMPTED_RATIO = 10
"""A call stretched past the slice by preemption pauses inlining this many times its length."""
FORGIVE_AFTER = 10_000
"""Inline calls in a row within the slice that forgive one overstay."""


class InlineClock:
    """Times one inline call: the wall clock, and for a call that was not short, the thread's
    CPU time and whether it left the CPU to sleep or wait.

    Two system calls before the call (~1 µs together: the thread's CPU clock, and
    ``getrusage`` for its count of voluntary context switches, which grows when it sleeps or
    waits for I/O or a lock), two more after a call past half the slice.
    """

    __slots__ = ("_blocks", "_cpu", "_wall")

    def __init__(self) -> None:
        self._blocks = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw
        self._cpu = time.thread_time()  # precise; rusage's CPU times are sampled per tick
        self._wall = time.perf_counter()

    def stop(self, placement: CallPlacement) -> float:
        """Record the call in ``placement``; return how long it took (wall clock, seconds)."""
        wall = time.perf_counter() - self._wall
        if wall <= placement.half_slice_s:
            placement.ran_inline(wall, wall)  # the common case: no more system calls
            return wall
        cpu = time.thread_time() - self._cpu
        blocked = resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw != self._blocks
        placement.ran_inline(wall, cpu, blocked=blocked)
        return wall


@dataclass(frozen=True, slots=True)
class PlacementStats:
    """A snapshot of where a component's calls ran."""

    inline: bool
    allowed: bool
    inline_calls: int
    worker_calls: int
    overstays: int
    longest_inline_us: int
    back_off_s: float


class CallPlacement:
    """Decides, call by call, whether a component's next export call runs inline."""

    __slots__ = (
        "_allowed",
        "_clock",
        "_good",
        "_half",
        "_inline",
        "_slice",
        "_streak",
        "_strikes",
        "_until",
        "inline_calls",
        "longest_inline",
        "overstays",
        "worker_calls",
    )

    def __init__(self, slice_us: int, *, allowed: bool = True) -> None:
        self._slice = slice_us / 1e6
        self._half = self._slice / 2
        self._allowed = allowed and slice_us > 0
        self._clock = time.monotonic
        self._inline = False
        self._streak = 0  # short calls in a row on workers
        self._until = 0.0  # no inline before this clock time (back-off)
        self._strikes = 0  # overstays not yet forgiven
        self._good = 0  # inline calls in a row within the slice
        self.inline_calls = 0
        self.worker_calls = 0
        self.overstays = 0
        self.longest_inline = 0.0

    @property
    def slice_s(self) -> float:
        """The slice in seconds: the longest inline calls should hold the loop at a time."""
        return self._slice

    @property
    def half_slice_s(self) -> float:
        """Half the slice: an inline call within it counts as short."""
        return self._half

    @property
    def inline(self) -> bool:
        """Whether the next call runs on the loop's thread."""
        return self._inline

    def ran_inline(self, seconds: float, cpu: float, *, blocked: bool = False) -> None:
        """Record an inline call that held the loop ``seconds``, ``cpu`` of them on the CPU
        (``blocked``: it slept or waited for I/O or a lock at least once)."""
        self.inline_calls += 1
        self.longest_inline = max(self.longest_inline, seconds)
        if seconds <= self._slice:
            self._good += 1
            if self._good >= FORGIVE_AFTER:
                self._good = 0
                self._strikes = max(0, self._strikes - 1)
            if seconds <= self._half:
                return
        elif cpu <= self._half and not blocked:
            # off the CPU without sleeping or waiting: the machine preempted it. No strike,
            # but a pause on workers in proportion to the stall
            self._good = 0
            self._until = self._clock() + PREEMPTED_RATIO * seconds
        else:
            self._good = 0
            self.overstays += 1
            self._strikes += 1
            growing = min(BACK_OFF_BASE * 2.0 ** min(self._strikes - 1, 40), BACK_OFF_MAX)
            self._until = self._clock() + max(growing, STALL_RATIO * seconds)
        self._inline = False
        self._streak = 0

    def ran_on_worker(self, seconds: float) -> None:
        """Record a call that took ``seconds`` of CPU time on a worker thread."""
        self.worker_calls += 1
        if not self._allowed or seconds > self._half:
            self._streak = 0
            return
        self._streak += 1
        if self._streak >= PROMOTE_AFTER and self._clock() >= self._until:
            self._inline = True

    def demote(self) -> None:
        """Send the component back to workers now (a host function had to wait on the loop)."""
        self._inline = False
        self._streak = 0

    def forbid(self) -> None:
        """Never run this component's calls inline again (its guest sleeps on purpose)."""
        self._allowed = False
        self.demote()

    def statistics(self) -> PlacementStats:
        """Return where calls run now and how they ran so far."""
        return PlacementStats(
            self._inline,
            self._allowed,
            self.inline_calls,
            self.worker_calls,
            self.overstays,
            round(self.longest_inline * 1e6),
            max(0.0, self._until - self._clock()),
        )
