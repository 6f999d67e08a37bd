"""Shared pieces of the benchmark suite: fixtures, stock wasmtime-py callers, statistics, rows.

Nothing here asserts on timing: every number is recorded, none is judged except against the
written targets in the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WAT_DIR = ROOT / "tests" / "fixtures" / "wat"
BENCH_WAT_DIR = BENCH / "wat"  # the benchmark's own guests and peer baselines
CACHE_ROOT = ROOT / ".fixture-cache"
COMPILED_CACHE = CACHE_ROOT / "compiled"

# Like the test suite: every host of the bench shares one compile cache, so a Python guest is
# compiled once per source change, not once per run.
os.environ.setdefault("WACTOR_CACHE_DIR", str(COMPILED_CACHE))

LIFECYCLE = "airssys:core/component-lifecycle@1.0.0"
UNMETERED_FUEL = 1 << 62
FAR_EPOCH = 1 << 40  # ticks: the stock baseline never hits the engine's epoch deadline


# --- fixtures: the test suite's own helpers (tests/conftest.py), so both build and cache the
# --- components the same way ------------------------------------------------------------------

if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
import conftest as _fixtures  # noqa: E402 - needs tests/ on the path first


def wat_binary(name: str) -> Path:
    """Assemble ``tests/fixtures/wat/<name>.wat`` into a component (cached by content)."""
    return _fixtures.wat_binary(name)


def bench_wat(name: str) -> Path:
    """Assemble ``bench/wat/<name>.wat`` (a component or, for Extism, a core module), cached by
    content next to the test fixtures' builds."""
    return _fixtures.wat_binary(name, BENCH_WAT_DIR, prefix="bench-")


def python_guest(name: str = "examples/echo") -> Path:
    """Build (or fetch from the shared build cache) a componentize-py guest."""
    return _fixtures.guest_binary(name)


def write_manifest(
    directory: Path,
    component_id: str,
    wasm: Path,
    *,
    memory: str = "32MiB",
    timeout_ms: int = 10_000,
    extra: str = "",
) -> Path:
    """Write a component.toml for ``wasm`` (one folder per id); a generous default timeout."""
    return _fixtures.write_manifest(
        directory, component_id, wasm, memory=memory, timeout_ms=timeout_ms, extra=extra
    )


KV_EXTRA = '[capabilities.storage]\nquota = "4MiB"\n'


# --- the run's context ----------------------------------------------------------------------


@dataclass
class Ctx:
    """What every figure gets: mode, repetitions, a scratch directory."""

    quick: bool
    reps: int
    scratch: Path
    cache_dir: Path = COMPILED_CACHE
    _py_echo: Path | None = None

    def q(self, full: int, quick: int) -> int:
        """A count for the current mode."""
        return quick if self.quick else full

    def fresh_dir(self, label: str) -> Path:
        path = self.scratch / f"{label}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def py_echo(self) -> Path:
        if self._py_echo is None:
            self._py_echo = python_guest("examples/echo")
        return self._py_echo


def new_ctx(quick: bool) -> Ctx:
    RESULTS.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="wactor-bench-"))
    return Ctx(quick=quick, reps=3 if quick else 5, scratch=scratch)


@contextlib.asynccontextmanager
async def open_host(
    ctx: Ctx, *, cache_dir: Path | None = None, storage: str = "sqlite"
) -> AsyncIterator[Any]:
    """A fresh embedded host (no components) with its state in the scratch directory."""
    from wactor.host import Host, HostConfig

    cfg = dataclasses.replace(
        HostConfig.default(ctx.fresh_dir("state"), trusted_paths=["/"]),  # bench components
        cache_dir=cache_dir or ctx.cache_dir,
        storage=storage,
    )
    async with Host.open(cfg) as host:
        yield host


# --- stock wasmtime-py: what a user would write without wactor ------------------------------


def stock_record(**fields: Any) -> Any:
    """A stock ``wasmtime.component.Record``; attribute names are the WIT names with dashes."""
    from wasmtime.component import Record

    rec = Record()
    for name, value in fields.items():
        setattr(rec, name.replace("_", "-"), value)
    return rec


