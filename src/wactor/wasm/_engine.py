"""The wasmtime engine of a host: settings, epoch ticker, loading and checking components.

One engine serves every component of a host.

* Trust on exact bytes: :meth:`WasmEngine.read_wasm` gives a wasm file's sha256 as
  :class:`WasmBytes` (remembered under the file's stat stamp, see :mod:`wactor.wasm._source`);
  trust is decided on that digest and :meth:`WasmEngine.load_bytes` runs only code compiled from
  bytes with it. The digest keys the components this engine has loaded (kept while a component
  uses one, so its restarts share it) and the compile cache.
* The compile cache (:mod:`wactor.wasm._cache`) only serves an entry that this user's hosts
  wrote for that digest under the same settings and wasmtime version: each entry carries an
  HMAC under a secret key kept beside the cache, checked before the artifact is deserialized.
* The adapter: with ``fast_path`` on, a guest is wrapped (:mod:`wactor.wasm._fastpath`) in a
  component whose extra export takes a message as two strings and a few scalars (payload and
  metadata each one buffer, instead of a C value per field and per byte) and builds the
  guest's record inside wasm. The wrapped build is cached under the guest's digest,
  the fast interface's name and the adapter's own digest; a guest that cannot be wrapped is
  loaded as it is, and the cache remembers not to try again.
* Limits: a ticker thread bumps the engine epoch every ``tick_ms``; running wasm reaches an
  epoch check every few ticks, where its instance compares the clock with the call's wall-clock
  deadline (:mod:`wactor.wasm._instance`). Fuel is always on at the engine level (a component
  without a fuel budget simply gets an unreachable one), so budgets can differ per component
  without compiling twice.
* Every component is checked against the ``runtime-host`` world: it exports the lifecycle
  interface with all its functions and imports nothing but the world's interfaces and WASI.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime.component import Component, ComponentInstanceType, FuncType

from wactor._files import MAX_WASM_BYTES
from wactor._text import escape_controls
from wactor.errors import InvalidComponentError
from wactor.wasm._cache import CacheStats, CompileCache
from wactor.wasm._fastpath import FAST_INTERFACE, adapter_wat, wrap_component
from wactor.wasm._source import WasmBytes, read_wasm

__all__ = [
    "LIFECYCLE_EXPORTS",
    "LIFECYCLE_INTERFACE",
    "MAX_WASM_BYTES",
    "EngineSettings",
    "LoadedComponent",
    "WasmBytes",
    "WasmEngine",
    "check_binary_kind",
]

LIFECYCLE_INTERFACE = "airssys:core/component-lifecycle@1.0.0"
LIFECYCLE_EXPORTS = (
    "initialize",
    "handle-message",
    "handle-callback",
    "metadata",
    "health",
    "shutdown",
)
WORLD_IMPORTS = (
    "airssys:core/types@1.0.0",
    "airssys:core/errors@1.0.0",
    "airssys:core/host-messaging@1.0.0",
    "airssys:core/host-services@1.0.0",
    "airssys:core/storage@1.0.0",
    "wactor:topics/pubsub@0.1.0",  # the topics extension (its own package)
    "wactor:http/client@0.1.0",  # outbound HTTP (its own package)
)

_MAGIC = b"\x00asm"
# Part of the cache key of wrapped guests: a changed adapter never reuses an old build.
ADAPTER_DIGEST = hashlib.sha256(adapter_wat().encode()).hexdigest()[:16]
_CORE_VERSION = b"\x01\x00\x00\x00"
_COMPONENT_LAYER = b"\x0d\x00\x01\x00"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Engine-wide settings; every one of them is part of the compile-cache key."""

    # Small reservations keep thousands of instances within reach of the address space; memory
    # that outgrows its reservation moves (a copy), which only memory-hungry guests pay for.
    memory_reservation: int = 64 << 20
    memory_guard_size: int = 64 << 10
    memory_reservation_for_growth: int = 16 << 20
    max_wasm_stack: int = 1 << 20
    tick_ms: int = 5
    opt_level: str = "speed"
    fast_path: bool = True  # wrap guests so byte-list payloads cross as strings

    def fingerprint(self) -> str:
        """A stable string naming every setting that changes the compiled code."""
        fields = asdict(self)
        fields.pop("tick_ms")  # only the ticker uses it; compiled code does not depend on it
        fields.pop("fast_path")  # wrapped and plain builds have different cache keys anyway
        return ",".join(f"{k}={v}" for k, v in sorted(fields.items()))


