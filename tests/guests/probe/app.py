"""Probe guest: exercises every host import through text commands in the payload.

The payload is UTF-8 text, words separated by single spaces; the reply is UTF-8 text. A host
function that fails replies ``err <case> <detail>`` (``err quota-exceeded``,
``err target-not-found test/x/0``). Keys written ``hex:<hex>`` are hex-decoded (UTF-8) so tests
can pass NUL bytes, ``../`` or any unicode. A malformed command (unknown word, missing argument,
bad number or hex, non-UTF-8 payload) replies ``err usage <reason>``; "usage" is no WIT case.

    self-id | time | millis | sleep N | log LEVEL TEXT... | list | meta ID
    get K | set K V | setn K N | del K | exists K | keys [PREFIX] | usage
    send ID TEXT... | sendn ID N | request ID TIMEOUT_MS TEXT... | cancel ID
    broadcast ID1,ID2 TEXT...
    crash | echo TEXT... | callbacks | init? | push TEXT | sick | well | whoami
    read PATH | write PATH TEXT... | ls PATH | env NAME

``crash`` raises an uncaught exception, which componentize-py turns into a trap (a Rust panic,
then ``unreachable``), not into ``err``.
"""

import dataclasses

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import component_lifecycle
from wit_world.imports import host_messaging, host_services, storage, types

ERROR_CONTENT_TYPE = "application/x-wactor-error"

state = {"initialized": False, "sick": False}
callbacks: list[str] = []  # "<correlation-id> <ok|err> <payload-or-error>"

