"""Byte sizes as operators write them: ``"64MiB"``, ``"1.5 GiB"``, ``"500KB"``, ``1024``."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["format_size", "parse_size"]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# Decimal units are powers of 1000, binary units powers of 1024; unit names are case-insensitive
# but the "i" is what tells the two apart, so "kb" is 1000 and "KiB" is 1024.
_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_SIZE = re.compile(r"^\s*(?P<number>[0-9][0-9_]*(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*$")

_EXPECTED = "a byte count or a size such as '512KiB', '64MiB', '1.5GiB', '10MB'"


def parse_size(value: object) -> int:
    """Return the number of bytes ``value`` stands for.

    Accepts a non-negative ``int`` (bytes) or a string: a number (``_`` separators and one decimal
    part allowed) followed by an optional unit ``B``, ``KB``/``MB``/``GB``/``TB`` (powers of 1000)
    or ``KiB``/``MiB``/``GiB``/``TiB`` (powers of 1024). A fractional size must come out as a
    whole number of bytes. Raises ``ValueError`` with a one-line reason.
    """
    # ValueError even for wrong types: callers turn one exception type into one config error.
    if isinstance(value, bool):
        raise ValueError(f"size {value!r} is a boolean, not {_EXPECTED}")  # noqa: TRY004
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"size {value} is negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"size {value!r} is a {type(value).__name__}, not {_EXPECTED}")  # noqa: TRY004
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"size {value!r} is not {_EXPECTED}")
    unit = match["unit"].lower()
    multiplier = _UNITS.get(unit)
    if multiplier is None:
        raise ValueError(
            f"size {value!r} has unknown unit {match['unit']!r} "
            "(use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
        )
    number_text = match["number"]
    if "__" in number_text or number_text.endswith("_"):
        raise ValueError(f"size {value!r} is not {_EXPECTED}")
    try:
        number = Decimal(number_text.replace("_", ""))
    except InvalidOperation:  # pragma: no cover - the regex only lets valid decimals through
        raise ValueError(f"size {value!r} is not {_EXPECTED}") from None
    total = number * multiplier
    if total != total.to_integral_value():
        raise ValueError(f"size {value!r} is not a whole number of bytes ({total} bytes)")
    return int(total)


def format_size(size: int) -> str:
    """Render ``size`` bytes the short way a human reads it back: ``64MiB``, ``1536B``."""
    for unit, multiplier in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= multiplier and size % multiplier == 0:
            return f"{size // multiplier}{unit}"
    return f"{size}B"
