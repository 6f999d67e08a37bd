"""The peer and decomposition baselines of the call figures.

* :class:`ExtismEcho`: Extism's Python SDK (PyPI ``extism``) calling ``bench/wat/extism_echo.wat``,
  a hand-written plugin that returns its input: what a user choosing a plugin host compares.
* :class:`StringEcho`: a stock wasmtime-py call of ``bench/wat/string_echo.wat``'s
  ``echo(string) -> string`` with a Python ``str``: the binding's memcpy path, the fastest way
  bulk data crosses a stock component call.
* :class:`DirectInstance`: our calling layer (``ComponentInstance.handle_message``) called
  straight from Python, no host around it: what a request costs without the mailbox, actor,
  broker and thread hand-off.
* :func:`executor_round_trip_rate`: a bare ``loop.run_in_executor(None, int)`` round trip, the
  floor of any call that crosses to a worker thread and back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from _common import FAR_EPOCH, UNMETERED_FUEL, bench_wat, perf


class BaselineUnavailable(Exception):
    """A peer baseline cannot run here (its package is missing); the figure reports why."""


class ExtismEcho:
    """One Extism plugin instance; :meth:`call` is ``plugin.call("echo", payload)``."""

    def __init__(self) -> None:
        try:
            import extism
        except ImportError as exc:
            raise BaselineUnavailable(
                "extism is not installed (pip install extism; it is in the dev extra)"
            ) from exc
        self.version = _dist_version("extism")
        self.plugin: Any = extism.Plugin(
            bench_wat("extism_echo").read_bytes(), wasi=False, functions=[]
        )

    def call(self, payload: bytes) -> bytes:
        out: bytes = self.plugin.call("echo", payload)
        return out

    def close(self) -> None:
        self.plugin.__exit__(None, None, None)  # frees the plugin now, not at collection


class StringEcho:
    """A stock instance of the ``string`` echo on a wactor engine's wasmtime engine (same
    settings as every other stock call: fuel and epochs on, unreachable budget and deadline)."""

    def __init__(self, engine: Any) -> None:
        import wasmtime
        from wasmtime.component import Component, Linker

        component = Component(engine, bench_wat("string_echo").read_bytes())
        store = wasmtime.Store(engine)
        store.set_fuel(UNMETERED_FUEL)
        store.set_epoch_deadline(FAR_EPOCH)
        store.set_limits(memory_size=64 << 20)
        instance = Linker(engine).instantiate(store, component)
        index = instance.get_export_index(store, "echo")
        func = instance.get_func(store, index) if index is not None else None
        if func is None:
            raise RuntimeError("bench/wat/string_echo.wat does not export echo")
        self.store = store
        self.func = func

    def call(self, text: str) -> str:
        func, store = self.func, self.store
        out: str = func(store, text)
        func.post_return(store)
        return out


class _BenchContext:
    """The guest context of a component that imports nothing (the WAT echo)."""

    def __init__(self, component_id: Any) -> None:
        self.component_id = component_id
        self.storage = None
        self.storage_quota = 0


class DirectInstance:
    """One ``ComponentInstance`` of a guest that imports nothing, on a wactor engine, called
    through ``handle_message`` with an envelope built per call, as the host builds one per
    request (kind ``request``, a correlation id, reply-to the host)."""

    def __init__(self, engine: Any, wasm: Path, *, memory: int = 32 << 20) -> None:
        from wactor import ComponentId
        from wactor.wasm import ComponentInstance, InstanceLimits, build_linker

        loaded = engine.load(wasm.read_bytes(), str(wasm))
        self.target = ComponentId("bench", "direct", "0")
        self.sender = ComponentId("wactor", "host", "0")
        self.instance = ComponentInstance(
            engine,
            build_linker(engine),
            loaded,
            context=_BenchContext(self.target),  # type: ignore[arg-type]
            limits=InstanceLimits(memory, 10_000),
        )
        self.instance.initialize()
        self._n = 0

    def call(self, payload: bytes) -> bytes | None:
        from wactor.messaging import Envelope

        self._n += 1
        env = Envelope(
            self.sender,
            self.target,
            payload,
            kind="request",
            correlation_id=f"bench-{self._n:012d}",
            reply_to=self.sender,
        )
        return self.instance.handle_message(env)

    def close(self) -> None:
        self.instance.close()


async def executor_round_trip_rate(n: int) -> float:
    """Round trips/s of ``await loop.run_in_executor(None, int)``, one at a time."""
    loop = asyncio.get_running_loop()
    run = loop.run_in_executor
    start = perf()
    for _ in range(n):
        await run(None, int)
    return n / (perf() - start)


def _dist_version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