_LEVELS = {
    "trace": types.LogLevel.TRACE,
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


class Usage(Exception):
    """The command is malformed; replied as ``err usage <text>`` (not a host error)."""


def _id_text(cid: types.ComponentId) -> str:
    return f"{cid.namespace}/{cid.name}/{cid.instance}"


def _parse_id(text: str) -> types.ComponentId:
    parts = text.split("/")
    if len(parts) != 3:
        raise Usage(f"bad component id {text!r}")
    return types.ComponentId(namespace=parts[0], name=parts[1], instance=parts[2])


def _key(text: str) -> str:
    if text.startswith("hex:"):
        return bytes.fromhex(text[4:]).decode("utf-8")
    return text


def _case_name(value: object) -> str:
    # errors.StorageError_QuotaExceeded -> quota-exceeded; MessagingError_TargetNotFound -> ...
    cls = type(value).__name__.split("_", 1)[-1]
    out = []
    for i, ch in enumerate(cls):
        if ch.isupper() and i:
            out.append("-")
        out.append(ch.lower())
    return "".join(out)


def _describe_err(value: object) -> str:
    case = _case_name(value)
    if not dataclasses.is_dataclass(value) or not dataclasses.fields(value):
        return f"err {case}"
    detail = value.value
    if isinstance(detail, types.ComponentId):
        detail = _id_text(detail)
    return f"err {case} {detail}"


def _need(args: list[str], n: int, usage: str) -> None:
    if len(args) < n:
        raise Usage(usage)


def _services(command: str, args: list[str]) -> str | None:
    if command == "self-id":
        return _id_text(host_messaging.self_id())
    if command == "time":
        now = host_services.current_time()
        return f"{now.seconds} {now.nanoseconds}"
    if command == "millis":
        return str(host_services.current_time_millis())
    if command == "sleep":
        _need(args, 1, "sleep N")
        host_services.sleep_millis(int(args[0]))
        return "slept"
    if command == "log":
        _need(args, 1, "log LEVEL TEXT...")
        level = _LEVELS.get(args[0].lower())
        if level is None:
            raise Usage(f"bad level {args[0]!r}")
        host_services.log(level, " ".join(args[1:]), [("k", "v")])
        return "logged"
    if command == "list":
        return ",".join(_id_text(c) for c in host_services.list_components())
    if command == "meta":
        _need(args, 1, "meta ID")
        info = host_services.get_component_metadata(_parse_id(args[0]))
        return f"{_id_text(info.id)} {info.name} {info.version} {info.health}"
    return None


def _storage(command: str, args: list[str]) -> str | None:
    if command == "get":
        _need(args, 1, "get K")
        value = storage.get(_key(args[0]))
        return "none" if value is None else value.decode("utf-8", "replace")
    if command == "set":
        _need(args, 2, "set K V")
        storage.set(_key(args[0]), " ".join(args[1:]).encode())
        return "ok"
    if command == "setn":
        _need(args, 2, "setn K N")
        storage.set(_key(args[0]), b"x" * int(args[1]))
        return "ok"
    if command == "del":
        _need(args, 1, "del K")
        storage.delete(_key(args[0]))
        return "ok"
    if command == "exists":
        _need(args, 1, "exists K")
        return "true" if storage.exists(_key(args[0])) else "false"
    if command == "keys":
        prefix = _key(args[0]) if args else None
        return ",".join(storage.list_keys(prefix))
    if command == "usage":
        u = storage.usage()
        return f"{u.used_bytes} {u.quota_bytes} {u.key_count}"
    return None


def _messaging(command: str, args: list[str]) -> str | None:
    if command == "send":
        _need(args, 1, "send ID TEXT...")
        host_messaging.send(_parse_id(args[0]), " ".join(args[1:]).encode())
        return "ok"
    if command == "sendn":  # a payload of N bytes, for size limits
        _need(args, 2, "sendn ID N")
        host_messaging.send(_parse_id(args[0]), b"y" * int(args[1]))
        return "ok"
    if command == "request":
        _need(args, 2, "request ID TIMEOUT_MS TEXT...")
        target = _parse_id(args[0])
        return host_messaging.request(target, " ".join(args[2:]).encode(), int(args[1]))
    if command == "cancel":
        _need(args, 1, "cancel ID")
        host_messaging.cancel_request(args[0])
        return "ok"
    if command == "broadcast":
        _need(args, 1, "broadcast ID1,ID2 TEXT...")
        targets = [_parse_id(t) for t in args[0].split(",") if t]
        host_messaging.broadcast(targets, " ".join(args[1:]).encode())
        return "ok"
    return None


current: list[types.ComponentMessage] = []  # the message being handled


def _whoami() -> str:
    msg = current[-1]
    meta = msg.metadata
    reply_to = _id_text(meta.reply_to) if meta.reply_to is not None else "none"
    stamp = f"{meta.timestamp.seconds}.{meta.timestamp.nanoseconds:09d}"
    return (
        f"sender={_id_text(msg.sender)} reply-to={reply_to} ct={meta.content_type or 'none'} "
        f"corr={meta.correlation_id or 'none'} ts={stamp}"
    )


def _sandbox(command: str, args: list[str]) -> str | None:
    """File, environment and network access: what WASI lets this instance do."""
    try:
        if command == "read":
            _need(args, 1, "read PATH")
            with open(args[0], "rb") as f:
                return "data " + f.read(200).decode("utf-8", "replace")
        if command == "write":
            _need(args, 2, "write PATH TEXT")
            with open(args[0], "w") as f:
                f.write(" ".join(args[1:]))
            return "written"
        if command == "ls":
            import os

            return "entries " + ",".join(sorted(os.listdir(args[0] if args else ".")))
        if command == "env":
            import os

            _need(args, 1, "env NAME")
            return "value " + os.environ.get(args[0], "<unset>")
    except Exception as exc:  # noqa: BLE001 - the reply says what the sandbox refused
        return f"denied {type(exc).__name__}: {exc}"
    return None


def run(command: str, args: list[str]) -> str:
    for family in (_services, _storage, _messaging, _sandbox):
        reply = family(command, args)
        if reply is not None:
            return reply
    if command == "crash":
        raise RuntimeError("probe crash requested")  # uncaught: traps the instance
    if command == "echo":
        return " ".join(args)
    if command == "bign":  # a reply of N NUL bytes
        _need(args, 1, "bign N")
        return "\x00" * int(args[0])
    if command == "whoami":
        return _whoami()
    if command == "callbacks":
        return "\n".join(callbacks)
    if command == "init?":
        return "yes" if state["initialized"] else "no"
    if command == "push":  # append to the stored "log" (order of processing, across restarts)
        _need(args, 1, "push TEXT")
        log = storage.get("log") or b""
        storage.set("log", log + args[0].encode() + b",")
        return "ok"
    if command in ("sick", "well"):  # what the health export reports from now on
        state["sick"] = command == "sick"
        return command
    raise Usage(f"unknown command {command!r}")


class ComponentLifecycle(exports.ComponentLifecycle):
    def initialize(self, config: types.ComponentConfig) -> None:
        state["initialized"] = True

    def handle_message(self, msg: types.ComponentMessage) -> bytes | None:
        current[:] = [msg]
        try:
            command, _, rest = msg.payload.decode("utf-8").partition(" ")
            reply = run(command, rest.split(" ") if rest else [])
        except Err as err:
            reply = _describe_err(err.value)
        except (Usage, ValueError) as exc:  # ValueError: bad number, bad hex, bad UTF-8
            reply = f"err usage {exc}"
        return reply.encode("utf-8")

    def handle_callback(self, msg: types.ComponentMessage) -> None:
        outcome = "err" if msg.metadata.content_type == ERROR_CONTENT_TYPE else "ok"
        text = msg.payload.decode("utf-8", "replace")
        callbacks.append(f"{msg.metadata.correlation_id} {outcome} {text}")

    def metadata(self) -> component_lifecycle.ComponentMetadata:
        return component_lifecycle.ComponentMetadata(
            name="probe",
            version="0.1.0",
            description="Test guest that exercises every host import.",
            author="wactor tests",
            license="Apache-2.0",
            supported_operations=["probe"],
            stateful=True,
        )

    def health(self) -> types.HealthStatus:
        return types.HealthStatus.UNHEALTHY if state["sick"] else types.HealthStatus.HEALTHY

    def shutdown(self) -> None:
        return None
