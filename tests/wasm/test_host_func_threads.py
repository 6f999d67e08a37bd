"""A host function called for the first time on two threads at once: each call gets the whole
signature (read from its type on first use), never half of one."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from wasmtime.component import _types

from conftest import ManifestFactory, wat_binary
from wactor.host import Host, HostConfig
from wactor.wasm import _calling

STORAGE = '[capabilities.storage]\nquota = "1MiB"\n'


async def test_first_calls_of_a_host_function_on_two_threads_at_once(
    host_config: HostConfig, manifest: ManifestFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _calling.compile_type

    def slow_results(ty: Any) -> _calling.Converter:
        # Reading a result type takes a while on a worker: the other thread's first call of the
        # same host function arrives meanwhile (its parameters are known by then).
        if isinstance(ty, _types.ResultType) and threading.current_thread() is not (
            threading.main_thread()
        ):
            time.sleep(0.3)
        return real(ty)

    monkeypatch.setattr(_calling, "compile_type", slow_results)
    async with Host.open(host_config) as host:  # its own linker: nothing read yet
        for k in range(2):
            await host.start(manifest(f"t/kv{k}/0", wat_binary("kv"), extra=STORAGE))
        replies = await asyncio.gather(
            *(host.request(f"t/kv{k}/0", b"value %d" % k, timeout=30) for k in range(2))
        )
    assert replies == [b"value 0", b"value 1"]
