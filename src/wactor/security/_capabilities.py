"""Capabilities: what a component may do, the grammar of each grant, the dict form, narrowing.

The grammar of every kind of grant (target patterns, topic patterns, ``host:port`` patterns,
variable names, quotas) lives here once; the manifest loader (TOML) and the dict form below both
read grants through it, so a grant means the same and is refused with the same words either way.

The dict form mirrors the manifest's ``[capabilities]`` tables, with every path absolute and every
size in bytes; it is what approvals store and what ``--narrow`` takes::

    {
      "messaging": {"send": ["shop/**"], "request": ["shop/pricing/*"], "broadcast": []},
      "storage": {"quota": 10485760},          # null: no storage at all
      "filesystem": {"read": ["/abs/assets"], "write": []},
      "network": {"connect": ["api.example.com:443"]},
      "environment": {"allow": ["LANG"]}
    }

Narrowing may only remove. A narrow dict names just the parts it changes (``{"messaging":
{"send": []}}`` keeps everything but ``send``); each named list is replaced by the granted list,
and every granted item must be covered by a requested one: the same or a narrower target pattern
(``shop/cart/*`` under ``shop/**``), the same or a deeper directory, the same or a narrower
``host:port`` pattern, a requested variable name. The quota becomes the granted one, at most the
requested one; ``"storage": null`` removes storage. Unknown keys are refused, so a typo never
turns into "keep everything".
"""

from __future__ import annotations

import ipaddress
import os.path
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from wactor._ids import ComponentId, TargetPattern
from wactor._units import parse_size
from wactor.errors import ConfigError
from wactor.messaging._subjects import SubjectPattern

__all__ = [
    "CONNECT_EXPECTED",
    "ENV_EXPECTED",
    "MESSAGING_ACTIONS",
    "TARGET_EXPECTED",
    "TOPIC_EXPECTED",
    "Capabilities",
    "GrantError",
    "MessagingAction",
    "capabilities_from_dict",
    "capabilities_to_dict",
    "check_connect_pattern",
    "connect_matches",
    "narrow_capabilities",
    "parse_connect",
    "parse_env_name",
    "parse_target",
    "parse_topic",
    "split_host_port",
    "topic_covers",
]

T = TypeVar("T")
MessagingAction = Literal["send", "request", "broadcast"]
MESSAGING_ACTIONS: tuple[MessagingAction, ...] = ("send", "request", "broadcast")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")

_SECTIONS: dict[str, tuple[str, ...]] = {
    "messaging": (*MESSAGING_ACTIONS, "publish", "subscribe"),
    "storage": ("quota",),
    "filesystem": ("read", "write"),
    "network": ("connect",),
    "environment": ("allow",),
}