@dataclass(frozen=True, slots=True, weakref_slot=True)
class LoadedComponent:
    """A compiled component that fits the world, ready to instantiate many times."""

    component: Component
    digest: str
    imports: tuple[str, ...]
    # compiled export signatures, filled by the first instance and shared by the next ones
    signatures: dict[str, Any] = field(default_factory=dict)
    fast: bool = False  # wrapped: payloads cross as latin-1 strings through wactor:fast


class _NoFastPath(Exception):
    """The guest cannot be wrapped; load it as it is."""


def check_binary_kind(data: bytes, path: str) -> None:
    """Refuse garbage and core modules with a clear one-line reason."""
    if len(data) < 8 or data[:4] != _MAGIC:
        raise InvalidComponentError("not a WebAssembly binary (bad magic bytes)", path=path)
    version = data[4:8]
    if version == _CORE_VERSION:
        raise InvalidComponentError(
            "is a core wasm module, not a component (wrap it with `wasm-tools component new`)",
            path=path,
        )
    if version != _COMPONENT_LAYER:
        raise InvalidComponentError(
            f"unsupported wasm version/layer {version.hex()} (expected a component)", path=path
        )


class WasmEngine:
    """A wasmtime engine with its epoch ticker and compile cache."""

    def __init__(self, cache_dir: Path | None, settings: EngineSettings | None = None) -> None:
        self.settings = settings or EngineSettings()
        cfg = wasmtime.Config()
        cfg.wasm_component_model = True
        cfg.epoch_interruption = True
        cfg.consume_fuel = True
        cfg.memory_reservation = self.settings.memory_reservation
        cfg.memory_guard_size = self.settings.memory_guard_size
        cfg.memory_reservation_for_growth = self.settings.memory_reservation_for_growth
        cfg.max_wasm_stack = self.settings.max_wasm_stack
        cfg.cranelift_opt_level = self.settings.opt_level
        self.engine = wasmtime.Engine(cfg)
        self.cache = (
            CompileCache(cache_dir, self.settings.fingerprint()) if cache_dir is not None else None
        )
        # Weak: a compiled component stays loaded while a component uses it (restarts reuse
        # it) and is released with the last one; starting it again deserializes it (~ms).
        self._loaded: weakref.WeakValueDictionary[str, LoadedComponent] = (
            weakref.WeakValueDictionary()
        )
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="wactor-epoch", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        interval = self.settings.tick_ms / 1000
        while not self._stop.wait(interval):
            self.engine.increment_epoch()

    def cache_statistics(self) -> CacheStats | None:
        """Return the compile cache's counts, if a cache is configured."""
        return self.cache.statistics() if self.cache is not None else None

    def read_wasm(self, path: Path) -> WasmBytes:
        """The wasm file at ``path`` and its sha256, read and hashed only when the file changed
        since this user's hosts last did; raise ``OSError`` if it cannot be read."""
        return read_wasm(path, self.cache)

    def load(self, data: bytes, path: str) -> LoadedComponent:
        """Compile (or fetch from cache) ``data`` and check that it fits the world."""
        return self.load_bytes(WasmBytes.of(data, path))

    def load_bytes(self, source: WasmBytes) -> LoadedComponent:
        """Compile (or fetch from cache) the bytes with ``source.digest``, the digest trust was
        decided on.

        A cache entry is looked up by that digest and is used only when this user's hosts made it
        from bytes with that digest (see ``_cache``); bytes compiled here are ``source``'s, read
        and checked against the digest if they were not held (see ``_source``).
        """
        path, digest = source.path, source.digest
        check_binary_kind(source.head, path)
        with self._load_lock:
            loaded = self._loaded.get(digest)
            if loaded is not None:
                return loaded
            data = functools.cache(source.contents)  # read (and checked) once, if at all

            def compile_plain() -> Component:
                try:
                    return Component(self.engine, data())
                except wasmtime.WasmtimeError as exc:
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
                    raise InvalidComponentError(
                        f"not a valid component: {first}", path=path
                    ) from exc

            def compile_fast() -> Component:
                try:
                    return Component(self.engine, wrap_component(data()))
                except (ValueError, wasmtime.WasmtimeError) as exc:
                    raise _NoFastPath from exc

            component, fast = self._compile(digest, compile_fast, compile_plain)
            imports = check_world(component, self.engine, path)
            loaded = LoadedComponent(component, digest, imports, fast=fast)
            self._loaded[digest] = loaded
            return loaded

    def _compile(
        self,
        digest: str,
        compile_fast: Callable[[], Component],
        compile_plain: Callable[[], Component],
    ) -> tuple[Component, bool]:
        """The wrapped (fast-path) component when the guest can be wrapped, else the guest."""
        cache = self.cache
        fast_key = _fast_key(digest)
        if self.settings.fast_path and not (cache is not None and cache.is_marked(fast_key)):
            try:
                if cache is None:
                    return compile_fast(), True
                return cache.load_or_compile(self.engine, fast_key, compile_fast), True
            except _NoFastPath:
                if cache is not None:
                    cache.mark(fast_key)  # don't try (and fail) to wrap it again
        if cache is None:
            return compile_plain(), False
        return cache.load_or_compile(self.engine, digest, compile_plain), False

    def close(self) -> None:
        """Stop the epoch ticker; idempotent."""
        self._stop.set()
        if self._ticker.is_alive() and threading.current_thread() is not self._ticker:
            self._ticker.join(timeout=1)


