"""One live instance of a component: its Store, its exports, its limits, its faults.

Every export call is bounded: a wall-clock deadline through the engine epoch, a fuel budget when the
manifest sets one, linear memory through store limits. A call that traps, times out or hits a limit
raises a :class:`~wactor.errors.ComponentFault` and leaves the instance ``poisoned``: the owner must
discard it and make a new one. Calls are blocking; the host runs short ones on its loop's thread
and long ones on worker threads.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime._ffi as ffi
from wasmtime.component import Linker, Variant

from wactor._text import escape_controls
from wactor.errors import (
    ComponentError,
    ComponentFault,
    ExecutionTimeoutError,
    GuestError,
    InstantiationError,
    InvalidComponentError,
    ResourceLimitError,
    TrapError,
)
from wactor.messaging._envelope import Envelope
from wactor.wasm._calling import ExportFunc, HostFuncError, last_host_exception
from wactor.wasm._context import DeadlineExceeded, GuestContext, using_context
from wactor.wasm._engine import LIFECYCLE_EXPORTS, LIFECYCLE_INTERFACE, LoadedComponent, WasmEngine
from wactor.wasm._fastcall import FAST_PARAMS, FastExport, FastMessages
from wactor.wasm._fastpath import FAST_HANDLE_CALLBACK, FAST_HANDLE_MESSAGE, FAST_INTERFACE
from wactor.wasm._faults import (
    StderrTail,
    instantiation_failure,
    linear_memory_sizes,
    memory_headroom,
    reports_out_of_memory,
    size_in_words,
)
from wactor.wasm._records import config_record, message_record

__all__ = ["ComponentInstance", "FuelMeter", "GuestMetadata", "InstanceLimits", "WasiSpec"]

# Fuel is always metered (engine-wide); a component without a budget gets one it cannot exhaust.
_UNMETERED_FUEL = 1 << 62

# Running wasm reaches an epoch deadline every _CHECK_TICKS ticks; the callback then decides in
# Python whether the call is past its wall-clock limit or was cancelled (trap), or goes on.
_CHECK_TICKS = 2
_DEADLINE_TRAP = "wactor: wall-clock deadline reached"
_CANCEL_TRAP = "wactor: cancelled by the host"
_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE

_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ctypes.c_uint8),
)
# Weak: the Store's callback must not keep its own instance (and so the Store) alive. No lock:
# _forget runs inside a Store's deletion, which the garbage collector may start anywhere.
_watched: dict[int, weakref.ref[ComponentInstance]] = {}
_next_key = itertools.count(1)


@_DeadlineCallback  # type: ignore[untyped-decorator]
def _on_deadline(context: Any, data: Any, delta: Any, kind: Any) -> int:
    ref = _watched.get(data or 0)
    instance = ref() if ref is not None else None
    verdict = instance._verdict() if instance is not None else None
    if verdict is not None:
        error = wasmtime.WasmtimeError(verdict)
        return ctypes.cast(error._consume(), ctypes.c_void_p).value or 0
    delta[0] = _CHECK_TICKS
    kind[0] = _CONTINUE
    return 0


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # type: ignore[untyped-decorator]
def _forget(data: Any) -> None:
    _watched.pop(data or 0, None)


# What every call sets in its Store, through our own prototypes taking the context's address
# (item access gives fresh function objects: the binding's stay untouched): the binding's
# Store.set_* wrappers cost more than the wasm call of a small message.
_set_epoch_deadline = ffi.dll["wasmtime_context_set_epoch_deadline"]
_set_epoch_deadline.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
_set_epoch_deadline.restype = None
_set_fuel = ffi.dll["wasmtime_context_set_fuel"]
_set_fuel.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
_set_fuel.restype = ctypes.c_void_p
_get_fuel = ffi.dll["wasmtime_context_get_fuel"]
_get_fuel.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64)]
_get_fuel.restype = ctypes.c_void_p
_ERROR_POINTER = ctypes.POINTER(ffi.wasmtime_error_t)


@dataclass(frozen=True, slots=True)
class InstanceLimits:
    """Per-call and per-instance limits of one component."""

    memory_bytes: int
    timeout_ms: int
    fuel: int | None = None
    # store-wide caps from the host's [limits] (-1: wasmtime's default, unlimited)
    table_elements: int = -1
    instances: int = -1
    tables: int = -1
    memories: int = -1


@dataclass(frozen=True, slots=True)
class WasiSpec:
    """What the instance's WASI sees: preopened directories and environment, nothing else."""

    env: tuple[tuple[str, str], ...] = ()
    read_dirs: tuple[tuple[str, str], ...] = ()  # (host path, guest path)
    write_dirs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class GuestMetadata:
    """What the guest's ``metadata`` export says about itself."""

    name: str
    version: str
    description: str
    author: str
    license: str
    supported_operations: tuple[str, ...]
    stateful: bool


