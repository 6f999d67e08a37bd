"""Host limits: what a silent manifest gets, and the most any manifest may ask for.

The operator writes them in ``[limits]`` of ``wactor.toml``; ``HostConfig.default`` uses the same
values. A manifest key left out takes the host default; a key above its ceiling refuses the
component with a ``ManifestError`` naming the manifest, the key, the value and the ceiling (the
manifest is what must change, so it is a manifest error, exit 2, not a security denial).

Approvals store the resolved limits in the dict form below and may narrow them (lower only)::

    {"memory": 67108864, "timeout-ms": 1000, "fuel": null, "mailbox": 1024,
     "message-rate": 1000, "message-burst": 1000}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wactor._units import GIB, KIB, MIB, format_size, parse_size
from wactor.errors import ConfigError, ManifestError

if TYPE_CHECKING:  # named in signatures only: reading [limits] loads no manifest code
    from wactor.security._manifest import Limits, Manifest

__all__ = [
    "DEFAULT_MESSAGE_RATE",
    "HostLimits",
    "apply_host_limits",
    "check_narrowing",
    "limits_to_dict",
    "narrow_limits",
]

DEFAULT_MESSAGE_RATE = 1000
"""Messages per second a component may emit when its manifest says nothing (upstream's default)."""

# manifest key -> (Limits field, HostLimits default field, HostLimits ceiling field, [limits] key)
_KEYS: dict[str, tuple[str, str, str, str]] = {
    "memory": ("memory_bytes", "memory_bytes", "max_memory_bytes", "max-memory"),
    "timeout-ms": ("timeout_ms", "timeout_ms", "max_timeout_ms", "max-timeout-ms"),
    "fuel": ("fuel", "fuel", "max_fuel", "max-fuel"),
    "mailbox": ("mailbox", "mailbox", "max_mailbox", "max-mailbox"),
    "message-rate": ("message_rate", "message_rate", "max_message_rate", "max-message-rate"),
    "message-burst": ("message_burst", "message_rate", "max_message_rate", "max-message-rate"),
}
_SIZES = ("memory",)


@dataclass(frozen=True, slots=True)
class HostLimits:
    """``[limits]``: defaults for silent manifests, ceilings for all, and host-wide caps."""

    message_rate: int = DEFAULT_MESSAGE_RATE  # messages/s; the burst defaults to one second's worth
    max_message_rate: int = 100_000  # also bounds message-burst
    memory_bytes: int = 64 * MIB  # per linear memory
    max_memory_bytes: int = 1 * GIB
    timeout_ms: int = 1000  # one export call
    max_timeout_ms: int = 60_000
    mailbox: int = 1024
    max_mailbox: int = 65_536
    fuel: int | None = None  # None: unmetered unless max_fuel is set
    max_fuel: int | None = None
    # wasm store caps, for every component (wasmtime leaves them unlimited). A componentize-py
    # guest has 2 memories, 2 tables of under 10,000 elements and 17 core instances.
    table_elements: int = 200_000  # per table
    tables: int = 4
    memories: int = 2  # each up to the component's memory limit
    instances: int = 32
    # guest log volume, per component: a longer line is cut, lines past the rate are dropped and
    # counted (the next line that passes says how many)
    log_line_bytes: int = 8 * KIB
    log_lines_per_second: int = 100
    # audit entries (grants, denials, quota breaches) per component per second; the excess is
    # shed and one summary entry says how many
    audit_per_second: int = 100
    broadcast_targets: int = 64  # distinct targets of one broadcast
    # a short export call runs on the host loop's own thread (no thread hand-off) when the
    # component's measured calls fit in half this slice; an inline call that overstays it sends
    # the component back to worker threads for an exponentially growing time. 0: never inline.
    inline_slice_us: int = 1000

    def check(self) -> list[tuple[str, str]]:
        """Return ``(key, problem)`` for every default above its ceiling."""
        problems = []
        for key, (_, default_field, ceiling_field, ceiling_key) in _KEYS.items():
            if key == "message-burst":
                continue
            default, ceiling = getattr(self, default_field), getattr(self, ceiling_field)
            if default is not None and ceiling is not None and default > ceiling:
                problems.append(
                    (key, f"{_show(key, default)} is above {ceiling_key} = {_show(key, ceiling)}")
                )
        return problems


def _show(key: str, value: int) -> str:
    return format_size(value) if key in _SIZES else str(value)


def apply_host_limits(
    manifest: Manifest, host: HostLimits, config_file: Path | None = None
) -> Manifest:
    """Return ``manifest`` with every silent limit taken from ``host``.

    Raise ``ManifestError`` when the manifest asks for more than a ceiling. A limit counts as
    silent when it is ``None`` or (for a loaded manifest) its key is absent from ``[resources]``.
    """
    limits = manifest.limits
    declared = limits.declared
    values: dict[str, Any] = {}
    where = f"[limits] in {config_file}" if config_file is not None else "the host's limits"
    for key, (field, default_field, ceiling_field, ceiling_key) in _KEYS.items():
        value = getattr(limits, field)
        silent = value is None or (declared is not None and key not in declared)
        ceiling = getattr(host, ceiling_field)
        if silent:
            value = getattr(host, default_field)
            if key == "fuel" and value is None:
                value = host.max_fuel  # a fuel ceiling meters every component
            if key == "message-burst":
                value = values["message_rate"]
            values[field] = value
            continue
        if ceiling is not None and value > ceiling:
            shown = _show(key, value)
            raise ManifestError(
                f"{shown} is more than the host allows",
                file=str(manifest.path),
                key=f"resources.{key}",
                expected=f"at most {_show(key, ceiling)}, {ceiling_key} of {where}",
                component=str(manifest.id),
            )
        values[field] = value
    resolved = dataclasses.replace(limits, **values)
    return dataclasses.replace(manifest, limits=resolved)


def limits_to_dict(limits: Limits) -> dict[str, Any]:
    """Return the JSON-able dict form of ``limits`` (see the module docstring)."""
    return {key: getattr(limits, field) for key, (field, *_) in _KEYS.items()}


def narrow_limits(limits: Limits, granted: Mapping[str, Any] | None) -> Limits:
    """Return ``limits`` lowered to ``granted`` (never raised); absent keys stay as they are.

    Raise ``ConfigError`` for an unknown key or a value that is not a positive number (a size for
    ``memory``). A granted value above the current one keeps the current one: an approval made
    under higher host defaults never raises what the host now gives.
    """
    if granted is None:
        return limits
    if not isinstance(granted, Mapping):
        raise ConfigError("must be an object", key="limits", expected=", ".join(_KEYS))
    values: dict[str, Any] = {}
    for key, wanted in granted.items():
        if key not in _KEYS:
            raise ConfigError(
                f"unknown key {key!r}", key="limits", expected="one of " + ", ".join(_KEYS)
            )
        field = _KEYS[key][0]
        current = getattr(limits, field)
        if wanted is None:
            if current is not None:
                raise ConfigError(
                    "a limit can be lowered, not removed", key=f"limits.{key}", expected="a number"
                )
            continue
        number = _number(key, wanted)
        values[field] = number if current is None else min(current, number)
    rate = values.get("message_rate")
    if rate is not None and "message-burst" not in granted and limits.message_burst is not None:
        values["message_burst"] = min(limits.message_burst, rate)  # a lower rate, a smaller burst
    return dataclasses.replace(limits, **values)


def check_narrowing(requested: Mapping[str, Any] | None, granted: object) -> dict[str, Any]:
    """Validate a ``limits`` narrowing against the requested dict form; return the granted form.

    Raise ``ConfigError`` if a value is unknown, malformed or above the requested one.
    """
    if not isinstance(granted, Mapping):
        raise ConfigError("must be an object", key="limits", expected=", ".join(_KEYS))
    base = dict(requested or {})
    for key, wanted in granted.items():
        if key not in _KEYS:
            raise ConfigError(
                f"unknown key {key!r}", key="limits", expected="one of " + ", ".join(_KEYS)
            )
        have = base.get(key)
        if wanted is None:
            if have is not None:
                raise ConfigError(
                    "a limit can be lowered, not removed", key=f"limits.{key}", expected="a number"
                )
            base[key] = None
            continue
        number = _number(key, wanted)
        if have is not None and number > have:
            raise ConfigError(
                f"{_show(key, number)} is more than the requested {_show(key, have)}; "
                "narrowing may only lower",
                key=f"limits.{key}",
                expected=f"at most {_show(key, have)}",
            )
        base[key] = number
    burst = base.get("message-burst")
    if "message-rate" in granted and "message-burst" not in granted and burst is not None:
        base["message-burst"] = min(burst, base["message-rate"])  # a lower rate, a smaller burst
    return base


def _number(key: str, value: object) -> int:
    if key in _SIZES:
        try:
            number = parse_size(value)
        except ValueError as exc:
            raise ConfigError(str(exc), key=f"limits.{key}") from exc
    elif isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"got {value!r}", key=f"limits.{key}", expected="a positive integer")
    else:
        number = value
    if number < 1:
        raise ConfigError(f"got {value!r}", key=f"limits.{key}", expected="a positive number")
    return number
