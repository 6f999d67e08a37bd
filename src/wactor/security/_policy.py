"""Capability policy: the JSON form of ``Capabilities``, narrowing it, and the messaging check.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wactor._ids import ComponentId, TargetPattern
from wactor._units import parse_size
from wactor.errors import CapabilityDeniedError, ConfigError
from wactor.messaging._subjects import SubjectPattern
from wactor.security._audit import AuditLog
from wactor.security._manifest import (
    Capabilities,
    MessagingAction,
    _check_connect_pattern,
    _split_host_port,
)

__all__ = [
    "MessagingPolicy",
    "capabilities_from_dict",
    "capabilities_to_dict",
    "narrow_capabilities",
]

_SECTIONS: dict[str, tuple[str, ...]] = {
    "messaging": ("send", "request", "broadcast", "publish", "subscribe"),
    "storage": ("quota",),
    "filesystem": ("read", "write"),
    "network": ("connect",),
    "environment": ("allow",),
}

_LIMITS = "limits"

# A guest can name arbitrarily many distinct targets; past this many cached decisions the cache
# starts over rather than growing without bound (grants are then audited once more).
_POLICY_CACHE_LIMIT = 4096


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
    for text in value:
        try:
            SubjectPattern.parse(text)
        except ValueError as exc:
            raise ConfigError(str(exc), key=key) from exc
    return tuple(value)


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


def _patterns(value: object, key: str) -> tuple[TargetPattern, ...]:
    patterns = []
    for index, text in enumerate(_strings(value, key)):
        try:
            patterns.append(TargetPattern.parse(text))
        except ValueError as exc:
            raise ConfigError(str(exc), key=f"{key}[{index}]") from exc
    return tuple(patterns)


def _paths(value: object, key: str) -> tuple[Path, ...]:
    paths = []
    for index, text in enumerate(_strings(value, key)):
        path = Path(text)
        if not text or "\0" in text or not path.is_absolute():
            raise ConfigError(f"bad path {text!r}", key=f"{key}[{index}]", expected="absolute")
        paths.append(path)
    return tuple(paths)


def _connects(value: object, key: str) -> tuple[str, ...]:
    items = _strings(value, key)
    for index, item in enumerate(items):
        problem = _check_connect_pattern(item)
        if problem:
            raise ConfigError(f"bad pattern {item!r}: {problem}", key=f"{key}[{index}]")
    return tuple(item.lower() for item in items)


def _names(value: object, key: str) -> tuple[str, ...]:
    return tuple(_strings(value, key))


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
    outer_parts = _split_host_port(outer)
    inner_parts = _split_host_port(inner)
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


# --- the messaging check ---------------------------------------------------------------------


class MessagingPolicy:
    """Check one component's send/request/broadcast against its capabilities, and audit it.

    Decisions are cached per ``(action, target)``: a grant is audited the first time only, every
    denial is audited. Thread-safe enough for its purpose: concurrent first checks may audit the
    same grant twice, never lose a denial.
    """

    __slots__ = ("_audit", "_cache", "_capabilities", "_component")

    def __init__(
        self, capabilities: Capabilities, component_id: ComponentId | str, audit: AuditLog | None
    ) -> None:
        self._capabilities = capabilities
        self._component = str(component_id)
        self._audit = audit
        self._cache: dict[tuple[str, ComponentId], bool] = {}

    @property
    def capabilities(self) -> Capabilities:
        """The capabilities this policy enforces."""
        return self._capabilities

    def allows(self, action: MessagingAction, target: ComponentId) -> bool:
        """Tell whether ``action`` towards ``target`` is granted (cached, audits first grants)."""
        key = (action, target)
        allowed = self._cache.get(key)
        if allowed is None:
            allowed = self._capabilities.allows(action, target)  # ValueError on a bad action
            if len(self._cache) >= _POLICY_CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = allowed
            if allowed and self._audit is not None:
                self._audit.record(
                    "grant", self._component, allowed=True, action=action, target=str(target)
                )
        return allowed

    def check(self, action: MessagingAction, target: ComponentId) -> None:
        """Return if granted; otherwise audit the denial and raise ``CapabilityDeniedError``."""
        if self._cache.get((action, target)) or self.allows(action, target):
            return
        reason = f"{action} to {target} is not granted by its capabilities"
        if self._audit is not None:
            self._audit.record(
                "denial",
                self._component,
                allowed=False,
                action=action,
                target=str(target),
                reason=reason,
            )
        raise CapabilityDeniedError(
            f"{self._component}: {reason}",
            capability=f"messaging.{action}",
            component=self._component,
        )