def _wasi_config(
    spec: WasiSpec, output: Callable[[bytes], None] | None, stderr: StderrTail
) -> wasmtime.WasiConfig:
    cfg = wasmtime.WasiConfig()
    if spec.env:
        cfg.env = [list(pair) for pair in spec.env]
    for host, guest in spec.read_dirs:
        _preopen(cfg, host, guest, mutable=False)
    for host, guest in spec.write_dirs:
        _preopen(cfg, host, guest, mutable=True)
    # No network for any guest, whatever its manifest: wasmtime's WASI denies TCP and UDP unless
    # told otherwise (and its C API cannot allow them per address); name lookups are denied too,
    # said here again so that a changed default cannot open a DNS channel.
    ffi.wasi_config_allow_ip_name_lookup(cfg.ptr(), False)
    if output is not None:
        cfg.stdout_custom = output

    def on_stderr(data: bytes) -> None:
        stderr.write(data)  # kept (bounded) for the fault message of a trap
        if output is not None:
            output(data)

    cfg.stderr_custom = on_stderr
    return cfg


def _preopen(cfg: wasmtime.WasiConfig, host: str, guest: str, *, mutable: bool) -> None:
    """Preopen ``host`` (a path resolved when it was checked) for the guest as ``guest``.

    The path was checked once (the gate refuses the state directory, the cache, trust
    material), but a guest that may write one of its parents can rename it and plant a
    symbolic link before its next restart. So the directory is opened one component at a
    time without following any link, and wasmtime is handed that very directory.
    """
    fd = _open_checked_dir(host)
    try:
        opened = host if fd is None else str(_PROC_FD / str(fd))
        cfg.preopen_dir(opened, guest, fs_mutable=mutable)
    except wasmtime.WasmtimeError as exc:
        # The manifest loader checked the directory; it was removed or replaced since.
        raise InstantiationError(
            f"cannot open directory {host} for the guest (it must exist and be a directory)"
        ) from exc
    finally:
        if fd is not None:
            os.close(fd)


_PROC_FD = Path("/proc/self/fd")


def _open_checked_dir(host: str) -> int | None:
    """A descriptor of directory ``host`` reached through no symbolic link (``None`` where
    there is no ``/proc/self/fd`` to hand it over: then the path must still resolve to itself).
    """
    path = Path(os.path.abspath(host))
    if not _PROC_FD.is_dir():
        if os.path.realpath(path) != str(path):
            raise InstantiationError(_swapped(host, path))
        return None
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    walked = Path("/")
    try:
        for part in path.parts[1:]:
            walked /= part
            try:
                step = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd
                )
            except OSError as exc:
                if walked.is_symlink():
                    raise InstantiationError(_swapped(host, walked)) from exc
                raise InstantiationError(
                    f"cannot open directory {host} for the guest ({walked}: "
                    f"{exc.strerror or exc}; it must exist and be a directory)"
                ) from exc
            os.close(fd)
            fd = step
    except BaseException:
        os.close(fd)
        raise
    return fd


def _swapped(host: str, link: Path) -> str:
    return (
        f"directory {host} is not where it was checked: a symbolic link now stands in its path "
        f"({link}); the guest cannot be given it (restart the host to check it again)"
    )


class FuelMeter:
    """The fuel that a component's instances have used, summed over all of them.

    Shared by the successive instances of one component (a restart makes a new one); written
    by the thread of the call, one call at a time, and read by anyone.
    """

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = 0


