"""What a guest writes to the host's log: escaped, cut to a size, and rate-limited per component.

A guest must not be able to forge log lines (a newline followed by something that looks like the
host's own output), drive the operator's terminal (escape sequences), reorder text (bidi
controls), or drown the log. Every control character is written as a visible escape, a line past
``[limits] log-line`` bytes is cut (saying how long it was), and lines past ``log-lines-per-second``
are dropped; the next line that passes says how many were.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from wactor._text import escape_controls

__all__ = ["LogGate", "clean_log_fields", "clean_log_text"]

_MAX_FIELDS = 32
_MAX_KEY = 128


def clean_log_text(text: str, limit: int) -> str:
    """Return ``text`` with control characters escaped, at most about ``limit`` UTF-8 bytes."""
    size = len(text.encode("utf-8", "replace"))
    # escaping only lengthens, so the first `limit` characters hold everything that can be kept
    out = escape_controls(text[:limit])
    encoded = out.encode("utf-8", "replace")
    if size <= limit and len(encoded) <= limit:
        return out
    kept = encoded[:limit].decode("utf-8", "ignore")
    return f"{kept}... [line of {size} bytes cut to {limit}]"


def clean_log_fields(context: Sequence[tuple[str, str]], limit: int) -> dict[str, str]:
    """Return a guest's log context cleaned like its text, all values together within ``limit``."""
    fields: dict[str, str] = {}
    budget = limit
    for index, (key, value) in enumerate(context):
        if index == _MAX_FIELDS or budget <= 0:
            fields["..."] = f"{len(context) - index} more fields dropped"
            break
        cleaned = clean_log_text(value, budget)
        fields[clean_log_text(key, _MAX_KEY)] = cleaned
        budget -= len(cleaned.encode("utf-8", "replace"))
    return fields


class LogGate:
    """Let ``rate`` lines per second through (bursts of ``rate``), counting the ones dropped."""

    def __init__(self, rate: int) -> None:
        self._rate = float(rate)
        self._tokens = float(rate)
        self._stamp = time.monotonic()
        self._dropped = 0
        self._lock = threading.Lock()

    def drop(self, count: int) -> None:
        """Count ``count`` lines dropped without asking (the rest of a write already refused)."""
        with self._lock:
            self._dropped += count

    def take(self) -> str | None:
        """Return ``None`` to drop this line, else a note to append (``""`` when none was lost)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens < 1.0:
                self._dropped += 1
                return None
            self._tokens -= 1.0
            dropped, self._dropped = self._dropped, 0
        if not dropped:
            return ""
        return f" [{dropped} earlier lines dropped: over {self._rate:.0f} lines/s]"
