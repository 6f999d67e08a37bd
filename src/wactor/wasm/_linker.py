"""The linker shared by every instance of a host: WASI 0.2 plus the world's host functions."""

from __future__ import annotations

from wasmtime.component import Linker

from wactor.wasm._engine import WasmEngine
from wactor.wasm._host_http import define_http
from wactor.wasm._host_messaging import define_messaging
from wactor.wasm._host_services import define_services
from wactor.wasm._host_storage import define_storage
from wactor.wasm._host_topics import define_topics

__all__ = ["build_linker"]


def build_linker(engine: WasmEngine) -> Linker:
    """Make a linker defining every import of ``runtime-host``, its extensions and WASI 0.2.

    Host functions find their caller through the thread's guest context, so one linker serves
    every component of the host.
    """
    linker = Linker(engine.engine)
    linker.add_wasip2()
    with linker.root() as root:
        define_messaging(root)
        define_services(root)
        define_storage(root)
        define_topics(root)
        define_http(root)
    return linker