class ComponentInstance:
    """A Store plus an instance of one component, with compiled export signatures."""

    def __init__(
        self,
        engine: WasmEngine,
        linker: Linker,
        loaded: LoadedComponent,
        *,
        context: GuestContext,
        limits: InstanceLimits,
        wasi: WasiSpec | None = None,
        output: Callable[[bytes], None] | None = None,
        fuel_meter: FuelMeter | None = None,
    ) -> None:
        self._engine = engine
        self.context = context
        self.limits = limits
        self.poisoned = False
        self.calls = 0
        # held while a call uses the Store: close() waits for a call still running (one whose
        # caller gave up on it) instead of freeing the Store under it
        self._lock = threading.Lock()
        self._closed = False
        self._label = str(context.component_id)
        self._stderr = StderrTail()
        store = wasmtime.Store(engine.engine)
        store.set_limits(
            limits.memory_bytes,
            limits.table_elements,
            limits.instances,
            limits.tables,
            limits.memories,
        )
        self._deadline = float("inf")
        self._cancelled = False
        key = next(_next_key)
        _watched[key] = weakref.ref(self)
        ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), _on_deadline, key, _forget)
        store.set_wasi(_wasi_config(wasi or WasiSpec(), output, self._stderr))
        self._store = store
        # what _arm sets before every call, in the form the C API takes it
        self._context: int = ctypes.cast(store._context(), ctypes.c_void_p).value or 0
        self._timeout_s = limits.timeout_ms / 1000
        self._fuel = limits.fuel if limits.fuel is not None else _UNMETERED_FUEL
        # An unmetered instance gets its unreachable budget once; a metered one before each call.
        self._metered = limits.fuel is not None
        self._fuel_mark = self._fuel  # the fuel left when the current call began
        self._set_fuel()
        self._meter = fuel_meter
        self._fuel_left = ctypes.c_uint64()
        self._fuel_left_ptr = ctypes.pointer(self._fuel_left)
        self._arm()
        try:
            with using_context(context):
                instance = linker.instantiate(store, loaded.component)
            self._count_fuel()  # what a start function used
        except wasmtime.WasmtimeError as exc:
            reason = instantiation_failure(escape_controls(_first_line(exc)), limits.memory_bytes)
            store.close()
            last_host_exception()  # a host function's error here must not leak into a later call
            raise InstantiationError(
                f"{self._label}: instantiation failed: {reason}", component=self._label
            ) from exc
        iface = instance.get_export_index(store, LIFECYCLE_INTERFACE)
        if iface is None:
            raise InvalidComponentError(f"does not export {LIFECYCLE_INTERFACE}", path=self._label)
        funcs: dict[str, ExportFunc] = {}
        for name in LIFECYCLE_EXPORTS:
            idx = instance.get_export_index(store, name, iface)
            func = instance.get_func(store, idx) if idx is not None else None
            if func is None:
                raise InvalidComponentError(f"{LIFECYCLE_INTERFACE} lacks {name}", path=self._label)
            funcs[name] = ExportFunc(func, name, loaded.signatures)
        fast = _fast_exports(instance, store, loaded, self._label) if loaded.fast else {}
        self.fast = bool(fast)
        self._funcs: dict[str, ExportFunc | FastExport] = {**funcs, **fast}

    # -- limits and faults ---------------------------------------------------------------------

    def _arm(self) -> None:
        """Give the next call its wall-clock deadline, its epoch check and (metered) its fuel."""
        self._deadline = time.monotonic() + self._timeout_s
        _set_epoch_deadline(self._context, _CHECK_TICKS)
        if self._metered:
            self._set_fuel()

    def _set_fuel(self) -> None:
        err = _set_fuel(self._context, self._fuel)
        if err:  # only when the engine does not meter fuel, which ours always does
            raise wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, _ERROR_POINTER))
        self._fuel_mark = self._fuel

    def count_fuel(self) -> None:
        """Bring the fuel meter up to date now, unless a call is running (never waits).

        A metered instance counts after each call (it must, before its budget is reset); an
        unmetered one costs its calls nothing: its meter is brought up to date here, by
        whoever reads the meter, and when the instance is closed.
        """
        if self._meter is None or not self._lock.acquire(blocking=False):
            return
        try:
            if not self._closed:
                self._count_fuel()
        finally:
            self._lock.release()

    def _count_fuel(self) -> None:
        """Add the fuel used since the mark to the meter (one C call; holding the lock)."""
        meter = self._meter
        if meter is None:
            return
        err = _get_fuel(self._context, self._fuel_left_ptr)
        if err:  # as in _set_fuel: not with our engine
            wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, _ERROR_POINTER))
            return
        left = self._fuel_left.value
        meter.used += self._fuel_mark - left
        self._fuel_mark = left

    def _verdict(self) -> str | None:
        """Decide at an epoch check: trap (with the reason) or let the guest go on."""
        if self._cancelled:
            return _CANCEL_TRAP
        if time.monotonic() >= self._deadline:
            return _DEADLINE_TRAP
        return None

    def cancel(self) -> None:
        """Stop the running call (from any thread) at its next epoch check; poisons the instance.

        Used at shutdown to end a component stuck in a loop without waiting for its limit.
        """
        self._cancelled = True

    def _call(self, name: str, *args: Any, subject: str | None = None) -> Any:
        with self._lock:
            if self._closed:
                raise ComponentError(f"{self._label}: instance was stopped", component=self._label)
            return self._call_store(name, *args, subject=subject)

    def _call_store(self, name: str, *args: Any, subject: str | None = None) -> Any:
        if self.poisoned:
            raise ComponentError(
                f"{self._label}: instance was discarded after a fault", component=self._label
            )
        if self._cancelled:
            raise ComponentError(f"{self._label}: instance was cancelled", component=self._label)
        self._arm()
        self._stderr.clear()
        try:
            with using_context(self.context, self._deadline, subject):
                return self._funcs[name](self._store, *args)
        except HostFuncError as exc:
            self.poisoned = True
            if isinstance(exc.cause, DeadlineExceeded):
                raise self._fault(name, exc, timeout=True) from None
            cause = exc.cause
            raise TrapError(
                f"{self._label}: {_export(name)}: host function raised {type(cause).__name__}: "
                f"{_first_line(cause)}",
                component=self._label,
            ) from cause
        except wasmtime.WasmtimeError as exc:
            self.poisoned = True
            last_host_exception()  # a stale record must not leak into the next call
            raise self._fault(name, exc) from exc
        finally:
            self.calls += 1
            if self._metered:
                self._count_fuel()

    def _fault(self, name: str, exc: Exception, *, timeout: bool = False) -> ComponentFault:
        text = _cause(str(exc))  # the backtrace names guest functions: the guest chose them
        lowered = text.lower()
        label = self._label
        export = _export(name)  # the WIT export the user knows, not the fast-path adapter's
        if _CANCEL_TRAP in text:
            return TrapError(f"{label}: {export} was cancelled by the host", component=label)
        if timeout or _DEADLINE_TRAP in text or "interrupt" in lowered:
            return ExecutionTimeoutError(
                f"{label}: {export} timed out after {self.limits.timeout_ms} ms",
                timeout_ms=self.limits.timeout_ms,
                component=label,
            )
        if "fuel" in lowered:
            return ResourceLimitError(
                f"{label}: {export} used up its fuel budget of {self.limits.fuel}",
                limit="fuel",
                component=label,
            )
        guest_line = self._stderr.last_error()
        if self._memory_exhausted(lowered, guest_line):
            noted = guest_line and not reports_out_of_memory(guest_line)
            said = f" ({guest_line})" if noted else ""
            return ResourceLimitError(
                f"{label}: memory limit of {size_in_words(self.limits.memory_bytes)} reached{said}",
                limit="memory",
                component=label,
            )
        reason = guest_line or _trap_summary(text)
        return TrapError(f"{label}: {export} trapped: {reason}", component=label)

    def _memory_exhausted(self, lowered: str, guest_line: str | None) -> bool:
        """Whether a trap came from the memory cap (see :mod:`wactor.wasm._faults`)."""
        if any(s in lowered for s in ("memory allocation", "out of memory", "memory limit")):
            return True
        if reports_out_of_memory(guest_line):
            return True
        cap = self.limits.memory_bytes
        sizes = linear_memory_sizes(self._store) or []
        return any(size + memory_headroom(cap) > cap for size in sizes)

    def close(self) -> None:
        """Release the Store now (linear memory, instance, WASI state); idempotent.

        Blocks until a call still running in it ends (a cancelled one ends at its next epoch
        check); later calls fail. Releasing does not wait for the garbage collector, so an
        error traceback or a worker thread that still holds this object holds nothing big.
        """
        with self._lock:
            if not self._closed:
                self._count_fuel()
            self._closed = self.poisoned = True
            self._funcs = {}
            self._store.close()

    # -- the exports ---------------------------------------------------------------------------

    def initialize(self, env: Sequence[tuple[str, str]] = (), data: bytes | None = None) -> None:
        """Call ``initialize``; a guest ``err`` raises :class:`ComponentError`."""
        limits = self.limits
        config = config_record(list(env), data, limits.memory_bytes, limits.timeout_ms, limits.fuel)
        _check_lifecycle(self._call("initialize", config), "initialize", self._label)

    def handle_message(self, env: Envelope) -> bytes | None:
        """Deliver one message; return the reply payload or ``None``.

        A guest ``err`` raises :class:`~wactor.errors.GuestError`.
        """
        if self.fast:  # the envelope crosses as two strings and scalars (see _fastcall)
            reply: bytes | None = self._call("fast:handle-message", env, subject=env.subject)
            return reply
        result = self._call("handle-message", message_record(env), subject=env.subject)
        return _unwrap_wasm_result(result, self._label)  # type: ignore[no-any-return]

    def handle_callback(self, env: Envelope) -> None:
        """Deliver a reply (or an error) for an earlier request of this component."""
        if self.fast:
            self._call("fast:handle-callback", env)
            return
        _unwrap_wasm_result(self._call("handle-callback", message_record(env)), self._label)

    def metadata(self) -> GuestMetadata:
        """Ask the guest to describe itself."""
        meta = self._call("metadata").__dict__
        return GuestMetadata(
            name=meta["name"],
            version=meta["version"],
            description=meta["description"],
            author=meta["author"],
            license=meta["license"],
            supported_operations=tuple(meta["supported-operations"]),
            stateful=bool(meta["stateful"]),
        )

    def health(self) -> str:
        """Ask the guest for its health: healthy, degraded, unhealthy or unknown."""
        return str(self._call("health"))

    def shutdown(self) -> None:
        """Call ``shutdown``; a guest ``err`` raises :class:`ComponentError`."""
        _check_lifecycle(self._call("shutdown"), "shutdown", self._label)