def stock_message(payload: bytes) -> Any:
    """The ``component-message`` record the host would build for a request from itself."""
    return stock_record(
        sender=stock_record(namespace="wactor", name="host", instance="0"),
        payload=payload,
        metadata=stock_record(
            correlation_id=None,
            reply_to=stock_record(namespace="wactor", name="host", instance="0"),
            timestamp=stock_record(seconds=time.time_ns() // 10**9, nanoseconds=0),
            content_type=None,
        ),
    )


def stock_config() -> Any:
    return stock_record(
        env_vars=[],
        config_data=None,
        resource_limits=stock_record(
            max_memory_bytes=64 << 20, max_execution_time_ms=10_000, max_fuel=None
        ),
    )


def stock_linker(engine: Any, component: Any, *, wasi: bool) -> Any:
    """A stock Linker: WASI 0.2 if asked, and every function import of the world as a stub
    (``add_func`` with a Python callback returning nothing; only ``log`` is ever called, by the
    Python guest's ``initialize``)."""
    from wasmtime.component import ComponentInstanceType, FuncType, Linker

    linker = Linker(engine)
    if wasi:
        linker.add_wasip2()
    imports = component.type.imports(engine)
    with linker.root() as root:
        for name, item in imports.items():
            if name.startswith("wasi:"):
                continue
            ty = getattr(item, "ty", item)
            if not isinstance(ty, ComponentInstanceType):
                continue
            funcs = [n for n, e in ty.exports(engine).items() if isinstance(e.ty, FuncType)]
            if not funcs:
                continue  # type-only interfaces need no definition
            with root.add_instance(name) as inst:
                for fname in funcs:
                    inst.add_func(fname, _stub)
    return linker


def _stub(_store: Any, *_args: Any) -> None:
    return None


class StockInstance:
    """One instance called through stock ``Func.__call__`` + ``post_return``."""

    def __init__(self, engine: Any, linker: Any, component: Any, *, wasi: bool) -> None:
        import wasmtime

        store = wasmtime.Store(engine)
        # The engines of the bench have fuel and epochs on (as the host's): give the stock store
        # an unreachable budget and deadline, as the host does for an unmetered component.
        store.set_fuel(UNMETERED_FUEL)
        store.set_epoch_deadline(FAR_EPOCH)
        store.set_limits(memory_size=64 << 20)
        if wasi:
            store.set_wasi(wasmtime.WasiConfig())
        instance = linker.instantiate(store, component)
        iface = instance.get_export_index(store, LIFECYCLE)
        self.store = store
        self.handle = instance.get_func(
            store, instance.get_export_index(store, "handle-message", iface)
        )
        self._init = instance.get_func(store, instance.get_export_index(store, "initialize", iface))

    def initialize(self) -> None:
        self._init(self.store, stock_config())
        self._init.post_return(self.store)

    def call(self, payload: bytes) -> Any:
        func, store = self.handle, self.store
        result = func(store, stock_message(payload))
        func.post_return(store)
        return result


@dataclass
class StockSetup:
    """A wactor engine's compiled component (same settings, same artifact) for stock calls."""

    engine: Any  # wactor WasmEngine (owns the wasmtime Engine and its epoch ticker)
    component: Any
    linker: Any
    wasi: bool

    def instance(self) -> StockInstance:
        inst = StockInstance(self.engine.engine, self.linker, self.component, wasi=self.wasi)
        inst.initialize()
        return inst

    def close(self) -> None:
        self.engine.close()


def stock_setup(ctx: Ctx, wasm: Path, *, wasi: bool) -> StockSetup:
    from wactor.wasm import WasmEngine

    engine = WasmEngine(ctx.cache_dir)
    loaded = engine.load(wasm.read_bytes(), str(wasm))
    linker = stock_linker(engine.engine, loaded.component, wasi=wasi)
    return StockSetup(engine, loaded.component, linker, wasi)


# --- measuring ------------------------------------------------------------------------------


perf = time.perf_counter


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def rate_sync(fn: Callable[[], Any], n: int) -> float:
    """Calls per second of ``n`` back-to-back calls."""
    start = perf()
    for _ in range(n):
        fn()
    return n / (perf() - start)


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median": median(samples),
        "min": min(samples),
        "max": max(samples),
        "runs": len(samples),
        "samples": samples,
    }


def collect() -> None:
    gc.collect()
    gc.collect()


@dataclass
class Row:
    """One line of the report table; ``ratio`` is always ours / baseline."""

    figure: str
    unit: str
    ours: float | None
    baseline: float | None = None
    target: str | None = None
    met: bool | None = None
    runs: int | None = None
    note: str | None = None
    ratio: float | None = field(default=None)

    def __post_init__(self) -> None:
        if self.ratio is None and self.ours is not None and self.baseline:
            self.ratio = self.ours / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class FigureResult:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
