"""The compute guest of figures 10 and 11: ``bench/wat/spin.wat``, an echo that first runs a
loop when its payload says so ("spin" ++ u32 little-endian rounds), calibrated against wall
time on the machine the benchmark runs on."""

from __future__ import annotations

import struct
from pathlib import Path

from _common import StockInstance, bench_wat, median, perf

CALIBRATION_ROUNDS = 2_000_000


def spin_wasm() -> Path:
    return bench_wat("spin")


def spin_payload(rounds: int) -> bytes:
    """A payload that makes the guest loop ``rounds`` times before echoing it."""
    return b"spin" + struct.pack("<I", max(0, min(rounds, 0xFFFFFFFF)))


def _call_times(stock: StockInstance, payload: bytes, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = perf()
        reply = stock.call(payload)
        times.append(perf() - start)
        if reply != payload:
            raise RuntimeError("spin guest did not echo its payload")
    return times


def rounds_per_ms(stock: StockInstance) -> float:
    """Loop rounds per millisecond of one stock call: the fastest of a few calls (the others
    were interrupted by other work on the machine), less the fixed cost of a call."""
    fixed = min(_call_times(stock, spin_payload(0), 9))
    took = min(_call_times(stock, spin_payload(CALIBRATION_ROUNDS), 15))
    return CALIBRATION_ROUNDS / max((took - fixed) * 1e3, 1e-3)


def compute_ms(stock: StockInstance, payload: bytes) -> float:
    """The median wall time of one stock call with ``payload``, in ms."""
    return median(_call_times(stock, payload, 5)) * 1e3