def _fast_exports(
    instance: wasmtime.component.Instance,
    store: wasmtime.Store,
    loaded: LoadedComponent,
    label: str,
) -> dict[str, FastExport]:
    """The wrapped guest's fast handle-message and handle-callback, keyed ``fast:<name>``:
    messages go through the adapter as a few strings and scalars (none: use the plain path)."""
    fast_iface = instance.get_export_index(store, FAST_INTERFACE)
    if fast_iface is None:
        return {}
    messages = FastMessages(store, label)
    fast: dict[str, FastExport] = {}
    for name in (FAST_HANDLE_MESSAGE, FAST_HANDLE_CALLBACK):
        idx = instance.get_export_index(store, name, fast_iface)
        func = instance.get_func(store, idx) if idx is not None else None
        if func is None or not _fast_signature(func, store, name, loaded.signatures):
            return {}
        fast[f"fast:{name}"] = FastExport(func, name, messages)
    return fast


def _fast_signature(
    func: wasmtime.component.Func, store: wasmtime.Store, name: str, checked: dict[str, Any]
) -> bool:
    """Whether a fast export takes the params :class:`FastExport` passes (asked once per
    component: reading a type through the FFI costs more than a call)."""
    key = f"fast-params:{name}"
    if key not in checked:
        checked[key] = len(func.type(store).params) == FAST_PARAMS
    return bool(checked[key])