_LIMITS = "limits"


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a component may do beyond computing: nothing unless listed here."""

    send: tuple[TargetPattern, ...] = ()
    request: tuple[TargetPattern, ...] = ()
    broadcast: tuple[TargetPattern, ...] = ()
    storage_quota: int | None = None  # None: no storage at all
    fs_read: tuple[Path, ...] = ()
    fs_write: tuple[Path, ...] = ()
    net_connect: tuple[str, ...] = ()  # "host:port" patterns, see check_connect_pattern
    env: tuple[str, ...] = ()  # names of host environment variables the component may see
    publish: tuple[str, ...] = ()  # topic subject patterns it may publish on
    subscribe: tuple[str, ...] = ()  # topic patterns it may subscribe to (or narrower ones)

    def allows_publish(self, subject: str) -> bool:
        """Tell whether publishing on ``subject`` is granted."""
        return any(SubjectPattern.parse(p).matches(subject) for p in self.publish)

    def allows_subscribe(self, pattern: str) -> bool:
        """Tell whether subscribing to ``pattern`` is granted: every subject it can match must
        be matched by a granted pattern (token by token: ``#`` covers the rest, ``*`` covers
        ``*`` or a literal, a literal only itself)."""
        return any(topic_covers(granted, pattern) for granted in self.subscribe)

    def allows(self, action: MessagingAction, target: ComponentId) -> bool:
        """Tell whether messaging ``action`` towards ``target`` is granted."""
        if action == "send":
            patterns = self.send
        elif action == "request":
            patterns = self.request
        elif action == "broadcast":
            patterns = self.broadcast
        else:
            raise ValueError(f"unknown messaging action {action!r}")
        return any(pattern.matches(target) for pattern in patterns)

    def allows_connect(self, host: str, port: int) -> bool:
        """Tell whether opening a socket to ``host:port`` is granted."""
        return any(connect_matches(p, host, port) for p in self.net_connect)

    @property
    def has_storage(self) -> bool:
        """Tell whether the component may use key-value storage at all."""
        return self.storage_quota is not None


# --- the grammar of grants --------------------------------------------------------------------

TARGET_EXPECTED = "ns/name/instance with '*' for one segment and a final '**' for the rest"
TOPIC_EXPECTED = "dot-separated tokens with '*' for one and a final '#' for the rest"
CONNECT_EXPECTED = (
    "'host:port' with host a name, '*.domain', an IP, '[v6]' or '*', "
    "and port a number, 'lo-hi' or '*'"
)
ENV_EXPECTED = "letters, digits and '_', not starting with a digit"


class GrantError(ValueError):
    """One grant does not follow its grammar: what is wrong, and what was expected."""

    def __init__(self, problem: str, expected: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.expected = expected


def parse_target(text: str) -> TargetPattern:
    """Parse a messaging target pattern (``shop/**``)."""
    try:
        return TargetPattern.parse(text)
    except ValueError as exc:
        raise GrantError(str(exc), TARGET_EXPECTED) from exc


def parse_topic(text: str) -> str:
    """Check a topic pattern (``orders.*.created``, ``audit.#``); return it."""
    try:
        SubjectPattern.parse(text)
    except ValueError as exc:
        raise GrantError(str(exc), TOPIC_EXPECTED) from exc
    return text


def parse_connect(text: str) -> str:
    """Check a ``host:port`` pattern; return it in lower case."""
    problem = check_connect_pattern(text)
    if problem:
        raise GrantError(f"bad pattern {text!r}: {problem}", CONNECT_EXPECTED)
    return text.lower()


def parse_env_name(text: str) -> str:
    """Check the name of a host environment variable; return it."""
    if not _ENV_NAME.match(text):
        raise GrantError(f"bad variable name {text!r}", ENV_EXPECTED)
    return text


def topic_covers(granted: str, wanted: str) -> bool:
    """Tell whether every subject ``wanted`` can match is matched by ``granted``."""
    g, w = granted.split("."), wanted.split(".")
    for i, tok in enumerate(g):
        if tok in ("#", ">"):
            return len(w) > i
        if i >= len(w) or w[i] in ("#", ">"):
            return False
        if tok != "*" and tok != w[i]:
            return False
    return len(w) == len(g)


# --- network patterns ------------------------------------------------------------------------


def split_host_port(text: str) -> tuple[str, str] | None:
    if text.startswith("["):
        end = text.find("]:")
        if end < 0:
            return None
        return text[1:end], text[end + 2 :]
    host, sep, port = text.rpartition(":")
    if not sep:
        return None
    return host, port


def check_connect_pattern(text: str) -> str | None:
    """Return why ``text`` is not a ``host:port`` pattern, or ``None`` if it is one."""
    parts = split_host_port(text)
    if parts is None:
        return "missing ':port'"
    host, port = parts
    if text.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        if "%" in host:
            return f"{host!r} has a zone index, which no request can name"
    elif host != "*":
        labels = host.removeprefix("*.").split(".")
        if not all(_HOST_LABEL.match(label) for label in labels) or len(host) > 253:
            return f"{host!r} is not a host name, '*.domain', an IP address or '*'"
    if port == "*":
        return None
    low, _, high = port.partition("-")
    if not (low.isdigit() and (not high or high.isdigit())):
        return f"port {port!r} is not a number, a range 'lo-hi' or '*'"
    lo, hi = int(low), int(high or low)
    if not 1 <= lo <= hi <= 65535:
        return f"port {port!r} is outside 1-65535 or an empty range"
    return None


def connect_matches(pattern: str, host: str, port: int) -> bool:
    parts = split_host_port(pattern)
    if parts is None:  # pragma: no cover - patterns are validated when loaded
        return False
    want_host, want_port = parts
    if want_port != "*":
        low, _, high = want_port.partition("-")
        if not int(low) <= port <= int(high or low):
            return False
    host = host.lower().removeprefix("[").removesuffix("]").rstrip(".")
    if want_host == "*":
        return True
    if want_host.startswith("*."):
        return host.endswith(want_host[1:]) and len(host) > len(want_host) - 1
    try:
        return ipaddress.ip_address(want_host) == ipaddress.ip_address(host)
    except ValueError:
        return want_host == host


# --- the dict form ---------------------------------------------------------------------------


def capabilities_to_dict(c: Capabilities) -> dict[str, Any]:
    """Return the JSON-able dict form of ``c`` (see the module docstring)."""
    return {
        "messaging": {
            "send": [p.text for p in c.send],
            "request": [p.text for p in c.request],
            "broadcast": [p.text for p in c.broadcast],
            "publish": list(c.publish),
            "subscribe": list(c.subscribe),
        },
        "storage": None if c.storage_quota is None else {"quota": c.storage_quota},
        "filesystem": {"read": [str(p) for p in c.fs_read], "write": [str(p) for p in c.fs_write]},
        "network": {"connect": list(c.net_connect)},
        "environment": {"allow": list(c.env)},
    }


def capabilities_from_dict(data: Mapping[str, Any]) -> Capabilities:
    """Build ``Capabilities`` from the dict form; absent parts grant nothing."""
    _check_keys(data)
    messaging = _section(data, "messaging")
    storage = data.get("storage")
    quota: int | None = None
    if storage is not None:
        quota = _quota(_section(data, "storage").get("quota"), "storage.quota")
    filesystem = _section(data, "filesystem")
    return Capabilities(
        send=_patterns(messaging.get("send", []), "messaging.send"),
        request=_patterns(messaging.get("request", []), "messaging.request"),
        broadcast=_patterns(messaging.get("broadcast", []), "messaging.broadcast"),
        publish=_topics(messaging.get("publish", []), "messaging.publish"),
        subscribe=_topics(messaging.get("subscribe", []), "messaging.subscribe"),
        storage_quota=quota,
        fs_read=_paths(filesystem.get("read", []), "filesystem.read"),
        fs_write=_paths(filesystem.get("write", []), "filesystem.write"),
        net_connect=_connects(_section(data, "network").get("connect", []), "network.connect"),
        env=_names(_section(data, "environment").get("allow", []), "environment.allow"),
    )


def narrow_capabilities(c: Capabilities, granted: Mapping[str, Any]) -> Capabilities:
    """Return ``c`` narrowed to ``granted``; raise ``ConfigError`` if it would add anything."""
    _check_keys(granted)
    send, request, broadcast = c.send, c.request, c.broadcast
    publish, subscribe = c.publish, c.subscribe
    if "messaging" in granted:
        messaging = _section(granted, "messaging")
        if "publish" in messaging:
            publish = _narrow_topics(c.publish, messaging["publish"], "messaging.publish")
        if "subscribe" in messaging:
            subscribe = _narrow_topics(c.subscribe, messaging["subscribe"], "messaging.subscribe")
        if "send" in messaging:
            send = _narrow_patterns(c.send, messaging["send"], "messaging.send")
        if "request" in messaging:
            request = _narrow_patterns(c.request, messaging["request"], "messaging.request")
        if "broadcast" in messaging:
            broadcast = _narrow_patterns(c.broadcast, messaging["broadcast"], "messaging.broadcast")

    quota = c.storage_quota
    if "storage" in granted:
        if granted["storage"] is None:
            quota = None
        elif "quota" in _section(granted, "storage"):
            wanted = _quota(granted["storage"]["quota"], "storage.quota")
            if quota is None:
                raise ConfigError(
                    "the component did not request storage", key="storage", expected="null"
                )
            if wanted > quota:
                raise ConfigError(
                    f"{wanted} bytes is more than the requested {quota}",
                    key="storage.quota",
                    expected=f"at most {quota}",
                )
            quota = wanted

    fs_read, fs_write = c.fs_read, c.fs_write
    if "filesystem" in granted:
        filesystem = _section(granted, "filesystem")
        if "read" in filesystem:
            fs_read = _narrow_paths(c.fs_read, filesystem["read"], "filesystem.read")
        if "write" in filesystem:
            fs_write = _narrow_paths(c.fs_write, filesystem["write"], "filesystem.write")

    connect = c.net_connect
    if "network" in granted and "connect" in _section(granted, "network"):
        wanted_connect = _connects(granted["network"]["connect"], "network.connect")
        for index, item in enumerate(wanted_connect):
            if not any(_connect_covers(have, item) for have in c.net_connect):
                raise _adds(f"network.connect[{index}]", item, c.net_connect)
        connect = wanted_connect

    env = c.env
    if "environment" in granted and "allow" in _section(granted, "environment"):
        wanted_env = _names(granted["environment"]["allow"], "environment.allow")
        for index, name in enumerate(wanted_env):
            if name not in c.env:
                raise _adds(f"environment.allow[{index}]", name, c.env)
        env = wanted_env

    return Capabilities(
        send=send,
        request=request,
        broadcast=broadcast,
        storage_quota=quota,
        fs_read=fs_read,
        fs_write=fs_write,
        net_connect=connect,
        env=env,
        publish=publish,
        subscribe=subscribe,
    )


def _topics(value: object, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("must be a list of topic patterns", key=key)
    return tuple(_each(value, key, parse_topic))


def _narrow_topics(requested: tuple[str, ...], value: object, key: str) -> tuple[str, ...]:
    wanted = _topics(value, key)
    for item in wanted:
        if item not in requested:
            raise _adds(key, item, tuple(requested))
    return wanted


def _adds(key: str, item: object, requested: tuple[object, ...]) -> ConfigError:
    shown = ", ".join(str(getattr(r, "text", r)) for r in requested) or "nothing"
    return ConfigError(
        f"{item!s} was not requested; narrowing may only remove",
        key=key,
        expected=f"a subset of: {shown}",
    )


def _check_keys(data: Mapping[str, Any]) -> None:
    if not isinstance(data, Mapping):
        raise ConfigError("capabilities must be a JSON object", expected="an object")
    for name, value in data.items():
        if name == _LIMITS:
            continue  # resource limits travel beside capabilities; wactor.security._limits checks
        if name not in _SECTIONS:
            raise ConfigError(
                f"unknown capability section {name!r}", expected=", ".join((*_SECTIONS, _LIMITS))
            )
        if value is None:
            if name != "storage":
                raise ConfigError("null is only allowed for storage", key=name)
            continue
        if not isinstance(value, Mapping):
            raise ConfigError("must be an object", key=name)
        for key in value:
            if key not in _SECTIONS[name]:
                raise ConfigError(
                    f"unknown key {key!r}", key=name, expected=", ".join(_SECTIONS[name])
                )


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def _strings(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("must be a list of strings", key=key)
    return list(value)


def _each(items: list[str], key: str, parse: Callable[[str], T]) -> list[T]:
    """Parse every item with its grammar; a bad one is refused naming ``key[index]``."""
    out = []
    for index, text in enumerate(items):
        try:
            out.append(parse(text))
        except GrantError as exc:
            raise ConfigError(exc.problem, key=f"{key}[{index}]", expected=exc.expected) from exc
    return out


def _patterns(value: object, key: str) -> tuple[TargetPattern, ...]:
    return tuple(_each(_strings(value, key), key, parse_target))


def _paths(value: object, key: str) -> tuple[Path, ...]:
    paths = []
    for index, text in enumerate(_strings(value, key)):
        path = Path(text)
        if not text or "\0" in text or not path.is_absolute():
            raise ConfigError(f"bad path {text!r}", key=f"{key}[{index}]", expected="absolute")
        paths.append(path)
    return tuple(paths)


def _connects(value: object, key: str) -> tuple[str, ...]:
    return tuple(_each(_strings(value, key), key, parse_connect))


def _names(value: object, key: str) -> tuple[str, ...]:
    return tuple(_each(_strings(value, key), key, parse_env_name))


def _quota(value: object, key: str) -> int:
    try:
        quota = parse_size(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key=key) from exc
    if quota < 1:
        raise ConfigError("a quota must be at least 1 byte", key=key, expected="null to remove")
    return quota


def _narrow_patterns(
    requested: tuple[TargetPattern, ...], value: object, key: str
) -> tuple[TargetPattern, ...]:
    granted = _patterns(value, key)
    for index, pattern in enumerate(granted):
        if not any(_pattern_covers(have, pattern) for have in requested):
            raise _adds(f"{key}[{index}]", pattern.text, requested)
    return granted


def _pattern_covers(outer: TargetPattern, inner: TargetPattern) -> bool:
    """Tell whether every id ``inner`` matches is matched by ``outer``."""
    for index, part in enumerate(outer.segments):
        if part == "**":
            return True
        if index >= len(inner.segments):
            return False
        theirs = inner.segments[index]
        if theirs == "**" or part not in ("*", theirs):
            return False
    return len(inner.segments) == len(outer.segments)


def _narrow_paths(requested: tuple[Path, ...], value: object, key: str) -> tuple[Path, ...]:
    granted = _paths(value, key)
    for index, path in enumerate(granted):
        # Only normalised paths: "/assets/../etc" must not pass as a directory under "/assets".
        if os.path.normpath(path) != str(path):
            raise ConfigError(
                f"path {path} is not normalised", key=f"{key}[{index}]", expected="no '..' or '.'"
            )
        if not any(path == have or path.is_relative_to(have) for have in requested):
            raise _adds(f"{key}[{index}]", path, tuple(str(p) for p in requested))
    return granted


def _connect_covers(outer: str, inner: str) -> bool:
    """Tell whether every ``host:port`` the pattern ``inner`` allows, ``outer`` allows too."""
    outer_parts = split_host_port(outer)
    inner_parts = split_host_port(inner)
    if outer_parts is None or inner_parts is None:  # pragma: no cover - validated before
        return False
    outer_host, outer_port = outer_parts
    inner_host, inner_port = inner_parts
    if outer_port != "*":
        if inner_port == "*":
            return False
        low, _, high = outer_port.partition("-")
        inner_low, _, inner_high = inner_port.partition("-")
        if not int(low) <= int(inner_low) <= int(inner_high or inner_low) <= int(high or low):
            return False
    if outer_host == "*":
        return True
    if outer_host.startswith("*."):
        suffix = outer_host[1:]  # ".example.com"
        return inner_host.endswith(suffix) and len(inner_host) > len(suffix)
    if inner_host.startswith("*") or inner_host == "*":
        return False
    try:
        return ipaddress.ip_address(outer_host) == ipaddress.ip_address(inner_host)
    except ValueError:
        return outer_host == inner_host
