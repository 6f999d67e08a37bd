"""Component ids (``namespace/name/instance``) and target patterns over them."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

__all__ = ["ComponentId", "TargetPattern"]

# One segment: letters, digits and a few safe punctuation marks; never empty, never a wildcard.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}\Z")


def _segment_ok(text: str) -> bool:
    return bool(_SEGMENT.match(text))


@dataclass(frozen=True, slots=True)
class ComponentId:
    """The host's id of a component: ``namespace/name/instance``."""

    namespace: str
    name: str
    instance: str
    # the text form, made once: ids are formatted on every message (registry keys, logs)
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_text", f"{self.namespace}/{self.name}/{self.instance}")

    @classmethod
    def parse(cls, text: str) -> ComponentId:
        """Parse ``ns/name/instance``; ``ns/name`` means instance ``0``.

        Raises ``ValueError`` with a one-line reason.
        """
        if cls is ComponentId:
            return _parse_cached(text)
        return cls._parse(text)

    @classmethod
    def _parse(cls, text: str) -> ComponentId:
        parts = text.split("/")
        if len(parts) == 2:
            parts.append("0")
        if len(parts) != 3:
            raise ValueError(f"component id {text!r} is not namespace/name/instance")
        for part in parts:
            if not _segment_ok(part):
                raise ValueError(
                    f"component id {text!r}: segment {part!r} must be 1-63 characters of "
                    "letters, digits, '_', '.', '-'"
                )
        return cls(parts[0], parts[1], parts[2])

    def __str__(self) -> str:
        return self._text


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> ComponentId:
    """Parsed ids, remembered (a failed parse raises and is not)."""
    return ComponentId._parse(text)


@dataclass(frozen=True, slots=True)
class TargetPattern:
    """A pattern over component ids: ``*`` matches one segment, a final ``**`` the rest."""

    text: str
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> TargetPattern:
        """Parse a pattern such as ``shop/**`` or ``shop/pricing/*``; raise ``ValueError``."""
        parts = tuple(text.split("/"))
        if not text or len(parts) > 3:
            raise ValueError(f"pattern {text!r} must have 1-3 segments separated by '/'")
        for i, part in enumerate(parts):
            if part == "**":
                if i != len(parts) - 1:
                    raise ValueError(f"pattern {text!r}: '**' may only be the last segment")
            elif part != "*" and not _segment_ok(part):
                raise ValueError(f"pattern {text!r}: bad segment {part!r}")
        if len(parts) < 3 and parts[-1] != "**":
            raise ValueError(f"pattern {text!r} must name 3 segments or end with '**'")
        return cls(text, parts)

    def matches(self, target: ComponentId) -> bool:
        """Tell whether ``target`` falls under this pattern."""
        values = (target.namespace, target.name, target.instance)
        for i, part in enumerate(self.segments):
            if part == "**":
                return True
            if part != "*" and part != values[i]:
                return False
        return len(self.segments) == 3