def _unwrap_wasm_result(result: Variant, label: str) -> Any:
    if result.tag == "ok":
        return result.payload
    error = result.payload
    if isinstance(error, Variant):
        detail = error.payload if isinstance(error.payload, str) else None
        raise GuestError(error.tag, detail, component=label)
    raise GuestError("runtime-error", None, component=label)


def _check_lifecycle(result: Variant, op: str, label: str) -> None:
    if result.tag == "ok":
        return
    error = result.payload
    case = error.tag if isinstance(error, Variant) else "invalid-state"
    detail = error.payload if isinstance(error, Variant) and error.payload else ""
    raise ComponentError(  # the guest's text, into logs and onto terminals: escaped
        f"{label}: {op} failed: {case} {escape_controls(str(detail))}".rstrip(),
        case=case,
        component=label,
    )


def _export(name: str) -> str:
    return name.removeprefix("fast:")


def _cause(text: str) -> str:
    """wasmtime's reason for a failed call, without the wasm backtrace before it."""
    _, found, cause = text.rpartition("Caused by:")
    if found:
        return cause
    return "\n".join(ln for ln in text.splitlines() if not _FRAME.match(ln))


_FRAME = re.compile(r"^\s*\d+:\s+0x[0-9a-f]+ - ")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _trap_summary(text: str) -> str:
    # wasmtime puts the backtrace after the reason; keep the line that names the trap.
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for line in lines:
        if "wasm trap" in line or "trap" in line.lower():
            return line.removeprefix("wasm trap: ")
    return lines[-1] if lines else "trap"
