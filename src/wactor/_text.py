"""Text from outside (guests, peers) made safe to print: every control character made visible."""

from __future__ import annotations

__all__ = ["escape_controls"]

# C0 and C1 controls and DEL, the Unicode line/paragraph separators and the bidi controls: what
# could end a log line early, drive a terminal or reorder what an operator reads.
_SPECIAL = [
    *range(0x20),
    *range(0x7F, 0xA0),
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_ESCAPES = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _SPECIAL}
_ESCAPES[0x09] = "\\t"
_ESCAPES[0x0A] = "\\n"
_ESCAPES[0x0D] = "\\r"


def escape_controls(text: str) -> str:
    """Return ``text`` with each control character written as an escape (``\\n``, ``\\x1b``)."""
    return text.translate(_ESCAPES)
