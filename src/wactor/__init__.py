"""wactor: host sandboxed WebAssembly components as supervised actors."""

from wactor import errors
from wactor._ids import ComponentId
from wactor.host import Host, HostConfig

__all__ = ["ComponentId", "Host", "HostConfig", "errors"]
