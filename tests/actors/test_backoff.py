"""Backoff delays grow exponentially, stay jittered within bounds and never pass the maximum."""

from __future__ import annotations

import random

from wactor.actors import Backoff


def test_backoff_grows_and_is_bounded() -> None:
    backoff = Backoff(initial=0.01, maximum=0.5, factor=2.0, jitter=0.0)
    delays = [backoff.delay(n) for n in range(10)]
    assert delays[:4] == [0.01, 0.02, 0.04, 0.08]
    assert delays == sorted(delays)
    assert max(delays) == 0.5


def test_jitter_stays_within_its_band_and_under_the_maximum() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, factor=2.0, jitter=0.2)
    rng = random.Random(7)
    for attempt in range(8):
        base = min(1.0, 0.1 * 2**attempt)
        for _ in range(200):
            d = backoff.delay(attempt, rng)
            assert base * 0.8 - 1e-9 <= d <= min(1.0, base * 1.2) + 1e-9