def _fast_key(digest: str) -> str:
    """The compile-cache key of a guest's wrapped (fast-path) build."""
    return f"{digest}+{FAST_INTERFACE}+{ADAPTER_DIGEST}"


def check_world(component: Component, engine: wasmtime.Engine, path: str) -> tuple[str, ...]:
    """Check exports and imports against ``runtime-host``; return the import names."""
    ctype = component.type
    exports = ctype.exports(engine)
    lifecycle = exports.get(LIFECYCLE_INTERFACE)
    if lifecycle is None:
        raise InvalidComponentError(
            f"does not export {LIFECYCLE_INTERFACE} (exports: "
            f"{', '.join(sorted(exports)) or 'none'})",
            path=path,
        )
    item = lifecycle.ty
    if not isinstance(item, ComponentInstanceType):
        raise InvalidComponentError(f"{LIFECYCLE_INTERFACE} is not an instance", path=path)
    funcs = item.exports(engine)
    missing = [
        name
        for name in LIFECYCLE_EXPORTS
        if name not in funcs or not isinstance(funcs[name].ty, FuncType)
    ]
    if missing:
        raise InvalidComponentError(f"{LIFECYCLE_INTERFACE} lacks {', '.join(missing)}", path=path)
    imports = tuple(ctype.imports(engine))
    foreign = [
        name for name in imports if name not in WORLD_IMPORTS and not name.startswith("wasi:")
    ]
    if foreign:
        raise InvalidComponentError(
            # a `url=<...>` import name may hold any text: the guest's, so escaped
            "imports interfaces outside the runtime-host world: "
            + escape_controls(", ".join(foreign)),
            path=path,
        )
    return imports
